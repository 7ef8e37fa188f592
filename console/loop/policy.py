"""Which recommended actions run on their own and which wait for a human.

The policy reads only the decision's confidence and the action *names*; each action's risk comes
from the registry in :mod:`console.domain.actions`, never from the decision (so neither an LLM nor text
planted in logs can lower it). Unknown actions are never planned.

With ``settings.policy_use_effectiveness`` on (off by default), the measured record of each action
(:mod:`console.loop.effectiveness`) may make the routing stricter, never looser: an action that
would run on its own but has a poor measured record for the decision's root-cause category
(at least ``POOR_MIN_RUNS`` real runs and a success rate under ``POOR_SUCCESS_RATE``) goes to a
human instead, with a note saying why.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from console.domain.actions import get_action, is_known_action, required_approvals
from console.domain.models import Decision, RecommendedAction, Risk
from console.loop.effectiveness import Effectiveness, lookup, root_cause_category
from console.settings import Settings

POOR_MIN_RUNS = 3
"""Real measured runs an action needs before its record can send it to a human."""
POOR_SUCCESS_RATE = 0.5
"""A success rate under this is a poor record."""


@dataclass
class Plan:
    auto: list[RecommendedAction]
    approval: list[RecommendedAction]
    required_approvals: int
    threshold: float
    notes: list[str] = field(default_factory=list)

    @property
    def needs_approval(self) -> bool:
        return bool(self.approval)

    def to_dict(self) -> dict[str, Any]:
        return {
            "auto": [a.to_dict() for a in self.auto],
            "approval": [a.to_dict() for a in self.approval],
            "required_approvals": self.required_approvals,
            "needs_approval": self.needs_approval,
            "threshold": self.threshold,
            "notes": list(self.notes),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        return cls(
            auto=[RecommendedAction.from_dict(a) for a in data.get("auto", [])],
            approval=[RecommendedAction.from_dict(a) for a in data.get("approval", [])],
            required_approvals=int(data.get("required_approvals", 0)),
            threshold=float(data.get("threshold", 0.0)),
            notes=list(data.get("notes", [])),
        )


def poor_record(entry: Effectiveness | None) -> bool:
    return (
        entry is not None
        and entry.total >= POOR_MIN_RUNS
        and entry.success_rate is not None
        and entry.success_rate < POOR_SUCCESS_RATE
    )


def plan_actions(
    decision: Decision,
    settings: Settings,
    *,
    threshold: float | None = None,
    effectiveness: list[Effectiveness] | None = None,
) -> Plan:
    """Route each recommended action: auto when LOW risk and confidence ≥ threshold, else approval.

    ``threshold`` overrides ``settings.auto_approve_confidence`` (the Learning page's what-if).
    Any CRITICAL action needs ``settings.critical_approvers`` distinct approvers, others one.
    ``effectiveness`` (used only when ``settings.policy_use_effectiveness``) sends an automatic action
    with a poor measured record to a human.
    """
    limit = settings.auto_approve_confidence if threshold is None else threshold
    auto: list[RecommendedAction] = []
    approval: list[RecommendedAction] = []
    notes: list[str] = []
    seen: set[str] = set()

    def category() -> str:
        return root_cause_category(decision.to_dict())

    for action in decision.actions:
        if not is_known_action(action.name):
            notes.append(f"unknown action {action.name!r} not planned")
            continue
        if action.name in seen:
            continue
        seen.add(action.name)
        spec = get_action(action.name)
        planned = RecommendedAction(action.name, spec.risk, action.reason, dict(action.params))
        if spec.risk == Risk.LOW and decision.confidence >= limit:
            record = None
            if effectiveness and settings.policy_use_effectiveness:
                record = lookup(effectiveness, category(), action.name)
            if poor_record(record):
                assert record is not None
                notes.append(f"{record.sentence}: a human decides (measured record, stricter routing)")
                approval.append(planned)
            else:
                auto.append(planned)
        else:
            approval.append(planned)
    required = required_approvals(approval, settings.critical_approvers)
    return Plan(auto=auto, approval=approval, required_approvals=required, threshold=limit, notes=notes)
