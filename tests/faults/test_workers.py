"""Runs wait in a queue, never in a worker: the Deployments page and the API say "queued, N ahead";
a restart picks up the persisted wake-ups; a worker that stops mid-run, or a console process that
dies, is noticed by the periodic sweep of a running console, not only at the next start."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from console.domain.executions import State
from console.engines.embedded.runner import EmbeddedEngine
from console.loop import steps
from console.presentation.tables import deployments_frame
from console.runtime import embedded_runtime
from tests.faults.support import DEPLOYER, check_invariants, start_lab, wait_for

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parents[2]


def test_queued_runs_say_how_many_go_before_them(tmp_path: Path, monkeypatch) -> None:
    entered, release = threading.Event(), threading.Event()
    original = steps.analyze

    def held(data, settings):  # the one worker is busy with the first run
        entered.set()
        release.wait(30)
        return original(data, settings)

    monkeypatch.setattr(steps, "analyze", held)
    lab = start_lab(tmp_path, max_workers=1)
    try:
        first = lab.deploy("v1.0.1", leaky=False).json()["execution_id"]
        assert entered.wait(30)
        queued = [lab.deploy(f"v1.0.{i}", leaky=False).json()["execution_id"] for i in range(2, 5)]
        for ahead, run in enumerate(queued):
            api = lab.client.get(f"/api/executions/{run}", headers=DEPLOYER).json()
            assert api["queue"] == {
                "state": "queued",
                "ahead": ahead,
                "reason": "queued",
                "since": api["queue"]["since"],
            }
            assert api["deployment"]["status"] == "analyzing"
            assert api["deployment"]["progress"] == f"queued, {ahead} ahead"
        rows = lab.store.deployments.list(limit=10)
        positions = lab.store.queue.positions([r["execution_id"] for r in rows], time.time())
        frame = deployments_frame(rows, positions)
        assert sorted(frame["status"]) == [
            "analyzing",
            "queued, 0 ahead",
            "queued, 1 ahead",
            "queued, 2 ahead",
        ]
        release.set()
        for run in [first, *queued]:
            assert lab.decided(run).state == State.SUCCESS
            assert lab.client.get(f"/api/executions/{run}", headers=DEPLOYER).json()["queue"] is None
    finally:
        release.set()
        lab.close()
    check_invariants(lab.settings.db_path)


def test_a_restart_picks_up_the_persisted_wake_ups(tmp_path: Path) -> None:
    lab = start_lab(tmp_path, verify_s=30.0)
    run = lab.deploy("v1.2.0-leak", leaky=True, at=time.time() - 5).json()["execution_id"]
    wait_for(
        "the watch",
        lambda: (
            lab.store.queue.get(run) is not None and lab.store.queue.get(run).reason.startswith("collect")
        ),
    )
    looks_before = (lab.store.executions.task_runs_by_task(run)["collect"].outputs or {}).get("watch")
    lab.runtime.close()  # the console stops while the run waits: nothing is running it
    assert lab.store.queue.get(run) is not None and lab.execution(run).state == State.RUNNING
    again = embedded_runtime(lab.settings, max_workers=2)
    try:
        assert [r for r in again.recovery if r.get("execution_id") == run] == []  # waiting, not orphaned
        done = again.engine.wait(run, timeout=60)
        assert done.state == State.PAUSED
        assert looks_before and done.task_run("collect").outputs["verification"]["evaluations"] >= 2
        history = [h.state for h in done.histories]
        assert State.RESTARTED not in history
    finally:
        again.close()
        lab.client.close()
        lab.prometheus.stop()
        lab.steady.stop()
    check_invariants(lab.settings.db_path)


class _WorkerStopped(BaseException):
    """What a worker thread dying looks like from inside: not an error the engine handles."""


def test_a_worker_that_stops_mid_run_is_noticed_by_the_sweep(tmp_path: Path, monkeypatch) -> None:
    original = steps.decide
    calls = {"n": 0}

    def dies_once(data, settings):
        calls["n"] += 1
        if calls["n"] == 1:
            raise _WorkerStopped
        return original(data, settings)

    monkeypatch.setattr(steps, "decide", dies_once)
    lab = start_lab(tmp_path)
    try:
        run = lab.deploy("v1.0.9", leaky=False).json()["execution_id"]
        done = lab.decided(run)
        assert done.state == State.SUCCESS and calls["n"] == 2
        logs = [e.message for e in lab.engine.execution_logs(run)]
        assert "a worker stopped while this ran; queued again" in logs
    finally:
        lab.close()
    check_invariants(lab.settings.db_path)


DIES_IN_SUMMARIZE = textwrap.dedent(
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
    engine.launch_scenario("healthy-hotfix", "alice")
    """
)


def test_a_run_a_dead_process_left_is_taken_over_by_the_sweep_of_a_running_console(tmp_path: Path) -> None:
    lab = start_lab(tmp_path)
    try:
        proc = subprocess.run(
            [sys.executable, "-c", DIES_IN_SUMMARIZE, str(lab.settings.data_dir)],
            cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
        assert proc.returncode == 9, proc.stderr
        [orphan] = [e.id for e in lab.engine.search_executions().items if e.labels.get("scenario")]
        done = lab.decided(orphan)  # the running console's sweep, not a restart
        assert done.state == State.SUCCESS
        assert State.RESTARTED in [h.state for h in done.histories]
        assert any("interrupted: the console stopped" in e.message for e in lab.engine.execution_logs(orphan))
    finally:
        lab.close()
    check_invariants(lab.settings.db_path)


def test_the_synchronous_engine_runs_through_its_waits(tmp_path: Path) -> None:
    lab = start_lab(tmp_path, verify_s=2.0)
    lab.runtime.close()
    try:
        engine = EmbeddedEngine(lab.settings, synchronous=True)
        try:
            run = engine.launch_deployment(
                {"service": "demo-service", "version": "v9", "deployed_at": None},
                triggered_by="cli",
                source="cli",
            )
            done = engine.get_execution(run)
            assert done.state == State.PAUSED or done.state.terminal
            assert engine.store.queue.get(run) is None
        finally:
            engine.close()
    finally:
        lab.client.close()
        lab.prometheus.stop()
        lab.steady.stop()
