"""Crash: a real console process SIGKILLed mid-way; a new engine on the same store recovers.

Nothing committed is lost (launched executions, decisions, their audit rows), executions that were
running are resumed or marked (never left RUNNING), pending approvals stay pending, and decisions
whose engine resume was cut off are applied.
"""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from console.domain.executions import State
from console.engines.embedded.recovery import INTERRUPTED
from console.engines.embedded.runner import EmbeddedEngine
from console.runtime import embedded_runtime
from console.settings import Settings
from console.storage import Store
from tests.reliability.load import wait_all
from tests.waiting import patience

CHILD = Path(__file__).with_name("crash_child.py")
ROOT = Path(__file__).resolve().parents[2]


def run_and_kill(
    data_dir: Path, launches: int, decisions: int, seed: int
) -> tuple[list[str], list[list[str]]]:
    """Run the child until it reported enough, SIGKILL it at a random moment; return what it reported."""
    proc = subprocess.Popen(
        [sys.executable, str(CHILD), str(data_dir)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    done = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line.strip())
        done.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + patience(90)
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            launched = sum(x.startswith("launched ") for x in lines)
            decided = sum(x.startswith("decided ") for x in lines)
            if launched >= launches and decided >= decisions:
                break
            time.sleep(0.01)
        assert proc.poll() is None, f"the child died on its own: {proc.stderr.read()[-2000:]}"
        time.sleep(random.Random(seed).uniform(0.0, 0.15))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    done.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    launched_ids = [x.split()[1] for x in lines if x.startswith("launched ")]
    decided_rows = [x.split()[1:] for x in lines if x.startswith("decided ")]
    return launched_ids, decided_rows


@pytest.mark.parametrize("seed", [1, 2])
def test_sigkill_mid_way_loses_nothing_committed(tmp_path: Path, seed: int):
    settings = Settings(data_dir=tmp_path / "data")
    for attempt in range(3):  # the kill must catch at least one execution mid-run
        launched, decided = run_and_kill(settings.data_dir, launches=12 + 4 * seed, decisions=2, seed=seed)
        store = Store(settings.db_path)
        before = {
            r["id"]: r["state"] for r in store.db.conn.execute("SELECT id, state FROM executions").fetchall()
        }
        # a run a worker held was interrupted; a run in the queue was only waiting its turn
        queued = {r[0] for r in store.db.conn.execute("SELECT execution_id FROM run_queue").fetchall()}
        open_runs = [i for i, s in before.items() if s in ("CREATED", "RUNNING")]
        interrupted = [i for i in open_runs if i not in queued]
        waiting = [i for i in open_runs if i in queued]
        if interrupted:
            break
        store.close()
    assert interrupted, "the kill never caught an execution mid-run"
    assert store.db.conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    # everything the child reported as done is in the store
    assert set(launched) <= set(before)
    audit = store.db.conn.execute("SELECT event, subject FROM audit").fetchall()
    launched_events = {r["subject"] for r in audit if r["event"] == "execution.launched"}
    assert set(launched) <= launched_events
    for approval_id, status, _ in decided:
        row = store.approvals.get(approval_id)
        assert row is not None and row["status"] == status
        assert (
            sum(1 for r in audit if r["subject"] == approval_id and r["event"] == f"approval.{status}") == 1
        )
        assert store.approvals.votes(approval_id), "the vote is kept"
    pending_before = {
        r["id"]: r["execution_id"]
        for r in store.db.conn.execute("SELECT id, execution_id FROM approvals WHERE status = 'pending'")
    }
    assert pending_before, "some approvals were left pending on purpose"
    audit_count = len(audit)
    store.close()

    # a new console on the same store
    t0 = time.perf_counter()
    runtime = embedded_runtime(settings, max_workers=2)
    engine = runtime.engine
    try:
        report = runtime.recovery
        print(
            f"\ncrash (seed {seed}): {len(before)} executions, {len(interrupted)} interrupted, "
            f"{len(waiting)} queued, {len(decided)} decided, {len(pending_before)} pending; recovery took "
            f"{1000 * (time.perf_counter() - t0):.0f} ms"
        )
        recovered = {r["execution_id"] for r in report if "execution_id" in r}
        assert set(interrupted) <= recovered, report
        states = wait_all(engine, list(before), timeout=120)
        assert all(s.terminal or s == State.PAUSED for s in states.values()), states
        for execution_id in interrupted:
            history = [h.state for h in engine.get_execution(execution_id).histories]
            logs = " ".join(e.message for e in engine.execution_logs(execution_id))
            assert State.RESTARTED in history or states[execution_id] == State.FAILED
            assert INTERRUPTED in logs
        for execution_id in waiting:  # taken from the queue by the new console, never "interrupted"
            history = [h.state for h in engine.get_execution(execution_id).histories]
            logs = " ".join(e.message for e in engine.execution_logs(execution_id))
            assert State.RESTARTED not in history and INTERRUPTED not in logs
            assert execution_id not in recovered
        # pending approvals are still pending and their executions still wait
        for approval_id, execution_id in pending_before.items():
            assert engine.store.approvals.get(approval_id)["status"] == "pending"
            assert states[execution_id] == State.PAUSED
        # decided approvals reached the engine (even if the kill came between the vote and the resume)
        for approval_id, status, execution_id in decided:
            assert engine.store.approvals.get(approval_id)["resume_state"] == "done"
            assert states[execution_id] == State.SUCCESS
            approval_run = engine.get_execution(execution_id).task_run("approval")
            assert approval_run.outputs["approved"] is (status == "approved")
        # nothing was removed from the audit trail
        assert engine.store.db.conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0] >= audit_count
        assert (
            engine.store.db.conn.execute(
                "SELECT COUNT(*) FROM logs WHERE message LIKE '%internal error%'"
            ).fetchone()[0]
            == 0
        )
    finally:
        runtime.close()


def test_a_second_restart_does_not_redo_the_recovery(tmp_path: Path):
    settings = Settings(data_dir=tmp_path / "data")
    launched, _ = run_and_kill(settings.data_dir, launches=8, decisions=0, seed=3)
    first = EmbeddedEngine(settings, max_workers=2)
    try:
        wait_all(first, launched, timeout=120)
        histories = {i: len(first.get_execution(i).histories) for i in launched}
    finally:
        first.close()
    second = EmbeddedEngine(settings, max_workers=2)
    try:
        assert [r for r in second.last_recovery if "execution_id" in r] == []
        assert {i: len(second.get_execution(i).histories) for i in launched} == histories
    finally:
        second.close()
    raw = sqlite3.connect(settings.db_path)
    try:
        assert raw.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        raw.close()
