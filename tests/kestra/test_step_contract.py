"""The flows' Commands tasks and the real CLI agree: each `python -m console step NAME FILE --kestra`
prints Kestra's output line (``::{"outputs": {...}}::``) with every key the flows read as
``{{ outputs.<task>.vars.<key> }}``."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from console.domain.vocabulary import STEP_TASKS
from console.engines.kestra.flow_lint import COMMANDS, STEP_COMMAND, load_documents
from console.telemetry.times import format_ts
from tests.conftest import logs_only_service

pytestmark = pytest.mark.kestra

ROOT = Path(__file__).resolve().parents[2]
VARS_REF = re.compile(r"outputs\.([A-Za-z0-9_-]+)\.vars\.([A-Za-z0-9_]+)")


def _all_tasks(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for task in tasks:
        out.append(task)
        for key in ("then", "else", "defaults", "tasks"):
            out += _all_tasks(task.get(key) or [])
        for sub in (task.get("cases") or {}).values():
            out += _all_tasks(sub)
    return out


def _flow_contract() -> dict[str, set[str]]:
    """step name → the ``vars`` keys some flow reads from a task running that step."""
    needed: dict[str, set[str]] = {}
    docs, _ = load_documents(ROOT / "flows")
    for doc in docs.values():
        text = json.dumps(doc)
        steps = {}
        for task in _all_tasks(doc["tasks"]):
            if task["type"] == COMMANDS:
                steps[task["id"]] = STEP_COMMAND.match(task["commands"][0]).group(1)
        for task_id, key in VARS_REF.findall(text):
            needed.setdefault(steps[task_id], set()).add(key)
    return needed


def _run(step: str, payload: dict[str, Any], tmp_path: Path, **env_extra: str) -> dict[str, Any]:
    path = tmp_path / f"{step}.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    env = {"PYTHONPATH": str(ROOT), "CONSOLE_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"}
    env.update(env_extra)
    done = subprocess.run(
        [sys.executable, "-m", "console", "step", step, str(path), "--kestra"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-500:]
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("::") and ln.endswith("::")]
    assert len(lines) == 1, done.stdout[:300]
    return json.loads(lines[0][2:-2])["outputs"]


@pytest.mark.slow  # seven interpreter start-ups running the real steps: ~6-10 s
def test_cli_outputs_cover_what_the_flows_read(tmp_path: Path) -> None:
    needed = _flow_contract()
    assert set(needed) >= set(STEP_TASKS)
    outputs: dict[str, dict[str, Any]] = {}
    outputs["collect"] = _run("collect", {"scenario": "memory-leak"}, tmp_path)
    snapshot = outputs["collect"]["snapshot"]
    outputs["analyze"] = _run("analyze", {"snapshot": snapshot}, tmp_path)
    rules = outputs["analyze"]["decision"]
    outputs["summarize"] = _run("summarize", {"snapshot": snapshot, "decision": rules}, tmp_path)
    decision = outputs["summarize"]["decision"]
    outputs["decide"] = _run("decide", {"decision": decision}, tmp_path)
    plan, verdict = outputs["decide"]["plan"], outputs["decide"]["verdict"]
    approval = {"approved": True, "comment": "ok", "approver": "bob"}
    target = {"deployment": snapshot["deployment"], "scenario": snapshot["scenario"]}
    outputs["execute"] = _run(
        "execute", {"plan": plan, "verdict": verdict, "approval": approval, **target}, tmp_path
    )
    outputs["verify"] = _run("verify", {**target, "executed": outputs["execute"]["executed"]}, tmp_path)
    outputs["record"] = _run(
        "record",
        {
            "execution_id": "X" * 22,
            "snapshot": snapshot,
            "decision": decision,
            "plan": plan,
            "approval": approval,
            "executed": outputs["execute"]["executed"],
            "deployment_status": outputs["execute"]["deployment_status"],
            "measured": outputs["verify"]["measured"],
        },
        tmp_path,
    )
    # incident-handler's collect (an incident) and decide (routed by its severity) emit more
    services, now = logs_only_service(tmp_path, lines=3)
    incident = {"service": "demo-service", "severity": "HIGH", "starts_at": format_ts(now - 2)}
    collected = _run("collect", {"incident": incident}, tmp_path, CONSOLE_SERVICES_FILE=str(services))
    routed = _run("decide", {"decision": decision, "incident": collected["incident"]}, tmp_path)
    assert routed["routing"]["route"] == "escalate" and collected["incident"]["severity"] == "HIGH"
    outputs["collect"] |= collected
    outputs["decide"] = {**routed, **outputs["decide"]}
    for step, keys in needed.items():
        missing = keys - set(outputs[step])
        assert not missing, f"flows read outputs {missing} the {step} step does not emit"
    # what the If gate and the approval service rely on
    assert plan["needs_approval"] is True and verdict == "ROLLBACK"
    assert outputs["execute"]["deployment_status"] == "rolled back"
    measured = outputs["verify"]["measured"]
    assert measured["status"] == "resolved" and measured["simulated"] is True
    assert measured["source"] == "recorded scenario segment"
    assert outputs["record"]["outcome"]["outcome"]["held"] is True
