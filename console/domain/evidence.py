"""Count evidence of a live window: what the metric source saw, scrape by scrape.

A snapshot's ``metrics`` are points per canonical metric (charts, and the point judge of recorded
scenarios). A live snapshot also carries ``evidence``: the raw samples behind those points turned
into counts, so the analysis judges requests and errors as counts against traffic, latency from
the histogram's bucket counts over the whole window, and resources from their real samples:

- ``requests``: per dimension (route / handler, "" when the metrics have none) and status class
  (``2xx`` ... ``5xx``, ``other``), the requests counted between consecutive real scrapes, at the
  time of the scrape that closed each interval;
- ``latency``: per dimension, the requests per histogram bucket (not cumulative) between
  consecutive real scrapes; ``bounds`` are the buckets' upper bounds in seconds, the last bucket
  (``+Inf``) implied;
- ``gauges``: real samples of resource gauges (memory, ...), each with the limit it climbs to when
  one is known;
- ``scrapes``: the target's scrape attempts (Prometheus' ``up``): ``up`` answered, ``down`` failed;
- ``restarts``: when the process restarted (a new start time, or a restart counter's increase);
- ``reference``: a healthy baseline that replaces an unhealthy pre-deploy window (the last
  known-good version's window, or the service's stated objectives), and ``history``: what the
  console knows of the versions involved.

Timestamps are Unix seconds (numbers), which keeps a window of raw counts small. Nothing here is a
look-back copy: a scrape that did not happen has no entry.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

STATUS_CLASSES = ("2xx", "3xx", "4xx", "5xx", "other")


class EvidenceError(ValueError):
    """The ``evidence`` section is malformed; the message names the field."""


@dataclass(frozen=True)
class CountSeries:
    """Requests of one dimension and status class, counted between consecutive real scrapes."""

    dimension: str
    status: str
    times: tuple[float, ...]
    counts: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dimension": self.dimension,
            "status": self.status,
            "points": [[t, c] for t, c in zip(self.times, self.counts, strict=True)],
        }


@dataclass(frozen=True)
class HistogramSeries:
    """Requests per latency bucket of one dimension, between consecutive real scrapes."""

    dimension: str
    times: tuple[float, ...]
    counts: tuple[tuple[float, ...], ...]
    """Per scrape, one count per bucket (the bounds' buckets, then the +Inf one)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "dimension": self.dimension,
            "points": [[t, list(c)] for t, c in zip(self.times, self.counts, strict=True)],
        }


@dataclass(frozen=True)
class Latency:
    bounds: tuple[float, ...] = ()
    """Upper bounds of the buckets, seconds, increasing; the +Inf bucket is implied."""
    series: tuple[HistogramSeries, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"bounds": list(self.bounds), "series": [s.to_dict() for s in self.series]}


@dataclass(frozen=True)
class GaugeSeries:
    """Real samples of one resource gauge of one instance."""

    name: str
    """``memory`` (bytes), or a canonical ``*_utilization`` metric (a fraction of its limit, 1)."""
    instance: str
    times: tuple[float, ...]
    values: tuple[float, ...]
    limit: float | None = None
    unit: str = "bytes"
    limit_source: str = ""
    """Where the limit comes from (a metric, the services file), for the reason."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "instance": self.instance,
            "unit": self.unit,
            "limit": self.limit,
            "limit_source": self.limit_source,
            "points": [[t, v] for t, v in zip(self.times, self.values, strict=True)],
        }


@dataclass(frozen=True)
class Objectives:
    """What the service states it must meet (services file ``objectives``)."""

    error_ratio: float | None = None
    latency_p95_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"error_ratio": self.error_ratio, "latency_p95_ms": self.latency_p95_ms}

    @property
    def empty(self) -> bool:
        return self.error_ratio is None and self.latency_p95_ms is None


@dataclass(frozen=True)
class Reference:
    """A healthy baseline used in place of an unhealthy pre-deploy window."""

    kind: str
    """``known-good`` (the last version judged healthy, its own verification window re-read) or
    ``objectives`` (the service's stated objectives)."""
    label: str
    """Which one, as the reason says it (version, deployment, window)."""
    version: str | None = None
    requests: tuple[CountSeries, ...] = ()
    latency: Latency = field(default_factory=Latency)
    objectives: Objectives = field(default_factory=Objectives)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "label": self.label,
            "version": self.version,
            "requests": [s.to_dict() for s in self.requests],
            "latency": self.latency.to_dict(),
            "objectives": self.objectives.to_dict(),
        }


@dataclass(frozen=True)
class History:
    """What the console knows of the versions around a deploy (its revision history)."""

    bad_versions: tuple[str, ...] = ()
    """Known-bad versions in the service's revision history (rolled back, judged faulty,
    crash-looping, marked bad)."""
    open_incident: str | None = None
    """An incident of this service open when the deploy happened (its alert, one line)."""
    known_good_version: str | None = None
    """The revision history's rollback target: the newest known-good version other than the one
    deployed."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "bad_versions": list(self.bad_versions),
            "open_incident": self.open_incident,
            "known_good_version": self.known_good_version,
        }


@dataclass(frozen=True)
class Evidence:
    source: str = "prometheus"
    profile: str | None = None
    profile_reason: str | None = None
    scrape_interval_s: float = 15.0
    dimension_label: str | None = None
    status_label: str | None = None
    requests: tuple[CountSeries, ...] = ()
    latency: Latency = field(default_factory=Latency)
    gauges: tuple[GaugeSeries, ...] = ()
    scrapes_up: tuple[float, ...] = ()
    scrapes_down: tuple[float, ...] = ()
    restarts: tuple[float, ...] = ()
    notes: tuple[str, ...] = ()
    reference: Reference | None = None
    history: History = field(default_factory=History)
    objectives: Objectives = field(default_factory=Objectives)
    trend_horizon_s: float | None = None
    """How soon a resource may reach its limit before that is a regression (services file)."""

    @property
    def has_counts(self) -> bool:
        return bool(self.requests or self.latency.series or self.scrapes_down)

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "profile": self.profile,
            "profile_reason": self.profile_reason,
            "scrape_interval_s": self.scrape_interval_s,
            "dimension_label": self.dimension_label,
            "status_label": self.status_label,
            "requests": [s.to_dict() for s in self.requests],
            "latency": self.latency.to_dict(),
            "gauges": [g.to_dict() for g in self.gauges],
            "scrapes": {"up": list(self.scrapes_up), "down": list(self.scrapes_down)},
            "restarts": list(self.restarts),
            "notes": list(self.notes),
            "reference": self.reference.to_dict() if self.reference else None,
            "history": self.history.to_dict(),
            "objectives": self.objectives.to_dict(),
            "trend_horizon_s": self.trend_horizon_s,
        }


# -- reading the JSON form (checked field by field: it crosses process boundaries) --------------------


def _number(value: Any, where: str, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EvidenceError(f"{where}: must be a number, got {type(value).__name__}")
    number = float(value)
    if not math.isfinite(number):
        raise EvidenceError(f"{where}: {value} is not a finite number")
    return number


def _text(value: Any, where: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise EvidenceError(f"{where}: must be text, got {type(value).__name__}")
    return value


def _list(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise EvidenceError(f"{where}: must be a list, got {type(value).__name__}")
    return value


def _map(value: Any, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise EvidenceError(f"{where}: must be an object, got {type(value).__name__}")
    return value


def _pairs(value: Any, where: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    times: list[float] = []
    values: list[float] = []
    for i, point in enumerate(_list(value, where)):
        if not isinstance(point, list) or len(point) != 2:
            raise EvidenceError(f"{where}[{i}]: must be [time, value]")
        times.append(_number(point[0], f"{where}[{i}][0]"))  # type: ignore[arg-type]
        values.append(_number(point[1], f"{where}[{i}][1]"))  # type: ignore[arg-type]
    order = sorted(range(len(times)), key=times.__getitem__)
    return tuple(times[i] for i in order), tuple(values[i] for i in order)


def _counts(raw: Any, where: str) -> tuple[CountSeries, ...]:
    out = []
    for i, item in enumerate(_list(raw, where)):
        item = _map(item, f"{where}[{i}]")
        times, counts = _pairs(item.get("points"), f"{where}[{i}].points")
        out.append(
            CountSeries(
                dimension=_text(item.get("dimension", ""), f"{where}[{i}].dimension") or "",
                status=_text(item.get("status", "other"), f"{where}[{i}].status") or "other",
                times=times,
                counts=counts,
            )
        )
    return tuple(out)


def _latency(raw: Any, where: str) -> Latency:
    section = _map(raw, where)
    bounds = tuple(
        _number(b, f"{where}.bounds[{i}]")
        for i, b in enumerate(_list(section.get("bounds"), f"{where}.bounds"))
    )
    if any(b <= a for a, b in itertools.pairwise(bounds)):  # type: ignore[operator]
        raise EvidenceError(f"{where}.bounds: must increase")
    series = []
    for i, item in enumerate(_list(section.get("series"), f"{where}.series")):
        item = _map(item, f"{where}.series[{i}]")
        times: list[float] = []
        rows: list[tuple[float, ...]] = []
        for j, point in enumerate(_list(item.get("points"), f"{where}.series[{i}].points")):
            at = f"{where}.series[{i}].points[{j}]"
            if not isinstance(point, list) or len(point) != 2 or not isinstance(point[1], list):
                raise EvidenceError(f"{at}: must be [time, [count per bucket]]")
            if len(point[1]) != len(bounds) + 1:
                raise EvidenceError(f"{at}: {len(point[1])} bucket counts for {len(bounds) + 1} buckets")
            times.append(_number(point[0], f"{at}[0]"))  # type: ignore[arg-type]
            rows.append(tuple(_number(c, f"{at}[1][{k}]") for k, c in enumerate(point[1])))  # type: ignore[misc]
        dimension = _text(item.get("dimension", ""), f"{where}.series[{i}].dimension") or ""
        order = sorted(range(len(times)), key=times.__getitem__)
        series.append(
            HistogramSeries(dimension, tuple(times[k] for k in order), tuple(rows[k] for k in order))
        )
    return Latency(tuple(bounds), tuple(series))  # type: ignore[arg-type]


def _gauges(raw: Any, where: str) -> tuple[GaugeSeries, ...]:
    out = []
    for i, item in enumerate(_list(raw, where)):
        at = f"{where}[{i}]"
        item = _map(item, at)
        times, values = _pairs(item.get("points"), f"{at}.points")
        out.append(
            GaugeSeries(
                name=_text(item.get("name"), f"{at}.name") or "",
                instance=_text(item.get("instance", ""), f"{at}.instance") or "",
                times=times,
                values=values,
                limit=_number(item.get("limit"), f"{at}.limit", optional=True),
                unit=_text(item.get("unit", "bytes"), f"{at}.unit") or "bytes",
                limit_source=_text(item.get("limit_source", ""), f"{at}.limit_source") or "",
            )
        )
    return tuple(out)


def _times(raw: Any, where: str) -> tuple[float, ...]:
    return tuple(sorted(_number(t, f"{where}[{i}]") for i, t in enumerate(_list(raw, where))))  # type: ignore[type-var]


def _objectives(raw: Any, where: str) -> Objectives:
    section = _map(raw, where)
    return Objectives(
        error_ratio=_number(section.get("error_ratio"), f"{where}.error_ratio", optional=True),
        latency_p95_ms=_number(section.get("latency_p95_ms"), f"{where}.latency_p95_ms", optional=True),
    )


def _reference(raw: Any, where: str) -> Reference | None:
    if raw is None:
        return None
    section = _map(raw, where)
    return Reference(
        kind=_text(section.get("kind"), f"{where}.kind") or "",
        label=_text(section.get("label", ""), f"{where}.label") or "",
        version=_text(section.get("version"), f"{where}.version", optional=True),
        requests=_counts(section.get("requests"), f"{where}.requests"),
        latency=_latency(section.get("latency"), f"{where}.latency"),
        objectives=_objectives(section.get("objectives"), f"{where}.objectives"),
    )


def _history(raw: Any, where: str) -> History:
    section = _map(raw, where)
    bad = _list(section.get("bad_versions"), f"{where}.bad_versions")
    return History(
        bad_versions=tuple(_text(v, f"{where}.bad_versions[{i}]") or "" for i, v in enumerate(bad)),
        open_incident=_text(section.get("open_incident"), f"{where}.open_incident", optional=True),
        known_good_version=_text(
            section.get("known_good_version"), f"{where}.known_good_version", optional=True
        ),
    )


def parse_evidence(raw: Any, where: str = "evidence") -> Evidence:
    """The ``evidence`` section of a snapshot document; :class:`EvidenceError` names a bad field."""
    section = _map(raw, where)
    scrapes = _map(section.get("scrapes"), f"{where}.scrapes")
    notes = _list(section.get("notes"), f"{where}.notes")
    return Evidence(
        source=_text(section.get("source", "prometheus"), f"{where}.source") or "prometheus",
        profile=_text(section.get("profile"), f"{where}.profile", optional=True),
        profile_reason=_text(section.get("profile_reason"), f"{where}.profile_reason", optional=True),
        scrape_interval_s=_number(section.get("scrape_interval_s", 15.0), f"{where}.scrape_interval_s"),  # type: ignore[arg-type]
        dimension_label=_text(section.get("dimension_label"), f"{where}.dimension_label", optional=True),
        status_label=_text(section.get("status_label"), f"{where}.status_label", optional=True),
        requests=_counts(section.get("requests"), f"{where}.requests"),
        latency=_latency(section.get("latency"), f"{where}.latency"),
        gauges=_gauges(section.get("gauges"), f"{where}.gauges"),
        scrapes_up=_times(scrapes.get("up"), f"{where}.scrapes.up"),
        scrapes_down=_times(scrapes.get("down"), f"{where}.scrapes.down"),
        restarts=_times(section.get("restarts"), f"{where}.restarts"),
        notes=tuple(_text(n, f"{where}.notes[{i}]") or "" for i, n in enumerate(notes)),
        reference=_reference(section.get("reference"), f"{where}.reference"),
        history=_history(section.get("history"), f"{where}.history"),
        objectives=_objectives(section.get("objectives"), f"{where}.objectives"),
        trend_horizon_s=_number(section.get("trend_horizon_s"), f"{where}.trend_horizon_s", optional=True),
    )


def status_class(code: str) -> str:
    """``"503"`` and ``"5xx"`` -> ``"5xx"``; anything that is not an HTTP status -> ``"other"``.
    ``SERVER_ERROR`` (Micrometer's outcome) -> ``5xx``."""
    text = str(code).strip().upper()
    if text == "SERVER_ERROR":
        return "5xx"
    if text == "CLIENT_ERROR":
        return "4xx"
    if len(text) == 3 and text[0] in "2345" and (text[1:].isdigit() or text[1:] == "XX"):
        return f"{text[0]}xx"
    return "other"


def window_sum(times: Sequence[float], counts: Sequence[float], start: float, end: float) -> float:
    """Counts of the intervals closed by scrapes in ``(start, end]``."""
    return float(sum(c for t, c in zip(times, counts, strict=True) if start < t <= end))


def bucket_quantile(bounds: Sequence[float], counts: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile of requests counted per bucket (not cumulative; the last bucket is +Inf),
    interpolated linearly inside its bucket from the bucket below's bound (0 for the first) as
    Prometheus' ``histogram_quantile`` does; a quantile in the +Inf bucket is the highest finite
    bound. None without requests or without finite bounds."""
    total = float(sum(counts))
    if total <= 0 or not bounds:
        return None
    rank = q * total
    cumulative = 0.0
    for i, count in enumerate(counts):
        if cumulative + count >= rank and count > 0:
            if i >= len(bounds):
                return float(bounds[-1])
            lower = bounds[i - 1] if i else 0.0
            return float(lower + (bounds[i] - lower) * (rank - cumulative) / count)
        cumulative += count
    return float(bounds[-1])
