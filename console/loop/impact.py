"""An incident's impact from real samples: for each user-facing metric, its peak and how long it was
bad, from the incident's onset to its verified recovery (the end of a post-action window measured
"resolved"), never from the decision's snapshot alone.

- A sample is **bad** when it is at or past the metric's hard guard, or clearly worse than the
  pre-deploy baseline in the metric's bad direction (:func:`is_bad`).
- **How long**: each bad sample counts until the next sample, at most twice the typical step, so a
  gap in the samples is a gap, never badness (or goodness) invented.
- The **onset** is the first bad sample after the deploy; the **end** the verified recovery, or the
  last sample when the service did not recover (said so).

:func:`incident_series` reads the samples: for a live service from its Prometheus at postmortem
time (the whole span, deploy to recovery), else the stored snapshot (up to the decision only, said
so).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from itertools import pairwise
from typing import Any

from console.analysis.metrics import ERROR_RATE_GUARD, MEMORY_GUARD, direction_of
from console.domain.models import Direction
from console.settings import Settings
from console.telemetry import TelemetryError, build_snapshot, service_config
from console.telemetry.times import to_epoch

GUARDS = {"error_rate": ERROR_RATE_GUARD, "memory_utilization": MEMORY_GUARD}
RELATIVE_WORSE = 0.5
"""Worse than the baseline by this much (relative) ..."""
ABSOLUTE_WORSE = {"error_rate": 0.02, "memory_utilization": 0.05, "latency_p95_ms": 50.0, "pod_restarts": 1.0}
"""... and at least this much in the metric's unit."""
USER_FACING = ("error_rate", "latency_p95_ms", "memory_utilization", "pod_restarts", "requests_per_second")

Points = Sequence[tuple[float, float]]


def is_bad(metric: str, value: float, baseline: float | None) -> bool:
    """Whether ``value`` is a bad level for ``metric``: at or past its hard guard, or clearly worse
    than ``baseline`` in the metric's bad direction."""
    guard = GUARDS.get(metric)
    if guard is not None and value >= guard:
        return True
    if baseline is None or not math.isfinite(baseline):
        return False
    margin = max(abs(baseline) * RELATIVE_WORSE, ABSOLUTE_WORSE.get(metric, 0.0))
    if direction_of(metric) is Direction.DECREASE:
        return value < baseline - margin
    return value > baseline + margin


def bad_since(metric: str, points: Points, baseline: float | None) -> float | None:
    """When the trailing run of bad samples began (None when the newest sample is not bad)."""
    since = None
    for at, value in reversed(points):
        if not is_bad(metric, value, baseline):
            break
        since = at
    return since


@dataclass(frozen=True)
class ImpactRow:
    metric: str
    peak: float
    peak_at: float
    bad_s: float
    first_bad: float
    last_bad: float
    baseline: float | None


@dataclass(frozen=True)
class Impact:
    onset: float | None
    """The first bad sample after the deploy, of any user-facing metric."""
    end: float | None
    recovered: bool
    """``end`` is a verified recovery (else the last sample)."""
    rows: list[ImpactRow]
    source: str


def _step(points: Points) -> float:
    gaps = [b[0] - a[0] for a, b in pairwise(points) if b[0] > a[0]]
    return statistics.median(gaps) if gaps else 0.0


def _bad_stretch(
    metric: str, during: Points, baseline: float | None, cap: float
) -> tuple[float, float | None, float | None]:
    """(seconds bad, first bad sample, last bad sample) of ``during``: each bad sample counts until
    the next sample, at most ``cap`` seconds (no cap when 0); the last sample counts nothing."""
    bad_s, first, last = 0.0, None, None
    for (t, v), nxt in zip(during, [*during[1:], None], strict=True):
        if not is_bad(metric, v, baseline):
            continue
        first = t if first is None else first
        last = t
        if nxt is not None:
            bad_s += min(nxt[0] - t, cap) if cap else nxt[0] - t
    return bad_s, first, last


def _worst_sample(metric: str, during: Points) -> tuple[float, float]:
    """The sample furthest in the metric's bad direction."""
    if direction_of(metric) is Direction.DECREASE:
        return min(during, key=lambda p: p[1])
    return max(during, key=lambda p: p[1])


def _impact_row(metric: str, series: Points, deployed_at: float, end: float | None) -> ImpactRow | None:
    """How ``metric`` fared from the deploy to ``end``, against its median before the deploy; None
    when it has no sample in that span or none of them was bad."""
    points = sorted((t, v) for t, v in series if math.isfinite(v))
    before = [v for t, v in points if t < deployed_at]
    baseline = statistics.median(before) if before else None
    during = [(t, v) for t, v in points if t >= deployed_at and (end is None or t <= end)]
    if not during:
        return None
    bad_s, first, last = _bad_stretch(metric, during, baseline, 2 * _step(points) or 0.0)
    if first is None or last is None:
        return None
    worst = _worst_sample(metric, during)
    return ImpactRow(metric, worst[1], worst[0], bad_s, first, last, baseline)


def impact(
    series: Mapping[str, Points],
    *,
    deployed_at: float,
    recovered_at: float | None,
    source: str,
) -> Impact:
    """The incident's impact over ``series`` (``{metric: [(epoch, value), ...]}``, real samples only):
    the baseline is the samples before ``deployed_at``, the incident from the first bad sample after
    it to ``recovered_at`` (a verified recovery) or the last sample."""
    last_sample = max((p[-1][0] for p in series.values() if p), default=None)
    end = recovered_at if recovered_at is not None else last_sample
    found = (_impact_row(metric, series.get(metric, []), deployed_at, end) for metric in USER_FACING)
    rows = [row for row in found if row is not None]
    onset = min((r.first_bad for r in rows), default=None)
    return Impact(onset, end, recovered_at is not None, rows, source)


def _series_of(metrics: Mapping[str, Any]) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list[tuple[float, float]]] = {}
    for name, points in metrics.items():
        kept = []
        for point in points if isinstance(points, list) else []:
            try:
                kept.append((to_epoch(str(point[0])), float(point[1])))
            except (TypeError, ValueError, IndexError):
                continue
        out[str(name)] = kept
    return out


def incident_series(
    deployment: Mapping[str, Any],
    record: Mapping[str, Any] | None,
    snapshot: Mapping[str, Any] | None,
    settings: Settings | None,
) -> tuple[dict[str, list[tuple[float, float]]], str]:
    """(series, where from): for a watched live service, its Prometheus read now over the whole
    incident (baseline, deploy, the actions, the post-action window); else (a scenario, Prometheus
    gone, retention past) the stored snapshot, which ends at the decision."""
    measured = (record or {}).get("measured") if isinstance((record or {}).get("measured"), Mapping) else {}
    window = measured.get("window") if isinstance(measured.get("window"), Mapping) else {}
    live = measured.get("source") == "prometheus" and not (record or {}).get("scenario")
    stored = _series_of((snapshot or {}).get("metrics") or {})
    if not live or settings is None or not window.get("end"):
        return stored, "the decision's snapshot (it ends at the decision)"
    try:
        config = service_config(str(deployment.get("service") or ""), settings)
        if config.prometheus is None:
            return stored, "the decision's snapshot (no Prometheus configured now)"
        first = min((p[0][0] for p in stored.values() if p), default=to_epoch(str(deployment["deployed_at"])))
        read = build_snapshot(replace(config, logs=None), deployment, first, to_epoch(str(window["end"])))
    except (TelemetryError, KeyError, ValueError, TypeError) as exc:
        line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return stored, f"the decision's snapshot (Prometheus could not be read now: {line})"
    return _series_of(read.snapshot.get("metrics") or {}), "Prometheus, read when this postmortem was written"


def recovered_at(record: Mapping[str, Any] | None) -> float | None:
    """The verified recovery: the end of a post-action window measured resolved."""
    measured = (record or {}).get("measured") if isinstance((record or {}).get("measured"), Mapping) else {}
    window = measured.get("window") if isinstance(measured.get("window"), Mapping) else {}
    if measured.get("status") != "resolved" or not window.get("end"):
        return None
    try:
        return to_epoch(str(window["end"]))
    except (TypeError, ValueError):
        return None
