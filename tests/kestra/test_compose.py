"""docker-compose.yaml and the Dockerfile: valid against the Compose Specification and correct for
the Kestra path (pinned LTS image, Postgres health, flows loaded, auth from the environment)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft7Validator

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yaml"
SPEC = ROOT.parent / "shared" / "compose" / "compose-spec.json"
MIN_PATCH = 21  # 1.3.21 fixes CVE-2026-49869


def _compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


def _spec_errors(doc: Any) -> list[str]:
    if not SPEC.is_file():
        pytest.skip(f"{SPEC} is absent (the Compose Specification lives in ../shared/compose)")
    validator = Draft7Validator(json.loads(SPEC.read_text(encoding="utf-8")))
    return [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]


def _kestra_config(compose: dict[str, Any]) -> dict[str, Any]:
    return yaml.safe_load(compose["services"]["kestra"]["environment"]["KESTRA_CONFIGURATION"])


def test_compose_matches_the_compose_specification() -> None:
    assert _spec_errors(_compose()) == []


def test_spec_check_rejects_a_broken_compose() -> None:
    broken = _compose()
    broken["services"]["kestra"]["ports"] = {"8080": 8080}  # must be a list
    broken["services"]["postgres"]["healthcheck"]["retry"] = 3  # misspelt key
    broken["services"]["console"]["depends_on"] = {"kestra": {"condition": "when_ready"}}
    errors = _spec_errors(broken)
    assert any(e.startswith("services/kestra/ports") for e in errors)
    assert any(e.startswith("services/postgres/healthcheck") and "retry" in e for e in errors)
    assert any(e.startswith("services/console/depends_on") for e in errors)


def test_kestra_image_is_a_pinned_lts_tag() -> None:
    image = _compose()["services"]["kestra"]["image"]
    match = re.fullmatch(r"kestra/kestra:v?1\.3\.(\d+)", image)
    assert match, f"{image} is not a pinned 1.3.x tag"
    assert int(match.group(1)) >= MIN_PATCH


def test_postgres_has_a_healthcheck_and_kestra_waits_for_it() -> None:
    services = _compose()["services"]
    health = services["postgres"]["healthcheck"]
    assert "pg_isready" in " ".join(health["test"])
    assert services["kestra"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    config = _kestra_config(_compose())
    assert config["kestra"]["repository"]["type"] == "postgres"
    assert config["kestra"]["queue"]["type"] == "postgres"
    assert config["datasources"]["postgres"]["url"].startswith("jdbc:postgresql://postgres:5432/")


def test_flows_are_mounted_and_loaded_at_start() -> None:
    kestra = _compose()["services"]["kestra"]
    command = kestra["command"] if isinstance(kestra["command"], str) else " ".join(kestra["command"])
    match = re.search(r"server standalone .*--flow-path[ =](\S+)", command)
    assert match, command
    mounts = {v.split(":")[1]: v.split(":")[0] for v in kestra["volumes"]}
    assert mounts[match.group(1)] == "./flows"
    assert "/var/run/docker.sock" in mounts  # the Docker task runner
    tmp = _kestra_config(_compose())["kestra"]["tasks"]["tmp-dir"]["path"]
    assert any(tmp.startswith(inside) and outside == inside for inside, outside in mounts.items())


def test_basic_auth_comes_from_the_environment() -> None:
    compose = _compose()
    auth = _kestra_config(compose)["kestra"]["server"]["basic-auth"]
    assert re.fullmatch(r"\$\{KESTRA_USERNAME(:\?[^}]*)?\}", auth["username"])
    assert re.fullmatch(r"\$\{KESTRA_PASSWORD(:\?[^}]*)?\}", auth["password"])
    text = COMPOSE.read_text(encoding="utf-8")
    # no literal secret: every password-like value is an interpolation
    for line in text.splitlines():
        if re.search(r"(?i)(password|secret|api_key)\s*:", line) and not line.strip().startswith("#"):
            value = line.split(":", 1)[1].strip()
            assert not value or value == "|" or value.startswith("${"), line


def test_console_is_built_here_and_points_at_kestra() -> None:
    console = _compose()["services"]["console"]
    build = console["build"]
    assert (build if isinstance(build, str) else build["context"]) == "."
    assert console["image"] == "devops-loop-console:latest"
    assert console["environment"]["KESTRA_URL"] == "http://kestra:8080"
    assert console["environment"]["KESTRA_PASSWORD"].startswith("${")
    assert "8501:8501" in console["ports"]
    # the flows run their steps in the image this service builds
    flows = " ".join(p.read_text() for p in (ROOT / "flows").glob("*.yaml"))
    assert f"containerImage: {console['image']}" in flows


def test_dockerfile_builds_the_console_and_task_image() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    assert lines[0] == "FROM python:3.11-slim"
    assert any(re.fullmatch(r"RUN pip install (--no-cache-dir )?-r requirements\.txt", ln) for ln in lines)
    copy_req = next(i for i, ln in enumerate(lines) if ln.startswith("COPY requirements.txt"))
    copy_all = next(i for i, ln in enumerate(lines) if ln.startswith("COPY . "))
    assert copy_req < copy_all  # dependency layer cached
    assert "EXPOSE 8501" in lines
    cmd = json.loads([ln for ln in lines if ln.startswith("CMD [")][-1].removeprefix("CMD "))
    assert cmd[:3] == ["streamlit", "run", "app.py"] and "--server.port=8501" in cmd
    assert not any(ln.startswith("ENTRYPOINT") for ln in lines)  # Kestra's task runner sets the command
    assert (ROOT / "app.py").is_file()
    assert re.search(r"^kestra==", (ROOT / "requirements.txt").read_text(), re.M)  # Kestra.outputs in tasks


def test_dockerignore_keeps_secrets_and_state_out() -> None:
    entries = set((ROOT / ".dockerignore").read_text(encoding="utf-8").split())
    assert {".env", ".streamlit/secrets.toml", ".venv", ".git", "data"} <= entries
