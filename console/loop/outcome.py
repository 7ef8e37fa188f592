"""Measured outcomes: did the service recover after the loop acted (or stay healthy when it did not)?

The post-action window is judged by the same metric judge as a deploy
(:func:`console.analysis.analyze`, metrics only): the pre-deploy baseline against the window after
the actions, as if the window's start were a deploy. The status:

- ``not_resolved``: a hard guard fires, or a user-facing metric (error rate, p95 latency,
  restarts) is still worse than before the deploy (a regression, or a degradation that began
  before the deploy and goes on);
- ``inconclusive``: neither error rate nor latency has enough real samples on both sides (look-back
  copies never count: a Prometheus that was down for most of the window gives too few), or only
  other metrics (cpu, memory below its guard, throughput, ...) still differ from before the deploy;
- ``resolved``: no metric is worse than before the deploy.

Whether the decision *held* (:func:`decision_held`) comes from this measured status and from
whether a remediation really ran, never from a scenario's expected verdict.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from console.analysis import analyze
from console.analysis.verdict import USER_FACING
from console.domain.actions import REMEDIATIONS
from console.domain.models import Classification, Decision, format_time
from console.domain.snapshot import parse_snapshot

RESOLVED = "resolved"
NOT_RESOLVED = "not_resolved"
INCONCLUSIVE = "inconclusive"
MEASURED_STATUSES = (RESOLVED, NOT_RESOLVED, INCONCLUSIVE)

PROMETHEUS = "prometheus"
RECORDED = "recorded scenario segment"

CORE = ("error_rate", "latency_p95_ms")
"""Metrics without which recovery cannot be judged."""


def remediation_ran(executed: Iterable[Mapping[str, Any]]) -> bool:
    """Whether an action that changes the service was carried out (simulated counts for a
    scenario; a server dry run, a failure or a refusal does not)."""
    return any(
        a.get("name") in REMEDIATIONS and a.get("status") == "done" and not a.get("dry_run")
        for a in executed
        if isinstance(a, Mapping)
    )


def _points(metrics: Mapping[str, list[list[Any]]], start: str | None, end: str | None) -> dict[str, list]:
    """The points of each metric with ``start <= ts < end`` (RFC 3339 texts compared as instants)."""
    lo = _epoch(start) if start else float("-inf")
    hi = _epoch(end) if end else float("inf")
    return {name: [p for p in points if lo <= _epoch(p[0]) < hi] for name, points in metrics.items()}


def _epoch(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _span(metrics: Mapping[str, list[list[Any]]]) -> tuple[str | None, str | None]:
    stamps = [p[0] for points in metrics.values() for p in points]
    if not stamps:
        return None, None
    ordered = sorted(stamps, key=_epoch)
    return ordered[0], ordered[-1]


def judge_recovery(
    deployment: Mapping[str, Any],
    baseline: Mapping[str, list[list[Any]]],
    window: Mapping[str, list[list[Any]]],
    *,
    window_start: str,
    window_end: str,
    baseline_start: str | None = None,
    baseline_end: str | None = None,
    source: str = PROMETHEUS,
    simulated: bool = False,
    now: datetime | None = None,
    decisive: Sequence[str] = (),
    evidence: tuple[Mapping[str, Any] | None, Mapping[str, Any] | None] = (None, None),
) -> dict[str, Any]:
    """The ``measured`` document: ``baseline`` (pre-deploy points) against ``window`` (post-action
    points), both ``{metric: [[ts, value], ...]}``; ``evidence`` the counts of the baseline's fetch
    and of the window's (a live service), judged the same way. ``decisive``: the metrics the
    decision rested on (:func:`decisive_metrics`), judged in place of the default set when given."""
    first, _ = _span(baseline)
    merged = {
        name: sorted(list(baseline.get(name, [])) + list(window.get(name, [])), key=lambda p: _epoch(p[0]))
        for name in sorted(set(baseline) | set(window))
    }
    doc: dict[str, Any] = {
        "deployment": {**dict(deployment), "deployed_at": window_start},
        "metrics": {name: points for name, points in merged.items() if points},
        "logs": [],
    }
    counts = merge_evidence(evidence[0], evidence[1], _epoch(str(deployment.get("deployed_at"))))
    if counts is not None:
        doc["evidence"] = counts
    decision = analyze(parse_snapshot(doc), patterns=[])
    if decisive:
        status, reason = classify_decisive(decision, decisive, end_levels(window))
    else:
        status, reason = classify_recovery(decision, end_levels(window))
    return {
        "status": status,
        "reason": reason,
        "source": source,
        "simulated": simulated,
        "window": {"start": window_start, "end": window_end},
        "baseline": {
            "start": baseline_start or first,
            "end": baseline_end or deployment.get("deployed_at"),
        },
        "metrics": {m.name: m.to_dict() for m in decision.metrics},
        "measured_at": format_time(now or datetime.now(UTC)),
    }


def inconclusive(
    reason: str,
    *,
    source: str = PROMETHEUS,
    simulated: bool = False,
    window: tuple[str | None, str | None] = (None, None),
    baseline: tuple[str | None, str | None] = (None, None),
    now: datetime | None = None,
) -> dict[str, Any]:
    """A ``measured`` document for a window that could not be judged (no source, a source error)."""
    return {
        "status": INCONCLUSIVE,
        "reason": reason,
        "source": source,
        "simulated": simulated,
        "window": {"start": window[0], "end": window[1]},
        "baseline": {"start": baseline[0], "end": baseline[1]},
        "metrics": {},
        "measured_at": format_time(now or datetime.now(UTC)),
    }


def _worse(decision: Decision) -> list[str]:
    return [m.name for m in decision.metrics if m.classification in (Classification.HIGH, Classification.LOW)]


def end_levels(window: Mapping[str, list[list[Any]]]) -> dict[str, float]:
    """Each metric's level at the end of the window: the median of its last third (at least one
    point). A service that recovers during the window is judged on where it ended, and the reason
    quotes that level, not the window's median (which still holds the failing first seconds)."""
    levels = {}
    for name, points in window.items():
        values = [float(p[1]) for p in sorted(points, key=lambda p: _epoch(p[0])) if _finite(p[1])]
        if values:
            levels[name] = statistics.median(values[-max(1, len(values) // 3) :])
    return levels


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def merge_evidence(
    before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, deployed_at: float
) -> dict[str, Any] | None:
    """One evidence section for the recovery judge: the baseline fetch's counts up to the deploy and
    the post-action window's counts (both from the same source, so their buckets agree)."""
    if not isinstance(before, Mapping) or not isinstance(after, Mapping):
        return None

    def upto(series: list[Any], keep: Any) -> list[Any]:
        return [{**s, "points": [p for p in s.get("points", []) if keep(p[0])]} for s in series]

    def side(doc: Mapping[str, Any], keep: Any) -> tuple[list[Any], list[Any]]:
        latency = doc.get("latency") or {}
        return upto(list(doc.get("requests") or []), keep), upto(list(latency.get("series") or []), keep)

    early, early_latency = side(before, lambda t: t <= deployed_at)
    late, late_latency = side(after, lambda t: t > deployed_at)
    bounds = (before.get("latency") or {}).get("bounds") or []
    same_buckets = bounds == ((after.get("latency") or {}).get("bounds") or [])
    scrapes_b, scrapes_a = before.get("scrapes") or {}, after.get("scrapes") or {}
    return {
        **dict(after),
        "requests": early + late,
        "latency": {"bounds": bounds, "series": early_latency + late_latency}
        if same_buckets
        else after.get("latency"),
        "scrapes": {
            key: [t for t in scrapes_b.get(key, []) if t <= deployed_at] + list(scrapes_a.get(key, []))
            for key in ("up", "down")
        },
        "restarts": [t for t in before.get("restarts") or [] if t <= deployed_at]
        + list(after.get("restarts") or []),
        "history": before.get("history") or {},
        "reference": before.get("reference"),
    }


def classify_recovery(decision: Decision, ends: Mapping[str, float] | None = None) -> tuple[str, str]:
    """(status, one-line reason) from the judge's decision on baseline vs post-action window;
    ``ends`` are the metrics' levels at the window's end (:func:`end_levels`) for the reason."""
    by_name = {m.name: m for m in decision.metrics}
    worse = _worse(decision)
    if decision.guards:
        return NOT_RESOLVED, "still failing after the actions: " + "; ".join(decision.guards)
    if decision.rule == "insufficient-evidence":
        return INCONCLUSIVE, "not enough real samples to judge recovery: " + decision.reasoning.split("; ")[0]
    user = [name for name in worse if name in USER_FACING]
    if user:
        detail = "; ".join(f"{n}: {by_name[n].reason}" for n in user)
        return NOT_RESOLVED, f"still worse than before the deploy: {detail}"
    judged = [n for n in CORE if n in by_name and by_name[n].classification is not Classification.NODATA]
    if not judged:
        missing = ", ".join(CORE)
        return INCONCLUSIVE, f"not enough points to judge recovery ({missing} lack data on one side)"
    if worse:
        detail = "; ".join(f"{n}: {by_name[n].reason}" for n in worse)
        return INCONCLUSIVE, f"user-facing metrics are back, but other metrics still differ: {detail}"
    ends = ends or {}
    levels = ", ".join(
        f"{n} {_fmt(n, by_name[n].baseline_median)} before the deploy, "
        + (
            f"{_fmt(n, ends[n])} at the end of the window"
            if n in ends
            else f"{_fmt(n, by_name[n].after_median)} in the window"
        )
        for n in judged
    )
    return RESOLVED, f"no metric is worse than before the deploy ({levels})"


# -- what the decision was about: its metrics, and the instance's health -----------------------------------

CRASH_METRICS = ("pod_restarts",)
"""Checked besides the decisive metrics when the decision was about a crash loop."""


def decisive_metrics(decision: Mapping[str, Any]) -> list[str]:
    """The metrics a decision rested on: those behind a hard guard and those that moved the wrong
    way (memory for a leak, the error rate of a failing handler); a crash loop adds the restarts.
    Empty when nothing moved (a CONTINUE): the default set is judged then."""
    items = decision.get("metrics")
    metrics = items.values() if isinstance(items, Mapping) else items if isinstance(items, list) else []
    names = [
        str(m.get("name"))
        for m in metrics
        if isinstance(m, Mapping)
        and m.get("name")
        and (m.get("guard") or m.get("classification") in ("High", "Low"))
    ]
    guards = [str(g).split(" ", 1)[0] for g in decision.get("guards") or [] if isinstance(g, str)]
    names += [g for g in guards if g not in names]
    if "pod_restarts" in names or any("crash" in str(g) for g in decision.get("guards") or []):
        names += [m for m in CRASH_METRICS if m not in names]
    return sorted(set(names), key=names.index)


def classify_decisive(
    decision: Decision, decisive: Sequence[str], ends: Mapping[str, float] | None = None
) -> tuple[str, str]:
    """(status, reason) judging only the metrics the decision rested on: not resolved while a guard
    fires (any metric: safety first) or one of them is still worse; inconclusive when one of them
    has no points to judge; else resolved, quoting them."""
    by_name = {m.name: m for m in decision.metrics}
    if decision.guards:
        return NOT_RESOLVED, "still failing after the actions: " + "; ".join(decision.guards)
    wanted = [n for n in decisive if n in by_name or n not in CRASH_METRICS]
    worse = [
        n
        for n in wanted
        if n in by_name and by_name[n].classification in (Classification.HIGH, Classification.LOW)
    ]
    if worse:
        detail = "; ".join(f"{n}: {by_name[n].reason}" for n in worse)
        return NOT_RESOLVED, f"what the decision was about is still worse than before: {detail}"
    missing = [n for n in wanted if n not in by_name or by_name[n].classification is Classification.NODATA]
    if missing:
        return INCONCLUSIVE, f"not enough points to judge what the decision was about ({', '.join(missing)})"
    ends = ends or {}
    levels = ", ".join(
        f"{n} {_fmt(n, by_name[n].baseline_median)} before, "
        + (
            f"{_fmt(n, ends[n])} at the end of the window"
            if n in ends
            else f"{_fmt(n, by_name[n].after_median)}"
        )
        for n in wanted
    )
    return RESOLVED, f"what the decision was about is back to its baseline ({levels})"


def health_problem(health: Mapping[str, Any] | None) -> str | None:
    """Why the instance's state (an executor's probe at the window's end) rules out "resolved": not
    ready, crash-looping, or still switching; None when it is healthy or unknown."""
    if not isinstance(health, Mapping) or "version" not in health:
        return None
    restarts = health.get("restarts")
    crash = isinstance(restarts, int) and not isinstance(restarts, bool) and restarts >= 2
    if health.get("ready") is False or crash or health.get("deploying") is True:
        return str(health.get("text") or "not ready")
    return None


def gate_on_health(measured: Mapping[str, Any], health: Mapping[str, Any]) -> dict[str, Any]:
    """``measured`` with the instance's state at the window's end: a service that is not ready or
    crash-looping is never resolved, whatever its remaining metrics say (they may be "back" only
    because nothing serves)."""
    out = {**measured, "health": dict(health)}
    problem = health_problem(health)
    if problem is not None:
        out["status"] = NOT_RESOLVED
        out["reason"] = f"the instance is unhealthy at the window's end ({problem}); {measured.get('reason')}"
    return out


def _fmt(name: str, value: float | None) -> str:
    from console.analysis.metrics import format_value

    return format_value(name, value)


def decision_held(
    verdict: str | None, executed: Iterable[Mapping[str, Any]], measured_status: str | None
) -> bool | None:
    """Whether the decision proved right, from the measured outcome:

    - ROLLBACK (or any decision) whose remediation ran: held when the service recovered;
    - ROLLBACK whose remediation did not run (rejected, expired, failed): held when the problem
      persisted (the call was right), not held when the service recovered anyway;
    - CONTINUE: held when the service stayed healthy;
    - ESCALATE without a remediation: held when the problem persisted (a human was needed),
      unknown when it went away;
    - an inconclusive measurement: unknown.
    """
    if measured_status not in (RESOLVED, NOT_RESOLVED):
        return None
    if any(a.get("status") == "unknown" for a in executed if isinstance(a, Mapping)):
        return None  # whether the remediation ran is not known: the measurement cannot judge the call
    resolved = measured_status == RESOLVED
    if remediation_ran(executed):
        return resolved
    if verdict == "CONTINUE":
        return resolved
    if verdict == "ROLLBACK":
        return not resolved
    if verdict == "ESCALATE":
        return True if not resolved else None
    return None


def scenario_segment(
    doc: Mapping[str, Any], executed: Iterable[Mapping[str, Any]]
) -> tuple[str, dict[str, Any]] | None:
    """The recorded post-action segment of a scenario file for what happened: ``("executed", seg)``
    when a remediation ran, else ``("not_executed", seg)``; None when the file has none."""
    post = doc.get("post_action")
    if not isinstance(post, Mapping):
        return None
    key = "executed" if remediation_ran(executed) else "not_executed"
    segment = post.get(key)
    return (key, dict(segment)) if isinstance(segment, Mapping) else None


def window_of(metrics: Mapping[str, list[list[Any]]]) -> tuple[str | None, str | None]:
    """First and last timestamps of a set of series."""
    return _span(metrics)


def split_baseline(metrics: Mapping[str, list[list[Any]]], deployed_at: str) -> dict[str, list]:
    """The points before the deploy."""
    return _points(metrics, None, deployed_at)
