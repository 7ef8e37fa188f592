"""The approval service on a watched live deployment (the stand-in deployer, the embedded engine):
an approver may pick another known-good target (checked on the server, audited) but never a
known-bad one; with no known-good version the plan escalates (and, where the plan could not know,
approving is refused); operator marks are role-checked, need a reason and are audited."""

from __future__ import annotations

from dataclasses import replace as with_fields
from pathlib import Path

import pytest

from console.access.approvals import NoRollbackTarget
from console.access.auth import Identity, PermissionDenied, Role
from console.access.revisions import mark_revision
from console.loop import revisions, steps
from console.loop.revisions import TargetRefused
from console.runtime import embedded_runtime
from console.settings import Secret, Settings
from tests.api.conftest import make_client, services_of  # noqa: F401  (make_client: a fixture)
from tests.executors.servers import run_deployer
from tests.parity.test_safety_parity import (
    BOB,
    TOKEN,
    announced,
    finished,
    paused_approval,
    seed_history,
    services_yaml,
    watched_collect,
)

pytestmark = pytest.mark.safety
CAROL = Identity("carol", Role.APPROVER, source="password")
VIC = Identity("vic", Role.VIEWER, source="password")


@pytest.fixture
def lane(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DEMO_DEPLOYER_TOKEN", TOKEN)
    monkeypatch.setattr(steps, "collect", watched_collect)
    with run_deployer(TOKEN, version="v1.0.0", previous_version=None) as deployer:
        record = deployer.deploy("v1.2.0-leak")
        settings = Settings(
            data_dir=tmp_path / "data", services_file=services_yaml(tmp_path / "s.yaml", deployer.url)
        )
        runtime = embedded_runtime(settings, expiry_timer_s=None)
        try:
            yield runtime, deployer, record
        finally:
            runtime.close()


def parts_of(runtime) -> dict:
    return {
        "state": lambda i: runtime.engine.get_execution(i).state,
        "approvals": runtime.approvals,
        "store": runtime.store,
        "sync": lambda: None,
    }


def launch(runtime, record) -> str:
    return runtime.engine.launch_deployment(announced(record), triggered_by="alice", source="deployer")


def test_an_approver_may_pick_another_known_good_target_never_a_known_bad_one(lane):
    runtime, deployer, record = lane
    seed_history(runtime.store)
    with runtime.store.db.write() as conn:
        runtime.store.revisions.add_in(
            conn,
            [revisions.event("demo-service", "v1.1.0", revisions.VERIFIED_HEALTHY, "2026-11-29T10:09:00Z",
                             "measured", source="loop", execution_id="old-3")],
        )  # fmt: skip
    execution_id = launch(runtime, record)
    approval = paused_approval(parts_of(runtime), execution_id)
    choice = runtime.approvals.rollback_choice(approval)
    assert choice.version == "v1.1.0" and "v1.0.0" in choice.alternatives
    with pytest.raises(TargetRefused, match="cannot be the rollback target: it is known-bad"):
        runtime.approvals.vote(approval["id"], BOB, True, "", rollback_to="v1.5.0-crashloop")
    assert runtime.approvals.get(approval["id"])["status"] == "pending"  # refused: nothing decided
    refused = [a for a in runtime.store.audit.trail(limit=50) if a["event"] == "approval.refused"]
    assert "known-bad" in refused[0]["detail"]["reason"]
    runtime.approvals.vote(approval["id"], BOB, True, "v1.0.0 ran for a year", rollback_to="v1.0.0")
    row = finished(parts_of(runtime), execution_id)
    assert [p["to"] for p in deployer.posts("/rollback")] == ["v1.0.0"]
    assert row["status"] == "rolled back" and row["running_version"] == "v1.0.0"
    [chosen] = [a for a in runtime.store.audit.trail(limit=50) if a["event"] == "approval.rollback_target"]
    assert chosen["actor"] == "bob" and chosen["detail"]["chosen_by"] == "bob"


def test_with_no_known_good_version_the_plan_escalates_and_nothing_is_rolled_back(lane):
    runtime, deployer, record = lane
    execution_id = launch(runtime, record)
    row = finished(parts_of(runtime), execution_id)
    assert row["status"] == "escalated" and deployer.posts("/rollback") == []
    plan = runtime.engine.get_execution(execution_id).task_run("decide").outputs["plan"]
    assert plan["needs_approval"] is False
    assert plan["notes"][-1].startswith(
        "no rollback: no known-good version of demo-service other than v1.2.0-leak"
    )


def test_approving_a_rollback_with_no_known_good_version_is_refused(lane, monkeypatch):
    """Where the plan could not read the history (Kestra's tasks), the approval refuses instead."""
    runtime, deployer, record = lane
    seed_history(runtime.store)
    execution_id = launch(runtime, record)
    approval = paused_approval(parts_of(runtime), execution_id)
    with runtime.store.db.write() as conn:
        conn.execute("DELETE FROM revision_events")
    with pytest.raises(NoRollbackTarget, match="nothing safe to roll back to; reject it"):
        runtime.approvals.vote(approval["id"], BOB, True, "")
    assert runtime.approvals.get(approval["id"])["status"] == "pending"
    runtime.approvals.vote(approval["id"], BOB, False, "nothing to roll back to")
    assert finished(parts_of(runtime), execution_id)["status"] == "escalated"
    assert deployer.posts("/rollback") == []


def test_marks_are_for_approvers_need_a_reason_and_are_audited(lane):
    runtime, _, record = lane
    execution_id = launch(runtime, record)  # no known-good version: the run escalates
    finished(parts_of(runtime), execution_id)
    with pytest.raises(PermissionDenied):
        mark_revision(runtime.approvals, VIC, "demo-service", "v1.2.0-leak", True, "looks fine")
    with pytest.raises(ValueError, match="a mark needs a reason"):
        mark_revision(runtime.approvals, CAROL, "demo-service", "v1.2.0-leak", True, "  ")
    with pytest.raises(ValueError, match="was never seen running"):
        mark_revision(runtime.approvals, CAROL, "demo-service", "v9.9.9", True, "trust me")
    assert runtime.store.revisions.services() == ["demo-service"]
    marked = mark_revision(
        runtime.approvals, CAROL, "demo-service", "v1.2.0-leak", False, "leaks, seen in prod"
    )
    assert marked.status == revisions.KNOWN_BAD and marked.reason.startswith("marked known-bad by carol")
    trail = [
        (a["actor"], a["event"])
        for a in runtime.store.audit.trail(limit=50)
        if a["event"].startswith("revision.")
    ]
    assert trail.count(("carol", "revision.marked_bad")) == 1
    assert ("vic", "revision.mark_refused") in trail and trail.count(("carol", "revision.mark_refused")) == 2


def test_the_api_takes_the_approvers_rollback_target_and_refuses_a_known_bad_one(lane, make_client):  # noqa: F811
    runtime, deployer, record = lane
    seed_history(runtime.store)
    execution_id = launch(runtime, record)
    approval = paused_approval(parts_of(runtime), execution_id)
    settings = with_fields(runtime.settings, api_token=Secret("t" * 32), api_role="approver")
    client = make_client(services_of(runtime, settings))
    url, auth = f"/api/approvals/{approval['id']}/decision", {"Authorization": f"Bearer {'t' * 32}"}
    bad = client.post(url, json={"decision": "approve", "rollback_to": "v1.5.0-crashloop"}, headers=auth)
    assert bad.status_code == 400 and bad.json()["error"].startswith("rollback_to: ")
    assert "known-bad" in bad.json()["error"]
    rejecting = {"decision": "reject", "comment": "no", "rollback_to": "v1.0.0"}
    odd = client.post(url, json=rejecting, headers=auth)
    assert odd.status_code == 400 and odd.json()["error"].startswith("rollback_to: only an approval")
    assert runtime.approvals.get(approval["id"])["status"] == "pending"  # nothing decided
    ok = client.post(url, json={"decision": "approve", "rollback_to": "v1.0.0"}, headers=auth)
    assert ok.status_code == 200, ok.text
    finished(parts_of(runtime), execution_id)
    assert [p["to"] for p in deployer.posts("/rollback")] == ["v1.0.0"]
