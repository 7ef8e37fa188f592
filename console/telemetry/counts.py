"""From raw samples (a range vector at the window's end: every sample with its own timestamp) to the
counts of :mod:`console.domain.evidence`, and the canonical metrics computed from the same samples.

Pure functions, no network. Counter semantics, each choice written in the run's notes:

- an increment is the counter's change between two consecutive real samples of one series; a value
  lower than the previous one is a reset (the process restarted), and the new value is counted
  from zero;
- a series that appears inside the window on an instance that was already scraped is a child
  the client library created at zero when it first counted (prometheus_client creates a labelled
  child on its first ``inc``): its first value is counted, not dropped as an unknown base;
- samples that are NaN or ±Inf are dropped and counted in a note;
- a histogram without ``le`` is left out; bucket layouts that differ between series (a new layout
  at the deploy) are compared on the bounds they share.
"""

from __future__ import annotations

import itertools
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from console.domain.evidence import (
    CountSeries,
    GaugeSeries,
    HistogramSeries,
    Latency,
    bucket_quantile,
    status_class,
)

DIMENSION_LABELS = ("handler", "route", "http_route", "path", "uri", "endpoint", "view")
"""Labels that name a route, in the order they are looked for."""
STATUS_LABELS = ("code", "status", "status_code", "http_response_status_code", "http_status_code", "outcome")
"""Labels that hold an HTTP status (or Micrometer's outcome), in the order they are looked for."""
BORN_INSIDE_SLACK = 0.5
"""A series whose first sample comes this many scrape intervals after its instance's first one was
created inside the window."""


@dataclass(frozen=True)
class Raw:
    """The raw samples of one series: labels and (Unix seconds, value), time-ordered, finite."""

    labels: Mapping[str, str]
    points: Sequence[tuple[float, float]]


@dataclass
class Notes:
    lines: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        if text not in self.lines:
            self.lines.append(text)


def _instance(labels: Mapping[str, str], group_by: Sequence[str] = ("instance",)) -> str:
    return ",".join(f"{k}={labels.get(k, '')}" for k in group_by)


def first_scrapes(series: Iterable[Raw], group_by: Sequence[str] = ("instance",)) -> dict[str, float]:
    """Each instance's first sample in the window."""
    first: dict[str, float] = {}
    for s in series:
        if s.points:
            key = _instance(s.labels, group_by)
            first[key] = min(first.get(key, math.inf), s.points[0][0])
    return first


def increments(
    points: Sequence[tuple[float, float]], *, from_zero: bool
) -> tuple[list[float], list[float], list[float]]:
    """(times, increments, reset times) of one counter series. ``from_zero``: its first value is
    counted (a child created at zero inside the window)."""
    times: list[float] = []
    counts: list[float] = []
    resets: list[float] = []
    previous: float | None = None
    for t, v in points:
        if previous is None:
            if from_zero and v > 0:
                times.append(t)
                counts.append(v)
        elif v < previous:
            resets.append(t)
            times.append(t)
            counts.append(v)
        else:
            times.append(t)
            counts.append(v - previous)
        previous = v
    return times, counts, resets


def counter_increments(
    series: Sequence[Raw], scrape_interval_s: float, notes: Notes, what: str
) -> list[tuple[Raw, list[float], list[float]]]:
    """Increments of every series of a counter family, with the born-inside and reset rules."""
    first = first_scrapes(series)
    out = []
    resets: list[float] = []
    for s in series:
        if not s.points:
            continue
        born = s.points[0][0] > first[_instance(s.labels)] + BORN_INSIDE_SLACK * scrape_interval_s
        times, counts, reset = increments(s.points, from_zero=born)
        resets += reset
        out.append((s, times, counts))
    if resets:
        notes.add(
            f"{what}: counter reset{'s' if len(resets) > 1 else ''} (a process restart) at "
            f"{len(resets)} sample{'s' if len(resets) > 1 else ''}: counted from zero"
        )
    return out


def pick_label(series: Iterable[Raw], candidates: Sequence[str], configured: str | None) -> str | None:
    """The configured label, else the first candidate some series carries."""
    names = {k for s in series for k in s.labels}
    if configured:
        return configured
    return next((c for c in candidates if c in names), None)


def _merge(times: list[float], counts: list[float]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Increments of one group, summed per scrape time (the series of one scrape share it)."""
    total: dict[float, float] = defaultdict(float)
    for t, c in zip(times, counts, strict=True):
        total[t] += c
    keys = sorted(total)
    return tuple(keys), tuple(total[k] for k in keys)


def request_counts(
    series: Sequence[Raw],
    *,
    dimension_label: str | None,
    status_label: str | None,
    scrape_interval_s: float,
    notes: Notes,
    what: str,
) -> tuple[CountSeries, ...]:
    """Requests per (dimension, status class), per real scrape."""
    groups: dict[tuple[str, str], tuple[list[float], list[float]]] = defaultdict(lambda: ([], []))
    for s, times, counts in counter_increments(series, scrape_interval_s, notes, what):
        dimension = s.labels.get(dimension_label, "") if dimension_label else ""
        status = status_class(s.labels.get(status_label, "")) if status_label else "other"
        bucket = groups[(dimension, status)]
        bucket[0].extend(times)
        bucket[1].extend(counts)
    out = []
    for (dimension, status), (times, counts) in sorted(groups.items()):
        merged_times, merged_counts = _merge(times, counts)
        out.append(CountSeries(dimension, status, merged_times, merged_counts))
    return tuple(out)


def _le(labels: Mapping[str, str]) -> float | None:
    try:
        return float(labels["le"])
    except (KeyError, ValueError):
        return None


def latency_counts(
    series: Sequence[Raw],
    *,
    dimension_label: str | None,
    unit: str,
    scrape_interval_s: float,
    notes: Notes,
    what: str,
) -> Latency:
    """Requests per latency bucket (not cumulative) per dimension, per real scrape. Bounds in
    seconds (``unit: ms`` histograms are converted)."""
    usable = _usable_buckets(series, notes, what)
    if not usable:
        return Latency()
    shared = _shared_bounds(usable, notes, what)
    finite = sorted(b for b in shared if math.isfinite(b))
    if math.inf not in shared:
        notes.add(f"{what}: no +Inf bucket: latency is left out")
        return Latency()
    increments_ = counter_increments(
        [s for s in usable if _le(s.labels) in shared], scrape_interval_s, notes, what
    )
    cumulative = _cumulative_per_scrape(increments_, dimension_label, finite)
    scale = 0.001 if unit == "ms" else 1.0
    histograms = tuple(_histogram(dimension, cumulative[dimension]) for dimension in sorted(cumulative))
    return Latency(tuple(b * scale for b in finite), histograms)


def _usable_buckets(series: Sequence[Raw], notes: Notes, what: str) -> list[Raw]:
    """The bucket series with a numeric ``le``; the others are left out with a note."""
    usable = [s for s in series if _le(s.labels) is not None]
    if len(usable) < len(series):
        notes.add(f"{what}: {len(series) - len(usable)} bucket series without a usable le label: left out")
    if not usable and series:
        notes.add(f"{what}: a histogram without le: latency is left out")
    return usable


def _shared_bounds(usable: Sequence[Raw], notes: Notes, what: str) -> set[float]:
    """The ``le`` bounds every series' layout has (a layout: the bounds of one label set but ``le``)."""
    layouts: dict[str, set[float]] = defaultdict(set)
    for s in usable:
        key = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()) if k != "le")
        layouts[key].add(_le(s.labels))  # type: ignore[arg-type]
    shared = set.intersection(*layouts.values())
    if any(layout != shared for layout in layouts.values()):
        notes.add(
            f"{what}: bucket layouts differ between series: compared on the {len(shared)} shared bounds"
        )
    return shared


def _cumulative_per_scrape(
    increments_: Sequence[tuple[Raw, list[float], list[float]]],
    dimension_label: str | None,
    finite: Sequence[float],
) -> dict[str, dict[float, list[float]]]:
    """Per dimension and scrape time, the cumulative bucket increments (``finite``'s bounds, then +Inf)."""
    index = {b: i for i, b in enumerate(finite)}
    index[math.inf] = len(finite)
    cumulative: dict[str, dict[float, list[float]]] = defaultdict(
        lambda: defaultdict(lambda: [0.0] * len(index))
    )
    for s, times, counts in increments_:
        dimension = s.labels.get(dimension_label, "") if dimension_label else ""
        slot = index[_le(s.labels)]  # type: ignore[index]
        for t, c in zip(times, counts, strict=True):
            cumulative[dimension][t][slot] += c
    return cumulative


def _histogram(dimension: str, rows: Mapping[float, list[float]]) -> HistogramSeries:
    """One dimension's cumulative rows as counts per bucket (a negative difference counts 0)."""
    times = sorted(rows)
    counts = []
    for t in times:
        cum = rows[t]
        counts.append(tuple(max(cum[i] - (cum[i - 1] if i else 0.0), 0.0) for i in range(len(cum))))
    return HistogramSeries(dimension, tuple(times), tuple(counts))


def _grouped(series: Sequence[Raw], group_by: Sequence[str]) -> dict[str, dict[float, float]]:
    """Per instance, the values of its series summed per timestamp (memory pools of one JVM)."""
    out: dict[str, dict[float, float]] = defaultdict(lambda: defaultdict(float))
    for s in series:
        key = _instance(s.labels, group_by)
        for t, v in s.points:
            out[key][t] += v
    return out


def gauges(
    series: Sequence[Raw],
    *,
    name: str,
    group_by: Sequence[str],
    limits: Sequence[Raw],
    configured_limit: float | None,
    limit_metric: str | None,
) -> tuple[GaugeSeries, ...]:
    """One gauge per instance with its limit: the limit series' latest positive value for that
    instance (pools without a max report -1 and are left out), else the services file's."""
    limit_of: dict[str, float] = {}
    for key, values in _grouped(
        [Raw(s.labels, [p for p in s.points if p[1] > 0]) for s in limits], group_by
    ).items():
        if values:
            limit_of[key] = values[max(values)]
    out = []
    for key, values in sorted(_grouped(series, group_by).items()):
        times = sorted(values)
        limit, source = limit_of.get(key), limit_metric or ""
        if limit is None and configured_limit is not None:
            limit, source = configured_limit, "memory_limit_bytes in the services file"
        out.append(
            GaugeSeries(name, key, tuple(times), tuple(values[t] for t in times), limit, "bytes",
                        source if limit is not None else "")
        )  # fmt: skip
    return tuple(out)


def cpu_rates(series: Sequence[Raw], group_by: Sequence[str]) -> dict[str, list[tuple[float, float]]]:
    """Per instance, CPU cores used between consecutive samples of its CPU-seconds counter."""
    out: dict[str, list[tuple[float, float]]] = {}
    for key, values in _grouped(series, group_by).items():
        times = sorted(values)
        rates = []
        for a, b in itertools.pairwise(times):
            if b > a and values[b] >= values[a]:
                rates.append((b, (values[b] - values[a]) / (b - a)))
        out[key] = rates
    return out


def restart_times(series: Sequence[Raw], kind: str) -> list[float]:
    """When processes restarted: a new start time (``start_time``) or a counter's increase."""
    out: list[float] = []
    for s in series:
        for (_, a), (t, b) in itertools.pairwise(s.points):
            if kind == "start_time":
                if b != a:
                    out.append(t)
            elif b > a:
                out.extend([t] * round(b - a))
            elif b < a:
                out.extend([t] * round(b))
    return sorted(out)


def scrape_times(series: Sequence[Raw]) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Prometheus' ``up``: (times the target answered, times it did not)."""
    up = sorted(t for s in series for t, v in s.points if v >= 1)
    down = sorted(t for s in series for t, v in s.points if v < 1)
    return tuple(up), tuple(down)


# -- the canonical metrics from the same samples ------------------------------------------------------


def _bins(times: Iterable[float], start: float, end: float, step: float) -> dict[float, list[int]]:
    """Step bins ending at ``end - k * step`` (the query_range grid seen from the end)."""
    out: dict[float, list[int]] = defaultdict(list)
    for i, t in enumerate(times):
        if start <= t <= end:
            k = math.floor((end - t) / step)
            out[round(end - k * step, 3)].append(i)
    return out


def _covered(scrapes: Sequence[float], start: float, end: float, step: float) -> dict[float, float]:
    """Per step bin, the seconds its requests were counted over: from the last scrape before it to
    its last scrape (longer than a step after a gap: the counters kept counting meanwhile)."""
    ordered = sorted(scrapes)
    out: dict[float, float] = {}
    for at, idx in _bins(ordered, start, end, step).items():
        first, last = idx[0], idx[-1]
        if first > 0:
            out[at] = max(ordered[last] - ordered[first - 1], step)
    return out


def derived_points(
    *,
    requests: Sequence[CountSeries],
    latency: Latency,
    gauges_: Sequence[GaugeSeries],
    cpu: Mapping[str, list[tuple[float, float]]],
    restarts: Sequence[float] | None,
    scrapes: Sequence[float],
    start: float,
    end: float,
    step: float,
) -> dict[str, list[tuple[float, float]]]:
    """Per step bin with at least one real scrape: error_rate (5xx of all requests),
    requests_per_second, latency_p95_ms (from the bin's bucket counts), memory_utilization (the
    instance nearest its limit), cpu_utilization (the busiest instance), pod_restarts (None:
    restarts are not counted). A metric without a point is left out."""
    grid = StepWindow(start, end, step)
    out = {
        **_request_points(requests, scrapes, grid),
        "latency_p95_ms": _latency_p95(latency, grid),
        "memory_utilization": _memory_utilization(gauges_, grid),
        "cpu_utilization": _busiest_cpu(cpu, grid),
        "pod_restarts": _restarts_per_bin(restarts, scrapes, grid),
    }
    return {k: v for k, v in out.items() if v}


@dataclass(frozen=True)
class StepWindow:
    """A window [start, end] (Unix seconds) and the step of its query grid."""

    start: float
    end: float
    step: float

    def bins(self, times: Iterable[float]) -> dict[float, list[int]]:
        """The indexes of ``times`` per step bin (see :func:`_bins`)."""
        return _bins(times, self.start, self.end, self.step)


def _request_points(
    requests: Sequence[CountSeries], scrapes: Sequence[float], grid: StepWindow
) -> dict[str, list[tuple[float, float]]]:
    """requests_per_second over the seconds each bin's requests were counted in, and error_rate
    (when a status is known) per bin with requests."""
    total: dict[float, float] = defaultdict(float)
    errors: dict[float, float] = defaultdict(float)
    for s in requests:
        for at, idx in grid.bins(s.times).items():
            n = sum(s.counts[i] for i in idx)
            total[at] += n
            if s.status == "5xx":
                errors[at] += n
    if not total:
        return {}
    covered = _covered(scrapes, grid.start, grid.end, grid.step)
    out = {"requests_per_second": [(t, total[t] / covered.get(t, grid.step)) for t in sorted(total)]}
    if any(s.status != "other" for s in requests):
        out["error_rate"] = [(t, errors[t] / total[t]) for t in sorted(total) if total[t] > 0]
    return out


def _latency_p95(latency: Latency, grid: StepWindow) -> list[tuple[float, float]]:
    """Milliseconds, from the bucket counts of each bin summed over the dimensions."""
    width = len(latency.bounds) + 1
    buckets: dict[float, list[float]] = defaultdict(lambda: [0.0] * width)
    for h in latency.series:
        for at, idx in grid.bins(h.times).items():
            for i in idx:
                for k, c in enumerate(h.counts[i]):
                    buckets[at][k] += c
    p95 = [(t, bucket_quantile(latency.bounds, buckets[t], 0.95)) for t in sorted(buckets)]
    return [(t, 1000 * q) for t, q in p95 if q is not None]


def _memory_utilization(gauges_: Sequence[GaugeSeries], grid: StepWindow) -> list[tuple[float, float]]:
    """Per bin, the highest last value of a gauge against its limit (gauges without one are skipped)."""
    levels: dict[float, float] = {}
    for g in gauges_:
        if not g.limit:
            continue
        for at, idx in grid.bins(g.times).items():
            levels[at] = max(levels.get(at, 0.0), g.values[idx[-1]] / g.limit)
    return sorted(levels.items())


def _busiest_cpu(cpu: Mapping[str, list[tuple[float, float]]], grid: StepWindow) -> list[tuple[float, float]]:
    """Per bin, the highest CPU rate of any instance."""
    busiest: dict[float, float] = {}
    for rates in cpu.values():
        for at, idx in grid.bins([t for t, _ in rates]).items():
            busiest[at] = max(busiest.get(at, 0.0), max(rates[i][1] for i in idx))
    return sorted(busiest.items())


def _restarts_per_bin(
    restarts: Sequence[float] | None, scrapes: Sequence[float], grid: StepWindow
) -> list[tuple[float, float]]:
    """Restarts counted in each bin with a scrape (none when restarts are not counted)."""
    if not scrapes or restarts is None:
        return []
    counted = grid.bins(restarts)
    return [(t, float(len(counted.get(t, [])))) for t in sorted(grid.bins(scrapes))]
