"""Per-metric canary judge: baseline (before the deploy) against the verification window (after).

Kayenta is the reference: a two-sided Mann-Whitney U test per metric, an effect size (Cliff's delta,
derived from U), a direction per metric, and a tolerance so that a tiny but "significant" shift on a
long window still passes (Kayenta's allowed-increase/critical thresholds). On top of Kayenta, the
judge attributes a shift to the deploy or not:

* persistence: the verdict is taken on the *tail* of the verification window (its last half); a blip
  right after the deploy that has recovered by then is "transient", not a regression;
* onset: a single change point (least squares split) is searched in the baseline; when the shift
  started before ``deployed_at`` the metric is "preexisting" unless the tail is significantly worse
  than the already-degraded level before the deploy;
* direction: an improvement is never a regression.

Every threshold is a named constant below, in one place.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from console.domain.models import Classification, Direction, MetricResult

# --- thresholds (one place) -------------------------------------------------------------------------

ALPHA = 0.01
"""Mann-Whitney two-sided p-value under which a shift is significant."""
MIN_EFFECT = 0.33
"""|Cliff's delta| a shift needs to count (0.33 is a "medium" effect, Romano et al. 2006)."""
MIN_BASELINE_POINTS = 5
MIN_AFTER_POINTS = 5
TAIL_FRACTION = 0.5
"""The verdict is taken on the last half of the verification window ..."""
MIN_TAIL_POINTS = 5
"""... and on at least this many points."""
MAX_TEST_POINTS = 2000
"""Longer samples are thinned by an even stride before the U test: U is O(n log n) but p-values on
10k points flag every negligible shift anyway; the tolerance below does the rest."""
ONSET_MIN_SECONDS = 120.0
"""... and at least this long before it (a rollout starts a little before its recorded time) ..."""
ONSET_MIN_BASELINE_FRACTION = 0.25
"""... or this fraction of the baseline, when that is shorter: a live baseline of seconds (1 s
scrapes, e.g. 15 s) can never hold a two-minute lead, so there a shift 4 s before the deploy is
already before it. With a baseline of 8 minutes or more nothing changes."""
TREND_ALPHA = 0.10
"""Significance of a pre-deploy trend; looser than ALPHA because it can only *prevent* a rollback."""
TREND_MIN_POINTS = 5
"""Pre-deploy points needed to extrapolate a pre-deploy trend past the deploy."""
ONSET_MIN_POINTS = 3
"""A change point counts as "before the deploy" only with at least this many degraded points before it."""

# Hard guards: any guard that fires forces ROLLBACK (see verdict.py).
ERROR_RATE_GUARD = 0.20
"""Error rate (fraction) in the tail of the verification window at or above this ..."""
ERROR_RATE_GUARD_FACTOR = 3.0
"""... and at least this many times the baseline ..."""
ERROR_RATE_GUARD_MIN_RISE = 0.10
"""... and at least this far above it (absolute)."""
MEMORY_GUARD = 0.90
"""Memory utilization (fraction of the limit) in the tail at or above this ..."""
MEMORY_GUARD_MIN_RISE = 0.03
"""... and at least this far above the baseline median."""
CRASH_LOOP_RESTARTS = 3
"""Restarts in the verification window at or above this, still restarting in the tail, far above the
baseline rate: a crash loop."""

LAST_POINTS = 5
"""Points at the very end of the window that say where a climbing metric is now."""
ABSOLUTE_MIN_POINTS = 3
"""Verification points a metric without a baseline needs before its absolute level is looked at."""

LOW_TRAFFIC_RPS = 1.0
"""Median requests/s after the deploy under this: ratios (error_rate) are weak evidence."""


@dataclass(frozen=True)
class Level:
    """How strong a shift must be to count: the significance ``alpha`` of the tests and the minimum
    ``|Cliff's delta|``. :data:`NORMAL` is the verdict's; a stricter level (smaller alpha, larger
    effect) is how the live loop asks whether the evidence is already conclusive before the end of
    its verification window (console/loop/verification.py)."""

    alpha: float = ALPHA
    min_effect: float = MIN_EFFECT


NORMAL = Level()


def onset_min_seconds(baseline_s: float) -> float:
    """How long before the deploy a shift must start to count as before it, for a baseline this long
    (the snapshot's time scale): ``ONSET_MIN_SECONDS``, shrunk for baselines of seconds."""
    return min(ONSET_MIN_SECONDS, ONSET_MIN_BASELINE_FRACTION * max(baseline_s, 0.0))


def ago_text(seconds: float) -> str:
    """A distance in time as an operator reads it: "14 min", or "6 s" under two minutes."""
    seconds = abs(seconds)
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


KNOWN_DIRECTIONS: dict[str, Direction] = {
    "error_rate": Direction.INCREASE,
    "latency_p95_ms": Direction.INCREASE,
    "cpu_utilization": Direction.INCREASE,
    "memory_utilization": Direction.INCREASE,
    "pod_restarts": Direction.INCREASE,
    "requests_per_second": Direction.DECREASE,
}

# (relative tolerance, absolute tolerance): a shift must exceed both to count.
TOLERANCES: dict[str, tuple[float, float]] = {
    "error_rate": (0.50, 0.005),
    "latency_p95_ms": (0.20, 20.0),
    "cpu_utilization": (0.25, 0.05),
    "memory_utilization": (0.10, 0.05),
    "pod_restarts": (0.0, 0.1),
    "requests_per_second": (0.30, 0.5),
}
DEFAULT_TOLERANCE = (0.25, 0.0)

MEAN_METRICS = frozenset({"pod_restarts"})
"""Sparse counts: compared by their mean (the median of mostly zeros says nothing)."""

UNITS: dict[str, str] = {
    "error_rate": "percent",
    "cpu_utilization": "percent",
    "memory_utilization": "percent",
    "latency_p95_ms": "ms",
    "pod_restarts": "count",
    "requests_per_second": "rps",
}


def direction_of(name: str) -> Direction:
    return KNOWN_DIRECTIONS.get(name, Direction.EITHER)


def format_value(name: str, value: float | None) -> str:
    """A metric value as an operator reads it (35.2%, 480 ms, 121.5 req/s, 0.50 per sample)."""
    if value is None or not math.isfinite(value):
        return "n/a"
    unit = UNITS.get(name) or ("ms" if name.endswith("_ms") else None)  # db_query_p95_ms: ms too
    if unit == "percent":
        return f"{value * 100:.1f}%"
    if unit == "ms":
        return f"{value:.0f} ms"
    if unit == "count":  # a sparse count is judged by its mean per sample: said so, never "/interval"
        return f"{value:.2f} per sample"
    if unit == "rps":
        return f"{value:.1f} req/s"
    return f"{value:.4g}"


# --- statistics -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Comparison:
    """One sample (``test``) against a reference (``ref``)."""

    p_value: float
    delta: float
    """Cliff's delta of test vs ref in [-1, 1]: P(test > ref) - P(test < ref)."""
    ref_level: float
    test_level: float
    sign: int
    """+1 / -1 when the shift is significant, large enough and beyond tolerance; else 0."""
    excess: float
    """|test_level - ref_level| divided by the tolerance (>= 1 when beyond tolerance)."""


def _thin(values: np.ndarray) -> np.ndarray:
    if values.size <= MAX_TEST_POINTS:
        return values
    stride = math.ceil(values.size / MAX_TEST_POINTS)
    return values[::stride]


def _level(name: str, values: np.ndarray) -> float:
    return float(values.mean() if name in MEAN_METRICS else np.median(values))


def tolerance(name: str, ref_level: float) -> float:
    rel, absolute = TOLERANCES.get(name, DEFAULT_TOLERANCE)
    tol = max(rel * abs(ref_level), absolute)
    return tol if tol > 0 else 1e-12


def _count_p_value(ref: np.ndarray, test: np.ndarray) -> float | None:
    """Two-sided exact test that two windows of event counts share one Poisson rate: given the total,
    the test window's share is binomial with p = its share of the time. None for values that are not
    counts (negative), where the rank test stands."""
    if ref.size == 0 or test.size == 0 or min(float(ref.min()), float(test.min())) < 0:
        return None
    k_test, k_ref = round(float(test.sum())), round(float(ref.sum()))
    if k_test + k_ref == 0:
        return 1.0
    from scipy.stats import binomtest  # imported when first used (console/analysis/__init__.py)

    return float(binomtest(k_test, k_test + k_ref, test.size / (test.size + ref.size)).pvalue)


def rank_sum_test(test: np.ndarray, ref: np.ndarray) -> tuple[float, float]:
    """Mann-Whitney U of ``test`` against ``ref`` and its two-sided p-value by the normal
    approximation, with the tie correction and the continuity correction: the numbers
    ``scipy.stats.mannwhitneyu(test, ref, method="asymptotic")`` gives (a test holds the two
    equal). Counted here because scipy's axis and NaN-policy wrapper costs about a millisecond a
    call, more than the test itself, and one analysis makes some twenty calls.

    U counts the pairs where the test value is larger, a tie as one half."""
    n1, n2 = test.size, ref.size
    ordered = np.sort(ref)
    below = np.searchsorted(ordered, test, side="left")
    at_or_below = np.searchsorted(ordered, test, side="right")
    u = float(below.sum() + (at_or_below - below).sum() / 2.0)
    _, ties = np.unique(np.concatenate([test, ref]), return_counts=True)
    ties = ties.astype(float)
    n = n1 + n2
    spread = math.sqrt(n1 * n2 / 12.0 * ((n + 1) - float((ties**3 - ties).sum()) / (n * (n - 1))))
    if spread == 0:
        return u, 1.0
    z = (max(u, n1 * n2 - u) - n1 * n2 / 2.0 - 0.5) / spread
    return u, min(1.0, math.erfc(z / math.sqrt(2.0)))


def compare(name: str, ref: np.ndarray, test: np.ndarray, level: Level = NORMAL) -> Comparison:
    """Mann-Whitney U (Cliff's delta from U) of ``test`` against ``ref``; for sparse event counts
    (``MEAN_METRICS``) significance comes from an exact Poisson-rate test instead, because a handful
    of restarts among zeros is a tiny rank effect but a certain change."""
    ref_level, test_level = _level(name, ref), _level(name, test)
    a, b = _thin(test), _thin(ref)
    if np.ptp(np.concatenate([a, b])) == 0:
        p_value, delta = 1.0, 0.0
    else:
        u, p_value = rank_sum_test(a, b)
        delta = 2.0 * u / (a.size * b.size) - 1.0  # U counts ties as 1/2: this is Cliff's delta
    diff = test_level - ref_level
    excess = abs(diff) / tolerance(name, ref_level)
    sign = 0
    count_p = _count_p_value(ref, test) if name in MEAN_METRICS else None
    if count_p is not None:
        p_value = count_p
        if p_value < level.alpha and excess >= 1.0 and diff * delta > 0:
            sign = 1 if diff > 0 else -1
    elif p_value < level.alpha and abs(delta) >= level.min_effect and excess >= 1.0 and diff * delta > 0:
        sign = 1 if diff > 0 else -1
    return Comparison(p_value, delta, ref_level, test_level, sign, excess)


def is_bad(direction: Direction, sign: int) -> bool:
    if direction is Direction.INCREASE:
        return sign > 0
    if direction is Direction.DECREASE:
        return sign < 0
    return sign != 0


def change_point(values: np.ndarray, min_size: int = ONSET_MIN_POINTS) -> int | None:
    """Index of the best single mean-shift split (least squares), or None for too short a series."""
    n = values.size
    if n < 2 * min_size:
        return None
    x = values - values.mean()
    csum = np.cumsum(x)
    k = np.arange(1, n)
    # between-segment sum of squares for a split after k points: S_k^2 * n / (k (n - k))
    gain = csum[:-1] ** 2 * n / (k * (n - k))
    gain[: min_size - 1] = -1.0
    gain[n - min_size :] = -1.0
    return int(np.argmax(gain)) + 1


def _trend_explains(
    name: str,
    direction: Direction,
    pre_t: np.ndarray,
    pre: np.ndarray,
    tail_t: np.ndarray,
    tail: np.ndarray,
    early: np.ndarray,
) -> float | None:
    """The tail level the pre-deploy trend predicts, if the tail is no worse than that; else None.

    A degradation that was already ramping before the deploy and simply continues on the same
    slope is not the deploy's doing. Needs a significant slope (linear regression, p < TREND_ALPHA) in
    the bad direction over at least ``TREND_MIN_POINTS`` pre-deploy points."""
    if pre.size < TREND_MIN_POINTS or np.ptp(pre) == 0:
        return None
    from scipy.stats import linregress  # imported when first used (console/analysis/__init__.py)

    fit = linregress(pre_t - pre_t[0], pre)
    slope_sign = 1 if fit.slope > 0 else -1
    if fit.pvalue >= TREND_ALPHA or not is_bad(direction, slope_sign):
        return None
    # the steep end of the slope's ~95% interval: a short noisy pre-deploy stretch underestimates a
    # ramp, and this only ever turns a rollback into an escalation
    slope = fit.slope + slope_sign * 2.0 * fit.stderr
    predicted = float(np.mean(pre) + slope * (float(np.median(tail_t)) - float(np.mean(pre_t))))
    if UNITS.get(name) == "percent":
        predicted = min(max(predicted, 0.0), 1.0)
    level = _level(name, tail)
    slack = tolerance(name, _level(name, early))
    bad_excess = (level - predicted) if direction is not Direction.DECREASE else (predicted - level)
    return predicted if bad_excess <= slack else None


# --- the judge --------------------------------------------------------------------------------------


@dataclass
class MetricJudgement:
    """The judge's result for one metric: the public :class:`MetricResult` plus what the verdict needs."""

    result: MetricResult
    status: str
    """"regression" (attributable, persistent), "preexisting" (degraded before the deploy, still
    degraded, not worse), "ended" (a pre-deploy anomaly that is over), "transient" (a rise after the
    deploy that recovered), "improved", "load" (follows a traffic rise), "pass", "nodata"."""
    baseline_level: float | None = None
    tail_level: float | None = None
    strength: float = 0.0
    """Evidence strength in [0, 1): |delta| x (1 - exp(-excess)) of the deciding comparison."""
    onset_offset_s: float | None = None
    """Seconds from the deploy to the change point (negative: before the deploy)."""
    pre_level: float | None = None
    """Level between a pre-deploy onset and the deploy."""
    after_sum: float = 0.0
    tail_sum: float = 0.0
    baseline_mean: float = 0.0
    after_points: int = 0
    onset_before: bool = False
    """A bad shift began before the deploy (see ``onset_offset_s``)."""
    last_level: float | None = None
    """Level of the last ``LAST_POINTS`` points: where a still-climbing metric is now."""
    worsened: bool = False
    """Pre-existing, and worse after the deploy than before it, for a reason other than the deploy
    (a trend that simply continued, or the same dependency incident)."""

    @property
    def name(self) -> str:
        return self.result.name


def _strength(c: Comparison, level: Level = NORMAL) -> float:
    # for counts the rank effect understates a certain change: use 1 - p as the certainty instead
    certainty = max(abs(c.delta), 1.0 - c.p_value) if c.p_value < level.alpha else abs(c.delta)
    return certainty * (1.0 - math.exp(-c.excess))


def _head(
    name: str, base: np.ndarray, after: np.ndarray, tail_n: int, whole: Comparison, level: Level = NORMAL
) -> Comparison:
    """The part of the verification window the tail leaves out: a blip right after the deploy shows there."""
    if after.size - tail_n < MIN_TAIL_POINTS:
        return whole
    return compare(name, base, after[: after.size - tail_n], level)


BLIP_MIN_POINTS = 2
"""Consecutive head points outside the baseline's range (and tolerance) that make a reportable blip."""


def _blip(
    name: str, direction: Direction, base: np.ndarray, head: np.ndarray, base_level: float
) -> tuple[int, float] | None:
    """A short excursion in the bad direction at the start of the window (for the report and as a
    near miss in the confidence; it never decides a verdict): (points, peak) or None."""
    if head.size < BLIP_MIN_POINTS or name in MEAN_METRICS:
        return None
    tol = tolerance(name, base_level)
    up = direction is not Direction.DECREASE
    down = direction is not Direction.INCREASE
    outside = np.zeros(head.size, dtype=bool)
    if up:
        outside |= head > max(float(base.max()), base_level + tol)
    if down:
        outside |= head < min(float(base.min()), base_level - tol)
    best = run = 0
    for flag in outside.tolist():
        run = run + 1 if flag else 0
        best = max(best, run)
    if best < BLIP_MIN_POINTS:
        return None
    peak = float(head[outside].max() if up and (head[outside] > base_level).any() else head[outside].min())
    return int(outside.sum()), peak


def _nodata(name: str, direction: Direction, base: np.ndarray, after: np.ndarray) -> MetricJudgement:
    reason = (
        f"not enough data: {base.size} baseline and {after.size} verification points "
        f"(need {MIN_BASELINE_POINTS} and {MIN_AFTER_POINTS})"
    )
    result = MetricResult(
        name, Classification.NODATA, direction,
        float(np.median(base)) if base.size else None, float(np.median(after)) if after.size else None,
        None, None, reason, baseline_points=int(base.size), after_points=int(after.size),
    )  # fmt: skip
    tail = after[-max(1, math.ceil(after.size * TAIL_FRACTION)) :] if after.size else after
    return MetricJudgement(
        result, "nodata", after_points=int(after.size),
        tail_level=_level(name, tail) if tail.size else None,
        after_sum=float(after.sum()), tail_sum=float(tail.sum()),
    )  # fmt: skip


@dataclass
class _Window:
    """One metric split at the deploy, with the comparisons every branch reads."""

    name: str
    direction: Direction
    times: np.ndarray
    values: np.ndarray
    split: int
    deployed_at: float
    level: Level
    base: np.ndarray
    after: np.ndarray
    tail: np.ndarray
    whole: Comparison
    tail_c: Comparison

    @property
    def base_level(self) -> float:
        return self.whole.ref_level

    @property
    def tail_level(self) -> float:
        return self.tail_c.test_level


@dataclass
class _Call:
    """What a branch of the judge concluded."""

    status: str
    deciding: Comparison
    reason: str
    worsened: bool = False


@dataclass
class _Onset:
    offset: float | None = None
    before: bool = False
    good_shift_before: bool = False
    early: np.ndarray | None = None
    pre_level: float | None = None
    call: _Call | None = None


def _pre_deploy_call(w: _Window, cp: int, early: np.ndarray, pre: np.ndarray, shift: Comparison) -> _Call:
    """A bad shift that began before the deploy: worse after it, on the same course, or not."""
    name, direction, level = w.name, w.direction, w.level
    onset_offset = float(w.times[cp] - w.deployed_at)
    pre_level = shift.test_level
    ongoing = compare(name, early, w.tail, level)
    worse = compare(name, pre, w.tail, level)
    # "worse" is further in the direction the pre-deploy shift took: for a metric without a known
    # direction a return towards the early level is a recovery, not a regression
    same_way = direction is not Direction.EITHER or worse.sign == shift.sign
    worse_bad = is_bad(direction, worse.sign) and same_way
    k = max(w.split - cp, TREND_MIN_POINTS)
    trend = _trend_explains(
        name, direction, w.times[w.split - k : w.split], w.values[w.split - k : w.split],
        w.times[-w.tail.size :], w.tail, early,
    )  # fmt: skip
    before = f"{format_value(name, shift.ref_level)} → {format_value(name, pre_level)}"
    now = format_value(name, w.tail_level)
    if worse_bad and trend is not None:
        return _Call(
            "preexisting", ongoing,
            f"worsening since {ago_text(onset_offset)} before the deploy ({before} before it, {now} now, "
            f"{format_value(name, trend)} expected from the pre-deploy trend): the deploy did not change "
            "the course",
            worsened=True,
        )  # fmt: skip
    if worse_bad:
        return _Call(
            "regression", worse,
            f"already degraded {ago_text(onset_offset)} before the deploy ({before}) and worse after it "
            f"({now}, p={worse.p_value:.2g}, δ={worse.delta:+.2f})",
        )  # fmt: skip
    if is_bad(direction, ongoing.sign):
        return _Call(
            "preexisting", ongoing,
            f"degraded since {ago_text(onset_offset)} before the deploy ({before}), not worse after it "
            f"({now}): not caused by the deploy",
        )  # fmt: skip
    return _Call(
        "ended", ongoing,
        f"anomaly began {ago_text(onset_offset)} before the deploy and has ended "
        f"(now {now} vs {format_value(name, shift.ref_level)})",
    )  # fmt: skip


def _onset(w: _Window) -> _Onset:
    """A change point in the baseline (the onset is searched there only: a shift that starts there
    began before the deploy)."""
    cp = change_point(w.base)
    if cp is None:
        return _Onset()
    out = _Onset(offset=float(w.times[cp] - w.deployed_at))
    long_enough = (
        w.split - cp >= ONSET_MIN_POINTS
        and cp >= MIN_BASELINE_POINTS
        and w.deployed_at - w.times[cp] >= onset_min_seconds(w.deployed_at - float(w.times[0]))
    )
    if not long_enough:
        return out
    early, pre = w.values[:cp], w.values[cp : w.split]
    shift = compare(w.name, early, pre, w.level)
    out.early = early
    out.before = is_bad(w.direction, shift.sign)
    out.good_shift_before = shift.sign != 0 and not out.before
    if out.before:
        out.pre_level = shift.test_level
        out.call = _pre_deploy_call(w, cp, early, pre, shift)
    return out


def _back_to_normal(w: _Window, onset: _Onset) -> Comparison | None:
    """A baseline inflated by a pre-deploy anomaly in the *good* direction (a traffic spike) makes
    the return to normal look like a drop: a regression must also hold against the level before
    that anomaly."""
    if onset.early is None or not onset.good_shift_before or not is_bad(w.direction, w.tail_c.sign):
        return None
    vs_early = compare(w.name, onset.early, w.tail, w.level)
    gap = vs_early.test_level - vs_early.ref_level
    worse_by = {Direction.INCREASE: gap, Direction.DECREASE: -gap}.get(w.direction, abs(gap))
    if not is_bad(w.direction, vs_early.sign) and worse_by < tolerance(w.name, vs_early.ref_level):
        return vs_early
    return None


def _after_deploy_call(w: _Window, onset: _Onset, tail_n: int) -> _Call:
    """No bad shift before the deploy: what happened after it."""
    name, direction = w.name, w.direction
    base_level, tail_level = format_value(name, w.base_level), format_value(name, w.tail_level)
    back = _back_to_normal(w, onset)
    if back is not None:
        return _Call(
            "pass", back,
            f"{base_level} → {tail_level}, but the baseline was skewed by a change "
            f"{ago_text(onset.offset or 0.0)} before the deploy; against the level before it "
            f"({format_value(name, back.ref_level)}) nothing regressed",
        )  # fmt: skip
    tail_c, whole = w.tail_c, w.whole
    if is_bad(direction, tail_c.sign):
        return _Call(
            "regression", tail_c,
            f"{base_level} → {tail_level} after the deploy "
            f"(p={tail_c.p_value:.2g}, δ={tail_c.delta:+.2f}, persists to the end of the window)",
        )  # fmt: skip
    head = _head(name, w.base, w.after, tail_n, whole, w.level)
    if is_bad(direction, head.sign) or is_bad(direction, whole.sign):
        deciding = head if is_bad(direction, head.sign) else whole
        return _Call(
            "transient", deciding,
            f"moved after the deploy ({base_level} → {format_value(name, deciding.test_level)} right after "
            f"it) but recovered: {tail_level} at the end",
        )  # fmt: skip
    if tail_c.sign != 0 or whole.sign != 0:
        deciding = tail_c if tail_c.sign != 0 else whole
        return _Call(
            "improved", deciding,
            f"improved: {base_level} → {format_value(name, deciding.test_level)} "
            f"(p={deciding.p_value:.2g}, δ={deciding.delta:+.2f})",
        )  # fmt: skip
    blip = _blip(name, direction, w.base, w.after[: w.after.size - tail_n], w.base_level)
    if blip is not None:
        points, peak = blip
        return _Call(
            "transient", tail_c,
            f"{points}-point excursion right after the deploy (peak {format_value(name, peak)}) that "
            f"recovered: {tail_level} at the end vs {base_level} before",
        )  # fmt: skip
    return _Call(
        "pass",
        tail_c,
        f"no meaningful change: {base_level} → {tail_level} (p={tail_c.p_value:.2g}, δ={tail_c.delta:+.2f})",
    )


def judge_metric(
    name: str, times: np.ndarray, values: np.ndarray, deployed_at: float, level: Level = NORMAL
) -> MetricJudgement:
    """Judge one metric series (epoch seconds, values) around the deploy time (epoch seconds), with
    shifts counted at ``level`` (the verdict's :data:`NORMAL` unless asked otherwise)."""
    direction = direction_of(name)
    split = int(np.searchsorted(times, deployed_at, side="left"))
    base, after = values[:split], values[split:]
    if base.size < MIN_BASELINE_POINTS or after.size < MIN_AFTER_POINTS:
        return _nodata(name, direction, base, after)
    tail_n = min(after.size, max(MIN_TAIL_POINTS, math.ceil(after.size * TAIL_FRACTION)))
    tail = after[-tail_n:]
    whole = compare(name, base, after, level)
    tail_c = compare(name, base, tail, level)
    if name in MEAN_METRICS and is_bad(direction, whole.sign) and tail.sum() > 0 and tail_c.sign == 0:
        # sparse events (restarts): too few in the tail alone for a test; still happening at the end of
        # a significant window is persistence enough
        tail_c = whole
    w = _Window(name, direction, times, values, split, deployed_at, level, base, after, tail, whole, tail_c)
    onset = _onset(w)
    call = onset.call if onset.before and onset.call is not None else _after_deploy_call(w, onset, tail_n)
    status, deciding = call.status, call.deciding
    classification = Classification.PASS
    if status in ("regression", "preexisting"):
        higher = deciding.test_level > deciding.ref_level
        classification = Classification.HIGH if higher else Classification.LOW
    result = MetricResult(
        name=name,
        classification=classification,
        direction=direction,
        baseline_median=float(np.median(base)),
        after_median=float(np.median(after)),
        p_value=round(deciding.p_value, 6),
        effect_size=round(deciding.delta, 4),
        reason=call.reason,
        baseline_points=int(base.size),
        after_points=int(after.size),
    )
    return MetricJudgement(
        result=result,
        status=status,
        baseline_level=w.base_level,
        tail_level=w.tail_level,
        strength=_strength(deciding, level) if status in ("regression", "preexisting", "transient") else 0.0,
        onset_offset_s=onset.offset,
        pre_level=onset.pre_level,
        after_sum=float(after.sum()),
        tail_sum=float(tail.sum()),
        baseline_mean=float(base.mean()),
        after_points=int(after.size),
        onset_before=onset.before,
        worsened=call.worsened,
        last_level=_level(name, after[-LAST_POINTS:]),
    )


# --- cross-metric attribution -------------------------------------------------------------------------

LOAD_RISE = 1.2
"""requests_per_second in the tail at least this many times the baseline: the service is under more load."""
LOAD_SLACK = 1.25
"""A latency/cpu rise up to load ratio x this is explained by the load, not by the deploy."""
LOAD_FOLLOWERS = ("latency_p95_ms", "cpu_utilization")


def explain_by_load(judgements: list[MetricJudgement]) -> float | None:
    """Re-label latency/cpu "regressions" that only follow a traffic rise as status "load".

    Returns the load ratio (tail requests/s over baseline) when traffic rose, else None."""
    by_name = {j.name: j for j in judgements}
    rps = by_name.get("requests_per_second")
    if rps is None or rps.status == "nodata" or not rps.baseline_level or rps.tail_level is None:
        return None
    ratio = rps.tail_level / rps.baseline_level
    if ratio < LOAD_RISE:
        return None
    for name in LOAD_FOLLOWERS:
        j = by_name.get(name)
        if j is None or j.status != "regression" or not j.baseline_level or j.tail_level is None:
            continue
        rise = j.tail_level / j.baseline_level
        if rise <= ratio * LOAD_SLACK:
            j.status = "load"
            j.result.classification = Classification.PASS
            j.result.reason = (
                f"{format_value(name, j.baseline_level)} → {format_value(name, j.tail_level)} (x{rise:.2f}) "
                f"follows traffic (requests/s x{ratio:.2f}): load, not the deploy"
            )
    return ratio


INCIDENT_WINDOW_S = 600.0
"""Pre-deploy onsets this close together belong to one incident."""


def group_incident(judgements: list[MetricJudgement]) -> None:
    """A metric already degraded before the deploy and worse after it is part of the pre-deploy
    incident when another metric with an onset at about the same time is judged pre-existing
    (one incident moves several metrics; its noisiest one must not be blamed on the deploy)."""
    anchors = [j for j in judgements if j.status == "preexisting" and j.onset_before]
    for j in judgements:
        if j.status != "regression" or not j.onset_before or j.onset_offset_s is None:
            continue
        for k in anchors:
            if k is not j and abs((k.onset_offset_s or 0.0) - j.onset_offset_s) <= INCIDENT_WINDOW_S:
                j.status, j.worsened = "preexisting", True
                j.result.reason += f"; part of the incident that began before the deploy (see {k.name})"
                break


def absolute_alarm(j: MetricJudgement, low_traffic: bool = False) -> str | None:
    """For a metric with no usable baseline (NoData) but data after the deploy: the guard level
    alone, which cannot prove the deploy did it (so it is not a guard; see verdict.py)."""
    if j.status != "nodata" or j.tail_level is None or j.after_points < ABSOLUTE_MIN_POINTS:
        return None
    if j.name == "error_rate" and not low_traffic and j.tail_level >= ERROR_RATE_GUARD:
        return (
            f"error_rate {j.tail_level * 100:.1f}% ≥ {ERROR_RATE_GUARD * 100:.0f}% (no baseline to compare)"
        )
    if j.name == "memory_utilization" and j.tail_level >= MEMORY_GUARD:
        level = f"{j.tail_level * 100:.1f}%"
        return f"memory_utilization {level} ≥ {MEMORY_GUARD * 100:.0f}% (no baseline to compare)"
    if j.name == "pod_restarts" and j.after_sum >= CRASH_LOOP_RESTARTS and j.tail_sum >= 1:
        return f"pod_restarts {j.after_sum:.0f} since the deploy (no baseline to compare)"
    return None


# --- hard guards ------------------------------------------------------------------------------------


def check_guard(j: MetricJudgement, low_traffic: bool = False) -> str | None:
    """The readable guard this metric trips, or None. Guards respect attribution: a metric already
    degraded before the deploy (or recovered) never trips one."""
    name = j.name
    if (
        name == "pod_restarts"
        and j.status in ("pass", "transient", "regression")
        and j.baseline_level is not None
    ):
        # restarts are too sparse for the rank test: the guard counts them itself (it still requires
        # restarts at the end of the window and far more than the baseline rate explains)
        expected = j.baseline_mean * j.after_points
        if j.after_sum >= CRASH_LOOP_RESTARTS and j.tail_sum >= 1 and j.after_sum >= 3 * max(expected, 1.0):
            return (
                f"pod_restarts {j.after_sum:.0f} since the deploy ≥ {CRASH_LOOP_RESTARTS} "
                f"(crash loop; {expected:.1f} expected from baseline)"
            )
        return None
    if j.status != "regression" or j.tail_level is None or j.baseline_level is None:
        return None
    if name == "error_rate" and not low_traffic:
        if (
            j.tail_level >= ERROR_RATE_GUARD
            and j.tail_level >= ERROR_RATE_GUARD_FACTOR * j.baseline_level
            and j.tail_level - j.baseline_level >= ERROR_RATE_GUARD_MIN_RISE
        ):
            return (
                f"error_rate {j.tail_level * 100:.1f}% ≥ {ERROR_RATE_GUARD * 100:.0f}% "
                f"(baseline {j.baseline_level * 100:.1f}%)"
            )
    elif name == "memory_utilization":
        # a leak still climbing is judged where it is now (the last points), not on the tail's median
        now = max(j.tail_level, j.last_level if j.last_level is not None else j.tail_level)
        if now >= MEMORY_GUARD and now - j.baseline_level >= MEMORY_GUARD_MIN_RISE:
            return (
                f"memory_utilization {now * 100:.1f}% ≥ {MEMORY_GUARD * 100:.0f}% "
                f"and rising (baseline {j.baseline_level * 100:.1f}%)"
            )
    return None
