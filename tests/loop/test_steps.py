"""The steps' own logic on plain inputs: what execute runs, what record keeps, how collect moves a
scenario in time. (Live looks: test_live_steps.py; acting on the world: test_safety_steps.py.)"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from console.loop import step_io, steps


def test_execute_runs_auto_actions_and_only_approved_risky_ones():
    plan = {
        "auto": [{"name": "collect_diagnostics", "risk": "LOW", "reason": "", "params": {}}],
        "approval": [{"name": "rollback_deployment", "risk": "HIGH", "reason": "", "params": {}}],
        "needs_approval": True,
    }
    rejected = steps.execute({"plan": plan, "approval": {"approved": False}, "verdict": "ROLLBACK"}, None)
    assert [a["name"] for a in rejected["executed"]] == ["collect_diagnostics"]
    assert rejected["skipped"][0]["skipped"] == "rejected"
    assert rejected["deployment_status"] == "escalated"
    expired = steps.execute(
        {"plan": plan, "approval": {"approved": False, "approver": "system:timeout"}, "verdict": "ROLLBACK"},
        None,
    )
    assert expired["skipped"][0]["skipped"] == "expired"
    approved = steps.execute({"plan": plan, "approval": {"approved": True}, "verdict": "ROLLBACK"}, None)
    assert [a["label"] for a in approved["executed"]] == [
        "diagnostics collected (simulated)",
        "rolled back (simulated)",
    ]
    assert all(a["status"] == "done" and a["simulated"] for a in approved["executed"])
    assert approved["deployment_status"] == "rolled back" and approved["simulated"] is True
    unknown = steps.execute({"plan": {"auto": [{"name": "rm -rf", "risk": "LOW"}]}, "approval": None}, None)
    assert unknown["executed"][0]["status"] == "refused"
    with pytest.raises(step_io.StepError, match="needs 'plan'"):
        steps.execute({}, None)


def test_record_takes_held_from_the_measured_outcome_and_keeps_the_expected_verdict_apart():
    snapshot = {"deployment": {"id": "d"}, "scenario": {"id": "s", "expected_verdict": "ROLLBACK"}}
    plan = {"auto": [], "approval": [{"name": "rollback_deployment"}], "needs_approval": True}
    rollback = {"name": "rollback_deployment", "status": "done", "simulated": True, "mode": "approved"}
    base = {"snapshot": snapshot, "plan": plan, "decision": {"verdict": "ROLLBACK"}}
    resolved = {"status": "resolved", "simulated": True, "source": "recorded scenario segment"}
    unresolved = {**resolved, "status": "not_resolved"}

    def held(executed, measured, approval):
        out = steps.record({**base, "executed": executed, "measured": measured, "approval": approval}, None)
        return out["outcome"]

    done = held([rollback], resolved, {"approved": True, "approver": "a, b"})
    assert done["outcome"] == {
        "deployment_status": "rolled back",
        "measured_status": "resolved",
        "held": True,
        "simulated": True,
        "category": "unknown",  # a decision without evidence names no root cause
    }
    assert done["expected"] == {"verdict": "ROLLBACK", "matches": True}
    assert done["measured"] == resolved and done["approval"]["approvers"] == ["a", "b"]
    # the rollback ran and the service did not recover: it did not hold, whatever the scenario says
    assert held([rollback], unresolved, {"approved": True})["outcome"]["held"] is False
    # rejected and the problem persisted: the call was right; rejected and it went away: it was not
    assert held([], unresolved, {"approved": False})["outcome"]["held"] is True
    assert held([], resolved, {"approved": False})["outcome"]["held"] is False
    assert held([], {"status": "inconclusive"}, {"approved": False})["outcome"]["held"] is None
    assert held([], None, {"approved": False})["outcome"]["held"] is None
    live = steps.record(
        {
            **base,
            "snapshot": {"deployment": {"id": "d"}},
            "decision": {"verdict": "CONTINUE"},
            "plan": {"auto": [{"name": "notify_only"}], "approval": []},
            "approval": None,
            "executed": [{"name": "notify_only", "status": "done", "simulated": False}],
            "measured": {"status": "resolved", "simulated": False},
        },
        None,
    )["outcome"]
    assert live["approval"]["status"] == "auto" and live["expected"] is None
    assert live["outcome"]["held"] is True and live["outcome"]["simulated"] is False


def test_collect_shifts_a_scenario_so_its_newest_point_is_now(settings):
    now = datetime(2030, 5, 1, 12, 0, tzinfo=UTC)
    doc = steps.collect({"scenario": "healthy-hotfix"}, settings, now=now)["snapshot"]
    assert steps.latest_time(doc) == now
    original = steps.load_scenario("healthy-hotfix", settings)
    window = steps.latest_time(original) - datetime.fromisoformat(
        original["deployment"]["deployed_at"].replace("Z", "+00:00")
    )
    assert doc["deployment"]["deployed_at"] == (now - window).isoformat().replace("+00:00", "Z")
    assert doc["scenario"]["id"] == "healthy-hotfix"
    with pytest.raises(step_io.StepError, match="unknown scenario"):
        steps.collect({"scenario": "../etc/passwd"}, settings)
    with pytest.raises(step_io.StepError, match="'deployment', 'service' or 'incident'"):
        steps.collect({}, settings)


def test_only_an_explicit_yes_approves():
    plan = {"auto": [], "approval": [{"name": "rollback_deployment", "risk": "HIGH"}], "needs_approval": True}
    for value, runs in [
        (True, True),
        ("true", True),
        ("TRUE", True),
        (False, False),
        ("false", False),
        (None, False),
        (1, False),
        ("yes please", False),
    ]:
        out = steps.execute({"plan": plan, "approval": {"approved": value}, "verdict": "ROLLBACK"}, None)
        assert (out["deployment_status"] == "rolled back") is runs, value
        record = steps.record(
            {
                "snapshot": {"deployment": {}},
                "decision": {"verdict": "ROLLBACK"},
                "plan": plan,
                "approval": {"approved": value},
                "executed": out["executed"],
            },
            None,
        )["outcome"]
        assert record["approval"]["status"] == ("approved" if runs else "rejected")
