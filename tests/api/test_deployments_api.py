"""``POST /api/deployments`` on the embedded engine: an announcement (the console's shape, GitHub's
``deployment_status``, an Argo CD notification) starts the loop once per service and deployment id,
whoever announces it (the deployer's notification and the console's own deploy share the key), with
the clear errors (400 naming the field, 422 without a telemetry source, 401), and GitHub's deliveries
accepted by their ``X-Hub-Signature-256`` instead of a bearer token."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator

import pytest

from console.domain.executions import State
from console.inbound import DUPLICATE, LAUNCHED
from console.settings import Secret
from tests.api.conftest import AUTH
from tests.api.inbound_support import Console, stamp, start_console, stop_console
from tests.payloads.test_deployments import SHA, github_event

SECRET = "gh-webhook-secret-0123456789"


@pytest.fixture
def console(tmp_path, make_client) -> Iterator[Console]:
    c = start_console(tmp_path, make_client, github_webhook_secret=Secret(SECRET))
    yield c
    stop_console(c)


def announcement(console: Console, **changes) -> dict:
    """What the demo deployer's --notify-url posts, of a deploy made when the leak began."""
    return {
        "service": "demo-service",
        "version": "v1.2.0-leak",
        "previous_version": "v1.0.0",
        "environment": "live-demo",
        "deployed_by": "alice",
        "deployed_at": stamp(console.onset - 1),
        "deployment_id": "d-7f3a",
        "source": "demo-deployer",
        **changes,
    }


def signed(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def test_an_announcement_starts_one_run_whoever_announces_it_again(console):
    answer = console.client.post("/api/deployments", json=announcement(console), headers=AUTH)
    assert answer.status_code == 202, answer.text
    body = answer.json()
    execution_id = body["execution_id"]
    assert body["status"] == "launched" and body["links"]["execution"] == f"/api/executions/{execution_id}"
    assert body["deployment"]["id"] == "d-7f3a" and body["deployment"]["deployed_by"] == "alice"
    execution = console.wait(execution_id)
    assert execution.flow_id == "devops-loop" and execution.state == State.PAUSED  # the leak: ROLLBACK
    approval = console.runtime.approvals.for_execution(execution_id)
    assert approval["requested_by"] == "alice" and approval["requested_by_source"] == "deployer"

    retry = console.client.post("/api/deployments", json=announcement(console), headers=AUTH)
    assert retry.status_code == 200 and retry.json()["status"] == DUPLICATE
    assert retry.json()["execution_id"] == execution_id
    # the console's own deploy of the same record (the Scenarios page): the same key, no second run
    record = {"id": "d-7f3a", "service": "demo-service", "version": "v1.2.0-leak", "by": "alice",
              "at": stamp(console.onset - 1), "previous_version": "v1.0.0"}  # fmt: skip
    own = console.runtime.inbound.announce(record, source="console", announced_by="alice")
    assert own.status == DUPLICATE and own.execution_id == execution_id
    other = console.runtime.inbound.announce({**record, "id": "d-8000"}, source="console", announced_by="bob")
    assert other.status == LAUNCHED and other.execution_id != execution_id
    assert console.runtime.engine.search_executions(flow_id="devops-loop").total == 2
    console.wait(other.execution_id)


def test_malformed_unconfigured_and_unauthenticated_announcements_start_nothing(console):
    post = console.client.post
    missing = post("/api/deployments", json={"service": "demo-service"}, headers=AUTH)
    assert missing.status_code == 400 and missing.json()["error"] == "version: missing"
    typo = post("/api/deployments", json={**announcement(console), "verison": "x"}, headers=AUTH)
    assert typo.status_code == 400 and typo.json()["error"].startswith("verison: unknown field")
    future = post(
        "/api/deployments", json=announcement(console, deployed_at="2999-01-01T00:00:00Z"), headers=AUTH
    )
    assert future.status_code == 400 and future.json()["error"] == "deployed_at: is in the future"
    elsewhere = post("/api/deployments", json=announcement(console, service="payment-service"), headers=AUTH)
    assert elsewhere.status_code == 422
    assert elsewhere.json()["error"].startswith(
        "service 'payment-service' has no telemetry source configured"
    )
    assert post("/api/deployments", json=announcement(console)).status_code == 401
    assert console.runtime.engine.search_executions().total == 0


def test_github_deliveries_are_accepted_by_their_signature(console):
    event = github_event()
    event["repository"]["name"] = "demo-service"
    event["deployment"]["payload"] = {"service": "demo-service", "previous_version": "v1.0.0"}
    event["deployment_status"]["created_at"] = stamp(console.onset - 1)
    raw = json.dumps(event).encode()
    headers = {
        "Content-Type": "application/json",
        "X-GitHub-Event": "deployment_status",
        "X-GitHub-Delivery": "72d3162e-cc78-11e3-81ab-4c9367dc0958",
    }
    wrong = console.client.post(
        "/api/deployments", content=raw, headers={**headers, "X-Hub-Signature-256": signed(raw, "nope")}
    )
    assert wrong.status_code == 401 and "does not match" in wrong.json()["error"]
    good = console.client.post(
        "/api/deployments", content=raw, headers={**headers, "X-Hub-Signature-256": signed(raw)}
    )
    assert good.status_code == 202, good.text
    deployment = good.json()["deployment"]
    assert deployment["service"] == "demo-service" and deployment["version"] == "v2.4.1"
    assert deployment["id"] == "github-1234567"
    execution = console.wait(good.json()["execution_id"])
    assert execution.labels["source"] == "github" and execution.labels["sha"] == SHA
    again = console.client.post(
        "/api/deployments", content=raw, headers={**headers, "X-Hub-Signature-256": signed(raw)}
    )
    assert again.status_code == 200 and again.json()["status"] == DUPLICATE
    ping = b'{"zen": "Keep it logically awesome.", "hook_id": 1}'
    pong = console.client.post(
        "/api/deployments",
        content=ping,
        headers={**headers, "X-GitHub-Event": "ping", "X-Hub-Signature-256": signed(ping)},
    )
    assert pong.status_code == 200 and pong.json()["status"] == "ignored"
    pending = github_event("pending")
    raw = json.dumps(pending).encode()
    ignored = console.client.post(
        "/api/deployments", content=raw, headers={**headers, "X-Hub-Signature-256": signed(raw)}
    )
    assert ignored.status_code == 200 and "only 'success'" in ignored.json()["reason"]


def test_without_a_webhook_secret_a_github_signature_is_refused(tmp_path, make_client):
    console = start_console(tmp_path, make_client)
    try:
        raw = json.dumps(github_event()).encode()
        answer = console.client.post(
            "/api/deployments",
            content=raw,
            headers={"Content-Type": "application/json", "X-Hub-Signature-256": signed(raw)},
        )
        assert answer.status_code == 401 and "CONSOLE_GITHUB_WEBHOOK_SECRET" in answer.json()["error"]
    finally:
        stop_console(console)


def test_an_argo_cd_notification_starts_the_loop(console):
    body = {
        "source": "argocd",
        "app": "demo-service",
        "revision": "v1.2.0-leak",
        "previousRevision": "v1.0.0",
        "syncStatus": "Synced",
        "healthStatus": "Healthy",
        "phase": "Succeeded",
        "finishedAt": stamp(console.onset - 1),
        "initiatedBy": "carol",
        "namespace": "live-demo",
        "repoURL": "https://git.example/demo.git",
    }
    answer = console.client.post("/api/deployments", json=body, headers=AUTH)
    assert answer.status_code == 202, answer.text
    assert answer.json()["deployment"]["deployed_by"] == "carol"
    console.wait(answer.json()["execution_id"])
