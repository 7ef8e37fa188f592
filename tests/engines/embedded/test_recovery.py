"""Crash recovery: a console killed mid-run, executions left RUNNING, restart limits, PAUSED kept."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap

from console.domain.executions import State
from console.domain.models import now_text
from console.engines.embedded.recovery import INTERRUPTED, MAX_RESTARTS
from console.engines.embedded.runner import EmbeddedEngine
from console.runtime import embedded_runtime
from console.storage import Store, dumps
from tests.conftest import HEALTHY_SCENARIO, PROJECT_ROOT, run_paused

DIE_IN_SUMMARIZE = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from console.loop import steps
    from console.engines.embedded.runner import EmbeddedEngine
    from console.settings import Settings

    def die(data, settings):
        os._exit(9)  # the console process dies mid-task, no cleanup

    steps.summarize = die
    engine = EmbeddedEngine(Settings(data_dir=Path(sys.argv[1])), synchronous=True)
    engine.launch_scenario(sys.argv[2], "alice")
    """
)


def crash_mid_run(settings, scenario) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", DIE_IN_SUMMARIZE, str(settings.data_dir), scenario],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 9, proc.stderr
    store = Store(settings.db_path)
    [row] = store.db.conn.execute("SELECT id, state FROM executions").fetchall()
    assert row["state"] == "RUNNING"
    store.close()
    return row["id"]


def test_killed_console_is_recovered_from_the_interrupted_task(settings):
    execution_id = crash_mid_run(settings, HEALTHY_SCENARIO)
    engine = EmbeddedEngine(settings, synchronous=True)  # recovers at start
    try:
        assert engine.last_recovery == [
            {"execution_id": execution_id, "was": "RUNNING", "action": "resumed from summarize"}
        ]
        execution = engine.get_execution(execution_id)
        assert execution.state == State.SUCCESS
        assert [h.state.value for h in execution.histories] == [
            "CREATED",
            "RUNNING",
            "RESTARTED",
            "RUNNING",
            "SUCCESS",
        ]
        # finished tasks were not run again; the interrupted one was
        assert "RESTARTED" not in [h.state.value for h in execution.task_run("analyze").histories]
        assert "RESTARTED" in [h.state.value for h in execution.task_run("summarize").histories]
        restarts = [e.task_id for e in engine.execution_logs(execution_id) if " restarted" in e.message]
        assert restarts == ["summarize"]
        assert any(INTERRUPTED in e.message for e in engine.execution_logs(execution_id))
        assert len(engine.store.outcomes.records()) == 1
        assert ("system:recovery", "execution.recovered") in [
            (r["actor"], r["event"]) for r in engine.store.audit.trail(subject=execution_id)
        ]
        # a second start finds nothing to do
        assert EmbeddedEngine(settings, engine.store, synchronous=True).last_recovery == []
    finally:
        engine.close()


def test_recovery_gives_up_after_repeated_restarts(settings):
    execution_id = crash_mid_run(settings, HEALTHY_SCENARIO)
    store = Store(settings.db_path)
    histories = [{"state": "CREATED", "date": now_text()}] + [
        {"state": s, "date": now_text()} for _ in range(MAX_RESTARTS) for s in ("RESTARTED", "RUNNING")
    ]
    with store.db.write() as conn:
        conn.execute("UPDATE executions SET histories = ? WHERE id = ?", (dumps(histories), execution_id))
    engine = EmbeddedEngine(settings, store, synchronous=True)
    assert engine.last_recovery[0]["action"] == "failed"
    execution = engine.get_execution(execution_id)
    assert execution.state == State.FAILED
    assert any(INTERRUPTED in e.message and e.level == "ERROR" for e in engine.execution_logs(execution_id))


def test_paused_executions_and_pending_approvals_survive_a_restart(settings, store):
    first = EmbeddedEngine(settings, store, synchronous=True)
    execution, approval = run_paused(first)
    second = EmbeddedEngine(settings, Store(settings.db_path), synchronous=True)
    assert second.last_recovery == []
    assert second.get_execution(execution.id).state == State.PAUSED
    assert second.store.approvals.get(approval["id"])["status"] == "pending"
    second.resume(execution.id, approved=True, comment="", approver="bob")
    assert second.get_execution(execution.id).outputs["deployment_status"] == "rolled back"


def test_an_execution_owned_by_a_live_process_is_left_alone(settings, store):
    engine = EmbeddedEngine(settings, store, synchronous=True)
    execution_id = engine.launch_scenario(HEALTHY_SCENARIO, "alice")
    live_owner = f"{os.uname().nodename}:{os.getppid()}:other"
    with store.db.write() as conn:  # pretend another live console is in the middle of it
        conn.execute(
            "UPDATE executions SET state = 'RUNNING', owner = ?, heartbeat_at = ? WHERE id = ?",
            (live_owner, now_text(), execution_id),
        )
    assert EmbeddedEngine(settings, store, synchronous=True).last_recovery == []
    assert store.executions.row(execution_id)["owner"] == live_owner


def test_a_decision_whose_resume_never_happened_is_applied_at_restart(settings, store):
    from console.access.approvals import ApprovalService
    from console.access.auth import Identity, Role

    class DeadBackend:  # the process died between committing the decision and resuming the engine
        def resume(self, *args, **kwargs):
            raise ConnectionError("process gone")

    first = EmbeddedEngine(settings, store, synchronous=True)
    execution, approval = run_paused(first)
    ApprovalService(store, DeadBackend(), settings).vote(
        approval["id"], Identity("bob", Role.APPROVER), True, ""
    )
    assert first.get_execution(execution.id).state == State.PAUSED
    restarted = embedded_runtime(settings, Store(settings.db_path), synchronous=True)
    assert {"approval_id": approval["id"], "action": "decision applied"} in restarted.recovery
    assert restarted.engine.last_recovery == []  # the engine itself had nothing to take over
    done = restarted.engine.get_execution(execution.id)
    assert done.state == State.SUCCESS and done.outputs["deployment_status"] == "rolled back"
    assert done.task_run("approval").outputs["approver"] == "bob"


def test_a_previous_process_with_the_same_pid_is_recognised_as_dead(settings, store):
    """A restarted container's console often gets the same pid as the one that died."""
    engine = EmbeddedEngine(settings, store, synchronous=True)
    execution_id = engine.launch_scenario(HEALTHY_SCENARIO, "alice")
    previous_life = f"{socket.gethostname()}:{os.getpid()}:deadbeef"
    with store.db.write() as conn:
        conn.execute(
            "UPDATE executions SET state = 'RUNNING', owner = ?, heartbeat_at = ? WHERE id = ?",
            (previous_life, now_text(), execution_id),
        )
    # a live engine of this same process is not taken over...
    live = EmbeddedEngine(settings, store, synchronous=True, recover=False)
    with store.db.write() as conn:
        conn.execute("UPDATE executions SET owner = ? WHERE id = ?", (live.owner, execution_id))
    assert EmbeddedEngine(settings, store, synchronous=True).last_recovery == []
    # ...but an owner token no engine of this process holds is a previous life: recovered
    with store.db.write() as conn:
        conn.execute("UPDATE executions SET owner = ? WHERE id = ?", (previous_life, execution_id))
    assert EmbeddedEngine(settings, store, synchronous=True).last_recovery[0]["execution_id"] == execution_id
    # every task had finished already: the execution is closed, nothing runs twice
    execution = engine.get_execution(execution_id)
    assert execution.state == State.SUCCESS
    assert [h.state.value for h in execution.histories][-3:] == ["RESTARTED", "RUNNING", "SUCCESS"]
    assert len(store.outcomes.records()) == 1
