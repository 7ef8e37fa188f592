"""Executions shaped the way Kestra shapes them, for both engines.

The embedded engine stores these; the Kestra client parses Kestra's JSON into them; the pages read
only these. ``from_kestra`` accepts Kestra 1.x and 2.x execution JSON and rejects malformed input
with :class:`MalformedExecutionError` (never a KeyError/TypeError).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from console.domain.models import format_time, parse_time


class State(StrEnum):
    CREATED = "CREATED"
    SUBMITTED = "SUBMITTED"
    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    PAUSED = "PAUSED"
    RESTARTED = "RESTARTED"
    KILLING = "KILLING"
    RETRYING = "RETRYING"
    SUCCESS = "SUCCESS"
    WARNING = "WARNING"
    FAILED = "FAILED"
    KILLED = "KILLED"
    CANCELLED = "CANCELLED"
    RETRIED = "RETRIED"
    SKIPPED = "SKIPPED"
    BREAKPOINT = "BREAKPOINT"
    RESUBMITTED = "RESUBMITTED"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_STATES


TERMINAL_STATES = frozenset(
    {
        State.SUCCESS,
        State.WARNING,
        State.FAILED,
        State.KILLED,
        State.CANCELLED,
        State.RETRIED,
        State.SKIPPED,
        State.RESUBMITTED,
    }
)


class MalformedExecutionError(ValueError):
    """An execution document does not have Kestra's shape."""


@dataclass
class StateHistory:
    state: State
    date: datetime


@dataclass
class TaskRun:
    id: str
    task_id: str
    state: State
    histories: list[StateHistory] = field(default_factory=list)
    outputs: dict[str, Any] = field(default_factory=dict)
    parent_task_run_id: str | None = None
    value: str | None = None

    @property
    def start(self) -> datetime | None:
        return self.histories[0].date if self.histories else None

    @property
    def end(self) -> datetime | None:
        if self.state.terminal and self.histories:
            return self.histories[-1].date
        return None


@dataclass
class Execution:
    id: str
    namespace: str
    flow_id: str
    state: State
    histories: list[StateHistory]
    inputs: dict[str, Any] = field(default_factory=dict)
    outputs: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    task_runs: list[TaskRun] = field(default_factory=list)
    parent_id: str | None = None
    flow_revision: int | None = None

    @property
    def start(self) -> datetime | None:
        return self.histories[0].date if self.histories else None

    @property
    def end(self) -> datetime | None:
        if (self.state.terminal or self.state == State.PAUSED) and self.histories:
            return self.histories[-1].date
        return None

    @property
    def duration_s(self) -> float | None:
        if self.start is None or self.end is None:
            return None
        return (self.end - self.start).total_seconds()

    def task_run(self, task_id: str) -> TaskRun | None:
        """The task's run. A step that looks (collect, verify in a Kestra loop) runs once per look:
        the first run that is not a look still waiting (``done: false`` in its outputs or their
        ``vars``), else its latest look."""
        runs = [run for run in self.task_runs if run.task_id == task_id]
        for run in runs:
            outputs = run.outputs or {}
            inner = outputs.get("vars") if isinstance(outputs.get("vars"), dict) else outputs
            if inner.get("done") is not False:
                return run
        return runs[-1] if runs else None

    def to_kestra(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "current": self.state.value,
            "histories": [{"state": h.state.value, "date": format_time(h.date)} for h in self.histories],
            "startDate": format_time(self.start) if self.start else None,
        }
        if self.end is not None and self.start is not None:
            state["endDate"] = format_time(self.end)
            state["duration"] = f"PT{(self.end - self.start).total_seconds():.3f}S"
        return {
            "id": self.id,
            "namespace": self.namespace,
            "flowId": self.flow_id,
            "flowRevision": self.flow_revision,
            "tenantId": "main",
            "parentId": self.parent_id,
            "inputs": self.inputs,
            "outputs": self.outputs,
            "labels": [{"key": k, "value": v} for k, v in self.labels.items()],
            "state": state,
            "taskRunList": [
                {
                    "id": r.id,
                    "taskId": r.task_id,
                    "parentTaskRunId": r.parent_task_run_id,
                    "value": r.value,
                    "outputs": r.outputs,
                    "state": {
                        "current": r.state.value,
                        "histories": [
                            {"state": h.state.value, "date": format_time(h.date)} for h in r.histories
                        ],
                    },
                    "attempts": [{"state": {"current": r.state.value}}],
                }
                for r in self.task_runs
            ],
        }

    @classmethod
    def from_kestra(cls, doc: Any) -> Execution:
        if not isinstance(doc, dict):
            raise MalformedExecutionError("execution is not a JSON object")
        try:
            state_doc = _mapping(doc.get("state"), "state")
            task_runs = [_task_run(r) for r in (doc.get("taskRunList") or [])]
            return cls(
                id=_text(doc.get("id"), "id"),
                namespace=_text(doc.get("namespace"), "namespace"),
                flow_id=_text(doc.get("flowId"), "flowId"),
                state=_state(state_doc.get("current"), "state.current"),
                histories=_histories(state_doc.get("histories"), "state.histories"),
                inputs=_mapping(doc.get("inputs") or {}, "inputs"),
                outputs=_mapping(doc.get("outputs") or {}, "outputs"),
                labels=_labels(doc.get("labels")),
                task_runs=task_runs,
                parent_id=doc.get("parentId") if isinstance(doc.get("parentId"), str) else None,
                flow_revision=doc.get("flowRevision") if isinstance(doc.get("flowRevision"), int) else None,
            )
        except MalformedExecutionError:
            raise
        except (TypeError, ValueError, AttributeError) as exc:
            raise MalformedExecutionError(f"execution JSON not understood: {exc}") from None


_ISO_DURATION = re.compile(r"^PT(?:(\d+)H)?(?:(\d+)M)?(?:([\d.]+)S)?$")


def history_with(items: list[dict[str, str]], *states: State | str) -> list[dict[str, str]]:
    """A state history as engines store it (``[{"state", "date"}]``, oldest first) with one entry
    per state appended, dated now."""
    now = format_time(datetime.now(UTC))
    return [*items, *({"state": State(s).value, "date": now} for s in states)]


def parse_iso_duration(text: str) -> float | None:
    """Seconds in a Kestra duration such as ``PT1M2.5S``; None when not understood."""
    match = _ISO_DURATION.match(text or "")
    if not match:
        return None
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise MalformedExecutionError(f"{where} is missing or not a string")
    return value


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise MalformedExecutionError(f"{where} is not an object")
    return value


def _state(value: Any, where: str) -> State:
    try:
        return State(value)
    except ValueError:
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:59] + "…"  # the value comes from outside
        raise MalformedExecutionError(f"{where}: unknown state {shown}") from None


def _histories(value: Any, where: str) -> list[StateHistory]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedExecutionError(f"{where} is not a list")
    out = []
    for i, item in enumerate(value):
        item = _mapping(item, f"{where}[{i}]")
        try:
            date = parse_time(_text(item.get("date"), f"{where}[{i}].date"))
        except ValueError:
            raise MalformedExecutionError(f"{where}[{i}].date is not a timestamp") from None
        out.append(StateHistory(_state(item.get("state"), f"{where}[{i}].state"), date))
    return out


def _labels(value: Any) -> dict[str, str]:
    if value is None:
        return {}
    if isinstance(value, dict):  # older servers
        return {str(k): str(v) for k, v in value.items()}
    if not isinstance(value, list):
        raise MalformedExecutionError("labels is not a list")
    out = {}
    for item in value:
        item = _mapping(item, "labels[]")
        out[str(item.get("key"))] = str(item.get("value"))
    return out


def _task_run(doc: Any) -> TaskRun:
    doc = _mapping(doc, "taskRunList[]")
    state_doc = _mapping(doc.get("state"), "taskRunList[].state")
    return TaskRun(
        id=_text(doc.get("id"), "taskRunList[].id"),
        task_id=_text(doc.get("taskId"), "taskRunList[].taskId"),
        state=_state(state_doc.get("current"), "taskRunList[].state.current"),
        histories=_histories(state_doc.get("histories"), "taskRunList[].state.histories"),
        outputs=_mapping(doc.get("outputs") or {}, "taskRunList[].outputs"),
        parent_task_run_id=doc.get("parentTaskRunId")
        if isinstance(doc.get("parentTaskRunId"), str)
        else None,
        value=doc.get("value") if isinstance(doc.get("value"), str) else None,
    )


@dataclass
class LogEntry:
    timestamp: datetime
    level: str
    message: str
    task_id: str | None = None
    task_run_id: str | None = None

    @classmethod
    def from_kestra(cls, doc: Any) -> LogEntry:
        doc = _mapping(doc, "log")
        try:
            ts = parse_time(_text(doc.get("timestamp"), "log.timestamp"))
        except ValueError:
            raise MalformedExecutionError("log.timestamp is not a timestamp") from None
        message = doc.get("message")
        return cls(
            timestamp=ts,
            level=str(doc.get("level") or "INFO"),
            message=message if isinstance(message, str) else str(message),
            task_id=doc.get("taskId") if isinstance(doc.get("taskId"), str) else None,
            task_run_id=doc.get("taskRunId") if isinstance(doc.get("taskRunId"), str) else None,
        )
