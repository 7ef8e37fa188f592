"""Synthetic live windows with counts, as the Prometheus source builds them from raw samples: per
route, requests and 5xx per scrape (Poisson traffic, binomial errors), latency bucket counts
(prometheus_client's default buckets, log-normal request times), optional memory samples, restarts
and gaps (scrapes that did not happen: their requests land in the next scrape, as counters do).
The canonical metrics are computed by the source's own ``derived_points``.

    doc = count_window(lambda t, route: Behaviour(error=0.3 if t > 0 and route == "/b" else 0.0))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np

from console.domain.evidence import (
    CountSeries,
    Evidence,
    GaugeSeries,
    HistogramSeries,
    History,
    Latency,
    Objectives,
    Reference,
)
from console.telemetry.counts import derived_points
from console.telemetry.times import format_ts

DEPLOYED_AT = datetime(2026, 11, 29, 17, 0, tzinfo=UTC).timestamp()
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0)
ROUTES = ("/api/items", "/api/cart", "/api/checkout", "/api/search", "/api/user")
MB = 1024 * 1024


@dataclass(frozen=True)
class Behaviour:
    """What one route does at one moment."""

    error: float = 0.0
    latency_ms: float = 40.0


def healthy(_t: float, _route: str) -> Behaviour:
    return Behaviour()


def _buckets(rng: np.random.Generator, n: int, latency_ms: float) -> list[float]:
    if n <= 0:
        return [0.0] * (len(BUCKETS) + 1)
    seconds = rng.lognormal(math.log(latency_ms / 1000.0), 0.25, size=n)
    index = np.searchsorted(np.asarray(BUCKETS), seconds, side="left")
    return [float(c) for c in np.bincount(index, minlength=len(BUCKETS) + 1)]


@dataclass
class Window:
    doc: dict
    evidence: Evidence


def count_window(
    behaviour: Callable[[float, str], Behaviour] = healthy,
    *,
    rps: float = 20.0,
    routes: Sequence[str] = ROUTES,
    shares: Sequence[float] | None = None,
    baseline_s: float = 30.0,
    after_s: float = 45.0,
    scrape_s: float = 1.0,
    seed: int = 0,
    gaps: Sequence[tuple[float, float]] = (),
    memory: Callable[[float], float] | None = None,
    memory_limit: float | None = 256 * MB,
    restarts: Sequence[float] = (),
    history: History | None = None,
    reference: Reference | None = None,
    objectives: Objectives | None = None,
    version: str = "v2",
    previous: str | None = "v1",
) -> Window:
    """A window from ``-baseline_s`` to ``+after_s`` around ``DEPLOYED_AT`` (seconds relative to it)."""
    rng = np.random.default_rng(seed)
    shares = list(shares) if shares is not None else [1.0 / len(routes)] * len(routes)
    pending = {r: [0.0, 0.0, [0.0] * (len(BUCKETS) + 1)] for r in routes}
    requests: dict[tuple[str, str], tuple[list[float], list[float]]] = {}
    latency: dict[str, tuple[list[float], list[tuple[float, ...]]]] = {r: ([], []) for r in routes}
    mem_t: list[float] = []
    mem_v: list[float] = []
    t = -baseline_s
    while t <= after_s + 1e-9:
        for route, share in zip(routes, shares, strict=True):
            b = behaviour(t, route)
            n = int(rng.poisson(rps * share * scrape_s))
            errors = int(rng.binomial(n, min(max(b.error, 0.0), 1.0)))
            acc = pending[route]
            acc[0] += n
            acc[1] += errors
            acc[2] = [a + c for a, c in zip(acc[2], _buckets(rng, n, b.latency_ms), strict=True)]
        if not any(lo <= t < hi for lo, hi in gaps):
            at = DEPLOYED_AT + t
            for route in routes:
                n, errors, buckets = pending[route]
                for status, count in (("2xx", n - errors), ("5xx", errors)):
                    times, counts = requests.setdefault((route, status), ([], []))
                    times.append(at)
                    counts.append(float(count))
                latency[route][0].append(at)
                latency[route][1].append(tuple(buckets))
                pending[route] = [0.0, 0.0, [0.0] * (len(BUCKETS) + 1)]
            if memory is not None:
                mem_t.append(at)
                mem_v.append(memory(t))
        t = round(t + scrape_s, 6)
    evidence = Evidence(
        profile="python",
        scrape_interval_s=scrape_s,
        dimension_label="handler" if len(routes) > 1 else None,
        status_label="code",
        requests=tuple(
            CountSeries(r if len(routes) > 1 else "", s, tuple(ts), tuple(cs))
            for (r, s), (ts, cs) in sorted(requests.items())
        ),
        latency=Latency(
            BUCKETS,
            tuple(
                HistogramSeries(r if len(routes) > 1 else "", tuple(ts), tuple(cs))
                for r, (ts, cs) in sorted(latency.items())
            ),
        ),
        gauges=(GaugeSeries("memory", "i-1", tuple(mem_t), tuple(mem_v), memory_limit),) if memory else (),
        restarts=tuple(DEPLOYED_AT + r for r in restarts),
        history=history or History(),
        reference=reference,
        objectives=objectives or Objectives(),
    )
    start, end = DEPLOYED_AT - baseline_s - scrape_s, DEPLOYED_AT + after_s
    points = derived_points(
        requests=evidence.requests, latency=evidence.latency, gauges_=evidence.gauges, cpu={},
        restarts=list(evidence.restarts), scrapes=sorted({t for s in evidence.requests for t in s.times}),
        start=start, end=end, step=scrape_s,
    )  # fmt: skip
    doc = {
        "deployment": {
            "id": f"d-{seed}",
            "service": "shop-api",
            "version": version,
            "previous_version": previous,
            "environment": "test",
            "deployed_at": format_ts(DEPLOYED_AT),
            "deployed_by": "alice",
        },
        "metrics": {name: [[format_ts(t), v] for t, v in pts] for name, pts in points.items()},
        "logs": [],
        "evidence": evidence.to_dict(),
    }
    return Window(doc, evidence)
