"""View models for the console pages: plain data in, DataFrames and small records out.

Pure functions (no Streamlit, no I/O) so every table and label the pages show is testable on its
own. Inputs are the objects the rest of ``console/`` hands out (executions, decisions, approvals);
records that may arrive either as dataclasses or as dicts (SQLite rows, Kestra outputs) are read
through :func:`field`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import numpy as np
import pandas as pd

from console.domain.executions import Execution, LogEntry, State
from console.domain.models import Decision, parse_time
from console.domain.vocabulary import LOOP_TASKS, DeploymentStatus

# ---------------------------------------------------------------------------------------------
# Generic access and formatting
# ---------------------------------------------------------------------------------------------


def field(record: Any, name: str, default: Any = None) -> Any:
    """``record[name]`` for mappings, ``record.name`` otherwise; ``default`` when absent."""
    if record is None:
        return default
    value = record.get(name, default) if isinstance(record, Mapping) else getattr(record, name, default)
    if isinstance(value, Enum):
        value = value.value  # enums (Role, Verdict, State) to their text
    return default if value is None else value


def as_time(value: Any) -> datetime | None:
    """A timestamp from a datetime, ISO text or epoch seconds; None when it is none of those."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, int | float) and math.isfinite(value):
        return datetime.fromtimestamp(float(value), UTC)
    if isinstance(value, str):
        try:
            return parse_time(value)
        except ValueError:
            return None
    return None


def format_duration(seconds: float | None) -> str:
    """Human duration like Kestra shows it: ``850 ms``, ``12.3 s``, ``4m 05s``, ``2h 03m``."""
    if seconds is None or not math.isfinite(seconds):
        return "—"
    if seconds < 0:
        seconds = 0.0
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m"


def format_percent(value: float | None, digits: int = 0) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value * 100:.{digits}f}%"


def countdown_text(expires_at: Any, now: datetime | None = None) -> str:
    """Text for an approval's deadline: ``expires in 12m 30s`` or ``expired 3m ago``."""
    deadline = as_time(expires_at)
    if deadline is None:
        return "no deadline"
    now = now or datetime.now(UTC)
    left = (deadline - now).total_seconds()
    if left <= 0:
        return f"expired {_clock(-left)} ago"
    return f"expires in {_clock(left)}"


def _clock(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def seconds_left(expires_at: Any, now: datetime | None = None) -> float | None:
    deadline = as_time(expires_at)
    if deadline is None:
        return None
    return (deadline - (now or datetime.now(UTC))).total_seconds()


# ---------------------------------------------------------------------------------------------
# Status colours and labels
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Badge:
    label: str
    color: str
    """One of Streamlit's badge colours: red, orange, green, blue, violet, gray."""
    icon: str


_VERDICT_BADGES = {
    "ROLLBACK": Badge("ROLLBACK", "red", ":material/undo:"),
    "ESCALATE": Badge("ESCALATE", "orange", ":material/priority_high:"),
    "CONTINUE": Badge("CONTINUE", "green", ":material/check_circle:"),
}

_STATE_COLORS = {
    State.SUCCESS: "green",
    State.WARNING: "orange",
    State.PAUSED: "orange",
    State.FAILED: "red",
    State.KILLED: "red",
    State.KILLING: "red",
    State.CANCELLED: "gray",
    State.RUNNING: "blue",
    State.CREATED: "gray",
    State.QUEUED: "gray",
    State.SUBMITTED: "gray",
    State.RETRYING: "violet",
    State.RESTARTED: "violet",
}

_STATE_ICONS = {
    "green": ":material/check_circle:",
    "orange": ":material/pause_circle:",
    "red": ":material/error:",
    "blue": ":material/play_circle:",
    "violet": ":material/replay:",
    "gray": ":material/schedule:",
}

_STATUS_COLORS = {
    DeploymentStatus.ROLLED_BACK: "red",
    DeploymentStatus.AWAITING_APPROVAL: "orange",
    DeploymentStatus.ESCALATED: "orange",
    DeploymentStatus.HEALTHY: "green",
    DeploymentStatus.REMEDIATED: "green",
    DeploymentStatus.ANALYZING: "blue",
    DeploymentStatus.FAILED: "red",
    DeploymentStatus.CANCELLED: "gray",
}
DEPLOYMENT_STATUSES: list[str] = [
    status.value
    for status in (
        DeploymentStatus.ROLLED_BACK,
        DeploymentStatus.AWAITING_APPROVAL,
        DeploymentStatus.ESCALATED,
        DeploymentStatus.ANALYZING,
        DeploymentStatus.HEALTHY,
        DeploymentStatus.REMEDIATED,
        DeploymentStatus.FAILED,
        DeploymentStatus.CANCELLED,
    )
]
"""The deployment statuses in the order the Deployments page's filter lists them (worst first)."""


def verdict_badge(verdict: Any) -> Badge:
    text = str(field({"v": verdict}, "v", "") or "").upper()
    return _VERDICT_BADGES.get(text, Badge(text or "—", "gray", ":material/help:"))


def state_badge(state: Any) -> Badge:
    text = str(field({"s": state}, "s", "") or "").upper()
    try:
        color = _STATE_COLORS.get(State(text), "gray")
    except ValueError:
        color = "gray"
    return Badge(text or "—", color, _STATE_ICONS[color])


def status_badge(status: str | None) -> Badge:
    text = (status or "").strip().lower()
    color = _STATUS_COLORS.get(text, "gray")
    return Badge(text or "—", color, _STATE_ICONS[color])


SEVERITY_COLORS = {"LOW": "green", "MEDIUM": "orange", "HIGH": "red", "CRITICAL": "red"}
RISK_COLORS = SEVERITY_COLORS

CLASSIFICATION_LABELS = {"Pass": "Pass", "High": "High ▲", "Low": "Low ▼", "NoData": "No data"}


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


def evidence_frame(decision: Decision) -> pd.DataFrame:
    """Per-metric evidence: baseline vs after, classification Pass/High/Low and why."""
    rows = []
    for m in decision.metrics:
        change = None
        if m.baseline_median not in (None, 0) and m.after_median is not None:
            change = (m.after_median - m.baseline_median) / abs(m.baseline_median)
        rows.append(
            {
                "metric": m.name,
                "result": CLASSIFICATION_LABELS.get(m.classification.value, m.classification.value),
                "baseline": m.baseline_median,
                "after": m.after_median,
                "change": change,
                "p_value": m.p_value,
                "effect": m.effect_size,
                "guard": m.guard or "",
                "reason": m.reason,
            }
        )
    return pd.DataFrame(
        rows,
        columns=["metric", "result", "baseline", "after", "change", "p_value", "effect", "guard", "reason"],
    )


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


def deployments_frame(rows: Iterable[Mapping[str, Any] | Any]) -> pd.DataFrame:
    """Deployments newest first, in the columns the Deployments page shows."""
    records = []
    for row in rows:
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
                "confidence": float(confidence) if confidence is not None else None,
                "status": str(field(row, "status", "—")),
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
    """The five Overview tiles from the store's dashboard KPIs (``Store.dashboard_kpis``)."""
    share = field(kpis, "auto_approved_share")
    mttd = field(kpis, "mean_time_to_decision_s")
    rollbacks = int(field(kpis, "rollbacks_today", 0))
    escalations = int(field(kpis, "escalations_today", 0))
    deployments = str(field(kpis, "deployments_today", 0))
    pending = str(field(kpis, "pending_approvals", 0))
    return [
        Tile("Deployments today", deployments, "Deployments analysed since 00:00 UTC"),
        Tile("Rollbacks", str(rollbacks), f"Rolled back today ({escalations} escalated)"),
        Tile("Pending approvals", pending, "Risky actions waiting for a human"),
        Tile("Auto-approved", format_percent(share), "Today's decided deployments that needed no human"),
        Tile("Mean time to decision", format_duration(mttd), "Request to final decision, today"),
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


# ---------------------------------------------------------------------------------------------
# Learning
# ---------------------------------------------------------------------------------------------


def agreement_by_action(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """How often humans agreed with the loop, per action type.

    A record is one decided approval: ``action`` and ``approved`` (True when the human accepted
    what the loop proposed).
    """
    counts: dict[str, list[int]] = {}
    for rec in records:
        if type(rec) is dict:  # the common case (votes_from_learning): no field() call per row
            action, approved = rec.get("action") or "unknown", rec.get("approved")
        else:
            action, approved = field(rec, "action", "") or "unknown", field(rec, "approved")
        if approved is None:
            continue
        tally = counts.setdefault(str(action), [0, 0])
        tally[0] += 1 if approved else 0
        tally[1] += 1
    rows = [
        {"action": a, "decisions": t, "agreed": g, "agreement": g / t if t else None}
        for a, (g, t) in sorted(counts.items())
    ]
    return pd.DataFrame(rows, columns=["action", "decisions", "agreed", "agreement"])


def calibration_frame(records: Iterable[Mapping[str, Any]] | pd.DataFrame, bins: int = 5) -> pd.DataFrame:
    """Stated confidence vs how often the decision held, in equal-width confidence bins.

    Each record (or DataFrame row) has ``confidence`` in [0, 1] and ``held`` (bool: the outcome
    confirmed the verdict); records missing either are left out.
    """
    if isinstance(records, pd.DataFrame):
        data = records[["confidence", "held"]].dropna()
    else:
        data = pd.DataFrame(
            [{"confidence": field(r, "confidence"), "held": field(r, "held")} for r in records],
            columns=["confidence", "held"],
        ).dropna()
    edges = [i / bins for i in range(bins + 1)]
    rows = []
    if not data.empty:
        conf = np.clip(data["confidence"].to_numpy(dtype=float), 0.0, 1.0)
        held = data["held"].to_numpy(dtype=bool)
        index = np.minimum((conf * bins).astype(int), bins - 1)
        for i in range(bins):
            mask = index == i
            n = int(mask.sum())
            if n:
                rows.append(
                    {
                        "bin": f"{edges[i]:.1f}–{edges[i + 1]:.1f}",
                        "stated": float(conf[mask].mean()),
                        "held": float(held[mask].mean()),
                        "n": n,
                    }
                )
    return pd.DataFrame(rows, columns=["bin", "stated", "held", "n"])


STATUS_TEXT_COLORS = {
    "red": "#C62828",
    "orange": "#B26A00",
    "green": "#2E7D32",
    "blue": "#1565C0",
    "violet": "#6A1B9A",
    "gray": "#5F6B7A",
}


def cell_style(value: Any) -> str:
    """CSS for a verdict/status/state cell: its badge colour, bold (used with pandas Styler)."""
    text = str(value or "")
    badge = _VERDICT_BADGES.get(text.upper())
    if badge is None:
        badge = state_badge(text) if text.upper() in State.__members__ else status_badge(text)
    return f"color: {STATUS_TEXT_COLORS[badge.color]}; font-weight: 600"


def style_statuses(frame: pd.DataFrame) -> Any:
    """A Styler colouring verdict and status (the text stays plain text; no HTML is built)."""
    columns = [c for c in ("verdict", "status", "state") if c in frame]
    return frame.style.map(cell_style, subset=columns)


def action_names(items: Iterable[Any]) -> list[str]:
    """Names of executed/skipped actions, whether stored as names or as action dicts."""
    out = []
    for item in items or []:
        out.append(
            str(item) if isinstance(item, str) else str(field(item, "name", field(item, "action", "?")))
        )
    return out


def executed_frame(items: Iterable[Any], approver: str | None = None) -> pd.DataFrame:
    """Executed actions (the execute step's ``executed``): what ran, how, and on whose say-so."""
    rows = []
    for item in items or []:
        if isinstance(item, str):
            item = {"name": item}
        mode = str(field(item, "mode", ""))
        by = "loop (auto)" if mode == "auto" else (approver or "approver") if mode == "approved" else ""
        rows.append(
            {
                "action": str(field(item, "title", field(item, "name", "?"))),
                "risk": str(field(item, "risk", "")),
                "mode": mode,
                "status": str(field(item, "status", "")),
                "effect": str(field(item, "effect", "")),
                "by": by,
            }
        )
    return pd.DataFrame(rows, columns=["action", "risk", "mode", "status", "effect", "by"])


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
    """The append-only audit trail (``Store.audit_trail``) as a table; details as compact JSON."""
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


# ---------------------------------------------------------------------------------------------
# Learning read model
# ---------------------------------------------------------------------------------------------

LEARNING_COLUMNS = [
    "execution_id",
    "seq",
    "verdict",
    "confidence",
    "actions",
    "approval_actions",
    "approval",
    "held",
]

_LEARNING_SQL = """
SELECT o.execution_id, o.rowid,
       COALESCE(o.learning,
                json_extract(o.record, '$.decision.verdict', '$.decision.confidence', '$.decision.actions',
                             '$.plan.approval', '$.approval.status', '$.outcome.held')) AS fields,
       CASE WHEN a.status IN ('approved', 'rejected', 'expired') THEN a.status END AS final_status
FROM outcomes o
LEFT JOIN approvals a ON a.execution_id = o.execution_id
WHERE o.rowid > ?
ORDER BY o.rowid
"""


def learning_frame(store: Any, after: int = 0) -> pd.DataFrame:
    """The few fields of each outcome record the Learning page needs, read in SQL.

    ``Store.outcome_records`` decodes whole records (decision with every metric and log pattern):
    about 2 s and 35 MB for 10,000 runs. This extracts only verdict, confidence, action names,
    the approval status (the approvals table wins, as in ``outcome_records``) and whether the
    decision held, from the small ``learning`` column written with each record
    (``store.learning_fields``), or with one ``json_extract`` per record for rows written before that
    column existed. ``after`` (a rowid, column ``seq``) reads
    only rows written after it, for incremental refreshes: SQLite gives a replaced row a new
    rowid, so a re-recorded execution is read again too.
    """
    with store.read() as conn:
        rows = conn.execute(_LEARNING_SQL, (int(after),)).fetchall()
    records = []
    for execution_id, seq, fields_text, final_status in rows:
        try:
            verdict, confidence, actions, approval_actions, status, held = json.loads(fields_text)
        except (TypeError, ValueError):
            continue
        records.append(
            {
                "execution_id": execution_id,
                "seq": seq,
                "verdict": verdict or "",
                "confidence": float(confidence) if confidence is not None else None,
                "actions": _names(actions),
                "approval_actions": _names(approval_actions),
                "approval": final_status or status or "",
                "held": None if held is None else bool(held),
            }
        )
    return pd.DataFrame(records, columns=LEARNING_COLUMNS)


def merge_learning(old: pd.DataFrame | None, new: pd.DataFrame) -> pd.DataFrame:
    """Add freshly read rows to a cached learning frame (a re-recorded execution replaces its row)."""
    if old is None or old.empty:
        return new.reset_index(drop=True)
    if new.empty:
        return old
    merged = pd.concat([old, new], ignore_index=True)
    return merged.drop_duplicates("execution_id", keep="last").reset_index(drop=True)


def _names(items: Any) -> list[str]:
    """Action names from decoded JSON (plain dicts): called for every outcome row, so kept direct."""
    if not isinstance(items, list):
        return []
    return [str(i["name"]) for i in items if isinstance(i, dict) and i.get("name")]


def votes_from_learning(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One (action, approved) row per action a human approved or rejected."""
    decided = frame[frame["approval"].isin(("approved", "rejected"))]
    out = []
    for approval, names in zip(
        decided["approval"].tolist(), decided["approval_actions"].tolist(), strict=True
    ):
        approved = approval == "approved"
        out.extend({"action": n, "approved": approved} for n in names)
    return out


def whatif_frame(frame: pd.DataFrame, settings: Any, threshold: float) -> pd.DataFrame:
    """Each past decision routed by the policy now and at ``threshold`` (console.loop.policy.plan_actions)."""
    from console.domain.models import RecommendedAction, Severity, Verdict
    from console.loop.policy import plan_actions

    def route(names: tuple[str, ...], confidence: float, limit: float | None) -> tuple[bool, int]:
        decision = Decision(
            verdict=Verdict.CONTINUE,
            severity=Severity.LOW,
            confidence=confidence,
            summary="",
            root_cause="",
            actions=[RecommendedAction.from_dict({"name": n, "risk": "LOW"}) for n in names],
            metrics=[],
            log_patterns=[],
            analyzer="rules",
        )
        plan = plan_actions(decision, settings, threshold=limit)
        return plan.needs_approval, len(plan.auto)

    # The plan depends on the action names and on which side of the threshold the confidence
    # falls, so one plan_actions call per distinct (names, side) gives every row exactly; the rows
    # are then filled per group with numpy (a Python loop over 100k decisions took ~300 ms).
    columns = ["now_needs_human", "whatif_needs_human", "whatif_auto", "held"]
    confidence = pd.to_numeric(frame["confidence"], errors="coerce")
    usable = frame[
        confidence.notna().to_numpy() & frame["verdict"].isin(list(Verdict.__members__)).to_numpy()
    ]
    if usable.empty:
        return pd.DataFrame([], columns=columns)
    conf = confidence[usable.index].to_numpy(dtype=float)
    codes, uniques = pd.factorize(usable["actions"].map(tuple))
    current = float(settings.auto_approve_confidence)
    results: dict[str, np.ndarray] = {}
    for label, limit in (("now", current), ("whatif", threshold)):
        needs = np.zeros(len(conf), dtype=bool)
        auto = np.zeros(len(conf), dtype=int)
        above = conf >= limit
        for code, names in enumerate(uniques):
            in_group = codes == code
            for side in (False, True):
                rows = np.flatnonzero(in_group & (above == side))
                if len(rows):
                    needs[rows], auto[rows] = route(tuple(names), float(conf[rows[0]]), limit)
        results[f"{label}_needs"], results[f"{label}_auto"] = needs, auto
    return pd.DataFrame(
        {
            "now_needs_human": results["now_needs"],
            "whatif_needs_human": results["whatif_needs"],
            "whatif_auto": results["whatif_auto"],
            "held": usable["held"].tolist(),
        },
        columns=columns,
    )


_MD_SPECIAL = set("\\`*_[]<>#|~$:")


def md_escape(text: Any) -> str:
    """Text safe to put inside Streamlit markdown: emphasis, links, HTML-looking tags, colour
    directives (``:red[...]``) and math are shown literally, not interpreted."""
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in str(text)).replace("\n", " ")


def with_detail_links(frame: pd.DataFrame) -> pd.DataFrame:
    """Add a ``link`` column pointing at each deployment's detail (relative URL, ids URL-encoded)."""
    from urllib.parse import quote

    return frame.assign(
        link=["deployments?deployment=" + quote(str(i), safe="") for i in frame["deployment_id"]]
    )
