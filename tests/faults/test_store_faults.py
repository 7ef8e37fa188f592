"""The store locked by another writer, and the disk full: in-flight runs wait and retry (never
FAILED for it), the API answers 503/507 with Retry-After, health says degraded with the reason, the
pages' banner says so, and once the fault passes every accepted deployment reaches its decision."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from console.domain.executions import State
from console.presentation.health import degraded_banner
from console.storage.database import WAL_SIZE_LIMIT
from tests.faults.support import Lab, check_invariants, start_lab, wait_for

pytestmark = pytest.mark.faults


class Lock:
    """Another writer holding the database's write lock (BEGIN IMMEDIATE) until released."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.conn.execute("BEGIN IMMEDIATE")

    def release(self) -> None:
        self.conn.execute("COMMIT")
        self.conn.close()


def _watching(lab: Lab, execution_id: str) -> bool:
    queued = lab.store.queue.get(execution_id)
    return queued is not None and queued.reason.startswith("collect")


def _caught_in_a_look(lab: Lab, version: str, **deploy: Any) -> str:
    """A run deployed, watching, then caught in one of its looks (:func:`_mid_look`)."""
    answer = lab.deploy(version, **deploy)
    assert answer.status_code == 202, answer.text
    run = answer.json()["execution_id"]
    wait_for("the run's watch", lambda: _watching(lab, run))
    _mid_look(lab, run)
    return run


def _mid_look(lab: Lab, execution_id: str) -> None:
    """Catch the run in a look: the stand-in Prometheus holds its queries until released, so the
    fault comes while a worker runs the unit (its writes meet it)."""
    for stub in (lab.prometheus, lab.steady):
        stub.gate.clear()
    wait_for(
        "a look held mid-fetch",
        lambda: lab.prometheus.held + lab.steady.held > 0 and execution_id in lab.engine.scheduler.busy(),
    )


def _release(lab: Lab) -> None:
    for stub in (lab.prometheus, lab.steady):
        stub.gate.set()


def test_a_locked_store_is_waited_out_then_every_run_decides(tmp_path: Path) -> None:
    lab = start_lab(tmp_path)
    try:
        leak = _caught_in_a_look(lab, "v1.2.0-leak", leaky=True)
        lock = Lock(lab.settings.db_path)
        _release(lab)
        try:
            # the API: nothing written, 503 with Retry-After; health: degraded, with the reason
            refused = lab.deploy("v1.3.0", leaky=False)
            assert refused.status_code == 503 and refused.headers["retry-after"] == "2", refused.text
            assert refused.json()["fault"] == "busy"
            health = lab.client.get("/api/health").json()
            assert health["status"] == "degraded" and health["checks"]["store"]["status"] == "degraded"
            assert "busy since" in health["checks"]["store"]["reason"]
            assert "busy since" in degraded_banner(lab.services.store_condition())
            # the watch meets the lock: its unit is retried, the run is not failed
            wait_for("a unit to meet the lock", lambda: lab.engine.scheduler.snapshot().faults >= 1)
            assert lab.execution(leak).state == State.RUNNING
        finally:
            lock.release()
        decided = lab.decided(leak)
        assert decided.state == State.PAUSED, lab.engine.execution_logs(leak)  # ROLLBACK waits for a human
        retried = lab.deploy("v1.3.0", leaky=False)  # the deployer's retry after Retry-After
        assert retried.status_code == 202, retried.text
        assert lab.decided(retried.json()["execution_id"]).state == State.SUCCESS
        assert lab.client.get("/api/health").json()["status"] == "up"
        assert not [e for e in lab.engine.search_executions(size=100).items if e.state == State.FAILED]
    finally:
        lab.close()
    check_invariants(lab.settings.db_path)


@pytest.fixture
def tmpfs(tmp_path: Path):
    """A 2 MiB tmpfs (root only): the disk that fills up."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True, text=True
    )
    if done.returncode != 0:
        reason = f"cannot mount a tmpfs here ({done.stderr.strip() or done.returncode})"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def _fill(directory: Path) -> Path:
    """Write a file until the volume is full."""
    filler = directory / "filler"
    chunk = b"\0" * 65536
    with open(filler, "wb") as out:
        try:
            while True:
                out.write(chunk)
                out.flush()
        except OSError:
            pass
    return filler


def test_a_full_disk_is_waited_out_then_every_run_decides_and_the_wal_stays_bounded(
    tmp_path: Path, tmpfs: Path
) -> None:
    lab = start_lab(tmp_path, data_dir=tmpfs / "data")
    sizes: list[tuple[int, int]] = []
    try:
        leak = _caught_in_a_look(lab, "v1.2.0-leak", leaky=True)
        filler = _fill(tmpfs)
        _release(lab)
        try:
            wait_for("a unit to meet the full disk", lambda: lab.engine.scheduler.snapshot().faults >= 1)
            refused = lab.deploy("v1.3.0", leaky=False)
            assert refused.status_code == 507 and refused.headers["retry-after"] == "30", refused.text
            assert refused.json()["fault"] == "disk full"
            health = lab.client.get("/api/health").json()
            assert health["status"] == "degraded", health
            assert "disk full since" in health["checks"]["store"]["reason"]
            assert "disk nearly full" in health["checks"]["store"]["reason"]
            banner = degraded_banner(lab.services.store_condition())
            assert banner and "disk full" in banner and "507" in banner
            assert lab.execution(leak).state == State.RUNNING  # waiting it out, not failed
        finally:
            os.remove(filler)
        decided = lab.decided(leak)
        assert decided.state == State.PAUSED, lab.engine.execution_logs(leak)
        retried = lab.deploy("v1.3.0", leaky=False)
        assert retried.status_code == 202, retried.text
        assert lab.decided(retried.json()["execution_id"]).state == State.SUCCESS
        # the WAL is checkpointed: it never outgrows its bound, and the periodic upkeep truncates it
        for _ in range(5):
            assert lab.deploy(f"v2.{len(sizes)}", leaky=False).status_code == 202
            sizes.append((lab.store.db.data_bytes(), lab.store.db.wal_bytes()))
        wait_for("the WAL truncated", lambda: lab.store.db.wal_bytes() < 256 * 1024)
        assert lab.client.get("/api/health").json()["status"] == "up"
    finally:
        lab.close()
    print(f"\ndata and WAL bytes after the disk was freed: {sizes}; bound: data + {WAL_SIZE_LIMIT}")
    assert all(wal <= data + WAL_SIZE_LIMIT for data, wal in sizes)
    check_invariants(lab.settings.db_path)


def test_faults_that_last_past_the_bound_escalate_the_run_honestly(tmp_path: Path) -> None:
    lab = start_lab(tmp_path, verify_s=30.0, store_fault_escalate_s=1.0)
    try:
        run = _caught_in_a_look(lab, "v1.4.0", leaky=False, at=time.time())
        lock = Lock(lab.settings.db_path)
        _release(lab)
        try:
            wait_for("the unit to give up waiting", lambda: lab.engine.scheduler.snapshot().faults >= 3)
        finally:
            lock.release()
        done = wait_for("the escalation", lambda: (e := lab.execution(run)).state.terminal and e)
        assert done.state == State.FAILED
        row = lab.store.deployments.for_execution(run)
        assert row["status"] == "escalated" and "refused writes since" in row["note"]
        events = [r["event"] for r in lab.store.audit.trail(subject=run)]
        assert events.count("deployment.escalated") == 1
    finally:
        lab.close()
    check_invariants(lab.settings.db_path)
