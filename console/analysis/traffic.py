"""Requests as counts: errors, slow requests and failed scrapes, per route, before and after a deploy.

Each route (``dimension``) and the whole service get three Bernoulli signals, each an always-valid
test (:mod:`console.analysis.sequential`) of "the rate after the deploy is no higher than the null
rate":

- ``error_rate``: 5xx among the requests; the null rate is the baseline's upper bound raised by the
  error tolerance (``ERROR_RELATIVE`` / ``ERROR_ABSOLUTE``);
- ``latency_p95_ms``: requests slower than ``L``, the first histogram bound at or above the
  baseline's p95 plus the latency tolerance (``LATENCY_RELATIVE`` / ``LATENCY_ABSOLUTE_S``), over the
  whole window's bucket counts; the null rate is 5 % (so that "more than 5 % slower than L" is "p95
  above L"), or the baseline's own upper bound when that is higher;
- ``failed_scrapes``: scrape attempts the target did not answer (Prometheus' ``up``).

Benjamini–Hochberg over every route and signal finds a fault in one route among many. A discovery
is a **regression** when it persists: the rate over the last half of the real scrapes since the
deploy (the tail) is still above the null rate; otherwise it was **transient** (a rollout burst
that ended). One error is not a regression: it never brings the rate over the tolerance.

**A healthy baseline.** The pre-deploy window is no baseline when the process was crash-looping
(``BASELINE_RESTARTS`` restarts), failing (an error ratio whose lower bound is at least
``BASELINE_ERROR_BURST``), when the previous version was already judged bad, or an incident was
open. Then the deploy is compared with the reference the snapshot carries (the last known-good
version's own window, or the service's stated objectives) and the result says which.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from console.analysis.metrics import MetricJudgement
from console.analysis.sequential import (
    adjusted,
    always_valid_p,
    discoveries,
    null_rate,
    strength,
    upper_bound,
)
from console.domain.evidence import (
    CountSeries,
    Evidence,
    HistogramSeries,
    Latency,
    Reference,
    bucket_quantile,
)
from console.domain.models import Classification, Direction, MetricResult

ERROR_RELATIVE, ERROR_ABSOLUTE = 0.50, 0.005
"""An error ratio counts as worse beyond +50 % of the baseline's and +0.5 point (metrics.TOLERANCES)."""
LATENCY_RELATIVE, LATENCY_ABSOLUTE_S = 0.20, 0.020
"""A p95 counts as worse beyond +20 % and +20 ms (metrics.TOLERANCES)."""
TAIL_QUANTILE = 0.05
"""The share of requests above p95."""
SCRAPE_ABSOLUTE = 0.20
"""Failed scrapes count beyond +20 points: a restart's one or two failed scrapes do not."""
MIN_REAL_SAMPLES = 5
"""Real scrapes a side needs before its counts say anything."""
MIN_TAIL_SCRAPES = 5
BASELINE_RESTARTS = 2
ROUTE_SHARE = 0.5
"""Routes found faulty that carry less than this share of the requests are named; more, and the
whole service is reported."""
BASELINE_ERROR_BURST = 0.05
SIGNALS = ("error_rate", "latency_p95_ms", "failed_scrapes")


@dataclass(frozen=True)
class Counts:
    """Events among trials on each side of the deploy, and in the tail."""

    before_events: float = 0.0
    before_trials: float = 0.0
    after_events: float = 0.0
    after_trials: float = 0.0
    tail_events: float = 0.0
    tail_trials: float = 0.0

    @staticmethod
    def ratio(events: float, trials: float) -> float | None:
        return events / trials if trials > 0 else None


@dataclass
class Signal:
    metric: str
    dimension: str
    """"" for the whole service."""
    counts: Counts
    p0: float
    p_value: float
    """Always-valid p-value of the after-deploy counts against ``p0``."""
    level_before: float | None
    level_after: float | None
    level_tail: float | None
    share: float | None = None
    threshold_s: float | None = None
    """``latency_p95_ms``: the bound ``L`` slow requests are counted above."""
    adjusted_p: float = 1.0
    discovered: bool = False
    against: str = "baseline"
    """``baseline`` (the pre-deploy window) or ``reference``."""

    @property
    def persists(self) -> bool:
        tail = Counts.ratio(self.counts.tail_events, self.counts.tail_trials)
        return tail is not None and tail > self.p0

    @property
    def status(self) -> str:
        if not self.discovered:
            return "pass"
        return "regression" if self.persists else "transient"


@dataclass
class Traffic:
    """Everything the counts say about one window."""

    signals: list[Signal] = field(default_factory=list)
    scrapes_before: int = 0
    scrapes_after: int = 0
    requests_before: float = 0.0
    requests_after: float = 0.0
    baseline: str = "the window before the deploy"
    unhealthy: list[str] = field(default_factory=list)
    """Why the pre-deploy window is no baseline (empty when it is one)."""
    reference: Reference | None = None
    """The replacement baseline, when one was used."""
    baseline_signals: list[Signal] = field(default_factory=list)
    """With a reference: the same tests against the (unhealthy) pre-deploy window."""
    missing: list[str] = field(default_factory=list)
    """What is missing for the metrics that matter (empty when there is enough)."""
    notes: list[str] = field(default_factory=list)

    def worst(self, metric: str) -> Signal | None:
        """The signal a metric's result reports: a persisting discovery first, then the smallest
        adjusted p-value; the whole service when nothing stands out."""
        mine = [s for s in self.signals if s.metric == metric]
        if not mine:
            return None
        overall = next((s for s in mine if s.dimension == ""), None)
        routes = [s for s in mine if s.dimension and s.discovered and s.persists]
        if routes and sum(s.share or 0.0 for s in routes) < ROUTE_SHARE:
            return min(routes, key=lambda s: s.adjusted_p)  # a fault of a few routes: name the worst
        ranked = sorted(
            mine, key=lambda s: (not s.discovered, not s.persists, s.dimension != "", s.adjusted_p)
        )
        best = ranked[0]
        if not best.discovered and overall is not None:
            return overall
        return best


# -- splitting the counts at the deploy -----------------------------------------------------------------


def scrape_times(evidence: Evidence) -> list[float]:
    """The real scrapes of the request counters (Prometheus' ``up`` when it has none)."""
    times = sorted({t for s in evidence.requests for t in s.times})
    return times or sorted(evidence.scrapes_up)


def tail_start(after: Sequence[float]) -> float:
    """The first scrape of the tail: the last half of the scrapes since the deploy (at least
    ``MIN_TAIL_SCRAPES``)."""
    if not after:
        return float("inf")
    k = min(len(after), max(MIN_TAIL_SCRAPES, (len(after) + 1) // 2))
    return after[-k]


@dataclass(frozen=True)
class Split:
    deployed_at: float
    tail_from: float
    end: float

    def sides(self, times: Sequence[float], values: Sequence[float]) -> tuple[float, float, float]:
        """(before, after, tail) sums."""
        t = np.asarray(times, dtype=float)
        v = np.asarray(values, dtype=float)
        before = float(v[t <= self.deployed_at].sum())
        after_mask = (t > self.deployed_at) & (t <= self.end)
        return before, float(v[after_mask].sum()), float(v[after_mask & (t >= self.tail_from)].sum())


def _errors(series: Sequence[CountSeries], split: Split, dimension: str | None) -> Counts:
    total = [0.0, 0.0, 0.0]
    bad = [0.0, 0.0, 0.0]
    for s in series:
        if dimension is not None and s.dimension != dimension:
            continue
        sides = split.sides(s.times, s.counts)
        total = [a + b for a, b in zip(total, sides, strict=True)]
        if s.status == "5xx":
            bad = [a + b for a, b in zip(bad, sides, strict=True)]
    return Counts(bad[0], total[0], bad[1], total[1], bad[2], total[2])


def _buckets(
    latency: Latency, split: Split, dimension: str | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bucket counts (before, after, tail) of one route (None: all routes)."""
    width = len(latency.bounds) + 1
    sides = [np.zeros(width), np.zeros(width), np.zeros(width)]
    for h in latency.series:
        if dimension is not None and h.dimension != dimension:
            continue
        if not h.times:
            continue
        t = np.asarray(h.times)
        rows = np.asarray(h.counts, dtype=float).reshape(len(h.times), width)
        after = (t > split.deployed_at) & (t <= split.end)
        sides[0] += rows[t <= split.deployed_at].sum(axis=0)
        sides[1] += rows[after].sum(axis=0)
        sides[2] += rows[after & (t >= split.tail_from)].sum(axis=0)
    return sides[0], sides[1], sides[2]


def _slow_threshold(bounds: Sequence[float], base: np.ndarray, objective_s: float | None) -> int | None:
    """Index of the bucket bound ``L`` requests are counted slow above: the first bound at or above
    the baseline p95 plus the tolerance (or the stated objective); None when there is none."""
    if objective_s is not None:
        target = objective_s
    else:
        p95 = bucket_quantile(bounds, base, 1.0 - TAIL_QUANTILE)
        if p95 is None:
            return None
        target = max(p95 * (1.0 + LATENCY_RELATIVE), p95 + LATENCY_ABSOLUTE_S)
    for i, bound in enumerate(bounds):
        if bound >= target - 1e-12:
            return i
    return None


# -- the tests ------------------------------------------------------------------------------------------


def _error_signal(counts: Counts, dimension: str, alpha: float, objective: float | None) -> Signal:
    if objective is not None:
        p0 = objective
    else:
        p0 = null_rate(
            counts.before_events,
            counts.before_trials,
            alpha / 2,
            relative=ERROR_RELATIVE,
            absolute=ERROR_ABSOLUTE,
        )
    return Signal(
        "error_rate",
        dimension,
        counts,
        p0,
        always_valid_p(counts.after_events, counts.after_trials, p0),
        Counts.ratio(counts.before_events, counts.before_trials),
        Counts.ratio(counts.after_events, counts.after_trials),
        Counts.ratio(counts.tail_events, counts.tail_trials),
    )


def _latency_signal(
    latency: Latency,
    sides: tuple[np.ndarray, np.ndarray, np.ndarray],
    dimension: str,
    alpha: float,
    objective_s: float | None,
) -> Signal | None:
    base, after, tail = sides
    index = _slow_threshold(latency.bounds, base, objective_s)
    if index is None or after.sum() <= 0:
        return None
    slow = slice(index + 1, None)
    counts = Counts(
        float(base[slow].sum()), float(base.sum()), float(after[slow].sum()), float(after.sum()),
        float(tail[slow].sum()), float(tail.sum()),
    )  # fmt: skip
    p0 = (
        TAIL_QUANTILE
        if objective_s is not None
        else max(TAIL_QUANTILE, upper_bound(counts.before_events, counts.before_trials, alpha / 2))
    )
    bounds = latency.bounds
    return Signal(
        "latency_p95_ms",
        dimension,
        counts,
        p0,
        always_valid_p(counts.after_events, counts.after_trials, p0),
        bucket_quantile(bounds, base, 0.95),
        bucket_quantile(bounds, after, 0.95),
        bucket_quantile(bounds, tail, 0.95),
        threshold_s=float(bounds[index]),
    )


def _scrape_signal(evidence: Evidence, split: Split, alpha: float) -> Signal | None:
    up, down = evidence.scrapes_up, evidence.scrapes_down
    if not down:
        return None
    times = list(up) + list(down)
    failed = [0.0] * len(up) + [1.0] * len(down)
    before_f, after_f, tail_f = split.sides(times, failed)
    before_n, after_n, tail_n = split.sides(times, [1.0] * len(times))
    counts = Counts(before_f, before_n, after_f, after_n, tail_f, tail_n)
    p0 = null_rate(before_f, before_n, alpha / 2, relative=ERROR_RELATIVE, absolute=SCRAPE_ABSOLUTE)
    return Signal(
        "failed_scrapes", "", counts, p0, always_valid_p(after_f, after_n, p0),
        Counts.ratio(before_f, before_n), Counts.ratio(after_f, after_n), Counts.ratio(tail_f, tail_n),
    )  # fmt: skip


def _dimensions(evidence: Evidence) -> list[str]:
    names = {s.dimension for s in evidence.requests} | {h.dimension for h in evidence.latency.series}
    return sorted(names)


def _signals(
    evidence: Evidence,
    requests: Sequence[CountSeries],
    latency: Latency,
    split: Split,
    alpha: float,
    objectives: tuple[float | None, float | None] = (None, None),
) -> list[Signal]:
    """Every route's signals and the whole service's (once, when there is one route). A route with
    no request before the deploy (new at it) is compared with the whole service's baseline."""
    dims = _dimensions(evidence)
    scopes: list[str | None] = [None] + ([d for d in dims] if len(dims) > 1 else [])
    has_status = any(s.status != "other" for s in requests)
    out = []
    after_total = sum(split.sides(s.times, s.counts)[1] for s in evidence.requests)
    whole_errors = _errors(requests, split, None)
    whole_buckets = _buckets(latency, split, None) if latency.series else None
    for scope in scopes:
        name = "" if scope is None else scope
        if has_status:
            counts = _errors(requests, split, scope)
            if counts.before_trials <= 0:
                counts = replace(
                    counts, before_events=whole_errors.before_events, before_trials=whole_errors.before_trials
                )
            if counts.after_trials > 0:
                signal = _error_signal(counts, name, alpha, objectives[0])
                signal.share = counts.after_trials / after_total if after_total else None
                out.append(signal)
        if whole_buckets is not None:
            sides = _buckets(latency, split, scope)
            if sides[0].sum() <= 0:
                sides = (whole_buckets[0], sides[1], sides[2])
            signal = _latency_signal(latency, sides, name, alpha, objectives[1])
            if signal is not None:
                signal.share = float(sides[1].sum() / max(whole_buckets[1].sum(), 1.0))
                out.append(signal)
    return out


def new_routes(evidence: Evidence, split: Split) -> list[str]:
    """Routes with requests after the deploy and none before it (a label set that changed with it)."""
    before: dict[str, float] = {}
    after: dict[str, float] = {}
    for s in evidence.requests:
        b, a, _ = split.sides(s.times, s.counts)
        before[s.dimension] = before.get(s.dimension, 0.0) + b
        after[s.dimension] = after.get(s.dimension, 0.0) + a
    return sorted(d for d in after if d and after[d] > 0 and before.get(d, 0.0) <= 0)


def _decide_family(signals: list[Signal], alpha: float) -> None:
    """Benjamini–Hochberg over every route and signal, at the half of ``alpha`` the baseline's
    bounds do not spend (:mod:`console.analysis.sequential`)."""
    found = discoveries([s.p_value for s in signals], alpha / 2)
    for s, flag, adj in zip(signals, found, adjusted([s.p_value for s in signals]), strict=True):
        s.discovered, s.adjusted_p = flag, adj


# -- the baseline's health ------------------------------------------------------------------------------


def unhealthy_baseline(evidence: Evidence, split: Split, version: str, previous: str | None) -> list[str]:
    """Why the window before the deploy is no baseline (empty: it is one)."""
    reasons = []
    restarts = [t for t in evidence.restarts if t <= split.deployed_at]
    if len(restarts) >= BASELINE_RESTARTS:
        reasons.append(f"the previous version restarted {len(restarts)} times in it (a crash loop)")
    counts = _errors(evidence.requests, split, None)
    if counts.before_trials > 0:
        low = 1.0 - upper_bound(counts.before_trials - counts.before_events, counts.before_trials, 0.005)
        if low >= BASELINE_ERROR_BURST:
            ratio = counts.before_events / counts.before_trials
            reasons.append(f"{ratio:.1%} of its requests failed (5xx)")
    history = evidence.history
    if previous and previous in history.bad_versions and previous != version:
        reasons.append(f"the previous version {previous} was already judged bad")
    if history.open_incident:
        reasons.append(f"an incident was open: {history.open_incident}")
    return reasons


def judge_traffic(
    evidence: Evidence, deployed_at: float, end: float, *, alpha: float, version: str, previous: str | None
) -> Traffic:
    """The count tests of one window (see the module docstring)."""
    scrapes = scrape_times(evidence)
    after = [t for t in scrapes if deployed_at < t <= end]
    split = Split(deployed_at, tail_start(after), end)
    out = Traffic(scrapes_before=sum(t <= deployed_at for t in scrapes), scrapes_after=len(after))
    totals = _errors(evidence.requests, split, None)
    out.requests_before, out.requests_after = totals.before_trials, totals.after_trials
    out.missing = _missing(evidence, out)
    out.unhealthy = unhealthy_baseline(evidence, split, version, previous)
    fresh = new_routes(evidence, split) if out.scrapes_before else []
    if fresh:
        out.notes.append(
            f"route{'s' if len(fresh) > 1 else ''} {', '.join(fresh)} had no request before the deploy "
            "(new with it): compared with the whole service's baseline"
        )
    signals = _signals(evidence, evidence.requests, evidence.latency, split, alpha)
    scrape = _scrape_signal(evidence, split, alpha)
    if scrape is not None:
        signals.append(scrape)
    _decide_family(signals, alpha)
    out.signals = signals
    if out.unhealthy:
        _against_reference(evidence, split, alpha, out)
    return out


def _missing(evidence: Evidence, out: Traffic) -> list[str]:
    missing = []
    if not evidence.requests and not evidence.latency.series:
        missing.append("no request counts (the selector matches none of the profile's request series)")
        return missing
    if out.scrapes_after < MIN_REAL_SAMPLES:
        missing.append(
            f"{out.scrapes_after} real scrapes of the request counters since the deploy "
            f"(need {MIN_REAL_SAMPLES})"
        )
    if out.scrapes_before < MIN_REAL_SAMPLES and not evidence.reference:
        missing.append(f"{out.scrapes_before} real scrapes before the deploy (need {MIN_REAL_SAMPLES})")
    if out.scrapes_after >= MIN_REAL_SAMPLES and out.requests_after <= 0:
        missing.append("no request reached the service since the deploy")
    return missing


def _against_reference(evidence: Evidence, split: Split, alpha: float, out: Traffic) -> None:
    """Compare the deploy with the reference instead of the unhealthy window before it."""
    reference = evidence.reference
    objectives = evidence.objectives
    if reference is None and not objectives.empty:
        reference = Reference("objectives", "the service's stated objectives", objectives=objectives)
    out.baseline_signals = out.signals
    if reference is None:
        out.baseline = (
            "none: the window before the deploy is unhealthy and there is no known-good version or objectives"
        )
        for signal in out.signals:  # worse or better than a broken window means nothing
            signal.discovered = False
        return
    out.reference = reference
    out.baseline = reference.label
    if reference.kind == "objectives":
        target = reference.objectives
        latency_s = target.latency_p95_ms / 1000.0 if target.latency_p95_ms else None
        out.signals = _signals(
            evidence, evidence.requests, evidence.latency, split, alpha, (target.error_ratio, latency_s)
        )
    else:
        out.signals = _signals_vs_reference(evidence, reference, split, alpha)
    for s in out.signals:
        s.against = "reference"
    _decide_family(out.signals, alpha)


def _shifted(series: Sequence[CountSeries], before_at: float) -> list[CountSeries]:
    """The reference's counts moved before the deploy (they are its baseline side)."""
    return [CountSeries(s.dimension, s.status, tuple(before_at for _ in s.times), s.counts) for s in series]


def _signals_vs_reference(
    evidence: Evidence, reference: Reference, split: Split, alpha: float
) -> list[Signal]:
    """The deploy's counts after it against the known-good version's window (as the "before" side)."""
    at = split.deployed_at
    after_requests = [
        CountSeries(
            s.dimension,
            s.status,
            tuple(t for t in s.times if t > at),
            tuple(c for t, c in zip(s.times, s.counts, strict=True) if t > at),
        )
        for s in evidence.requests
    ]
    requests = _shifted(reference.requests, at) + after_requests
    latency = evidence.latency
    if reference.latency.series and reference.latency.bounds == evidence.latency.bounds:
        latency = Latency(
            evidence.latency.bounds,
            tuple(
                HistogramSeries(h.dimension, tuple(at for _ in h.times), h.counts)
                for h in reference.latency.series
            )
            + tuple(
                HistogramSeries(
                    h.dimension,
                    tuple(t for t in h.times if t > at),
                    tuple(c for t, c in zip(h.times, h.counts, strict=True) if t > at),
                )
                for h in evidence.latency.series
            ),
        )
    return _signals(evidence, requests, latency, split, alpha)


# -- what the verdict reads -------------------------------------------------------------------------------


def signal_strength(signal: Signal, alpha: float) -> float:
    return strength(signal.adjusted_p, alpha) if signal.discovered else 0.0


def describe(signal: Signal) -> str:
    """One line: where, the numbers, the test."""
    where = "the whole service" if not signal.dimension else f"{signal.dimension}"
    share = f" ({signal.share:.0%} of the requests)" if signal.share is not None and signal.dimension else ""
    c = signal.counts
    if signal.metric == "latency_p95_ms":
        bound = f"{signal.threshold_s * 1000:g} ms" if signal.threshold_s is not None else "the bound"
        numbers = (
            f"p95 {_ms(signal.level_before)} → {_ms(signal.level_after)}; slower than {bound}: "
            f"{c.before_events:.0f} of {c.before_trials:.0f} requests before, "
            f"{c.after_events:.0f} of {c.after_trials:.0f} after"
        )
    else:
        what = "5xx" if signal.metric == "error_rate" else "failed scrapes"
        numbers = (
            f"{what} {_pct(signal.level_before)} → {_pct(signal.level_after)} "
            f"({c.before_events:.0f} of {c.before_trials:.0f} before, "
            f"{c.after_events:.0f} of {c.after_trials:.0f} after)"
        )
    against = " against the reference" if signal.against == "reference" else ""
    test = f"always-valid p={signal.p_value:.2g}, BH-adjusted {signal.adjusted_p:.2g}{against}"
    return f"{where}{share}: {numbers}; {test}"


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.1f}%"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 1000:.0f} ms"


def _judgement(traffic: Traffic, metric: str, alpha: float) -> MetricJudgement | None:
    """One metric's result from its signals: the reported signal's numbers, the whole service's
    before/tail levels (the hard guards read those), the real scrapes it rests on."""
    shown = traffic.worst(metric)
    if shown is None:
        return None
    overall = next((s for s in traffic.signals if s.metric == metric and s.dimension == ""), shown)
    status = shown.status
    if status == "regression" and shown.against == "reference":
        status = _status_against_reference(traffic, shown)
    scale = 1000.0 if metric == "latency_p95_ms" else 1.0
    higher = (shown.level_after or 0.0) > (shown.level_before or 0.0)
    classification = Classification.PASS
    if status in ("regression", "preexisting"):
        classification = Classification.HIGH if higher else Classification.LOW
    reason = _reason(traffic, shown, status)
    result = MetricResult(
        name=metric,
        classification=classification,
        direction=Direction.INCREASE,
        baseline_median=_scaled(shown.level_before, scale),
        after_median=_scaled(shown.level_after, scale),
        p_value=round(shown.adjusted_p, 8),
        effect_size=round(_difference(shown), 4),
        reason=reason,
        baseline_points=traffic.scrapes_before,
        after_points=traffic.scrapes_after,
        basis="counts",
        dimension=shown.dimension or None,
        share=round(shown.share, 4) if shown.share is not None and shown.dimension else None,
    )
    strength_ = signal_strength(shown, alpha) if status in ("regression", "transient", "preexisting") else 0.0
    return MetricJudgement(
        result=result,
        status=status,
        baseline_level=_scaled(overall.level_before, scale),
        tail_level=_scaled(overall.level_tail, scale),
        strength=strength_,
        after_sum=overall.counts.after_events,
        tail_sum=overall.counts.tail_events,
        baseline_mean=_scaled(overall.level_before, scale) or 0.0,
        after_points=traffic.scrapes_after,
        last_level=_scaled(overall.level_tail, scale),
    )


def _status_against_reference(traffic: Traffic, shown: Signal) -> str:
    """Worse than the reference but not worse than the (unhealthy) window before the deploy: the
    problem was there before it."""
    before = next(
        (s for s in traffic.baseline_signals if s.metric == shown.metric and s.dimension == shown.dimension),
        None,
    )
    if before is not None and not before.discovered:
        return "preexisting"
    return "regression"


def _reason(traffic: Traffic, shown: Signal, status: str) -> str:
    scrapes = f"{traffic.scrapes_after} real scrapes since the deploy"
    against = f"; baseline: {traffic.baseline}" if traffic.reference is not None else ""
    head = {
        "regression": "regressed and persists",
        "transient": "rose after the deploy but recovered by the end of the window",
        "preexisting": "worse than the reference, as it already was before the deploy",
        "pass": "no meaningful change",
    }.get(status, status)
    return f"{head}: {describe(shown)} ({scrapes}){against}"


def _scaled(value: float | None, scale: float) -> float | None:
    return None if value is None else value * scale


def _difference(signal: Signal) -> float:
    a = Counts.ratio(signal.counts.after_events, signal.counts.after_trials) or 0.0
    b = Counts.ratio(signal.counts.before_events, signal.counts.before_trials) or 0.0
    return a - b


def traffic_judgements(traffic: Traffic, alpha: float) -> list[MetricJudgement]:
    """The metrics the counts judge, as the verdict reads them."""
    out = []
    for metric in SIGNALS:
        judged = _judgement(traffic, metric, alpha)
        if judged is not None:
            out.append(judged)
    return out


def counted_metrics(traffic: Traffic) -> set[str]:
    """Canonical metrics the counts judge (their points are for the charts only)."""
    return {s.metric for s in traffic.signals} | {s.metric for s in traffic.baseline_signals}
