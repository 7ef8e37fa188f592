"""One story per deployment: the timeline of real runs (approved, rejected, expired, paused, killed),
and of records in the live loop's shapes and in the first shapes."""

from __future__ import annotations

import json

import pytest

from console.access.auth import Identity, PermissionDenied, Role
from console.domain.executions import State
from console.domain.vocabulary import LOOP_TASKS
from console.loop.timeline import build_timeline
from console.runtime import embedded_runtime
from tests.loop.conftest import LIVE_APPROVAL, LIVE_AUDIT, LIVE_VOTES, live_record, material, run


def kinds(events) -> list[str]:
    return [e.kind for e in events]


def first(events, kind):
    return next(e for e in events if e.kind == kind)


def test_an_approved_rollback_tells_its_story_in_order(rt):
    execution = run(rt, "memory-leak", comment="go ahead")
    events = build_timeline(rt.store.executions.get(execution.id), **material(rt, execution.id))
    order = kinds(events)
    assert order[0] == "deployed" and order[-1] == "finished"
    sequence = ["loop_started", "decision", "approval_requested", "vote", "action", "outcome", "finished"]
    positions = [order.index(k) for k in sequence]
    assert positions == sorted(positions), order
    times = [e.at for e in events if e.at]
    assert times == sorted(times)

    deployed = first(events, "deployed")
    assert deployed.title == "payment-service v1.2.3 deployed (replacing v1.2.2)"
    assert (
        deployed.actor == "ci-bot"
        and deployed.simulated
        and "recorded scenario memory-leak" in deployed.detail
    )
    assert first(events, "loop_started").actor == "alice"

    steps = [e for e in events if e.kind == "step"]
    assert [e.data["task_id"] for e in steps] == list(LOOP_TASKS)
    assert all(e.duration_s is not None and e.duration_s >= 0 for e in steps)

    decision = first(events, "decision")
    assert decision.status == "ROLLBACK" and decision.data["confidence"] >= 0.9
    assert any("hard guard" in item for item in decision.data["evidence"])
    assert decision.data["approval"] == ["rollback_deployment"]

    vote = first(events, "vote")
    assert (vote.actor, vote.status, vote.data["comment"]) == ("bob", "approved", "go ahead")
    assert vote.data["final"] and "go ahead" in vote.detail

    actions = [e for e in events if e.kind == "action"]
    assert {e.data["name"]: (e.status, e.simulated) for e in actions} == {
        "collect_diagnostics": ("done", True),
        "rollback_deployment": ("done", True),
    }
    assert "simulated" in first(events, "action").detail

    outcome = first(events, "outcome")
    assert outcome.title == "Outcome: rolled back · simulated" and outcome.status == "resolved"
    assert outcome.simulated  # measured on the scenario's recorded post-action segment
    assert first(events, "finished").title == "Loop finished: SUCCESS"
    json.dumps([e.to_dict() for e in events])  # the page can cache it as JSON


def test_a_rejection_shows_the_vote_and_what_did_not_run(rt):
    execution = run(rt, "memory-leak", approve=False, comment="peak traffic, not now")
    events = build_timeline(rt.store.executions.get(execution.id), **material(rt, execution.id))
    vote = first(events, "vote")
    assert (
        vote.status == "rejected"
        and "peak traffic, not now" in vote.detail
        and "nothing risky" in vote.detail
    )
    skipped = [e for e in events if e.kind == "action" and e.status == "skipped"]
    assert [e.data["name"] for e in skipped] == ["rollback_deployment"]
    assert skipped[0].detail == "skipped: rejected"
    assert first(events, "outcome").title.startswith("Outcome: escalated")


def test_an_expired_approval_and_a_refused_attempt_are_in_the_story(settings, approval_clock):
    rt = embedded_runtime(settings, synchronous=True, approval_clock=approval_clock)
    try:
        execution = rt.engine.run_sync(scenario="memory-leak", triggered_by="alice")
        approval = rt.store.approvals.for_execution(execution.id)
        with pytest.raises(PermissionDenied):  # ci-bot asked for it: no self-approval
            rt.approvals.vote(approval["id"], Identity("ci-bot", Role.APPROVER), True, "")
        approval_clock.advance(minutes=settings.approval_timeout_minutes + 1)
        assert rt.approvals.expire_overdue() == [approval["id"]]
        done = rt.engine.wait(execution.id)
        events = build_timeline(done, **material(rt, execution.id))
    finally:
        rt.close()
    expired = first(events, "approval")
    assert expired.status == "expired" and expired.actor == "system:timeout"
    refused = first(events, "refused")
    assert refused.actor == "ci-bot" and refused.detail == "you cannot approve your own request"
    rollback = [e for e in events if e.kind == "action" and e.data.get("name") == "rollback_deployment"]
    assert [(e.status, e.detail) for e in rollback] == [("skipped", "skipped: expired")]


def test_a_paused_run_has_its_decision_from_the_steps_and_no_outcome_yet(rt):
    execution = run(rt, "memory-leak", approve=None)
    assert execution.state == State.PAUSED
    events = build_timeline(rt.store.executions.get(execution.id), **material(rt, execution.id))
    assert first(events, "decision").status == "ROLLBACK"
    assert first(events, "approval_requested").status == "pending"
    assert "outcome" not in kinds(events) and "finished" not in kinds(events)
    waiting = [e for e in events if e.kind == "step" and e.data["task_id"] == "approval"]
    assert waiting[0].duration_s is None  # still waiting


def test_a_killed_run_says_who_killed_it(rt):
    execution = run(rt, "memory-leak", approve=None)
    rt.engine.kill(execution.id, by="carol")
    events = build_timeline(rt.store.executions.get(execution.id), **material(rt, execution.id))
    assert first(events, "killed").actor == "carol"
    assert first(events, "approval").status == "cancelled"
    assert first(events, "finished").title == "Loop finished: KILLED"


def test_a_live_record_without_the_execution_gives_results_reasons_and_the_measured_outcome():
    """Kestra may not give the execution back: the record, approval, votes and audit tell the story."""
    events = build_timeline(
        None, record=live_record(), approval=LIVE_APPROVAL, votes=LIVE_VOTES, audit=LIVE_AUDIT
    )
    actions = {e.data["name"]: e for e in events if e.kind == "action"}
    assert {n: e.status for n, e in actions.items()} == {
        "collect_diagnostics": "done",
        "rollback_deployment": "failed",
        "restart_pod": "refused",
    }
    assert actions["rollback_deployment"].detail == (
        "failed: deployer answered 503: the new instance did not become ready"
    )
    assert actions["rollback_deployment"].duration_s == 4.0
    assert actions["restart_pod"].detail == "refused: namespace not allowed"
    assert not any(e.simulated for e in events)
    outcome = first(events, "outcome")
    assert outcome.status == "not resolved" and "prometheus" in outcome.detail
    assert outcome.at.isoformat().startswith("2026-11-29T17:02:36")
    assert first(events, "refused").detail == "you cannot approve your own request"
    assert first(events, "loop_started").actor == "deployer"
    times = [e.at for e in events]
    assert all(times) and times == sorted(times)


def test_a_record_of_the_first_shapes_reads_as_simulated_and_not_measured():
    record = live_record()
    record.pop("measured")
    record["outcome"] = {"deployment_status": "rolled back", "held": True}
    record["executed"] = [
        {"name": "rollback_deployment", "title": "Roll back deployment", "risk": "HIGH", "params": {},
         "mode": "approved", "status": "simulated", "effect": "rolled back"}
    ]  # fmt: skip
    events = build_timeline(None, record=record)
    action = first(events, "action")
    assert (action.status, action.simulated, action.detail) == ("done", True, "done: rolled back (simulated)")
    outcome = first(events, "outcome")
    assert outcome.status == "not measured" and outcome.simulated and outcome.at is None
