"""Plotly figure builders for the console pages: pure functions, no Streamlit.

Long series are reduced before they reach the browser with min/max-preserving buckets: each
bucket keeps its first, minimum, maximum and last point, so spikes (the thing an operator looks
for) survive downsampling while the payload stays bounded.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from console.analysis.metrics import UNITS, direction_of, tolerance
from console.domain.models import Direction, MetricResult, parse_time
from console.presentation.formatting import format_duration
from console.presentation.formatting import metric_value as format_value

COLORS = {
    "line": "#4C78A8",
    "deploy": "#7F7F7F",
    "baseline": "rgba(76,120,168,0.10)",
    "after": "rgba(245,133,24,0.12)",
    "anomaly": "#D62728",
    "SUCCESS": "#2CA02C",
    "RUNNING": "#1F77B4",
    "PAUSED": "#FF9F1C",
    "FAILED": "#D62728",
    "KILLED": "#8C564B",
    "WARNING": "#FF9F1C",
}

METRIC_TITLES = {
    "error_rate": "Error rate",
    "latency_p95_ms": "p95 latency (ms)",
    "p95_latency_ms": "p95 latency (ms)",
    "cpu": "CPU",
    "cpu_percent": "CPU (%)",
    "memory": "Memory",
    "memory_mb": "Memory (MB)",
    "rps": "Requests / s",
    "restarts": "Restarts",
    "cpu_utilization": "CPU utilisation",
    "memory_utilization": "Memory utilisation",
    "pod_restarts": "Pod restarts",
    "requests_per_second": "Requests / s",
    "db_query_p95_ms": "DB query p95 (ms)",
}


def metric_title(name: str) -> str:
    return METRIC_TITLES.get(name, name.replace("_", " ").capitalize())


def axis_format(metric: str, values: Sequence[float] | np.ndarray | None = None) -> dict:
    """A value axis in the unit the captions use: ratios as %, latencies in ms, rates in req/s.
    A ratio that moves within a few tenths of a percent gets decimals (``0.8%``, ``0.9%``), so two
    ticks never read the same ``1%``."""
    unit = UNITS.get(metric)
    if unit == "percent":
        span = 1.0
        if values is not None and len(values):
            finite = np.asarray(values, dtype=float)
            finite = finite[np.isfinite(finite)]
            span = float(finite.max() - finite.min()) if finite.size else 1.0
        digits = 0 if span >= 0.1 else 1 if span >= 0.01 else 2  # ticks 1-2-5 apart, ~6 of them
        return {"tickformat": f".{digits}%", "hoverformat": f".{max(digits, 1)}%"}
    if unit == "ms" or metric.endswith("_ms"):
        return {"ticksuffix": " ms", "hoverformat": ".0f"}
    if unit == "rps":
        return {"ticksuffix": " req/s", "hoverformat": ".1f"}
    return {"hoverformat": ".3g"}


SECONDS_UNDER_S = 15 * 60
"""A time axis spanning less than this says seconds (a live window of 40 s would read "10:22 10:22")."""
DATES_OVER_S = 2 * 86400


def time_tickformat(times: Sequence[float] | np.ndarray) -> str:
    """The time axis' tick format for a series spanning these epoch seconds: seconds on short
    windows, the day on windows of several days, hours and minutes in between."""
    t = np.asarray(times, dtype=float)
    t = t[np.isfinite(t)]
    span = float(t.max() - t.min()) if t.size else 0.0
    if span < SECONDS_UNDER_S:
        return "%H:%M:%S"
    return "%b %d %H:%M" if span > DATES_OVER_S else "%H:%M"


def downsample_minmax(
    times: Sequence[float] | np.ndarray, values: Sequence[float] | np.ndarray, max_points: int
) -> tuple[np.ndarray, np.ndarray]:
    """Reduce a series to at most ``max_points`` points keeping each bucket's extremes.

    Each of ``max_points // 4`` equal-count buckets keeps its first, min, max and last points
    (in time order, duplicates removed), so the global minimum and maximum always survive.
    """
    t = np.asarray(times, dtype=float)
    v = np.asarray(values, dtype=float)
    if t.shape != v.shape:
        raise ValueError("times and values differ in length")
    n = t.size
    if max_points < 4:
        raise ValueError("max_points must be at least 4")
    if n <= max_points:
        return t, v
    buckets = max_points // 4
    edges = np.linspace(0, n, buckets + 1).astype(int)
    keep: list[np.ndarray] = []
    for lo, hi in itertools.pairwise(edges):
        if hi <= lo:
            continue
        chunk = v[lo:hi]
        idx = np.array([lo, lo + int(np.argmin(chunk)), lo + int(np.argmax(chunk)), hi - 1])
        keep.append(np.unique(idx))
    index = np.concatenate(keep)
    return t[index], v[index]


def snapshot_series(snapshot: dict) -> dict[str, tuple[list[float], list[float]]]:
    """Each metric of a snapshot as (epoch seconds, values), in time order: the charts of a
    deployment show exactly what its decision saw."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    for name, points in (snapshot.get("metrics") or {}).items():
        pairs = sorted((parse_time(ts).timestamp(), float(value)) for ts, value in points)
        out[name] = ([t for t, _ in pairs], [v for _, v in pairs])
    return out


GAP_FACTOR = 2.0
"""Samples further apart than this many typical steps have a gap between them: no line across it."""


def with_gaps(times: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Gaps stay gaps: a NaN point (null in plotly's JSON; ``connectgaps`` is off) between two
    samples more than :data:`GAP_FACTOR` typical steps apart, so a Prometheus that was down, or a
    target that was not scraped, shows as a break instead of a line drawn over missing data."""
    t = np.asarray(times, dtype=float)
    v = np.asarray(values, dtype=float)
    if t.size < 3:
        return t, v
    steps = np.diff(t)
    cut = np.nonzero(steps > GAP_FACTOR * float(np.median(steps)))[0]
    if not cut.size:
        return t, v
    return np.insert(t, cut + 1, (t[cut] + t[cut + 1]) / 2), np.insert(v, cut + 1, np.nan)


def _to_datetimes(epochs: np.ndarray) -> pd.DatetimeIndex:
    return pd.to_datetime(epochs, unit="s", utc=True)


def metric_figure(
    times: Sequence[float] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    *,
    metric: str,
    deployed_at: datetime | None = None,
    baseline_window: tuple[datetime, datetime] | None = None,
    after_window: tuple[datetime, datetime] | None = None,
    result: MetricResult | None = None,
    max_points: int = 2000,
    height: int = 260,
) -> go.Figure:
    """One metric over time: deploy as a vertical line, windows shaded, anomalies in red.

    Anomalous points are those after the deploy beyond the baseline's range, when the analysis
    classified the metric High/Low (the judge flagged the change; red points show where it is).
    The figure is built from one dict (shapes and annotations in the layout): about 10x faster
    than ``add_vrect``/``add_annotation`` one by one, which matters with six charts per page.
    """
    t, v = downsample_minmax(times, values, max_points)
    x = _to_datetimes(t)
    gap_t, gap_v = with_gaps(t, v)
    data: list[dict] = [
        {
            "type": "scattergl",
            "x": _to_datetimes(gap_t),
            "y": gap_v,
            "mode": "lines",
            "connectgaps": False,
            "name": metric_title(metric),
            "line": {"color": COLORS["line"]},
        }
    ]
    shapes: list[dict] = []
    annotations: list[dict] = []
    for window, color, label in (
        (baseline_window, COLORS["baseline"], "baseline"),
        (after_window, COLORS["after"], "verification"),
    ):
        if window:
            shapes.append(
                {
                    "type": "rect",
                    "xref": "x",
                    "yref": "paper",
                    "x0": window[0],
                    "x1": window[1],
                    "y0": 0,
                    "y1": 1,
                    "fillcolor": color,
                    "line": {"width": 0},
                    "layer": "below",
                    "name": label,
                }
            )
            annotations.append(
                {"x": window[0], "y": 1, "xref": "x", "yref": "paper", "text": label, "showarrow": False,
                 "xanchor": "left", "yanchor": "top", "font": {"size": 10, "color": "#666666"}}
            )  # fmt: skip
    if deployed_at is not None:
        shapes.append(
            {
                "type": "line",
                "xref": "x",
                "yref": "paper",
                "x0": deployed_at,
                "x1": deployed_at,
                "y0": 0,
                "y1": 1,
                "line": {"color": COLORS["deploy"], "dash": "dash", "width": 2},
                "name": "deploy",
            }
        )
        annotations.append(
            {"x": deployed_at, "y": 1, "xref": "x", "yref": "paper", "text": "deploy", "showarrow": False,
             "yanchor": "bottom"}
        )  # fmt: skip
    mask = anomaly_mask(t, v, deployed_at, result)
    if mask.any():
        data.append(
            {
                "type": "scattergl",
                "x": x[mask],
                "y": v[mask],
                "mode": "markers",
                "name": "anomaly",
                "marker": {"color": COLORS["anomaly"], "size": 6},
            }
        )
    layout = {
        "title": {"text": metric_title(metric), "x": 0, "font": {"size": 14}},
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 40, "b": 10},
        "showlegend": False,
        "hovermode": "x unified",
        "shapes": shapes,
        "annotations": annotations,
        "yaxis": axis_format(metric, v),
        "xaxis": {"tickformat": time_tickformat(t)},
    }
    return go.Figure({"data": data, "layout": layout})


def card_metric_figure(
    times: Sequence[float] | np.ndarray,
    values: Sequence[float] | np.ndarray,
    *,
    metric: str,
    title: str,
    deployed_at: datetime | None,
    baseline_level: float | None = None,
    threshold: float | None = None,
    threshold_text: str = "",
    tail_points: int = 0,
    height: int = 210,
    max_points: int = 600,
) -> go.Figure:
    """A small chart for the approval card: the series, the deploy as a dashed line, the level before
    the deploy as a dotted line, the hard guard's level in red, and the part of the window the
    summary's number is taken from shaded."""
    t, v = downsample_minmax(times, values, max_points)
    x = _to_datetimes(t)
    gap_t, gap_v = with_gaps(t, v)
    data: list[dict] = [
        {"type": "scatter", "x": _to_datetimes(gap_t), "y": gap_v, "mode": "lines", "connectgaps": False,
         "name": metric_title(metric), "line": {"color": COLORS["line"], "width": 1.6}}
    ]  # fmt: skip
    shapes: list[dict] = []
    annotations: list[dict] = []
    after = t[t >= deployed_at.timestamp()] if deployed_at is not None else np.array([])
    if tail_points and after.size:
        start = after[-min(tail_points, after.size)]
        shapes.append(
            {"type": "rect", "xref": "x", "yref": "paper", "x0": _to_datetimes(np.array([start]))[0],
             "x1": x[-1], "y0": 0, "y1": 1, "fillcolor": COLORS["after"], "line": {"width": 0},
             "layer": "below", "name": "measured"}
        )  # fmt: skip
    if deployed_at is not None:
        shapes.append(
            {"type": "line", "xref": "x", "yref": "paper", "x0": deployed_at, "x1": deployed_at, "y0": 0,
             "y1": 1, "line": {"color": COLORS["deploy"], "dash": "dash", "width": 1.5}, "name": "deploy"}
        )  # fmt: skip
        annotations.append(
            {"x": deployed_at, "y": 1, "xref": "x", "yref": "paper", "text": "deploy", "showarrow": False,
             "yanchor": "bottom", "font": {"size": 10, "color": "#666666"}}
        )  # fmt: skip
    if baseline_level is not None:
        shapes.append(
            {"type": "line", "xref": "paper", "yref": "y", "x0": 0, "x1": 1, "y0": baseline_level,
             "y1": baseline_level, "line": {"color": "#4C78A8", "dash": "dot", "width": 1}, "name": "before"}
        )  # fmt: skip
        annotations.append(
            {"x": 0, "y": baseline_level, "xref": "paper", "yref": "y", "showarrow": False,
             "text": f"before {format_value(metric, baseline_level)}", "xanchor": "left",
             "yanchor": "bottom", "font": {"size": 10, "color": "#4C78A8"}}
        )  # fmt: skip
    if threshold is not None:
        shapes.append(
            {"type": "line", "xref": "paper", "yref": "y", "x0": 0, "x1": 1, "y0": threshold, "y1": threshold,
             "line": {"color": COLORS["anomaly"], "dash": "dash", "width": 1}, "name": "guard"}
        )  # fmt: skip
        annotations.append(
            {"x": 1, "y": threshold, "xref": "paper", "yref": "y", "showarrow": False,
             "text": threshold_text or "guard", "xanchor": "right", "yanchor": "bottom",
             "font": {"size": 10, "color": COLORS["anomaly"]}}
        )  # fmt: skip
    yaxis = axis_format(metric, v if threshold is None else None)  # a guard line: the axis starts at 0
    top = max([float(np.max(v))] if v.size else [0.0])
    if threshold is not None:
        yaxis["range"] = [0, max(top, threshold) * 1.12]
    layout = {
        "title": {"text": title, "x": 0, "font": {"size": 13}},
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 36, "b": 10},
        "showlegend": False,
        "hovermode": "x unified",
        "shapes": shapes,
        "annotations": annotations,
        "yaxis": yaxis,
        "xaxis": {"nticks": 4, "tickformat": time_tickformat(t)},
    }
    return go.Figure({"data": data, "layout": layout})


def anomaly_mask(
    times: np.ndarray, values: np.ndarray, deployed_at: datetime | None, result: MetricResult | None
) -> np.ndarray:
    """Points after the deploy outside the baseline's [min, max] in the flagged direction."""
    mask = np.zeros(values.shape, dtype=bool)
    if deployed_at is None or result is None or result.classification.value not in ("High", "Low"):
        return mask
    cut = deployed_at.timestamp()
    before, after = times < cut, times >= cut
    if not before.any() or not after.any():
        return mask
    if result.classification.value == "High":
        return after & (values > values[before].max())
    return after & (values < values[before].min())


WORSE, BETTER, SAME = "worse", "better", "no meaningful change"
CHANGE_COLORS = {WORSE: "#D62728", BETTER: "#2CA02C", SAME: "#B0B7C3"}
_RATIO_TICKS = (0.1, 0.5, 1.0, 2.0, 10.0, 100.0)


def change_kind(name: str, before: float, after: float, flagged: bool) -> str:
    """Whether a metric got worse, better or did not really move, following its direction (errors up
    is worse, throughput down is worse): beyond the analyzer's tolerance in the bad direction is
    worse, in the good one better; a metric of unknown direction is worse only when the judge
    flagged it."""
    if abs(after - before) < tolerance(name, before) and not flagged:
        return SAME
    direction = direction_of(name)
    if direction is Direction.EITHER:
        return WORSE if flagged else SAME
    rose = after > before
    return WORSE if rose == (direction is Direction.INCREASE) else BETTER


def _change_text(ratio: float) -> str:
    change = (ratio - 1.0) * 100.0
    if abs(change) < 0.5:
        return "0%"
    return f"{change:+,.0f}%".replace("-", "−")


_Bar = tuple[str, float, str, str]
"""(metric title, log10 of the after/before ratio, worse | better | same, ``before → after (+x%)``)."""


def _bar(result: MetricResult, before: float, after: float) -> _Bar:
    """One bar: the after/before ratio clipped to [1/100, 100] (from a level of zero, a rise counts
    as 100, no rise as no change)."""
    raw = after / before if before > 0 else (100.0 if after > 0 else 1.0)
    ratio = float(np.clip(raw, 0.01, 100.0))
    kind = change_kind(result.name, before, after, result.classification.value in ("High", "Low"))
    text = f"{format_value(result.name, before)} → {format_value(result.name, after)} ({_change_text(ratio)})"
    return metric_title(result.name), float(np.log10(ratio)), kind, text


def _bars(
    results: Sequence[MetricResult], levels: dict[str, tuple[float | None, float | None]] | None
) -> list[_Bar]:
    """The bars, worse first, then better, then unchanged, the largest change first within each;
    a metric without a before or an after level is left out."""
    rows = []
    for r in results:
        before, after = (levels or {}).get(r.name, (r.baseline_median, r.after_median))
        if before is not None and after is not None:
            rows.append(_bar(r, before, after))
    rows.sort(key=lambda row: (list(CHANGE_COLORS).index(row[2]), -abs(row[1])))
    return rows


def _change_axis(rows: list[_Bar]) -> dict[str, Any]:
    """The x axis: the change in % on a log scale, wide enough for the largest change and the bars'
    labels (on both sides only when something went down)."""
    span = max([abs(row[1]) for row in rows] + [np.log10(2.0)])
    ticks = [np.log10(v) for v in _RATIO_TICKS if abs(np.log10(v)) <= span * 1.05]
    return {
        "title": {"text": "change vs before the deploy (log scale)"},
        "tickvals": ticks,
        "ticktext": [_change_text(10**v) for v in ticks],
        "range": [-span * 1.9 if any(row[1] < 0 for row in rows) else -span * 0.05, span * 1.9],
        "zeroline": True,
        "zerolinecolor": "#888888",
    }


def comparison_figure(
    results: Sequence[MetricResult],
    levels: dict[str, tuple[float | None, float | None]] | None = None,
    height: int | None = None,
) -> go.Figure:
    """Before vs after the deploy per metric, as the change in % on a log scale (a +5,000% latency
    and a +20% CPU are both readable), red where the metric got worse, green where it got better,
    grey where it did not move; each bar says ``before → after`` in the metric's unit. ``levels``
    gives the summary's numbers (before, now) per metric; else the results' medians are used."""
    rows = _bars(results, levels)
    fig = go.Figure()
    for kind, color in CHANGE_COLORS.items():
        part = [row for row in rows if row[2] == kind]
        if part:
            fig.add_trace(
                go.Bar(
                    x=[row[1] for row in part],
                    y=[row[0] for row in part],
                    orientation="h",
                    name=kind,
                    marker_color=color,
                    text=[row[3] for row in part],
                    textposition="outside",
                    cliponaxis=False,
                    hovertemplate="%{y}: %{text}<extra>" + kind + "</extra>",
                )
            )
    fig.update_layout(
        title={"text": "Before vs after the deploy", "x": 0, "font": {"size": 14}},
        xaxis=_change_axis(rows),
        yaxis={"categoryorder": "array", "categoryarray": [row[0] for row in reversed(rows)]},
        barmode="overlay",
        height=height or 90 + 34 * max(len(rows), 1),
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


def gantt_figure(task_runs: pd.DataFrame, height: int | None = None) -> go.Figure:
    """Task runs as a Gantt timeline on a time axis relative to the run's start (ms for runs under
    a few seconds, else s), one bar per task coloured by state, each labelled with its duration, so
    a run of a few hundred milliseconds stays readable.

    ``task_runs`` has columns task, state, start, end (see ``tables.task_runs_frame``)."""
    fig = go.Figure()
    if task_runs.empty:
        fig.update_layout(height=120, annotations=[{"text": "no task runs yet", "showarrow": False}])
        return fig
    starts = pd.to_datetime(task_runs["start"], utc=True)
    ends = pd.to_datetime(task_runs["end"], utc=True)
    origin = starts.min()
    total = max((ends.max() - origin).total_seconds(), 0.0)
    scale, unit = (1000.0, "ms") if total < 5 else (1.0, "s")
    offsets = (starts - origin).dt.total_seconds().to_numpy() * scale
    durations = (ends - starts).dt.total_seconds().to_numpy()
    # at least 0.4% of the run wide so instant tasks stay visible (their label says their real length)
    widths = np.maximum(durations * scale, max(total * scale * 0.004, 1e-3))
    frame = task_runs.assign(_offset=offsets, _width=widths, _label=[format_duration(d) for d in durations])
    for state, group in frame.groupby("state", sort=False):
        fig.add_trace(
            go.Bar(
                base=group["_offset"],
                x=group["_width"],
                y=group["task"],
                orientation="h",
                name=str(state),
                marker_color=COLORS.get(str(state), "#999999"),
                text=group["_label"],
                textposition="outside",
                cliponaxis=False,
                hovertemplate="%{y}: %{text}<extra>" + str(state) + "</extra>",
            )
        )
    fig.update_layout(
        barmode="overlay",
        height=height or 70 + 30 * task_runs["task"].nunique(),
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis={
            "title": {"text": f"since the run started ({unit})"},
            "ticksuffix": f" {unit}",
            "range": [0, total * scale * 1.15 or 1],
        },
        yaxis={"autorange": "reversed", "categoryorder": "array", "categoryarray": list(task_runs["task"])},
        legend={"orientation": "h", "y": -0.3},
    )
    return fig


def calibration_figure(calibration: pd.DataFrame, height: int = 340) -> go.Figure:
    """Stated confidence vs how often the decision held, one point per confidence bucket with its
    95% interval (Wilson) and its count, against the perfect-calibration diagonal. Points are not
    joined: a handful of buckets is not a curve."""
    data: list[dict] = [
        {"type": "scatter", "x": [0, 1], "y": [0, 1], "mode": "lines", "name": "perfectly calibrated",
         "line": {"dash": "dot", "color": "#999999"}, "hoverinfo": "skip"}
    ]  # fmt: skip
    if not calibration.empty:
        held = calibration["held"].to_numpy(dtype=float)
        low = calibration["low"].to_numpy(dtype=float) if "low" in calibration else held
        high = calibration["high"].to_numpy(dtype=float) if "high" in calibration else held
        data.append(
            {
                "type": "scatter",
                "x": calibration["stated"].tolist(),
                "y": held.tolist(),
                "mode": "markers+text",
                "name": "the loop (95% interval)",
                "marker": {"size": 9, "color": COLORS["line"]},
                "error_y": {"type": "data", "symmetric": False, "array": (high - held).tolist(),
                            "arrayminus": (held - low).tolist(), "thickness": 1.5, "width": 4},
                "text": [f"n={n}" for n in calibration["n"]],
                "textposition": ["middle left" if x > 0.5 else "middle right" for x in calibration["stated"]],
                "hovertemplate": "stated %{x:.0%} · held %{y:.0%} · %{text}<extra></extra>",
            }
        )  # fmt: skip
    layout = {
        "xaxis": {"title": {"text": "stated confidence"}, "range": [0, 1.05], "tickformat": ".0%"},
        "yaxis": {"title": {"text": "decisions that held"}, "range": [0, 1.05], "tickformat": ".0%"},
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
        "legend": {"orientation": "h", "y": -0.2},
    }
    return go.Figure({"data": data, "layout": layout})


def _num(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.4f}"
