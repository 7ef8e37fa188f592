"""Resources that climb towards a limit (memory, connections, queue depth, disk): a steady climb
after the deploy is projected to its limit with an interval, and one that reaches it within the
horizon is a regression, whatever its level now.

The climb is the Theil–Sen slope (``scipy.stats.theilslopes``: the median of pairwise slopes, robust
to a few odd samples) of the real samples since the deploy (since the last restart after it, when
the process restarted). Its confidence interval is taken at ``1 - spent_alpha(alpha, n)`` for
``n`` real samples (:func:`console.analysis.sequential.spent_alpha`), so looking at it after every
scrape keeps its error below ``alpha``. The projection uses the interval's *lower* slope: the
latest the limit is plausibly reached. It counts when that is within the horizon, which is the
service's stated horizon (``trend_horizon_s``) but never more than ``EXTRAPOLATION`` times the span
the slope rests on (a line fitted on 20 s says little about the next hour). A climb the baseline
already had at the same pace is not the deploy's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from console.analysis.sequential import spent_alpha

MIN_TREND_SAMPLES = 8
"""Real samples after the deploy (after its restart) a slope needs."""
EXTRAPOLATION = 10.0
"""A projection is trusted up to this many times the span of samples it rests on."""
RESTART_DROP = 0.3
"""A fall of this fraction between two samples is a restart: the climb is measured after it."""
SAME_PACE = 1.5
"""An after-deploy slope up to this many times the baseline's own (significant) slope is the same climb."""
DEFAULT_HORIZON_S = 3600.0
MAX_TREND_SAMPLES = 600
"""Theil–Sen pairs every two samples (quadratic): longer series are thinned by an even stride first,
which keeps the slope and the span (its interval gets a little wider: conservative)."""
HEADROOM = 0.75
"""A resource that rose after the deploy but is flat (no climb projected to its limit) and stays
under this fraction of its limit has the room it needs: a heavier version, not a regression."""


@dataclass(frozen=True)
class Projection:
    slope: float
    """Per second, in the values' unit."""
    slope_low: float
    slope_high: float
    level: float
    """The fitted level at the last sample."""
    limit: float
    seconds: float | None
    """When the limit is reached at the fitted slope (None when not climbing)."""
    latest: float | None
    """When it is reached at the interval's lower slope (None when that slope is not positive)."""
    horizon_s: float
    samples: int
    span_s: float
    reaches: bool
    """The limit is reached within the horizon, even at the lower slope."""
    baseline_slope: float | None = None
    same_as_baseline: bool = False


def _after_restart(times: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    start = 0
    for i in range(1, values.size):
        if values[i - 1] > 0 and values[i] < (1.0 - RESTART_DROP) * values[i - 1]:
            start = i
    return times[start:], values[start:]


def _thinned(times: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if times.size <= MAX_TREND_SAMPLES:
        return times, values
    keep = np.unique(np.linspace(0, times.size - 1, MAX_TREND_SAMPLES).round().astype(int))
    return times[keep], values[keep]


def _slope(times: np.ndarray, values: np.ndarray, confidence: float) -> tuple[float, float, float, float]:
    """(slope, intercept, low, high); a constant series has a zero slope."""
    if np.ptp(values) == 0:
        return 0.0, float(values[0]), 0.0, 0.0
    from scipy.stats import theilslopes  # imported when first used (console/analysis/__init__.py)

    slope, intercept, low, high = theilslopes(values, times, alpha=confidence)
    return float(slope), float(intercept), float(low), float(high)


def project(
    times: Sequence[float],
    values: Sequence[float],
    limit: float,
    deployed_at: float,
    *,
    alpha: float,
    horizon_s: float = DEFAULT_HORIZON_S,
) -> Projection | None:
    """The climb after ``deployed_at`` projected to ``limit``; None with too few real samples."""
    t = np.asarray(times, dtype=float)
    v = np.asarray(values, dtype=float)
    after = t > deployed_at
    ta, va = _after_restart(t[after], v[after])
    if ta.size < MIN_TREND_SAMPLES or not math.isfinite(limit) or limit <= 0:
        return None
    samples = int(ta.size)
    ta, va = _thinned(ta, va)
    x = ta - ta[0]
    confidence = 1.0 - spent_alpha(alpha, samples)
    slope, intercept, low, high = _slope(x, va, confidence)
    level = intercept + slope * x[-1]
    span = float(x[-1])
    horizon = min(horizon_s, EXTRAPOLATION * span)
    room = limit - level
    seconds = room / slope if slope > 0 and room > 0 else (0.0 if room <= 0 and slope > 0 else None)
    latest = room / low if low > 0 and room > 0 else (0.0 if room <= 0 and low > 0 else None)
    baseline_slope, same = _baseline_pace(t[~after], v[~after], alpha, low)
    reaches = latest is not None and latest <= horizon and not same
    return Projection(
        slope, low, high, level, limit, seconds, latest, horizon, samples, span, reaches,
        baseline_slope, same,
    )  # fmt: skip


def _baseline_pace(
    times: np.ndarray, values: np.ndarray, alpha: float, low: float
) -> tuple[float | None, bool]:
    """The baseline's own significant climb, and whether the after-deploy climb is the same pace."""
    tb, vb = _thinned(*_after_restart(times, values))
    if tb.size < MIN_TREND_SAMPLES or low <= 0:
        return None, False
    slope, _, b_low, _ = _slope(tb - tb[0], vb, 1.0 - alpha)
    if b_low <= 0:
        return slope, False
    return slope, low <= SAME_PACE * slope


def duration_text(seconds: float) -> str:
    """``45 s``, ``3.5 min``, ``2.1 h``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


TREND_STRENGTH_MIN, TREND_STRENGTH_MAX = 0.6, 0.99
"""A projection's strength: from the minimum when the limit is reached at the horizon, to the
maximum when it is reached now."""


def is_resource(name: str) -> bool:
    """Canonical metrics that are a fraction of a limit they can run out of (cpu saturates instead)."""
    return name.endswith("_utilization") and name != "cpu_utilization"


def _rate_text(slope: float, name: str) -> str:
    """A climb as people read it: ``+6.4 % of its limit a second``, ``+0.3 % a minute``."""
    fraction = name.endswith("_utilization")
    per_s = slope * (100.0 if fraction else 1.0)
    unit = "% of its limit" if fraction else ""
    if abs(per_s) >= 1.0 or not fraction:
        return f"{per_s:+.3g}{unit} a second"
    return f"{per_s * 60:+.3g}{unit} a minute"


def projection_text(p: Projection, name: str) -> str:
    rate = _rate_text(p.slope, name)
    if p.latest is None:
        return f"climbs {rate}"
    if p.latest == 0:
        return f"at its limit and still climbing ({rate})"
    mid = duration_text(p.seconds or p.latest)
    late = duration_text(p.latest)
    return (
        f"reaches its limit in ~{mid} (at the latest {late}; horizon {duration_text(p.horizon_s)}), "
        f"climbing {rate} over {p.samples} real samples"
    )


def trend_strength(p: Projection) -> float:
    if p.latest is None or p.horizon_s <= 0:
        return 0.0
    share = max(0.0, 1.0 - p.latest / p.horizon_s)
    return TREND_STRENGTH_MIN + (TREND_STRENGTH_MAX - TREND_STRENGTH_MIN) * share
