"""Which recommended actions run on their own and which wait for a human.

The policy reads only the decision's confidence and the action *names*; each action's risk comes
from the registry in :mod:`console.domain.actions`, never from the decision (so neither an LLM nor text
planted in logs can lower it). Unknown actions are never planned.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from console.domain.actions import get_action, is_known_action
from console.domain.models import RISK_ORDER, Decision, RecommendedAction, Risk
from console.settings import Settings


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

    @property
    def max_risk(self) -> Risk | None:
        risks = [a.risk for a in self.approval] or [a.risk for a in self.auto]
        return max(risks, key=RISK_ORDER.index) if risks else None

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


def plan_actions(decision: Decision, settings: Settings, *, threshold: float | None = None) -> Plan:
    """Route each recommended action: auto when LOW risk and confidence ≥ threshold, else approval.

    ``threshold`` overrides ``settings.auto_approve_confidence`` (the Learning page's what-if).
    Any CRITICAL action needs ``settings.critical_approvers`` distinct approvers, others one.
    """
    limit = settings.auto_approve_confidence if threshold is None else threshold
    auto: list[RecommendedAction] = []
    approval: list[RecommendedAction] = []
    notes: list[str] = []
    seen: set[str] = set()
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
            auto.append(planned)
        else:
            approval.append(planned)
    if any(a.risk == Risk.CRITICAL for a in approval):
        required = max(2, settings.critical_approvers)
    else:
        required = 1 if approval else 0
    return Plan(auto=auto, approval=approval, required_approvals=required, threshold=limit, notes=notes)
