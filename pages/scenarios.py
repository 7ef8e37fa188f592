"""Scenarios: launch the loop on a mock-data scenario and watch it run, step by step.

A launch starts from the button's ``on_click`` and is idempotent per scenario: while a launch of the
same scenario is still running, more clicks do nothing (a double click never launches twice). The
progress is polled from a fragment that reruns every second while anything is running.
"""

from __future__ import annotations

import time

import streamlit as st

from console.domain.executions import State
from console.presentation import formatting as fmt
from console.presentation import tables
from ui import reads, widgets
from ui.identity import current_identity
from ui.services import clear_caches, get_services, log, one_line, safe
from ui.shell import require_app_shell

require_app_shell()

services = get_services()
st.title(":material/science: Scenarios")
st.caption(
    "Each scenario is a recorded deployment with its metrics and logs. Launching one runs the full "
    "loop on it: collect → analyze → summarize → decide → (approval) → execute → record."
)

if services.backend is None:
    st.error(fmt.md_escape(services.error or "No engine is available."), icon=":material/block:")
    st.stop()

scenarios = safe(reads.read_scenarios, str(services.settings.mock_data_dir), default=[], what="scenarios")
if not scenarios:
    st.info(f"No scenarios found in {fmt.md_escape(services.settings.mock_data_dir)}.")
    st.stop()
by_id = {s.id: s for s in scenarios}
launches: dict[str, dict] = st.session_state.setdefault("launches", {})

MIN_RELAUNCH_S = 2.0


def launch(scenario_id: str) -> None:
    """on_click: start a run unless this scenario's previous launch is still in flight."""
    previous = launches.get(scenario_id)
    if previous and (not previous.get("done") or time.monotonic() - previous["at"] < MIN_RELAUNCH_S):
        st.session_state["launch_notice"] = f"{scenario_id} is already running; not launched again."
        return
    who = current_identity()
    triggered_by = who.name if who else "anonymous"
    try:
        execution_id = services.backend.launch_scenario(scenario_id, triggered_by)
    except Exception as exc:
        log.exception("launch failed")
        st.session_state["launch_notice"] = f"Could not launch {scenario_id}: {one_line(exc)}"
        return
    if who is not None and services.approvals is not None:
        # the console knows who it launched this for; on Kestra that beats the typed input
        safe(services.approvals.record_launch, execution_id, who, default=None, what="launch record")
    launches[scenario_id] = {"execution_id": execution_id, "at": time.monotonic(), "done": False}
    st.session_state.pop("launch_notice", None)
    clear_caches()


notice = st.session_state.pop("launch_notice", None)
if notice:
    st.warning(fmt.md_escape(notice))


def render_progress(card: reads.ScenarioCard, info: dict) -> None:
    execution = safe(services.backend.get_execution, info["execution_id"], default=None, what="progress")
    if execution is None:
        return
    steps = tables.loop_progress(execution)
    st.progress(
        tables.progress_fraction(execution),
        text=fmt.md_escape(f"{execution.state.value} · {info['execution_id']}"),
    )
    st.markdown(" ".join(widgets.badge_md(tables.step_badge(s)) for s in steps))
    decision = tables.execution_decision(execution)
    if decision is not None:
        match = decision.verdict.value == card.expected_verdict
        st.markdown(
            f"Decision {widgets.badge_md(fmt.verdict_badge(decision.verdict.value))} "
            f"· expected {widgets.badge_md(fmt.verdict_badge(card.expected_verdict))} "
            + (":green-badge[:material/check: match]" if match else ":red-badge[:material/close: mismatch]")
        )
    links = st.columns(2)
    with links[0]:
        widgets.link_to_execution(execution.id)
    if execution.state == State.PAUSED:
        with links[1]:
            st.page_link("pages/approvals.py", label="Waiting for approval: decide", icon=":material/gavel:")
    if execution.state.terminal:
        info["done"] = True


running = any(not info.get("done") for info in launches.values())


@st.fragment(run_every=1.0 if running else None)
def progress_panel() -> None:
    was_running = any(not info.get("done") for info in launches.values())
    for scenario_id, info in list(launches.items()):
        card = by_id.get(scenario_id)
        if card is None:
            continue
        with st.container(border=True, key=f"progress_{scenario_id}"):
            st.markdown(f"**{fmt.md_escape(card.title)}**")
            render_progress(card, info)
    if was_running and not any(not info.get("done") for info in launches.values()):
        st.rerun()  # everything finished: a full run stops the polling


if launches:
    st.subheader("Runs in this session")
    progress_panel()
    st.divider()

cols = st.columns(3)
for i, card in enumerate(scenarios):
    with cols[i % 3], st.container(border=True, key=f"scenario_{card.id}"):
        st.markdown(f"**{fmt.md_escape(card.title)}**")
        st.markdown(f"Expected {widgets.badge_md(fmt.verdict_badge(card.expected_verdict))}")
        st.caption(fmt.md_escape(card.description))
        busy = card.id in launches and not launches[card.id].get("done")
        st.button(
            "Running…" if busy else "Launch",
            key=f"launch_{card.id}",
            on_click=launch,
            args=(card.id,),
            icon=":material/rocket_launch:",
            type="primary",
        )
