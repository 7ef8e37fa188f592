"""The pages' tables and small records: executions and their task runs and logs, loop progress,
a decision's evidence, deployments, the Overview's KPI tiles, approvals and the audit trail.

Pure functions (no Streamlit, no I/O) so every table the pages show is testable on its own. Inputs
are the objects the rest of ``console/`` hands out (executions, decisions, approvals, store rows).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pandas as pd

from console.domain.executions import Execution, LogEntry, State
from console.domain.models import Decision
from console.domain.redaction import mask_url
from console.domain.vocabulary import LOOP_TASKS
from console.presentation.charts import metric_title
from console.presentation.formatting import (
    CLASSIFICATION_LABELS,
    Badge,
    as_time,
    csv_cell,
    field,
    format_duration,
    format_percent,
    metric_value,
    state_badge,
)
from console.presentation.queue import run_progress

# ---------------------------------------------------------------------------------------------
# Executions
# ---------------------------------------------------------------------------------------------

EXECUTION_COLUMNS = ["id", "state", "flow", "service", "scenario", "triggered_by", "start", "duration_s"]


def _label_or_input(execution: Execution, key: str) -> str:
    value = execution.labels.get(key) or execution.inputs.get(key)
    return str(value) if value else ""


def executions_frame(executions: Iterable[Execution], now: datetime | None = None) -> pd.DataFrame:
    """One row per execution, newest first; running ones get their duration so far."""
    now = now or datetime.now(UTC)
    rows = []
    for ex in executions:
        duration = ex.duration_s
        if duration is None and ex.start is not None:
            duration = (now - ex.start).total_seconds()
        rows.append(
            {
                "id": ex.id,
                "state": ex.state.value,
                "flow": f"{ex.namespace}.{ex.flow_id}",
                # both engines pass these as flow inputs; labels may carry them too
                "service": _label_or_input(ex, "service"),
                "scenario": _label_or_input(ex, "scenario"),
                "triggered_by": _label_or_input(ex, "triggered_by"),
                "start": pd.Timestamp(ex.start) if ex.start else pd.NaT,
                "duration_s": duration,
            }
        )
    frame = pd.DataFrame(rows, columns=EXECUTION_COLUMNS)
    if not frame.empty:
        frame = frame.sort_values("start", ascending=False, na_position="last", kind="stable")
        frame = frame.reset_index(drop=True)
    return frame


def task_runs_frame(execution: Execution, now: datetime | None = None) -> pd.DataFrame:
    """Task runs with start/end for a Gantt timeline; a running task ends at ``now``."""
    now = now or datetime.now(UTC)
    rows = []
    for run in execution.task_runs:
        if run.start is None:
            continue
        end = run.end
        if end is None:
            end = run.histories[-1].date if run.state == State.PAUSED and run.histories else now
        end = max(end, run.start)
        rows.append(
            {
                "task": run.task_id,
                "state": run.state.value,
                "start": pd.Timestamp(run.start),
                "end": pd.Timestamp(end),
                "duration_s": (end - run.start).total_seconds(),
            }
        )
    return pd.DataFrame(rows, columns=["task", "state", "start", "end", "duration_s"])


def logs_frame(logs: Sequence[LogEntry], task_id: str | None = None) -> pd.DataFrame:
    """Log lines as a table (text stays text: the page renders it with st.dataframe, never HTML)."""
    rows = [
        {
            "time": pd.Timestamp(entry.timestamp),
            "level": entry.level,
            "task": entry.task_id or "",
            "message": entry.message,
        }
        for entry in logs
        if task_id is None or entry.task_id == task_id
    ]
    return pd.DataFrame(rows, columns=["time", "level", "task", "message"])


@dataclass(frozen=True)
class StepProgress:
    task: str
    state: str
    """"pending", or a task-run state such as RUNNING / SUCCESS / PAUSED / FAILED."""


def loop_progress(execution: Execution) -> list[StepProgress]:
    """Where an execution is in the loop, step by step (pending for steps not reached yet)."""
    seen = {run.task_id: run.state.value for run in execution.task_runs}
    steps = list(LOOP_TASKS)
    steps += [t for t in seen if t not in steps]
    return [StepProgress(step, seen.get(step, "pending")) for step in steps]


def progress_fraction(execution: Execution) -> float:
    steps = loop_progress(execution)
    if execution.state.terminal:
        return 1.0
    done = sum(1 for s in steps if s.state in {"SUCCESS", "WARNING", "SKIPPED"})
    return done / len(steps) if steps else 0.0


def task_output(execution: Execution, task_id: str, key: str, default: Any = None) -> Any:
    """An output of a task run, whether stored flat or under Kestra's ``vars``."""
    run = execution.task_run(task_id)
    if run is None:
        return default
    outputs = run.outputs or {}
    if key in outputs:
        return outputs[key]
    inner = outputs.get("vars")
    if isinstance(inner, Mapping) and key in inner:
        return inner[key]
    return default


def execution_decision(execution: Execution) -> Decision | None:
    """The decision an execution reached (summarize's, else analyze's), if any."""
    for task in ("summarize", "analyze"):
        doc = task_output(execution, task, "decision")
        if isinstance(doc, Mapping):
            try:
                return Decision.from_dict(dict(doc))
            except (KeyError, ValueError, TypeError):
                return None
    return None


# ---------------------------------------------------------------------------------------------
# Decisions
# ---------------------------------------------------------------------------------------------


EVIDENCE_COLUMNS = ["metric", "result", "before", "after", "change", "p", "Cliff's δ", "why"]


def evidence_frame(decision: Decision, levels: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Per-metric evidence as people read it: the metric's name, Pass/High/Low, the level before
    and after the deploy in its unit (``0.8%``, ``868 ms``), the change, the test and why. With
    ``levels`` (:func:`console.presentation.approval_card.metric_levels`) "after" is the number the
    summary quotes (the median of the window's last half); without, the whole window's median."""
    rows = []
    for m in decision.metrics:
        level = (levels or {}).get(m.name)
        before = getattr(level, "baseline", None) if level is not None else m.baseline_median
        after = getattr(level, "now", None) if level is not None else m.after_median
        change = ""
        if before not in (None, 0) and after is not None:
            change = f"{(after - before) / abs(before) * 100:+.0f}%".replace("-", "−")
        rows.append(
            {
                "metric": metric_title(m.name),
                "result": CLASSIFICATION_LABELS.get(m.classification.value, m.classification.value),
                "before": metric_value(m.name, before),
                "after": metric_value(m.name, after),
                "change": change,
                # "<0.0001", not "<1e-4": a narrow column wraps a hyphen onto two lines
                "p": "" if m.p_value is None else "<0.0001" if m.p_value < 1e-4 else f"{m.p_value:.2g}",
                "Cliff's δ": f"{m.effect_size:+.2f}" if m.effect_size is not None else "",
                "why": m.reason,
            }
        )
    return pd.DataFrame(rows, columns=EVIDENCE_COLUMNS)


def evidence_headers(levels: Mapping[str, Any] | None) -> dict[str, str]:
    """Column titles that say which statistic "before" and "after" are."""
    if levels:
        return {"before": "before (median)", "after": "end of window (median, last half)"}
    return {"before": "before (median)", "after": "after (median, whole window)"}


def log_patterns_frame(decision: Decision, only_changed: bool = True) -> pd.DataFrame:
    rows = [
        {
            "status": p.status,
            "level": p.level,
            "template": p.template,
            "before": p.count_before,
            "after": p.count_after,
            "category": p.category or "",
        }
        for p in decision.log_patterns
        if not only_changed or p.status in {"new", "surging"}
    ]
    return pd.DataFrame(rows, columns=["status", "level", "template", "before", "after", "category"])


def actions_frame(decision: Decision) -> pd.DataFrame:
    rows = [{"action": a.name, "risk": a.risk.value, "reason": a.reason} for a in decision.actions]
    return pd.DataFrame(rows, columns=["action", "risk", "reason"])


# ---------------------------------------------------------------------------------------------
# Deployments
# ---------------------------------------------------------------------------------------------

DEPLOYMENT_COLUMNS = [
    "deployment_id",
    "service",
    "version",
    "previous_version",
    "environment",
    "verdict",
    "confidence",
    "status",
    "deployed_at",
    "execution_id",
]


def deployments_frame(
    rows: Iterable[Mapping[str, Any] | Any], positions: Mapping[str, Mapping[str, Any]] | None = None
) -> pd.DataFrame:
    """Deployments newest first, in the columns the Deployments page shows; ``positions`` (execution
    id -> its place in the engine's queue) turns an ``analyzing`` status into "queued, N ahead" or
    "waiting until …" (:func:`console.presentation.queue.run_progress`)."""
    records = []
    positions = positions or {}
    for row in rows:
        status = run_progress(field(row, "status"), positions.get(str(field(row, "execution_id", ""))))
        deployed_at = as_time(field(row, "deployed_at"))
        confidence = field(row, "confidence")
        records.append(
            {
                "deployment_id": str(field(row, "deployment_id", field(row, "id", ""))),
                "service": str(field(row, "service", "")),
                "version": str(field(row, "version", "")),
                "previous_version": str(field(row, "previous_version", "")),
                "environment": str(field(row, "environment", "production")),
                "verdict": str(field(row, "verdict", "")),
                # in percent, whole: a table cell reads "95%", never "94.59%" or 0.9459
                "confidence": round(float(confidence) * 100) if confidence is not None else None,
                "status": (status or "—") + (" · simulated" if field(row, "simulated") and status else ""),
                "deployed_at": pd.Timestamp(deployed_at) if deployed_at else pd.NaT,
                "execution_id": str(field(row, "execution_id", "")),
            }
        )
    frame = pd.DataFrame(records, columns=DEPLOYMENT_COLUMNS)
    if not frame.empty:
        frame = frame.sort_values("deployed_at", ascending=False, na_position="last", kind="stable")
        frame = frame.reset_index(drop=True)
    return frame


# ---------------------------------------------------------------------------------------------
# Overview KPIs
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Tile:
    label: str
    value: str
    help: str = ""


def kpi_tiles(kpis: Any) -> list[Tile]:
    """The Overview tiles from the store's dashboard KPIs (``Store.deployments.dashboard_kpis``): the
    loop's own time to a decision and the time people took are two tiles, never one mean."""
    share = field(kpis, "auto_approved_share")
    rollbacks = int(field(kpis, "rollbacks_today", 0))
    escalations = int(field(kpis, "escalations_today", 0))
    deployments = str(field(kpis, "deployments_today", 0))
    pending = str(field(kpis, "pending_approvals", 0))
    return [
        Tile("Deployments today", deployments, "Deployments analysed since 00:00 UTC"),
        Tile("Rollbacks", str(rollbacks), f"Rolled back today ({escalations} escalated)"),
        Tile("Pending approvals", pending, "Risky actions waiting for a human"),
        Tile(
            "Without a human",
            format_percent(share),
            "Today's decided deployments whose actions ran on their own: no approval asked and no "
            "escalation (an ESCALATE always needs a human)",
        ),
        Tile(
            "Loop time",
            format_duration(field(kpis, "mean_loop_time_s")),
            "Mean time from the deploy to the loop's decision, today (a demo scenario or an incident: "
            "from the run's launch)",
        ),
        Tile(
            "Human wait",
            format_duration(field(kpis, "mean_human_wait_s")),
            "Mean time from an approval request to its decision or expiry, today",
        ),
    ]


# ---------------------------------------------------------------------------------------------
# Approvals
# ---------------------------------------------------------------------------------------------

APPROVAL_HISTORY_COLUMNS = [
    "id",
    "execution_id",
    "service",
    "action",
    "risk",
    "requested_by",
    "requested_at",
    "status",
    "decided_by",
    "decided_at",
    "comment",
]


def approvals_history_frame(items: Iterable[Any]) -> pd.DataFrame:
    """Audit trail rows (approvals or votes) as a table, newest first."""
    rows = []
    for item in items:
        row = {}
        for col in APPROVAL_HISTORY_COLUMNS:
            value = field(item, col, "")
            if col.endswith("_at"):
                stamp = as_time(value)
                value = pd.Timestamp(stamp) if stamp else pd.NaT
            elif isinstance(value, list | tuple):
                value = ", ".join(str(v) for v in value)
            elif not isinstance(value, str):
                value = str(value)
            row[col] = value
        rows.append(row)
    frame = pd.DataFrame(rows, columns=APPROVAL_HISTORY_COLUMNS)
    if not frame.empty:
        frame = frame.sort_values("requested_at", ascending=False, na_position="last", kind="stable")
        frame = frame.reset_index(drop=True)
    return frame


def action_names(items: Iterable[Any]) -> list[str]:
    """Names of executed/skipped actions, whether stored as names or as action dicts."""
    out = []
    for item in items or []:
        out.append(
            str(item) if isinstance(item, str) else str(field(item, "name", field(item, "action", "?")))
        )
    return out


ACTION_COLUMNS = ["action", "risk", "mode", "result", "executor", "by", "finished"]


def actions_frame_of_run(actions: Iterable[Mapping[str, Any]], approver: str | None = None) -> pd.DataFrame:
    """A run's actions as the read model keeps them: what ran (or was skipped), how, on whose
    say-so, and what came of it, in the executor's words ("rolled back", "rollback failed: ...",
    "rolled back (simulated)")."""
    rows = []
    for item in actions or []:
        mode = str(item.get("mode") or "")
        by = "loop (auto)" if mode == "auto" else (approver or "approver") if mode == "approved" else ""
        label = item.get("label") or item.get("status") or ""
        if item.get("simulated") and "simulated" not in str(label):
            label = f"{label} (simulated)"
        rows.append(
            {
                "action": str(item.get("name") or "?"),
                "risk": str(item.get("risk") or ""),
                "mode": mode,
                "result": str(label),
                "executor": str(item.get("executor") or ""),
                "by": by,
                "finished": as_time(item.get("finished_at")),
            }
        )
    return pd.DataFrame(rows, columns=ACTION_COLUMNS)


def key_value_frame(doc: Mapping[str, Any]) -> pd.DataFrame:
    """A flat mapping as a two-column table; nested values shown as compact text."""
    rows = []
    for key, value in doc.items():
        if isinstance(value, Mapping | list):
            text = json.dumps(value, default=str)[:500]
        else:
            text = "" if value is None else str(value)
        rows.append({"field": str(key), "value": text})
    return pd.DataFrame(rows, columns=["field", "value"])


def flatten_approvals(items: Iterable[Any]) -> list[dict[str, Any]]:
    """Approval records with their action list reduced to names (for the audit table)."""
    out = []
    for item in items:
        row = {col: field(item, col) for col in APPROVAL_HISTORY_COLUMNS}
        if row.get("action") is None:
            row["action"] = ", ".join(action_names(field(item, "actions", [])))
        out.append(row)
    return out


def step_badge(step: StepProgress) -> Badge:
    """A loop step as a badge: grey while pending, then its task-run state colour."""
    if step.state == "pending":
        return Badge(step.task, "gray", ":material/radio_button_unchecked:")
    base = state_badge(step.state)
    return Badge(step.task, base.color, base.icon)


def audit_frame(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The append-only audit trail (``Store.audit.trail``) as a table; details as compact JSON."""
    out = []
    for row in rows:
        detail = row.get("detail")
        out.append(
            {
                "seq": row.get("seq"),
                "at": pd.Timestamp(as_time(row.get("at"))) if as_time(row.get("at")) else pd.NaT,
                "actor": str(row.get("actor", "")),
                "event": str(row.get("event", "")),
                "subject": str(row.get("subject") or ""),
                "detail": json.dumps(detail, default=str, sort_keys=True) if detail else "",
            }
        )
    return pd.DataFrame(out, columns=["seq", "at", "actor", "event", "subject", "detail"])


def services_frame(services: Mapping[str, Any]) -> pd.DataFrame:
    """The services file's services (``ServicesConfig.services``) for the Settings page: where
    telemetry comes from and which executor acts, every URL with its credentials hidden."""
    rows = []
    for name, service in sorted(services.items()):
        prometheus = getattr(service, "prometheus", None)
        logs = getattr(service, "logs", None)
        executor = getattr(service, "executor", None) or {}
        logs_where = getattr(logs, "url", None) or getattr(logs, "path", None)
        rows.append(
            {
                "service": str(name),
                "environment": str(getattr(service, "environment", "")),
                "prometheus": mask_url(prometheus.url) if prometheus is not None else "",
                "logs": f"{logs.type}: {mask_url(str(logs_where))}" if logs is not None else "",
                "executor": str(executor.get("type") or "simulated")
                + (f": {mask_url(str(executor['url']))}" if executor.get("url") else ""),
            }
        )
    return pd.DataFrame(rows, columns=["service", "environment", "prometheus", "logs", "executor"])


def csv_bytes(frame: pd.DataFrame) -> bytes:
    """A table as the CSV a download offers, every text cell through :func:`csv_cell` (names,
    comments and details are typed by people and launchers: no formula may reach a spreadsheet)."""
    safe = frame.map(csv_cell)
    safe.columns = [csv_cell(str(c)) for c in frame.columns]
    # every field quoted, CRLF rows (RFC 4180): a line break inside a name or comment stays
    # inside its cell instead of starting a row whose first cell could be a formula
    return safe.to_csv(index=False, quoting=csv.QUOTE_ALL, lineterminator="\r\n").encode()


def with_detail_links(frame: pd.DataFrame) -> pd.DataFrame:
    """Add a ``link`` column pointing at each deployment's detail (relative URL, ids URL-encoded)."""
    return frame.assign(
        link=["deployments?deployment=" + quote(str(i), safe="") for i in frame["deployment_id"]]
    )


# ---------------------------------------------------------------------------------------------
# Revision history
# ---------------------------------------------------------------------------------------------

REVISION_COLUMNS = ["version", "status", "why", "decided_at", "last_seen", "marked_by"]


def revisions_frame(history: Iterable[Any]) -> pd.DataFrame:
    """A service's revision history (``console.loop.revisions.Revision``), most recently seen first:
    known-good / known-bad / unknown and why."""
    rows = [
        {
            "version": field(r, "version", "?"),
            "status": field(r, "status", "unknown"),
            "why": field(r, "reason", "") or "never verified",
            "decided_at": as_time(field(r, "decided_at")),
            "last_seen": as_time(field(r, "last_seen")),
            "marked_by": field(r, "marked_by", "") or "",
        }
        for r in history
    ]
    return pd.DataFrame(rows, columns=REVISION_COLUMNS)
