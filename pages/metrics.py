"""Metrics of one deployment: exactly the series its decision saw (its snapshot), the deploy marked,
the baseline and verification windows shaded, anomalies in red, axes in the captions' units (% for
ratios, ms). The comparison chart is coloured by each metric's direction: worse red, better green.
Opens on the latest deployment; deep link ``/metrics?deployment=ID``. Long series are reduced with
min/max buckets before plotting."""

from __future__ import annotations

import streamlit as st

from console.presentation import charts
from console.presentation import formatting as fmt
from ui import reads, widgets
from ui.services import get_services, safe
from ui.shell import require_app_shell

require_app_shell()

services = get_services()
st.title(":material/monitoring: Metrics")

if not reads.require_store(services):
    st.stop()

db = reads.db_key(services)
CHART_POINTS = 1200

latest = safe(reads.read_deployments, services.store, db, None, None, 1, 0, default=[], what="deployments")
if not latest:
    widgets.empty_state(
        "No deployment analysed yet: each deployment's charts show the telemetry its decision saw."
    )
    st.stop()

linked = st.query_params.get("deployment")
linked_row = (
    safe(reads.read_deployment, services.store, db, str(linked), default=None, what="deployment")
    if linked
    else None
)
if linked and linked_row is None:
    st.warning(
        "That deployment is not in the console's store; showing the latest one.", icon=":material/search_off:"
    )
start_row = linked_row or latest[0]

known = safe(reads.read_deployed_services, services.store, db, default=[], what="services")
fresh_link = linked_row is not None and st.session_state.get("metrics_linked") != linked
if fresh_link:  # a deep link picks the service and deployment once; the selectors rule after that
    st.session_state["metrics_linked"] = linked
if fresh_link or st.session_state.get("metrics_service") not in (known or [start_row["service"]]):
    st.session_state["metrics_service"] = start_row["service"]
top = st.columns([2, 3])
service = top[0].selectbox("Service", known or [start_row["service"]], key="metrics_service")
deployments = safe(
    reads.read_deployments, services.store, db, service, None, 50, 0, default=[], what="deployments"
)
if not deployments:
    st.info("No deployment of this service yet.")
    st.stop()
labels = {
    str(d["id"]): f"{d['version']} · {str(d.get('deployed_at', ''))[:19]} · {d.get('verdict') or '…'}"
    for d in deployments
}
if fresh_link and str(start_row["id"]) in labels:
    st.session_state["metrics_deployment"] = str(start_row["id"])
elif st.session_state.get("metrics_deployment") not in labels:
    st.session_state["metrics_deployment"] = next(iter(labels))
chosen = top[1].selectbox("Deployment", list(labels), format_func=labels.get, key="metrics_deployment")
dep = next(d for d in deployments if str(d["id"]) == chosen)

if not dep.get("snapshot_ref"):
    st.info("The loop has not collected this deployment's telemetry yet.", icon=":material/hourglass_top:")
    st.stop()
series = safe(
    reads.read_snapshot_series, services.store, db, dep["snapshot_ref"], default={}, what="snapshot"
)
decision = (
    safe(reads.read_decision, services.store, db, dep["decision_ref"], default=None, what="decision")
    if dep.get("decision_ref")
    else None
)
results = {m.name: m for m in decision.metrics} if decision else {}
deployed_at = fmt.as_time(dep.get("deployed_at"))
st.caption(
    f"The series the decision on {fmt.md_escape(dep['service'])} {fmt.md_escape(dep['version'])} saw"
    + (" (a recorded demo scenario, moved to now)." if dep.get("source") == "scenario" else ".")
)

levels = safe(reads.read_levels, services.store, db, dep["snapshot_ref"], default={}, what="metric levels")
if decision is not None and decision.metrics:
    st.plotly_chart(
        charts.comparison_figure(decision.metrics, {n: (lv.baseline, lv.now) for n, lv in levels.items()}),
        key="metrics_comparison",
        width="stretch",
        config={"displayModeBar": False},
    )
    st.caption(
        "Each bar: the median before the deploy → the median of the last half of the verification "
        "window (the numbers of the decision's summary); red got worse, green got better, grey did not "
        "really move."
    )

cols = st.columns(2)
for i, (metric, (times, values)) in enumerate(sorted(series.items())):
    with cols[i % 2]:
        if not times:
            st.caption(f"{fmt.md_escape(charts.metric_title(metric))}: no points.")
            continue
        baseline = after = None
        if deployed_at is not None:
            before = [t for t in times if t < deployed_at.timestamp()]
            baseline = (fmt.as_time(before[0]), deployed_at) if before else None
            if times[-1] >= deployed_at.timestamp():
                after = (deployed_at, fmt.as_time(times[-1]))
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
