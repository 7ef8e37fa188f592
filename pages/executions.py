"""Executions, the way Kestra shows them: state filter, duration, flow; a Gantt of task runs (time
since the run started, each bar labelled with its duration), each task's outputs and logs. The
detail is titled by the deployment's service and version and shows the deployment's outcome beside
the execution's state (a rolled-back deploy is not a plain green SUCCESS). Deep link:
``/executions?execution=ID``."""

from __future__ import annotations

import streamlit as st

from console.domain.executions import State
from console.presentation import charts, story, tables
from console.presentation import formatting as fmt
from ui import reads, widgets
from ui.services import get_services, safe
from ui.shell import require_app_shell

require_app_shell()

services = get_services()
backend = services.backend
st.title(":material/account_tree: Executions")

if backend is None:
    st.error(fmt.md_escape(services.error or "No engine is available."), icon=":material/block:")
    st.stop()


@st.cache_data(ttl=reads.READ_TTL_S, show_spinner=False)
def search(_backend, db: str, states: tuple[str, ...], page: int, size: int):
    result = _backend.search_executions(states=[State(s) for s in states] or None, page=page, size=size)
    return result.items, result.total


LOG_COLUMNS = {
    "time": st.column_config.DatetimeColumn("time", format="HH:mm:ss.SSS", width=100),
    "level": st.column_config.TextColumn("level", width=60),
    "task": st.column_config.TextColumn("task", width=90),
    "message": st.column_config.TextColumn("message", width=700),  # the rest of the row: not cut short
}


def show_detail(execution_id: str) -> None:
    execution = safe(
        reads.read_execution,
        backend,
        reads.db_key(services),
        execution_id,
        default=None,
        what=f"execution {execution_id}",
    )
    if execution is None:
        return
    deployment = (
        safe(reads.read_deployment_of, services.store, reads.db_key(services), execution.id, default=None)
        if services.store is not None
        else None
    )
    flow = f"{execution.namespace}.{execution.flow_id}"
    if deployment:
        st.subheader(fmt.md_escape(f"{deployment['service']} {deployment['version']}"))
        st.caption(
            fmt.md_escape(
                f"{flow} · deployed {story.time_text(deployment.get('deployed_at'))} "
                f"by {deployment.get('deployed_by') or '?'}"
            )
        )
    else:
        st.subheader(fmt.md_escape(flow))
    line = f"Run {widgets.badge_md(story.run_badge(execution.state.value, deployment))}"
    if deployment:
        outcome = fmt.Badge(
            story.outcome_text(deployment), story.outcome_color(deployment), ":material/rocket:"
        )
        line += f" · deployment {widgets.badge_md(outcome)}"
    line += f" · took {fmt.format_duration(execution.duration_s)}"
    st.markdown(line)
    code, links = st.columns([3, 1])
    code.code(execution.id, language=None)
    with links:
        if deployment:
            st.page_link(
                "pages/deployments.py",
                label="The deployment's story",
                icon=":material/timeline:",
                query_params={"deployment": str(deployment["id"])},
            )
        link = safe(backend.ui_link, execution.id, default=None, what="Kestra link")
        if link:
            st.link_button("Open in Kestra", link, icon=":material/open_in_new:")
    if execution.labels:
        st.caption("Labels")
        st.dataframe(tables.key_value_frame(execution.labels), hide_index=True, key="ex_labels")
    runs = tables.task_runs_frame(execution)
    st.plotly_chart(
        charts.gantt_figure(runs), key="ex_gantt", width="stretch", config={"displayModeBar": False}
    )
    logs = safe(backend.execution_logs, execution.id, default=[], what="logs")
    task_ids = [run.task_id for run in execution.task_runs]
    tabs = st.tabs(["All logs", *(fmt.md_escape(task_id) for task_id in task_ids)])
    with tabs[0]:
        frame = tables.logs_frame(logs)
        if frame.empty:
            st.caption("No logs.")
        else:
            st.dataframe(
                frame, hide_index=True, width="stretch", key="ex_logs_all", column_config=LOG_COLUMNS
            )
    for tab, run in zip(tabs[1:], execution.task_runs, strict=True):
        with tab:
            cols = st.columns([1, 1, 2])
            with cols[0]:
                widgets.state(run.state.value)
            cols[1].caption(f"started {run.start:%H:%M:%S}" if run.start else "not started")
            st.caption("Outputs")
            st.json(run.outputs or {}, expanded=1)
            frame = tables.logs_frame(logs, task_id=run.task_id)
            if not frame.empty:
                st.dataframe(
                    frame,
                    hide_index=True,
                    width="stretch",
                    key=f"ex_logs_{run.id}",
                    column_config=LOG_COLUMNS,
                )


deep_link = st.query_params.get("execution")
if deep_link:
    if st.button("Back to the list", icon=":material/arrow_back:", key="ex_back"):
        del st.query_params["execution"]
        st.rerun()
    show_detail(deep_link)
    st.stop()

filters = st.columns([3, 1, 1])
states = filters[0].multiselect(
    "State",
    [
        s.value
        for s in (State.RUNNING, State.PAUSED, State.SUCCESS, State.FAILED, State.KILLED, State.WARNING)
    ],
    key="ex_states",
)
size = filters[1].selectbox("Per page", [25, 50, 100], index=1, key="ex_size")
page = filters[2].number_input("Page", min_value=1, value=1, step=1, key="ex_page")
items, total = safe(
    search,
    backend,
    reads.db_key(services),
    tuple(states),
    int(page),
    int(size),
    default=([], 0),
    what="search",
)
if total == 0:
    widgets.empty_state("No executions match." if states else "No executions yet.", link_scenarios=not states)
    st.stop()
st.caption(f"{total} executions · page {page} of {max(1, -(-total // size))}")
frame = tables.executions_frame(items)
event = st.dataframe(
    fmt.style_statuses(frame),
    hide_index=True,
    width="stretch",
    on_select="rerun",
    selection_mode="single-row",
    key="executions_table",
    # every column fits at 1440 px; the flow (the same for most runs) goes last
    column_order=["id", "state", "service", "scenario", "triggered_by", "start", "duration_s", "flow"],
    column_config={
        "id": st.column_config.TextColumn("Id", width=190),
        "state": st.column_config.TextColumn("State", width=70),
        "service": st.column_config.TextColumn("Service", width=125),
        "scenario": st.column_config.TextColumn("Scenario", width=190),
        "triggered_by": st.column_config.TextColumn("Triggered by", width=85),
        "start": st.column_config.DatetimeColumn("Start (UTC)", format="MM-DD HH:mm:ss", width=105),
        "duration_s": st.column_config.NumberColumn("Duration", format="%.2f s", width=65),
        "flow": st.column_config.TextColumn("Flow", width=75),
    },
)
rows = event.selection.rows if event is not None else []
if rows and rows[0] < len(frame):
    st.divider()
    show_detail(frame.iloc[rows[0]]["id"])
else:
    st.caption("Select a row to open the execution.")
