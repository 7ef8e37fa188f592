"""Bad input: property-based tests on every parser of external JSON.

Each parser either returns a value or raises its module's own error type with a non-empty,
one-line message. Nothing else (KeyError, TypeError, OverflowError, RecursionError, a bare
ValueError...) may escape. Valid documents are generated too, and must be accepted.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from console.domain.executions import Execution, LogEntry, MalformedExecutionError
from console.domain.models import Snapshot, Verdict
from console.domain.snapshot import SnapshotError, loads_snapshot, parse_snapshot
from console.engines.kestra.client import KestraClient, KestraError
from console.loop.narrative import MAX_NARRATIVE, LLMFailure, parse_answer
from console.loop.scenarios import ScenarioError, load_scenario_document, read_scenario, scan_scenarios
from tests.properties import examples
from tests.reliability.garbage_http import GarbageServer
from tests.reliability.strategies import (
    JSON,
    kestra_execution_docs,
    llm_answer_docs,
    log_docs,
    mutated,
    scenario_docs,
    snapshot_docs,
)

MAX_MESSAGE = 2000
DEEP = "[" * 50_000 + "]" * 50_000
HUGE_INT = "1" * 5000  # beyond Python's 4300-digit int limit: json.loads raises a bare ValueError
OVERFLOW_TS = "9999-12-31T23:59:59-01:00"  # valid ISO text whose UTC conversion overflows

# The suite's fixed sample (tests/properties.py): ~2,300 generated inputs in total.
_QUIET = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
CHEAP = settings(max_examples=examples(300), deadline=None, suppress_health_check=_QUIET)
MANY = settings(max_examples=examples(150), deadline=None, suppress_health_check=_QUIET)
FAST = settings(max_examples=examples(80), deadline=None, suppress_health_check=_QUIET)


def assert_clean(exc: BaseException, kind: type[BaseException]) -> str:
    """The error is the module's own type with a non-empty, one-line, bounded message."""
    assert isinstance(exc, kind), f"{type(exc).__name__} escaped instead of {kind.__name__}: {exc}"
    message = str(exc)
    assert message.strip(), "empty error message"
    assert "\n" not in message and "\r" not in message, f"multi-line message: {message!r}"
    assert len(message) <= MAX_MESSAGE, f"message of {len(message)} characters"
    return message


def _dumps(value: Any) -> str:
    return json.dumps(value, allow_nan=True)


# ------------------------------------------------------------------ snapshots


def _check_snapshot(snap: Snapshot, doc: dict[str, Any] | None = None) -> None:
    for name, (times, values) in snap.metrics.items():
        assert len(times) == len(values)
        assert times == sorted(times), f"{name}: times not sorted"
        assert all(math.isfinite(v) for v in values)
        if doc is not None:
            assert len(times) == len(doc["metrics"][name])
    if doc is not None:
        assert len(snap.logs) == len(doc["logs"])
        assert snap.deployment.id == doc["deployment"]["id"]


def _load(text: str | bytes) -> Snapshot | None:
    try:
        return loads_snapshot(text)
    except Exception as exc:
        assert_clean(exc, SnapshotError)
        return None


@CHEAP
@given(st.text() | st.binary())
@example(DEEP)
@example(HUGE_INT)
@example(b"\xff\xfe{")
@example('{"deployment": ')
def test_snapshot_loader_on_arbitrary_text(text: str | bytes) -> None:
    _load(text)


@MANY
@given(JSON)
def test_snapshot_loader_on_arbitrary_json(doc: Any) -> None:
    _load(_dumps(doc))


@MANY
@given(mutated(snapshot_docs()))
@example(
    {
        "deployment": {"id": "d", "service": "s", "version": "v", "deployed_at": OVERFLOW_TS},
        "metrics": {},
        "logs": [],
    }
)
@example(
    {
        "deployment": {"id": "d", "service": "s", "version": "v", "deployed_at": "2026-11-20T12:00:00Z"},
        "metrics": {"m": [["2026-11-20T12:00:00Z", 10**400]]},
        "logs": [],
    }
)
@example(
    {
        "deployment": {"id": "d", "service": "s", "version": "v", "deployed_at": "2026-11-20T12:00:00Z"},
        "metrics": {"bad\nname": [["2026-11-20T12:00:00Z", "x"]]},
        "logs": [],
    }
)
def test_snapshot_parser_on_near_valid_documents(doc: Any) -> None:
    snap = _load(_dumps(doc))
    if snap is not None:
        _check_snapshot(snap)
    try:
        direct = parse_snapshot(doc)
    except Exception as exc:
        assert_clean(exc, SnapshotError)
    else:
        _check_snapshot(direct)


@FAST
@given(snapshot_docs())
def test_valid_snapshots_are_accepted_and_round_trip(doc: dict[str, Any]) -> None:
    snap = parse_snapshot(doc)
    _check_snapshot(snap, doc)
    again = loads_snapshot(json.dumps(snap.to_dict()))
    assert again.metrics == snap.metrics
    assert [r.message for r in again.logs] == [r.message for r in snap.logs]
    assert again.deployment == snap.deployment


# ------------------------------------------------------------------ Kestra executions and logs


def _execution(doc: Any) -> Execution | None:
    try:
        return Execution.from_kestra(doc)
    except Exception as exc:
        assert_clean(exc, MalformedExecutionError)
        return None


@MANY
@given(JSON)
def test_execution_parser_on_arbitrary_json(doc: Any) -> None:
    _execution(doc)


@MANY
@given(mutated(kestra_execution_docs()))
@example(
    {
        "id": "x",
        "namespace": "n",
        "flowId": "f",
        "state": {"current": "RUNNING", "histories": [{"state": "RUNNING", "date": OVERFLOW_TS}]},
    }
)
def test_execution_parser_on_near_valid_documents(doc: Any) -> None:
    _execution(doc)


@FAST
@given(kestra_execution_docs())
def test_valid_executions_are_accepted_and_round_trip(doc: dict[str, Any]) -> None:
    execution = Execution.from_kestra(doc)
    assert execution.id == doc["id"] and execution.state.value == doc["state"]["current"]
    assert len(execution.task_runs) == len(doc.get("taskRunList") or [])
    again = Execution.from_kestra(json.loads(_dumps(execution.to_kestra())))
    assert again.id == execution.id and again.state == execution.state
    assert [h.state for h in again.histories] == [h.state for h in execution.histories]
    assert [(r.id, r.task_id, r.state) for r in again.task_runs] == [
        (r.id, r.task_id, r.state) for r in execution.task_runs
    ]
    assert again.labels == execution.labels


@MANY
@given(JSON | mutated(log_docs()))
@example({"timestamp": OVERFLOW_TS, "level": "INFO", "message": "x"})
def test_log_entry_parser(doc: Any) -> None:
    try:
        entry = LogEntry.from_kestra(doc)
    except Exception as exc:
        assert_clean(exc, MalformedExecutionError)
    else:
        assert isinstance(entry.message, str) and isinstance(entry.level, str)


@FAST
@given(log_docs())
def test_valid_log_entries_are_accepted(doc: dict[str, Any]) -> None:
    entry = LogEntry.from_kestra(doc)
    assert entry.level == doc["level"]


# ------------------------------------------------------------------ Kestra client over HTTP

PASSWORD = "Sentinel-Kestra-Pass-7731"


@pytest.fixture(scope="module")
def garbage() -> GarbageServer:
    with GarbageServer() as server:
        yield server


def _bodies() -> st.SearchStrategy[bytes]:
    executions = kestra_execution_docs()
    docs = (
        JSON
        | mutated(executions)
        | st.builds(
            lambda items, total: {"results": items, "total": total},
            st.lists(mutated(executions), max_size=3),
            JSON,
        )
        | st.lists(mutated(log_docs()), max_size=4)
        | mutated(st.fixed_dictionaries({"version": st.sampled_from(["1.3.21", "2.0.0"])}))
        | st.lists(st.fixed_dictionaries({"taskRunId": st.text(max_size=4)}), max_size=3)
        | st.fixed_dictionaries({"message": st.text(max_size=300)})
    )
    return (
        docs.map(lambda d: _dumps(d).encode())
        | st.binary(max_size=200)
        | st.sampled_from([DEEP.encode(), HUGE_INT.encode(), b"<html><body>502 Bad Gateway</body></html>"])
    )


CALLS = {
    "configs": lambda c: c.configs(),
    "version": lambda c: c.version,
    "get_flow": lambda c: c.get_flow("devops.loop", "devops-loop"),
    "search": lambda c: c.search_executions(namespace="devops.loop", page=1, size=5),
    "get_execution": lambda c: c.get_execution("abc"),
    "logs": lambda c: c.logs("abc", min_level="INFO"),
    "trigger": lambda c: c.trigger("devops.loop", "devops-loop", {"scenario": "memory-leak"}),
    "resume": lambda c: c.resume("abc", {"approved": True, "comment": "ok"}),
    "kill": lambda c: c.kill("abc"),
    "validate": lambda c: c.validate_flows(["id: a\nnamespace: n\ntasks: []"]),
    "deploy": lambda c: c.deploy_flow("id: a\nnamespace: n\ntasks: []"),
}


@settings(max_examples=examples(150), deadline=None, suppress_health_check=_QUIET)
@given(
    call=st.sampled_from(sorted(CALLS)),
    status=st.sampled_from([200, 201, 204, 302, 400, 401, 403, 404, 409, 418, 422, 500, 502, 503])
    | st.integers(200, 599),
    content_type=st.sampled_from(["application/json", "text/html", "text/plain; charset=latin-1", ""]),
    body=_bodies(),
    major=st.sampled_from(["1.3.21", "2.0.0"]),
)
def test_kestra_client_on_arbitrary_answers(
    garbage: GarbageServer, call: str, status: int, content_type: str, body: bytes, major: str
) -> None:
    garbage.answer(status, body if status not in (204, 304) else b"", content_type)
    version = None if call == "version" else major
    client = KestraClient(
        garbage.url, username="admin", password=PASSWORD, timeout=2.0, retries=0, backoff_s=0, version=version
    )
    try:
        CALLS[call](client)
    except Exception as exc:
        message = assert_clean(exc, KestraError)
        assert PASSWORD not in message
    finally:
        client.session.close()


# ------------------------------------------------------------------ LLM answers


def _answer(content: Any):
    try:
        return parse_answer(content)
    except Exception as exc:
        assert_clean(exc, LLMFailure)
        assert exc.unavailable is False, "a bad answer is 'answer rejected', not 'unavailable'"
        return None


@CHEAP
@given(st.text() | st.none())
@example(DEEP)
@example(HUGE_INT)
@example("```json\n" + HUGE_INT + "\n```")
def test_llm_answer_parser_on_arbitrary_text(content: str | None) -> None:
    _answer(content)


@MANY
@given(mutated(llm_answer_docs()) | JSON, st.booleans())
def test_llm_answer_parser_on_near_valid_answers(doc: Any, fence: bool) -> None:
    text = _dumps(doc)
    answer = _answer(f"```json\n{text}\n```" if fence else text)
    if answer is not None:
        assert isinstance(answer.verdict, Verdict)


@FAST
@given(llm_answer_docs(), st.booleans())
def test_valid_llm_answers_are_accepted_and_bounded(doc: dict[str, Any], fence: bool) -> None:
    text = json.dumps(doc)
    answer = parse_answer(f"```json\n{text}\n```" if fence else text)
    assert answer.verdict == Verdict(doc["verdict"])
    assert len(answer.actions) == len(doc["actions"])
    for key, limit in MAX_NARRATIVE.items():
        value = getattr(answer, key)
        assert len(value) <= limit
        assert all(ch == "\n" or ch.isprintable() or ch.isspace() for ch in value)


# ------------------------------------------------------------------ scenario files


@pytest.fixture(scope="module")
def scenario_dir():
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


def _scenario_bytes() -> st.SearchStrategy[bytes]:
    return (
        mutated(scenario_docs()).map(lambda d: _dumps(d).encode())
        | JSON.map(lambda d: _dumps(d).encode())
        | st.binary(max_size=100)
        | st.sampled_from([DEEP.encode(), HUGE_INT.encode(), b"\xef\xbb\xbf{}", b""])
    )


@settings(max_examples=examples(80), deadline=None, suppress_health_check=_QUIET)
@given(st.lists(_scenario_bytes(), min_size=1, max_size=3))
def test_scenario_files(scenario_dir: Path, contents: list[bytes]) -> None:
    for old in scenario_dir.glob("*.json"):
        old.unlink()
    paths = []
    for i, data in enumerate(contents):
        path = scenario_dir / f"s{i}.json"
        path.write_bytes(data)
        paths.append(path)
        try:
            scenario, doc = read_scenario(path)
        except Exception as exc:
            assert_clean(exc, ScenarioError)
        else:
            assert scenario.id == doc["scenario"]["id"]
    scenarios, problems = scan_scenarios(scenario_dir)
    assert len(scenarios) + len(problems) == len(paths), "every file is either a scenario or a problem"
    for problem in problems:
        assert problem.message.strip() and "\n" not in problem.message
    for scenario in scenarios:
        assert load_scenario_document(scenario.id, scenario_dir)["scenario"]["id"] == scenario.id


@settings(max_examples=examples(50), deadline=None, suppress_health_check=_QUIET)
@given(scenario_docs())
def test_valid_scenario_files_are_listed(scenario_dir: Path, doc: dict[str, Any]) -> None:
    for old in scenario_dir.glob("*.json"):
        old.unlink()
    (scenario_dir / "one.json").write_text(json.dumps(doc), encoding="utf-8")
    scenarios, problems = scan_scenarios(scenario_dir)
    assert problems == [] and [s.id for s in scenarios] == [doc["scenario"]["id"]]
    assert scenarios[0].expected_verdict == Verdict(doc["scenario"]["expected_verdict"].upper())


@FAST
@given(st.text(max_size=50) | JSON)
def test_unknown_scenario_ids(scenario_dir: Path, scenario_id: Any) -> None:
    try:
        load_scenario_document(scenario_id, scenario_dir)
    except Exception as exc:
        assert_clean(exc, ScenarioError)
