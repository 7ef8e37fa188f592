"""Resources that climb to their limit (console/analysis/trends.py): projected with an interval,
a rollback within the horizon, never for a warm-up, a flat step or a climb the baseline had."""

from __future__ import annotations

import numpy as np
import pytest

from console.analysis.trends import EXTRAPOLATION, project, projection_text

DEPLOY = 1_000_000.0
ALPHA = 0.01


def series(
    after: np.ndarray, before: np.ndarray | None = None, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    before = np.full(30, 0.15) if before is None else before
    values = np.concatenate([before, after]) + rng.normal(0, 0.002, before.size + after.size)
    times = DEPLOY + np.arange(-before.size, after.size, dtype=float) + 1
    return times, values


def test_a_steady_climb_is_projected_to_its_limit_with_an_interval():
    t = np.arange(45, dtype=float)
    times, values = series(0.16 + 0.006 * t)  # +0.6 % of the limit a second
    p = project(times, values, 1.0, DEPLOY, alpha=ALPHA, horizon_s=3600)
    assert p is not None and p.reaches
    assert p.slope_low <= p.slope <= p.slope_high
    assert p.seconds == pytest.approx((1.0 - p.level) / p.slope)
    assert p.seconds <= p.latest <= p.horizon_s == EXTRAPOLATION * p.span_s
    text = projection_text(p, "memory_utilization")
    assert text.startswith("reaches its limit in ~") and "+36.1% of its limit a minute" in text


def test_a_projection_is_only_trusted_a_few_spans_ahead():
    t = np.arange(20, dtype=float)
    times, values = series(0.16 + 0.0005 * t)  # would reach the limit in about half an hour
    p = project(times, values, 1.0, DEPLOY, alpha=ALPHA, horizon_s=3600)
    assert p is not None and not p.reaches and p.horizon_s == pytest.approx(EXTRAPOLATION * 19)


def test_a_warm_up_that_levels_off_is_not_a_leak():
    t = np.arange(45, dtype=float)
    times, values = series(0.16 + 0.08 * (1 - np.exp(-t / 4)))  # a cache filling, then flat
    p = project(times, values, 1.0, DEPLOY, alpha=ALPHA, horizon_s=3600)
    assert p is not None and not p.reaches


def test_a_climb_the_baseline_already_had_is_not_the_deploys():
    before = 0.10 + 0.004 * np.arange(30, dtype=float)
    t = np.arange(30, dtype=float)
    times, values = series(0.22 + 0.004 * t, before=before)
    p = project(times, values, 1.0, DEPLOY, alpha=ALPHA, horizon_s=3600)
    assert p is not None and p.same_as_baseline and not p.reaches


def test_the_process_restart_at_the_deploy_is_where_the_climb_starts():
    t = np.arange(40, dtype=float)
    after = np.where(t < 3, 0.5, 0.05 + 0.008 * (t - 3))  # the old process, then the new one leaking
    times, values = series(after, before=np.full(30, 0.5))
    p = project(times, values, 1.0, DEPLOY, alpha=ALPHA, horizon_s=3600)
    assert p is not None and p.reaches and p.samples == 37


def test_too_few_real_samples_is_no_projection():
    times, values = series(0.16 + 0.01 * np.arange(5, dtype=float))
    assert project(times, values, 1.0, DEPLOY, alpha=ALPHA) is None
