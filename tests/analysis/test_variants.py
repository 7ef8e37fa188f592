"""Unseen variants of every kind of story: different noise seeds, magnitudes, onsets, blip lengths,
window lengths and traffic levels. The analyzer must get the verdict right, and above all never roll
back a deploy that did not cause the problem (zero false rollbacks).

The fast run takes 5 variants per family; ``-m slow`` runs 30 per family."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from console.analysis import analyze_document
from console.domain.models import Verdict
from tests.conftest import load_generator

G = load_generator()
E, L = G.Effect, G.LogEvent
C, R, X = Verdict.CONTINUE, Verdict.ROLLBACK, Verdict.ESCALATE
CRASH = "Back-off restarting failed container app in pod app-{hex} (CrashLoopBackOff)"


def _spec(kind: str, i: int, **kw) -> G.Spec:
    base = dict(
        id=f"variant-{kind}-{i}", title=kind, description=kind, expected_verdict="CONTINUE",
        service="svc", version="v2", previous_version="v1", seed=50_000 + 97 * i + sum(map(ord, kind)),
        after_min=(30, 40, 60)[i % 3], info_per_min=2.0,
    )  # fmt: skip
    base.update(kw)
    return G.Spec(**base)


def _pick(options, i, k=1):
    return options[(i // k) % len(options)]


# each family: index -> (spec, allowed verdicts)
FAMILIES: dict[str, Callable[[int], tuple[G.Spec, set[Verdict]]]] = {
    # --- not the deploy: must never roll back -----------------------------------------------------
    "outage-before-deploy": lambda i: (
        _spec(
            "ob",
            i,
            effects=[
                E(
                    "error_rate",
                    "step",
                    -_pick((4, 6, 9, 14, 25, 40), i),
                    _pick((0.04, 0.1, 0.25, 0.5), i, 2),
                ),
                E("latency_p95_ms", "step", -_pick((4, 6, 9, 14, 25, 40), i), _pick((300.0, 900.0), i, 3)),
            ],
            events=[L("ERROR", G.UPSTREAM, -_pick((4, 6, 9, 14, 25, 40), i), None, 4.0)],
        ),
        {X},
    ),
    "outage-ramping-through-deploy": lambda i: (
        _spec(
            "or",
            i,
            effects=[
                E(
                    "error_rate",
                    "ramp",
                    -_pick((6, 10, 15, 20), i),
                    _pick((0.3, 0.5), i, 2),
                    _pick((10, 20, 30), i, 3),
                ),
                E("latency_p95_ms", "ramp", -_pick((6, 10, 15, 20), i), 900.0, _pick((10, 20, 30), i, 3)),
            ],
            events=[L("ERROR", G.UPSTREAM, -_pick((6, 10, 15, 20), i), None, 4.0)],
        ),
        {X, C},
    ),
    "outage-worsening-after-deploy": lambda i: (
        _spec(
            "ow",
            i,
            effects=[
                E("error_rate", "step", -_pick((6, 12, 20), i), _pick((0.05, 0.1), i, 3)),
                E("error_rate", "step", _pick((1, 5, 10), i, 2), _pick((0.25, 0.45), i)),
            ],
            events=[
                L("ERROR", G.UPSTREAM, -_pick((6, 12, 20), i), _pick((1, 5, 10), i, 2), 2.0),
                L("ERROR", G.UPSTREAM, _pick((1, 5, 10), i, 2), None, 8.0),
            ],
        ),
        {X},
    ),
    "outage-starting-just-before-deploy": lambda i: (
        _spec(
            "oj",
            i,
            effects=[
                E("error_rate", "step", -_pick((1, 2), i), _pick((0.1, 0.3), i, 2)),
            ],
            events=[L("ERROR", G.UPSTREAM, -_pick((1, 2), i), None, 6.0)],
        ),
        {X},
    ),
    "transient-blip": lambda i: (
        _spec(
            "tb",
            i,
            rps=_pick((50.0, 400.0), i),
            effects=[
                E(
                    "error_rate",
                    "step",
                    0,
                    _pick((0.05, 0.12, 0.3, 0.6), i, 2),
                    _pick((1, 2, 3, 5, 8, 10), i),
                ),
                E("latency_p95_ms", "step", 0, _pick((500.0, 2000.0), i, 3), _pick((1, 2, 3, 5, 8, 10), i)),
            ],
            events=[L("WARN", "Cache warm-up in progress ({n} shards)", 0, 4, 5.0)],
        ),
        {C},
    ),
    "healthy": lambda i: (
        _spec(
            "h",
            i,
            rps=_pick((0.5, 3.0, 20.0, 120.0, 800.0, 3000.0), i),
            error=_pick((0.001, 0.005, 0.02), i, 2),
        ),
        {C},
    ),
    "errors-already-there": lambda i: (
        _spec(
            "ea",
            i,
            error=_pick((0.03, 0.06, 0.1, 0.2, 0.3), i),
            events=[L("ERROR", "Failed to call geo-api: timeout after {ms}ms", -60, None, 2.0)],
        ),
        {C},
    ),
    "improvement": lambda i: (
        _spec(
            "im",
            i,
            error=0.05,
            latency=600.0,
            cpu=0.7,
            effects=[
                E("error_rate", "step", 1, _pick((0.001, 0.01, 0.02), i)),
                E("latency_p95_ms", "step", 1, _pick((200.0, 300.0, 450.0), i, 2)),
                E("cpu_utilization", "step", 1, 0.4),
            ],
        ),
        {C},
    ),
    "low-traffic-ratio-noise": lambda i: (
        _spec(
            "lt",
            i,
            rps=_pick((0.05, 0.1, 0.2, 0.4, 0.8), i),
            error=0.02,
            effects=[E("error_rate", "step", 0, _pick((0.02, 0.05, 0.1, 0.3), i, 2))],
        ),
        {C, X},
    ),
    "traffic-spike-before-deploy": lambda i: (
        _spec(
            "ts",
            i,
            effects=[
                E(
                    "requests_per_second",
                    "step",
                    -_pick((5, 10, 20, 30), i),
                    _pick((240.0, 300.0, 360.0), i, 2),
                    _pick((2, 5, 10, 15, 20), i, 3),
                ),
            ],
        ),
        {C},
    ),
    "traffic-rising-after-deploy": lambda i: (
        _spec(
            "tr",
            i,
            effects=[
                E(
                    "requests_per_second",
                    "ramp",
                    _pick((0, 2, 5), i),
                    _pick((180.0, 240.0, 360.0), i, 2),
                    _pick((10, 20), i, 3),
                ),
            ],
        ),
        {C, X},
    ),
    "leak-that-began-before-deploy": lambda i: (
        _spec("lb", i, effects=[E("memory_utilization", "ramp", -_pick((15, 20, 30, 40), i), 0.95, 40)]),
        {C, X},
    ),
    "short-baseline-healthy": lambda i: (
        _spec(
            "sb",
            i,
            baseline_min=_pick((15, 20, 30), i),
            after_min=_pick((10, 15, 20), i, 2),
            rps=_pick((5.0, 50.0, 500.0), i, 3),
        ),
        {C},
    ),
    # --- the deploy did it: must roll back ----------------------------------------------------------
    "error-regression": lambda i: (
        _spec(
            "er",
            i,
            effects=[
                E("error_rate", "step", _pick((0, 1, 2, 4, 6), i), _pick((0.03, 0.06, 0.12, 0.4), i, 2)),
            ],
        ),
        {R},
    ),
    "latency-regression": lambda i: (
        _spec(
            "lr",
            i,
            effects=[
                E(
                    "latency_p95_ms",
                    "step",
                    _pick((0, 1, 3, 6), i),
                    _pick((260.0, 320.0, 500.0, 3000.0), i, 2),
                ),
            ],
        ),
        {R},
    ),
    "memory-leak": lambda i: (
        _spec(
            "ml",
            i,
            effects=[
                E("memory_utilization", "ramp", 0, _pick((0.91, 0.95, 0.98), i), _pick((10, 20, 25), i, 2)),
                E("error_rate", "ramp", 10, 0.1, 25),
            ],
            events=[L("ERROR", G.OOM, 10, None, 2.0)],
        ),
        {R},
    ),
    "crash-loop": lambda i: (
        _spec(
            "cl",
            i,
            effects=[E("pod_restarts", "step", 1, _pick((0.4, 0.7, 1.0), i))],
            events=[L("WARN", CRASH, 1, None, 0.3)],
        ),
        {R},
    ),
    "worse-after-deploy-with-own-errors": lambda i: (
        _spec(
            "wo",
            i,
            effects=[
                E("error_rate", "step", -15, 0.04),
                E("error_rate", "step", 1, _pick((0.15, 0.3), i)),
            ],
            events=[
                L("ERROR", G.UPSTREAM, -15, None, 2.0),
                L(
                    "ERROR",
                    "panic: runtime error: slice bounds out of range [:{n}] with capacity 0",
                    1,
                    None,
                    3.0,
                ),
            ],
        ),
        {R},
    ),
    "regression-over-background-upstream-errors": lambda i: (
        _spec(
            "rb",
            i,
            effects=[
                E("error_rate", "step", _pick((0, 2, 4), i), _pick((0.06, 0.2, 0.4), i, 2)),
            ],
            events=[L("ERROR", G.UPSTREAM, -60, None, 0.5)],
        ),
        {R},
    ),
    "worse-after-deploy": lambda i: (
        _spec(
            "wa",
            i,
            effects=[
                E("error_rate", "step", -15, 0.03),
                E("error_rate", "step", 1, _pick((0.15, 0.3), i)),
            ],
        ),
        {R},
    ),
}

FAST = 5
FULL = 30


def _cases(n: int):
    return [pytest.param(fam, i, id=f"{fam}-{i}") for fam in FAMILIES for i in range(n)]


def _check(family: str, i: int) -> None:
    spec, allowed = FAMILIES[family](i)
    decision = analyze_document(G.build(spec))
    if R not in allowed:
        assert decision.verdict is not R, f"false rollback: {decision.reasoning}"
    assert decision.verdict in allowed, decision.reasoning


@pytest.mark.parametrize(("family", "i"), _cases(FAST))
def test_variant(family, i):
    _check(family, i)


@pytest.mark.slow
@pytest.mark.parametrize(("family", "i"), [c for c in _cases(FULL) if c.values[1] >= FAST])
def test_variant_full(family, i):
    _check(family, i)
