"""What the Scenarios page's Live section draws, as pure functions (no Streamlit, no network): which
configured services act for real, the deploy and action markers, the live charts of the four
metrics an operator watches during a deploy, and the words for where a live run stands."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import plotly.graph_objects as go

from console.domain.models import parse_time
from console.loop.verification import EARLY
from console.presentation.charts import COLORS, metric_title, with_gaps
from console.telemetry import ServiceConfig, ServicesConfig

LIVE_METRICS = ("error_rate", "latency_p95_ms", "requests_per_second", "memory_utilization")
"""The charts of the Live section, in the order shown."""

SIMULATED_EXECUTOR = "simulated"
DEPLOYER_EXECUTOR = "demo-service"
"""The executor type whose deployer API the Live section can deploy through."""

MARKER_COLORS = {
    "deploy": COLORS["deploy"],
    "rollback": "#D62728",
    "restart": "#FF9F1C",
    "action": "#6A1B9A",
}

# metric -> (factor applied to the value, unit shown after it, axis title)
_SCALES: dict[str, tuple[float, str, str]] = {
    "error_rate": (100.0, "%", "% of requests"),
    "memory_utilization": (100.0, "%", "% of the memory limit"),
    "cpu_utilization": (100.0, "%", "% of one core"),
    "latency_p95_ms": (1.0, "ms", "ms"),
    "requests_per_second": (1.0, "req/s", "requests / s"),
}

LIVE_TITLES = {
    "error_rate": "Error rate",
    "latency_p95_ms": "p95 latency",
    "requests_per_second": "Request rate",
    "memory_utilization": "Memory use",
}


@dataclass(frozen=True)
class Marker:
    at: float
    """Unix seconds."""
    label: str
    kind: str
    """``deploy``, ``rollback``, ``restart`` (the deployer's switches) or ``action`` (the loop's)."""
    short: str = ""
    """What the chart writes beside the line (the label when empty)."""


MERGE_ACTIONS_S = 3.0
"""The loop's actions closer together than this are one marker (a rollback and its diagnostics)."""


def live_services(config: ServicesConfig) -> list[ServiceConfig]:
    """The services whose executor acts for real (any type but ``simulated``), by name."""
    return [
        service
        for _, service in sorted(config.services.items())
        if service.executor is not None
        and str(service.executor.get("type") or "").strip() not in ("", SIMULATED_EXECUTOR)
    ]


def executor_type(service: ServiceConfig) -> str:
    return str((service.executor or {}).get("type") or "").strip()


def chart_text(text: object, limit: int = 60) -> str:
    """Text from a deployer or an executor as plotly shows it: plotly reads a few HTML tags (links
    among them) in titles and annotations, so ``<``, ``>`` and ``&`` become entities; one line,
    cut to ``limit`` characters."""
    flat = " ".join(str(text).split())
    if len(flat) > limit:
        flat = flat[: limit - 1] + "…"
    return html.escape(flat, quote=False)


def _epoch(value: Any) -> float | None:
    try:
        return parse_time(str(value)).timestamp()
    except (ValueError, TypeError):
        return None


def deployer_markers(records: Iterable[Mapping[str, Any]], start: float, end: float) -> list[Marker]:
    """The deployer's switches (``GET /deployments``) inside [start, end], oldest first."""
    out = []
    for record in records:
        at = _epoch(record.get("at"))
        if at is None or not start <= at <= end:
            continue
        kind = str(record.get("kind") or "deploy")
        version = str(record.get("version") or "?")
        by = record.get("by")
        verb = {"deploy": "deploy", "rollback": "rollback to", "restart": "restart of"}.get(kind, kind)
        short = {"rollback": f"↩ {version}", "restart": f"↻ {version}"}.get(kind, version)
        out.append(
            Marker(
                at,
                chart_text(f"{verb} {version}" + (f" by {by}" if by else ""), 120),
                kind if kind in MARKER_COLORS else "deploy",
                chart_text(short, 24),
            )
        )
    return sorted(out, key=lambda m: m.at)


def action_markers(actions: Iterable[Mapping[str, Any]], start: float, end: float) -> list[Marker]:
    """The loop's actions on the service (the console's actions table) inside [start, end]; actions
    closer together than :data:`MERGE_ACTIONS_S` make one marker."""
    moments: list[tuple[float, str]] = []
    for action in actions:
        at = _epoch(action.get("started_at"))
        if at is None or not start <= at <= end:
            continue
        label = action.get("label") or f"{action.get('name')} {action.get('status')}"
        moments.append((at, f"{label}{' (simulated)' if action.get('simulated') else ''}"))
    groups: list[list[tuple[float, str]]] = []
    for at, label in sorted(moments):
        if groups and at - groups[-1][0][0] < MERGE_ACTIONS_S:
            groups[-1].append((at, label))
        else:
            groups.append([(at, label)])
    return [
        Marker(
            group[0][0],
            chart_text(" + ".join(label for _, label in group), 160),
            "action",
            chart_text(group[0][1] + (f" +{len(group) - 1}" if len(group) > 1 else ""), 28),
        )
        for group in groups
    ]


def scaled(metric: str, value: float) -> float:
    return value * _SCALES.get(metric, (1.0, "", ""))[0]


def value_text(metric: str, value: float | None) -> str:
    """A value as people read it: ``34.9 %``, ``412 ms``, ``19.8 req/s``."""
    if value is None or not math.isfinite(value):
        return "—"
    factor, unit, _ = _SCALES.get(metric, (1.0, "", ""))
    shown = value * factor
    digits = 0 if abs(shown) >= 100 else 1 if abs(shown) >= 1 or shown == 0 else 2
    return f"{shown:.{digits}f} {unit}".strip()


def live_title(metric: str) -> str:
    return LIVE_TITLES.get(metric, metric_title(metric))


def _when(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _line_trace(metric: str, x: list[datetime], y: list[float | None], unit: str) -> dict[str, Any]:
    return {
        "type": "scatter",
        "x": x,
        "y": y,
        "mode": "lines",
        "connectgaps": False,
        "name": live_title(metric),
        "line": {"color": COLORS["line"], "width": 2},
        "hovertemplate": f"%{{y:.3g}} {unit}<extra></extra>",
    }


def _marker_lines(
    markers: Sequence[Marker], middle: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(vertical lines, their labels) of the markers: deploys and rollbacks dashed and labelled at
    the top, the loop's actions dotted and labelled at the bottom; a label right of the chart's
    ``middle`` is anchored on its right so it stays inside."""
    shapes: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    tops = 0
    for marker in markers:
        color = MARKER_COLORS.get(marker.kind, COLORS["deploy"])
        is_action = marker.kind == "action"
        # a deploy and its rollback seconds apart: their labels alternate between two heights
        label_y = 0.0 if is_action else 1.0 - 0.14 * (tops % 2)
        tops += 0 if is_action else 1
        when = _when(marker.at)
        shapes.append(
            {
                "type": "line", "xref": "x", "yref": "paper", "x0": when, "x1": when, "y0": 0, "y1": 1,
                "line": {"color": color, "dash": "dot" if is_action else "dash", "width": 2},
                "name": marker.kind,
            }
        )  # fmt: skip
        annotations.append(
            {
                "x": when, "xref": "x", "yref": "paper", "y": label_y,
                "yanchor": "bottom" if is_action else "top",
                "xanchor": "right" if marker.at > middle else "left", "showarrow": False,
                "text": marker.short or marker.label, "hovertext": marker.label,
                "font": {"size": 10, "color": color}, "bgcolor": "rgba(255,255,255,0.8)",
            }
        )  # fmt: skip
    return shapes, annotations


def _percent_range(metric: str, shown: list[float]) -> list[float] | None:
    """A fixed y range for a share (errors from 0 to at least 5%, memory 0 to 100%) while the values
    fit in it; None to let the chart scale itself."""
    if metric not in ("error_rate", "memory_utilization") or (shown and max(shown) > 100):
        return None
    return [0, 100 if metric == "memory_utilization" else max(5.0, max(shown or [0]) * 1.2)]


def live_figure(
    metric: str,
    points: Sequence[tuple[float, float]],
    markers: Sequence[Marker],
    start: float,
    end: float,
    *,
    height: int = 200,
) -> go.Figure:
    """One metric over [start, end] (a fixed range, so the chart moves with time; it starts near
    the first point or marker when those begin later), its latest value in the title, deploys and
    rollbacks as labelled vertical lines at the top, the loop's actions as dotted lines labelled at
    the bottom (the full text on hover)."""
    factor, unit, axis = _SCALES.get(metric, (1.0, "", metric_title(metric)))
    gap_t, gap_v = with_gaps(np.asarray([t for t, _ in points]), np.asarray([v for _, v in points]))
    y = [None if math.isnan(v) else v * factor for v in gap_v]
    shown = [value for value in y if value is not None]
    latest = value_text(metric, points[-1][1]) if points else "no data"
    first = min([t for t, _ in points[:1]] + [m.at for m in markers[:1]], default=start)
    shown_from = max(start, first - 10.0)  # a stack younger than the window: start near its first data
    shapes, annotations = _marker_lines(markers, shown_from + (end - shown_from) / 2)
    if not points:
        annotations.append(
            {"text": "no data in this window", "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5,
             "showarrow": False, "font": {"color": "#5F6B7A"}}
        )  # fmt: skip
    layout = {
        "title": {"text": f"{live_title(metric)} · {latest}", "x": 0, "font": {"size": 14}},
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 32, "b": 6},
        "showlegend": False,
        "hovermode": "x unified",
        # times of day only (the date is today's), level and few, so four charts side by side stay legible
        "xaxis": {
            "range": [_when(shown_from), _when(end)],
            "type": "date",
            "tickformat": "%H:%M:%S",
            "tickangle": 0,
            "nticks": 4,
            "tickfont": {"size": 10},
        },
        "yaxis": {"title": {"text": axis, "font": {"size": 11}}, "rangemode": "tozero"},
        "shapes": shapes,
        "annotations": annotations,
    }
    y_range = _percent_range(metric, shown)
    if y_range is not None:
        layout["yaxis"]["range"] = y_range
    data = [_line_trace(metric, [_when(t) for t in gap_t], y, unit)]
    return go.Figure({"data": data, "layout": layout})


def early_text(verification: Mapping[str, Any] | None) -> str | None:
    """How the verification window of a live run ended, in words (None for a scenario)."""
    if not isinstance(verification, Mapping):
        return None
    elapsed = verification.get("elapsed_s")
    after = (
        f"{float(elapsed):.1f} s after the deploy" if isinstance(elapsed, int | float) else "after the deploy"
    )
    reason = str(verification.get("reason") or "").strip()
    if verification.get("ended") == EARLY:
        head = f"Decided early, {after}"
    else:
        head = f"Decided at the end of the verification window, {after}"
    return f"{head}: {reason}" if reason else head


def waiting_reason(
    verdict: str | None, confidence: float | None, plan: Mapping[str, Any] | None
) -> str | None:
    """Why a run waits for a human when its verdict is CONTINUE (nothing risky to do): its
    confidence is under the plan's auto-approve threshold. None when that is not why."""
    if str(verdict or "").upper() != "CONTINUE" or confidence is None or not isinstance(plan, Mapping):
        return None
    threshold = plan.get("threshold")
    if not isinstance(threshold, int | float) or confidence >= threshold:
        return None
    return (
        f"A human decides: the confidence {confidence * 100:.0f}% is under the auto-approve threshold "
        f"{threshold * 100:.0f}% (AUTO_APPROVE_CONFIDENCE), so even this CONTINUE's low-risk actions wait."
    )
