"""One story per deployment: the ordered events of an execution, from the deploy to the measured
outcome.

:func:`build_timeline` reads what is known of one execution (its Kestra-shaped
:class:`~console.domain.executions.Execution`, its deployment row, its outcome record, its approval
and votes, its audit rows; see ``Store.stories.incident_material``) and returns :class:`TimelineEvent`\\ s in
time order: deployed (by whom), loop started, each step with its start and duration, the decision
(verdict, confidence, key evidence), the approval request, each vote with its comment (and attempts
that were refused), each action and its result (done, failed with its reason, refused, skipped;
simulated marked), the measured outcome, the end of the loop.

Any part may be missing: a running execution has no record yet (the steps' outputs stand in), a
Kestra execution may come without task runs, and records written before the live loop carry actions
with ``status: "simulated"`` and no ``measured`` part. Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from console.domain.executions import Execution, TaskRun
from console.domain.models import format_time, parse_time
from console.domain.vocabulary import APPROVAL_TASK, TIMEOUT_ACTOR

DONE, FAILED, REFUSED, SKIPPED = "done", "failed", "refused", "skipped"
ACTION_STATUSES = (DONE, FAILED, REFUSED, SKIPPED)
MAX_EVIDENCE = 4


@dataclass(frozen=True)
class TimelineEvent:
    """One line of the story. ``title`` and ``detail`` are plain text (not escaped: the page escapes
    them for Markdown, the postmortem for its tables)."""

    at: datetime | None
    kind: str
    """deployed · loop_started · step · decision · approval_requested · vote · refused · approval ·
    action · outcome · finished · killed · recovered"""
    title: str
    detail: str = ""
    actor: str | None = None
    duration_s: float | None = None
    status: str | None = None
    simulated: bool = False
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["at"] = format_time(self.at) if self.at else None
        return out


# -- reading what the stores and engines hand over ------------------------------------------------------


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def as_time(value: Any) -> datetime | None:
    """A datetime from a datetime or an RFC 3339 text; None otherwise."""
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value.strip():
        try:
            return parse_time(value)
        except ValueError:
            return None
    return None


def _span(start: Any, end: Any) -> float | None:
    a, b = as_time(start), as_time(end)
    return max((b - a).total_seconds(), 0.0) if a and b else None


def _outputs(execution: Execution | None, task_id: str) -> dict[str, Any]:
    """A task's values (Kestra nests a script's outputs under ``vars``)."""
    run = execution.task_run(task_id) if execution is not None else None
    if run is None:
        return {}
    outputs = _dict(run.outputs)
    nested = _dict(outputs.get("vars"))
    return {**nested, **{k: v for k, v in outputs.items() if k != "vars"}}


def _run_end(run: TaskRun | None) -> datetime | None:
    if run is None or not run.histories:
        return None
    return run.end or run.histories[-1].date


def percent(value: Any) -> str:
    try:
        return f"{float(value) * 100:.0f}%"
    except (TypeError, ValueError):
        return "?"


@dataclass(frozen=True)
class Story:
    """The facts of one execution, gathered from the record or, before it exists, from the steps'
    outputs (the postmortem reads the same)."""

    deployment: dict[str, Any]
    scenario: dict[str, Any] | None
    decision: dict[str, Any]
    plan: dict[str, Any]
    approval_outputs: dict[str, Any]
    executed: list[dict[str, Any]]
    skipped: list[dict[str, Any]]
    measured: dict[str, Any] | None
    outcome: dict[str, Any]
    record: dict[str, Any] | None


def gather(
    execution: Execution | None, *, deployment: Mapping[str, Any] | None, record: Mapping[str, Any] | None
) -> Story:
    """The facts, record first (it is what the loop kept), the steps' outputs second, the deployment
    row last."""
    rec = dict(record) if isinstance(record, Mapping) else None
    r = rec or {}
    collected = _dict(_outputs(execution, "collect").get("snapshot"))
    dep = {
        **{k: v for k, v in _dict(deployment).items() if v is not None},
        **_dict(collected.get("deployment")),
        **_dict(r.get("deployment")),
    }
    decision = (
        _dict(r.get("decision"))
        or _dict(_outputs(execution, "summarize").get("decision"))
        or _dict(_outputs(execution, "analyze").get("decision"))
    )
    plan = _dict(r.get("plan")) or _dict(_outputs(execution, "decide").get("plan"))
    execute = _outputs(execution, "execute")
    executed = _list(r.get("executed")) if "executed" in r else _list(execute.get("executed"))
    skipped = _list(execute.get("skipped"))
    measured = _dict(r.get("measured")) or _dict(_outputs(execution, "verify").get("measured")) or None
    scenario = _dict(r.get("scenario")) or None
    if scenario is None and (collected.get("scenario") or _dict(deployment).get("scenario")):
        raw = collected.get("scenario") or _dict(deployment).get("scenario")
        scenario = _dict(raw) or {"id": raw}
    outcome = _dict(r.get("outcome"))
    if not outcome.get("deployment_status") and execute.get("deployment_status"):
        outcome = {**outcome, "deployment_status": execute.get("deployment_status")}
    return Story(
        deployment=dep,
        scenario=scenario,
        decision=decision,
        plan=plan,
        approval_outputs=_outputs(execution, APPROVAL_TASK),
        executed=executed,
        skipped=skipped,
        measured=measured,
        outcome=outcome,
        record=rec,
    )


def action_status(item: Mapping[str, Any]) -> tuple[str, bool]:
    """(done | failed | refused | skipped, simulated) of an executed item, in either shape: the live
    loop's (``status`` done/failed/refused + ``simulated``) or the first one's (``status:
    "simulated"``, which was a simulated success)."""
    if item.get("skipped"):
        return SKIPPED, False
    status = str(item.get("status") or "")
    if status == "simulated":
        return DONE, True
    simulated = item.get("simulated") is True
    return (status if status in (DONE, FAILED, REFUSED) else FAILED if status else DONE), simulated


def action_result_text(item: Mapping[str, Any]) -> str:
    """What happened to an action, in words, "simulated" included where it was."""
    status, simulated = action_status(item)
    if status == SKIPPED:
        return f"skipped: {item.get('skipped')}"
    label = str(item.get("label") or "")
    detail = str(item.get("detail") or "")
    effect = str(item.get("effect") or "")
    if status == DONE:
        text = f"done: {label or effect or 'no detail'}" if (label or effect) else "done"
    else:
        text = f"{status}: {detail or label or 'no reason given'}"
    if simulated and "simulated" not in text:
        text += " (simulated)"
    return text


def key_evidence(decision: Mapping[str, Any], limit: int = MAX_EVIDENCE) -> list[str]:
    """The few facts a verdict rests on: its hard guards, the metrics that moved, new log patterns."""
    out = [f"hard guard: {g}" for g in decision.get("guards") or [] if isinstance(g, str)]
    metrics = decision.get("metrics")
    items = metrics.values() if isinstance(metrics, dict) else metrics if isinstance(metrics, list) else []
    for m in items:
        if isinstance(m, dict) and m.get("classification") in ("High", "Low") and not m.get("guard"):
            out.append(f"{m.get('name')}: {m.get('reason')}")
    for p in decision.get("log_patterns") or []:
        if (
            isinstance(p, dict)
            and p.get("status") in ("new", "surging")
            and p.get("level") in ("ERROR", "FATAL")
        ):
            before, after = p.get("count_before", 0), p.get("count_after", 0)
            out.append(f"{p.get('status')} log pattern ({before} → {after} lines): {p.get('template')}")
    return out[:limit]


# -- the timeline ------------------------------------------------------------------------------------------


def build_timeline(
    execution: Execution | None,
    *,
    deployment: Mapping[str, Any] | None = None,
    record: Mapping[str, Any] | None = None,
    approval: Mapping[str, Any] | None = None,
    votes: Iterable[Mapping[str, Any]] = (),
    audit: Iterable[Mapping[str, Any]] = (),
) -> list[TimelineEvent]:
    """The execution's events in time order (events without a time last, in the order they happened)."""
    story = gather(execution, deployment=deployment, record=record)
    audit_rows = [dict(a) for a in audit if isinstance(a, Mapping)]
    events: list[TimelineEvent] = []
    events += _deployed(story, deployment)
    events += _started(execution, deployment, audit_rows)
    events += _steps(execution)
    events += _decision(execution, story, approval)
    events += _approval(execution, story, approval, [dict(v) for v in votes], audit_rows)
    events += _actions(execution, story)
    events += _outcome(execution, story)
    events += _ending(execution, audit_rows)
    order = {id(e): i for i, e in enumerate(events)}
    return sorted(events, key=lambda e: (e.at is None, e.at or datetime.min, order[id(e)]))


def _deployed(story: Story, row: Mapping[str, Any] | None) -> list[TimelineEvent]:
    dep = story.deployment
    if not dep:
        return []
    service, version = dep.get("service") or "?", dep.get("version") or "?"
    previous = dep.get("previous_version")
    scenario_id = (story.scenario or {}).get("id")
    detail = f"environment {dep.get('environment') or '?'}"
    if scenario_id:
        detail += f" · recorded scenario {scenario_id} (simulated)"
    return [
        TimelineEvent(
            as_time(dep.get("deployed_at")) or as_time(_dict(row).get("deployed_at")),
            "deployed",
            f"{service} {version} deployed" + (f" (replacing {previous})" if previous else ""),
            detail,
            actor=dep.get("deployed_by") or _dict(row).get("deployed_by"),
            simulated=bool(scenario_id),
        )
    ]


def _started(
    execution: Execution | None, row: Mapping[str, Any] | None, audit: list[dict[str, Any]]
) -> list[TimelineEvent]:
    launched = next((a for a in audit if a.get("event") == "execution.launched"), None)
    at = (execution.start if execution else None) or as_time((launched or {}).get("at"))
    at = at or as_time(_dict(row).get("created_at"))
    if at is None:
        return []
    inputs = execution.inputs if execution else {}
    labels = execution.labels if execution else {}
    who = (launched or {}).get("actor") or labels.get("launched_by") or inputs.get("triggered_by")
    source = inputs.get("source") or (f"scenario {inputs['scenario']}" if inputs.get("scenario") else None)
    detail = " · ".join(x for x in (f"by {who}" if who else "", f"from {source}" if source else "") if x)
    return [TimelineEvent(at, "loop_started", "Loop started", detail, actor=who)]


def _steps(execution: Execution | None) -> list[TimelineEvent]:
    if execution is None:
        return []
    out = []
    for run in execution.task_runs:
        if run.start is None:
            continue
        end = run.end if run.state.terminal else None
        title = "Waiting for approval" if run.task_id == APPROVAL_TASK else f"Step {run.task_id}"
        out.append(
            TimelineEvent(
                run.start,
                "step",
                title,
                run.state.value.lower(),
                duration_s=_span(run.start, end),
                status=run.state.value.lower(),
                data={"task_id": run.task_id},
            )
        )
    return out


def _decision(
    execution: Execution | None, story: Story, approval: Mapping[str, Any] | None
) -> list[TimelineEvent]:
    d = story.decision
    if not d.get("verdict"):
        return []
    run = (execution.task_run("decide") or execution.task_run("summarize")) if execution else None
    at = _run_end(run)
    estimated = at is None
    if at is None:  # no task runs (an engine that did not give them): decided by the time it asked
        starts = [as_time(a.get("started_at")) for a in story.executed]
        at = as_time(_dict(approval).get("requested_at")) or min((t for t in starts if t), default=None)
    evidence = key_evidence(d)
    plan = story.plan
    auto = [str(a.get("name")) for a in _list(plan.get("auto"))]
    needs = [str(a.get("name")) for a in _list(plan.get("approval"))]
    routing = []
    if auto:
        routing.append(f"runs alone: {', '.join(auto)}")
    if needs:
        routing.append(f"needs {plan.get('required_approvals') or 1} approver(s): {', '.join(needs)}")
    detail = f"{d.get('severity') or '?'} · confidence {percent(d.get('confidence'))}"
    if routing:
        detail += " · " + "; ".join(routing)
    if evidence:
        detail += " · evidence: " + "; ".join(evidence)
    return [
        TimelineEvent(
            at,
            "decision",
            f"Decision: {d['verdict']}",
            detail,
            actor=str(d.get("analyzer") or "rules"),
            status=str(d["verdict"]),
            data={
                "verdict": d["verdict"],
                "severity": d.get("severity"),
                "confidence": d.get("confidence"),
                "evidence": evidence,
                "auto": auto,
                "approval": needs,
                "time_estimated": estimated,
            },
        )
    ]


def _approval(
    execution: Execution | None,
    story: Story,
    approval: Mapping[str, Any] | None,
    votes: list[dict[str, Any]],
    audit: list[dict[str, Any]],
) -> list[TimelineEvent]:
    """The approval's part of the story: requested, each vote, each refused attempt, and how it ended."""
    a = _dict(approval)
    out = _approval_requested(a, audit)
    out += _votes(votes, a.get("status"))
    out += [_refused(row) for row in audit if row.get("event") == "approval.refused"]
    out += _approval_end(execution, story, a, votes)
    return out


def _approval_requested(a: dict[str, Any], audit: list[dict[str, Any]]) -> list[TimelineEvent]:
    requested = next((r for r in audit if r.get("event") == "approval.requested"), None)
    if not a and not requested:
        return []
    requested = requested or {}
    actions = ", ".join(str(x.get("name")) for x in _list(a.get("actions"))) or _dict(
        requested.get("detail")
    ).get("actions", "")
    detail = f"{actions} · {a.get('required_approvals') or 1} approver(s)"
    if a.get("expires_at"):
        deadline = as_time(a["expires_at"])
        when = f"{deadline.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC" if deadline else str(a["expires_at"])
        detail += f" · expires {when}"
    return [
        TimelineEvent(
            as_time(a.get("requested_at")) or as_time(requested.get("at")),
            "approval_requested",
            "Approval requested",
            detail,
            actor=a.get("requested_by") or requested.get("actor"),
            status="pending",
            data={"approval_id": a.get("id") or requested.get("subject")},
        )
    ]


def _votes(votes: list[dict[str, Any]], status: Any) -> list[TimelineEvent]:
    out: list[TimelineEvent] = []
    for i, vote in enumerate(votes):
        verb = "approved" if vote.get("approved") else "rejected"
        final = i == len(votes) - 1 and status in ("approved", "rejected")
        detail = str(vote.get("comment") or "no comment")
        if final:
            detail += " · final: the actions run" if status == "approved" else " · final: nothing risky runs"
        out.append(
            TimelineEvent(
                as_time(vote.get("at")),
                "vote",
                f"{vote.get('actor')} {verb}",
                detail,
                actor=vote.get("actor"),
                status=verb,
                data={"comment": vote.get("comment") or "", "final": final},
            )
        )
    return out


def _refused(row: dict[str, Any]) -> TimelineEvent:
    d = _dict(row.get("detail"))
    return TimelineEvent(
        as_time(row.get("at")),
        "refused",
        f"{row.get('actor')} could not {d.get('attempt') or 'decide'}",
        str(d.get("reason") or ""),
        actor=row.get("actor"),
        status="refused",
    )


_APPROVAL_ENDS = {
    "expired": ("Approval expired", "nobody decided in time: rejected, nothing risky runs", False),
    "cancelled": ("Approval cancelled", "the execution stopped before a decision", False),
    "superseded": ("Approval superseded", "the service moved on: nothing ran", True),
    "approved": ("Approved", "", True),
    "rejected": ("Rejected", "", True),
}
"""How an approval that ended without a vote is told: its title, its detail, and whether the
approval's own comment, when it has one, replaces that detail."""


def _approval_end(
    execution: Execution | None, story: Story, a: dict[str, Any], votes: list[dict[str, Any]]
) -> list[TimelineEvent]:
    """How an approval ended when no vote tells it: expired, cancelled, superseded, decided without a
    vote row, or, on Kestra with no approval row mirrored, the Pause's own resume outputs."""
    status = a.get("status")
    if status in ("expired", "cancelled", "superseded") or (not votes and status in ("approved", "rejected")):
        title, detail, commented = _APPROVAL_ENDS[str(status)]
        who = a.get("decided_by") or (TIMEOUT_ACTOR if status == "expired" else None)
        text = str(a.get("comment") or detail) if commented else detail
        return [
            TimelineEvent(as_time(a.get("decided_at")), "approval", title, text, actor=who, status=status)
        ]
    if a or not story.approval_outputs.get("approver"):
        return []
    outs = story.approval_outputs
    approved = str(outs.get("approved")).lower() == "true"
    who = outs.get("approver")
    run = execution.task_run(APPROVAL_TASK) if execution else None
    status_text = "expired" if who == TIMEOUT_ACTOR else "approved" if approved else "rejected"
    return [
        TimelineEvent(
            _run_end(run),
            "approval",
            status_text.capitalize(),
            str(outs.get("comment") or ""),
            actor=who,
            status=status_text,
        )
    ]


def _actions(execution: Execution | None, story: Story) -> list[TimelineEvent]:
    run = execution.task_run("execute") if execution else None
    fallback = run.start if run else None
    out = []
    for item in story.executed:
        status, simulated = action_status(item)
        started = as_time(item.get("started_at")) or fallback
        mode = item.get("mode")
        out.append(
            TimelineEvent(
                started,
                "action",
                f"{item.get('name') or item.get('action') or '?'}" + (f" ({mode})" if mode else ""),
                action_result_text(item),
                duration_s=_span(item.get("started_at"), item.get("finished_at")),
                status=status,
                simulated=simulated,
                data={
                    "name": item.get("name") or item.get("action"),
                    "risk": item.get("risk"),
                    "mode": mode,
                    "executor": item.get("executor"),
                    "detail": item.get("detail"),
                },
            )
        )
    for item in story.skipped:
        out.append(
            TimelineEvent(
                fallback,
                "action",
                f"{item.get('name') or '?'} (not run)",
                action_result_text(item),
                status=SKIPPED,
                data={"name": item.get("name"), "risk": item.get("risk"), "reason": item.get("skipped")},
            )
        )
    return out


def measured_text(measured: Mapping[str, Any] | None) -> tuple[str, str]:
    """(status, one line) of the measured outcome; ``not measured`` for a record without one."""
    if not measured:
        return "not measured", "no measured outcome in the record (it predates outcome verification)"
    status = str(measured.get("status") or "inconclusive").replace("_", " ")
    parts = [str(measured.get("reason") or "")]
    if measured.get("source"):
        parts.append(f"source: {measured['source']}")
    if measured.get("simulated"):
        parts.append("simulated")
    return status, " · ".join(p for p in parts if p)


def measured_label(measured: Mapping[str, Any] | None) -> str:
    """The measured status as a reader must take it: ``resolved`` for a real measurement,
    ``resolved (recorded scenario segment, simulated)`` when the "after" was a recording, so a
    scenario run never reads as a bare ``resolved``."""
    status, _ = measured_text(measured)
    source = str((measured or {}).get("source") or "").strip()
    if not measured or not (measured.get("simulated") or "scenario" in source):
        return status
    return f"{status} ({source}, simulated)" if source and source != "simulated" else f"{status} (simulated)"


def _outcome(execution: Execution | None, story: Story) -> list[TimelineEvent]:
    deployment_status = story.outcome.get("deployment_status")
    if not deployment_status and not story.measured:
        return []
    status, text = measured_text(story.measured)
    label = measured_label(story.measured)
    if label != status:  # the label says the source and "simulated" already
        text = str((story.measured or {}).get("reason") or "")
    simulated = bool(
        story.outcome.get("simulated")
        or (story.measured or {}).get("simulated")
        or any(action_status(x)[1] for x in story.executed)
    )
    run = (execution.task_run("verify") or execution.task_run("record")) if execution else None
    at = as_time((story.measured or {}).get("measured_at")) or _run_end(run)
    title = f"Outcome: {deployment_status or 'unknown'}" + (" · simulated" if simulated else "")
    return [
        TimelineEvent(
            at,
            "outcome",
            title,
            f"measured: {label}" + (f" · {text}" if text else ""),
            status=status,
            simulated=simulated,
            data={"deployment_status": deployment_status, "measured_status": status},
        )
    ]


def _ending(execution: Execution | None, audit: list[dict[str, Any]]) -> list[TimelineEvent]:
    out = []
    for row in audit:
        event = row.get("event")
        if event == "execution.killed":
            out.append(
                TimelineEvent(
                    as_time(row.get("at")), "killed", "Execution killed", "", actor=row.get("actor")
                )
            )
        elif event == "execution.recovered":
            action = _dict(row.get("detail")).get("action") or ""
            out.append(
                TimelineEvent(as_time(row.get("at")), "recovered", "Taken over after a crash", str(action))
            )
    if execution is not None and execution.state.terminal and execution.end is not None:
        out.append(
            TimelineEvent(
                execution.end,
                "finished",
                f"Loop finished: {execution.state.value}",
                "",
                duration_s=execution.duration_s,
                status=execution.state.value.lower(),
            )
        )
    return out
