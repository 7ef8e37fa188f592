from __future__ import annotations

import pytest

from console.domain.executions import Execution, LogEntry, MalformedExecutionError, State, parse_iso_duration

KESTRA_DOC = {
    "id": "5wF3k",
    "namespace": "devops.loop",
    "flowId": "devops-loop",
    "flowRevision": 3,
    "inputs": {"deployment_id": "deploy-001"},
    "outputs": {"verdict": "ROLLBACK"},
    "labels": [{"key": "launched_by", "value": "judge"}],
    "state": {
        "current": "PAUSED",
        "histories": [
            {"state": "CREATED", "date": "2026-11-22T10:00:00.000Z"},
            {"state": "RUNNING", "date": "2026-11-22T10:00:00.100Z"},
            {"state": "PAUSED", "date": "2026-11-22T10:00:02.600Z"},
        ],
        "startDate": "2026-11-22T10:00:00.000Z",
        "duration": "PT2.6S",
    },
    "taskRunList": [
        {
            "id": "tr1",
            "taskId": "analyze",
            "state": {
                "current": "SUCCESS",
                "histories": [
                    {"state": "RUNNING", "date": "2026-11-22T10:00:01Z"},
                    {"state": "SUCCESS", "date": "2026-11-22T10:00:02Z"},
                ],
            },
            "outputs": {"vars": {"verdict": "ROLLBACK"}},
        }
    ],
}


def test_kestra_execution_round_trip() -> None:
    execution = Execution.from_kestra(KESTRA_DOC)
    assert execution.state is State.PAUSED
    assert execution.labels == {"launched_by": "judge"}
    assert execution.duration_s == pytest.approx(2.6)
    assert execution.task_run("analyze").outputs["vars"]["verdict"] == "ROLLBACK"
    again = Execution.from_kestra(execution.to_kestra())
    assert again == execution


@pytest.mark.parametrize(
    "mutate",
    [
        lambda d: d.pop("id"),
        lambda d: d.update(state="RUNNING"),
        lambda d: d["state"].update(current="EXPLODED"),
        lambda d: d["state"].update(histories=[{"state": "CREATED", "date": "yesterday"}]),
        lambda d: d.update(taskRunList=[{"id": "x"}]),
        lambda d: d.update(labels="a:b"),
        lambda d: d.update(inputs=[1, 2]),
    ],
)
def test_malformed_documents_are_rejected_with_a_message(mutate) -> None:
    import copy

    doc = copy.deepcopy(KESTRA_DOC)
    mutate(doc)
    with pytest.raises(MalformedExecutionError):
        Execution.from_kestra(doc)


@pytest.mark.parametrize("doc", [None, [], "x", 3])
def test_non_objects_are_rejected(doc) -> None:
    with pytest.raises(MalformedExecutionError):
        Execution.from_kestra(doc)


def test_durations_and_logs() -> None:
    assert parse_iso_duration("PT1M2.5S") == 62.5
    assert parse_iso_duration("PT2H") == 7200
    assert parse_iso_duration("soon") is None
    entry = LogEntry.from_kestra(
        {"timestamp": "2026-11-22T10:00:00Z", "level": "WARN", "message": "<b>x</b>"}
    )
    assert entry.message == "<b>x</b>" and entry.level == "WARN"
    with pytest.raises(MalformedExecutionError):
        LogEntry.from_kestra({"level": "INFO"})


def test_an_unknown_state_is_named_in_a_bounded_line():
    doc = {"id": "x", "namespace": "n", "flowId": "f", "state": {"current": "Z" * 5000, "histories": []}}
    with pytest.raises(MalformedExecutionError) as caught:
        Execution.from_kestra(doc)
    assert "unknown state 'ZZZ" in str(caught.value) and len(str(caught.value)) < 200
