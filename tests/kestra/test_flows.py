"""The flows in flows/ follow Kestra's documented task properties and the project's rules, and the
checker rejects deliberately broken copies (so a passing check means something)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.kestra.fake_kestra import LIVE_INPUTS
from tests.kestra.flow_rules import check_flows, load_flows

FLOWS = Path(__file__).resolve().parents[2] / "flows"
EXPECTED = {"collect-snapshot", "summarize-incident", "decision-flow", "devops-loop", "incident-handler"}


def _tasks(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for task in tasks:
        out.append(task)
        for key in ("then", "else", "defaults"):
            out += _tasks(task.get(key) or [])
        for sub in (task.get("cases") or {}).values():
            out += _tasks(sub)
    return out


def test_all_flows_present_and_valid() -> None:
    flows = load_flows(FLOWS)
    assert {f.doc["id"] for f in flows.values()} == EXPECTED
    assert {f.doc["namespace"] for f in flows.values()} == {"devops.loop"}
    assert check_flows(FLOWS) == []


def test_devops_loop_shape() -> None:
    doc = load_flows(FLOWS)["devops-loop.yaml"].doc
    top = [t["id"] for t in doc["tasks"]]
    assert top == ["collect", "summarize", "decide", "approval_gate", "execute", "verify", "record"]
    subflows = [t for t in doc["tasks"] if t["type"].endswith("flow.Subflow")]
    assert [t["flowId"] for t in subflows] == ["collect-snapshot", "summarize-incident", "decision-flow"]
    gate = doc["tasks"][3]
    assert gate["type"] == "io.kestra.plugin.core.flow.If"
    assert "needs_approval" in gate["condition"]
    pause = gate["then"][0]
    assert pause["id"] == "approval" and pause["type"] == "io.kestra.plugin.core.flow.Pause"
    assert pause["behavior"] in {"CANCEL", "FAIL"}
    # the executed step reads the human decision from the Pause's onResume outputs
    execute = doc["tasks"][4]
    assert "outputs.approval.onResume" in execute["inputFiles"]["input.json"]
    # the live tasks read the services file; execute acts with the deployer's token (a Kestra secret)
    verify, record = doc["tasks"][5], doc["tasks"][6]
    for task in (execute, verify):
        assert task["env"]["CONSOLE_SERVICES_FILE"] == "/app/live/compose/services.yaml"
    assert "secret('DEMO_DEPLOYER_TOKEN')" in execute["env"]["DEMO_DEPLOYER_TOKEN"]
    assert "outputs.execute.vars.executed" in verify["inputFiles"]["input.json"]
    assert "outputs.verify.vars.measured" in record["inputFiles"]["input.json"]
    trigger = doc["triggers"][0]
    assert trigger["type"] == "io.kestra.plugin.core.trigger.Webhook" and trigger["key"]
    assert {i["id"] for i in doc["inputs"]} >= {*LIVE_INPUTS, "scenario", "triggered_by"}
    # every live input is read from the webhook body too (the deployer's announcement)
    collect = doc["tasks"][0]
    for name in LIVE_INPUTS:
        assert f"trigger.body.{name}" in collect["inputs"][name]
    assert {o["id"] for o in doc["outputs"]} >= {"verdict", "severity", "deployment_status"}


def test_incident_handler_runs_the_loops_steps_routed_by_severity() -> None:
    doc = load_flows(FLOWS)["incident-handler.yaml"].doc
    top = [t["id"] for t in doc["tasks"]]
    assert top == [
        "collect", "analyze", "summarize", "decide", "route", "approval_gate", "execute", "verify", "record",
    ]  # fmt: skip
    # collect reads the incident from the inputs, or Alertmanager's own delivery (the webhook)
    collect = doc["tasks"][0]["inputFiles"]["input.json"]
    assert '"incident": {' in collect and "trigger.body" in collect
    for name in ("service", "severity", "starts_at", "labels", "deployment_id", "deployed_at"):
        assert f"inputs.{name}" in collect
    # decide routes by the incident's severity (console/loop/incidents.py); the Switch shows it
    assert "outputs.collect.vars.incident" in doc["tasks"][3]["inputFiles"]["input.json"]
    switch = next(t for t in doc["tasks"] if t["type"] == "io.kestra.plugin.core.flow.Switch")
    assert "outputs.decide.vars.routing.severity" in switch["value"]
    assert set(switch["cases"]) == {"LOW", "MEDIUM"}
    defaults = [t["id"] for t in switch["defaults"]]  # HIGH / CRITICAL
    assert defaults == ["escalate"] and switch["defaults"][0]["level"] == "ERROR"
    assert "ESCALATION" in switch["defaults"][0]["message"]
    # the approval is the same Pause as devops-loop's (the console mirrors and resumes it)
    gate = doc["tasks"][5]
    assert "outputs.decide.vars.plan.needs_approval" in gate["condition"]
    assert gate["then"][0]["id"] == "approval" and gate["then"][0]["behavior"] in {"CANCEL", "FAIL"}
    assert "outputs.approval.onResume" in doc["tasks"][6]["inputFiles"]["input.json"]
    severity = next(i for i in doc["inputs"] if i["id"] == "severity")
    assert set(severity["values"]) == {"LOW", "MEDIUM", "HIGH", "CRITICAL"}
    assert doc["triggers"][0]["type"] == "io.kestra.plugin.core.trigger.Webhook"
    for task in _tasks(doc["tasks"]):
        if task["type"].endswith("Pause"):
            assert task["behavior"] in {"CANCEL", "FAIL"}


# ---------------------------------------------------------------- broken copies are rejected
Mutation = Callable[[dict[str, dict[str, Any]]], None]


def _loop(docs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    return docs["devops-loop.yaml"]


def _task(doc: dict[str, Any], task_id: str) -> dict[str, Any]:
    return next(t for t in _tasks(doc["tasks"]) if t["id"] == task_id)


def _set(task_id: str, key: str, value: Any, file: str = "devops-loop.yaml") -> Mutation:
    def mutate(docs: dict[str, dict[str, Any]]) -> None:
        _task(docs[file], task_id)[key] = value

    return mutate


def _drop(task_id: str, key: str) -> Mutation:
    def mutate(docs: dict[str, dict[str, Any]]) -> None:
        del _task(_loop(docs), task_id)[key]

    return mutate


def _replace_in(task_id: str, file_key: str, old: str, new: str) -> Mutation:
    def mutate(docs: dict[str, dict[str, Any]]) -> None:
        files = _task(_loop(docs), task_id)["inputFiles"]
        assert old in files[file_key]
        files[file_key] = files[file_key].replace(old, new)

    return mutate


def _top(key: str, value: Any) -> Mutation:
    def mutate(docs: dict[str, dict[str, Any]]) -> None:
        _loop(docs)[key] = value

    return mutate


def _input_type(docs: dict[str, dict[str, Any]]) -> None:
    _loop(docs)["inputs"][0]["type"] = "TEXT"


def _resume_type(docs: dict[str, dict[str, Any]]) -> None:
    _task(_loop(docs), "approval")["onResume"][0]["type"] = "STRING"


def _output_ref(docs: dict[str, dict[str, Any]]) -> None:
    _loop(docs)["outputs"][0]["value"] = "{{ outputs.decide.outputs.verdikt }}"


BROKEN: dict[str, tuple[Mutation, str]] = {
    "pause resumes by default": (_set("approval", "behavior", "RESUME"), "behavior must be CANCEL or FAIL"),
    "pause without behavior": (_drop("approval", "behavior"), "behavior must be CANCEL or FAIL"),
    "pause without duration": (_drop("approval", "pauseDuration"), "pauseDuration"),
    "pause bad duration": (_set("approval", "pauseDuration", "30 minutes"), "pauseDuration"),
    "duplicate task id": (_set("record", "id", "execute"), "is not unique"),
    "bad task id": (_set("record", "id", "record outcome"), "id does not match"),
    "dotted task id": (_set("record", "id", "record.outcome"), "id does not match"),
    "reference to no task": (
        _replace_in("execute", "input.json", "outputs.decide.outputs.plan", "outputs.decider.outputs.plan"),
        "refers to no task",
    ),
    "wrong output family": (
        _replace_in("execute", "input.json", "outputs.decide.outputs.plan", "outputs.decide.vars.plan"),
        "has no 'vars' output",
    ),
    "undeclared subflow output": (_output_ref, "is not an output of decision-flow"),
    "subflow target missing": (_set("collect", "flowId", "collect-snapshots"), "is not in flows/"),
    "subflow does not wait": (_set("summarize", "wait", False), "wait: true"),
    "undeclared subflow input": (_set("summarize", "inputs", {"snap": "x"}), "is not declared"),
    "missing required subflow input": (_set("summarize", "inputs", {}), "required input 'snapshot'"),
    "unknown task type": (
        _set("record", "type", "io.kestra.plugin.scripts.python.Scripts"),
        "not in the table",
    ),
    "unknown property": (_set("record", "script", "print(1)"), "unknown property 'script'"),
    "missing required property": (_drop("record", "commands"), "missing required property 'commands'"),
    "not the project image": (_set("record", "containerImage", "python:3.11-slim"), "containerImage"),
    "not a step command": (_set("record", "commands", ["python record.py"]), "python -m console step"),
    "unknown step": (
        _set("record", "commands", ["python -m console step publish {{ workingDir }}/input.json --kestra"]),
        "python -m console step",
    ),
    "reads outputs before they exist": (
        _replace_in("execute", "input.json", "outputs.decide.outputs.plan", "outputs.record.vars.outcome"),
        "before it runs",
    ),
    "bad input type": (_input_type, "not a Kestra input type"),
    "onResume typed wrong": (_resume_type, "onResume must be approved BOOLEAN"),
    "bad namespace": (_top("namespace", "DevOps Loop"), "namespace"),
    "unknown flow property": (_top("schedule", "@daily"), "unknown flow property"),
    "bad pull policy": (
        _set(
            "record",
            "taskRunner",
            {"type": "io.kestra.plugin.scripts.runner.docker.Docker", "pullPolicy": "X"},
        ),
        "pullPolicy",
    ),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_copy_is_rejected(name: str, tmp_path: Path) -> None:
    mutate, expected = BROKEN[name]
    docs = {f.file: f.doc for f in load_flows(FLOWS).values()}
    mutate(docs)
    for file, doc in docs.items():
        (tmp_path / file).write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    problems = check_flows(tmp_path)
    assert any(expected in p for p in problems), problems


def test_unparsable_yaml_is_rejected(tmp_path: Path) -> None:
    shutil.copytree(FLOWS, tmp_path / "flows")
    (tmp_path / "flows" / "devops-loop.yaml").write_text("id: devops-loop\ntasks: [\n", encoding="utf-8")
    assert any("does not parse" in p for p in check_flows(tmp_path / "flows"))


def test_untouched_copy_round_trips(tmp_path: Path) -> None:
    """The dump/reload used above keeps valid flows valid (so rejections come from the mutation)."""
    for flow in load_flows(FLOWS).values():
        (tmp_path / flow.file).write_text(yaml.safe_dump(flow.doc, sort_keys=False), encoding="utf-8")
    assert check_flows(tmp_path) == []
