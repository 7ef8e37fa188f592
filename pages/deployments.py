"""Deployments: every deployment the loop looked at; select one (or deep link ``?deployment=ID``) for
its story: who deployed it, the loop's steps with their durations, the decision and its evidence,
every vote with its comment, each action and its result, the measured outcome, the service's
revision history (every version seen running, known-good / known-bad and why; approvers may mark a
version, audited); and, for a ROLLBACK or ESCALATE, its postmortem as Markdown (the LLM's rewrite
only on a click, kept per execution).

The list stays current on its own (``ui/refresh.py``): a new deployment or a status that moved
reruns the page within a few seconds. The selected deployment lives in the URL (``?deployment=``),
so a row added above it keeps the same one open; the filters are keyed widgets and stay."""

from __future__ import annotations

import time

import streamlit as st

from console.loop.postmortem import NoIncident, build_postmortem
from console.loop.timeline import build_timeline
from console.presentation import formatting as fmt
from console.presentation import story, tables
from ui import reads, refresh, widgets
from ui.revisions import render_revisions
from ui.services import get_services, safe
from ui.shell import require_app_shell

require_app_shell()

esc = fmt.md_escape
services = get_services()
st.title(":material/rocket: Deployments")

if not reads.require_store(services):
    st.stop()

PAGE_SIZE = 100


def selected_rows(state: object) -> list[int]:
    """The rows a table's selection state holds (``st.session_state[key]``), or none."""
    try:
        return [int(i) for i in state["selection"]["rows"]]  # type: ignore[index]
    except (KeyError, TypeError, ValueError):
        return []


services_seen = safe(
    reads.read_service_health, services.store, reads.db_key(services), default=[], what="services"
)
f1, f2, f3 = st.columns([2, 2, 1])
service = f1.selectbox("Service", ["All", *sorted({r["service"] for r in services_seen})], key="dep_service")
status = f2.selectbox("Status", ["All", *fmt.DEPLOYMENT_STATUSES], key="dep_status")
page = f3.number_input("Page", min_value=1, value=1, step=1, key="dep_page")
query = {
    "service": None if service == "All" else service,
    "status": None if status == "All" else status,
    "limit": PAGE_SIZE,
    "offset": (int(page) - 1) * PAGE_SIZE,
}
store = services.store
rows = safe(reads.read_deployments, store, reads.db_key(services), **query, default=[], what="deployments")
refresh.drawn("deployments", rows)
refresh.watch("deployments", lambda: store.deployments.list(**query), on_change=reads.read_deployments.clear)
if not rows:
    if service == "All" and status == "All" and page == 1:
        widgets.empty_state("No deployments yet.")
    else:
        st.info("No deployments match these filters.")
    st.stop()

analyzing = [r["execution_id"] for r in rows if r.get("status") == "analyzing" and r.get("execution_id")]


def standing(positions: dict[str, dict]) -> dict[str, tuple[bool, int]]:
    """What the list shows of the queue ("queued, N ahead"): a change to it reruns the page."""
    return {run: (bool(p.get("due")), int(p.get("ahead") or 0)) for run, p in positions.items()}


positions = safe(store.queue.positions, analyzing, time.time(), default={}, what="the run queue")
refresh.drawn("deployments_queue", standing(positions))
if analyzing:
    refresh.watch("deployments_queue", lambda: standing(store.queue.positions(analyzing, time.time())))
frame = tables.deployments_frame(rows, positions)
ids = [str(i) for i in frame["deployment_id"]]
chosen = st.query_params.get("deployment")
shown = selected_rows(st.session_state.get("deployments_table"))
if shown == st.session_state.get("dep_picked", []) and chosen in ids and shown != [ids.index(chosen)]:
    # no new pick, but the rows moved under the open deployment (a refresh): its row stays highlighted
    st.session_state["dep_picked"] = [ids.index(chosen)]
    st.session_state["deployments_table"] = {"selection": {"rows": [ids.index(chosen)], "columns": []}}
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
picked = list(event.selection.rows) if event is not None else []
if picked != st.session_state.get("dep_picked", []):  # the operator picked a row, or unpicked it
    st.session_state["dep_picked"] = picked
    if picked and picked[0] < len(ids):  # to the URL: a row added above keeps the same one open
        chosen = st.query_params["deployment"] = ids[picked[0]]
    else:
        chosen = st.query_params.pop("deployment", None)
if not chosen:
    st.caption("Select a row to see the decision, the actions taken and the outcome.")
    st.stop()

row = next((r for r in rows if str(fmt.field(r, "id", "")) == str(chosen)), None)
if row is None:  # deep link to a deployment on another page
    row = safe(services.store.deployments.get, str(chosen), default=None, what="deployment")
if row is None:
    st.warning(f"Deployment {esc(chosen)} not found.")
    st.stop()

st.divider()
db = reads.db_key(services)
execution_id = str(row.get("execution_id") or "")
head, side = st.columns([3, 1])
with head:
    st.subheader(f"{esc(row['service'])} {esc(row.get('previous_version') or '?')} → {esc(row['version'])}")
    st.caption(
        f"{esc(row.get('environment') or 'production')} · deployed "
        f"{esc(story.time_text(row.get('deployed_at')))} by {esc(row.get('deployed_by') or '?')}"
        + (" · a recorded demo scenario (simulated)" if row.get("source") == "scenario" else "")
    )
with side:
    widgets.status(row.get("status"))
    if row.get("simulated"):
        st.caption("simulated")
    st.caption(f"running {esc(story.running_text(row))}")
    if execution_id:
        widgets.link_to_execution(execution_id)

material = (
    safe(reads.read_story, services.store, db, execution_id, default=None, what="story")
    if execution_id
    else None
)
execution = reads.read_story_execution(services, execution_id) if execution_id else None
if material and material.get("record") and row.get("verdict") in ("ROLLBACK", "ESCALATE"):
    try:
        markdown = build_postmortem(
            execution,
            execution_id=execution_id,
            secrets=services.settings.secret_values(),
            settings=services.settings,
            snapshot=safe(
                services.store.deployments.snapshot_for_execution, execution_id, default=None, what="snapshot"
            ),
            **material,
        )
    except NoIncident:
        markdown = None
    if markdown:
        left, right, _ = st.columns([1, 1, 2])
        left.download_button(
            "Postmortem (Markdown)",
            markdown,
            file_name=story.postmortem_filename(row, execution_id),
            mime="text/markdown",
            icon=":material/download:",
            key="dep_postmortem",
        )
        if services.settings.llm_enabled:
            wanted = st.session_state.get("dep_rewrite") == execution_id
            if not wanted:
                right.button(
                    "Rewrite with the LLM",
                    key="dep_rewrite_button",
                    icon=":material/edit_note:",
                    on_click=lambda: st.session_state.update(dep_rewrite=execution_id),
                )
            else:
                with st.spinner("The LLM rewrites the postmortem (checked against the facts)…"):
                    rewritten = safe(
                        reads.rewritten_postmortem, services, db, execution_id, default=None, what="rewrite"
                    )
                if rewritten is not None:
                    right.download_button(
                        "Rewritten postmortem",
                        rewritten.markdown,
                        file_name=story.postmortem_filename(row, execution_id, "-rewritten"),
                        mime="text/markdown",
                        icon=":material/download:",
                        key="dep_postmortem_llm",
                    )
                    st.caption(
                        esc(f"Rewritten by {rewritten.author}" if rewritten.author != "console"
                            else "The rewrite was not used: " + ("; ".join(rewritten.notes) or "no reason"))
                    )  # fmt: skip

story_tab, decision_tab, actions_tab, history_tab = st.tabs(
    ["Story", "Decision and evidence", "Actions and outcome", "Revision history"]
)

with history_tab:
    render_revisions(services, str(row["service"]))

with story_tab:
    if not material:
        st.info("Nothing recorded for this deployment yet.")
    else:
        events = build_timeline(
            execution,
            deployment=material.get("deployment"),
            record=material.get("record"),
            approval=material.get("approval"),
            votes=material.get("votes") or [],
            audit=material.get("audit") or [],
        )
        with st.container(key="dep_timeline"):
            for item in story.story_rows(events):
                icon = item.icon if item.tone == "gray" else f":{item.tone}[{item.icon}]"
                line = f"{icon} `{item.time or '—'}` **{esc(item.title)}**"
                if item.actor:
                    line += f" · {esc(item.actor)}"
                if item.duration:
                    line += f" · {esc(item.duration)}"
                st.markdown(line)
                if item.detail:
                    st.caption(esc(item.detail))

with decision_tab:
    decision = (
        safe(reads.read_decision, services.store, db, row["decision_ref"], default=None, what="decision")
        if row.get("decision_ref")
        else None
    )
    levels = (
        safe(reads.read_levels, services.store, db, row["snapshot_ref"], default={}, what="metric levels")
        if row.get("snapshot_ref")
        else {}
    )
    if decision is None:
        st.info("The loop has not reached a decision for this deployment yet.")
    else:
        widgets.render_decision(decision, key="dep", levels=levels)

with actions_tab:
    approval = (material or {}).get("approval")
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
    actions = safe(services.store.actions.for_execution, execution_id, default=[], what="actions")
    if actions:
        approver = fmt.field(approval, "decided_by") if approval else None
        widgets.text_table(tables.actions_frame_of_run(actions, approver).astype(str).replace("NaT", ""))
    if row.get("measured_status") or row.get("status") not in (None, "analyzing", "awaiting approval"):
        parts = [f"**Outcome:** {esc(row.get('status') or '—')}"]
        if row.get("simulated"):
            parts.append("simulated")
        if row.get("measured_status"):
            parts.append(f"measured: {esc(row['measured_status'])}")
        if row.get("expected_match") is not None:
            parts.append(
                "matches the scenario's expected verdict"
                if row["expected_match"]
                else "differs from the scenario's expected verdict"
            )
        st.markdown(" · ".join(parts))
    elif not actions:
        st.caption("No action executed yet.")
