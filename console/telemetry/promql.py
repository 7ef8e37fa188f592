"""PromQL profiles (``promql.yaml``), their rendering, and the choice of step and rate window.

Pure functions: no network. The Prometheus source (``prometheus.py``) uses them; tests and the
console's chart links use them directly.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType

from console.domain.config_reader import load_yaml

PROFILES_PATH = Path(__file__).with_name("promql.yaml")

MAX_POINTS = 11_000
"""Prometheus refuses a range query with (end - start) / step above this ("exceeded maximum
resolution of 11,000 points per timeseries")."""
TARGET_POINTS = 300
"""Points per series the automatic step aims at: enough for a chart and for the judge."""
NICE_STEPS_S = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)

PLACEHOLDERS = ("{selector}", "{http_selector}", "{range}", "{step}")


FAMILY_KINDS = ("requests", "latency", "memory", "cpu", "restarts")
"""The raw series a profile may name (see promql.yaml, ``families``)."""


@dataclass(frozen=True)
class Candidate:
    metric: str
    unit: str = "s"
    """``s`` or ``ms`` (latency histograms only)."""


@dataclass(frozen=True)
class Family:
    """Raw series of one kind (requests, latency, memory, cpu, restarts) and how to read them."""

    kind: str
    candidates: tuple[Candidate, ...]
    """Metric names in order of preference: the first the target has is read."""
    match: str = ""
    """Extra label matchers (``area="heap"``)."""
    selector: str = "default"
    """``default`` ({selector}) or ``http`` ({http_selector})."""
    group_by: tuple[str, ...] = ("instance",)
    """The labels of one instance (gauges: a limit matches its gauge on these)."""
    counter: str = "counter"
    """Restarts: ``counter`` (an increase is a restart) or ``start_time`` (a new value is one)."""
    limit: Family | None = None
    """Memory: the gauge that holds its limit, matched on ``group_by``."""


@dataclass(frozen=True)
class Detect:
    all: tuple[str, ...] = ()
    any: tuple[str, ...] = ()

    def fits(self, names: set[str]) -> bool:
        if not self.all and not self.any:
            return False
        return all(n in names for n in self.all) and (not self.any or any(n in names for n in self.any))

    def why(self, names: set[str]) -> str:
        found = [n for n in self.all if n in names] + [n for n in self.any if n in names][:1]
        return ", ".join(found)


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    metrics: Mapping[str, str]
    """Canonical metric -> PromQL template (read with query_range)."""
    families: Mapping[str, Family] = field(default_factory=dict)
    detect: Detect = field(default_factory=Detect)
    samples: Mapping[str, str] = field(default_factory=dict)
    """Canonical metric -> the selector whose raw samples are that metric's real samples."""


def _candidates(raw: object) -> tuple[Candidate, ...]:
    items = raw if isinstance(raw, list) else [raw]
    out = []
    for item in items:
        if isinstance(item, dict):
            out.append(Candidate(str(item["metric"]), str(item.get("unit", "s"))))
        else:
            out.append(Candidate(str(item)))
    return tuple(out)


def _family(kind: str, body: dict) -> Family:
    limit = body.get("limit")
    return Family(
        kind=kind,
        candidates=_candidates(body["metric"]),
        match=str(body.get("match", "")),
        selector=str(body.get("selector", "default")),
        group_by=tuple(body.get("group_by", ("instance",))),
        counter=str(body.get("kind", "counter")),
        limit=_family(kind, {"group_by": body.get("group_by", ("instance",)), **limit}) if limit else None,
    )


def _flat(expr: object) -> str:
    return " ".join(str(expr).split())


@lru_cache(maxsize=1)
def load_profiles() -> Mapping[str, Profile]:
    """The packaged profiles (read once), in the order ``profile: auto`` tries them."""
    doc = load_yaml(PROFILES_PATH.read_text(encoding="utf-8"))
    profiles: dict[str, Profile] = {}
    for name, body in doc["profiles"].items():
        detect = body.get("detect") or {}
        profiles[name] = Profile(
            name=name,
            description=_flat(body.get("description", "")),
            metrics=MappingProxyType({m: _flat(e) for m, e in (body.get("metrics") or {}).items()}),
            families=MappingProxyType(
                {kind: _family(kind, spec) for kind, spec in (body.get("families") or {}).items()}
            ),
            detect=Detect(tuple(detect.get("all", ())), tuple(detect.get("any", ()))),
            samples=MappingProxyType({m: _flat(e) for m, e in (body.get("samples") or {}).items()}),
        )
    return MappingProxyType(profiles)


def profile_names() -> tuple[str, ...]:
    return tuple(load_profiles())


def detect_profile(names: set[str]) -> tuple[Profile | None, str]:
    """The first profile whose ``detect`` fits these metric names, and why (one line)."""
    for profile in load_profiles().values():
        if profile.detect.fits(names):
            return (
                profile,
                f"profile {profile.name} picked automatically: the selector has {profile.detect.why(names)}",
            )
    shown = ", ".join(sorted(names)[:12]) + (f" and {len(names) - 12} more" if len(names) > 12 else "")
    known = ", ".join(load_profiles())
    return None, (
        f"profile auto: no profile fits the metric names the selector has ({shown or 'none'}); "
        f"pick one of {known} or write the queries"
    )


VECTOR_SELECTOR = re.compile(r"([A-Za-z_:][A-Za-z0-9_:]*)\s*(\{[^{}]*\})")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
BARE_NAME = re.compile(r"(?<![A-Za-z0-9_:.\"'])([A-Za-z_:][A-Za-z0-9_:]*)(?![A-Za-z0-9_:]|\s*[({])")
KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right", "offset", "bool",
                      "and", "or", "unless", "inf", "nan"})  # fmt: skip


def sample_selector(promql: str) -> str | None:
    """The series whose raw samples stand for a PromQL expression's real samples: its last vector
    selector (the denominator of a ratio, the only series of a rule). None when the expression
    has none (then the service's request samples stand for it)."""
    text = re.sub(r"\[[^\]]*\]|\boffset\s+\S+", " ", GROUPING.sub(" ", promql))
    found = [(m.start(), m.group(1) + m.group(2)) for m in VECTOR_SELECTOR.finditer(text)]
    braced = [(m.start(), m.end()) for m in VECTOR_SELECTOR.finditer(text)]
    found += [
        (m.start(), m.group(1))
        for m in BARE_NAME.finditer(text)
        if m.group(1).lower() not in KEYWORDS and not any(a <= m.start() < b for a, b in braced)
    ]
    return max(found)[1] if found else None


def format_duration(seconds: float) -> str:
    """A Prometheus duration: ``90`` -> ``1m30s``, ``1.5`` -> ``1s500ms``, ``3600`` -> ``1h``."""
    ms = round(seconds * 1000)
    if ms <= 0:
        raise ValueError(f"duration must be positive, got {seconds!r}")
    parts: list[str] = []
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000), ("ms", 1)):
        count, ms = divmod(ms, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)


def normalize_selector(selector: str) -> str:
    """``{a="b"}`` and ``a="b", `` both become ``a="b"``: the placeholder adds the braces."""
    text = selector.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    return text.rstrip(",").strip()


def _substitute_selector(template: str, placeholder: str, selector: str) -> str:
    if selector:
        return template.replace(placeholder, selector)
    # `x{{selector}}` -> `x`, `x{a="b",{selector}}` -> `x{a="b"}`
    return template.replace("{" + placeholder + "}", "").replace("," + placeholder + "}", "}")


def render(
    template: str, *, selector: str = "", http_selector: str | None = None, range_s: float, step_s: float
) -> str:
    """Fill the placeholders of one PromQL template (see promql.yaml)."""
    sel = normalize_selector(selector)
    http_sel = sel if http_selector is None else normalize_selector(http_selector)
    out = _substitute_selector(template, "{http_selector}", http_sel)
    out = _substitute_selector(out, "{selector}", sel)
    return out.replace("{range}", format_duration(range_s)).replace("{step}", format_duration(step_s))


@dataclass(frozen=True)
class StepChoice:
    step_s: float
    note: str | None = None
    """Set when the step had to be coarser than asked (the 11,000-point limit)."""


def _round_up_nice(step: float) -> float:
    if step < 1:
        return math.ceil(step * 1000) / 1000
    for nice in NICE_STEPS_S:
        if nice >= step:
            return float(nice)
    return float(math.ceil(step / 86400) * 86400)


def choose_step(
    window_s: float,
    scrape_interval_s: float,
    *,
    requested_s: float | None = None,
    target_points: int = TARGET_POINTS,
) -> StepChoice:
    """The step of a range query over ``window_s`` seconds.

    Without a request: about ``target_points`` points, never finer than the scrape interval
    (finer steps only repeat samples), rounded up to a round value (1, 2, 5, 10, 15, 30 s, 1 m...).
    With a request (e.g. 1 s for the judge), that step. Either way never more than Prometheus'
    11,000 points per series: then the step is raised and the note says so.
    """
    if window_s <= 0:
        raise ValueError(f"the window must be positive, got {window_s!r} s")
    if scrape_interval_s <= 0:
        raise ValueError(f"the scrape interval must be positive, got {scrape_interval_s!r} s")
    if requested_s is not None and requested_s <= 0:
        raise ValueError(f"the step must be positive, got {requested_s!r} s")
    if requested_s is None:
        step = _round_up_nice(max(scrape_interval_s, window_s / target_points))
    else:
        step = requested_s
    floor = window_s / MAX_POINTS
    if step < floor:
        raised = math.ceil(floor) if floor >= 1 else math.ceil(floor * 1000) / 1000
        note = (
            f"step raised from {format_duration(step)} to {format_duration(raised)}: "
            f"{int(window_s / step) + 1:,} points per series would pass Prometheus' "
            f"{MAX_POINTS:,}-point limit"
        )
        return StepChoice(float(raised), note)
    return StepChoice(float(step))


def rate_range(step_s: float, scrape_interval_s: float) -> float:
    """The window of rate()/increase(): at least four scrapes and at least one step plus a scrape,
    so consecutive points overlap and none falls between samples."""
    return max(step_s + scrape_interval_s, 4 * scrape_interval_s)
