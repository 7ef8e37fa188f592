"""The flows in flows/ pass the flow linter (Kestra 1.3's rules and the project's), the linter
refuses deliberately broken copies with the rule that applies (so a clean run means something), and
`python -m console kestra lint` reports them one line each."""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.engines.kestra.flow_lint import Violation, lint_documents, lint_path, load_documents
from tests.properties import examples
from tests.reliability.strategies import JSON, mutated

pytestmark = pytest.mark.kestra

ROOT = Path(__file__).resolve().parents[2]
FLOWS = ROOT / "flows"
BEFORE = Path(__file__).parent / "fixtures" / "flows-before-issue-20"
EXPECTED = {"collect-snapshot", "summarize-incident", "decision-flow", "devops-loop", "incident-handler"}
LIVE_INPUTS = ("deployment_id", "service", "version", "previous_version", "deployed_at", "deployed_by",
               "source")  # fmt: skip


def _docs() -> dict[str, dict[str, Any]]:
    docs, broken = load_documents(FLOWS)
    assert broken == []
    return {Path(name).name: doc for name, doc in docs.items()}


def _tasks(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for task in tasks:
        out.append(task)
        for key in ("then", "else", "defaults", "tasks"):
            out += _tasks(task.get(key) or [])
        for sub in (task.get("cases") or {}).values():
            out += _tasks(sub)
    return out


def test_all_flows_present_and_clean() -> None:
    docs = _docs()
    assert {d["id"] for d in docs.values()} == EXPECTED
    assert {d["namespace"] for d in docs.values()} == {"devops.loop"}
    assert lint_path(FLOWS) == []


def test_devops_loop_shape() -> None:
    doc = _docs()["devops-loop.yaml"]
    top = [t["id"] for t in doc["tasks"]]
    assert top == ["collect", "summarize", "decide", "approval_gate", "execute", "measure", "record"]
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
    measure, record = doc["tasks"][5], doc["tasks"][6]
    # verify looks at the post-action window in a LoopUntil; a timer Pause waits between looks
    assert (
        measure["type"] == "io.kestra.plugin.core.flow.LoopUntil"
        and "verify.vars.done" in measure["condition"]
    )
    verify, again = measure["tasks"]
    timer = again["then"][0]
    assert timer["type"] == "io.kestra.plugin.core.flow.Pause" and timer["behavior"] == "RESUME"
    assert "outputs.verify.vars.wait" in timer["pauseDuration"] and "onResume" not in timer
    for task in (execute, verify):
        assert task["env"]["CONSOLE_SERVICES_FILE"] == "/app/livestack/compose/services.yaml"
    assert "secret('DEMO_DEPLOYER_TOKEN')" in execute["env"]["DEMO_DEPLOYER_TOKEN"]
    assert "outputs.execute.vars.executed" in verify["inputFiles"]["input.json"]
    assert "outputs.verify.vars.measured" in record["inputFiles"]["input.json"]
    [trigger] = doc["triggers"]
    assert trigger["type"] == "io.kestra.plugin.core.trigger.Webhook"
    assert trigger["key"] == "{{ secret('DEVOPS_LOOP_WEBHOOK_KEY') }}"
    assert {i["id"] for i in doc["inputs"]} >= {*LIVE_INPUTS, "scenario", "triggered_by"}
    # Kestra gives a webhook execution only the inputs its trigger declares: every live input is
    # declared there from the deployer's body, guarded (a body may lack any of them)
    for name in LIVE_INPUTS:
        assert f"trigger.body.{name} ??" in trigger["inputs"][name]
    assert {o["id"] for o in doc["outputs"]} >= {"verdict", "severity", "deployment_status"}


def test_incident_handler_runs_the_loops_steps_routed_by_severity() -> None:
    doc = _docs()["incident-handler.yaml"]
    top = [t["id"] for t in doc["tasks"]]
    assert top == [
        "watch", "analyze", "summarize", "decide", "route", "approval_gate", "execute", "measure", "record",
    ]  # fmt: skip
    # collect reads the incident from the inputs, or Alertmanager's own delivery (the webhook), one
    # look per round of the watch
    collect = doc["tasks"][0]["tasks"][0]["inputFiles"]["input.json"]
    assert '"incident": {' in collect and "(trigger.body ?? null)" in collect
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
    [trigger] = doc["triggers"]
    assert trigger["type"] == "io.kestra.plugin.core.trigger.Webhook"
    assert trigger["inputs"] == {"source": "alertmanager", "triggered_by": "alertmanager"}
    for task in _tasks(doc["tasks"]):  # the approval rejects; the waits between two looks go on
        if task["type"].endswith("Pause"):
            assert task["behavior"] in ({"CANCEL", "FAIL"} if task.get("onResume") else {"RESUME"})


# ---------------------------------------------------------------- the flows as they were before issue 20
def test_the_linter_flags_what_kestra_1_3_refused_in_the_old_flows() -> None:
    """The flows of before issue 20 passed every check of the time; Kestra 1.3 refuses them."""
    found = {(Path(v.file).name, v.path, v.rule) for v in lint_path(BEFORE)}
    approval = "tasks[approval_gate].then[approval].onResume[comment]"
    for file, path in [
        ("devops-loop.yaml", "inputs[triggered_by]"),
        ("devops-loop.yaml", approval),
        ("incident-handler.yaml", "inputs[source]"),
        ("incident-handler.yaml", "inputs[triggered_by]"),
        ("incident-handler.yaml", approval),
    ]:
        assert (file, path, "kestra/input-defaults-required") in found
    # both webhooks read inputs their executions do not have (strict Pebble)
    assert ("devops-loop.yaml", "tasks[collect].inputs.snapshot", "runtime/webhook-inputs") in found
    assert (
        "incident-handler.yaml",
        "tasks[collect].inputFiles.input.json",
        "runtime/webhook-inputs",
    ) in found
    assert ("devops-loop.yaml", f"{approval[:-9]}[approved]", "project/legacy-type") in found


def test_cli_lints_one_line_per_violation_with_a_non_zero_exit(tmp_path: Path) -> None:
    clean = subprocess.run(
        [sys.executable, "-m", "console", "kestra", "lint", str(FLOWS)],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert clean.stdout == "" and "no violation" in clean.stderr
    refused = subprocess.run(
        [sys.executable, "-m", "console", "kestra", "lint", str(BEFORE)],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert refused.returncode == 1
    lines = refused.stdout.splitlines()
    assert lines == [str(v) for v in lint_path(BEFORE)]
    line = next(ln for ln in lines if "inputs[triggered_by]" in ln and "devops-loop.yaml" in ln)
    file, flow, path, rule, message = line.split(": ", 4)
    assert file.endswith("flows-before-issue-20/devops-loop.yaml") and flow == "devops-loop"
    assert (path, rule) == ("inputs[triggered_by]", "kestra/input-defaults-required")
    assert message.startswith("Inputs with a default value must be required")
    missing = subprocess.run(
        [sys.executable, "-m", "console", "kestra", "lint", str(tmp_path / "nope")],
        capture_output=True, text=True, cwd=ROOT, timeout=60, check=False,
    )  # fmt: skip
    assert missing.returncode == 2 and missing.stderr.startswith("error: ") and "no such" in missing.stderr


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


def _input(name: str, **changes: Any) -> Mutation:
    def mutate(docs: dict[str, dict[str, Any]]) -> None:
        spec = next(i for i in _loop(docs)["inputs"] if i["id"] == name)
        for key, value in changes.items():
            if value is None:
                spec.pop(key, None)
            else:
                spec[key] = value

    return mutate


def _timer_outside_loop(docs: dict[str, dict[str, Any]]) -> None:
    """The wait between two looks moved out of its LoopUntil, to the top of the flow."""
    loop = _loop(docs)
    measure = _task(loop, "measure")
    loop["tasks"].insert(0, measure["tasks"][1]["then"][0])


def _resume_input(name: str, **changes: Any) -> Mutation:
    def mutate(docs: dict[str, dict[str, Any]]) -> None:
        spec = next(i for i in _task(_loop(docs), "approval")["onResume"] if i["id"] == name)
        spec.update(changes)

    return mutate


def _trigger(**changes: Any) -> Mutation:
    def mutate(docs: dict[str, dict[str, Any]]) -> None:
        trigger = _loop(docs)["triggers"][0]
        for key, value in changes.items():
            if value is None:
                trigger.pop(key, None)
            else:
                trigger[key] = value

    return mutate


def _trigger_input(name: str, value: Any) -> Mutation:
    def mutate(docs: dict[str, dict[str, Any]]) -> None:
        inputs = _loop(docs)["triggers"][0]["inputs"]
        if value is None:
            del inputs[name]
        else:
            inputs[name] = value

    return mutate


def _output_ref(docs: dict[str, dict[str, Any]]) -> None:
    _loop(docs)["outputs"][0]["value"] = "{{ outputs.decide.outputs.verdikt }}"


def _duplicate_input(docs: dict[str, dict[str, Any]]) -> None:
    _loop(docs)["inputs"].append({"id": "service", "type": "STRING", "required": False})


def _required_input(docs: dict[str, dict[str, Any]]) -> None:
    _loop(docs)["inputs"].append({"id": "team", "type": "STRING"})


BROKEN: dict[str, tuple[Mutation, str]] = {
    # Kestra refuses these when the flow is saved
    "optional input with defaults (InputValidator)": (
        _input("triggered_by", prefill=None, defaults="kestra"),
        "kestra/input-defaults-required",
    ),
    "defaults and prefill (InputValidator)": (
        _input("triggered_by", required=True, defaults="kestra"),
        "kestra/input-defaults-prefill",
    ),
    "onResume input with defaults (InputValidator)": (
        _resume_input("comment", defaults=""),
        "kestra/input-defaults-required",
    ),
    "bad input type": (_input("service", type="TEXT"), "kestra/input-type"),
    "duplicate input": (_duplicate_input, "kestra/duplicate-id"),
    "duplicate task id": (_set("record", "id", "execute"), "kestra/duplicate-id"),
    "bad task id": (_set("record", "id", "record outcome"), "kestra/id"),
    "dotted task id": (_set("record", "id", "record.outcome"), "kestra/id"),
    "recursive subflow": (_set("collect", "flowId", "devops-loop"), "kestra/recursive-subflow"),
    "unknown task type": (
        _set("record", "type", "io.kestra.plugin.scripts.python.Scripts"),
        "kestra/task-type",
    ),
    "unknown property": (_set("record", "script", "print(1)"), "kestra/task-property"),
    "missing required property": (_drop("record", "commands"), "kestra/task-property"),
    "bad namespace": (_top("namespace", "DevOps Loop"), "kestra/id"),
    "unknown flow property": (_top("schedule", "@daily"), "kestra/flow-property"),
    "bad pull policy": (
        _set(
            "record",
            "taskRunner",
            {"type": "io.kestra.plugin.scripts.runner.docker.Docker", "pullPolicy": "X"},
        ),
        "kestra/task-property",
    ),
    # Kestra saves these, and their executions fail (strict Pebble, inputs)
    "webhook without inputs": (_trigger(inputs=None), "runtime/webhook-inputs"),
    "webhook misses a required input": (_required_input, "runtime/webhook-input"),
    "unguarded trigger body in the trigger": (
        _trigger_input("service", "{{ trigger.body.service }}"),
        "runtime/trigger-unguarded",
    ),
    "trigger read in a task": (
        _replace_in("execute", "input.json", "{{ execution.id | toJson }}", "{{ trigger.body.id | toJson }}"),
        "runtime/trigger-unguarded",
    ),
    "undeclared input": (
        _replace_in("execute", "input.json", "{{ execution.id | toJson }}", "{{ inputs.team }}"),
        "runtime/undeclared-input",
    ),
    "conditional task read unguarded": (
        _replace_in(
            "execute", "input.json", "(outputs.approval.onResume ?? null)", "outputs.approval.onResume"
        ),
        "runtime/conditional-output",
    ),
    "pebble outside the subset": (
        _replace_in("execute", "input.json", "{{ execution.id | toJson }}", "{{ execution.id | upper }}"),
        "runtime/pebble",
    ),
    "reference to no task": (
        _replace_in("execute", "input.json", "outputs.decide.outputs.plan", "outputs.decider.outputs.plan"),
        "runtime/output-ref",
    ),
    "wrong output family": (
        _replace_in("execute", "input.json", "outputs.decide.outputs.plan", "outputs.decide.vars.plan"),
        "runtime/output-ref",
    ),
    "undeclared subflow output": (_output_ref, "runtime/output-ref"),
    "reads outputs before they exist": (
        _replace_in("execute", "input.json", "outputs.decide.outputs.plan", "outputs.record.vars.outcome"),
        "runtime/output-ref",
    ),
    "missing required subflow input": (_set("summarize", "inputs", {}), "runtime/subflow-input"),
    # the project's rules
    "pause resumes by default": (_set("approval", "behavior", "RESUME"), "project/pause-behavior"),
    "pause without behavior": (_drop("approval", "behavior"), "project/pause-behavior"),
    "pause without duration": (_drop("approval", "pauseDuration"), "project/pause-duration"),
    "pause bad duration": (_set("approval", "pauseDuration", "30 minutes"), "project/pause-duration"),
    "onResume typed wrong": (_resume_input("approved", type="STRING"), "project/approval-inputs"),
    "legacy BOOLEAN": (_resume_input("approved", type="BOOLEAN"), "project/legacy-type"),
    "subflow target missing": (_set("collect", "flowId", "collect-snapshots"), "project/subflow-target"),
    "subflow does not wait": (_set("summarize", "wait", False), "project/subflow-wait"),
    "undeclared subflow input": (
        _set("summarize", "inputs", {"snapshot": "x", "snap": "x"}),
        "project/subflow-input",
    ),
    "not the project image": (
        _set("record", "containerImage", "python:3.11-slim"),
        "project/container-image",
    ),
    "not a step command": (_set("record", "commands", ["python record.py"]), "project/step-command"),
    "unknown step": (
        _set("record", "commands", ["python -m console step publish {{ workingDir }}/input.json --kestra"]),
        "project/step-command",
    ),
    "webhook key in clear": (_trigger(key="my-webhook-key-1234"), "project/webhook-key"),
    # waits are Kestra's own: a timer Pause between the looks of a LoopUntil, bounded
    "timer pause that cancels": (_set("post_action_wait", "behavior", "CANCEL"), "project/pause-behavior"),
    "timer pause outside a loop": (_timer_outside_loop, "project/timer-pause"),
    "loop without bounds": (_drop("measure", "checkFrequency"), "project/loop-bounds"),
    "loop without a limit": (_set("measure", "checkFrequency", {"interval": "PT1S"}), "project/loop-bounds"),
    "loop that ends quietly": (_set("measure", "failOnMaxReached", False), "project/loop-bounds"),
    "loop with an unknown frequency key": (
        _set("measure", "checkFrequency", {"interval": "PT1S", "maxDuration": "PT1H", "every": "PT1S"}),
        "kestra/task-property",
    ),
    "loop without condition": (_drop("measure", "condition"), "kestra/task-property"),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_copy_is_rejected(name: str, tmp_path: Path) -> None:
    mutate, rule = BROKEN[name]
    docs = _docs()
    mutate(docs)
    for file, doc in docs.items():
        (tmp_path / file).write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    found = lint_path(tmp_path)
    assert any(v.rule == rule for v in found), [str(v) for v in found]
    assert all(v.file.startswith(str(tmp_path)) and v.path and v.message for v in found)


def test_unparsable_yaml_is_rejected(tmp_path: Path) -> None:
    shutil.copytree(FLOWS, tmp_path / "flows")
    (tmp_path / "flows" / "devops-loop.yaml").write_text("id: devops-loop\ntasks: [\n", encoding="utf-8")
    [violation] = [v for v in lint_path(tmp_path / "flows") if v.rule == "kestra/yaml"]
    assert violation.file.endswith("devops-loop.yaml") and "does not parse" in violation.message


def test_untouched_copy_round_trips(tmp_path: Path) -> None:
    """The dump/reload used above keeps valid flows valid (so rejections come from the mutation)."""
    for file, doc in _docs().items():
        (tmp_path / file).write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    assert lint_path(tmp_path) == []
    assert lint_documents(_docs()) == []


@settings(max_examples=examples(120), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_a_flow_of_any_shape_gives_violations_never_a_crash(data) -> None:
    """The linter reads what a person wrote: an id that is a list, a mapping where a list belongs, an
    int for a task, a newline in a name. Each is a one-line violation, never a traceback."""
    docs = copy.deepcopy(_PARSED)
    name = data.draw(st.sampled_from(sorted(docs)))
    docs[name] = data.draw(mutated(st.just(docs[name]), JSON | st.dates()))
    found = lint_documents(docs)
    assert all(isinstance(v, Violation) and "\n" not in str(v) for v in found)


_PARSED = _docs()
