"""The action vocabulary: every action the loop may recommend, defined once, with its risk and its
words, and whether it changes the service.

Nothing outside this registry can be recommended or executed (the LLM's suggestions are filtered
through :func:`get_action`, an executor refuses a name it does not hold). Risk is a property of the
action, never of the text that proposed it. The executors say which of these actions their target
can do (``Executor.supports``); the policy, the labels of results, the approval card, the outcome
and the effectiveness table read everything else from here, so adding an action is one entry below
(and a handler in the executors that can do it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from console.domain.models import RISK_ORDER, Risk

ROLLBACK = "rollback_deployment"
SCALE = "scale_deployment"
RESTART = "restart_pod"
INCREASE_RESOURCES = "increase_resources"
COLLECT_DIAGNOSTICS = "collect_diagnostics"
FAILOVER_DATABASE = "failover_database"
NOTIFY_ONLY = "notify_only"


@dataclass(frozen=True)
class ActionSpec:
    name: str
    title: str
    risk: Risk
    description: str
    effect: str
    """What doing it did to the deployment, as results and the console say it (``rolled back``)."""
    noun: str
    """What it is called when it did not happen (``rollback failed: ...``, ``rollback (server dry run)``)."""
    changes_service: bool
    """A remediation: doing it changes the running service, so its result is checked against the
    service's state (preconditions before, reconciliation after) and its outcome is measured."""


ACTIONS: dict[str, ActionSpec] = {
    spec.name: spec
    for spec in [
        ActionSpec(
            ROLLBACK,
            "Roll back deployment",
            Risk.HIGH,
            "Redeploy the newest known-good version of the service.",
            "rolled back",
            "rollback",
            changes_service=True,
        ),
        ActionSpec(
            SCALE,
            "Scale deployment",
            Risk.MEDIUM,
            "Add replicas to absorb load.",
            "scaled",
            "scale",
            changes_service=True,
        ),
        ActionSpec(
            RESTART,
            "Restart pod",
            Risk.LOW,
            "Restart unhealthy pods one at a time.",
            "restarted",
            "restart",
            changes_service=True,
        ),
        ActionSpec(
            INCREASE_RESOURCES,
            "Increase resources",
            Risk.MEDIUM,
            "Raise CPU/memory requests and limits.",
            "resources increased",
            "resource increase",
            changes_service=True,
        ),
        ActionSpec(
            COLLECT_DIAGNOSTICS,
            "Collect diagnostics",
            Risk.LOW,
            "Capture heap/thread dumps, recent logs and events for the incident.",
            "diagnostics collected",
            "diagnostics collection",
            changes_service=False,
        ),
        ActionSpec(
            FAILOVER_DATABASE,
            "Fail over database",
            Risk.CRITICAL,
            "Promote the standby database; brief write outage.",
            "database failed over",
            "database failover",
            changes_service=True,
        ),
        ActionSpec(
            NOTIFY_ONLY,
            "Notify on-call",
            Risk.LOW,
            "Post the decision to the on-call channel; change nothing.",
            "notify only: nothing changed",
            "notification",
            changes_service=False,
        ),
    ]
}

ACTION_NAMES: tuple[str, ...] = tuple(ACTIONS)
"""Every action name, in the registry's order."""
REMEDIATIONS: frozenset[str] = frozenset(name for name, spec in ACTIONS.items() if spec.changes_service)
"""The actions that change the service (the others collect, notify or change nothing)."""


class UnknownActionError(KeyError):
    pass


def get_action(name: str) -> ActionSpec:
    try:
        return ACTIONS[name]
    except KeyError:
        raise UnknownActionError(f"unknown action {name!r}") from None


def is_known_action(name: str) -> bool:
    return name in ACTIONS


def changes_service(name: object) -> bool:
    """Whether the action named ``name`` changes the service (an unknown name does not)."""
    return isinstance(name, str) and name in REMEDIATIONS


def wording(name: str) -> tuple[str, str]:
    """(what "done" reads as, the noun for "failed"/"refused"/"dry run") of an action; an unknown
    name reads as itself."""
    spec = ACTIONS.get(name)
    return (spec.effect, spec.noun) if spec is not None else (f"{name} done", name)


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
