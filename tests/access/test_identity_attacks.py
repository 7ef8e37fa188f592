"""The identity attacks on the approval path (issue 12), replayed through the command line as a
user types it and through the approval service directly: a name spelled differently ("bob ",
"ＢＯＢ") is still the same person, and ``system:`` names belong to the console alone."""

from __future__ import annotations

import subprocess

import pytest

from console.access.approvals import AlreadyDecided, ApprovalService
from console.access.auth import Identity, InvalidIdentity, PermissionDenied, Role
from console.domain.executions import State
from console.engines.embedded.runner import EmbeddedEngine
from console.loop.steps import load_scenario
from console.settings import load_settings
from tests.conftest import ROLLBACK_SCENARIO

CRITICAL_SCENARIO = "database-outage-before-deploy"  # fails over the database: two approvers


def seed(env: dict[str, str], *, requested_by: str, scenario: str = ROLLBACK_SCENARIO) -> dict:
    """A PAUSED run whose approval is requested by ``requested_by`` (as a deployer announcing it
    would: the snapshot launched with that name); returns the approval row."""
    settings = load_settings(env=env)
    engine = EmbeddedEngine(settings, recover=False)
    try:
        execution_id = engine.launch(load_scenario(scenario, settings), triggered_by=requested_by)
        assert engine.wait(execution_id, timeout=60).state == State.PAUSED
        approval = engine.store.approvals.for_execution(execution_id)
    finally:
        engine.close()
    assert approval is not None
    return approval


def approval_row(env: dict[str, str], approval_id: str) -> tuple[dict, list[dict], list[dict]]:
    engine = EmbeddedEngine(load_settings(env=env), recover=False)
    try:
        store = engine.store
        return (
            store.approvals.get(approval_id),
            store.approvals.votes(approval_id),
            store.audit.trail(subject=approval_id),
        )
    finally:
        engine.close()


def bob_request(engine: EmbeddedEngine, approvals: ApprovalService, requested_by: str = "bob") -> dict:
    """A PAUSED run whose approval ``requested_by`` asked for (launched with that name)."""
    execution_id = engine.launch(load_scenario(ROLLBACK_SCENARIO, engine.settings), triggered_by=requested_by)
    assert engine.wait(execution_id, timeout=60).state == State.PAUSED
    return approvals.for_execution(execution_id)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


@pytest.mark.slow
def test_cli_trailing_space_does_not_make_bob_someone_else(cli):
    approval = seed(cli.env, requested_by="bob")
    line = one_line_error(cli("approve", approval["id"], "--as", "bob "))
    assert "cannot approve your own request" in line
    row, votes, _ = approval_row(cli.env, approval["id"])
    assert row["status"] == "pending" and votes == []


@pytest.mark.slow
def test_cli_one_person_cannot_cast_both_votes_of_a_two_approver_action(cli):
    approval = seed(cli.env, requested_by="ci-bot", scenario=CRITICAL_SCENARIO)
    assert approval["required_approvals"] == 2
    first = cli("approve", approval["id"], "--as", "alice")
    assert first.returncode == 0, first.stderr
    assert "1 more approver(s) needed" in first.stderr
    for alias in ("alice ", "ALICE", "ａｌｉｃｅ"):
        line = one_line_error(cli("approve", approval["id"], "--as", alias))
        assert "already voted" in line, alias
    row, votes, _ = approval_row(cli.env, approval["id"])
    assert row["status"] == "pending"
    assert [v["actor"] for v in votes] == ["alice"]


@pytest.mark.slow
def test_cli_cannot_act_as_the_system(cli):
    approval = seed(cli.env, requested_by="ci-bot")
    line = one_line_error(cli("approve", approval["id"], "--as", "system:timeout"))
    assert "reserved for the console itself" in line
    row, votes, trail = approval_row(cli.env, approval["id"])
    assert row["status"] == "pending" and votes == []
    [refusal] = [r for r in trail if r["event"] == "approval.refused"]
    # the audit trail never names the system as the one who tried
    assert refusal["actor"] == "(invalid name)"
    assert refusal["detail"]["claimed_name"] == "system:timeout"
    # nor can a run be launched as the system
    launched = cli("run", ROLLBACK_SCENARIO, "--as", "System:timeout")
    assert "reserved" in one_line_error(launched)


@pytest.mark.parametrize("alias", ["bob ", " Bob", "BOB", "ＢＯＢ", "bob\u00a0", "bob\n"])
def test_service_self_review_holds_for_every_spelling(engine, approvals, alias):
    approval = bob_request(engine, approvals)
    with pytest.raises(PermissionDenied, match="your own request"):
        approvals.vote(approval["id"], Identity(alias, Role.ADMIN, source="cli"), True, "")
    assert engine.store.approvals.votes(approval["id"]) == []


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("system:timeout", "reserved"),
        ("SYSTEM:expiry", "reserved"),
        ("b\u200bob", "invisible"),
        ("bo\x1bb", "control"),
        ("", "empty"),
        ("x" * 65, "at most"),
    ],
)
def test_service_refuses_invalid_names_whoever_built_the_identity(engine, approvals, name, why):
    approval = bob_request(engine, approvals)
    with pytest.raises(InvalidIdentity, match=why):
        approvals.vote(approval["id"], Identity(name, Role.ADMIN, source="api"), True, "")
    assert engine.store.approvals.get(approval["id"])["status"] == "pending"
    assert engine.store.approvals.votes(approval["id"]) == []


def test_service_counts_one_vote_per_person_however_spelled(engine, approvals):
    execution = engine.run_sync(scenario=CRITICAL_SCENARIO, triggered_by="seed", timeout=60)
    approval = approvals.for_execution(execution.id)
    assert approval["required_approvals"] == 2
    first = approvals.vote(approval["id"], Identity("Émile", Role.APPROVER, source="cli"), True, "")
    assert first.status == "recorded"
    for alias in ("émile", "E\u0301MILE ", "ÉMILE"):
        with pytest.raises(AlreadyDecided, match="already voted"):
            approvals.vote(approval["id"], Identity(alias, Role.APPROVER, source="cli"), True, "")
    assert engine.store.approvals.get(approval["id"])["status"] == "pending"
    # the vote is stored under the canonical name
    assert [v["actor"] for v in engine.store.approvals.votes(approval["id"])] == ["Émile"]


def test_requested_by_is_stored_in_canonical_form(engine, approvals):
    approval = bob_request(engine, approvals, requested_by="  Bob\u200b \u00a0")
    assert approval["requested_by"] == "Bob"
    with pytest.raises(PermissionDenied, match="your own request"):
        approvals.vote(approval["id"], Identity("bob", Role.APPROVER, source="cli"), True, "")
    requested = [
        r for r in engine.store.audit.trail(subject=approval["id"]) if r["event"] == "approval.requested"
    ]
    assert [r["actor"] for r in requested] == ["Bob"]


def test_request_through_the_service_normalises_the_requester(engine, approvals: ApprovalService):
    execution = engine.run_sync(scenario=ROLLBACK_SCENARIO, triggered_by="seed", timeout=60)
    plan = engine.get_execution(execution.id).task_run("decide").outputs["plan"]
    with engine.store.db.write() as conn:  # a request the service itself creates (Kestra's path)
        engine.store.approvals.cancel_pending_in(conn, execution.id, "2026-01-01T00:00:00Z")
    approval_id = approvals.request(
        execution.id, plan=plan, decision={}, requested_by=" ＣＡＲＯＬ ", service="payment-service"
    )
    row = approvals.get(approval_id)
    assert row["requested_by"] == "CAROL"
    with pytest.raises(PermissionDenied, match="your own request"):
        approvals.vote(approval_id, Identity("carol", Role.ADMIN, source="cli"), True, "")
