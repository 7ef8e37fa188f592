"""The loop on a real running service, end to end: the demo service deployed through its deployer
(real processes, real load), watched through a real Prometheus, judged by the embedded engine
launched with ``launch_deployment`` from the deployer's record, acted on through the demo-service
executor after a human approved through the approval service, and its recovery measured.

(a) v1.2.0-leak: ROLLBACK before the window's end → bob approves → the deployer runs v1.0.0 again
    → recovery measured → outcome resolved, the decision held;
(b) a healthy version: CONTINUE at the window's end, nothing changed, the service stays healthy;
(c) the same leak with an executor that fails (a wrong deployer token): "rollback failed" with the
    reason, never "rolled back"; the leak goes on, measured.

The three lanes run side by side (each its own stack, Prometheus and engine), under a minute in all:
baseline 8 s, verification 20 s, post-action 8 s, 1 s scrapes (the leak is decided well inside the
20 s; a longer window would only make the healthy lane wait longer for the same verdict).
"""

from __future__ import annotations

import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from console.loop import revisions
from tests.live.conftest import require_prometheus
from tests.live.harness import LiveLane, Windows, task_outputs

pytestmark = [pytest.mark.live, pytest.mark.slow]

WRONG_TOKEN = "not-the-deployer-token-0123456789"
WINDOWS = Windows(baseline_s=8.0, verify_s=20.0, post_action_s=8.0)


def _leak(lane: LiveLane, out: dict[str, Any]) -> None:
    lane.wait_steady()
    out["record"] = lane.deploy("v1.2.0-leak")
    out["execution_id"] = execution_id = lane.launch(out["record"])
    out["paused"] = lane.wait(execution_id, timeout=60)
    out["approval"] = lane.runtime.approvals.for_execution(execution_id)
    out["decision"] = lane.approve(execution_id, "bob")
    out["done"] = lane.finish(execution_id)


def _healthy(lane: LiveLane, out: dict[str, Any]) -> None:
    lane.wait_steady()
    out["record"] = lane.deploy("v1.0.1")
    out["execution_id"] = lane.launch(out["record"])
    out["done"] = lane.finish(out["execution_id"])


def _finish(lane: LiveLane, out: dict[str, Any]) -> dict[str, Any]:
    execution_id = out.get("execution_id")
    out["status"] = lane.stack.status()
    out["deployments"] = lane.stack.deployments()
    out["serving"] = lane.serving()
    if execution_id:
        out["row"] = lane.runtime.store.deployments.for_execution(execution_id)
        out["logs"] = lane.logs(execution_id)
    out["records"] = lane.runtime.store.outcomes.records()
    return out


def _leak_known_good(lane: LiveLane, out: dict[str, Any]) -> None:
    """The leak where the executor cannot reach the deployer: v1.0.0 is known-good because an
    operator marked it so (the loop cannot read the deployer to learn it), so the rollback is planned."""
    marked = revisions.event(
        "demo-service", "v1.0.0", revisions.MARKED_GOOD, "2026-01-01T00:00:00Z", "ran for a year",
        source="operator", actor="carol",
    )  # fmt: skip
    with lane.runtime.store.db.write() as conn:
        lane.runtime.store.revisions.add_in(conn, [marked])
    _leak(lane, out)


LANES = {
    "leak": (_leak, None),
    "healthy": (_healthy, None),
    "failing": (_leak_known_good, WRONG_TOKEN),
}


@pytest.fixture(scope="session")
def lanes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The three lanes' results (every process is stopped before the tests read them). Session
    scope: xdist may interleave another module's test between these three, and a module fixture
    would then run every lane again (72 s more in the suite)."""
    require_prometheus()
    base = tmp_path_factory.mktemp("live-loop")

    def run(name: str) -> dict[str, Any]:
        body, token = LANES[name]
        lane = None
        out: dict[str, Any] = {}
        try:
            lane = LiveLane.start(
                Path(base) / name, token_env=f"LIVE_TOKEN_{name.upper()}", token=token, windows=WINDOWS
            )
            body(lane, out)
            return _finish(lane, out)
        except BaseException:
            out["error"] = traceback.format_exc()
            if lane is not None:
                out["logs"] = lane.every_log()
            return out
        finally:
            if lane is not None:
                lane.stop()

    with ThreadPoolExecutor(max_workers=len(LANES)) as pool:
        futures = {name: pool.submit(run, name) for name in LANES}
        return {name: future.result() for name, future in futures.items()}


def _lane(lanes: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    out = lanes[name]
    assert "error" not in out, f"{out['error']}\n--- execution log ---\n{out.get('logs', '')}"
    return out


def test_a_leak_is_rolled_back_early_after_approval_and_its_recovery_measured(lanes):
    out = _lane(lanes, "leak")
    paused, done = out["paused"], out["done"]
    # decided before the verification window's end, on evidence that holds at any stopping time
    assert paused.state.value == "PAUSED", out["logs"]
    collect = task_outputs(paused, "collect")["verification"]
    assert collect["ended"] == "early" and collect["elapsed_s"] < WINDOWS.verify_s, collect
    assert f"conclusive after {collect['samples_after']} real samples since the deploy" in collect["reason"]
    assert set(collect["links"]) >= {"error_rate", "memory_utilization"}
    decision = task_outputs(paused, "summarize")["decision"]
    assert decision["verdict"] == "ROLLBACK"
    # the request came from the deployer's record (alice); bob, another identity, approved it
    approval = out["approval"]
    assert approval["requested_by"] == "alice" and approval["status"] == "pending"
    assert out["decision"].status == "approved" and out["decision"].resumed
    # the deployer ran the previous version again, in the loop's name
    assert done.state.value == "SUCCESS", out["logs"]
    execute = task_outputs(done, "execute")
    rollback = next(a for a in execute["executed"] if a["name"] == "rollback_deployment")
    assert rollback["status"] == "done" and rollback["label"] == "rolled back", rollback
    assert rollback["executor"] == "demo-service" and rollback["simulated"] is False
    assert rollback["mode"] == "approved"
    assert execute["deployment_status"] == "rolled back" and execute["simulated"] is False
    assert out["status"]["version"] == "v1.0.0" and out["serving"] == "v1.0.0"
    latest = out["deployments"][0]
    assert latest["kind"] == "rollback" and latest["version"] == "v1.0.0"
    assert latest["by"] == "devops-loop (approved by bob)"
    assert out["row"]["status"] == "rolled back"
    # recovery measured on Prometheus: the post-action window against the pre-deploy baseline
    measured = task_outputs(done, "verify")["measured"]
    assert measured["status"] == "resolved", measured["reason"]
    assert measured["source"] == "prometheus" and measured["simulated"] is False
    assert measured["metrics"]["error_rate"]["classification"] == "Pass"
    assert measured["metrics"]["memory_utilization"]["classification"] == "Pass"
    [record] = out["records"]
    assert record["outcome"] == {
        "deployment_status": "rolled back",
        "measured_status": "resolved",
        "held": True,
        "simulated": False,
        "category": "out_of_memory",
    }
    assert record["expected"] is None and record["measured"] == measured


def test_a_healthy_deploy_continues_at_the_window_end_with_nothing_changed(lanes):
    out = _lane(lanes, "healthy")
    done = out["done"]
    assert done.state.value == "SUCCESS", out["logs"]
    collect = task_outputs(done, "collect")["verification"]
    assert collect["ended"] == "window end" and collect["elapsed_s"] == WINDOWS.verify_s, collect
    assert task_outputs(done, "summarize")["decision"]["verdict"] == "CONTINUE"
    assert task_outputs(done, "decide")["plan"]["needs_approval"] is False
    execute = task_outputs(done, "execute")
    assert {a["name"] for a in execute["executed"]} <= {"notify_only", "collect_diagnostics"}
    assert all(a["status"] == "done" for a in execute["executed"])
    assert execute["deployment_status"] == "healthy" and out["row"]["status"] == "healthy"
    assert [d["kind"] for d in out["deployments"]][:1] == ["deploy"]  # nothing after the deploy
    assert out["serving"] == "v1.0.1"
    measured = task_outputs(done, "verify")["measured"]
    assert measured["status"] == "resolved", measured["reason"]
    [record] = out["records"]
    assert record["outcome"]["held"] is True and record["outcome"]["measured_status"] == "resolved"


def test_a_failing_executor_shows_rollback_failed_with_its_reason(lanes):
    out = _lane(lanes, "failing")
    done = out["done"]
    assert done.state.value == "SUCCESS", out["logs"]
    execute = task_outputs(done, "execute")
    rollback = next(a for a in execute["executed"] if a["name"] == "rollback_deployment")
    assert rollback["status"] == "failed"
    assert rollback["label"].startswith("rollback failed: deployer answered 401"), rollback["label"]
    assert "LIVE_TOKEN_FAILING" in rollback["detail"] and WRONG_TOKEN not in str(execute)
    assert execute["deployment_status"] == "rollback failed"
    assert out["row"]["status"] == "rollback failed"
    assert "rolled back" not in out["logs"].replace("rollback failed", "")
    assert out["serving"] == "v1.2.0-leak" and out["deployments"][0]["kind"] == "deploy"
    measured = task_outputs(done, "verify")["measured"]
    assert measured["status"] == "not_resolved", measured["reason"]
    [record] = out["records"]
    assert record["outcome"]["deployment_status"] == "rollback failed"
    assert record["outcome"]["held"] is True  # the call was right; the rollback did not happen
