"""Acting on the world as it is now, on the live stack (the demo service and its deployer as real
processes, a real Prometheus, the embedded engine and its approval service), three lanes side by
side with short windows (baseline 8 s, verification 20 s, post-action 8 s, 1 s scrapes, 10 req/s):

- history: v1.5.0-crashloop is rejected (its outcome is never "resolved" while it crash-loops), then
  v1.3.0-slow is deployed with the crash loop as its announced previous version: the rollback goes
  to v1.0.0, the newest known-good version, never to the crash loop; verified resolved against
  v1.0.0's own healthy window;
- race: two runs on one leaky deploy. The first is approved with the deployer frozen past the
  executor's timeout: its rollback is "result unknown" (never "rollback failed"), then reconciled to
  done once the deployer acts, exactly once. The second is approved after another deploy: it is
  superseded, and the deployer's history gets nothing from it;
- crash: the console is SIGKILLed during the rollback call (the CLI's synchronous engine, the
  deployer frozen so the call is in flight); the deployer then acts; recovery reconciles it to done,
  never "rollback failed", exactly one rollback.

Every wait is on a condition (a state, a log line, a task's progress), never on a guess of speed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from console.access.approvals import Superseded
from console.access.auth import Identity, Role
from console.domain.executions import State
from console.loop import revisions
from tests.demo_service.test_live import wait_for
from tests.live.conftest import require_prometheus
from tests.live.harness import LiveLane, Windows, task_outputs

pytestmark = [pytest.mark.live, pytest.mark.safety, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]
WINDOWS = Windows(baseline_s=8.0, verify_s=20.0, post_action_s=8.0)
BOB = Identity("bob", Role.APPROVER, source="password")


@contextlib.contextmanager
def frozen(lane: LiveLane):
    """The deployer stopped (SIGSTOP): it accepts connections into its queue and answers nothing."""
    pid = lane.stack.proc.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def history(lane: LiveLane) -> dict[str, revisions.Revision]:
    return {r.version: r for r in revisions.revisions(lane.runtime.store.revisions.events("demo-service"))}


def row(lane: LiveLane, execution_id: str) -> dict[str, Any]:
    return lane.runtime.store.deployments.for_execution(execution_id) or {}


def forged(record: dict[str, Any], previous: str) -> dict[str, Any]:
    """The deployer's record as an announcement whose previous_version says something else."""
    return {**record, "previous_version": previous}


# -- the lanes ----------------------------------------------------------------------------------------


def _history_lane(lane: LiveLane) -> dict[str, Any]:
    lane.wait_steady()
    # the crash loop, crashing after 1 s instead of 4 (its restarts show sooner: a shorter test)
    crash = lane.stack.deploy("v1.5.0-crashloop", by="alice", behaviour={"crash_after_s": 1})
    crash_id = lane.launch(crash)
    paused = lane.wait(crash_id, timeout=90)
    out: dict[str, Any] = {"crash_id": crash_id, "crash_paused": paused.state.value}
    if paused.state == State.PAUSED:
        approval = lane.runtime.approvals.for_execution(crash_id)
        lane.runtime.approvals.vote(approval["id"], BOB, False, "not now, we look at it by hand")
    out["crash_done"] = lane.finish(crash_id)
    out["history_after_crash"] = history(lane)
    slow = lane.deploy("v1.3.0-slow")  # its announced previous version: the crash loop
    slow_id = lane.launch(forged(slow, "v1.5.0-crashloop"))
    out["slow_id"] = slow_id
    out["slow_paused"] = lane.wait(slow_id, timeout=90)
    approval = lane.runtime.approvals.for_execution(slow_id)
    out["slow_target"] = lane.runtime.approvals.rollback_choice(approval)
    lane.runtime.approvals.vote(approval["id"], BOB, True, "latency is way up")
    out["slow_done"] = lane.finish(slow_id)
    return out


def _race_lane(lane: LiveLane) -> dict[str, Any]:
    """Two runs on one leaky deploy (two approvals of one decision): the first is approved with the
    deployer frozen; the second is approved after another deploy."""
    lane.wait_steady()
    leak = lane.deploy("v1.2.0-leak")
    first, second = lane.launch(leak), lane.launch(leak)
    out: dict[str, Any] = {"first": first, "second": second}
    out["paused"] = [lane.wait(first, timeout=90).state, lane.wait(second, timeout=90).state]
    approval = lane.runtime.approvals.for_execution(first)
    out["first_target"] = lane.runtime.approvals.rollback_choice(approval)
    with frozen(lane):
        lane.runtime.approvals.vote(approval["id"], BOB, True, "leak")
        # execute gives up on the frozen deployer: its result is unknown, the deployment says so
        wait_for(
            lambda: row(lane, first).get("status") == "result unknown", 120, what="execute's unknown result"
        )
        out["while_frozen"] = task_outputs(lane.runtime.engine.get_execution(first), "execute")
    out["first_done"] = lane.finish(first, timeout=180)
    out["before_deploy"] = [d["kind"] for d in lane.stack.deployments()]
    lane.deploy("v1.1.0-fast")  # the service moves on while the second approval waits
    approval = lane.runtime.approvals.for_execution(second)
    try:
        lane.runtime.approvals.vote(approval["id"], BOB, True, "")
    except Superseded as exc:
        out["superseded"] = str(exc)
    out["after_supersede"] = [d["kind"] for d in lane.stack.deployments()]
    out["second_done"] = lane.finish(second)
    return out


FREEZE_AND_DIE = "the rollback call is in flight"


def _crash_lane(lane: LiveLane) -> dict[str, Any]:
    lane.wait_steady()
    leak = lane.deploy("v1.2.0-leak")
    execution_id = lane.launch(leak)
    out: dict[str, Any] = {"execution_id": execution_id, "paused": lane.wait(execution_id, timeout=90)}
    approval = lane.runtime.approvals.for_execution(execution_id)
    # the console acts for real here: the command line decides with bob's API token (its env var)
    token = "bob-cli-token-0123456789abcdef"
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CONSOLE_DATA_DIR": str(lane.runtime.settings.data_dir),
        "CONSOLE_SERVICES_FILE": str(lane.runtime.settings.services_file),
        "LIVE_POLL_S": "1",
        "CONSOLE_API_TOKEN": token,
        "CONSOLE_API_TOKEN_NAME": "bob",
        "CONSOLE_API_TOKEN_ROLE": "approver",
        "CONSOLE_CLI_TOKEN": token,
    }
    log = lane.workdir / "approve-cli.log"
    with frozen(lane):
        with log.open("wb") as sink:
            cli = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "console",
                    "approve",
                    approval["id"],
                    "--comment",
                    "leak",
                ],
                cwd=ROOT,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
            )
        try:

            def calling() -> bool:
                run = lane.runtime.store.executions.task_runs_by_task(execution_id).get("execute")
                progress = ((run.outputs or {}) if run is not None else {}).get("progress") or {}
                return any(
                    "rollback" in key and entry.get("phase") == "calling" and "result" not in entry
                    for key, entry in progress.items()
                )

            wait_for(calling, 60, what=FREEZE_AND_DIE)
        finally:
            cli.send_signal(signal.SIGKILL)  # the console dies mid-call
            cli.wait()
    # the deployer runs the queued rollback now; the next console takes over the orphaned run
    wait_for(
        lambda: any(d["kind"] == "rollback" for d in lane.stack.deployments()),
        60,
        what="the deployer's rollback",
    )
    lane.runtime.engine.recover()  # the next console takes over (unless its sweep already did)
    out["done"] = lane.finish(execution_id, timeout=120)
    trail = lane.runtime.store.audit.trail(subject=execution_id)
    out["recovery"] = [r["detail"].get("action") for r in trail if r["event"] == "execution.recovered"]
    return out


LANES = {"history": _history_lane, "race": _race_lane, "crash": _crash_lane}


@pytest.fixture(scope="session")
def safety_lanes(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    require_prometheus()
    base = tmp_path_factory.mktemp("safety-live")

    def run(name: str) -> dict[str, Any]:
        lane = None
        out: dict[str, Any] = {}
        started = time.monotonic()
        try:
            extra = ", timeout_s: 2" if name == "race" else ""
            lane = LiveLane.start(
                Path(base) / name,
                token_env=f"SAFETY_TOKEN_{name.upper()}",
                windows=WINDOWS,
                rps=10.0,
                poll_s=1.0,
                executor_extra=extra,
            )
            out = LANES[name](lane)
            out["deployments"] = lane.stack.deployments()
            out["records"] = lane.runtime.store.outcomes.records()
            out["rows"] = {r["execution_id"]: r for r in lane.runtime.store.deployments.list()}
            return out
        except BaseException:
            out["error"] = traceback.format_exc()
            if lane is not None:
                out["logs"] = lane.every_log()
            return out
        finally:
            out["seconds"] = round(time.monotonic() - started, 1)
            if lane is not None:
                lane.stop()

    with ThreadPoolExecutor(max_workers=len(LANES)) as pool:
        futures = {name: pool.submit(run, name) for name in LANES}
        results = {name: future.result() for name, future in futures.items()}
    print("SAFETY LANES (s):", json.dumps({k: v.get("seconds") for k, v in results.items()}))
    return results


def _lane(results: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    out = results[name]
    assert "error" not in out, f"{out['error']}\n--- execution logs ---\n{out.get('logs', '')}"
    return out


def _record(out: dict[str, Any], execution_id: str) -> dict[str, Any]:
    return next(r for r in out["records"] if r["execution_id"] == execution_id)


def test_a_crash_looping_version_is_never_resolved_and_never_a_rollback_target(safety_lanes):
    out = _lane(safety_lanes, "history")
    crash = _record(out, out["crash_id"])
    assert crash["measured"]["status"] == "not_resolved", crash["measured"]["reason"]
    # the instance's state at the window's end, not only metrics that may look "back"
    assert crash["measured"]["reason"].startswith(
        "the instance is unhealthy at the window's end (v1.5.0-crashloop"
    )
    assert crash["measured"]["health"]["version"] == "v1.5.0-crashloop"
    assert crash["measured"]["health"]["restarts"] >= 2
    known = out["history_after_crash"]
    assert known["v1.5.0-crashloop"].status == revisions.KNOWN_BAD
    assert known["v1.0.0"].status == revisions.KNOWN_GOOD  # healthy through the crash loop's baseline


def test_after_a_rejected_crash_loop_a_slow_deploy_rolls_back_to_v1_0_0_never_the_crash_loop(safety_lanes):
    out = _lane(safety_lanes, "history")
    target = out["slow_target"]
    decision = task_outputs(out["slow_paused"], "summarize").get("decision") or {}
    why = f"{decision.get('verdict')} by rule {decision.get('rule')}: {decision.get('reasoning')}"
    assert target is not None, f"no rollback planned: {why}"
    assert target.version == "v1.0.0", target
    assert target.notes[0].startswith("the announced previous version v1.5.0-crashloop is known-bad")
    done = out["slow_done"]
    assert done.state == State.SUCCESS
    rollback = next(
        a for a in task_outputs(done, "execute")["executed"] if a["name"] == "rollback_deployment"
    )
    assert rollback["status"] == "done" and rollback["params"]["to_version"] == "v1.0.0"
    assert rollback["request"]["expected_version"] == "v1.3.0-slow"
    kinds = [(d["kind"], d["version"]) for d in out["deployments"]]
    assert kinds[0] == ("rollback", "v1.0.0") and ("rollback", "v1.5.0-crashloop") not in kinds
    assert out["rows"][out["slow_id"]]["status"] == "rolled back"
    assert out["rows"][out["slow_id"]]["running_version"] == "v1.0.0"
    measured = _record(out, out["slow_id"])["measured"]
    # judged against v1.0.0's own healthy window, not the crash loop that ran before the deploy (how
    # the latency compares on a loaded 2-core machine is the judge's, not this test's, to say)
    assert measured["baseline"]["end"] < out["rows"][out["crash_id"]]["deployed_at"]
    assert measured["health"]["version"] == "v1.0.0" and measured["health"]["ready"] is True


def test_an_approval_made_after_another_deploy_is_superseded_and_changes_nothing(safety_lanes):
    out = _lane(safety_lanes, "race")
    assert out["superseded"].startswith("this approval was superseded at ")
    assert "v1.1.0-fast is running now" in out["superseded"]
    assert out["after_supersede"] == ["deploy", *out["before_deploy"]]  # only the deploy: no rollback
    assert out["rows"][out["second"]]["status"] == "superseded"
    assert task_outputs(out["second_done"], "execute")["deployment_status"] == "superseded"


def test_a_frozen_deployer_is_result_unknown_then_reconciled_to_done_once(safety_lanes):
    out = _lane(safety_lanes, "race")
    rollback = next(a for a in out["while_frozen"]["executed"] if a["name"] == "rollback_deployment")
    assert rollback["status"] == "unknown", rollback["detail"]
    assert "rollback failed" not in rollback["label"]
    assert out["while_frozen"]["deployment_status"] == "result unknown"
    target = out["first_target"].version
    assert target == "v1.0.0"  # healthy through the leak's baseline: the newest known-good version
    assert out["first_done"].state == State.SUCCESS
    record = _record(out, out["first"])
    settled = next(a for a in record["executed"] if a["name"] == "rollback_deployment")
    assert settled["status"] == "done" and settled["evidence"]["reconciled"]["from"] == "unknown"
    assert record["outcome"]["deployment_status"] == "rolled back"
    assert out["before_deploy"] == ["rollback", "deploy"]  # exactly once, though the call was repeated
    assert [d["version"] for d in out["deployments"] if d["kind"] == "rollback"] == [target]
    assert out["rows"][out["first"]]["status"] == "rolled back"


def test_a_console_killed_mid_call_is_reconciled_never_failed(safety_lanes):
    out = _lane(safety_lanes, "crash")
    # taken over once, by the explicit recover() or by the running console's sweep, whichever came first
    assert out["recovery"] == ["resumed from execute"]
    done = out["done"]
    assert done.state == State.SUCCESS
    record = _record(out, out["execution_id"])
    rollback = next(a for a in record["executed"] if a["name"] == "rollback_deployment")
    assert rollback["status"] == "done", rollback["detail"]
    assert rollback["evidence"]["reconciled"]["first_detail"].startswith("interrupted: the console stopped")
    assert record["outcome"]["deployment_status"] == "rolled back"
    assert [d["kind"] for d in out["deployments"]].count("rollback") == 1
    assert out["rows"][out["execution_id"]]["status"] == "rolled back"
