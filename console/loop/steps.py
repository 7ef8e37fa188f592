"""The loop's steps as plain functions, shared by the embedded engine and the Kestra flows.

Each step takes one JSON object and returns one JSON object (see docs/ARCHITECTURE.md, "Steps").
Nothing here keeps state between calls: the engines store every output, so re-running a step on the
same input gives the same output (the embedded engine's crash recovery relies on that).

The executor is a simulator: it records what each action would do (``ActionSpec.effect``) and never
touches a cluster.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from console.domain.actions import UnknownActionError, get_action
from console.domain.models import Decision, Verdict, format_time, parse_time
from console.domain.snapshot import SnapshotError, parse_snapshot, validate_document
from console.domain.vocabulary import STEP_TASKS, TIMEOUT_ACTOR, DeploymentStatus
from console.loop import scenarios
from console.settings import Settings


class StepError(ValueError):
    """A step's input is not usable; the message is one line naming what is wrong."""


# -- helpers ---------------------------------------------------------------------------------------------


def _require(data: Any, key: str, step: str) -> Any:
    if not isinstance(data, dict):
        raise StepError(f"{step}: input must be a JSON object")
    if data.get(key) is None:
        raise StepError(f"{step}: input needs {key!r}")
    return data[key]


def _object(value: Any, what: str, *, optional: bool = False) -> dict[str, Any] | None:
    """``value`` when it is a JSON object (or null when ``optional``), else StepError."""
    if value is None and optional:
        return None
    if not isinstance(value, dict):
        raise StepError(f"{what} must be an object{' or null' if optional else ''}")
    return value


def _objects(value: Any, what: str) -> list[dict[str, Any]]:
    """A list of JSON objects (null counts as empty), else StepError."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        raise StepError(f"{what} must be a list of objects")
    return value


def _plan(data: dict[str, Any], step: str) -> dict[str, Any]:
    plan = _object(_require(data, "plan", step), f"{step}: 'plan'")
    assert plan is not None
    for key in ("auto", "approval"):
        _objects(plan.get(key), f"{step}: plan.{key}")
    return plan


def _decision(doc: Any, step: str) -> Decision:
    """Decision.from_dict with a bounded one-line StepError for anything it cannot read."""
    try:
        decision = Decision.from_dict(_object(doc, f"{step}: 'decision'"))
        json.dumps(decision.to_dict())  # fields of the wrong type (a list as a metric name) fail here
        return decision
    except StepError:
        raise
    except (KeyError, ValueError, TypeError, AttributeError, OverflowError) as exc:
        detail = " ".join(str(exc).split())
        detail = detail if len(detail) <= 120 else detail[:119] + "…"
        raise StepError(f"{step}: decision is not understood ({type(exc).__name__}: {detail})") from None


def shift_document(doc: dict[str, Any], delta: timedelta) -> dict[str, Any]:
    """A copy of a snapshot document with every timestamp moved by ``delta``."""
    cache: dict[str, str] = {}

    def move(text: str) -> str:
        out = cache.get(text)
        if out is None:
            out = cache[text] = format_time(parse_time(text) + delta)
        return out

    shifted = dict(doc)
    shifted["deployment"] = {**doc["deployment"], "deployed_at": move(doc["deployment"]["deployed_at"])}
    shifted["metrics"] = {
        name: [[move(ts), v] for ts, v in points] for name, points in doc["metrics"].items()
    }
    shifted["logs"] = [{**rec, "ts": move(rec["ts"])} for rec in doc["logs"]]
    return shifted


def latest_time(doc: dict[str, Any]) -> datetime:
    """The newest timestamp in a snapshot (metrics, logs or the deployment itself)."""
    texts = {ts for points in doc["metrics"].values() for ts, _ in points}
    texts.update(rec["ts"] for rec in doc["logs"])
    texts.add(doc["deployment"]["deployed_at"])
    return max(parse_time(t) for t in texts)


def load_scenario(scenario_id: str, settings: Settings) -> dict[str, Any]:
    """A scenario document from the mock-data directory (:mod:`console.loop.scenarios`)."""
    try:
        return scenarios.load_scenario_document(scenario_id, settings.mock_data_dir)
    except (LookupError, OSError) as exc:
        raise StepError(f"unknown scenario {scenario_id!r}") from exc
    except ValueError as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else f"unusable scenario {scenario_id!r}"
        raise StepError(first_line) from exc


def _scenario_for_service(service: str, settings: Settings) -> dict[str, Any] | None:
    for path in sorted(Path(settings.mock_data_dir).glob("*.json")):
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(doc, dict) and (doc.get("deployment") or {}).get("service") == service:
            return doc
    return None


# -- steps -------------------------------------------------------------------------------------------------


def collect(data: dict[str, Any], settings: Settings, *, now: datetime | None = None) -> dict[str, Any]:
    """Snapshot for the run.

    - ``{"scenario": id}``: the scenario's snapshot, moved in time so that its newest point is now
      (the deploy happened "now minus the verification window"), so today's KPIs and charts fit.
    - ``{"snapshot": doc}``: validated and passed on unchanged.
    - ``{"deployment_id", "service", "version"}``: the demo collector: the mock-data snapshot of
      that service, relabelled with the given deployment and moved to now.
    """
    if not isinstance(data, dict):
        raise StepError("collect: input must be a JSON object")
    now = now or datetime.now(UTC)
    if data.get("snapshot") is not None:
        doc = data["snapshot"]
        try:
            validate_document(doc)
        except SnapshotError as exc:
            raise StepError(f"collect: snapshot {exc}") from None
        return {"snapshot": doc}
    if data.get("scenario") is not None:
        doc = load_scenario(str(data["scenario"]), settings)
    elif data.get("service"):
        doc = _scenario_for_service(str(data["service"]), settings)
        if doc is None:
            raise StepError(f"collect: no telemetry source for service {data['service']!r}")
        doc = {**doc, "deployment": dict(doc["deployment"])}
        for key in ("deployment_id", "version", "previous_version", "deployed_by", "environment"):
            if data.get(key):
                doc["deployment"]["id" if key == "deployment_id" else key] = str(data[key])
    else:
        raise StepError("collect: input needs 'scenario', 'snapshot' or 'service'")
    try:
        validate_document(doc)
    except SnapshotError as exc:
        raise StepError(f"collect: snapshot {exc}") from None
    return {"snapshot": shift_document(doc, now - latest_time(doc))}


def analyze(data: dict[str, Any], settings: Settings) -> dict[str, Any]:
    from console.analysis import analyze as run_analysis

    doc = _require(data, "snapshot", "analyze")
    try:
        snapshot = parse_snapshot(doc)
    except SnapshotError as exc:
        raise StepError(f"analyze: snapshot {exc}") from None
    return {"decision": run_analysis(snapshot, settings).to_dict()}


def summarize(data: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The LLM narrative; never fails on the LLM's account (llm.summarize falls back to the rules)."""
    doc = _require(data, "snapshot", "summarize")
    decision_doc = _require(data, "decision", "summarize")
    from console.loop.narrative import summarize as llm_summarize

    try:
        snapshot = parse_snapshot(doc)
    except SnapshotError as exc:
        raise StepError(f"summarize: snapshot {exc}") from None
    decision = _decision(decision_doc, "summarize")
    return {"decision": llm_summarize(snapshot, decision, settings).to_dict()}


def decide(data: dict[str, Any], settings: Settings) -> dict[str, Any]:
    from console.loop.policy import plan_actions

    decision = _decision(_require(data, "decision", "decide"), "decide")
    plan = plan_actions(decision, settings)
    plan_doc = {**plan.to_dict(), "needs_approval": bool(plan.needs_approval)}
    return {
        "plan": plan_doc,
        "verdict": decision.verdict.value,
        "severity": decision.severity.value,
        "confidence": round(decision.confidence, 4),
    }


def _action_result(action: dict[str, Any], mode: str) -> dict[str, Any]:
    try:
        spec = get_action(str(action.get("name")))
    except UnknownActionError as exc:
        return {**action, "mode": mode, "status": "refused", "effect": None, "detail": str(exc)}
    params = action.get("params")
    return {
        "name": spec.name,
        "title": spec.title,
        "risk": spec.risk.value,
        "params": dict(params) if isinstance(params, dict) else {},
        "mode": mode,
        "status": "simulated",
        "effect": spec.effect,
    }


def deployment_status(
    verdict: str | None, executed: list[dict[str, Any]], approval: dict[str, Any] | None
) -> DeploymentStatus:
    effects = {
        a.get("effect")
        for a in executed
        if a.get("status") == "simulated" and isinstance(a.get("effect"), str)  # input may be anything
    }
    if get_action("rollback_deployment").effect in effects:
        return DeploymentStatus.ROLLED_BACK
    if approval is not None and not is_approved(approval):
        return DeploymentStatus.ESCALATED  # a human kept risky actions from running, or nobody answered
    if verdict == Verdict.ESCALATE.value:
        return DeploymentStatus.ESCALATED
    if verdict == Verdict.ROLLBACK.value:
        return DeploymentStatus.ESCALATED  # a rollback was called for but did not run
    if effects - {"on-call notified", "diagnostics collected", None}:
        return DeploymentStatus.REMEDIATED
    return DeploymentStatus.HEALTHY


def execute(data: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Run (simulate) the plan. Auto actions always run; approval actions run only when approved:
    a rejected or expired approval runs nothing risky."""
    plan = _plan(data, "execute")
    approval = data.get("approval")
    if approval is not None and not isinstance(approval, dict):
        raise StepError("execute: 'approval' must be an object or null")
    executed = [_action_result(a, "auto") for a in _objects(plan.get("auto"), "execute: plan.auto")]
    skipped: list[dict[str, Any]] = []
    approval_actions = _objects(plan.get("approval"), "execute: plan.approval")
    if approval_actions:
        if is_approved(approval):
            executed += [_action_result(a, "approved") for a in approval_actions]
        else:
            reason = "no approval" if approval is None else "rejected"
            if _expired(approval):
                reason = "expired"
            skipped = [{**a, "skipped": reason} for a in approval_actions]
    verdict = data.get("verdict") or plan.get("verdict")
    return {
        "executed": executed,
        "skipped": skipped,
        "deployment_status": deployment_status(verdict, executed, approval).value,
    }


def is_approved(approval: dict[str, Any] | None) -> bool:
    """Only an explicit yes approves: JSON true, or "true" from a form-encoded Kestra resume.
    Anything else (false, null, missing, garbage) is a rejection."""
    if not approval:
        return False
    value = approval.get("approved")
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _expired(approval: dict[str, Any] | None) -> bool:
    return bool(approval) and (
        approval.get("status") == "expired" or approval.get("approver") == TIMEOUT_ACTOR
    )


def approval_status(plan: dict[str, Any], approval: dict[str, Any] | None) -> str:
    if plan.get("needs_approval") or plan.get("approval"):
        if approval is None:
            return "rejected"
        if _expired(approval):
            return "expired"
        return "approved" if is_approved(approval) else "rejected"
    return "auto" if plan.get("auto") else "not_required"


def record(data: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """The outcome record kept for the Learning page and the training export."""
    snapshot = _object(_require(data, "snapshot", "record"), "record: 'snapshot'")
    decision = _object(_require(data, "decision", "record"), "record: 'decision'")
    plan = _plan(data, "record")
    approval = _object(data.get("approval"), "record: 'approval'", optional=True)
    executed = _objects(data.get("executed"), "record: 'executed'")
    assert snapshot is not None and decision is not None
    status = approval_status(plan, approval)
    scenario = snapshot.get("scenario") if isinstance(snapshot.get("scenario"), dict) else None
    expected = scenario.get("expected_verdict") if scenario else None
    if expected:
        held: bool | None = decision.get("verdict") == expected
    elif status == "approved":
        held = True
    elif status == "rejected":
        held = False
    else:
        held = None
    status_text = data.get("deployment_status") or deployment_status(
        decision.get("verdict"), executed, approval
    ).value
    approvers = []
    if approval and approval.get("approver") and not _expired(approval):
        approvers = [p.strip() for p in str(approval["approver"]).split(",") if p.strip()]
    return {
        "outcome": {
            "execution_id": data.get("execution_id"),
            "deployment": snapshot.get("deployment"),
            "scenario": {"id": scenario.get("id"), "expected_verdict": expected} if scenario else None,
            "decision": decision,
            "plan": plan,
            "approval": {
                "status": status,
                "approvers": approvers,
                "comment": (approval or {}).get("comment"),
            },
            "executed": executed,
            "outcome": {"deployment_status": status_text, "held": held},
        }
    }


STEPS: dict[str, Callable[[dict[str, Any], Settings], dict[str, Any]]] = {
    "collect": collect,
    "analyze": analyze,
    "summarize": summarize,
    "decide": decide,
    "execute": execute,
    "record": record,
}


def run_step(name: str, data: dict[str, Any], settings: Settings) -> dict[str, Any]:
    try:
        step = STEPS[name]
    except KeyError:
        raise StepError(f"unknown step {name!r} (one of: {', '.join(STEP_TASKS)})") from None
    return step(data, settings)
