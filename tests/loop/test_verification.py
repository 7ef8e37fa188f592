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
    assert result.elapsed_s < 20  # the trend to the limit or the memory guard, well before 30 s
    assert result.samples_after >= V.EARLY_MIN_SAMPLES
    assert f"conclusive after {result.samples_after} real samples since the deploy" in result.reason
    assert result.evaluations == len(fetched) and fetched[-1] == DEPLOYED_AT + result.elapsed_s
    assert result.to_dict()["links"] == {"error_rate": "http://prom/graph"}
    assert result.to_dict()["rule"] == result.decision.rule


def test_a_latency_regression_on_points_waits_for_the_significance_spent_at_its_sample():
    """Without counts, a point regression ends the window early only when the judge holds at
    alpha * 6 / (pi^2 n^2) for its n-th real sample: repeated looks keep the error under alpha."""
    result, fetched, _ = run(slow)
    assert result.ended == V.EARLY
    assert "the judge at the significance spent at this sample" in result.reason
    # 15 baseline points against the last half of n: p < 1e-5 needs n of about 25 (+24 s)
    assert result.elapsed_s == pytest.approx(24.0)
    assert [round(e - DEPLOYED_AT) for e in fetched] == list(range(2, 25, 2))
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


def test_a_late_burst_ends_the_window_once_it_fills_the_last_half():
    """6 s at 50 % in the middle of the window: conclusive once the tail (the last half of the real
    samples, at least ten of them) is mostly the burst; never before ten real samples."""
    calls = []

    def judge(doc, end):
        ev = V.assess(doc, end)
        calls.append((round(end - DEPLOYED_AT), ev.conclusive, ev.samples_after))
        return ev

    clock = FakeClock(DEPLOYED_AT)

    def fetch(end):
        return V.Fetched(snapshot_until(end, late_burst))

    result = V.watch(DEPLOYED_AT, VERIFY_S, fetch, poll_s=2.0, clock=clock, sleep=clock.sleep, judge=judge)
    assert result.ended == V.EARLY and calls[-1][1] == "guard"
    assert all(kind is None for _, kind, samples in calls if samples < V.EARLY_MIN_SAMPLES)
    assert sum(kind is None for _, kind, _ in calls) >= 5


def test_without_ten_real_samples_nothing_is_conclusive():
    seen = []

    def judge(doc, end):
        ev = V.assess(doc, end)
        seen.append((round(end - DEPLOYED_AT), ev.conclusive, ev.samples_after))
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
    assert all(samples < V.EARLY_MIN_SAMPLES and kind is None for _, kind, samples in seen)


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


def test_a_regression_below_the_spent_significance_waits_for_the_window_end():
    levels = []

    def judge(doc, end):
        ev = V.assess(doc, end)
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
    assert set(levels) == {None}  # the judge says ROLLBACK at alpha; never at the alpha spent per sample
    latency = next(m for m in result.decision.metrics if m.name == "latency_p95_ms")
    assert latency.p_value > V.spent_alpha(V.ALPHA, result.samples_after)


def empty_after(t: float, v: dict) -> dict:
    return v


def test_an_empty_window_waits_a_bounded_while_then_escalates_saying_what_is_missing():
    """Prometheus down from the deploy on: no real sample after it. Never CONTINUE: the watch waits
    half a window more for samples, then ESCALATE naming what is missing."""
    clock = FakeClock(DEPLOYED_AT)
    fetched: list[float] = []

    def fetch(end: float) -> V.Fetched:
        fetched.append(end)
        return V.Fetched(snapshot_until(min(end, DEPLOYED_AT - 1)))  # nothing after the deploy

    result = V.watch(DEPLOYED_AT, VERIFY_S, fetch, poll_s=2.0, clock=clock, sleep=clock.sleep)
    assert result.ended == V.WINDOW_END and result.decision.verdict is Verdict.ESCALATE
    assert result.decision.rule == "insufficient-evidence"
    assert fetched[-1] == DEPLOYED_AT + VERIFY_S * (1 + V.INSUFFICIENT_WAIT_FRACTION)
    assert "0 after it (need 5 each)" in result.reason
    assert any("waiting up to 15 s more" in n for n in result.notes)


def test_samples_arriving_during_the_wait_are_judged_normally():
    clock = FakeClock(DEPLOYED_AT)

    def fetch(end: float) -> V.Fetched:
        # Prometheus comes back 29 s after the deploy: samples from then on
        doc = snapshot_until(end)
        doc["metrics"] = {
            name: [p for p in points if not DEPLOYED_AT <= _epoch(p[0]) < DEPLOYED_AT + 29]
            for name, points in doc["metrics"].items()
        }
        return V.Fetched(doc)

    result = V.watch(DEPLOYED_AT, VERIFY_S, fetch, poll_s=2.0, clock=clock, sleep=clock.sleep)
    assert result.decision.verdict is Verdict.CONTINUE and result.decision.rule == "healthy"
    assert result.samples_after >= 5 and result.elapsed_s > VERIFY_S


def _epoch(text: str) -> float:
    from console.domain.models import parse_time

    return parse_time(text).timestamp()
