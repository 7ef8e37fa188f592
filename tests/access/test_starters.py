"""The person who started a run is never the only one to decide its risky action (GitHub's "prevent
self-review"): the rule of console/access/approvals.py, at the service level."""

from __future__ import annotations

import pytest

from console.access.approvals import AlreadyDecided, starter_refusal
from console.access.auth import Identity, PermissionDenied, Role
from console.domain.executions import State
from console.loop.steps import load_scenario
from tests.conftest import run_paused

CRITICAL_SCENARIO = "database-outage-before-deploy"  # failover_database: two approvers


def who(name: str) -> Identity:
    return Identity(name, Role.APPROVER, source="password")


def launched(engine, scenario: str, *, deployer: str, requester: str, launcher: str) -> dict:
    """A run of ``scenario`` whose deployment names ``deployer``, requested by ``requester`` and
    launched (label ``launched_by``) by ``launcher``; returns its pending approval."""
    doc = load_scenario(scenario, engine.settings)
    doc.pop("scenario")  # a snapshot given whole: its deployer is the document's
    doc["deployment"]["deployed_by"] = deployer
    execution_id = engine.launch(doc, triggered_by=requester, labels={"launched_by": launcher})
    assert engine.wait(execution_id, timeout=30).state == State.PAUSED
    return engine.store.approvals.for_execution(execution_id)


def test_the_launcher_can_neither_approve_nor_reject_a_one_approver_action(engine, approvals, bob):
    execution, approval = run_paused(engine)  # launched by alice, requested by the scenario's deployer
    people = {p["name"]: p["roles"] for p in approvals.starters(execution.id)}
    assert people == {approval["requested_by"]: ["requester", "deployer"], "alice": ["launcher"]}
    with pytest.raises(PermissionDenied, match="you launched this run: this action needs one approver"):
        approvals.vote(approval["id"], who("Alice "), True, "")
    with pytest.raises(PermissionDenied, match="a rejection decides on its own"):
        approvals.vote(approval["id"], who("alice"), False, "it is fine")
    assert engine.store.approvals.votes(approval["id"]) == []
    assert [r["event"] for r in engine.store.audit.trail(subject=approval["id"])][:2] == [
        "approval.refused",
        "approval.refused",
    ]
    assert approvals.vote(approval["id"], bob, True, "").status == "approved"
    assert engine.wait(execution.id, timeout=30).state == State.SUCCESS


def test_the_deployer_and_a_console_launcher_are_starters_too(engine, approvals, bob):
    approval = launched(engine, "memory-leak", deployer="dave", requester="api", launcher="api")
    with pytest.raises(PermissionDenied, match="you deployed this version"):
        approvals.vote(approval["id"], who("dave"), True, "")
    approvals.record_launch(approval["execution_id"], who("erin"))  # the console launched it for erin
    with pytest.raises(PermissionDenied, match="you launched this run"):
        approvals.vote(approval["id"], who("erin"), True, "")
    assert approvals.vote(approval["id"], bob, True, "").status == "approved"


def test_two_approvers_take_at_most_one_starter(engine, approvals, bob, carol):
    approval = launched(engine, CRITICAL_SCENARIO, deployer="dave", requester="ci", launcher="alice")
    assert approval["required_approvals"] == 2
    assert approvals.vote(approval["id"], who("alice"), True, "").status == "recorded"
    with pytest.raises(PermissionDenied, match="alice, who also started it, already approved"):
        approvals.vote(approval["id"], who("dave"), True, "")
    with pytest.raises(PermissionDenied, match="your own request"):
        approvals.vote(approval["id"], who("ci"), True, "")
    assert approvals.vote(approval["id"], bob, True, "").status == "approved"
    assert engine.store.approvals.get(approval["id"])["decided_by"] == "alice, bob"

    other = launched(engine, CRITICAL_SCENARIO, deployer="dave", requester="ci", launcher="alice")
    assert approvals.vote(other["id"], carol, True, "").status == "recorded"
    assert approvals.vote(other["id"], who("dave"), True, "").status == "approved"  # one starter is fine
    with pytest.raises(AlreadyDecided):
        approvals.vote(other["id"], bob, True, "")


def test_the_rule_as_a_pure_function():
    starters = [
        {"name": "ci", "roles": ["requester"]},
        {"name": "dave", "roles": ["deployer", "launcher"]},
        {"name": "alice", "roles": ["launcher"]},
    ]
    assert starter_refusal("bob", True, starters, [], 1) is None
    assert starter_refusal("CI", True, starters, [], 2) == "you cannot approve your own request"
    assert "deployed this version and launched this run" in starter_refusal("dave", True, starters, [], 1)
    assert starter_refusal("dave", True, starters, [], 2) is None
    assert starter_refusal("dave", True, starters, [{"actor": "bob", "approved": True}], 2) is None
    assert "alice, who also started it" in starter_refusal(
        "dave", True, starters, [{"actor": "alice", "approved": True}], 2
    )
    assert "rejection" in starter_refusal("alice", False, starters, [], 2)


def test_the_page_can_say_why_before_the_click(engine, approvals, bob):
    _, approval = run_paused(engine)
    approval = approvals.get(approval["id"])
    assert "launched this run" in approvals.vote_refusal(approval, who("alice"), True)
    assert approvals.vote_refusal(approval, bob, True) is None
    assert approvals.vote_refusal(approval, None, True) is None
