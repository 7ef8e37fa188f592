from __future__ import annotations

from console.domain.models import Decision, RecommendedAction, Risk, Severity, Verdict
from console.loop.policy import Plan, plan_actions
from console.settings import Settings


def _decision(confidence: float, *actions: tuple[str, Risk]) -> Decision:
    return Decision(
        verdict=Verdict.ROLLBACK,
        severity=Severity.HIGH,
        confidence=confidence,
        summary="",
        root_cause="",
        actions=[RecommendedAction(name, risk, "because") for name, risk in actions],
        metrics=[],
        log_patterns=[],
        analyzer="rules",
    )


def test_low_risk_auto_only_at_or_above_threshold() -> None:
    settings = Settings(auto_approve_confidence=0.8)
    at = plan_actions(_decision(0.8, ("collect_diagnostics", Risk.LOW)), settings)
    below = plan_actions(_decision(0.79, ("collect_diagnostics", Risk.LOW)), settings)
    assert [a.name for a in at.auto] == ["collect_diagnostics"] and not at.needs_approval
    assert [a.name for a in below.approval] == ["collect_diagnostics"] and below.required_approvals == 1


def test_risky_actions_always_need_a_human_even_at_full_confidence() -> None:
    plan = plan_actions(
        _decision(1.0, ("rollback_deployment", Risk.HIGH), ("notify_only", Risk.LOW)), Settings()
    )
    assert [a.name for a in plan.approval] == ["rollback_deployment"]
    assert [a.name for a in plan.auto] == ["notify_only"]
    assert plan.required_approvals == 1


def test_risk_comes_from_the_registry_not_the_decision() -> None:
    # A decision (e.g. written by an LLM or shaped by log text) claiming a rollback is LOW risk.
    plan = plan_actions(_decision(0.99, ("rollback_deployment", Risk.LOW)), Settings())
    assert plan.auto == []
    assert plan.approval[0].risk is Risk.HIGH


def test_critical_needs_two_approvers_and_unknown_actions_are_dropped() -> None:
    plan = plan_actions(
        _decision(0.95, ("failover_database", Risk.LOW), ("rm_rf_cluster", Risk.LOW)), Settings()
    )
    assert [a.name for a in plan.approval] == ["failover_database"]
    assert plan.required_approvals == 2
    assert any("rm_rf_cluster" in note for note in plan.notes)


def test_threshold_override_for_what_if_and_round_trip() -> None:
    decision = _decision(0.7, ("restart_pod", Risk.LOW))
    assert plan_actions(decision, Settings(), threshold=0.6).auto
    assert not plan_actions(decision, Settings(), threshold=0.75).auto
    plan = plan_actions(decision, Settings(), threshold=0.6)
    assert Plan.from_dict(plan.to_dict()).to_dict() == plan.to_dict()


def test_duplicate_actions_planned_once() -> None:
    plan = plan_actions(_decision(0.9, ("notify_only", Risk.LOW), ("notify_only", Risk.LOW)), Settings())
    assert len(plan.auto) == 1
