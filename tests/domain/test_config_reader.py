"""The one reader of the services file: every problem collected, one line each naming the key's path
and what the value must be, and no secret echoed (the telemetry sections and the executor sections
read through it; tests/telemetry/test_config.py and tests/executors/test_build.py check the files)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from console.domain.config_reader import ConfigReader, load_yaml
from console.domain.text import kind_of


@pytest.mark.parametrize(
    ("value", "options", "expected", "problem"),
    [
        (5, {}, 5, None),
        (2.5, {}, 2.5, None),
        (None, {}, 7, None),  # absent: the default
        (0, {}, 7, "s.k: must be a positive number, got 0"),
        (0, {"zero_ok": True}, 0, None),
        (True, {}, 7, "s.k: must be a positive number, got True"),  # YAML's yes is not a number
        (float("nan"), {}, 7, "s.k: must be a positive number, got nan"),
        (1.5, {"integer": True}, 7, "s.k: must be a positive whole number, got 1.5"),
        (601, {"maximum": 600}, 7, "s.k: must be a number above 0, at most 600, got 601"),
        (
            9,
            {"integer": True, "zero_ok": True, "maximum": 5},
            7,
            "s.k: must be a whole number from 0 to 5, got 9",
        ),
        (0, {"integer": True, "maximum": 1000}, 7, "s.k: must be a whole number from 1 to 1000, got 0"),
        (-1, {"zero_ok": True, "maximum": 30}, 7, "s.k: must be a number from 0 to 30, got -1"),
        ("fast", {"maximum": 600}, 7, "s.k: must be a number above 0, at most 600, got 'fast'"),
    ],
)
def test_numbers(value, options, expected, problem) -> None:
    check = ConfigReader()
    assert check.number({"k": value}, "k", "s", 7, **options) == expected
    assert check.problems == ([problem] if problem else [])


def test_every_problem_is_kept_and_the_section_type_named_when_a_key_is_missing() -> None:
    check = ConfigReader()
    section = {"type": "kubectl", "replicas": 3, "password": "hunter2"}
    check.keys(section, "executor", ("type", "namespace"), kind="kubectl")
    assert check.string(section, "namespace", "executor", required=True) is None
    assert check.choice({}, "type", "other", ("a", "b"), None, required=True) is None
    assert check.string({"x": 3}, "x", "plain", required=True) is None
    assert check.mapping(["a"], "plain.y") is None
    assert check.problems == [
        "executor.replicas: unknown key for type kubectl (allowed: type, namespace)",
        "executor.password: secrets are never written in this file: put it in an environment variable "
        "and give that variable's name (token_env / password_env)",
        "executor.namespace: missing (required for type kubectl)",
        "other.type: missing (one of a, b)",
        "plain.x: must be a non-empty string, got a number",
        "plain.y: must be a mapping, got a list",
    ]
    assert "hunter2" not in "\n".join(check.problems)


@pytest.mark.parametrize(
    ("url", "read", "problem"),
    [
        ("http://h:9090/", "http://h:9090", None),
        ("https://h/path?x=1", "https://h/path?x=1", None),
        (
            "ftp://h/x?token=t0k3n",
            None,
            "u.url: must be an http(s) URL with a host (http://host:port or https://...), got 'ftp://h/x?token=***'",
        ),
        ("http://h:99999", None, "u.url: not a valid URL (expected http://host:port or https://...)"),
        (
            "http://user:pw@h",
            None,
            "u.url: credentials in the URL are not allowed: put the secret in an environment variable and "
            "give that variable's name (token_env / password_env)",
        ),
    ],
)
def test_urls_are_checked_and_shown_masked(url: str, read: str | None, problem: str | None) -> None:
    check = ConfigReader()
    assert check.url({"url": url}, "url", "u") == read
    assert check.problems == ([problem] if problem else [])
    assert "t0k3n" not in "".join(check.problems) and "pw" not in "".join(check.problems)


def test_env_names_and_paths(tmp_path: Path) -> None:
    check = ConfigReader()
    assert check.env_name({"e": " PROM_TOKEN "}, "e", "s") == "PROM_TOKEN"
    assert check.env_name({"e": "sk-live-123/abc"}, "e", "s", default="D") == "D"
    assert check.problems == [
        "s.e: must be the name of an environment variable (letters, digits, _), never the secret itself"
    ]
    assert check.path({"p": "logs/a.log"}, "p", "s", tmp_path, required=True) == tmp_path / "logs/a.log"
    assert check.path({"p": "/var/a.log"}, "p", "s", tmp_path, required=True) == Path("/var/a.log")


def test_kind_of_names_the_kind_never_the_value() -> None:
    values = (None, True, 3, 2.5, "x", " ", {}, [], ())
    same = ["a boolean", "a number", "a number", "a string", "an empty string"]
    assert [kind_of(v) for v in values] == ["nothing", *same, "a mapping", "a list", "a list"]
    assert [kind_of(v, json=True) for v in values] == ["null", *same, "an object", "an array", "an array"]


ROOT = Path(__file__).resolve().parents[2]
PROJECT_YAML = sorted(
    p.relative_to(ROOT)
    for pattern in ("flows/*.yaml", "console/telemetry/*.yaml", "livestack/compose/*.y*ml", "*.yaml")
    for p in ROOT.glob(pattern)
)


@pytest.mark.parametrize("path", PROJECT_YAML, ids=str)
def test_load_yaml_reads_the_projects_files_as_safe_load_does(path: Path):
    text = (ROOT / path).read_text(encoding="utf-8")
    assert load_yaml(text) == yaml.safe_load(text)


@pytest.mark.parametrize(
    "text",
    [
        "a: [1, 2\nb: 3\n",  # an unclosed flow sequence
        "a: 1\n  b: 2\n",  # a bad indentation
        "!!python/object:os.system ['true']\n",  # no Python object is ever built
        "a: *nowhere\n",  # an alias to no anchor
    ],
)
def test_load_yaml_refuses_what_safe_load_refuses_naming_the_line(text: str):
    with pytest.raises(yaml.YAMLError) as expected:
        yaml.safe_load(text)
    with pytest.raises(type(expected.value)) as got:
        load_yaml(text)
    mark, expected_mark = got.value.problem_mark, expected.value.problem_mark
    assert (mark.line, mark.column) == (expected_mark.line, expected_mark.column)
