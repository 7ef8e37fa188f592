"""Behaviours and the versions file: parsing, validation, and what the shipped versions do."""

from __future__ import annotations

import math

import pytest

from demo_service.behaviour import (
    DEFAULTS,
    OOM_THRESHOLD,
    VERSIONS_FILE,
    Behaviour,
    BehaviourError,
    check_version_name,
    load_versions,
    parse_behaviour,
    parse_versions,
)


def test_shipped_versions_cover_every_fault():
    specs = load_versions()
    baseline = specs["v1.0.0"].behaviour
    assert baseline == Behaviour()  # the defaults: healthy
    assert specs["v1.0.1"].behaviour.error_ratio == 0 and specs["v1.0.1"].behaviour.leak_mb_per_s == 0
    assert specs["v1.1.0-fast"].behaviour.latency_ms < baseline.latency_ms
    leak = specs["v1.2.0-leak"].behaviour
    assert leak.leak_mb_per_s > 0 and leak.memory_limit_mb == 256
    assert specs["v1.3.0-slow"].behaviour.extra_latency_ms >= 300
    assert specs["v1.4.0-errors"].behaviour.error_ratio == pytest.approx(0.3)
    assert specs["v1.5.0-crashloop"].behaviour.crash_after_s is not None
    for spec in specs.values():
        assert spec.description


def test_leak_version_reaches_the_threshold_in_10_to_15_seconds():
    leak = load_versions()["v1.2.0-leak"].behaviour
    idle_rss_mb = 26  # measured: an idle instance (python + prometheus-client) on this machine
    seconds = (OOM_THRESHOLD * leak.memory_limit_mb - idle_rss_mb) / leak.leak_mb_per_s
    assert 10 <= seconds <= 15


def test_partial_behaviour_keeps_the_base():
    base = Behaviour(latency_ms=10, memory_limit_mb=256)
    merged = parse_behaviour({"error_ratio": 0.5}, base=base)
    assert merged.error_ratio == 0.5 and merged.latency_ms == 10 and merged.memory_limit_mb == 256
    assert parse_behaviour({}) == Behaviour()
    assert parse_behaviour({"crash_after_s": None}).crash_after_s is None
    assert parse_behaviour({"crash_after_s": 2}).crash_after_s == 2.0


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"leak": 3}, "behaviour.leak is not a behaviour key"),
        ({"error_ratio": 1.5}, "behaviour.error_ratio must be between 0 and 1 (got 1.5)"),
        ({"error_ratio": "0.3"}, "behaviour.error_ratio must be a number"),
        ({"latency_ms": True}, "behaviour.latency_ms must be a number"),
        ({"latency_ms": None}, "behaviour.latency_ms must be a number"),
        ({"latency_ms": math.nan}, "behaviour.latency_ms must be a number"),
        ({"memory_limit_mb": 16}, "behaviour.memory_limit_mb must be between 64 and 4096"),
        ({"leak_mb_per_s": -1}, "behaviour.leak_mb_per_s must be between 0 and 200"),
        ({"crash_after_s": 0}, "behaviour.crash_after_s must be between 0.2 and 86400"),
        ({"crash_after_s": "soon"}, "behaviour.crash_after_s must be a number or null"),
        ([1, 2], "behaviour must be a mapping of behaviour keys (got list)"),
    ],
)
def test_bad_behaviour_is_one_line_naming_the_key(data, message):
    with pytest.raises(BehaviourError) as caught:
        parse_behaviour(data)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_every_default_key_is_known():
    assert set(DEFAULTS) == set(Behaviour().to_dict())


@pytest.mark.parametrize("name", ["v1.0.0", "v2.0.0-rc.1", "build+7", "X"])
def test_good_version_names(name):
    assert check_version_name(name) == name


@pytest.mark.parametrize("name", ["", "-v1", "v 1", "v1/../x", "a" * 65, 1, None])
def test_bad_version_names(name):
    with pytest.raises(BehaviourError, match="version must be a version name"):
        check_version_name(name)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ([], "the top level must be a mapping"),
        ({"versions": {}}, "'versions' must be a non-empty mapping"),
        ({"versions": {"v1": {"description": "x"}}, "extra": 1}, "unknown top-level key 'extra'"),
        ({"versions": {"v1": "healthy"}}, "versions.v1 must be a mapping"),
        ({"versions": {"v1": {}}}, "versions.v1.description must be a non-empty string"),
        ({"versions": {"v1": {"description": "x", "faults": {}}}}, "versions.v1: unknown key 'faults'"),
        ({"versions": {"v1": {"description": "x", "behaviour": {"leak": 1}}}}, "behaviour.leak is not"),
        ({"versions": {"bad name": {"description": "x"}}}, "version name must be a version name"),
        ({"defaults": {"error_ratio": 2}, "versions": {"v1": {"description": "x"}}}, "defaults.error_ratio"),
    ],
)
def test_bad_versions_documents(document, message):
    with pytest.raises(BehaviourError, match=None) as caught:
        parse_versions(document, source="v.yaml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("v.yaml")


def test_defaults_apply_to_every_version():
    specs = parse_versions(
        {
            "defaults": {"latency_ms": 5},
            "versions": {
                "a": {"description": "A"},
                "b": {"description": "B", "behaviour": {"latency_ms": 9}},
            },
        }
    )
    assert specs["a"].behaviour.latency_ms == 5 and specs["b"].behaviour.latency_ms == 9


def test_malformed_yaml_is_one_line_with_its_position(tmp_path):
    path = tmp_path / "versions.yaml"
    path.write_text("versions:\n  v1: {description: [unclosed\n")
    with pytest.raises(BehaviourError) as caught:
        load_versions(path)
    message = str(caught.value)
    assert message.startswith("versions.yaml: invalid YAML at line") and "\n" not in message


def test_missing_versions_file(tmp_path):
    with pytest.raises(BehaviourError, match="cannot read versions file"):
        load_versions(tmp_path / "nope.yaml")


def test_shipped_file_is_the_default():
    assert VERSIONS_FILE.name == "versions.yaml" and VERSIONS_FILE.is_file()
