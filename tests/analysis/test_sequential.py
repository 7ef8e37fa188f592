"""The always-valid tests (console/analysis/sequential.py): their error rate holds when they are
looked at after every scrape; they find a real rise; Benjamini–Hochberg finds one route among many."""

from __future__ import annotations

import math

import numpy as np
import pytest

from console.analysis.sequential import (
    always_valid_p,
    discoveries,
    null_rate,
    spent_alpha,
    upper_bound,
)

ALPHA = 0.01


def _ever_rejects(rng: np.random.Generator, rate: float, p0: float, looks: int, per_look: int) -> bool:
    events = trials = 0
    for _ in range(looks):
        events += int(rng.binomial(per_look, rate))
        trials += per_look
        if always_valid_p(events, trials, p0) <= ALPHA:
            return True
    return False


def test_looking_after_every_scrape_keeps_the_error_rate_under_alpha():
    """At the null's edge (rate == p0), checked after each of 200 scrapes of 20 requests: the share
    of runs that ever reject stays under alpha (Ville's inequality), unlike a fixed-sample test
    looked at as often."""
    rng = np.random.default_rng(11)
    runs = 1500
    rejected = sum(_ever_rejects(rng, 0.05, 0.05, 200, 20) for _ in range(runs))
    assert rejected / runs <= ALPHA


def test_a_real_rise_is_found_and_a_bigger_one_sooner():
    rng = np.random.default_rng(5)

    def looks_needed(rate: float) -> int:
        events = trials = 0
        for look in range(1, 500):
            events += int(rng.binomial(20, rate))
            trials += 20
            if always_valid_p(events, trials, 0.02) <= ALPHA:
                return look
        return 500

    assert looks_needed(0.30) < looks_needed(0.08) < 500


def test_one_error_is_never_conclusive():
    """A single 5xx at 20 req/s reads 1.25-1.7 % over a 4 s window; as counts it is one event."""
    p0 = null_rate(0, 600, ALPHA / 2, relative=0.5, absolute=0.005)
    for trials in (20, 80, 400, 900):
        assert always_valid_p(1, trials, p0) > ALPHA / 2


def test_the_null_rate_covers_the_baselines_uncertainty_and_the_minimum_change():
    # an error-free baseline of 120 requests: its upper bound, not zero
    assert null_rate(0, 120, 0.005, relative=0.5, absolute=0.005) == pytest.approx(upper_bound(0, 120, 0.005))
    # a large baseline at 2 %: the minimum change that matters (+50 %) decides
    assert null_rate(2000, 100_000, 0.005, relative=0.5, absolute=0.005) == pytest.approx(0.03)
    # a small rate on a large baseline: +0.5 point
    assert null_rate(10, 100_000, 0.005, relative=0.5, absolute=0.005) == pytest.approx(0.0051)
    assert upper_bound(0, 0, 0.005) == 1.0


@pytest.mark.parametrize(("events", "trials"), [(0, 1), (0, 120), (3, 120), (59, 60), (17, 4000), (2.5, 9.5)])
def test_the_upper_bound_is_the_clopper_pearson_quantile(events, trials):
    from scipy.stats import beta

    for alpha in (0.005, 0.05):
        expected = beta.ppf(1 - alpha, events + 1, trials - events)
        assert upper_bound(events, trials, alpha) == pytest.approx(expected, rel=1e-12)
    # a share of events above the bound is rarer than alpha: the bound is an upper one
    assert upper_bound(events, trials, 0.005) > events / trials


def test_benjamini_hochberg_finds_the_one_faulty_route_among_many():
    rng = np.random.default_rng(2)
    noise = list(rng.uniform(0.05, 1, size=24))
    assert discoveries([*noise, 1e-6], ALPHA) == [False] * 24 + [True]
    assert not any(discoveries(noise, ALPHA))


def test_the_alpha_spent_over_every_sample_adds_up_to_alpha():
    total = sum(spent_alpha(ALPHA, n) for n in range(1, 100_000))
    assert total <= ALPHA
    assert total == pytest.approx(ALPHA, rel=1e-4)
    assert math.isclose(spent_alpha(ALPHA, 1), ALPHA * 6 / math.pi**2)
