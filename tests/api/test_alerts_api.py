"""``POST /api/alerts`` on the embedded engine (the API in-process, the real engine, approval service
and store; a stand-in Prometheus shows the leak): each firing alert an incident run routed by its
severity, idempotent over retries and concurrent deliveries, alerts of an open incident attached,
a resolution marking the incident resolved in the read model, and the errors (401, 400 naming the
field, 422 without a telemetry source, 503 when the run cannot start — and the retry starts it)."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator

import pytest

from console.access.auth import Identity, Role
from console.access.tokens import hash_token
from console.domain.executions import State
from console.engines.backend import BackendUnavailable
from console.inbound import DUPLICATE, LAUNCHED
from tests.api.conftest import AUTH
from tests.api.inbound_support import Console, alert, delivery, start_console, stop_console

ONCALL = "oncall-token-0123456789abcdef"


@pytest.fixture
def console(tmp_path, make_client) -> Iterator[Console]:
    oncall = {"sha256": hash_token(ONCALL), "role": "approver", "identity": "oncall"}
    c = start_console(tmp_path, make_client, api={"tokens": {"oncall": oncall}})
    yield c
    stop_console(c)


def post(console: Console, body, headers=AUTH):
    return console.client.post("/api/alerts", json=body, headers=headers)


def test_without_a_token_401_a_malformed_delivery_400_naming_the_field(console):
    body = delivery(alert(starts=console.onset))
    assert post(console, body, headers={}).status_code == 401
    broken = delivery(alert(starts=console.onset))
    broken["alerts"][0]["startsAt"] = "yesterday"
    answer = post(console, broken)
    assert answer.status_code == 400
    assert answer.json()["error"].startswith("alerts[0].startsAt: not an RFC 3339 time")
    assert post(console, {**body, "version": "3"}).json()["error"].startswith("version: unsupported")
    assert post(console, {**body, "alerts": []}).json()["error"].startswith("alerts: empty")
    assert console.incident_runs() == 0


def test_a_critical_alert_starts_an_incident_run_that_escalates_waits_for_approval_and_resolves(console):
    answer = post(console, delivery(alert(starts=console.onset)))
    assert answer.status_code == 202, answer.text
    body = answer.json()
    execution_id = body["execution_id"]
    assert body["execution_ids"] == [execution_id] and body["launched"] == 1
    [item] = body["alerts"]
    assert item["status"] == "launched" and item["severity"] == "CRITICAL" and item["incident_id"]

    paused = console.wait(execution_id)
    assert paused.state == State.PAUSED and paused.flow_id == "incident-handler"
    logs = [e for e in console.runtime.engine.execution_logs(execution_id)]
    [escalation] = [e for e in logs if e.level == "ERROR"]
    assert escalation.message.startswith("ESCALATION CRITICAL: DemoServiceOutOfMemory on demo-service")
    approval = console.runtime.approvals.for_execution(execution_id)
    assert approval["status"] == "pending" and approval["requested_by"] == "alertmanager"
    assert approval["actions"][0]["name"] == "rollback_deployment"

    view = console.client.get(f"/api/executions/{execution_id}", headers=AUTH).json()
    assert view["kind"] == "incident" and view["flow"] == "devops.loop.incident-handler"
    assert view["state"] == "PAUSED" and view["decision"]["verdict"] == "ROLLBACK"
    assert view["routing"]["route"] == "escalate" and view["routing"]["escalate"] is True
    incident = view["incident"]
    assert incident["status"] == "open" and incident["severity"] == "CRITICAL"
    assert incident["alertname"] == "DemoServiceOutOfMemory" and len(incident["alerts"]) == 1
    assert view["deployment"]["status"] == "awaiting approval"
    row = console.runtime.store.deployments.for_execution(execution_id)
    assert row["source"] == "alertmanager" and row["incident_status"] == "open"
    events = [e["event"] for e in console.runtime.store.audit.trail(limit=50)]
    assert "incident.opened" in events and "incident.escalated" in events

    # the token that posted the alert ("api", an approver) launched the run: it cannot approve alone
    own = console.client.post(
        f"/api/approvals/{approval['id']}/decision", json={"decision": "approve"}, headers=AUTH
    )
    assert own.status_code == 403 and "you launched this run" in own.json()["error"], own.text
    # another approver decides through the API: neither the requester nor the one who posted it
    decided = console.client.post(
        f"/api/approvals/{approval['id']}/decision",
        json={"decision": "approve"},
        headers={"Authorization": f"Bearer {ONCALL}"},
    )
    assert decided.status_code == 200, decided.text
    console.rolled_back()
    done = console.wait(execution_id)
    assert done.state == State.SUCCESS
    assert console.runtime.store.deployments.for_execution(execution_id)["status"] == "rolled back"

    resolved = post(console, delivery(alert(starts=console.onset, ends=time.time())))
    assert resolved.status_code == 200
    assert resolved.json()["alerts"][0]["status"] == "resolved"
    view = console.client.get(f"/api/executions/{execution_id}", headers=AUTH).json()
    assert view["incident"]["status"] == "resolved" and view["incident"]["resolved_at"]
    row = console.runtime.store.deployments.for_execution(execution_id)
    assert row["incident_status"] == "resolved" and "resolved" in row["note"]
    [listed] = [r for r in console.runtime.store.deployments.list() if r["execution_id"] == execution_id]
    assert listed["incident_status"] == "resolved"
    assert console.incident_runs() == 1


def test_retries_and_concurrent_deliveries_of_one_alert_start_one_run(console):
    body = delivery(alert(starts=console.onset))
    first = post(console, body)
    assert first.status_code == 202
    execution_id = first.json()["execution_id"]
    for _ in range(2):  # Alertmanager's retries
        again = post(console, body)
        assert again.status_code == 200 and again.json()["execution_id"] == execution_id
        assert again.json()["alerts"][0]["status"] == DUPLICATE

    # the same delivery of another alert, arriving six times at once
    other = delivery(alert("ffffeeeeddddcccc", starts=console.onset + 1, name="DemoServiceErrors"))
    results: list = []
    barrier = threading.Barrier(6)

    def deliver() -> None:
        barrier.wait()
        results.append(console.runtime.inbound.receive_alerts(json.loads(json.dumps(other)))[0])

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(r.status for r in results) == [DUPLICATE] * 5 + [LAUNCHED]
    assert len({r.execution_id for r in results}) == 1  # the duplicates name the run the first started
    assert console.incident_runs() == 2
    console.wait(execution_id)


def test_an_alert_of_an_open_incident_is_attached_and_the_incident_resolves_with_its_last_alert(console):
    first = post(console, delivery(alert("0000000000000001", starts=console.onset)))
    execution_id = first.json()["execution_id"]
    # Alertmanager re-sends the whole group when a new alert joins it
    both = delivery(
        alert("0000000000000001", starts=console.onset),
        alert("0000000000000002", starts=console.onset + 2, instance="127.0.0.1:2"),
    )
    answer = post(console, both)
    assert answer.status_code == 200, answer.text  # nothing new started
    statuses = [a["status"] for a in answer.json()["alerts"]]
    assert statuses == ["duplicate", "attached"]
    assert answer.json()["execution_ids"] == [execution_id]
    incident = console.runtime.store.incidents.for_execution(execution_id)
    assert incident["status"] == "open" and len(incident["alerts"]) == 2

    one = post(console, delivery(alert("0000000000000001", starts=console.onset, ends=time.time())))
    assert "stays open (1 alert(s) still firing)" in one.json()["alerts"][0]["reason"]
    assert console.runtime.store.incidents.for_execution(execution_id)["status"] == "open"
    last = post(
        console,
        delivery(
            alert("0000000000000002", starts=console.onset + 2, ends=time.time(), instance="127.0.0.1:2")
        ),
    )
    assert "resolved: none of its alerts fires" in last.json()["alerts"][0]["reason"]
    assert console.runtime.store.incidents.for_execution(execution_id)["status"] == "resolved"
    # the same alert firing again later is a new incident, and a new run
    again = post(console, delivery(alert("0000000000000001", starts=time.time() - 1)))
    assert again.status_code == 202 and again.json()["execution_id"] != execution_id
    assert console.incident_runs() == 2
    console.wait(execution_id)


def test_low_runs_alone_medium_needs_a_human_and_only_high_or_critical_escalate(console):
    """On the same leak: LOW leaves the plan as the policy made it (the rollback still waits for an
    approval: nothing needing one runs without it), MEDIUM sends every action that changes the
    service to a human, neither escalates."""
    low = post(console, delivery(alert("1111111111111111", starts=console.onset, severity="info")))
    medium = post(
        console,
        delivery(alert("2222222222222222", starts=console.onset, severity="warning", name="Other")),
    )
    for answer, route in ((low, "auto"), (medium, "approval")):
        execution_id = answer.json()["execution_id"]
        execution = console.wait(execution_id)
        assert execution.state == State.PAUSED
        routing = execution.task_run("decide").outputs["routing"]
        assert routing["route"] == route and routing["escalate"] is False
        assert not [e for e in console.runtime.engine.execution_logs(execution_id) if e.level == "ERROR"]
        approval = console.runtime.approvals.for_execution(execution_id)
        assert "rollback_deployment" in [a["name"] for a in approval["actions"]]


def test_an_incident_is_judged_against_the_service_s_latest_deployment(console):
    """The console knows the deploy that preceded the alert: the incident's window starts there
    (its baseline before it) and its rollback target is that deploy's previous version."""
    announced = console.client.post(
        "/api/deployments",
        json={
            "service": "demo-service",
            "version": "v1.2.0-leak",
            "previous_version": "v1.0.0",
            "deployed_at": json.loads(json.dumps(delivery(alert(starts=console.onset - 3))))["alerts"][0][
                "startsAt"
            ],
            "deployed_by": "alice",
            "deployment_id": "d-leak-1",
            "source": "demo-deployer",
        },
        headers=AUTH,
    )
    assert announced.status_code == 202, announced.text
    console.wait(announced.json()["execution_id"])
    answer = post(console, delivery(alert(starts=console.onset + 1)))
    execution_id = answer.json()["execution_id"]
    execution = console.wait(execution_id)
    deployment = console.runtime.engine.snapshot_document(execution_id)["deployment"]
    assert (deployment["id"], deployment["version"], deployment["previous_version"]) == (
        "d-leak-1",
        "v1.2.0-leak",
        "v1.0.0",
    )
    notes = execution.task_run("collect").outputs["verification"]["notes"]
    assert "judged against the deploy of v1.2.0-leak" in notes[0]
    rollback = next(
        a
        for a in console.runtime.approvals.for_execution(execution_id)["actions"]
        if a["name"] == "rollback_deployment"
    )
    assert rollback["params"]["to_version"] == "v1.0.0"


def test_an_alert_for_a_service_without_sources_is_422_and_starts_nothing(console):
    answer = post(console, delivery(alert(starts=console.onset, service="payment-service")))
    assert answer.status_code == 422
    assert "'payment-service' has no telemetry source configured" in answer.json()["error"]
    unnamed = post(console, delivery(alert(starts=console.onset, service=None)))
    assert unnamed.status_code == 200 and unnamed.json()["alerts"][0]["status"] == "ignored"
    assert "no service label" in unnamed.json()["alerts"][0]["reason"]
    assert console.incident_runs() == 0


def test_a_run_that_cannot_start_is_a_503_and_the_retry_starts_it(console, monkeypatch):
    engine = console.runtime.engine
    real = (
        engine.launch_incident_in
    )  # on the embedded engine the run is made in the inbound service's transaction
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 1:
            raise BackendUnavailable("the engine is restarting")
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "launch_incident_in", flaky)
    body = delivery(alert(starts=console.onset))
    refused = post(console, body)
    assert refused.status_code == 503 and refused.headers["retry-after"] == "5"
    assert "could not start the run: the engine is restarting" in refused.json()["error"]
    assert console.incident_runs() == 0
    # the delivery, the incident and the run commit together: nothing of the failed attempt is kept
    assert console.runtime.store.incidents.list(service="demo-service") == []
    assert console.runtime.store.deliveries.list(kind="alert") == []
    retried = post(console, body)
    assert retried.status_code == 202, retried.text
    statuses = sorted(i["status"] for i in console.runtime.store.incidents.list(service="demo-service"))
    assert statuses == ["open"]
    console.wait(retried.json()["execution_id"])


def test_the_approver_cannot_be_alertmanager_itself(console):
    execution_id = post(console, delivery(alert(starts=console.onset))).json()["execution_id"]
    console.wait(execution_id)
    approval = console.runtime.approvals.for_execution(execution_id)
    with pytest.raises(Exception, match="own"):
        console.runtime.approvals.vote(
            approval["id"], Identity("alertmanager", Role.APPROVER, source="password"), True, "me"
        )
