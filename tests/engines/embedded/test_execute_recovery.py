"""A console that dies in the middle of ``execute`` never runs an action twice and never reports a
rollback failed that may have happened: the rollback it already made is kept from the task run's
progress when recovery re-runs the task (``kubectl rollout undo`` twice would deploy the bad version
again); one cut off during its call is reconciled through the target (the demo deployer keeps
idempotency keys: the same call with the same key acts once); one cut off before its call runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

from console.domain.executions import State
from console.engines.embedded.runner import EmbeddedEngine
from console.loop import revisions
from console.loop.scenarios import load_scenario_document
from console.storage import Store
from tests.conftest import PROJECT_ROOT
from tests.executors.servers import run_deployer

TOKEN = "token-of-the-crash-test-0123456789"

DIE_AFTER_THE_ROLLBACK = textwrap.dedent(
    """
    import json, os, sys
    from pathlib import Path
    from console.engines.embedded.runner import EmbeddedEngine
    from console.loop import steps
    from console.settings import Settings

    real_collect = steps.collect

    def collect(data, settings, **kw):  # stands in for a watched live deployment (no Prometheus here)
        out = real_collect(data, settings, **kw)
        return {**out, "verification": {"ended": "early", "reason": "test", "evaluations": 1,
                                        "elapsed_s": 1.0, "notes": [], "links": {}}}

    steps.collect = collect

    settings = Settings(data_dir=Path(sys.argv[1]), services_file=Path(sys.argv[2]))
    engine = EmbeddedEngine(settings, synchronous=True)
    real_saver = engine._progress_saver

    def saver(execution_id, task_id):
        save = real_saver(execution_id, task_id)

        def save_then_die(progress):
            save(progress)
            done = [k for k, v in progress.items() if "rollback" in k and "result" in v]
            if done and sys.argv[4] == "after":
                os._exit(9)  # the process dies right after the rollback's result was kept
            phase = [v.get("phase") for k, v in progress.items() if "rollback" in k and "result" not in v]
            if "calling" in phase and sys.argv[4] == "during":
                os._exit(9)  # ... or as the rollback call goes out
            if "checking" in phase and sys.argv[4] == "before":
                os._exit(9)  # ... or while the service's state is being checked, before any call

        return save_then_die

    engine._progress_saver = saver
    snapshot = json.loads(Path(sys.argv[3]).read_text())
    execution = engine.run_sync(snapshot, triggered_by="alice")
    assert execution.state.value == "PAUSED", execution.state
    engine.resume(execution.id, approved=True, comment="go", approver="bob")
    """
)


def _setup(tmp_path: Path, settings, url: str):
    log = tmp_path / "demo-service.log"
    log.write_text("", encoding="utf-8")
    services = tmp_path / "services.yaml"
    services.write_text(
        "services:\n  demo-service:\n    environment: live-demo\n"
        f"    logs: {{type: jsonl, path: {log}}}\n"
        f"    executor: {{type: demo-service, url: '{url}', verify_timeout_s: 2}}\n",
        encoding="utf-8",
    )
    doc = {
        k: v for k, v in load_scenario_document("memory-leak").items() if k not in ("scenario", "post_action")
    }
    doc["deployment"] = {
        **doc["deployment"],
        "service": "demo-service",
        "version": "v1.1.0",
        "previous_version": "v1.0.0",
    }
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text(json.dumps(doc), encoding="utf-8")
    store = Store(settings.db_path)  # v1.0.0 is known-good: the plan's rollback target
    with store.db.write() as conn:
        good = revisions.event(
            "demo-service", "v1.0.0", revisions.MARKED_GOOD, "2026-01-01T00:00:00Z", "ran for a year",
            source="operator", actor="carol",
        )  # fmt: skip
        store.revisions.add_in(conn, [good])
    store.close()
    return replace(settings, services_file=services), snapshot


def _crash(settings, snapshot: Path, when: str) -> None:
    env = {**os.environ, "DEMO_DEPLOYER_TOKEN": TOKEN, "PYTHONPATH": str(PROJECT_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", DIE_AFTER_THE_ROLLBACK, str(settings.data_dir), str(settings.services_file),
         str(snapshot), when],
        cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=120, env=env,
    )  # fmt: skip
    assert proc.returncode == 9, proc.stderr[-2000:]


def test_recovery_keeps_the_rollback_made_before_the_crash(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("DEMO_DEPLOYER_TOKEN", TOKEN)
    with run_deployer(TOKEN) as deployer:
        settings, snapshot = _setup(tmp_path, settings, deployer.url)
        _crash(settings, snapshot, "after")
        assert len(deployer.posts("/rollback")) == 1
        engine = EmbeddedEngine(settings, synchronous=True)  # takes over at start
        try:
            [recovered] = engine.last_recovery
            assert recovered["action"] == "resumed from execute"
            execution = engine.get_execution(recovered["execution_id"])
            assert execution.state == State.SUCCESS
            assert len(deployer.posts("/rollback")) == 1  # not a second time
            execute = execution.task_run("execute").outputs
            rollback = next(a for a in execute["executed"] if a["name"] == "rollback_deployment")
            assert rollback["status"] == "done" and rollback["label"] == "rolled back"
            assert execute["deployment_status"] == "rolled back"
            assert engine.store.deployments.for_execution(execution.id)["status"] == "rolled back"
        finally:
            engine.close()


def test_a_rollback_cut_off_during_its_call_is_reconciled_once_never_failed(settings, tmp_path, monkeypatch):
    """The console died as the call went out: recovery cannot know whether it arrived. The result is
    unknown until the target says; the demo deployer keeps idempotency keys, so the same call with the
    same key tells it (and acts once if the first never arrived). Never "rollback failed"."""
    monkeypatch.setenv("DEMO_DEPLOYER_TOKEN", TOKEN)
    with run_deployer(TOKEN) as deployer:
        settings, snapshot = _setup(tmp_path, settings, deployer.url)
        _crash(settings, snapshot, "during")
        assert deployer.posts("/rollback") == []  # it died before the call went out
        engine = EmbeddedEngine(settings, synchronous=True)
        try:
            [recovered] = engine.last_recovery
            execution = engine.get_execution(recovered["execution_id"])
            assert execution.state == State.SUCCESS
            [post] = deployer.posts("/rollback")  # the keyed call, once
            assert post["to"] == "v1.0.0" and post["expected_version"] == "v1.1.0"
            assert [r["kind"] for r in deployer.records] == ["rollback"]
            execute = execution.task_run("execute").outputs
            rollback = next(a for a in execute["executed"] if a["name"] == "rollback_deployment")
            assert rollback["status"] == "done", rollback["detail"]
            assert rollback["evidence"]["reconciled"]["from"] == "unknown"
            assert rollback["evidence"]["reconciled"]["first_detail"].startswith(
                "interrupted: the console stopped"
            )
            assert execute["deployment_status"] == "rolled back"
            row = engine.store.deployments.for_execution(execution.id)
            assert row["status"] == "rolled back" and row["running_version"] == "v1.0.0"
        finally:
            engine.close()


def test_a_rollback_cut_off_before_its_call_runs_once_after_recovery(settings, tmp_path, monkeypatch):
    """Killed while checking the service's state: nothing was sent, so recovery simply runs it."""
    monkeypatch.setenv("DEMO_DEPLOYER_TOKEN", TOKEN)
    with run_deployer(TOKEN) as deployer:
        settings, snapshot = _setup(tmp_path, settings, deployer.url)
        _crash(settings, snapshot, "before")
        assert deployer.posts("/rollback") == []
        engine = EmbeddedEngine(settings, synchronous=True)
        try:
            [recovered] = engine.last_recovery
            execution = engine.get_execution(recovered["execution_id"])
            assert execution.state == State.SUCCESS
            assert len(deployer.posts("/rollback")) == 1
            execute = execution.task_run("execute").outputs
            rollback = next(a for a in execute["executed"] if a["name"] == "rollback_deployment")
            assert rollback["status"] == "done" and "reconciled" not in (rollback["evidence"] or {})
        finally:
            engine.close()
