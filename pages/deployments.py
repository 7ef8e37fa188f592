"""Deployments: every deployment the loop looked at; select one for its decision and outcome."""

from __future__ import annotations

import streamlit as st

from console.presentation import formatting as fmt
from console.presentation import tables
from ui import reads, widgets
from ui.services import get_services, safe
from ui.shell import require_app_shell

require_app_shell()

esc = fmt.md_escape
services = get_services()
st.title(":material/rocket: Deployments")

if not reads.require_store(services):
    st.stop()

PAGE_SIZE = 100
services_seen = safe(
    reads.read_service_health, services.store, reads.db_key(services), default=[], what="services"
)
f1, f2, f3 = st.columns([2, 2, 1])
service = f1.selectbox("Service", ["All", *sorted({r["service"] for r in services_seen})], key="dep_service")
status = f2.selectbox("Status", ["All", *fmt.DEPLOYMENT_STATUSES], key="dep_status")
page = f3.number_input("Page", min_value=1, value=1, step=1, key="dep_page")
rows = safe(
    reads.read_deployments,
    services.store,
    reads.db_key(services),
    None if service == "All" else service,
    None if status == "All" else status,
    PAGE_SIZE,
    (int(page) - 1) * PAGE_SIZE,
    default=[],
    what="deployments",
)
if not rows:
    if service == "All" and status == "All" and page == 1:
        widgets.empty_state("No deployments yet.")
    else:
        st.info("No deployments match these filters.")
    st.stop()

frame = tables.deployments_frame(rows)
event = st.dataframe(
    fmt.style_statuses(frame),
    hide_index=True,
    width="stretch",
    on_select="rerun",
    selection_mode="single-row",
    key="deployments_table",
    column_order=[
        "service",
        "version",
        "previous_version",
        "environment",
        "verdict",
        "confidence",
        "status",
        "deployed_at",
    ],
    column_config=widgets.deployment_columns(),
)
st.caption(f"{len(frame)} deployments on page {page} ({PAGE_SIZE} per page, newest first).")
selected_rows = event.selection.rows if event is not None else []
chosen = st.query_params.get("deployment")
if selected_rows and selected_rows[0] < len(frame):
    chosen = frame.iloc[selected_rows[0]]["deployment_id"]
if not chosen:
    st.caption("Select a row to see the decision, the actions taken and the outcome.")
    st.stop()

row = next((r for r in rows if str(fmt.field(r, "id", "")) == str(chosen)), None)
if row is None:  # deep link to a deployment on another page
    row = safe(services.store.get_deployment, str(chosen), default=None, what="deployment")
if row is None:
    st.warning(f"Deployment {esc(chosen)} not found.")
    st.stop()

st.divider()
head, links = st.columns([3, 1])
head.subheader(f"{esc(row['service'])} {esc(row.get('previous_version') or '?')} → {esc(row['version'])}")
head.caption(f"{esc(row.get('environment') or 'production')} · deployed {esc(row.get('deployed_at', ''))}")
with links:
    widgets.status(row.get("status"))
    if row.get("execution_id"):
        widgets.link_to_execution(row["execution_id"])

db = reads.db_key(services)
decision = (
    safe(reads.read_decision, services.store, db, row["decision_ref"], default=None, what="decision")
    if row.get("decision_ref")
    else None
)
if decision is None:
    st.info("The loop has not reached a decision for this deployment yet.")
else:
    with st.container(border=True):
        widgets.render_decision(decision, key="dep")

st.subheader("Actions and outcome")
execution_id = str(row.get("execution_id") or "")
approval = safe(services.store.approval_for_execution, execution_id, default=None, what="approval")
if approval:
    st.markdown(
        f"Approval **{esc(fmt.field(approval, 'status', '?'))}** · requested by "
        f"**{esc(fmt.field(approval, 'requested_by', '?'))}** "
        f"({esc(fmt.requester_source_text(fmt.field(approval, 'requested_by_source')))})"
        + (
            f" · decided by **{esc(fmt.field(approval, 'decided_by'))}**"
            if fmt.field(approval, "decided_by")
            else ""
        )
    )
    if fmt.field(approval, "comment"):
        st.caption("Comment")
        st.text(fmt.field(approval, "comment"))
actions = safe(services.store.deployment_actions, execution_id, default=[], what="actions")
if actions:
    approver = fmt.field(approval, "decided_by") if approval else None
    st.dataframe(
        tables.actions_frame_of_run(actions, approver),
        hide_index=True,
        width="stretch",
        key="dep_executed",
        column_config={"finished": st.column_config.DatetimeColumn("Finished", format="HH:mm:ss")},
    )
if row.get("measured_status") or row.get("status") not in (None, "analyzing", "awaiting approval"):
    parts = [f"**Outcome:** {esc(row.get('status') or '—')}"]
    if row.get("simulated"):
        parts.append("simulated")
    if row.get("measured_status"):
        parts.append(f"measured: {esc(row['measured_status'])}")
    if row.get("expected_match") is not None:
        parts.append(
            "matches the scenario's expected verdict" if row["expected_match"] else "differs from the "
            "scenario's expected verdict"
        )
    st.markdown(" · ".join(parts))
elif not actions:
    st.caption("No action executed yet.")
