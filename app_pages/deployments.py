"""Deployments: every deployment the loop looked at; select one for its decision and outcome."""

from __future__ import annotations

import streamlit as st

import app_support as ui
from console import views

esc = views.md_escape
services = ui.get_services()
st.title(":material/rocket: Deployments")

if not ui.require_store(services):
    st.stop()

rows = ui.safe(ui.read_deployments, services.store, ui.db_key(services), default=[], what="deployments")
if not rows:
    ui.empty_state("No deployments yet.")
    st.stop()

frame = views.deployments_frame(rows)
f1, f2 = st.columns(2)
service = f1.selectbox("Service", ["All", *sorted(frame["service"].unique())], key="dep_service")
status = f2.selectbox("Status", ["All", *sorted(frame["status"].unique())], key="dep_status")
if service != "All":
    frame = frame[frame["service"] == service]
if status != "All":
    frame = frame[frame["status"] == status]
frame = frame.reset_index(drop=True)

event = st.dataframe(
    views.style_statuses(frame),
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
    column_config=ui.deployment_columns(),
)
selected_rows = event.selection.rows if event is not None else []
chosen = st.query_params.get("deployment")
if selected_rows and selected_rows[0] < len(frame):
    chosen = frame.iloc[selected_rows[0]]["deployment_id"]
if not chosen:
    st.caption("Select a row to see the decision, the actions taken and the outcome.")
    st.stop()

row = next((r for r in rows if str(views.field(r, "id", "")) == str(chosen)), None)
if row is None:
    st.warning(f"Deployment {chosen} not found.")
    st.stop()

st.divider()
head, links = st.columns([3, 1])
head.subheader(f"{esc(row['service'])} {esc(row.get('previous_version') or '?')} → {esc(row['version'])}")
head.caption(f"{esc(row.get('environment') or 'production')} · deployed {esc(row.get('deployed_at', ''))}")
with links:
    ui.status(row.get("status"))
    if row.get("execution_id"):
        ui.link_to_execution(row["execution_id"])

execution = None
if row.get("execution_id") and services.backend is not None:
    execution = ui.safe(
        ui.read_execution,
        services.backend,
        ui.db_key(services),
        row["execution_id"],
        default=None,
        what="execution",
    )
decision = views.execution_decision(execution) if execution is not None else None
if decision is None:
    st.info("The loop has not reached a decision for this deployment yet.")
else:
    with st.container(border=True):
        ui.render_decision(decision, key="dep")

st.subheader("Actions and outcome")
approval = ui.safe(
    services.store.approval_for_execution, row.get("execution_id") or "", default=None, what="approval"
)
if approval:
    st.markdown(
        f"Approval **{esc(views.field(approval, 'status', '?'))}** · requested by "
        f"**{esc(views.field(approval, 'requested_by', '?'))}**"
        + (
            f" · decided by **{esc(views.field(approval, 'decided_by'))}**"
            if views.field(approval, "decided_by")
            else ""
        )
    )
    if views.field(approval, "comment"):
        st.caption("Comment")
        st.text(views.field(approval, "comment"))
if execution is not None:
    executed = views.task_output(execution, "execute", "executed", [])
    skipped = views.task_output(execution, "execute", "skipped", [])
    record = views.task_output(execution, "record", "outcome")
    approver = views.field(approval, "decided_by") if approval else None
    if executed:
        st.dataframe(
            views.executed_frame(executed, approver), hide_index=True, width="stretch", key="dep_executed"
        )
    if skipped:
        st.caption("Not executed: " + ", ".join(views.action_names(skipped)))
    outcome = record.get("outcome") if isinstance(record, dict) else None
    if isinstance(outcome, dict):
        held = outcome.get("held")
        verdict_held = "unknown yet" if held is None else ("yes" if held else "no")
        st.markdown(
            f"**Outcome:** {esc(outcome.get('deployment_status', '—'))} · decision held: {verdict_held}"
        )
    if not executed and not outcome:
        st.caption("No action executed yet.")
