"""What arrives cannot rot the inbound service or flood the engine: an alert from year 1 is a 400 naming the
field and keeps nothing (the real alert after it starts its run); an incident left without a run
gets it; a delivery of 1,000 alerts is taken a capped number at a time within its caller's budget,
the rest answered 503 so Alertmanager sends them again, and a deployment posted after it is not
starved; a deployment announced in the future holds no worker while it waits."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from console.domain.executions import State
from tests.api.inbound_support import alert, delivery
from tests.faults.support import DEPLOYER, HEALTHY, SLOW, check_invariants, start_lab, wait_for

pytestmark = pytest.mark.faults


def test_a_year_one_alert_is_400_and_keeps_nothing_then_the_real_alert_starts_its_run(tmp_path: Path) -> None:
    lab = start_lab(tmp_path)
    try:
        zombie = alert(starts=time.time(), severity="critical")
        zombie["startsAt"] = "0001-01-01T00:00:00Z"
        answer = lab.alerts(delivery(zombie))
        assert answer.status_code == 400
        assert (
            answer.json()["error"].startswith("alerts[0].startsAt:")
            and "days before now" in answer.json()["error"]
        )
        far = alert(starts=time.time(), severity="critical", fingerprint="aa")
        far["startsAt"] = "9999-12-31T23:59:59Z"
        assert lab.alerts(delivery(far)).status_code == 400
        assert lab.store.deliveries.list(kind="alert") == [] and lab.store.incidents.list() == []
        real = lab.alerts(delivery(alert(starts=time.time() - 5, severity="critical")))
        assert real.status_code == 202, real.text
        [outcome] = real.json()["alerts"]
        assert outcome["status"] == "launched" and outcome["execution_id"]
        assert lab.decided(outcome["execution_id"]).state in (State.PAUSED, State.SUCCESS)
    finally:
        lab.close()
    check_invariants(lab.settings.db_path)


def test_an_incident_left_without_a_run_gets_its_run_from_the_next_alert(tmp_path: Path) -> None:
    lab = start_lab(tmp_path)
    try:
        # what a console of before could leave: an open incident whose run was never created
        lab.store.incidents.open_or_attach(
            service="demo-service", alert_key="DemoServiceOutOfMemory", fingerprint="0f",
            starts_at="2026-01-01T00:00:00Z", severity="CRITICAL",
        )  # fmt: skip
        answer = lab.alerts(delivery(alert(starts=time.time() - 5, severity="critical")))
        assert answer.status_code == 202, answer.text
        [outcome] = answer.json()["alerts"]
        assert outcome["status"] == "launched", outcome  # not "attached" to a run that does not exist
        [incident] = lab.store.incidents.list(status="open")
        assert incident["execution_id"] == outcome["execution_id"]
        lab.decided(outcome["execution_id"])
    finally:
        lab.close()
    check_invariants(lab.settings.db_path)


def _flood(count: int, *, prefix: str = "Flood", service: str = SLOW, starts: float | None = None) -> dict:
    """``count`` alerts of different names in one delivery, of batch-service by default: each
    incident's run watches a ten-minute window (it stays in progress through the test)."""
    starts = time.time() - 1 if starts is None else starts
    alerts = [
        alert(f"{i:04x}", starts=starts, name=f"{prefix}{i}", service=service, severity="warning")
        for i in range(count)
    ]
    return delivery(*alerts, group_key=f'{{}}:{{alertname=~"{prefix}.*"}}')


def test_a_thousand_alerts_are_taken_a_cap_at_a_time_and_a_deployment_is_not_starved(tmp_path: Path) -> None:
    lab = start_lab(tmp_path, alerts_per_delivery=25, intake_budget=40, max_workers=1)
    try:
        flood = _flood(1000)
        first = lab.alerts(flood)
        assert first.status_code == 503 and first.headers["retry-after"] == "5", first.text
        body = first.json()
        statuses = [a["status"] for a in body["alerts"]]
        assert statuses.count("launched") == 25 and statuses.count("deferred") == 975  # the cap
        assert body["deferred"] == 975
        assert all(
            "CONSOLE_ALERTS_PER_DELIVERY" in a["reason"] for a in body["alerts"] if a["status"] == "deferred"
        )
        # Alertmanager sends it again: the 25 are duplicates; 15 more fit the token's budget of 40 runs
        # in progress; the rest wait for runs to end
        again = lab.alerts(flood)
        assert again.status_code == 503
        seen = [a["status"] for a in again.json()["alerts"]]
        assert (seen.count("duplicate"), seen.count("launched"), seen.count("deferred")) == (25, 15, 960)
        assert "budget" in next(a["reason"] for a in again.json()["alerts"] if a["status"] == "deferred")
        # another caller is not held by that backlog: its deployment is admitted, and decided while
        # the flood's 40 runs are in progress (one worker: they wait without holding it)
        deployment = lab.deploy("v1.2.0-leak", leaky=True)
        assert deployment.status_code == 202, deployment.text
        assert lab.decided(deployment.json()["execution_id"]).state == State.PAUSED
        runs = lab.engine.search_executions(flow_id="incident-handler", size=100)
        assert runs.total == 40 and all(not e.state.terminal for e in runs.items)
    finally:
        lab.close()
    check_invariants(lab.settings.db_path)


def test_every_alert_of_a_delivery_is_handled_across_alertmanagers_retries(tmp_path: Path) -> None:
    lab = start_lab(tmp_path, alerts_per_delivery=4, intake_budget=50)
    try:
        body = _flood(10, prefix="Small", service=HEALTHY, starts=time.time() - 60)  # decided at once
        answers = []
        for _ in range(5):  # Alertmanager retries a 5xx until the delivery is taken whole
            answer = lab.alerts(body)
            answers.append(answer.status_code)
            if answer.status_code != 503:
                break
        assert answers == [503, 503, 202]
        runs = lab.engine.search_executions(flow_id="incident-handler", size=100).items
        assert len(runs) == 10 and len({r.labels["incident"] for r in runs}) == 10
        for execution in runs:
            lab.decided(execution.id)
    finally:
        lab.close()
    check_invariants(lab.settings.db_path)


def test_a_deployment_announced_in_the_future_holds_no_worker_while_it_waits(tmp_path: Path) -> None:
    lab = start_lab(tmp_path, max_workers=1)
    try:
        future = lab.deploy("v2.0.0", leaky=False, at=time.time() + 299)
        assert future.status_code == 202, future.text
        waiting = future.json()["execution_id"]
        wait_for("the future deploy to wait", lambda: lab.store.queue.get(waiting) is not None
                 and lab.store.queue.get(waiting).due_at > time.time() + 250)  # fmt: skip
        api = lab.client.get(f"/api/executions/{waiting}", headers=DEPLOYER).json()
        assert api["queue"]["state"] == "waiting" and "ahead" in api["queue"]["reason"]
        assert api["deployment"]["progress"].startswith("waiting until")
        # with one worker, a leak announced after it is decided while it waits
        leak = lab.deploy("v1.2.0-leak", leaky=True).json()["execution_id"]
        assert lab.decided(leak).state == State.PAUSED
        assert lab.execution(waiting).state == State.RUNNING and waiting not in lab.engine.scheduler.busy()
        # killed while it waits: it never wakes
        lab.engine.kill(waiting, by="test")
        assert lab.store.queue.get(waiting) is None
    finally:
        lab.close()
    check_invariants(lab.settings.db_path)
