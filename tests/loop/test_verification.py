"""The early-decision rule of a live verification window (console/loop/verification.py), on
second-level series like the demo service's, with a fake clock: nothing here waits."""

from __future__ import annotations

import pytest

from console.domain.models import Verdict
from console.loop import verification as V
from tests.loop.conftest import DEPLOYED_AT, FakeClock, snapshot_until

VERIFY_S = 30.0


def run(change, *, verify_s: float = VERIFY_S, start: float = DEPLOYED_AT, failing: set[float] | None = None):
    clock = FakeClock(start)
    fetched: list[float] = []

    def fetch(end: float) -> V.Fetched:
        fetched.append(end)
        if failing and round(end - DEPLOYED_AT) in failing:
            raise RuntimeError("Prometheus at http://127.0.0.1:9 unreachable: connection refused")
        return V.Fetched(snapshot_until(end, change), notes=[], links={"error_rate": "http://prom/graph"})

    result = V.watch(DEPLOYED_AT, verify_s, fetch, poll_s=2.0, clock=clock, sleep=clock.sleep)
    return result, fetched, clock


def leak(t: float, v: dict) -> dict:
    """v1.2.0-leak: memory climbs 16 MB/s towards 95 % of 256 MB, requests fail from 90 %."""
    memory = min(0.048 + 0.0635 * t, 0.952)
    return {**v, "memory_utilization": memory, "error_rate": 1.0 if memory > 0.9 else 0.0}


def slow(t: float, v: dict) -> dict:
    """v1.3.0-slow: +400 ms on every request, visible in p95 a second after the rollout."""
    return {**v, "latency_p95_ms": v["latency_p95_ms"] + (400.0 if t >= 1 else 0.0)}


def burst(t: float, v: dict) -> dict:
    """A healthy rollout with a 4-second burst of errors right after it (cold caches)."""
    return {**v, "error_rate": 0.30 if 1 <= t <= 4 else 0.0}


def late_burst(t: float, v: dict) -> dict:
    """A 6-second burst of 50 % errors in the middle of the window, then clean."""
    return {**v, "error_rate": 0.5 if 10 <= t <= 15 else 0.0}


def test_a_leak_ends_the_window_early_with_a_rollback():
    result, fetched, _ = run(leak)
    assert result.ended == V.EARLY and result.decision.verdict is Verdict.ROLLBACK
    assert result.elapsed_s < 20  # the strict judge or the memory guard, twice, well before 30 s
    assert "consecutive evaluations" in result.reason
    assert result.evaluations == len(fetched) and fetched[-1] == DEPLOYED_AT + result.elapsed_s
    assert result.to_dict()["links"] == {"error_rate": "http://prom/graph"}


def test_a_latency_regression_is_decided_by_the_strict_judge_on_two_evaluations():
    result, fetched, _ = run(slow)
    assert result.ended == V.EARLY
    assert "strict level (p < 0.0001, |δ| ≥ 0.8)" in result.reason
    # against 15 baseline points p < 1e-4 needs about 9 tail points (the last half of 17): +16 s, and
    # a second look 2 s later
    assert result.elapsed_s == pytest.approx(18.0)
    assert [round(e - DEPLOYED_AT) for e in fetched] == list(range(2, 19, 2))
    assert not result.decision.guards


def test_a_healthy_deploy_is_judged_at_the_window_end_with_continue():
    result, fetched, clock = run(None)
    assert result.ended == V.WINDOW_END and result.decision.verdict is Verdict.CONTINUE
    assert result.elapsed_s == VERIFY_S and fetched[-1] == DEPLOYED_AT + VERIFY_S
    assert result.evaluations == 15  # every 2 s from +2 to +30
    assert clock.now == pytest.approx(DEPLOYED_AT + VERIFY_S)
    assert "verification window of 30 s over: CONTINUE" in result.reason


def test_a_burst_right_after_the_rollout_never_cuts_a_healthy_deploy_short():
    result, _, _ = run(burst)
    assert result.ended == V.WINDOW_END
    assert result.decision.verdict is Verdict.CONTINUE  # recovered: a transient


def test_one_conclusive_evaluation_is_not_enough():
    """A ROLLBACK seen once (a burst that fills one tail) waits for a second conclusive look."""
    calls = []

    def judge(doc, end):
        ev = V.evaluate(doc, end)
        calls.append(ev.conclusive)
        return ev

    clock = FakeClock(DEPLOYED_AT)

    def fetch(end):
        return V.Fetched(snapshot_until(end, late_burst))

    result = V.watch(DEPLOYED_AT, VERIFY_S, fetch, poll_s=2.0, clock=clock, sleep=clock.sleep, judge=judge)
    assert result.ended == V.EARLY  # 6 s at 50 %: seen on two consecutive evaluations
    assert calls[-2:] == ["guard", "guard"] and calls.count(None) >= 5


def test_without_points_after_ten_seconds_nothing_is_conclusive():
    seen = []

    def judge(doc, end):
        ev = V.evaluate(doc, end)
        seen.append((round(end - DEPLOYED_AT), ev.conclusive, ev.points_after))
        return ev

    clock = FakeClock(DEPLOYED_AT)
    V.watch(
        DEPLOYED_AT,
        8.0,
        lambda end: V.Fetched(snapshot_until(end, slow)),
        clock=clock,
        sleep=clock.sleep,
        judge=judge,
    )
    assert [s[0] for s in seen] == [2, 4, 6, 8]
    assert all(points < V.EARLY_MIN_POINTS for _, _, points in seen)


def test_a_run_that_starts_after_its_window_evaluates_once_at_the_window_end():
    result, fetched, clock = run(slow, start=DEPLOYED_AT + 100)
    assert fetched == [DEPLOYED_AT + VERIFY_S] and result.evaluations == 1
    assert result.ended == V.WINDOW_END and result.decision.verdict is Verdict.ROLLBACK
    assert clock.slept == []


def test_a_source_failing_mid_window_is_a_note_and_at_the_end_an_error():
    result, _, _ = run(None, failing={4, 6})
    assert result.ended == V.WINDOW_END
    assert any("evaluation at +4 s skipped: Prometheus" in n for n in result.notes)
    with pytest.raises(V.WatchError, match="connection refused"):
        run(None, failing={30})


def test_a_sleep_that_raises_stops_the_watch():
    class Stop(Exception):
        pass

    def sleep(_seconds):
        raise Stop

    with pytest.raises(Stop):
        V.watch(
            DEPLOYED_AT,
            VERIFY_S,
            lambda end: V.Fetched(snapshot_until(end)),
            clock=lambda: DEPLOYED_AT,
            sleep=sleep,
        )


def flaky(t: float, v: dict) -> dict:
    """Two requests in three slow: a real regression, but with a rank effect of about 0.67 only."""
    return {**v, "latency_p95_ms": v["latency_p95_ms"] + (60.0 if int(t) % 3 else 0.0)}


def test_a_regression_below_the_strict_level_waits_for_the_window_end():
    levels = []

    def judge(doc, end):
        ev = V.evaluate(doc, end)
        levels.append(ev.conclusive)
        return ev

    clock = FakeClock(DEPLOYED_AT)
    result = V.watch(
        DEPLOYED_AT,
        VERIFY_S,
        lambda end: V.Fetched(snapshot_until(end, flaky)),
        clock=clock,
        sleep=clock.sleep,
        judge=judge,
    )
    assert result.ended == V.WINDOW_END and result.decision.verdict is Verdict.ROLLBACK
    assert set(levels) == {None}  # the normal judge says ROLLBACK; the strict one never does
    latency = next(m for m in result.decision.metrics if m.name == "latency_p95_ms")
    assert V.STRICT_EFFECT > abs(latency.effect_size) >= 0.33
