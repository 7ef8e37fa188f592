"""The steps' typed inputs and outputs (console/loop/step_io.py) against the wiring table and the
steps themselves: nothing the wiring gives a step is ignored by its input type, nothing the wiring
reads is missing from the output type, and the real steps return exactly what their output types say."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from console.domain.models import Decision
from console.domain.vocabulary import STEP_TASKS
from console.loop import step_io, steps, wiring
from console.loop.step_io import STEP_IO, Look, StepError
from console.settings import Settings


def _output_keys(output_type: type) -> set[str]:
    names = {f.name for f in dataclasses.fields(output_type)}
    return (names - {"look"}) | (set(Look.KEYS) if "look" in names else set())


def test_every_step_has_an_input_and_an_output_type():
    assert set(STEP_IO) == set(STEP_TASKS) == set(wiring.WIRING)


@pytest.mark.parametrize("task", STEP_TASKS)
def test_every_key_the_wiring_gives_a_step_is_a_field_of_its_input(task):
    input_type, _ = STEP_IO[task]
    fields = {f.name for f in dataclasses.fields(input_type)}
    assert set(wiring.WIRING[task]) <= fields, set(wiring.WIRING[task]) - fields


@pytest.mark.parametrize("task", STEP_TASKS)
def test_every_output_the_wiring_reads_is_declared_by_that_steps_output(task):
    for key, source in wiring.WIRING[task].items():
        if source.task not in STEP_IO:  # the execution's own facts, the approval's answer
            continue
        first = source.path.split(".")[0]
        assert first in _output_keys(STEP_IO[source.task][1]), (
            f"{task}.{key} reads {source.task}.{source.path}"
        )


APPROVAL = {"approved": True, "approver": "alice, bob", "comment": "roll it back"}


def _wired_run(settings: Settings, execution_id: str) -> dict[str, dict[str, Any]]:
    """The memory-leak scenario through the real steps, each input built by the wiring table (the
    rollback approved by two people): {"inputs": task -> input, "outputs": task -> outputs}."""
    outputs: dict[str, dict[str, Any]] = {wiring.EXECUTION: {"id": execution_id}}
    inputs: dict[str, dict[str, Any]] = {}
    for task in STEP_TASKS:
        data = wiring.step_input(task, outputs)
        inputs[task] = {**data, "scenario": "memory-leak"} if task == "collect" else data
        outputs[task] = json.loads(json.dumps(steps.run_step(task, inputs[task], settings)))
        if task == "decide":
            outputs["approval"] = APPROVAL
    return {"inputs": inputs, "outputs": outputs}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> dict[str, dict[str, Any]]:
    return _wired_run(Settings(data_dir=tmp_path_factory.mktemp("step-io")), "ex-42")


@pytest.mark.parametrize("task", STEP_TASKS)
def test_the_real_steps_return_exactly_their_declared_outputs(run, task):
    output_type = STEP_IO[task][1]
    declared = _output_keys(output_type)
    omitted = declared - set(run["outputs"][task])
    assert set(run["outputs"][task]) <= declared
    assert omitted <= set(getattr(output_type, "OMITTED_WHEN_NULL", ())), omitted


@pytest.mark.parametrize("task", STEP_TASKS)
def test_the_wired_inputs_of_a_real_run_read_into_their_types(run, task):
    typed = STEP_IO[task][0].from_dict(run["inputs"][task])
    for key in wiring.WIRING[task]:
        if key == "watch":  # parsed from the previous look's JSON string
            continue
        value = getattr(typed, key)
        given = run["inputs"][task][key]
        if isinstance(value, Decision):
            assert value.to_dict() == step_io.decision_of(given, task).to_dict()
        elif key not in ("deployment", "scenario"):  # those two are normalised (see subject())
            assert value == given, key


def test_the_record_of_a_wired_run_carries_the_approval_and_the_execution(run):
    """A value lost between the wiring and a step (a field the input type forgot) shows here."""
    record = run["outputs"]["record"]["outcome"]
    assert record["execution_id"] == "ex-42"
    assert record["approval"] == {
        "status": "approved",
        "approvers": ["alice", "bob"],
        "comment": "roll it back",
    }
    assert [a["mode"] for a in record["executed"]].count("approved") >= 1
    assert record["outcome"]["simulated"] is True


@pytest.mark.parametrize(
    ("task", "data", "message"),
    [
        ("analyze", [], "analyze: input must be a JSON object"),
        ("analyze", {}, "analyze: input needs 'snapshot'"),
        ("summarize", {"snapshot": {}, "decision": 3}, "summarize: 'decision' must be an object"),
        ("decide", {"decision": {"verdict": "SHRUG"}}, "decide: decision is not understood"),
        ("execute", {"plan": {"auto": [1]}}, "execute: plan.auto must be a list of objects"),
        ("execute", {"plan": {}, "approval": "yes"}, "execute: 'approval' must be an object or null"),
        ("verify", {"executed": []}, "verify: input needs 'snapshot' or 'deployment'"),
        (
            "verify",
            {"deployment": {"service": "a"}, "verification": {}, "watch": "{"},
            "verify: 'watch' is not",
        ),
        (
            "record",
            {"snapshot": {}, "decision": {}, "plan": {}, "measured": []},
            "record: 'measured' must be",
        ),
    ],
)
def test_a_bad_input_is_one_line_naming_what_is_wrong(task, data, message):
    with pytest.raises(StepError) as caught:
        STEP_IO[task][0].from_dict(data)
    assert str(caught.value).startswith(message)
    assert "\n" not in str(caught.value)


def test_a_look_that_is_not_the_last_leaves_every_final_output_null():
    look = steps.waiting(110.0, {"state": {}}, "samples", now=100.0, urgent=True)
    out = step_io.VerifyOutput(look=look).to_dict()
    assert out["measured"] is None and out["done"] is False
    assert out["wait"] == "PT10.000S" and json.loads(out["watch"]) == {"state": {}}
    collected = step_io.CollectOutput(look=look).to_dict()
    assert collected["snapshot"] is None and collected["verification"] is None and collected["urgent"] is True
