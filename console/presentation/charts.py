"""Plotly figure builders for the console pages: pure functions, no Streamlit.

Long series are reduced before they reach the browser with min/max-preserving buckets: each
bucket keeps its first, minimum, maximum and last point, so spikes (the thing an operator looks
for) survive downsampling while the payload stays bounded.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from console.domain.models import MetricResult, parse_time

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
    data: list[dict] = [
        {
            "type": "scattergl",
            "x": x,
            "y": v,
            "mode": "lines",
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


def comparison_figure(results: Sequence[MetricResult], height: int = 300) -> go.Figure:
    """Baseline vs after medians per metric, as change relative to baseline (%)."""
    names, changes, colors, texts = [], [], [], []
    for r in results:
        if r.baseline_median is None or r.after_median is None:
            continue
        base = r.baseline_median
        change = (r.after_median - base) / abs(base) * 100 if base else 0.0
        names.append(metric_title(r.name))
        changes.append(change)
        colors.append(COLORS["anomaly"] if r.classification.value in ("High", "Low") else COLORS["SUCCESS"])
        texts.append(f"{_num(base)} → {_num(r.after_median)}")
    fig = go.Figure(
        go.Bar(x=changes, y=names, orientation="h", marker_color=colors, text=texts, textposition="auto")
    )
    fig.update_layout(
        title={"text": "Baseline vs after (median change)", "x": 0, "font": {"size": 14}},
        xaxis_title="change vs baseline (%)",
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    return fig


def gantt_figure(task_runs: pd.DataFrame, height: int | None = None) -> go.Figure:
    """Task runs as a Gantt timeline (one bar per task, coloured by state).

    ``task_runs`` has columns task, state, start, end (see ``views.task_runs_frame``).
    """
    fig = go.Figure()
    if task_runs.empty:
        fig.update_layout(height=120, annotations=[{"text": "no task runs yet", "showarrow": False}])
        return fig
    for state, group in task_runs.groupby("state", sort=False):
        starts = pd.to_datetime(group["start"], utc=True)
        ends = pd.to_datetime(group["end"], utc=True)
        # at least 50 ms wide so instant tasks stay visible
        widths = np.maximum((ends - starts).dt.total_seconds().to_numpy() * 1000.0, 50.0)
        fig.add_trace(
            go.Bar(
                base=starts,
                x=widths,
                y=group["task"],
                orientation="h",
                name=str(state),
                marker_color=COLORS.get(str(state), "#999999"),
                hovertemplate="%{y}: %{x:.0f} ms<extra>" + str(state) + "</extra>",
            )
        )
    fig.update_layout(
        barmode="overlay",
        height=height or 60 + 32 * task_runs["task"].nunique(),
        margin={"l": 10, "r": 10, "t": 10, "b": 10},
        xaxis={"type": "date"},
        yaxis={"autorange": "reversed", "categoryorder": "array", "categoryarray": list(task_runs["task"])},
        legend={"orientation": "h"},
    )
    return fig


def calibration_figure(calibration: pd.DataFrame, height: int = 320) -> go.Figure:
    """Stated confidence vs observed hold rate per bin, with the perfect-calibration diagonal."""
    data: list[dict] = [
        {"type": "scatter", "x": [0, 1], "y": [0, 1], "mode": "lines", "name": "perfect",
         "line": {"dash": "dot", "color": "#999999"}}
    ]  # fmt: skip
    if not calibration.empty:
        data.append(
            {
                "type": "scatter",
                "x": calibration["stated"].tolist(),
                "y": calibration["held"].tolist(),
                "mode": "lines+markers",
                "name": "loop",
                "marker": {"size": np.clip(np.sqrt(calibration["n"].to_numpy()) * 4, 6, 30).tolist()},
                "text": [f"n={n}" for n in calibration["n"]],
            }
        )
    layout = {
        "xaxis": {"title": {"text": "stated confidence"}, "range": [0, 1]},
        "yaxis": {"title": {"text": "decision held"}, "range": [0, 1.05]},
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 10, "b": 10},
    }
    return go.Figure({"data": data, "layout": layout})


def now_utc() -> datetime:
    return datetime.now(UTC)


def _num(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.4f}"
