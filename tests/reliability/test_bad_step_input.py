"""Bad input for the loop's steps: what Kestra hands ``python -m console step NAME``.

Each step either returns its JSON outputs or raises StepError with a one-line message; nothing else
escapes (the CLI turns StepError into ``error: ...`` and exit code 2).
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from console.domain.vocabulary import STEP_TASKS
from console.loop.step_io import StepError
from console.loop.steps import analyze, decide, execute, load_scenario, record, run_step
from console.settings import Settings
from tests.properties import examples
from tests.reliability.strategies import JSON, mutated
from tests.reliability.test_bad_input import assert_clean

QUIET = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]


@pytest.fixture(scope="module")
def step_settings(tmp_path_factory) -> Settings:
    return Settings(data_dir=tmp_path_factory.mktemp("steps"))


@pytest.fixture(scope="module")
def real(step_settings: Settings) -> dict[str, Any]:
    """Real step inputs from the memory-leak scenario, to mutate."""
    doc = load_scenario("memory-leak", step_settings)
    decision = analyze({"snapshot": doc}, step_settings)["decision"]
    plan = decide({"decision": decision}, step_settings)
    executed = execute({"plan": plan["plan"], "approval": None, "verdict": plan["verdict"]}, step_settings)
    return {"doc": doc, "decision": decision, "plan": plan, "executed": executed}


def _run(name: str, data: Any, step_settings: Settings) -> None:
    try:
        out = run_step(name, data, step_settings)
    except Exception as exc:
        assert_clean(exc, StepError)
    else:
        json.dumps(out)  # outputs are JSON


@settings(max_examples=examples(120), deadline=None, suppress_health_check=QUIET)
@given(st.sampled_from(STEP_TASKS), JSON)
def test_every_step_on_arbitrary_json(step_settings, name, data):
    _run(name, data, step_settings)


@settings(max_examples=examples(120), deadline=None, suppress_health_check=QUIET)
@given(data=st.data())
def test_decide_and_execute_on_near_valid_input(step_settings, real, data):
    decision = data.draw(mutated(st.just(copy.deepcopy(real["decision"]))))
    _run("decide", {"decision": decision}, step_settings)
    _run("summarize", {"snapshot": real["doc"], "decision": decision}, step_settings)
    plan = data.draw(mutated(st.just(copy.deepcopy(real["plan"]["plan"]))))
    approval = data.draw(st.none() | JSON | st.just({"approved": True, "comment": "ok", "approver": "bob"}))
    _run("execute", {"plan": plan, "approval": approval, "verdict": real["plan"]["verdict"]}, step_settings)


@settings(max_examples=examples(60), deadline=None, suppress_health_check=QUIET)
@given(data=st.data())
def test_record_on_near_valid_input(step_settings, real, data):
    base = {
        "execution_id": "ex-1",
        "snapshot": real["doc"],
        "decision": real["decision"],
        "plan": real["plan"]["plan"],
        "approval": None,
        "executed": real["executed"]["executed"],
    }
    doc = data.draw(mutated(st.just({k: v for k, v in base.items() if k != "snapshot"})))
    if isinstance(doc, dict):
        doc["snapshot"] = real["doc"]
    try:
        record(doc, step_settings)
    except Exception as exc:
        assert_clean(exc, StepError)


def test_a_confidence_too_large_for_a_float_is_a_step_error(step_settings, real):
    """Found by the property test above: an integer beyond float range made float() overflow."""
    decision = {**copy.deepcopy(real["decision"]), "confidence": 10**400}
    with pytest.raises(StepError, match=r"decide: decision is not understood \(OverflowError"):
        decide({"decision": decision}, step_settings)
