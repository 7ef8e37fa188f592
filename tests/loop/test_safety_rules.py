"""The rules of acting on the world as it is now, as pure functions: what the revision history knows
of each version and the rollback target it gives, the precondition that supersedes a decision,
what the card's now strip and the postmortem's impact say, which metrics verify judges and the
health gate, and the deployment status that follows reconciled results."""

from __future__ import annotations

import pytest

from console.executors import ServiceState
from console.loop import acting, revisions, steps
from console.loop.impact import impact
from console.loop.outcome import decisive_metrics, gate_on_health
from console.presentation.approval_card import DecisiveMetric
from console.presentation.now_strip import now_strip
from console.telemetry.times import format_ts
from tests.loop.conftest import DEPLOYED_AT, snapshot_until

pytestmark = pytest.mark.safety
SERVICE = "demo-service"


def ev(version: str, kind: str, at: str, **kw) -> dict:
    return revisions.event(SERVICE, version, kind, at, kw.pop("reason", kind), source="loop", **kw)


HISTORY = [
    ev("v1.0.0", revisions.SEEN, "2026-11-29T10:00:00Z", execution_id="e0"),
    ev("v1.0.0", revisions.BASELINE_HEALTHY, "2026-11-29T10:01:00Z", execution_id="e1",
       window=("2026-11-29T10:00:30Z", "2026-11-29T10:01:00Z")),
    ev("v1.5.0-crashloop", revisions.SEEN, "2026-11-29T10:01:00Z", execution_id="e1"),
    ev("v1.5.0-crashloop", revisions.CRASH_LOOPING, "2026-11-29T10:01:20Z", execution_id="e1"),
    ev("v1.5.0-crashloop", revisions.JUDGED_FAULTY, "2026-11-29T10:01:30Z", execution_id="e1",
       reason="ROLLBACK; the rollback rejected"),
    ev("v1.3.0-slow", revisions.SEEN, "2026-11-29T10:05:00Z", execution_id="e2"),
]  # fmt: skip


def test_a_version_is_known_good_known_bad_or_unknown_by_its_newest_strong_evidence() -> None:
    by_version = {r.version: r for r in revisions.revisions(HISTORY)}
    assert revisions.revisions(HISTORY)[0].version == "v1.3.0-slow"  # most recently seen first
    assert by_version["v1.0.0"].status == revisions.KNOWN_GOOD
    assert by_version["v1.0.0"].reason.startswith(
        "healthy through the baseline before a deploy, 10:01 for 30 s"
    )
    assert by_version["v1.5.0-crashloop"].status == revisions.KNOWN_BAD
    assert by_version["v1.3.0-slow"].status == revisions.UNKNOWN
    # a quiet baseline never clears a version the loop found faulty; a verification or a mark does
    later = [
        *HISTORY,
        ev("v1.5.0-crashloop", revisions.BASELINE_HEALTHY, "2026-11-29T11:00:00Z", execution_id="e3"),
    ]
    assert {r.version: r for r in revisions.revisions(later)}[
        "v1.5.0-crashloop"
    ].status == revisions.KNOWN_BAD
    mark = revisions.event(SERVICE, "v1.5.0-crashloop", revisions.MARKED_GOOD, "2026-11-29T12:00:00Z",
                           "fixed by a config change", source="operator", actor="carol")  # fmt: skip
    marked = {r.version: r for r in revisions.revisions([*later, mark])}["v1.5.0-crashloop"]
    assert marked.status == revisions.KNOWN_GOOD and marked.marked_by == "carol"
    assert marked.reason == "marked known-good by carol at 12:00: fixed by a config change"


def test_the_rollback_target_is_the_newest_known_good_never_a_known_bad_hint() -> None:
    history = revisions.revisions(HISTORY)
    target = revisions.rollback_target(history, "v1.3.0-slow", hint="v1.5.0-crashloop")
    assert target.version == "v1.0.0"
    assert target.text.startswith("v1.0.0: healthy through the baseline before a deploy")
    assert target.notes == (
        "the announced previous version v1.5.0-crashloop is known-bad (judged faulty at 10:01 "
        "(ROLLBACK; the rollback rejected)): not a target",
    )
    newer = [
        *HISTORY,
        ev("v1.1.0-fast", revisions.VERIFIED_HEALTHY, "2026-11-29T10:03:00Z", execution_id="e5"),
    ]
    assert revisions.rollback_target(revisions.revisions(newer), "v1.3.0-slow").version == "v1.1.0-fast"
    assert revisions.rollback_target(history, "v1.3.0-slow", hint="v9").notes == (
        "the announced previous version v9 is not in the revision history: not a target",
    )


def test_an_approver_may_pick_another_known_good_version_only() -> None:
    newer = revisions.revisions(
        [*HISTORY, ev("v1.1.0-fast", revisions.VERIFIED_HEALTHY, "2026-11-29T10:03:00Z", execution_id="e5")]
    )
    picked = revisions.rollback_target(newer, "v1.3.0-slow", chosen="v1.0.0", chosen_by="bob")
    assert picked.version == "v1.0.0" and picked.chosen_by == "bob" and "v1.1.0-fast" in picked.alternatives
    with pytest.raises(
        revisions.TargetRefused, match=r"v1\.5\.0-crashloop cannot be the rollback target: it is known-bad"
    ):
        revisions.rollback_target(newer, "v1.3.0-slow", chosen="v1.5.0-crashloop")
    with pytest.raises(revisions.TargetRefused, match="it is the version under judgement"):
        revisions.rollback_target(newer, "v1.3.0-slow", chosen="v1.3.0-slow")


def test_no_known_good_version_means_no_target_and_the_plan_escalates(
    settings, tmp_path, monkeypatch
) -> None:
    only_bad = [e for e in HISTORY if e["version"] != "v1.0.0"]
    target = revisions.rollback_target(revisions.revisions(only_bad), "v1.3.0-slow")
    assert target.version is None
    assert target.reason == (
        "no known-good version of demo-service other than v1.3.0-slow: nothing safe to roll back to"
    )
    plan = {
        "auto": [{"name": "collect_diagnostics", "risk": "LOW", "params": {}}],
        "approval": [
            {"name": "rollback_deployment", "risk": "HIGH", "params": {"to_version": "v1.5.0-crashloop"}}
        ],
        "required_approvals": 1,
        "needs_approval": True,
        "notes": [],
    }
    deployment = {"service": SERVICE, "version": "v1.3.0-slow", "previous_version": "v1.5.0-crashloop"}
    out = steps.plan_rollback_target(plan, revisions.revisions(only_bad), deployment)
    assert out["approval"] == [] and out["needs_approval"] is False and out["required_approvals"] == 0
    assert out["escalated"][0]["skipped"] == "no known-good version"
    assert out["notes"][-1].startswith("no rollback: no known-good version of demo-service")
    planned = steps.plan_rollback_target(plan, revisions.revisions(HISTORY), deployment)
    [rollback] = planned["approval"]
    assert rollback["params"]["to_version"] == "v1.0.0" and rollback["target"]["version"] == "v1.0.0"
    executed = steps.execute(
        {"plan": out, "approval": None, "verdict": "ROLLBACK", "deployment": deployment}, settings
    )
    assert executed["deployment_status"] == "escalated"
    assert executed["skipped"][0]["name"] == "rollback_deployment"


def test_a_decision_is_superseded_when_another_version_runs_or_the_version_was_switched_in_again() -> None:
    deployment = {
        "id": "dep-7",
        "service": SERVICE,
        "version": "v1.2.0-leak",
        "deployed_at": "2026-11-29T10:20:00Z",
    }
    moved = ServiceState("v1.1.0-fast", ready=True, deployment_id="dep-8", switched_at="2026-11-29T10:22:40Z")
    assert acting.superseded_by(deployment, moved) == (
        "v1.1.0-fast is running now since 10:22:40 UTC: this decision was about v1.2.0-leak"
    )
    again = ServiceState("v1.2.0-leak", deployment_id="dep-9", switched_at="2026-11-29T10:25:00Z")
    assert acting.superseded_by(deployment, again).startswith(
        "v1.2.0-leak was switched in again since 10:25:00 UTC (dep-9): another deploy or run has acted"
    )
    same = ServiceState("v1.2.0-leak", deployment_id="dep-7", switched_at="2026-11-29T10:20:00Z")
    assert acting.superseded_by(deployment, same) is None
    # an alert that named no version: the version the target said ran when the loop looked
    alert = {
        "id": "incident-1",
        "service": SERVICE,
        "version": "unknown",
        "deployed_at": "2026-11-29T10:20:00Z",
    }
    verification = {"target_state": {"version": "v1.2.0-leak"}}
    assert acting.decided_version(alert, verification) == "v1.2.0-leak"


def test_the_untrusted_to_version_of_a_plan_is_dropped_for_a_real_target() -> None:
    action = {"name": "rollback_deployment", "params": {"to_version": "v1.5.0-crashloop", "service": SERVICE}}
    params, target, refusal = acting.rollback_params(action, {"approved": True}, live=True)
    assert "to_version" not in params and target is None
    assert refusal == "no verified rollback target: the target was not checked against the revision history"
    confirmed = {"approved": True, "rollback_target": {"version": "v1.0.0", "reason": "healthy"}}
    params, target, refusal = acting.rollback_params(action, confirmed, live=True)
    assert params["to_version"] == "v1.0.0" and target == {"version": "v1.0.0", "reason": "healthy"}
    assert refusal is None
    params, target, _ = acting.rollback_params(action, None, live=False)  # a scenario: simulated, recorded
    assert params["to_version"] == "v1.5.0-crashloop" and target is None


@pytest.mark.parametrize(
    ("executed", "approval", "status"),
    [
        (
            [{"name": "rollback_deployment", "status": "done", "executor": "webhook"}],
            {"approved": True},
            "rolled back",
        ),
        ([{"name": "rollback_deployment", "status": "unknown"}], {"approved": True}, "result unknown"),
        ([{"name": "rollback_deployment", "status": "failed"}], {"approved": True}, "rollback failed"),
        (
            [
                {
                    "name": "rollback_deployment",
                    "status": "refused",
                    "evidence": {"superseded": {"reason": "moved"}},
                }
            ],
            {"approved": True},
            "superseded",
        ),
        ([], {"approved": False, "approver": "system:superseded", "comment": "moved"}, "superseded"),
        ([], {"approved": False, "approver": "bob", "comment": "no"}, "escalated"),
    ],
)
def test_the_deployment_status_follows_the_results(executed, approval, status) -> None:
    """A rollback done through a webhook whose state showed it is "rolled back" (never "escalated");
    a result not known yet is never "rolled back" nor "rollback failed"."""
    assert steps.deployment_status("ROLLBACK", executed, approval).value == status


def test_after_verify_the_status_follows_the_reconciled_result() -> None:
    settled = [{"name": "rollback_deployment", "status": "done"}]
    assert steps.status_after_verify(settled, "result unknown") == "rolled back"
    assert (
        steps.status_after_verify([{"name": "rollback_deployment", "status": "unknown"}], None)
        == "result unknown"
    )
    assert (
        steps.status_after_verify([{"name": "restart_pod", "status": "done"}], "remediated") == "remediated"
    )


def test_verify_judges_what_the_decision_was_about() -> None:
    leak = {
        "metrics": {
            "memory_utilization": {
                "name": "memory_utilization",
                "classification": "High",
                "guard": "memory ≥ 90%",
            },
            "error_rate": {"name": "error_rate", "classification": "Pass"},
            "latency_p95_ms": {"name": "latency_p95_ms", "classification": "Pass"},
        },
        "guards": ["memory_utilization 93% ≥ 90%"],
    }
    assert decisive_metrics(leak) == ["memory_utilization"]
    crash = {"metrics": {}, "guards": ["pod_restarts 8 since the deploy ≥ 3"]}
    assert decisive_metrics(crash) == ["pod_restarts"]
    assert (
        decisive_metrics({"metrics": {"error_rate": {"name": "error_rate", "classification": "Pass"}}}) == []
    )


def test_a_not_ready_or_crash_looping_instance_is_never_resolved() -> None:
    resolved = {"status": "resolved", "reason": "user-facing metrics are back"}
    crash = ServiceState("v1.5.0-crashloop", ready=False, restarts=8).to_dict()
    gated = gate_on_health(resolved, crash)
    assert gated["status"] == "not_resolved"
    assert gated["reason"] == (
        "the instance is unhealthy at the window's end (v1.5.0-crashloop · not ready · 8 crash restarts); "
        "user-facing metrics are back"
    )
    assert gated["health"]["restarts"] == 8
    healthy = ServiceState("v1.0.0", ready=True, restarts=0).to_dict()
    assert gate_on_health(resolved, healthy)["status"] == "resolved"


def test_the_baseline_is_healthy_only_when_full_and_quiet() -> None:
    quiet = snapshot_until(DEPLOYED_AT + 5)
    health = revisions.baseline_health(quiet, 15)
    assert health["healthy"] is True and health["reason"].startswith("a full baseline of 14 s")

    def errors_before(doc):
        for point in doc["metrics"]["error_rate"]:
            point[1] = 0.3
        return doc

    assert revisions.baseline_health(errors_before(snapshot_until(DEPLOYED_AT + 5)), 15)["reason"] == (
        "error rate reached 30.0%"
    )
    assert revisions.baseline_health(quiet, 60)["healthy"] is False  # 14 s of a 60 s window


def test_a_full_baseline_of_real_samples_is_full_though_its_edges_fall_inside_the_window() -> None:
    """Real samples at a 1 s scrape: the first lands up to a second after the window opens, the last
    up to a second before the deploy, so 8 s of baseline span 6 s of samples, and that is full."""
    deployed = 1_800_000_000.0

    def snapshot(first: float, last: float) -> dict:
        times = [deployed - s for s in range(int(last), int(first) + 1)][::-1]
        points = [[format_ts(t), 0.0] for t in times]
        return {"deployment": {"deployed_at": format_ts(deployed)}, "metrics": {"error_rate": points}}

    assert revisions.baseline_health(snapshot(7, 1), 8.0)["healthy"] is True
    half = revisions.baseline_health(snapshot(4, 1), 8.0)
    assert half["healthy"] is False and half["reason"] == "the baseline spans 3 s of 8 s"


def test_a_run_leaves_its_evidence_in_the_history() -> None:
    record = {
        "execution_id": "e9",
        "deployment": {"service": SERVICE, "version": "v1.2.0-leak", "deployed_at": "2026-11-29T10:20:00Z"},
        "decision": {"verdict": "ROLLBACK"},
        "approval": {"status": "approved"},
        "executed": [
            {"name": "rollback_deployment", "status": "done", "params": {"to_version": "v1.0.0"},
             "finished_at": "2026-11-29T10:21:00Z"},
        ],
        "measured": {
            "status": "resolved",
            "source": "prometheus",
            "simulated": False,
            "window": {"start": "2026-11-29T10:21:00Z", "end": "2026-11-29T10:21:45Z"},
            "health": {"version": "v1.0.0", "ready": True, "restarts": 0},
        },
        "outcome": {"simulated": False},
    }  # fmt: skip
    kinds = {
        (e["version"], e["kind"]) for e in revisions.events_from_record(record, at="2026-11-29T10:22:00Z")
    }
    assert kinds == {("v1.2.0-leak", revisions.ROLLED_BACK), ("v1.0.0", revisions.VERIFIED_HEALTHY)}
    crashing = {"version": "v1.2.0-leak", "ready": False, "restarts": 4}
    rejected = {**record, "approval": {"status": "rejected"}, "executed": [],
                "measured": {**record["measured"], "status": "not_resolved", "health": crashing}}  # fmt: skip
    kinds = {(e["version"], e["kind"]) for e in revisions.events_from_record(rejected, at="x")}
    assert kinds == {("v1.2.0-leak", revisions.JUDGED_FAULTY), ("v1.2.0-leak", revisions.CRASH_LOOPING)}
    assert revisions.events_from_record({**record, "scenario": {"id": "memory-leak"}}, at="x") == []


def test_collect_evidence_trusts_the_target_not_the_announcement() -> None:
    deployment = {"service": SERVICE, "version": "v1.3.0-slow", "previous_version": "v1.5.0-crashloop"}
    verification = {
        "target_state": {
            "version": "v1.3.0-slow",
            "previous_version": "v1.0.0",
            "ready": True,
            "restarts": 0,
        },
        "baseline_health": {"healthy": True, "reason": "a full baseline", "start": "10:00", "end": "10:01"},
    }
    events = revisions.events_from_collect(
        deployment, verification, execution_id="e1", at="2026-11-29T10:02:00Z"
    )
    good = [e for e in events if e["kind"] == revisions.BASELINE_HEALTHY]
    assert [e["version"] for e in good] == ["v1.0.0"]  # the target's previous version, not the hint
    assert all(e["version"] != "v1.5.0-crashloop" for e in events)


def _metric(
    name: str, title: str, before: str, now: str, now_value: float, baseline: float
) -> DecisiveMetric:
    return DecisiveMetric(
        name, title, before, now, "median", True, now_value=now_value, baseline_value=baseline
    )


def test_the_now_strip_calls_out_what_changed_since_the_decision() -> None:
    decided = DEPLOYED_AT + 20
    errors = _metric("error_rate", "Error rate", "0.0%", "0.0%", 0.0, 0.0)
    memory = _metric("memory_utilization", "Memory", "5.0%", "91.0%", 0.91, 0.05)
    series = {
        "error_rate": [(decided + t, 0.0 if t < 10 else 1.0) for t in range(0, 16)],
        "memory_utilization": [(decided + t, 0.92) for t in range(0, 16)],
    }
    strip = now_strip([errors, memory], series, running={"text": "v1.2.0-leak · ready · 0 crash restarts"})
    first, second = strip.items
    assert first.now == "100.0%" and first.bad and first.since == format_ts(decided + 10)[11:19]
    assert strip.changes == [f"Error rate 100.0% since {first.since} (was 0.0% at the decision)"]
    assert second.changed is None  # memory was already bad at the decision: nothing new
    assert strip.running == "v1.2.0-leak · ready · 0 crash restarts"
    gone = now_strip([errors], {}, superseded="v1.1.0-fast is running now since 10:22:40 UTC")
    assert gone.items[0].now == "—"  # no sample: never the decision's figure shown as now
    assert gone.changes == ["v1.1.0-fast is running now since 10:22:40 UTC: this approval is superseded"]


def test_the_impact_runs_from_onset_to_verified_recovery_on_real_samples_gaps_are_gaps() -> None:
    t0 = DEPLOYED_AT
    errors = [(t0 + t, 0.0) for t in range(-10, 0)]
    errors += [(t0 + t, 0.0 if t < 5 else 1.0) for t in range(0, 40) if not 20 <= t < 30]  # a 10 s gap
    errors += [(t0 + t, 0.0) for t in range(40, 60)]
    found = impact({"error_rate": errors}, deployed_at=t0, recovered_at=t0 + 55, source="Prometheus")
    [row] = found.rows
    assert found.onset == t0 + 5 and found.end == t0 + 55 and found.recovered
    assert row.peak == 1.0 and row.first_bad == t0 + 5 and row.last_bad == t0 + 39
    # 5..19 bad (14 s to the next sample), the one before the gap counts two steps at most (not the
    # 11 s of the gap), 30..39 (10 s to the next, good, sample)
    assert row.bad_s == 14 + 2 + 10
    unrecovered = impact({"error_rate": errors}, deployed_at=t0, recovered_at=None, source="snapshot")
    assert not unrecovered.recovered and unrecovered.end == t0 + 59
