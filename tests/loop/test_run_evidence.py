"""What a finished run and a pre-deploy baseline tell the revision history, event by event: the
words, times, windows and order the Revisions page and the rollback target rest on."""

from __future__ import annotations

import pytest

from console.loop import revisions
from console.telemetry.times import format_ts

pytestmark = pytest.mark.safety
SERVICE = "demo-service"
WINDOW = {"start": "2026-11-29T10:21:00Z", "end": "2026-11-29T10:21:45Z"}


def rollback(status: str = "done", **extra) -> dict:
    return {"name": "rollback_deployment", "status": status, "params": {"to_version": "v1.0.0"},
            "finished_at": "2026-11-29T10:21:00Z", **extra}  # fmt: skip


def run_record(**parts) -> dict:
    record = {
        "execution_id": "e9",
        "deployment": {"service": SERVICE, "version": "v1.2.0", "deployed_at": "2026-11-29T10:20:00Z"},
        "decision": {"verdict": "ROLLBACK"},
        "approval": {"status": "approved"},
        "executed": [rollback()],
        "measured": {"status": "resolved", "source": "prometheus", "simulated": False, "window": WINDOW},
    }
    return {**record, **parts}


def told(record: dict) -> list[tuple]:
    return [
        (e["version"], e["kind"], e["at"], e["reason"], e["source"], e["window_start"], e["window_end"])
        for e in revisions.events_from_record(record, at="2026-11-29T10:22:00Z")
    ]


def test_a_rollback_measured_healthy_tells_the_bad_version_then_the_good_target() -> None:
    crashing = {"version": "v1.2.0", "ready": False, "restarts": 0}
    measured = {**run_record()["measured"], "health": crashing}
    assert told(run_record(measured=measured)) == [
        ("v1.2.0", revisions.ROLLED_BACK, "2026-11-29T10:21:00Z", "rolled back", "loop", None, None),
        ("v1.2.0", revisions.CRASH_LOOPING, WINDOW["end"], "not ready", "probe", None, None),
    ]  # the target does not run the rollback's version: the window says nothing about v1.0.0
    assert told(run_record())[1] == (
        "v1.0.0", revisions.VERIFIED_HEALTHY, WINDOW["end"], "measured after the rollback", "loop",
        WINDOW["start"], WINDOW["end"],
    )  # fmt: skip


def test_a_simulated_or_unmeasured_rollback_proves_nothing_good() -> None:
    simulated = run_record(executed=[rollback(simulated=True)], approval={})
    assert told(simulated) == [
        ("v1.2.0", revisions.JUDGED_FAULTY, "2026-11-29T10:22:00Z", "ROLLBACK; the rollback did not run",
         "loop", None, None),
    ]  # fmt: skip
    by_recording = {**run_record()["measured"], "source": "recorded scenario segment"}
    assert [kind for _, kind, *_ in told(run_record(measured=by_recording))] == [revisions.ROLLED_BACK]
    assert told(run_record(execution_id="")) == []
    assert told(run_record(outcome={"simulated": True})) == []


def test_a_continue_is_verified_over_the_whole_run_unless_an_action_changed_the_service() -> None:
    quiet = run_record(decision={"verdict": "CONTINUE"}, executed=[{"name": "notify_only", "status": "done"}])
    crash_text = {"version": "v1.2.0", "ready": True, "restarts": 3, "text": "3 crash restarts"}
    assert told(quiet) == [
        ("v1.2.0", revisions.VERIFIED_HEALTHY, WINDOW["end"], "measured after the deploy", "loop",
         "2026-11-29T10:20:00Z", WINDOW["end"]),
    ]  # fmt: skip
    restarted = run_record(
        decision={"verdict": "CONTINUE"},
        executed=[{"name": "restart_pod", "status": "done"}],
        measured={**quiet["measured"], "health": crash_text},
    )
    assert told(restarted) == [
        ("v1.2.0", revisions.CRASH_LOOPING, WINDOW["end"], "3 crash restarts", "probe", None, None),
    ]


def baseline(metric: str, value: float, seconds: int = 15) -> dict:
    deployed = 1_800_000_000.0
    points = [[format_ts(deployed - s), value] for s in range(seconds, 0, -1)]
    return {"deployment": {"deployed_at": format_ts(deployed)}, "metrics": {metric: points}}


@pytest.mark.parametrize(
    ("snapshot", "reason"),
    [
        (baseline("memory_utilization", 0.97), "memory reached 97% of its limit"),
        (baseline("pod_restarts", 1.0), "15 crash restart(s)"),
        ({"deployment": {}, "metrics": {"error_rate": [["junk", 1]]}}, "no point before the deploy"),
    ],
)
def test_a_baseline_is_not_healthy_for_the_first_reason_found(snapshot, reason) -> None:
    health = revisions.baseline_health(snapshot, 15)
    assert health["healthy"] is False and health["reason"] == reason


def test_a_healthy_baseline_says_its_window() -> None:
    health = revisions.baseline_health(baseline("error_rate", 0.0), 15)
    assert list(health) == ["start", "end", "healthy", "reason"]
    assert (health["start"], health["end"]) == ("2027-01-15T07:59:45Z", "2027-01-15T07:59:59Z")
    assert health["reason"] == "a full baseline of 14 s without errors or restarts"
