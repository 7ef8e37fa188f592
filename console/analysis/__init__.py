"""Deterministic analysis of a deployment snapshot: ``analyze(snapshot) -> Decision``.

Steps:

1. ``traffic.judge_traffic`` when the snapshot carries counts (a live window): errors, slow
   requests and failed scrapes per route as counts against traffic, always-valid tests with
   Benjamini–Hochberg over the routes, against a healthy baseline;
2. ``metrics.judge_metric`` per series the counts do not judge: baseline (before ``deployed_at``)
   against the verification window, on its tail (persistence), with a pre-deploy onset search
   (attribution); ``trends.project`` for resources that climb to a limit;
3. ``metrics.group_incident``: metrics already degraded before the deploy that share an onset are one
   incident; ``metrics.explain_by_load``: latency/cpu rises that only follow a traffic rise are load;
4. ``logs.mine_log_patterns`` (drain3 templates, before/after counts, root-cause category), optional:
   if it is missing or fails, the metrics still decide and a note says so;
5. ``verdict.apply_rules``: the first rule of the verdict table that applies, severity, confidence,
   summary, root cause, actions.

``scipy.stats`` and ``scipy.special`` are imported inside the functions that use them: importing
them takes about 1 s, and the approval path (``python -m console approve``, the API) imports this
package for a few limits without analysing anything.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from console.analysis.metrics import (
    NORMAL,
    Level,
    MetricJudgement,
    explain_by_load,
    group_incident,
    judge_metric,
)
from console.analysis.traffic import Traffic, counted_metrics, judge_traffic, traffic_judgements
from console.analysis.trends import (
    DEFAULT_HORIZON_S,
    HEADROOM,
    Projection,
    duration_text,
    is_resource,
    project,
    projection_text,
    trend_strength,
)
from console.analysis.verdict import apply_rules
from console.domain.models import Classification, Decision, LogPattern, Snapshot
from console.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["NORMAL", "Level", "analyze", "analyze_document", "judge_all", "judge_snapshot_metrics"]


def judge_snapshot_metrics(
    snapshot: Snapshot, level: Level = NORMAL, *, skip: set[str] | frozenset[str] = frozenset()
) -> list[MetricJudgement]:
    """The point judge on every series but ``skip`` (those the counts judge)."""
    deployed = snapshot.deployment.deployed_at.timestamp()
    out = []
    for name in sorted(snapshot.metrics):
        if name in skip:
            continue
        times, values = snapshot.metrics[name]
        out.append(
            judge_metric(
                name, np.asarray(times, dtype=float), np.asarray(values, dtype=float), deployed, level
            )
        )
    return out


def judge_traffic_of(snapshot: Snapshot, level: Level = NORMAL) -> Traffic | None:
    """The count tests of a snapshot that carries counts (None otherwise)."""
    evidence = snapshot.evidence
    if evidence is None or not evidence.has_counts:
        return None
    dep = snapshot.deployment
    return judge_traffic(
        evidence,
        dep.deployed_at.timestamp(),
        float("inf"),
        alpha=level.alpha,
        version=dep.version,
        previous=dep.previous_version,
    )


def apply_trends(judgements: list[MetricJudgement], snapshot: Snapshot, level: Level = NORMAL) -> None:
    """A resource climbing to its limit within the horizon is a regression, with its projection."""
    deployed = snapshot.deployment.deployed_at.timestamp()
    horizon = DEFAULT_HORIZON_S
    if snapshot.evidence is not None and snapshot.evidence.trend_horizon_s:
        horizon = snapshot.evidence.trend_horizon_s
    for j in judgements:
        if not is_resource(j.name) or j.status not in ("pass", "transient", "improved", "regression"):
            continue
        times, values = snapshot.metrics[j.name]
        p = project(times, values, 1.0, deployed, alpha=level.alpha, horizon_s=horizon)
        if p is None:
            continue
        if not p.reaches:
            _flat_rise(j, p)
            continue
        text = projection_text(p, j.name)
        j.status = "regression"
        j.result.classification = Classification.HIGH
        j.result.basis = "trend"
        j.result.projection = text
        j.result.reason = f"{text}; {j.result.reason}"
        j.strength = max(j.strength, trend_strength(p))


def judge_all(snapshot: Snapshot, level: Level = NORMAL) -> tuple[list[MetricJudgement], Traffic | None]:
    """Every metric's judgement, as the decision sees it: counts where the snapshot has them, points
    for the rest, resources projected to their limit (the approval card quotes these numbers)."""
    traffic = judge_traffic_of(snapshot, level)
    skip = counted_metrics(traffic) if traffic is not None else set()
    judgements = judge_snapshot_metrics(snapshot, level, skip=skip)
    if traffic is not None:
        judgements += traffic_judgements(traffic, level.alpha)
    apply_trends(judgements, snapshot, level)
    return judgements, traffic


def _flat_rise(j: MetricJudgement, p: Projection) -> None:
    """A resource that rose after the deploy but does not climb to its limit and keeps its
    headroom: a heavier version, not a regression (the guard still watches the limit)."""
    if j.status != "regression" or j.result.guard or (j.tail_level or 0.0) >= HEADROOM or p.reaches:
        return
    if p.latest is not None and p.latest <= p.horizon_s:
        return
    j.status = "pass"
    j.result.classification = Classification.PASS
    j.result.reason = (
        f"higher after the deploy but flat and under {HEADROOM:.0%} of its limit (no climb to it within "
        f"{duration_text(p.horizon_s)}): room enough; {j.result.reason}"
    )
    j.strength = 0.0


def _patterns(snapshot: Snapshot, notes: list[str]) -> list[LogPattern]:
    if not snapshot.logs:
        return []
    from console.analysis.logs import mine_log_patterns

    try:
        return mine_log_patterns(snapshot.logs, snapshot.deployment.deployed_at)
    except Exception as exc:
        log.warning("log mining failed: %s", type(exc).__name__)
        notes.append(f"log mining failed ({type(exc).__name__}): verdict from metrics only")
        return []


def _rps_after(snapshot: Snapshot) -> float | None:
    series = snapshot.metrics.get("requests_per_second")
    if not series:
        return None
    times, values = (np.asarray(s, dtype=float) for s in series)
    after = values[times >= snapshot.deployment.deployed_at.timestamp()]
    return float(np.median(after)) if after.size else None


def _notes(snapshot: Snapshot, judgements: list[MetricJudgement], traffic: Traffic | None) -> list[str]:
    notes: list[str] = []
    if snapshot.evidence is not None:
        notes.extend(snapshot.evidence.notes)
        if snapshot.evidence.profile_reason:
            notes.append(snapshot.evidence.profile_reason)
    if traffic is not None:
        notes.extend(traffic.notes)
    if not judgements:
        notes.append("the snapshot has no metrics")
    elif traffic is None and all(j.status == "nodata" for j in judgements):
        notes.append(
            "no metric has enough points on both sides of the deploy: the verdict is not backed by metrics"
        )
    return notes


def analyze(
    snapshot: Snapshot,
    settings: Settings | None = None,
    *,
    level: Level = NORMAL,
    patterns: list[LogPattern] | None = None,
) -> Decision:
    """The rules analyzer's decision for one snapshot (``analyzer="rules"``, ``rules_verdict`` set).

    ``level`` sets how strong a metric shift must be to count (the live loop asks again at a
    stricter level before it decides early on points); ``patterns`` reuses log patterns mined
    already for the same snapshot (mining is the slow part of a second look)."""
    del settings  # the rules analyzer needs none today; kept for a stable signature
    judgements, traffic = judge_all(snapshot, level)
    notes = _notes(snapshot, judgements, traffic)
    group_incident(judgements)
    load = explain_by_load(judgements)
    if load is not None:
        notes.append(f"traffic rose x{load:.2f} after the deploy; latency/cpu judged against that load")
    if patterns is None:
        patterns = _patterns(snapshot, notes)
    history = snapshot.evidence.history if snapshot.evidence is not None else None
    return apply_rules(
        snapshot.deployment,
        judgements,
        patterns,
        _rps_after(snapshot),
        notes,
        traffic=traffic,
        history=history,
    )


def analyze_document(doc: dict[str, Any]) -> Decision:
    """Validate a snapshot document (SnapshotError on bad input) and analyze it."""
    from console.domain.snapshot import parse_snapshot

    return analyze(parse_snapshot(doc))
