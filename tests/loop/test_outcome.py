"""Measured outcomes (console/loop/outcome.py) and the verify step: the post-action window against
the pre-deploy baseline, by the same judge; whether a decision held comes from that."""

from __future__ import annotations

import pytest

from console.loop import outcome as O
from console.loop import steps
from console.loop.scenarios import list_scenarios
from console.telemetry.times import format_ts
from tests.loop.conftest import BASELINE_S, DEPLOYED_AT, snapshot_until

POST_START = DEPLOYED_AT + 60  # the post-action window begins a minute after the deploy


def measure(change):
    """Baseline (before the deploy) and a 20-second post-action window shaped by ``change``."""
    before = snapshot_until(DEPLOYED_AT - 1)
    after = snapshot_until(POST_START + 20, lambda t, v: change(v) if change else v)
    window = {
        name: [p for p in points if p[0] >= format_ts(POST_START)]
        for name, points in after["metrics"].items()
    }
    return O.judge_recovery(
        before["deployment"],
        O.split_baseline(before["metrics"], format_ts(DEPLOYED_AT)),
        window,
        window_start=format_ts(POST_START),
        window_end=format_ts(POST_START + 20),
    )


def test_back_to_the_baseline_is_resolved_with_per_metric_evidence():
    measured = measure(None)
    assert measured["status"] == O.RESOLVED
    assert measured["reason"].startswith("no metric is worse than before the deploy (error_rate 0.0%")
    assert measured["source"] == "prometheus" and measured["simulated"] is False
    assert measured["window"] == {"start": format_ts(POST_START), "end": format_ts(POST_START + 20)}
    assert measured["baseline"] == {
        "start": format_ts(DEPLOYED_AT - BASELINE_S),
        "end": format_ts(DEPLOYED_AT),
    }
    assert set(measured["metrics"]) == {
        "error_rate",
        "latency_p95_ms",
        "requests_per_second",
        "cpu_utilization",
        "memory_utilization",
        "pod_restarts",
    }
    assert measured["metrics"]["error_rate"]["classification"] == "Pass"
    assert measured["measured_at"].endswith("Z")


def test_a_recovery_within_the_window_quotes_the_level_at_its_end():
    """Found in the live demo: the rollback took effect a few seconds into a short window, the judge
    said recovered, and the reason quoted the window's median ("55.3% now") beside "resolved"."""
    before = snapshot_until(DEPLOYED_AT - 1)
    after = snapshot_until(
        POST_START + 20, lambda t, v: {**v, "error_rate": 0.55} if DEPLOYED_AT + t < POST_START + 11 else v
    )
    start = format_ts(POST_START)
    window = {n: [p for p in points if p[0] >= start] for n, points in after["metrics"].items()}
    measured = O.judge_recovery(
        before["deployment"],
        O.split_baseline(before["metrics"], format_ts(DEPLOYED_AT)),
        window,
        window_start=format_ts(POST_START),
        window_end=format_ts(POST_START + 20),
    )
    assert measured["metrics"]["error_rate"]["after_median"] > 0.2  # the window's median still fails
    assert measured["status"] == O.RESOLVED
    assert "error_rate 0.0% before the deploy, 0.0% at the end of the window" in measured["reason"]
    assert "55" not in measured["reason"]


def test_errors_still_there_are_not_resolved():
    measured = measure(lambda v: {**v, "error_rate": 0.4})
    assert measured["status"] == O.NOT_RESOLVED
    assert measured["reason"].startswith("still failing after the actions: error_rate 40.0% ≥ 20%")
    assert measured["metrics"]["error_rate"]["classification"] == "High"


def test_slower_than_before_is_not_resolved():
    measured = measure(lambda v: {**v, "latency_p95_ms": v["latency_p95_ms"] + 300})
    assert measured["status"] == O.NOT_RESOLVED
    assert "latency_p95_ms" in measured["reason"]


def test_only_a_resource_metric_still_off_is_inconclusive():
    measured = measure(lambda v: {**v, "cpu_utilization": 0.4})
    assert measured["status"] == O.INCONCLUSIVE
    assert measured["reason"].startswith("user-facing metrics are back, but other metrics still differ: cpu")


def test_too_few_points_is_inconclusive():
    before = snapshot_until(DEPLOYED_AT - 1)
    measured = O.judge_recovery(
        before["deployment"],
        O.split_baseline(before["metrics"], format_ts(DEPLOYED_AT)),
        {"error_rate": [[format_ts(POST_START), 0.0]]},
        window_start=format_ts(POST_START),
        window_end=format_ts(POST_START + 1),
    )
    assert measured["status"] == O.INCONCLUSIVE and "not enough real samples" in measured["reason"]


ROLLBACK_DONE = {"name": "rollback_deployment", "status": "done", "simulated": False}


@pytest.mark.parametrize(
    ("verdict", "executed", "measured", "held"),
    [
        ("ROLLBACK", [ROLLBACK_DONE], "resolved", True),
        ("ROLLBACK", [ROLLBACK_DONE], "not_resolved", False),
        ("ROLLBACK", [], "not_resolved", True),  # rejected, and the problem stayed: the call was right
        ("ROLLBACK", [], "resolved", False),  # rejected, and it went away anyway
        ("ROLLBACK", [{**ROLLBACK_DONE, "status": "failed"}], "not_resolved", True),
        ("ROLLBACK", [{**ROLLBACK_DONE, "dry_run": True}], "resolved", False),  # a dry run changed nothing
        ("CONTINUE", [{"name": "notify_only", "status": "done"}], "resolved", True),
        ("CONTINUE", [], "not_resolved", False),
        ("ESCALATE", [], "not_resolved", True),
        ("ESCALATE", [], "resolved", None),
        ("ESCALATE", [{"name": "failover_database", "status": "done", "simulated": True}], "resolved", True),
        ("ROLLBACK", [ROLLBACK_DONE], "inconclusive", None),
        ("ROLLBACK", [ROLLBACK_DONE], None, None),
    ],
)
def test_held_comes_from_the_measured_outcome(verdict, executed, measured, held):
    assert O.decision_held(verdict, executed, measured) is held


def test_every_scenario_file_has_both_recorded_segments():
    from console.loop.scenarios import load_scenario_document

    for scenario in list_scenarios():
        doc = load_scenario_document(scenario.id)
        for key in ("executed", "not_executed"):
            segment = doc["post_action"][key]
            assert set(segment["metrics"]) == set(doc["metrics"]), (scenario.id, key)
            first = min(points[0][0] for points in segment["metrics"].values())
            last = max(points[-1][0] for points in doc["metrics"].values())
            assert first > last  # the segment follows the verification window


def _scenario_run(settings, scenario_id: str, approve: bool):
    snapshot = steps.collect({"scenario": scenario_id}, settings)["snapshot"]
    assert "post_action" not in snapshot  # what the analysis sees never holds the future
    decision = steps.analyze({"snapshot": snapshot}, settings)["decision"]
    decided = steps.decide({"decision": decision}, settings)
    approval = (
        {"approved": approve, "approver": "bob", "comment": "x"}
        if decided["plan"]["needs_approval"]
        else None
    )
    executed = steps.execute(
        {"plan": decided["plan"], "verdict": decided["verdict"], "approval": approval, "snapshot": snapshot},
        settings,
    )
    measured = steps.verify({"snapshot": snapshot, "executed": executed["executed"]}, settings)["measured"]
    record = steps.record(
        {
            "snapshot": snapshot,
            "decision": decision,
            "plan": decided["plan"],
            "approval": approval,
            "executed": executed["executed"],
            "deployment_status": executed["deployment_status"],
            "measured": measured,
        },
        settings,
    )["outcome"]
    return snapshot, executed, measured, record


@pytest.mark.parametrize("scenario", [s.id for s in list_scenarios()])
@pytest.mark.parametrize("approve", [True, False])
def test_scenario_outcomes_are_measured_on_the_recorded_segment_and_labelled_simulated(
    settings, scenario, approve
):
    snapshot, executed, measured, record = _scenario_run(settings, scenario, approve)
    assert measured["source"] == "recorded scenario segment" and measured["simulated"] is True
    assert measured["reason"].startswith("simulated (")
    # the segment is time-shifted like the snapshot: it starts after the snapshot's newest point
    newest = max(p[0] for points in snapshot["metrics"].values() for p in points)
    assert (
        measured["window"]["start"] > newest
        and measured["baseline"]["end"] == snapshot["deployment"]["deployed_at"]
    )
    assert record["outcome"]["simulated"] is True and executed["simulated"] is True
    assert record["expected"]["verdict"] == snapshot["scenario"]["expected_verdict"]
    # the loop decides every scenario right, and the measurement agrees with that decision
    assert record["expected"]["matches"] is True
    assert record["outcome"]["held"] is (True if measured["status"] != "inconclusive" else None)


def test_a_rollback_measured_on_the_recovery_segment_and_a_rejection_on_the_persisting_one(settings):
    _, executed, measured, record = _scenario_run(settings, "memory-leak", True)
    assert executed["deployment_status"] == "rolled back" and measured["status"] == "resolved"
    assert measured["reason"].startswith("simulated (executed segment)")
    _, executed, measured, record = _scenario_run(settings, "memory-leak", False)
    assert executed["deployment_status"] == "escalated" and measured["status"] == "not_resolved"
    assert measured["reason"].startswith("simulated (not executed segment): still failing")
    assert record["outcome"]["held"] is True  # the rollback was right; a human kept it from running


def test_verify_of_a_live_service_without_a_source_is_inconclusive_not_a_failure(settings):
    deployment = {
        "id": "d",
        "service": "payment-service",
        "version": "v2",
        "deployed_at": format_ts(DEPLOYED_AT),
    }
    done = steps.verify({"deployment": deployment, "verification": {"ended": "window end"}}, settings)
    assert done["done"] is True  # nothing to wait for
    out = done["measured"]
    assert out["status"] == "inconclusive" and "no telemetry source configured" in out["reason"]
    assert out["metrics"] == {} and out["simulated"] is False
    given = steps.verify({"snapshot": {"deployment": deployment}}, settings)["measured"]
    assert given["status"] == "inconclusive" and given["reason"].startswith("a snapshot given as evidence")


def test_the_runs_log_says_whether_the_decision_held_in_words_never_held_none():
    from console.engines.embedded.runner import task_log_line

    record = {
        "outcome": {"deployment_status": "escalated", "measured_status": "inconclusive", "held": None},
        "approval": {"status": "rejected"},
    }
    line = task_log_line("record", {"outcome": record})
    assert line == (
        "outcome recorded: escalated, approval rejected, measured inconclusive; whether the decision held "
        "is not known: the measurement could not tell"
    )
    assert O.outcome_words({"measured_status": "not_resolved", "held": False}) == (
        "measured not resolved; the decision did not hold"
    )
    assert O.outcome_words({"measured_status": "resolved", "held": True}) == (
        "measured resolved; the decision held"
    )
    assert O.outcome_words({}).startswith("not measured; whether the decision held is not known")
