"""The wiring table (console/loop/wiring.py) is what both engines run: the embedded engine builds each
step's input from it, and every flow's ``input.json`` of a step task reads the same earlier outputs.

The flows are read as written: each ``"key": {{ expression }}`` of a step's ``input.json`` is
compiled with the Pebble subset and its reads normalised to (task, path into its outputs): Kestra's
attribute layer (``vars`` of a Commands task, ``outputs`` of a Subflow, ``onResume`` of a Pause) is
dropped, and a subflow's ``inputs.x`` is followed to what the calling Subflow task gives it."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from console.engines.kestra.flow_lint import COMMANDS, STEP_COMMAND, SUBFLOW, load_documents
from console.engines.kestra.pebble import compile_template
from console.loop import wiring
from tests.kestra.test_flows import _tasks

pytestmark = pytest.mark.kestra

FLOWS = Path(__file__).resolve().parents[2] / "flows"
PAIR = re.compile(r'"(\w+)": (\{\{.*?\}\}|null)')
ATTRIBUTES = {"vars", "outputs", "onResume"}


def _callers(docs: dict[str, Any]) -> dict[str, dict[str, str]]:
    """flow id -> {input id: the expression the calling Subflow task passes for it}."""
    out: dict[str, dict[str, str]] = {}
    for doc in docs.values():
        for task in _tasks(doc["tasks"]):
            if task["type"] == SUBFLOW:
                out[task["flowId"]] = {k: str(v) for k, v in (task.get("inputs") or {}).items()}
    return out


def _source(expression: str, callers: dict[str, str]) -> tuple[str, str] | None:
    """(task, path) an expression reads, normalised; None for a literal."""
    reads = [r.path for r in compile_template(expression).reads()]
    assert len(reads) == 1, f"one read per key: {expression}"
    path = reads[0]
    if path[0] == "inputs":  # a subflow's input: what its caller passes
        return _source(callers[path[1]], {})
    if path[0] == "execution":
        return wiring.EXECUTION, ".".join(path[1:])
    assert path[0] == "outputs", expression
    task, rest = path[1], list(path[2:])
    if rest and rest[0] in ATTRIBUTES:
        rest = rest[1:]
    return task, ".".join(rest)


def _step_inputs() -> list[tuple[str, str, dict[str, tuple[str, str] | None]]]:
    """(flow file, step, {input key: (task, path) or None for a literal null}) of every step task."""
    docs, _ = load_documents(FLOWS)
    callers = _callers(docs)
    found = []
    for name, doc in docs.items():
        given = callers.get(doc["id"], {})
        for task in _tasks(doc["tasks"]):
            if task["type"] != COMMANDS:
                continue
            step = STEP_COMMAND.match(task["commands"][0]).group(1)
            template = task["inputFiles"]["input.json"]
            if step == "collect":  # its other inputs are the launch's; only its own watch is wiring
                template = template[template.index('"watch"') :]
            pairs = {
                key: (None if expr == "null" else _source(expr, given))
                for key, expr in PAIR.findall(template)
            }
            found.append((Path(name).name, step, pairs))
    return found


STEP_TASKS = _step_inputs()


def test_every_step_of_the_loop_is_wired_in_some_flow() -> None:
    assert {step for _, step, _ in STEP_TASKS} == set(wiring.WIRING)


@pytest.mark.parametrize(("flow", "step", "pairs"), STEP_TASKS, ids=[f"{f}:{s}" for f, s, _ in STEP_TASKS])
def test_each_step_task_reads_what_the_wiring_table_says(flow: str, step: str, pairs: dict) -> None:
    table = wiring.WIRING[step]
    for key, read in pairs.items():
        assert key in table, f"{flow}: {step} reads {key!r}, which the wiring table does not give it"
        source = table[key]
        if read is None:
            assert source.optional, f"{flow}: {step}.{key} is null, but the table says it is required"
        else:
            assert read == (source.task, source.path), (
                f"{flow}: {step}.{key} reads {read}, the table {source}"
            )
    missing = [key for key, source in table.items() if not source.optional and key not in pairs]
    assert not missing, f"{flow}: {step} lacks {missing}, which the wiring table requires"


def test_the_table_reads_only_tasks_that_run_before_or_its_own_look() -> None:
    order = ["collect", "analyze", "summarize", "decide", "approval", "execute", "verify", "record"]
    for step, keys in wiring.WIRING.items():
        for source in keys.values():
            if source.task == wiring.EXECUTION:
                continue
            before = order.index(source.task) < order.index(step)
            own_look = source.task == step and source.path == "watch"
            assert before or own_look, f"{step} reads {source.task}, which has not run yet"


def test_the_embedded_engine_builds_each_input_from_the_table(settings, monkeypatch) -> None:
    from console.engines.embedded.runner import EmbeddedEngine
    from console.loop import steps

    seen: dict[str, set[str]] = {}
    for name in ("analyze", "summarize", "decide", "execute", "verify", "record"):
        original = getattr(steps, name)

        def spy(data, settings_, *args, _name=name, _original=original, **kwargs):
            seen[_name] = set(data)
            return _original(data, settings_, *args, **kwargs)

        monkeypatch.setattr(steps, name, spy)
    engine = EmbeddedEngine(settings, synchronous=True)
    execution_id = engine.launch_scenario("healthy-hotfix", "alice")
    assert engine.get_execution(execution_id).state.value == "SUCCESS"
    assert seen == {step: set(keys) for step, keys in wiring.WIRING.items() if step != "collect"}
