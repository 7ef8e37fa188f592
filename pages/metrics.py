"""Metrics per service around a deployment: deploy marked, windows shaded, anomalies in red,
baseline vs after. Long ranges are reduced in SQL and again with min/max buckets before plotting."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from console.presentation import charts, tables
from console.presentation import formatting as fmt
from ui import reads, widgets
from ui.services import get_services, safe
from ui.shell import require_app_shell

require_app_shell()

services = get_services()
st.title(":material/monitoring: Metrics")

if not reads.require_store(services):
    st.stop()

index = safe(reads.read_metric_index, services.store, reads.db_key(services), default={}, what="metrics")
if not index:
    widgets.empty_state("No metrics stored yet: each analysed deployment stores its telemetry here.")
    st.stop()

RANGES = {"±1 h": 1, "±6 h": 6, "±24 h": 24, "±7 days": 24 * 7}
SERIES_POINTS = 4000  # from SQL (bucket averages); then min/max buckets down to CHART_POINTS
CHART_POINTS = 1200

top = st.columns([2, 3, 1])
service = top[0].selectbox("Service", sorted(index), key="metrics_service")
deployments = safe(
    reads.read_deployments,
    services.store,
    reads.db_key(services),
    service,
    None,
    50,
    default=[],
    what="deployments",
)
labels = {
    str(d["id"]): f"{d['version']} · {str(d.get('deployed_at', ''))[:19]} · {d.get('verdict') or '…'}"
    for d in deployments
}
chosen = (
    top[1].selectbox("Deployment", list(labels), format_func=labels.get, key="metrics_deployment")
    if labels
    else None
)
span = top[2].selectbox("Range", list(RANGES), key="metrics_range")

dep = next((d for d in deployments if str(d["id"]) == chosen), None)
deployed_at = fmt.as_time(dep.get("deployed_at")) if dep else None
decision = None
if dep and dep.get("execution_id") and services.backend is not None:
    execution = safe(
        reads.read_execution,
        services.backend,
        reads.db_key(services),
        dep["execution_id"],
        default=None,
        what="execution",
    )
    decision = tables.execution_decision(execution) if execution is not None else None
results = {m.name: m for m in decision.metrics} if decision else {}

if deployed_at is None:
    st.info("No deployment of this service to centre on; showing the last day.")
    deployed_at = charts.now_utc() - timedelta(hours=12)
hours = RANGES[span]
start, end = deployed_at - timedelta(hours=hours), deployed_at + timedelta(hours=hours)

if decision is not None:
    st.plotly_chart(charts.comparison_figure(decision.metrics), key="metrics_comparison", width="stretch")

metrics = index.get(service, [])
cols = st.columns(2)
for i, metric in enumerate(metrics):
    times, values = safe(
        reads.read_metric_series,
        services.store,
        reads.db_key(services),
        service,
        metric,
        start,
        end,
        SERIES_POINTS,
        default=([], []),
        what=metric,
    )
    with cols[i % 2]:
        if not times:
            st.caption(f"{fmt.md_escape(charts.metric_title(metric))}: no points in this range.")
            continue
        before = [t for t in times if t < deployed_at.timestamp()]
        baseline = (fmt.as_time(before[0]), deployed_at) if before else None
        after = (deployed_at, fmt.as_time(times[-1])) if times[-1] >= deployed_at.timestamp() else None
        fig = charts.metric_figure(
            times,
            values,
            metric=metric,
            deployed_at=deployed_at,
            baseline_window=baseline,
            after_window=after,
            result=results.get(metric),
            max_points=CHART_POINTS,
        )
        st.plotly_chart(fig, key=f"metric_{metric}", width="stretch")
        if metric in results:
            st.caption(
                f"{fmt.CLASSIFICATION_LABELS.get(results[metric].classification.value, '')} · "
                f"{fmt.md_escape(results[metric].reason)}"
            )
