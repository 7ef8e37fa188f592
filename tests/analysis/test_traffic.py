"""Requests judged as counts (console/analysis/traffic.py) through the analyzer, on synthetic live
windows built like the Prometheus source builds them (tests/count_windows.py): five routes at
20 req/s, 30 s of baseline, 45 s after the deploy, 1 s scrapes."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from console.analysis import analyze_document
from console.domain.evidence import History, Objectives, Reference
from console.domain.models import Verdict
from tests.count_windows import DEPLOYED_AT, MB, Behaviour, count_window


def test_a_redeploy_of_the_same_version_with_fresh_noise_is_never_rolled_back():
    verdicts = Counter(analyze_document(count_window(seed=seed).doc).verdict for seed in range(120))
    assert verdicts == {Verdict.CONTINUE: 120}


def test_one_stray_error_is_not_a_regression():
    """A single 5xx at 20 req/s read 1.25-1.7 % over a 4 s rate window; as a count it is 1 of ~900."""
    outcomes = Counter()
    for seed in range(60):
        when = float(np.random.default_rng(seed).uniform(0, 45))

        def one(t: float, route: str, when: float = when) -> Behaviour:
            return Behaviour(error=1.0 if abs(t - when) < 0.5 and route == "/api/items" else 0.0)

        outcomes[analyze_document(count_window(one, seed=seed).doc).verdict] += 1
    assert outcomes == {Verdict.CONTINUE: 60}


def test_healthy_but_different_versions_continue():
    for latency in (15.0, 36.0, 46.0):  # faster, a little faster, 15 % slower: within the tolerance

        def changed(t: float, route: str, latency: float = latency) -> Behaviour:
            return Behaviour(latency_ms=latency if t > 0 else 40.0)

        for seed in range(10):
            assert analyze_document(count_window(changed, seed=seed).doc).verdict is Verdict.CONTINUE


def test_a_fault_in_one_handler_of_five_is_found_and_named_with_its_share():
    def cart(t: float, route: str) -> Behaviour:
        return Behaviour(error=0.25 if t > 0 and route == "/api/cart" else 0.0)

    d = analyze_document(count_window(cart, seed=3).doc)
    assert d.verdict is Verdict.ROLLBACK and d.rule == "user-facing-regression"
    errors = next(m for m in d.metrics if m.name == "error_rate")
    assert errors.basis == "counts" and errors.dimension == "/api/cart"
    assert errors.share == pytest.approx(0.2, abs=0.05)
    assert "/api/cart (2" in errors.reason and "BH-adjusted" in errors.reason
    assert "on /api/cart" in d.summary and "Error-rate regression" in d.root_cause


def test_latency_is_judged_on_the_histograms_counts_per_handler():
    def search(t: float, route: str) -> Behaviour:
        return Behaviour(latency_ms=340.0 if t > 0 and route == "/api/search" else 40.0)

    d = analyze_document(count_window(search, seed=4).doc)
    latency = next(m for m in d.metrics if m.name == "latency_p95_ms")
    assert d.verdict is Verdict.ROLLBACK and latency.dimension == "/api/search"
    assert "slower than 100 ms" in latency.reason  # the first bucket bound above p95 + 20 %/20 ms
    assert latency.after_median > 300 > 100 > latency.baseline_median


def test_a_burst_right_after_the_rollout_that_recovers_is_not_a_rollback():
    def burst(t: float, route: str) -> Behaviour:
        return Behaviour(error=0.3 if 0 < t < 4 else 0.0)

    for seed in range(10):
        assert analyze_document(count_window(burst, seed=seed).doc).verdict is Verdict.CONTINUE


def test_gradual_errors_are_a_regression_by_the_end_of_the_window():
    def ramp(t: float, route: str) -> Behaviour:
        return Behaviour(error=0.2 * max(t, 0.0) / 45)

    d = analyze_document(count_window(ramp, seed=6).doc)
    assert d.verdict is Verdict.ROLLBACK and d.rule == "user-facing-regression"


def test_gaps_in_the_scrapes_are_not_samples_but_their_requests_still_count():
    """Prometheus stopped 10 s after the deploy for 10 s: the counters kept counting, so the next
    scrape holds those requests; the real scrapes are 10 fewer."""

    def cart(t: float, route: str) -> Behaviour:
        return Behaviour(error=0.25 if t > 0 and route == "/api/cart" else 0.0)

    whole = analyze_document(count_window(cart, seed=8).doc)
    gapped = analyze_document(count_window(cart, seed=8, gaps=[(10, 20)]).doc)
    full, cut = (next(m for m in d.metrics if m.name == "error_rate") for d in (whole, gapped))
    assert full.after_points - cut.after_points == 10
    assert gapped.verdict is Verdict.ROLLBACK
    assert cut.reason.split("after);")[0] == full.reason.split("after);")[0]  # the same counts


def test_an_empty_window_is_insufficient_evidence_never_continue():
    window = count_window(seed=1, gaps=[(0.5, 46)])  # no scrape at all after the deploy
    d = analyze_document(window.doc)
    assert d.verdict is Verdict.ESCALATE and d.rule == "insufficient-evidence"
    assert "0 real scrapes of the request counters since the deploy (need 5)" in d.reasoning
    assert any(a.name == "notify_only" for a in d.actions)


CRASH_LOOP = (-25.0, -17.0, -9.0)
"""Three restarts of the previous version in the baseline."""


def _failing_before(t: float, route: str) -> Behaviour:
    return Behaviour(error=0.5 if t <= 0 else 0.0, latency_ms=5.0 if t <= 0 else 40.0)


def test_an_unhealthy_baseline_is_replaced_by_the_last_known_good_window_and_named():
    good = count_window(seed=20).evidence  # the known-good version's own window
    reference = Reference("known-good", "the last known-good version v1.0.0 (deployment d-7)", "v1.0.0",
                          good.requests, good.latency)  # fmt: skip
    window = count_window(
        _failing_before, seed=21, restarts=CRASH_LOOP, reference=reference, version="v1.0.0",
        previous="v1.2.0-leak",
        history=History(bad_versions=("v1.2.0-leak",), known_good_version="v1.0.0"),
    )  # fmt: skip
    d = analyze_document(window.doc)
    assert d.verdict is Verdict.CONTINUE, d.reasoning
    assert "Baseline: the last known-good version v1.0.0 (deployment d-7)" in d.summary
    assert "restarted 3 times" in d.summary and "v1.2.0-leak was already judged bad" in d.summary


def test_an_unhealthy_baseline_with_nothing_healthy_to_compare_with_escalates():
    window = count_window(_failing_before, seed=22, restarts=CRASH_LOOP)
    d = analyze_document(window.doc)
    assert d.verdict is Verdict.ESCALATE and d.rule == "no-healthy-baseline"
    assert "no known-good version or stated objectives" in d.reasoning


def test_stated_objectives_stand_in_for_an_unhealthy_baseline():
    objectives = Objectives(error_ratio=0.01, latency_p95_ms=200)
    healthy_now = count_window(_failing_before, seed=23, restarts=CRASH_LOOP, objectives=objectives)
    d = analyze_document(healthy_now.doc)
    assert d.verdict is Verdict.CONTINUE and "the service's stated objectives" in d.summary

    def still_failing(t: float, route: str) -> Behaviour:
        return Behaviour(error=0.5 if t <= 0 else 0.2)

    broken = count_window(still_failing, seed=24, restarts=CRASH_LOOP, objectives=objectives)
    d = analyze_document(broken.doc)
    assert d.verdict is not Verdict.CONTINUE


def test_a_rollback_never_proposes_a_version_already_judged_bad():
    """After a bad version (v1.2.0-leak, judged ROLLBACK before), a faulty deploy rolls back to the
    last known-good version, not to the previous one; with none known, it escalates."""

    def cart(t: float, route: str) -> Behaviour:
        return Behaviour(error=0.4 if t > 0 and route == "/api/cart" else 0.0)

    good = count_window(seed=26).evidence
    reference = Reference("known-good", "v1.0.0's window", "v1.0.0", good.requests, good.latency)
    history = History(bad_versions=("v1.2.0-leak",), known_good_version="v1.0.0")
    to_good = count_window(cart, seed=25, previous="v1.2.0-leak", history=history, reference=reference)
    d = analyze_document(to_good.doc)
    rollback = next(a for a in d.actions if a.name == "rollback_deployment")
    assert d.verdict is Verdict.ROLLBACK and rollback.params["to_version"] == "v1.0.0"
    assert "v1.2.0-leak was judged bad" in rollback.reason

    nowhere = count_window(
        cart, seed=25, previous="v1.2.0-leak", history=History(bad_versions=("v1.2.0-leak",)),
        objectives=Objectives(error_ratio=0.01),
    )  # fmt: skip
    d = analyze_document(nowhere.doc)
    assert d.verdict is Verdict.ESCALATE and d.rule == "no-safe-rollback-target"
    assert not any(a.name == "rollback_deployment" for a in d.actions)
    assert "v1.2.0-leak was judged bad and no other known-good version is known" in d.summary


def test_a_slow_leak_is_rolled_back_with_its_projected_time():
    def leak(t: float) -> float:
        return 40 * MB + 1.5 * MB * max(t, 0.0)

    d = analyze_document(count_window(memory=leak, seed=9).doc)
    memory = next(m for m in d.metrics if m.name == "memory_utilization")
    assert d.verdict is Verdict.ROLLBACK and d.rule == "resource-climbs-to-limit"
    assert memory.basis == "trend" and memory.projection.startswith("reaches its limit in ~")
    assert "Memory leak introduced by v2" in d.root_cause


def test_a_heavier_but_flat_version_keeps_its_headroom():
    def heavier(t: float) -> float:
        return 40 * MB + (24 * MB if t > 0 else 0.0)

    d = analyze_document(count_window(memory=heavier, seed=10).doc)
    memory = next(m for m in d.metrics if m.name == "memory_utilization")
    assert d.verdict is Verdict.CONTINUE and memory.classification.value == "Pass"
    assert "room enough" in memory.reason


def test_a_route_new_with_the_deploy_is_compared_with_the_whole_service_and_said_so():
    """A label set that changes at the deploy: /api/v2/cart has no baseline of its own."""
    routes = ("/api/items", "/api/cart", "/api/checkout", "/api/search", "/api/v2/cart")

    def renamed(t: float, route: str) -> Behaviour:
        if route == "/api/cart":
            return Behaviour(error=0.0)
        if route == "/api/v2/cart":
            return Behaviour(error=0.3)
        return Behaviour()

    window = count_window(renamed, routes=routes, seed=30)
    # the new route only serves after the deploy, the old one only before it
    doc = window.doc
    for series in doc["evidence"]["requests"] + doc["evidence"]["latency"]["series"]:
        if series["dimension"] == "/api/v2/cart":
            series["points"] = [p for p in series["points"] if p[0] > DEPLOYED_AT]
        if series["dimension"] == "/api/cart":
            series["points"] = [p for p in series["points"] if p[0] <= DEPLOYED_AT]
    d = analyze_document(doc)
    assert "route /api/v2/cart had no request before the deploy (new with it)" in " ".join(d.notes)
    errors = next(m for m in d.metrics if m.name == "error_rate")
    assert d.verdict is Verdict.ROLLBACK and errors.dimension == "/api/v2/cart"
