"""Prometheus down when a window must be judged: the run waits for it within the grace
(``LIVE_TELEMETRY_GRACE_S``), then ESCALATEs "telemetry lost since T" with a notification; data
that returns in time is judged as usual. Nothing is FAILED for it."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from console.domain.executions import State
from console.settings import Secret
from tests.faults.support import check_invariants, start_lab, wait_for
from tests.notify.receiver import Receiver

pytestmark = pytest.mark.faults


def test_prometheus_down_for_the_whole_window_escalates_with_the_time_it_was_lost(tmp_path: Path) -> None:
    with Receiver() as receiver:
        lab = start_lab(tmp_path, notify_webhook_url=Secret(receiver.url + "/hook"))
        try:
            lab.prometheus.failing = True
            lost_from = time.time()
            answer = lab.deploy("v1.2.0-leak", leaky=True)
            run = answer.json()["execution_id"]
            done = wait_for("the run to end", lambda: (e := lab.execution(run)).state.terminal and e, 60)
            assert done.state == State.SUCCESS, lab.engine.execution_logs(run)
            watched = done.task_run("collect").outputs["verification"]
            assert watched["ended"] == "telemetry lost"
            assert watched["reason"].startswith(f"telemetry lost since {watched['lost_since']}")
            assert "answered HTTP 503" in watched["reason"] or "503" in watched["reason"]
            decision = done.task_run("summarize").outputs["decision"]
            assert decision["verdict"] == "ESCALATE" and decision["actions"] == []
            row = lab.store.deployments.for_execution(run)
            assert row["status"] == "escalated" and row["verdict"] == "ESCALATE"
            assert row["note"].startswith("telemetry lost since")
            # the escalation is announced: an audit row the notifications follow, once
            events = [r["event"] for r in lab.store.audit.trail(subject=run)]
            assert events.count("deployment.escalated") == 1
            message = wait_for(
                "the notification", lambda: [r for r in receiver.received if r.path == "/hook"]
            )
            body = message[0].body
            assert body["kind"] == "escalated" and body["escalation"]["execution_id"] == run
            assert "telemetry lost since" in body["escalation"]["reason"]
            # it waited for the data for the grace, no more (the lost time is the first failure)
            lost_since = lab.store.deployments.for_execution(run)["note"].split("since ")[1][:20]
            assert lost_since >= time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(lost_from - 1))
        finally:
            lab.close()
    check_invariants(lab.settings.db_path)


def test_prometheus_back_within_the_grace_is_judged_as_usual(tmp_path: Path) -> None:
    lab = start_lab(tmp_path, live_telemetry_grace_s=60.0)
    try:
        lab.prometheus.failing = True
        answer = lab.deploy("v1.2.0-leak", leaky=True)
        run = answer.json()["execution_id"]
        # past the window's end, the look waits for telemetry instead of failing
        wait_for(
            "the run to wait for its telemetry",
            lambda: (q := lab.store.queue.get(run)) is not None and "telemetry to come back" in q.reason,
        )
        assert lab.execution(run).state == State.RUNNING
        lab.prometheus.failing = False
        done = lab.decided(run)
        assert done.state == State.PAUSED  # the leak: ROLLBACK, waiting for a human
        watched = done.task_run("collect").outputs["verification"]
        assert watched["ended"] == "window end"
        assert done.task_run("summarize").outputs["decision"]["verdict"] == "ROLLBACK"
        assert lab.store.deployments.for_execution(run)["status"] == "awaiting approval"
    finally:
        lab.close()
    check_invariants(lab.settings.db_path)
