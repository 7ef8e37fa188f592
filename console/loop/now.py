"""What a live service looks like now: the newest samples of some metrics from its Prometheus, read
the way ``collect`` reads them (the same queries, real samples only), and whether a decision about
one of its deployments still applies (:func:`console.loop.acting.check_now`). The approval card reads
it every few seconds while it is open; nothing here writes."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from console.settings import Settings
from console.telemetry import TelemetryError, build_snapshot, service_config
from console.telemetry.times import to_epoch

LOOK_BACK_S = 300.0
"""How far back the strip reads, at most (never before the decision)."""


@dataclass(frozen=True)
class Now:
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    read_at: float = 0.0


def read_now(
    deployment: Mapping[str, Any],
    metrics: Sequence[str],
    settings: Settings,
    *,
    since: float | None = None,
    clock: Any = time.time,
) -> Now:
    """The samples of ``metrics`` from ``since`` (the decision; at most ``LOOK_BACK_S`` ago) to now;
    a source that fails is a problem line, never old figures."""
    now = clock()
    start = max(since if since is not None else now - LOOK_BACK_S, now - LOOK_BACK_S)
    try:
        config = service_config(str(deployment.get("service") or ""), settings)
        if config.prometheus is None:
            return Now(problems=[f"no Prometheus configured for {config.name}: no live figures"], read_at=now)
        snapshot = build_snapshot(replace(config, logs=None), deployment, start, now, now=now).snapshot
    except TelemetryError as exc:
        return Now(problems=[f"the live figures could not be read: {str(exc).splitlines()[0]}"], read_at=now)
    series: dict[str, list[tuple[float, float]]] = {}
    for name in metrics:
        points = []
        for ts, value in snapshot.get("metrics", {}).get(name, []):
            try:
                points.append((to_epoch(str(ts)), float(value)))
            except (TypeError, ValueError):
                continue
        series[name] = points
    return Now(series=series, read_at=now)
