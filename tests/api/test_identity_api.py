"""Issue 18, identity and approvals through the HTTP API (the real Starlette app, engine, approval
service and store): the caller who started a run counts as a starter, every token is a person and
votes once, console-owned labels cannot be set from outside, failures are throttled without
locking a valid token out, forwarded addresses are believed only from trusted proxies, look-alike
names are one person, and no bidi control comes back in an answer."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
from starlette.applications import Starlette

from console.access.tokens import hash_token
from console.api import api_routes
from console.api.guard import Guard, trusted_proxy_headers
from console.api.health import HealthChecker
from console.domain.executions import State
from console.domain.text import BIDI_CONTROLS, ZERO_WIDTH
from console.presentation.approval_card import people_of
from tests.api.conftest import AUTH, TestClient, services_of
from tests.api.inbound_support import Console, stamp, start_console, stop_console

pytestmark = [pytest.mark.identity]

CRITICAL_SCENARIO = "database-outage-before-deploy"  # failover_database: two approvers
HASH = "pbkdf2_sha256$1000$AAAAAAAAAAAAAAAAAAAAAA==$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
ALICE_LAPTOP, ALICE_CI = "alice-laptop-token-0123456789", "alice-ci-token-0123456789abc"
CHATOPS, CI = "chatops-token-0123456789abcdef", "ci-token-0123456789abcdefghij"
DAVE = "dave-token-0123456789abcdefgh"


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def table(token: str, identity: str | None, role: str = "approver", **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"sha256": hash_token(token), "role": role, **extra}
    if identity is not None:
        out["identity"] = identity
    return out


USERS = {
    "bob": {"password_hash": HASH, "role": "approver"},
    "dave": {"password_hash": HASH, "role": "viewer"},
    "erin": {"password_hash": HASH, "role": "approver"},
}


@pytest.fixture
def console(tmp_path, make_client) -> Iterator[Console]:
    tokens = {
        "alice-laptop": table(ALICE_LAPTOP, "alice"),
        "alice-ci": table(ALICE_CI, "alice"),
        "chatops": table(CHATOPS, "chatops-bot", act_for_users=True),
        "ci": table(CI, "ci"),
        "dave": table(DAVE, "dave", role="admin"),
    }
    c = start_console(tmp_path, make_client, api={"tokens": tokens}, auth={"users": USERS})
    yield c
    stop_console(c)


def announcement(console: Console, **changes: Any) -> dict[str, Any]:
    return {
        "service": "demo-service",
        "version": "v1.2.0-leak",
        "previous_version": "v1.0.0",
        "deployed_at": stamp(console.onset - 1),
        "deployment_id": "d-" + re.sub(r"\W", "", json.dumps(changes))[:24],
        **changes,
    }


def announced_run(console: Console, headers: dict[str, str], **changes: Any) -> tuple[str, dict]:
    answer = console.client.post("/api/deployments", json=announcement(console, **changes), headers=headers)
    assert answer.status_code == 202, answer.text
    execution_id = answer.json()["execution_id"]
    assert console.wait(execution_id).state == State.PAUSED
    approval = console.runtime.approvals.for_execution(execution_id)
    assert approval is not None
    return execution_id, approval


def decide(console: Console, approval_id: str, headers: dict[str, str], **body: Any):
    return console.client.post(
        f"/api/approvals/{approval_id}/decision", json={"decision": "approve", **body}, headers=headers
    )


# -- the caller is a starter -----------------------------------------------------------------------


def test_the_token_that_announced_a_deployment_cannot_approve_its_rollback_alone(console):
    execution_id, approval = announced_run(console, AUTH, deployed_by="ghost")
    refused = decide(console, approval["id"], AUTH)  # the env token, "api", an approver
    assert refused.status_code == 403 and "you launched this run" in refused.json()["error"]
    people = {p.name: p for p in people_of(approval, console.runtime.approvals.starters(execution_id))}
    assert people["api"].role == "launched by"
    assert people["api"].source == "the API token env (authenticated)"
    assert "deployed" in people["ghost"].role
    assert "claimed by the deployment announcement (api), not verified" in people["ghost"].source
    assert decide(console, approval["id"], bearer(CI)).status_code == 200  # someone who started nothing


def test_the_token_that_posted_an_alert_cannot_approve_its_rollback_alone(console):
    from tests.api.inbound_support import alert, delivery

    answer = console.client.post(
        "/api/alerts", json=delivery(alert(starts=console.onset)), headers=bearer(CI)
    )
    assert answer.status_code == 202, answer.text
    execution_id = answer.json()["execution_id"]
    assert console.wait(execution_id).state == State.PAUSED
    approval = console.runtime.approvals.for_execution(execution_id)
    refused = decide(console, approval["id"], bearer(CI))
    assert refused.status_code == 403 and "you launched this run" in refused.json()["error"]
    launched = [
        r
        for r in console.runtime.store.audit.trail(subject=execution_id)
        if r["event"] == "execution.launched"
    ]
    assert [r["actor"] for r in launched] == ["ci"]


def test_a_cyrillic_look_alike_deployer_is_the_same_person(console):
    _, approval = announced_run(console, bearer(CI), deployed_by="b\u043eb")  # Cyrillic o
    refused = decide(console, approval["id"], bearer(CHATOPS), actor="bob")
    assert refused.status_code == 403, refused.text
    assert "you cannot approve your own request" in refused.json()["error"]
    mixed = decide(console, approval["id"], bearer(CHATOPS), actor="b\u043eb")
    assert mixed.status_code == 400 and "cannot mix scripts" in mixed.json()["error"]
    assert decide(console, approval["id"], bearer(CHATOPS), actor="erin").status_code == 200


# -- tokens are people -------------------------------------------------------------------------------


def test_one_persons_two_tokens_cast_one_vote(console):
    execution = console.runtime.engine.run_sync(scenario=CRITICAL_SCENARIO, triggered_by="seed", timeout=60)
    approval = console.runtime.approvals.for_execution(execution.id)
    assert approval["required_approvals"] == 2
    first = decide(console, approval["id"], bearer(ALICE_LAPTOP))
    assert first.status_code == 200 and first.json()["status"] == "recorded"
    second = decide(console, approval["id"], bearer(ALICE_CI))
    assert second.status_code == 409 and "alice already voted" in second.json()["error"]
    assert console.runtime.store.approvals.get(approval["id"])["status"] == "pending"


def test_a_token_without_a_person_is_a_broken_configuration(console, make_client):
    settings = replace(console.settings, api={"tokens": {"alice-phone": table(ALICE_LAPTOP, None)}})
    client = make_client(services_of(console.runtime, settings))
    answer = client.get("/api/approvals", headers=bearer(ALICE_LAPTOP))
    assert answer.status_code == 503
    from console.access.tokens import load_tokens

    assert any(
        p.startswith("[console_api.tokens.alice-phone].identity: missing")
        for p in load_tokens(settings).problems
    )


def test_a_token_never_has_more_power_than_the_person_it_acts_for(console):
    execution = console.runtime.engine.run_sync(scenario="memory-leak", triggered_by="seed", timeout=60)
    approval = console.runtime.approvals.for_execution(execution.id)
    refused = decide(console, approval["id"], bearer(DAVE))  # an admin token for dave, a configured viewer
    assert refused.status_code == 403 and "viewer role" in refused.json()["error"]


# -- labels ------------------------------------------------------------------------------------------------


def test_console_owned_labels_from_outside_are_kept_only_as_claims(console):
    labels = {
        "launched_by": "system:timeout",
        "triggered_by": "erin",
        "source": "scenario",
        "ticket": "OPS-1",
    }
    execution_id, _ = announced_run(console, bearer(CI), deployed_by="carol", labels=labels)
    execution = console.runtime.engine.get_execution(execution_id)
    assert execution.labels["launched_by"] == "ci" and execution.labels["source"] == "api"
    assert "triggered_by" not in execution.labels and execution.labels["ticket"] == "OPS-1"
    assert execution.labels["claimed.launched_by"] == "system:timeout"
    assert execution.labels["claimed.triggered_by"] == "erin"
    assert execution.labels["claimed.source"] == "scenario"
    actors = {r["actor"] for r in console.runtime.store.audit.trail(subject=execution_id)}
    assert not any(a.startswith("system:") for a in actors) and "erin" not in actors
    starters = {p["name"] for p in console.runtime.approvals.starters(execution_id)}
    assert starters == {"carol", "ci"}


def test_argo_cds_system_initiator_is_a_claim_never_the_deployer(console):
    body = {
        "source": "argocd",
        "app": "demo-service",
        "revision": "v1.2.0-leak",
        "syncStatus": "Synced",
        "phase": "Succeeded",
        "finishedAt": stamp(console.onset - 1),
        "initiatedBy": "system:timeout",
    }
    answer = console.client.post("/api/deployments", json=body, headers=bearer(CI))
    assert answer.status_code == 202, answer.text
    assert answer.json()["deployment"]["deployed_by"] == "argocd"
    execution = console.runtime.engine.get_execution(answer.json()["execution_id"])
    assert execution.labels["claimed.initiated_by"] == "system:timeout"
    assert execution.inputs["triggered_by"] == "argocd"
    console.wait(execution.id)


# -- throttling ------------------------------------------------------------------------------------------


def proxied_client(console: Console, trusted: str = "") -> TestClient:
    """The API as server.py serves it: behind the trusted-proxy handling of X-Forwarded-For (each
    token's own bucket large enough for the test's valid calls)."""
    settings = replace(console.settings, trusted_proxies=trusted, api_burst=100)
    services = services_of(console.runtime, settings)
    health = HealthChecker(cache_s=0.0, llm_cache_s=0.0, timeout_s=1.0)
    app = Starlette(routes=api_routes(lambda: services, guard=Guard(), health=health))
    return TestClient(trusted_proxy_headers(app, settings), raise_server_exceptions=False)


def test_wrong_tokens_from_a_shared_address_never_lock_a_valid_token_out(console):
    client = proxied_client(console)
    statuses = []
    for i in range(30):
        statuses.append(client.get("/api/approvals", headers=bearer(f"wrong-{i}")).status_code)
        assert client.get("/api/approvals", headers=bearer(CI)).status_code == 200
    assert statuses[:10] == [401] * 10 and set(statuses[10:]) == {429}


def test_a_new_forwarded_address_per_request_is_throttled_unless_the_peer_is_a_trusted_proxy(console):
    untrusted = proxied_client(console)
    answers = [
        untrusted.get("/api/approvals", headers={**bearer(f"guess-{i}"), "X-Forwarded-For": f"203.0.113.{i}"})
        for i in range(14)
    ]
    assert [a.status_code for a in answers][-4:] == [429] * 4
    # behind a trusted proxy each forwarded address counts on its own, but one credential tried
    # from many addresses is still throttled
    trusted = proxied_client(console, trusted="testclient")
    different = [
        trusted.get("/api/approvals", headers={**bearer(f"guess-{i}"), "X-Forwarded-For": f"198.51.100.{i}"})
        for i in range(14)
    ]
    assert {a.status_code for a in different} == {401}
    same = [
        trusted.get("/api/approvals", headers={**bearer("one-guess"), "X-Forwarded-For": f"192.0.2.{i}"})
        for i in range(14)
    ]
    assert [a.status_code for a in same][-4:] == [429] * 4


# -- text that leaves the console ----------------------------------------------------------------------------


def test_no_bidi_or_zero_width_control_comes_back_in_an_api_answer(console):
    execution = console.runtime.engine.run_sync(scenario="memory-leak", triggered_by="seed", timeout=60)
    approval = console.runtime.approvals.for_execution(execution.id)
    comment = "\u202eevorppa\u202c\u200b all good"
    rejected = decide(console, approval["id"], bearer(CI), decision="reject", comment=comment)
    assert rejected.status_code == 200, rejected.text
    listed = console.client.get("/api/approvals?status=all", headers=bearer(CI))
    raw = listed.content.decode("utf-8")
    assert re.findall(f"[{BIDI_CONTROLS}{ZERO_WIDTH}]", raw) == []
    [row] = [a for a in listed.json()["approvals"] if a["id"] == approval["id"]]
    assert "evorppa all good" in json.dumps(row)
