"""The action registry: every remediation the loop may recommend, with its risk.

Nothing outside this registry can be recommended or executed (the LLM's suggestions are filtered
through :func:`get_action`). Risk is a property of the action, never of the text that proposed it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from console.domain.models import RISK_ORDER, Risk


@dataclass(frozen=True)
class ActionSpec:
    name: str
    title: str
    risk: Risk
    description: str
    effect: str
    """What executing it does to the deployment, shown in the console (e.g. "rolled back")."""


ACTIONS: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in [
        ActionSpec(
            "rollback_deployment",
            "Roll back deployment",
            Risk.HIGH,
            "Redeploy the previous version of the service.",
            "rolled back",
        ),
        ActionSpec(
            "scale_deployment",
            "Scale deployment",
            Risk.MEDIUM,
            "Add replicas to absorb load.",
            "scaled out",
        ),
        ActionSpec(
            "restart_pod",
            "Restart pod",
            Risk.LOW,
            "Restart unhealthy pods one at a time.",
            "pods restarted",
        ),
        ActionSpec(
            "increase_resources",
            "Increase resources",
            Risk.MEDIUM,
            "Raise CPU/memory requests and limits.",
            "resources increased",
        ),
        ActionSpec(
            "collect_diagnostics",
            "Collect diagnostics",
            Risk.LOW,
            "Capture heap/thread dumps, recent logs and events for the incident.",
            "diagnostics collected",
        ),
        ActionSpec(
            "failover_database",
            "Fail over database",
            Risk.CRITICAL,
            "Promote the standby database; brief write outage.",
            "database failed over",
        ),
        ActionSpec(
            "notify_only",
            "Notify on-call",
            Risk.LOW,
            "Post the decision to the on-call channel; change nothing.",
            "on-call notified",
        ),
    ]
}


class UnknownActionError(KeyError):
    pass


def get_action(name: str) -> ActionSpec:
    try:
        return ACTIONS[name]
    except KeyError:
        raise UnknownActionError(f"unknown action {name!r}") from None


def is_known_action(name: str) -> bool:
    return name in ACTIONS


def registry_risk(actions: list[Any]) -> Risk:
    """The highest risk among planned action documents, as the registry rates each *name*: the
    ``risk`` a document states (from an engine's outputs, a Kestra input) is never trusted. A name
    the registry does not know counts as CRITICAL (it cannot be rated, so it gets the strictest
    review); no action at all is LOW."""
    risks = []
    for action in actions:
        name = action.get("name") if isinstance(action, dict) else None
        spec = ACTIONS.get(name) if isinstance(name, str) else None
        risks.append(spec.risk if spec is not None else Risk.CRITICAL)
    return max(risks, key=RISK_ORDER.index, default=Risk.LOW)


def required_approvals(actions: list[Any], critical_approvers: int) -> int:
    """How many distinct people must approve ``actions`` (planned action documents or
    :class:`~console.domain.models.RecommendedAction`): none without an action,
    ``critical_approvers`` (at least 2) when the registry rates one CRITICAL, else one. The one
    place this rule lives: the policy, the incident routing and the stored request all ask here."""
    if not actions:
        return 0
    documents = [a if isinstance(a, dict) else {"name": getattr(a, "name", None)} for a in actions]
    return max(2, int(critical_approvers)) if registry_risk(documents) is Risk.CRITICAL else 1
