"""The incident path's pure parts: the severity routing (stricter than the policy, never looser), the
incident input checked (from the console, Kestra's inputs, or Alertmanager's own delivery), the
window it is judged on (the suspect deployment, else the alert's start), and the read model's
"suspect deployment" lookup."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from console.domain.models import format_time
from console.loop import incidents
from console.settings import Settings
from console.storage import Store
from tests.payloads.payloads import alertmanager_payload

ROLLBACK = {"name": "rollback_deployment", "risk": "HIGH", "reason": "leak", "params": {}}
RESTART = {"name": "restart_pod", "risk": "LOW", "reason": "stuck", "params": {}}
DIAGNOSTICS = {"name": "collect_diagnostics", "risk": "LOW", "reason": "dumps", "params": {}}
NOTIFY = {"name": "notify_only", "risk": "LOW", "reason": "tell", "params": {}}
FAILOVER = {"name": "failover_database", "risk": "LOW", "reason": "a document that lies", "params": {}}


def plan(auto: list, approval: list) -> dict:
    return {
        "auto": auto,
        "approval": approval,
        "required_approvals": 1 if approval else 0,
        "needs_approval": bool(approval),
        "threshold": 0.8,
        "notes": [],
    }


def test_low_keeps_the_policy_s_plan_medium_and_above_send_every_change_to_a_human():
    given = plan([RESTART, DIAGNOSTICS, NOTIFY], [ROLLBACK])
    low, routing = incidents.route(given, "LOW")
    assert [a["name"] for a in low["auto"]] == ["restart_pod", "collect_diagnostics", "notify_only"]
    assert [a["name"] for a in low["approval"]] == ["rollback_deployment"] and low["needs_approval"]
    assert routing == {
        "severity": "LOW",
        "route": "auto",
        "escalate": False,
        "moved_to_approval": [],
        "reason": "LOW: the automatic actions run; anything needing an approval still waits for one",
    }
    for severity, route, escalate in (("MEDIUM", "approval", False), ("HIGH", "escalate", True),
                                      ("CRITICAL", "escalate", True)):  # fmt: skip
        routed, routing = incidents.route(given, severity)
        assert [a["name"] for a in routed["auto"]] == ["collect_diagnostics", "notify_only"]  # change nothing
        assert [a["name"] for a in routed["approval"]] == ["rollback_deployment", "restart_pod"]
        assert routed["needs_approval"] and routed["required_approvals"] == 1
        assert routing["route"] == route and routing["escalate"] is escalate
        assert routing["moved_to_approval"] == ["restart_pod"]
        assert any("restart_pod sent to a human" in n for n in routed["notes"])
    # nothing that changes the service: nothing to approve, whatever the severity
    quiet, routing = incidents.route(plan([NOTIFY], []), "CRITICAL")
    assert not quiet["needs_approval"] and quiet["required_approvals"] == 0 and routing["escalate"]
    # the registry rates the action, not the document: a "LOW" failover still needs two approvers
    strict, _ = incidents.route(plan([], [FAILOVER]), "MEDIUM", critical_approvers=2)
    assert strict["required_approvals"] == 2
    with pytest.raises(incidents.IncidentError, match=r"incident\.severity"):
        incidents.route(given, "SEVERE")


def test_the_incident_input_is_checked_and_alertmanager_s_delivery_read_when_no_service_is_named():
    checked = incidents.incident_input(
        {
            "incident": {
                "service": " demo-service ",
                "severity": "high",
                "starts_at": "2026-11-29T17:00:05.5+00:00",
                "labels": {"alertname": "X", "version": "v2"},
                "deployment": {"version": None, "deployed_at": None},
            }
        }
    )
    assert checked["service"] == "demo-service" and checked["severity"] == "HIGH"
    assert checked["starts_at"] == "2026-11-29T17:00:05.500000Z" and checked["alertname"] == "X"
    assert checked["deployment"] is None  # Kestra's absent inputs: no suspect
    for bad, message in (
        ({"severity": "HIGH", "starts_at": "2026-11-29T17:00:00Z"}, "incident.service: missing"),
        ({"service": "s", "severity": "HIGH", "starts_at": "soon"}, "incident.starts_at: 'soon' is not"),
        ({"service": "s", "severity": "P1", "starts_at": "2026-11-29T17:00:00Z"}, "incident.severity"),
    ):
        with pytest.raises(incidents.IncidentError, match=message):
            incidents.incident_input({"incident": bad})
    straight = incidents.incident_input(
        {"incident": {"service": None}, "alertmanager": alertmanager_payload()}, Settings()
    )
    assert (straight["service"], straight["severity"], straight["alertname"]) == (
        "demo-service",
        "CRITICAL",
        "HighErrorRate",
    )
    with pytest.raises(incidents.IncidentError, match="alertmanager: version"):
        incidents.incident_input({"alertmanager": {"alerts": []}})


def test_the_window_is_the_suspect_deployment_s_or_the_alert_s_start():
    alone = incidents.incident_input(
        {
            "incident": {
                "id": "inc-1",
                "service": "demo-service",
                "severity": "HIGH",
                "starts_at": "2026-11-29T17:00:05Z",
                "labels": {"version": "v1.2.0-leak"},
            }
        }
    )
    assert incidents.incident_deployment(alone, "live-demo") == {
        "id": "inc-1",
        "service": "demo-service",
        "version": "v1.2.0-leak",
        "previous_version": None,
        "environment": "live-demo",
        "deployed_at": "2026-11-29T17:00:05Z",
        "deployed_by": "alertmanager",
    }
    suspect = {"id": "d-1", "version": "v1.2.0", "previous_version": "v1.1.0",
               "deployed_at": "2026-11-29T16:59:50Z", "deployed_by": "alice"}  # fmt: skip
    after_deploy = incidents.incident_input({"incident": {**alone, "deployment": suspect}})
    dep = incidents.incident_deployment(after_deploy)
    assert (dep["id"], dep["version"], dep["previous_version"], dep["deployed_at"], dep["deployed_by"]) == (
        "d-1",
        "v1.2.0",
        "v1.1.0",
        "2026-11-29T16:59:50Z",
        "alice",
    )
    assert "judged against the deploy of v1.2.0" in incidents.window_note(after_deploy, dep)
    line = incidents.escalation_line(alone, {"severity": "HIGH"}, "memory at 95 %")
    assert line.startswith("ESCALATION HIGH: incident on demo-service: memory at 95 % — paging on-call")


def test_the_suspect_is_the_latest_real_deployment_still_running_within_the_lookback(settings):
    store = Store(settings.db_path)
    starts = datetime(2026, 11, 29, 17, 0, tzinfo=UTC)

    def row(i: int, *, minutes: float, source: str = "deployer", scenario: str | None = None,
            running: str | None = None) -> None:  # fmt: skip
        with store.db.write() as conn:
            store.deployments.insert_in(
                conn, deployment_id=f"r{i}", ref=f"d-{i}", service="demo-service", version=f"v{i}",
                previous_version=f"v{i - 1}", environment="live-demo",
                deployed_at=format_time(starts - timedelta(minutes=minutes)), deployed_by="alice",
                execution_id=f"E{i}", scenario=scenario, status=incidents_status(), engine="embedded",
                source=source, created_at=format_time(starts - timedelta(minutes=minutes)),
            )  # fmt: skip
            if running:
                store.deployments.update_in(conn, f"E{i}", running_version=running)

    at = format_time(starts)
    assert store.deployments.suspect("demo-service", at, 3600) is None
    row(1, minutes=90)  # too old
    assert store.deployments.suspect("demo-service", at, 3600) is None
    row(2, minutes=20)
    row(3, minutes=10, source="scenario", scenario="memory-leak")  # a demo, not a deploy
    row(4, minutes=5, source="alertmanager")  # an incident run
    found = store.deployments.suspect("demo-service", at, 3600)
    assert found is not None and (found["id"], found["version"], found["previous_version"]) == (
        "d-2",
        "v2",
        "v1",
    )
    assert store.deployments.suspect("demo-service", at, 600) is None  # outside a 10-minute lookback
    row(5, minutes=2, running="v4")  # rolled back since: what runs is not that deploy
    assert store.deployments.suspect("demo-service", at, 3600) is None
    assert store.deployments.suspect("other", at, 3600) is None
    store.close()


def incidents_status():
    from console.domain.vocabulary import DeploymentStatus

    return DeploymentStatus.HEALTHY
