"""A console that dies in the middle of ``execute`` never runs an action twice: the rollback it
already made is kept from the task run's progress when recovery re-runs the task (``kubectl
rollout undo`` twice would deploy the bad version again)."""

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
from console.loop.scenarios import load_scenario_document
from tests.engine.conftest import PROJECT_ROOT_DIR
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
            started = [k for k, v in progress.items() if "rollback" in k and "result" not in v]
            if started and sys.argv[4] == "during":
                os._exit(9)  # ... or while the rollback call is under way

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
    return replace(settings, services_file=services), snapshot


def _crash(settings, snapshot: Path, when: str) -> None:
    env = {**os.environ, "DEMO_DEPLOYER_TOKEN": TOKEN, "PYTHONPATH": str(PROJECT_ROOT_DIR)}
    proc = subprocess.run(
        [sys.executable, "-c", DIE_AFTER_THE_ROLLBACK, str(settings.data_dir), str(settings.services_file),
         str(snapshot), when],
        cwd=PROJECT_ROOT_DIR, capture_output=True, text=True, timeout=120, env=env,
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
            assert engine.store.deployment_for_execution(execution.id)["status"] == "rolled back"
        finally:
            engine.close()


def test_a_rollback_cut_off_mid_call_is_not_retried_but_reported(settings, tmp_path, monkeypatch):
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
            assert deployer.posts("/rollback") == []  # unknown outcome: never retried blindly
            execute = execution.task_run("execute").outputs
            rollback = next(a for a in execute["executed"] if a["name"] == "rollback_deployment")
            assert rollback["status"] == "failed" and "interrupted" in rollback["detail"]
            assert execute["deployment_status"] == "rollback failed"
        finally:
            engine.close()
