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

pytestmark = pytest.mark.kestra

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
    assert console["ports"] == ["127.0.0.1:8501:8501"]
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
    # server.py: the pages and the HTTP API on one port (Alertmanager posts to console:8501/api/alerts)
    assert cmd[:3] == ["streamlit", "run", "server.py"] and "--server.port=8501" in cmd
    assert (ROOT / "server.py").is_file()
    assert not any(ln.startswith("ENTRYPOINT") for ln in lines)  # Kestra's task runner sets the command
    assert (ROOT / "app.py").is_file()
    assert re.search(r"^kestra==", (ROOT / "requirements.txt").read_text(), re.M)  # Kestra.outputs in tasks


def test_dockerignore_keeps_secrets_and_state_out() -> None:
    entries = set((ROOT / ".dockerignore").read_text(encoding="utf-8").split())
    assert {".env", ".streamlit/secrets.toml", ".venv", ".git", "data"} <= entries


# -- the live demo: Prometheus, the demo service's deployer and its load ------------------------------

def _mounts(service: dict[str, Any]) -> dict[str, str]:
    """inside -> outside of each volume."""
    return {v.split(":")[1]: v.split(":")[0] for v in service.get("volumes", [])}


def test_prometheus_is_the_pinned_official_image_with_the_projects_rules() -> None:
    prom = _compose()["services"]["prometheus"]
    assert re.fullmatch(r"prom/prometheus:v\d+\.\d+\.\d+", prom["image"]), prom["image"]
    mounts = _mounts(prom)
    flags = dict(arg.removeprefix("--").split("=", 1) for arg in prom["command"] if "=" in arg)
    assert mounts[flags["config.file"]] == "./livestack/compose/prometheus.yml"
    config = yaml.safe_load((ROOT / "livestack" / "compose" / "prometheus.yml").read_text(encoding="utf-8"))
    rules, alerts = config["rule_files"]
    assert mounts[rules] == "./livestack/prometheus/rules.yml"
    assert mounts[alerts] == "./livestack/prometheus/alerts.yml"
    [manager] = config["alerting"]["alertmanagers"]
    assert manager["static_configs"][0]["targets"] == ["alertmanager:9093"]
    targets = {c["job_name"]: c["static_configs"][0]["targets"] for c in config["scrape_configs"]}
    assert targets == {"demo-service": ["demo-deployer:8701"], "deployer": ["demo-deployer:8700"]}
    assert config["global"]["scrape_interval"] == "1s"


def test_prometheus_config_passes_promtool(tmp_path: Path) -> None:
    from livestack.processes import check_config, missing_reason

    if missing_reason("promtool"):
        pytest.skip(missing_reason("promtool"))
    config = yaml.safe_load((ROOT / "livestack" / "compose" / "prometheus.yml").read_text(encoding="utf-8"))
    config["rule_files"] = [str(ROOT / "livestack" / "prometheus" / n) for n in ("rules.yml", "alerts.yml")]
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    assert "SUCCESS" in check_config(path)


def test_the_demo_deployer_and_its_load_run_from_the_console_image() -> None:
    services = _compose()["services"]
    deployer, load = services["demo-deployer"], services["demo-load"]
    image = services["console"]["image"]
    assert deployer["image"] == image and load["image"] == image
    args = deployer["command"]
    assert args[:3] == ["python", "-m", "demo_service.deployer"]
    flags = dict(arg.removeprefix("--").split("=", 1) for arg in args[3:])
    assert flags["host"] == "0.0.0.0" and (flags["port"], flags["service-port"]) == ("8700", "8701")
    assert flags["log-file"].startswith("/app/data/") and flags["state-dir"].startswith("/app/data/")
    assert _mounts(deployer)["/app/data"] == "demo-data"
    assert deployer["environment"]["DEMO_DEPLOYER_TOKEN"].startswith("${DEMO_DEPLOYER_TOKEN:?")
    assert load["command"][:3] == ["python", "-m", "demo_service.load"]
    assert load["command"][load["command"].index("--target") + 1] == "http://demo-deployer:8701"


def test_the_console_and_the_flows_collect_from_and_act_on_the_compose_services() -> None:
    from console.executors import build_executor
    from console.settings import Settings
    from console.telemetry import load_services

    compose = _compose()
    path = compose["services"]["console"]["environment"]["CONSOLE_SERVICES_FILE"]
    flows = " ".join(p.read_text() for p in (ROOT / "flows").glob("*.yaml"))
    assert f"CONSOLE_SERVICES_FILE: {path}" in flows  # the tasks read the same file
    assert "networkMode: devops-loop_default" in flows and compose["name"] == "devops-loop"
    local = ROOT / path.removeprefix("/app/")  # the image copies the project to /app
    config = load_services(local, Settings()).service("demo-service")
    assert config.prometheus is not None and config.prometheus.url == "http://prometheus:9090"
    assert config.prometheus.scrape_interval_s == 1
    executor = build_executor(config.executor)
    assert executor.name == "demo-service" and executor.url == "http://demo-deployer:8700"
    assert executor.token_env == "DEMO_DEPLOYER_TOKEN"
    secret = compose["services"]["kestra"]["environment"]["SECRET_DEMO_DEPLOYER_TOKEN"]
    assert secret.startswith("${SECRET_DEMO_DEPLOYER_TOKEN")
    assert "{{ secret('DEMO_DEPLOYER_TOKEN') }}" in flows


def test_every_published_port_is_bound_to_loopback() -> None:
    """Whoever reaches a published port reaches the console, Kestra or Alertmanager: by default only
    this machine does (issue 12: the console on Kestra must not be open to the network)."""
    published = {
        name: service["ports"] for name, service in _compose()["services"].items() if service.get("ports")
    }
    assert set(published) == {"kestra", "console", "alertmanager"}
    for name, ports in published.items():
        for port in ports:
            assert isinstance(port, str) and re.fullmatch(r"127\.0\.0\.1:\d+:\d+", port), (name, port)


def test_the_live_demo_publishes_no_port() -> None:
    """Prometheus, the deployer and the service are reached on the compose network only."""
    services = _compose()["services"]
    assert all("ports" not in services[name] for name in ("prometheus", "demo-deployer", "demo-load"))


# -- Alertmanager: beside Prometheus, routed to the console's /api/alerts ------------------------------


def test_alertmanager_is_the_pinned_official_image_on_loopback_routed_to_the_console() -> None:
    compose = _compose()
    manager = compose["services"]["alertmanager"]
    assert re.fullmatch(r"prom/alertmanager:v\d+\.\d+\.\d+", manager["image"]), manager["image"]
    assert manager["ports"] and all(p.startswith("127.0.0.1:") for p in manager["ports"])
    assert "--cluster.listen-address=" in manager["command"]
    flags = dict(arg.removeprefix("--").split("=", 1) for arg in manager["command"] if "=" in arg)
    mounts = _mounts(manager)
    assert mounts[flags["config.file"]] == "./livestack/compose/alertmanager.yml"
    assert "alertmanager" in compose["services"]["prometheus"]["depends_on"]
    config = yaml.safe_load((ROOT / "livestack" / "compose" / "alertmanager.yml").read_text(encoding="utf-8"))
    [receiver] = [r for r in config["receivers"] if r["name"] == config["route"]["receiver"]]
    [hook] = receiver["webhook_configs"]
    assert hook["url"] == "http://console:8501/api/alerts" and hook["send_resolved"] is True
    # the console's token: a compose secret from .env, read from a file (never written in the config)
    auth = hook["http_config"]["authorization"]
    assert auth["type"] == "Bearer" and auth["credentials_file"] == "/run/secrets/console_api_token"
    assert manager["secrets"] == ["console_api_token"]
    assert compose["secrets"]["console_api_token"] == {"environment": "CONSOLE_API_TOKEN"}
    console = compose["services"]["console"]["environment"]
    assert console["CONSOLE_API_TOKEN"].startswith("${CONSOLE_API_TOKEN:?")
    assert "SECRET_INCIDENT_WEBHOOK_KEY" in compose["services"]["kestra"]["environment"]
    env_example = (ROOT / ".env.example").read_text(encoding="utf-8")
    assert "CONSOLE_API_TOKEN=" in env_example and "SECRET_INCIDENT_WEBHOOK_KEY=" in env_example


def test_alertmanager_config_passes_amtool() -> None:
    from livestack.processes import check_alertmanager_config, missing_reason

    if missing_reason("amtool"):
        pytest.skip(missing_reason("amtool"))
    assert "SUCCESS" in check_alertmanager_config(ROOT / "livestack" / "compose" / "alertmanager.yml")


# -- the webhook's security ------------------------------------------------------------------------------


def test_the_webhook_path_is_open_as_the_docs_say_and_each_key_is_a_required_kestra_secret() -> None:
    """Kestra's default open-urls leave the webhook path without login (the fake answers the same):
    compose writes them out, the docs say the key is the only guard, and every flow's key comes
    from a Kestra secret that compose refuses to start without."""
    from console.engines.kestra.flow_lint import load_documents
    from console.engines.kestra.rules import DEFAULT_OPEN_URLS

    compose = _compose()
    auth = _kestra_config(compose)["kestra"]["server"]["basic-auth"]
    assert tuple(auth["open-urls"]) == DEFAULT_OPEN_URLS
    assert "/api/v1/main/executions/webhook/" in auth["open-urls"]
    guide = (ROOT / "docs" / "kestra.md").read_text(encoding="utf-8")
    assert "only guard" in guide and "token_urlsafe(32)" in guide
    webhook_example = guide[guide.index("## 7. Webhook") :].split("```")[1]
    assert "curl" in webhook_example and "-u" not in webhook_example  # no login on that path
    environment = compose["services"]["kestra"]["environment"]
    docs, _ = load_documents(ROOT / "flows")
    names = []
    for doc in docs.values():
        for trigger in doc.get("triggers") or []:
            names += re.findall(r"secret\('([A-Z0-9_]+)'\)", trigger["key"])
    assert sorted(names) == ["DEVOPS_LOOP_WEBHOOK_KEY", "INCIDENT_WEBHOOK_KEY"]
    env_example = (ROOT / ".env.example").read_text(encoding="utf-8")
    for name in names:
        assert environment[f"SECRET_{name}"].startswith(f"${{SECRET_{name}:?")  # required
        assert f"SECRET_{name}=" in env_example
    assert "token_urlsafe(32)" in env_example and "base64" in env_example
