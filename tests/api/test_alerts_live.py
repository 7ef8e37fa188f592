"""The alert path end to end on real parts (tests/api/alert_stack.py): the demo service under load,
Debian's Prometheus with livestack/prometheus/alerts.yml, Debian's Alertmanager routing to the console's
``/api/alerts`` with a bearer token, and the console as a real server. A leaky deploy makes the rule
fire; Alertmanager posts; an incident run starts, escalates (critical) and waits for an approval;
bob, a signed-in approver, approves through the API (a chat-ops token acting for him); the
demo-service executor rolls the service back; the alert resolves and the incident is marked
resolved. About 40 s: windows of seconds, 1 s scrapes and evaluations, Alertmanager regrouping every
second."""

from __future__ import annotations

import pytest

from tests.api.alert_stack import ALERTMANAGER_TOKEN, CHATOPS_TOKEN, AlertStack, wait_for
from tests.telemetry.conftest import require

pytestmark = [pytest.mark.live, pytest.mark.slow]


def test_a_leak_fires_the_alert_the_incident_run_waits_is_approved_rolls_back_and_resolves(tmp_path):
    require("prometheus")
    require("prometheus-alertmanager")
    stack = AlertStack.start(tmp_path)
    try:
        stack.wait_scraped()
        stack.mark_known_good("v1.0.0")
        stack.demo.deploy("v1.2.0-leak", by="alice")
        store = stack.store()
        try:
            incident = wait_for(
                "the incident", lambda: next(iter(store.incidents.list(service="demo-service")), None), 60
            )
            assert incident["alert_key"] == "DemoServiceOutOfMemory" and incident["severity"] == "CRITICAL"
            execution_id = wait_for(
                "its run", lambda: store.incidents.get(incident["id"])["execution_id"], 20
            )
            wait_for("the approval request", lambda: store.approvals.for_execution(execution_id), 60)
            [approval] = [
                a
                for a in stack.api("GET", "/api/approvals").json()["approvals"]
                if a["execution_id"] == execution_id
            ]
            view = stack.api("GET", f"/api/executions/{execution_id}").json()
            assert view["kind"] == "incident" and view["state"] == "PAUSED", view
            assert view["decision"]["verdict"] == "ROLLBACK" and view["routing"]["route"] == "escalate"
            assert view["incident"]["status"] == "open" and view["deployment"]["version"] == "v1.2.0-leak"
            assert approval["requested_by"] == "alertmanager"
            assert "rollback_deployment" in [a["name"] for a in approval["actions"]]

            # a person nobody configured cannot approve; bob, a configured approver, can
            assert stack.decide(approval["id"], "mallory").status_code == 403
            decided = stack.decide(approval["id"], "bob")
            assert decided.status_code == 200, decided.text
            assert decided.json()["actor"] == "bob" and decided.json()["status"] == "approved"

            wait_for("the previous version serving", lambda: stack.demo.status()["version"] == "v1.0.0", 30)
            resolved = wait_for(
                "the incident resolved",
                lambda: (i := store.incidents.get(incident["id"]))["status"] == "resolved" and i,
                60,
            )
            assert all(a["status"] == "resolved" for a in resolved["alerts"])
            wait_for(
                "the run's end",
                lambda: store.executions.get(execution_id).state.value in ("SUCCESS", "FAILED"),
                60,
            )
            done = stack.api("GET", f"/api/executions/{execution_id}").json()
            assert done["state"] == "SUCCESS", done
            assert done["deployment"]["status"] == "rolled back" and done["incident"]["status"] == "resolved"
            rollback = next(a for a in done["outcome"]["executed"] if a["name"] == "rollback_deployment")
            assert rollback["status"] == "done" and rollback["simulated"] is False
            row = store.deployments.for_execution(execution_id)
            assert row["incident_status"] == "resolved" and row["source"] == "alertmanager"
            assert len(store.incidents.list(service="demo-service")) == 1  # one alert, one incident, one run
        finally:
            store.close()
        access = "API POST /api/alerts -> 202 (token env"  # Alertmanager's delivery, authenticated
        wait_for("the delivery's access line", lambda: access in stack.console.log_text(), 10)
        log = stack.console.log_text()
        assert ALERTMANAGER_TOKEN not in log and CHATOPS_TOKEN not in log
    finally:
        stack.stop()
