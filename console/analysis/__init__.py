"""Deterministic analysis of a deployment snapshot: ``analyze(snapshot) -> Decision``.

Steps:

1. ``metrics.judge_metric`` per series: baseline (before ``deployed_at``) against the verification
   window, on its tail (persistence), with a pre-deploy onset search (attribution);
2. ``metrics.group_incident``: metrics already degraded before the deploy that share an onset are one
   incident; ``metrics.explain_by_load``: latency/cpu rises that only follow a traffic rise are load;
3. ``logs.mine_log_patterns`` (drain3 templates, before/after counts, root-cause category), optional:
   if it is missing or fails, the metrics still decide and a note says so;
4. ``verdict.decide``: guards, verdict, severity, confidence, summary, root cause, actions.
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
from console.analysis.verdict import decide
from console.domain.models import Decision, LogPattern, Snapshot
from console.settings import Settings

log = logging.getLogger(__name__)

__all__ = ["NORMAL", "Level", "analyze", "analyze_document", "judge_snapshot_metrics"]


def judge_snapshot_metrics(snapshot: Snapshot, level: Level = NORMAL) -> list[MetricJudgement]:
    deployed = snapshot.deployment.deployed_at.timestamp()
    out = []
    for name in sorted(snapshot.metrics):
        times, values = snapshot.metrics[name]
        out.append(
            judge_metric(
                name, np.asarray(times, dtype=float), np.asarray(values, dtype=float), deployed, level
            )
        )
    return out


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


def analyze(
    snapshot: Snapshot,
    settings: Settings | None = None,
    *,
    level: Level = NORMAL,
    patterns: list[LogPattern] | None = None,
) -> Decision:
    """The rules analyzer's decision for one snapshot (``analyzer="rules"``, ``rules_verdict`` set).

    ``level`` sets how strong a metric shift must be to count (the live loop asks again at a
    stricter level before it decides early); ``patterns`` reuses log patterns mined already for
    the same snapshot (mining is the slow part of a second look)."""
    del settings  # the rules analyzer needs none today; kept for a stable signature
    notes: list[str] = []
    judgements = judge_snapshot_metrics(snapshot, level)
    if not judgements:
        notes.append("the snapshot has no metrics")
    elif all(j.status == "nodata" for j in judgements):
        notes.append(
            "no metric has enough points on both sides of the deploy: the verdict is not backed by metrics"
        )
    group_incident(judgements)
    load = explain_by_load(judgements)
    if load is not None:
        notes.append(f"traffic rose x{load:.2f} after the deploy; latency/cpu judged against that load")
    if patterns is None:
        patterns = _patterns(snapshot, notes)
    return decide(snapshot.deployment, judgements, patterns, _rps_after(snapshot), notes)


def analyze_document(doc: dict[str, Any]) -> Decision:
    """Validate a snapshot document (SnapshotError on bad input) and analyze it."""
    from console.domain.snapshot import parse_snapshot

    return analyze(parse_snapshot(doc))
