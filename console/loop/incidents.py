"""The incident path: a run started by a firing alert instead of a deployment (flow
``incident-handler`` on both engines), through the same steps as the loop.

What differs from a deployment run, in one place:

- **the input**: an incident (:func:`incident_input`) — the alert's service, severity (mapped from
  its labels by the payload parser), ``startsAt``, name, labels, and optionally the *suspect deployment*:
  the service's latest deployment the console knew of shortly before the alert started (the
  console looks it up when it launches the run; ``CONSOLE_INCIDENT_LOOKBACK_S``);
- **the window** (:func:`incident_deployment`): with a suspect, the run is judged like that
  deployment (baseline before the deploy, its previous version the rollback target); without one,
  around ``startsAt`` (baseline before the alert started). ``collect`` then watches until the
  evidence is conclusive or the service's verification window has passed, at once when the
  alert started longer ago than that;
- **the routing** (:func:`route`), like ``incident-handler``'s severity switch: LOW runs the plan's
  automatic actions (whatever needs an approval still waits for one); MEDIUM sends every action
  that changes something to a human; HIGH and CRITICAL do the same and escalate (the engine logs
  an ESCALATION line and audits it; on Kestra the flow's ``escalate`` task).

Pure functions: no I/O, no clock (``now`` is passed in).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from console.domain.actions import required_approvals
from console.domain.models import Severity, format_time, parse_time
from console.payloads import Alert, AlertMapping, PayloadError, parse_alertmanager
from console.settings import Settings

CHANGE_FREE = frozenset({"notify_only", "collect_diagnostics"})
"""Actions that change nothing on the service: they never wait for a human, whatever the severity."""
ESCALATING = (Severity.HIGH, Severity.CRITICAL)
ROUTES = {
    Severity.LOW: "auto",
    Severity.MEDIUM: "approval",
    Severity.HIGH: "escalate",
    Severity.CRITICAL: "escalate",
}
INCIDENT_SOURCE = "alertmanager"
"""The ``source`` of an incident run (who announced it), and who requests its approval."""
MAX_LABELS = 64


class IncidentError(ValueError):
    """An incident input that cannot be used (one line naming the field)."""


def _text(value: Any, limit: int = 200) -> str | None:
    if value is None or isinstance(value, bool | dict | list):
        return None
    text = " ".join(str(value).split())
    return text[:limit] or None


def _time(value: Any, what: str) -> str:
    text = _text(value, 64)
    if text is None:
        raise IncidentError(f"{what}: missing (an RFC 3339 time)")
    try:
        return format_time(parse_time(text))
    except (ValueError, TypeError, OverflowError):
        raise IncidentError(f"{what}: {text[:40]!r} is not an RFC 3339 time") from None


def parse_severity(value: Any) -> Severity:
    try:
        return Severity(str(value or "").strip().upper())
    except ValueError:
        raise IncidentError("incident.severity: must be LOW, MEDIUM, HIGH or CRITICAL") from None


def _suspect(value: Any) -> dict[str, Any] | None:
    """The suspect deployment, when it names at least a version and a time."""
    if not isinstance(value, Mapping):
        return None
    version, at = _text(value.get("version")), _text(value.get("deployed_at"), 64)
    if version is None or at is None:
        return None
    return {
        "id": _text(value.get("id") or value.get("deployment_id")),
        "version": version,
        "previous_version": _text(value.get("previous_version")),
        "deployed_at": _time(at, "incident.deployment.deployed_at"),
        "deployed_by": _text(value.get("deployed_by")),
    }


def incident_input(data: Mapping[str, Any], settings: Settings | None = None) -> dict[str, Any]:
    """The incident a run is about, checked: ``data["incident"]`` (what the console launches with;
    Kestra's inputs assembled the same way), or, when that names no service, the first firing alert
    with a service in ``data["alertmanager"]`` (an Alertmanager delivery sent straight to Kestra's
    ``incident-handler`` webhook), mapped with the settings' label mapping."""
    given = data.get("incident")
    incident = dict(given) if isinstance(given, Mapping) else {}
    if not _text(incident.get("service")) and data.get("alertmanager") is not None:
        incident = from_alertmanager(data["alertmanager"], settings or Settings())
    service = _text(incident.get("service"))
    if service is None:
        raise IncidentError("incident.service: missing")
    labels = incident.get("labels")
    labels = (
        {str(k)[:100]: str(v)[:500] for k, v in list(labels.items())[:MAX_LABELS]}
        if isinstance(labels, Mapping)
        else {}
    )
    return {
        "id": _text(incident.get("id")),
        "service": service,
        "severity": parse_severity(incident.get("severity")).value,
        "starts_at": _time(incident.get("starts_at"), "incident.starts_at"),
        "alertname": _text(incident.get("alertname")) or _text(labels.get("alertname")),
        "summary": _text(incident.get("summary"), 300),
        "fingerprint": _text(incident.get("fingerprint"), 64),
        "labels": labels,
        "deployment": _suspect(incident.get("deployment")),
    }


def from_alertmanager(body: Any, settings: Settings) -> dict[str, Any]:
    """The incident of the first firing alert with a service in an Alertmanager delivery."""
    try:
        delivery = parse_alertmanager(body, AlertMapping.from_settings(settings))
    except PayloadError as exc:
        raise IncidentError(f"alertmanager: {exc}") from None
    alert = next((a for a in delivery.firing if a.service), None)
    if alert is None:
        raise IncidentError("alertmanager: no firing alert names a service")
    return incident_of(alert)


def incident_of(
    alert: Alert, incident_id: str | None = None, deployment: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The incident document of a firing alert (the run's input; ``deployment``: the suspect)."""
    return {
        "id": incident_id,
        "service": alert.service,
        "severity": alert.severity.value,
        "starts_at": alert.starts_at,
        "alertname": alert.alertname,
        "summary": alert.summary(),
        "fingerprint": alert.fingerprint,
        "labels": dict(alert.labels),
        "deployment": deployment,
    }


def incident_deployment(incident: Mapping[str, Any], environment: str | None = None) -> dict[str, Any]:
    """The deployment block of an incident run's snapshot: the suspect deployment when there is one
    (baseline before it, rollback to its previous version), else the alert itself: ``deployed_at``
    = ``startsAt``, the version from the alert's ``version`` label when it has one."""
    suspect = incident.get("deployment") if isinstance(incident.get("deployment"), Mapping) else None
    labels = incident.get("labels") if isinstance(incident.get("labels"), Mapping) else {}
    incident_id = _text(incident.get("id")) or f"incident-{_text(incident.get('fingerprint')) or 'alert'}"
    if suspect:
        return {
            "id": suspect.get("id") or incident_id,
            "service": incident["service"],
            "version": suspect["version"],
            "previous_version": suspect.get("previous_version"),
            "environment": environment,
            "deployed_at": suspect["deployed_at"],
            "deployed_by": suspect.get("deployed_by") or INCIDENT_SOURCE,
        }
    return {
        "id": incident_id,
        "service": incident["service"],
        "version": _text(labels.get("version")) or "unknown",
        "previous_version": _text(labels.get("previous_version")),
        "environment": environment,
        "deployed_at": incident["starts_at"],
        "deployed_by": INCIDENT_SOURCE,
    }


def window_note(incident: Mapping[str, Any], deployment: Mapping[str, Any]) -> str:
    """One line saying what the incident's window is anchored on."""
    name = incident.get("alertname") or "the alert"
    if isinstance(incident.get("deployment"), Mapping):
        return (
            f"incident: {name} started {incident['starts_at']}; judged against the deploy of "
            f"{deployment['version']} at {deployment['deployed_at']} "
            "(the service's latest deployment before it)"
        )
    return (
        f"incident: {name} started {incident['starts_at']}; baseline before that moment "
        "(no recent deploy known)"
    )


def anchor(deployment: Mapping[str, Any], now: datetime) -> datetime:
    """When the window starts: the deploy (or the alert's start), never after ``now``."""
    return min(parse_time(str(deployment["deployed_at"])), now)


def route(
    plan: Mapping[str, Any], severity: Severity | str, *, critical_approvers: int = 2
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The plan as the incident's severity routes it, and the routing itself
    (``{"severity", "route": "auto" | "approval" | "escalate", "escalate", "moved_to_approval",
    "reason"}``). See the module's doc; the routing is stricter than the policy, never looser."""
    level = parse_severity(severity.value if isinstance(severity, Severity) else severity)
    auto = [dict(a) for a in plan.get("auto") or [] if isinstance(a, Mapping)]
    approval = [dict(a) for a in plan.get("approval") or [] if isinstance(a, Mapping)]
    moved: list[dict[str, Any]] = []
    if level is not Severity.LOW:
        moved = [a for a in auto if a.get("name") not in CHANGE_FREE]
        auto = [a for a in auto if a.get("name") in CHANGE_FREE]
        approval += moved
    notes = list(plan.get("notes") or [])
    if level is Severity.LOW:
        reason = "LOW: the automatic actions run; anything needing an approval still waits for one"
    else:
        reason = f"{level.value}: every action that changes the service waits for a human"
        if level in ESCALATING:
            reason += "; escalated to on-call"
    if moved:
        names = ", ".join(str(a.get("name")) for a in moved)
        notes.append(f"incident {level.value}: {names} sent to a human")
    required = required_approvals(approval, critical_approvers)  # the registry's risk, never the document's
    routed = {
        **dict(plan),
        "auto": auto,
        "approval": approval,
        "required_approvals": required,
        "needs_approval": bool(approval),
        "notes": notes,
    }
    routing = {
        "severity": level.value,
        "route": ROUTES[level],
        "escalate": level in ESCALATING,
        "moved_to_approval": [str(a.get("name")) for a in moved],
        "reason": reason,
    }
    return routed, routing


def escalation_line(
    incident: Mapping[str, Any] | None, routing: Mapping[str, Any], summary: str | None
) -> str:
    """The ESCALATION log line of a HIGH or CRITICAL incident."""
    incident = incident or {}
    what = incident.get("alertname") or "incident"
    service = incident.get("service") or "?"
    text = f"ESCALATION {routing.get('severity')}: {what} on {service}"
    if summary:
        text += f": {' '.join(summary.split())[:200]}"
    return text + " — paging on-call; every action that changes the service waits for an approval"


__all__ = [
    "CHANGE_FREE",
    "INCIDENT_SOURCE",
    "IncidentError",
    "anchor",
    "escalation_line",
    "from_alertmanager",
    "incident_deployment",
    "incident_input",
    "parse_severity",
    "route",
    "window_note",
]
