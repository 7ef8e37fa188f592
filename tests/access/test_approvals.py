"""Approvals: server-side checks, two approvers, concurrency, expiry, resume failures, audit."""

from __future__ import annotations

import sqlite3
import threading

import pytest

from console.access.approvals import AlreadyDecided, ApprovalService
from console.access.auth import Identity, PermissionDenied, Role
from console.domain.executions import State
from console.engines.backend import BackendUnavailable
from console.engines.embedded.runner import EmbeddedEngine
from console.runtime import embedded_runtime
from tests.conftest import run_paused
from tests.waiting import wait_for_state


def events(store, subject):
    return [(row["actor"], row["event"]) for row in reversed(store.audit.trail(subject=subject))]


def test_viewer_is_denied_on_the_server_side_and_audited(engine, approvals, viewer):
    execution, approval = run_paused(engine)
    with pytest.raises(PermissionDenied, match="viewer"):
        approvals.vote(approval["id"], viewer, True, "")
    assert engine.store.approvals.get(approval["id"])["status"] == "pending"
    assert engine.get_execution(execution.id).state == State.PAUSED
    assert ("victor", "approval.refused") in events(engine.store, approval["id"])


def test_nobody_approves_their_own_request(engine, approvals):
    _, approval = run_paused(engine)
    requester = Identity(approval["requested_by"], Role.ADMIN)
    with pytest.raises(PermissionDenied, match="you cannot approve your own request"):
        approvals.vote(approval["id"], requester, True, "")
    assert engine.store.approvals.votes(approval["id"]) == []


def test_names_compare_case_insensitively_for_self_approval_and_second_approver(engine, approvals, bob):
    _, approval = run_paused(engine)
    shouting_requester = Identity(approval["requested_by"].upper(), Role.APPROVER)
    with pytest.raises(PermissionDenied, match="your own request"):
        approvals.vote(approval["id"], shouting_requester, True, "")
    with engine.store.db.write() as conn:
        conn.execute("UPDATE approvals SET required_approvals = 2 WHERE id = ?", (approval["id"],))
    assert approvals.vote(approval["id"], bob, True, "").status == "recorded"
    with pytest.raises(AlreadyDecided, match="already voted"):
        approvals.vote(approval["id"], Identity("BOB", Role.APPROVER), True, "")
    assert engine.store.approvals.get(approval["id"])["status"] == "pending"


def test_reject_needs_a_comment_then_nothing_risky_runs(engine, approvals, bob):
    execution, approval = run_paused(engine)
    with pytest.raises(ValueError, match="comment"):
        approvals.vote(approval["id"], bob, False, "   ")
    result = approvals.vote(approval["id"], bob, False, "the leak is in a dependency, keep it")
    assert result.status == "rejected"
    done = engine.wait(execution.id, timeout=30)
    assert done.state == State.SUCCESS
    execute = done.task_run("execute").outputs
    assert all(a["mode"] == "auto" for a in execute["executed"])
    assert {a["name"] for a in execute["skipped"]} == {a["name"] for a in approval["actions"]}
    assert "rollback_deployment" not in {a["name"] for a in execute["executed"]}
    assert done.outputs["deployment_status"] == "escalated"
    [record] = engine.store.outcomes.records()
    assert record["approval"]["status"] == "rejected"
    assert record["approval"]["comment"] == "the leak is in a dependency, keep it"


def test_double_click_gives_a_clear_message_and_no_second_effect(engine, approvals, bob):
    execution, approval = run_paused(engine)
    approvals.vote(approval["id"], bob, True, "")
    with pytest.raises(AlreadyDecided, match=r"already approved by bob at \d\d:\d\d"):
        approvals.vote(approval["id"], bob, True, "")
    done = engine.wait(execution.id, timeout=30)
    assert [h.state.value for h in done.histories].count("RUNNING") == 2  # resumed once


def test_critical_needs_two_different_approvers(engine, approvals, bob, carol):
    execution, approval = run_paused(engine)
    with (
        engine.store.db.write() as conn
    ):  # make this plan a CRITICAL one (the policy's rule is tested in core)
        conn.execute("UPDATE approvals SET required_approvals = 2 WHERE id = ?", (approval["id"],))
    first = approvals.vote(approval["id"], bob, True, "")
    assert first.status == "recorded" and "1 more approver" in first.message
    assert engine.get_execution(execution.id).state == State.PAUSED
    with pytest.raises(AlreadyDecided, match="bob already voted"):
        approvals.vote(approval["id"], bob, True, "")
    second = approvals.vote(approval["id"], carol, True, "")
    assert second.status == "approved"
    done = engine.wait(execution.id, timeout=30)
    assert done.outputs["deployment_status"] == "rolled back"
    row = engine.store.approvals.get(approval["id"])
    assert row["decided_by"] == "bob, carol"
    [record] = engine.store.outcomes.records()
    assert record["approval"]["approvers"] == ["bob", "carol"]


def test_any_reject_rejects_a_two_approver_plan(engine, approvals, bob, carol):
    execution, approval = run_paused(engine)
    with engine.store.db.write() as conn:
        conn.execute("UPDATE approvals SET required_approvals = 2 WHERE id = ?", (approval["id"],))
    approvals.vote(approval["id"], bob, True, "")
    assert approvals.vote(approval["id"], carol, False, "not during the sale").status == "rejected"
    assert engine.wait(execution.id, timeout=30).outputs["deployment_status"] == "escalated"
    [record] = engine.store.outcomes.records()
    assert record["approval"]["status"] == "rejected" and record["approval"]["approvers"] == ["carol"]


def test_concurrent_deciders_get_exactly_one_decision(engine, approvals):
    execution, approval = run_paused(engine)
    people = [Identity(f"op{i}", Role.APPROVER) for i in range(8)]
    barrier = threading.Barrier(len(people))
    results: dict[str, object] = {}

    def decide(identity):
        barrier.wait()
        try:
            results[identity.name] = approvals.vote(approval["id"], identity, True, "")
        except AlreadyDecided as exc:
            results[identity.name] = exc

    threads = [threading.Thread(target=decide, args=(p,)) for p in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    winners = [name for name, r in results.items() if not isinstance(r, Exception)]
    assert len(winners) == 1 and len(results) == len(people)
    for name, r in results.items():
        if name != winners[0]:
            assert isinstance(r, AlreadyDecided)
            assert f"already approved by {winners[0]} at" in str(r)
    assert len(engine.store.approvals.votes(approval["id"])) == 1
    done = engine.wait(execution.id, timeout=30)
    assert done.state == State.SUCCESS
    assert [h.state.value for h in done.histories].count("RUNNING") == 2
    audit = events(engine.store, approval["id"])
    assert audit.count((winners[0], "approval.approved")) == 1
    assert sum(1 for _, e in audit if e == "approval.refused") == len(people) - 1


def test_expired_approval_is_rejected_never_approved(settings, bob, approval_clock):
    runtime = embedded_runtime(
        settings, max_workers=1, expire_every_s=0, expiry_timer_s=None, approval_clock=approval_clock
    )
    engine, service = runtime.engine, runtime.approvals
    try:
        execution, approval = run_paused(engine)
        engine.search_executions()
        assert engine.store.approvals.get(approval["id"])["status"] == "pending"  # not due yet
        approval_clock.advance(minutes=settings.approval_timeout_minutes + 1)
        engine.search_executions()  # list paths expire overdue approvals (the wired read hook)
        done = engine.wait(execution.id, timeout=30)
        assert done.state == State.SUCCESS
        pause = done.task_run("approval").outputs
        assert pause["approved"] is False and pause["approver"] == "system:timeout"
        assert "rollback_deployment" not in {a["name"] for a in done.task_run("execute").outputs["executed"]}
        row = engine.store.approvals.get(approval["id"])
        assert row["status"] == "expired" and row["decided_by"] == "system:timeout"
        assert ("system:timeout", "approval.expired") in events(engine.store, approval["id"])
        with pytest.raises(AlreadyDecided, match=r"expired .* and was rejected"):
            service.vote(approval["id"], bob, True, "")
        [record] = engine.store.outcomes.records()
        assert record["approval"]["status"] == "expired"
        assert engine.store.deployments.for_execution(execution.id)["approval"] == "expired"
    finally:
        runtime.close()


def test_deciding_an_overdue_approval_expires_it_instead(settings, bob, approval_clock):
    engine = EmbeddedEngine(settings, max_workers=1)  # nothing wired expires it
    service = ApprovalService(engine.store, engine, settings, clock=approval_clock)
    try:
        execution, approval = run_paused(engine)
        approval_clock.advance(minutes=settings.approval_timeout_minutes, seconds=1)  # overdue, not expired
        assert engine.store.approvals.get(approval["id"])["status"] == "pending"
        with pytest.raises(AlreadyDecided, match="expired"):
            service.vote(approval["id"], bob, True, "")
        assert engine.store.approvals.get(approval["id"])["status"] == "expired"
        assert engine.wait(execution.id, timeout=30).task_run("approval").outputs["approved"] is False
    finally:
        engine.close()


class FlakyBackend:
    """The engine behind an unreachable orchestrator (Kestra down) for the first ``failures`` resumes."""

    def __init__(self, engine, failures):
        self.engine = engine
        self.failures = failures

    def resume(self, execution_id, *, approved, comment, approver, rollback_target=None):
        if self.failures:
            self.failures -= 1
            raise BackendUnavailable("Kestra is not reachable at http://127.0.0.1:9/")
        self.engine.resume(
            execution_id,
            approved=approved,
            comment=comment,
            approver=approver,
            rollback_target=rollback_target,
        )


def test_a_failed_resume_keeps_the_decision_and_can_be_retried(engine, settings, bob):
    execution, approval = run_paused(engine)
    service = ApprovalService(engine.store, FlakyBackend(engine, failures=2), settings)
    result = service.vote(approval["id"], bob, True, "")
    assert result.status == "approved" and not result.resumed
    assert "could not be resumed" in result.message
    row = engine.store.approvals.get(approval["id"])
    assert row["status"] == "approved" and row["resume_state"] == "failed"
    assert [a["id"] for a in service.resume_failed()] == [approval["id"]]
    assert engine.get_execution(execution.id).state == State.PAUSED
    assert not service.retry_resume(approval["id"]).resumed
    assert service.retry_resume(approval["id"]).resumed
    assert engine.wait(execution.id, timeout=30).outputs["deployment_status"] == "rolled back"
    assert engine.store.approvals.get(approval["id"])["resume_state"] == "done"
    assert service.resume_failed() == []


def test_audit_trail_is_append_only(engine, approvals, bob):
    _, approval = run_paused(engine)
    approvals.vote(approval["id"], bob, True, "")
    before = engine.store.audit.trail()
    assert before
    with pytest.raises(sqlite3.DatabaseError, match="append-only"), engine.store.db.write() as conn:
        conn.execute("UPDATE audit SET actor = 'mallory'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"), engine.store.db.write() as conn:
        conn.execute("DELETE FROM audit")
    assert engine.store.audit.trail() == before
    history = approvals.history()
    assert history[0]["seq"] > history[-1]["seq"]  # newest first
    assert {"execution.launched", "approval.requested", "approval.approved"} <= {h["event"] for h in history}


def test_pending_lists_votes_and_unknown_id_is_clear(engine, approvals, bob, carol):
    from console.access.approvals import ApprovalNotFound

    _, approval = run_paused(engine)
    with engine.store.db.write() as conn:
        conn.execute("UPDATE approvals SET required_approvals = 2 WHERE id = ?", (approval["id"],))
    approvals.vote(approval["id"], bob, True, "")
    [pending] = approvals.pending()
    assert [v["actor"] for v in pending["votes"]] == ["bob"]
    with pytest.raises(ApprovalNotFound, match="approval nope not found"):
        approvals.vote("nope", carol, True, "")


def test_request_is_idempotent_per_execution(engine, approvals):
    execution, approval = run_paused(engine)
    plan = engine.get_execution(execution.id).task_run("decide").outputs["plan"]
    again = approvals.request(
        execution.id, plan=plan, decision={}, requested_by="ci", service=approval["service"]
    )
    assert again == approval["id"]
    assert len(engine.store.approvals.list()) == 1


def test_the_expiry_timer_rejects_without_any_page_open(settings, approval_clock):
    runtime = embedded_runtime(
        settings, max_workers=1, expire_every_s=0, expiry_timer_s=0.05, approval_clock=approval_clock
    )
    engine = runtime.engine
    try:
        execution, approval = run_paused(engine)
        approval_clock.advance(minutes=settings.approval_timeout_minutes + 1)
        # the timer expires it, then resumes the run: wait for the run's end, not only the expiry
        done = wait_for_state(engine, execution.id, {s for s in State if s.terminal}, 30)
        assert engine.store.approvals.get(approval["id"])["status"] == "expired"
        assert done.task_run("approval").outputs["approved"] is False
    finally:
        runtime.close()


def test_overlong_comment_is_refused_and_truthy_values_do_not_approve(engine, approvals, bob):
    _, approval = run_paused(engine)
    with pytest.raises(ValueError, match="too long"):
        approvals.vote(approval["id"], bob, False, "x" * 5000)
    # only True approves: a truthy non-bool from a sloppy caller is treated as a reject (needs a comment)
    with pytest.raises(ValueError, match="needs a comment"):
        approvals.vote(approval["id"], bob, "yes", "")
    assert engine.store.approvals.get(approval["id"])["status"] == "pending"
