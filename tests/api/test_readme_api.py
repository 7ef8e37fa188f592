"""README's "HTTP API" section stays true to the code: every route is in its table, its curl bodies
are payloads the parsers accept, the Alertmanager receiver passes amtool and points at
``/api/alerts``, the Argo CD template is the one the parser reads, and the stated limits are the
settings' defaults."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from starlette.routing import Route

from console.api.app import Api
from console.api.guard import FAILURES_PER_MINUTE
from console.payloads import parse_alertmanager, parse_announcement
from console.payloads.deployments import ARGOCD_TEMPLATE
from console.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SECTION = README.split("\n## HTTP API\n", 1)[1].split("\n## ", 1)[0]
CURL_BODY = re.compile(r"-d '(\{.*?\})'\s+localhost:8501(/api/\S+)", re.S)


def _yaml_blocks() -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", SECTION, re.S)


def test_every_route_is_in_the_table_and_nothing_else() -> None:
    routes = {
        f"{method} /api{re.sub(r'{[a-z_]+}', '{id}', route.path)}"
        for route in Api(services=lambda: None).routes()  # type: ignore[arg-type,return-value]
        if isinstance(route, Route)
        for method in (route.methods or ()) - {"HEAD"}
    }
    documented = set(re.findall(r"^\| `((?:GET|POST) /api/[^`?]*)", SECTION, re.M))
    assert documented == routes


def test_the_curl_bodies_are_payloads_the_api_accepts() -> None:
    bodies = {path: json.loads(body) for body, path in CURL_BODY.findall(SECTION)}
    delivery = parse_alertmanager(bodies["/api/alerts"])
    [alert] = delivery.alerts
    assert (alert.service, alert.severity.value, alert.status) == ("demo-service", "CRITICAL", "firing")
    announced = parse_announcement(bodies["/api/deployments"], now=datetime(2026, 11, 30, tzinfo=UTC))
    assert announced.accepted and announced.deployment is not None
    assert announced.deployment["service"] == "demo-service" and announced.deployment["version"] == "v1.2.0"
    decisions = [json.loads(b) for b, p in CURL_BODY.findall(SECTION) if p.endswith("/decision")]
    assert {d["decision"] for d in decisions} == {"approve", "reject"}


def test_the_alertmanager_receiver_routes_to_the_console_and_passes_amtool(tmp_path: Path) -> None:
    from livestack.processes import check_alertmanager_config, missing_reason

    [block] = [b for b in _yaml_blocks() if "receivers:" in b]
    config = yaml.safe_load(block)
    [receiver] = [r for r in config["receivers"] if r["name"] == config["route"]["receiver"]]
    [hook] = receiver["webhook_configs"]
    assert hook["url"].endswith("/api/alerts") and hook["send_resolved"] is True
    assert hook["http_config"]["authorization"]["type"] == "Bearer"
    assert "credentials" not in hook["http_config"]["authorization"]  # a file, never the token inline
    if missing_reason("amtool"):
        pytest.skip(missing_reason("amtool"))
    path = tmp_path / "alertmanager.yml"
    path.write_text(block, encoding="utf-8")
    assert "SUCCESS" in check_alertmanager_config(path)


def test_the_argocd_template_is_the_one_the_parser_reads() -> None:
    [block] = [b for b in _yaml_blocks() if "template.console-deployed" in b]
    assert ARGOCD_TEMPLATE in block
    cm = yaml.safe_load(block)
    service = yaml.safe_load(cm["service.webhook.console"])
    assert service["url"].endswith("/api/deployments")
    assert {"name": "Authorization", "value": "Bearer $console-api-token"} in service["headers"]
    assert "console-deployed" in cm["trigger.on-deployed"]


def test_the_stated_limits_are_the_defaults() -> None:
    settings = Settings()
    assert f"`CONSOLE_API_RATE_PER_MINUTE` ({settings.api_rate_per_minute:g})" in SECTION
    assert f"`CONSOLE_API_BURST` ({settings.api_burst})" in SECTION
    assert settings.api_max_body_bytes == 1024 * 1024 and "(1 MiB)" in SECTION
    assert f"({FAILURES_PER_MINUTE:g} a minute each, then those failures get 429" in " ".join(SECTION.split())
