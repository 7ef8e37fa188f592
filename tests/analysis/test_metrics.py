"""The per-metric canary judge: statistics, direction, tolerance, attribution, guards."""

from __future__ import annotations

import numpy as np
import pytest

from console.analysis import metrics as M
from console.domain.models import Classification, Direction
from tests.analysis.conftest import judge_arrays

RNG = np.random.default_rng(7)


def noisy(level: float, n: int, sd: float, seed: int) -> np.ndarray:
    return level + sd * np.random.default_rng(seed).standard_normal(n)


def test_cliffs_delta_is_derived_from_u_exactly():
    a = np.array([1.0, 2.0, 2.0, 5.0, 7.0, 9.0])
    b = np.array([0.5, 2.0, 3.0, 4.0])
    brute = (np.sign(a[:, None] - b[None, :])).mean()  # P(a>b) - P(a<b), ties count 0
    c = M.compare("whatever", b, a)
    assert c.delta == pytest.approx(brute)


@pytest.mark.parametrize("seed", range(40))
def test_the_rank_sum_test_gives_scipys_numbers(seed):
    """U and the asymptotic two-sided p-value as scipy.stats.mannwhitneyu computes them, on samples
    of every size the judge sees, rounded so that ties are common (and all-but-one tied)."""
    from scipy.stats import mannwhitneyu

    rng = np.random.default_rng(seed)
    n1, n2 = int(rng.integers(1, 80)), int(rng.integers(1, 80))
    decimals = int(rng.integers(0, 3))
    test = np.round(rng.normal(rng.normal(0, 1), 1, n1), decimals)
    ref = np.round(rng.normal(0, 1, n2), decimals)
    if seed % 10 == 0:
        test, ref = np.zeros(n1), np.append(np.zeros(n2 - 1), 1.0) if n2 > 1 else np.ones(1)
    u, p = M.rank_sum_test(test, ref)
    expected = mannwhitneyu(test, ref, alternative="two-sided", method="asymptotic")
    assert u == float(expected.statistic)
    assert p == pytest.approx(float(expected.pvalue), rel=1e-9, abs=1e-15)


def test_directions_of_known_and_unknown_metrics():
    assert M.direction_of("error_rate") is Direction.INCREASE
    assert M.direction_of("requests_per_second") is Direction.DECREASE
    assert M.direction_of("queue_depth") is Direction.EITHER


def test_latency_step_up_is_high_regression():
    j = judge_arrays("latency_p95_ms", noisy(200, 60, 10, 1), noisy(400, 30, 20, 2))
    assert j.status == "regression"
    assert j.result.classification is Classification.HIGH
    assert j.result.p_value < M.ALPHA and j.result.effect_size > 0.9
    assert j.result.baseline_points == 60 and j.result.after_points == 30


def test_improvement_is_never_a_regression():
    j = judge_arrays("latency_p95_ms", noisy(400, 60, 10, 1), noisy(200, 30, 10, 2))
    assert j.status == "improved"
    assert j.result.classification is Classification.PASS


def test_throughput_drop_is_bad_but_rise_is_not():
    drop = judge_arrays("requests_per_second", noisy(100, 60, 3, 1), noisy(50, 30, 3, 2))
    rise = judge_arrays("requests_per_second", noisy(100, 60, 3, 1), noisy(180, 30, 3, 2))
    assert drop.status == "regression" and drop.result.classification is Classification.LOW
    assert rise.status == "improved" and rise.result.classification is Classification.PASS


@pytest.mark.parametrize("after_level", [50.0, 150.0])
def test_unknown_metric_flags_either_direction(after_level):
    j = judge_arrays("queue_depth", noisy(100, 60, 3, 1), noisy(after_level, 30, 3, 2))
    assert j.result.direction is Direction.EITHER
    assert j.status == "regression"


def test_tiny_significant_shift_on_a_long_window_passes_by_tolerance():
    # 7 days of baseline, 1 day after: a 2% latency shift is "significant" but negligible
    before, after = noisy(200, 10080, 5, 1), noisy(204, 1440, 5, 2)
    c = M.compare("latency_p95_ms", before, after)
    assert c.p_value < 1e-6  # the U test alone would flag it ...
    j = judge_arrays("latency_p95_ms", before, after)
    assert j.status == "pass"  # ... the tolerance does not


def test_nodata_when_a_side_is_too_short():
    j = judge_arrays("error_rate", noisy(0.01, 60, 0.001, 1), noisy(0.5, 3, 0.001, 2))
    assert j.status == "nodata" and j.result.classification is Classification.NODATA
    assert "not enough data" in j.result.reason
    j = judge_arrays("error_rate", [], noisy(0.01, 30, 0.001, 2))
    assert j.result.classification is Classification.NODATA


def test_constant_series_pass_without_statistics_errors():
    j = judge_arrays("pod_restarts", np.zeros(60), np.zeros(30))
    assert j.status == "pass" and j.result.p_value == 1.0


def test_short_blip_that_recovers_is_transient():
    after = np.concatenate([noisy(0.3, 15, 0.01, 2), noisy(0.01, 25, 0.002, 3)])
    j = judge_arrays("error_rate", noisy(0.01, 60, 0.002, 1), after)
    assert j.status == "transient"
    assert j.result.classification is Classification.PASS
    assert "recovered" in j.result.reason


def test_onset_before_deploy_unchanged_after_is_preexisting():
    before = np.concatenate([noisy(0.01, 45, 0.002, 1), noisy(0.3, 15, 0.01, 2)])
    j = judge_arrays("error_rate", before, noisy(0.3, 30, 0.01, 3))
    assert j.status == "preexisting"
    assert j.onset_before and j.onset_offset_s == pytest.approx(-15 * 60)
    assert "before the deploy" in j.result.reason
    assert M.check_guard(j) is None  # a pre-existing outage never trips the error-rate guard


def test_onset_before_deploy_and_worse_after_is_a_regression():
    before = np.concatenate([noisy(0.01, 45, 0.002, 1), noisy(0.05, 15, 0.004, 2)])
    j = judge_arrays("error_rate", before, noisy(0.4, 30, 0.01, 3))
    assert j.status == "regression"
    assert M.check_guard(j) is not None


def test_trend_that_began_before_the_deploy_is_not_blamed_on_it():
    ramp = np.linspace(0.55, 0.97, 50)  # memory climbing since 20 min before the deploy
    values = np.concatenate([np.full(40, 0.55), ramp]) + noisy(0, 90, 0.004, 4)
    j = judge_arrays("memory_utilization", values[:60], values[60:])
    assert j.status == "preexisting"
    assert "pre-deploy trend" in j.result.reason


def test_change_point_finds_the_step():
    values = np.concatenate([noisy(1.0, 40, 0.1, 1), noisy(3.0, 20, 0.1, 2)])
    assert M.change_point(values) == 40
    assert M.change_point(np.ones(4)) is None


def test_thinning_keeps_the_test_bounded_and_deterministic():
    big = noisy(1.0, 50_000, 0.1, 1)
    assert M._thin(big).size <= M.MAX_TEST_POINTS
    assert np.array_equal(M._thin(big), M._thin(big))


def test_restarts_use_a_count_test():
    # 5 restarts in 30 min after none in an hour: a tiny rank effect but a certain change
    after = np.zeros(30)
    after[[3, 9, 15, 21, 27]] = 1
    c = M.compare("pod_restarts", np.zeros(60), after)
    assert c.p_value < M.ALPHA and abs(c.delta) < M.MIN_EFFECT
    j = judge_arrays("pod_restarts", np.zeros(60), after)
    assert j.status == "regression"
    assert "crash loop" in M.check_guard(j)


def test_restarts_only_during_rollout_do_not_trip_the_guard():
    after = np.zeros(30)
    after[[0, 1]] = 2  # pods replaced during the rollout, then quiet
    j = judge_arrays("pod_restarts", np.zeros(60), after)
    assert M.check_guard(j) is None


@pytest.mark.parametrize(
    ("name", "before", "after", "fires", "text"),
    [
        ("error_rate", 0.01, 0.352, True, "error_rate 35.2% ≥ 20%"),
        ("error_rate", 0.01, 0.12, False, None),  # a regression, but below the guard
        ("memory_utilization", 0.55, 0.93, True, "memory_utilization 93.0% ≥ 90% and rising"),
        ("memory_utilization", 0.80, 0.86, False, None),
    ],
)
def test_guards(name, before, after, fires, text):
    j = judge_arrays(name, noisy(before, 60, 0.002, 1), noisy(after, 30, 0.002, 2))
    guard = M.check_guard(j)
    assert (guard is not None) == fires
    if text:
        assert guard.startswith(text)


def test_error_rate_guard_is_off_on_low_traffic():
    j = judge_arrays("error_rate", noisy(0.01, 60, 0.002, 1), noisy(0.35, 30, 0.01, 2))
    assert M.check_guard(j, low_traffic=False) is not None
    assert M.check_guard(j, low_traffic=True) is None


def test_memory_already_high_and_flat_is_no_guard():
    j = judge_arrays("memory_utilization", noisy(0.92, 60, 0.003, 1), noisy(0.92, 30, 0.003, 2))
    assert j.status == "pass" and M.check_guard(j) is None


def test_latency_that_follows_traffic_is_load_not_regression():
    rps = judge_arrays("requests_per_second", noisy(100, 60, 3, 1), noisy(250, 30, 5, 2))
    lat = judge_arrays("latency_p95_ms", noisy(200, 60, 8, 3), noisy(420, 30, 10, 4))
    worse = judge_arrays("latency_p95_ms", noisy(200, 60, 8, 3), noisy(1500, 30, 30, 4))
    assert lat.status == "regression"
    assert M.explain_by_load([rps, lat]) == pytest.approx(2.5, rel=0.05)
    assert lat.status == "load"
    M.explain_by_load([rps, worse])  # 7.5x latency for 2.5x traffic: not explained
    assert worse.status == "regression"


def test_format_value_units():
    assert M.format_value("error_rate", 0.352) == "35.2%"
    assert M.format_value("latency_p95_ms", 480.4) == "480 ms"
    assert M.format_value("pod_restarts", 0.22) == "0.22 per sample"  # a mean count, never "0.22/interval"
    assert M.format_value("x", None) == "n/a"


def test_a_rollout_starting_seconds_before_its_recorded_time_is_still_the_deploy():
    # 10-second resolution: the shift starts 40 s (4 points) before deployed_at
    t = np.arange(-360, 180) * 10.0
    v = noisy(200, t.size, 10, 5)
    v[t >= -40] += 200
    j = M.judge_metric("latency_p95_ms", t, v, 0.0)
    assert j.status == "regression" and not j.onset_before


def test_negative_restart_values_fall_back_to_the_rank_test():
    # found by the property test: a counter reset can report -1; it must not crash the count test
    j = judge_arrays("pod_restarts", np.zeros(10), [0.0, 0.0, 0.0, 0.0, -1.0])
    assert j.status in ("pass", "improved")


def test_memory_still_climbing_is_judged_where_it_is_now():
    # a leak ramping over the whole window: the tail median is ~85%, the last minutes ~93%
    after = np.linspace(0.56, 0.94, 40) + noisy(0, 40, 0.003, 6)
    j = judge_arrays("memory_utilization", noisy(0.55, 60, 0.004, 5), after)
    assert j.tail_level < M.MEMORY_GUARD <= j.last_level
    assert M.check_guard(j).startswith("memory_utilization 9")


def test_a_regression_after_an_insignificant_baseline_wiggle_is_still_a_regression():
    # found by the independent-style generator: a noise-level "change point" early in the baseline
    # must not be taken for a pre-deploy anomaly that skewed the baseline
    before = noisy(360, 65, 25, 8)
    j = judge_arrays("latency_p95_ms", before, noisy(1300, 15, 90, 9))
    assert j.status == "regression"


def test_a_metric_without_a_direction_back_to_its_early_level_is_not_a_regression():
    # an unknown metric (either direction) shifted up 18 min before the deploy and came back after it
    t = np.arange(-60, 40) * 60.0
    v = noisy(35, t.size, 1, 11)
    v[(t >= -18 * 60) & (t < 0)] += 1800
    j = M.judge_metric("db_query_p95_ms", t, v, 0.0)
    assert j.onset_before and j.status == "ended", j.result.reason
    # the same metric going further the way it went before the deploy is still worse
    w = noisy(35, t.size, 1, 12)
    w[(t >= -18 * 60) & (t < 0)] += 1800
    w[t >= 0] += 3600
    worse = M.judge_metric("db_query_p95_ms", t, w, 0.0)
    assert worse.status in ("regression", "preexisting") and worse.result.classification.value == "High"


def test_on_a_live_baseline_of_seconds_a_shift_before_the_deploy_is_before_it():
    # 1-second points, a 20-second baseline: errors began 8 s before the deploy and go on
    t = np.arange(-20, 30) * 1.0
    v = np.where(t >= -8, 0.3, 0.0) + noisy(0, t.size, 0.002, 13).clip(0)
    j = M.judge_metric("error_rate", t, v, 0.0)
    assert j.onset_before and j.status == "preexisting", j.result.reason
    assert "8 s before the deploy" in j.result.reason
    assert M.onset_min_seconds(20.0) == 5.0 and M.onset_min_seconds(3600.0) == M.ONSET_MIN_SECONDS


def test_a_stricter_level_asks_for_more_evidence():
    base = noisy(100, 15, 2, 14)
    after = noisy(112, 6, 2, 15)
    assert M.compare("latency_p95_ms", base, after + 20).sign == 1
    strict = M.Level(alpha=1e-4, min_effect=0.8)
    assert M.compare("latency_p95_ms", base, after + 20, strict).sign == 0  # 6 points cannot reach p < 1e-4
    assert M.compare("latency_p95_ms", base, noisy(132, 12, 2, 16), strict).sign == 1
