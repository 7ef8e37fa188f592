"""The Scenarios page's demo scenarios: the scoreboard, one launch card per scenario and the past
runs, collapsed below (pages/scenarios.py draws them with :func:`render_scenarios`).

The cards and the scoreboard read the store (the latest run of each scenario), so they survive a
reload and show runs launched elsewhere. A launch starts from the button's ``on_click`` and is
idempotent per scenario: while a run of it is analysing, or for a moment after a launch, more clicks
do nothing (a double click never launches twice). While a run is analysing, a fragment draws the
cards again every second (its progress); otherwise the page notes the runs it drew and is drawn again
only when they change (``ui/refresh.py``), so a decision taken in another browser shows here on its
own and an idle page costs the browser nothing. A run waiting for a human says "Awaiting approval"
with a link to its card and, for a CONTINUE, why it waits.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pandas as pd
import streamlit as st

from console.engines.backend import Backend
from console.loop.scenarios import DEMO_SCENARIO
from console.presentation import formatting as fmt
from console.presentation import live_section as live_view
from console.presentation import tables
from console.runtime import Services
from console.storage import Store
from ui import reads, refresh, widgets
from ui.identity import current_identity
from ui.services import clear_caches, log, one_line, safe

MIN_RELAUNCH_S = 2.0
STARTING_S = 60.0
"""How long a launch of this session may take to show in the store (on Kestra the mirror copies it)."""
ANALYZING = "analyzing"
AWAITING = "awaiting approval"
PAST_RUNS = 100

esc = fmt.md_escape


@st.cache_resource(show_spinner=False)
def launch_lock() -> threading.Lock:
    """One launch at a time in this console process (the check and the launch are one step)."""
    return threading.Lock()


def render_scenarios(
    services: Services, store: Store, backend: Backend, scenarios: list[reads.ScenarioCard]
) -> None:
    """The scoreboard and the launch cards (polled while a run analyses), then the past runs."""
    ScenarioCards(services, store, backend, scenarios).render()


class ScenarioCards:
    def __init__(
        self, services: Services, store: Store, backend: Backend, scenarios: list[reads.ScenarioCard]
    ) -> None:
        self.services = services
        self.store = store
        self.backend = backend
        self.scenarios = scenarios
        self.ids = [card.id for card in scenarios]
        self.launches: dict[str, dict[str, Any]] = st.session_state.setdefault("launches", {})

    # -- reads and the launch -------------------------------------------------------------------------

    def latest_runs(self) -> dict[str, dict[str, Any]]:
        return safe(self.store.scenario_runs.latest, self.ids, default={}, what="scenario runs")

    def drawn_from(self) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
        """What the cards and the scoreboard are drawn from: each scenario's latest run and latest
        decided run (raises when the store cannot be read: ``refresh.watch`` tries again)."""
        runs = self.store.scenario_runs
        return runs.latest(self.ids), runs.latest(self.ids, decided=True)

    def launch(self, scenario_id: str) -> None:
        """on_click: start a run unless one of this scenario is analysing or was launched a moment ago."""
        with launch_lock():
            previous = self.launches.get(scenario_id)
            row = self.latest_runs().get(scenario_id)
            recent = previous is not None and time.monotonic() - previous["at"] < MIN_RELAUNCH_S
            if recent or (row is not None and row.get("status") == ANALYZING):
                st.session_state["launch_notice"] = f"{scenario_id} is already running; not launched again."
                return
            who = current_identity()
            triggered_by = who.name if who else "anonymous"
            try:
                execution_id = self.backend.launch_scenario(scenario_id, triggered_by)
            except Exception as exc:
                log.exception("launch failed")
                st.session_state["launch_notice"] = f"Could not launch {scenario_id}: {one_line(exc)}"
                return
            self.launches[scenario_id] = {"execution_id": execution_id, "at": time.monotonic()}
        if who is not None and self.services.approvals is not None:
            # the console knows who it launched this for; on Kestra that beats the typed input
            safe(self.services.approvals.record_launch, execution_id, who, default=None, what="launch record")
        st.session_state.pop("launch_notice", None)
        clear_caches()

    def starting(self, scenario_id: str, rows: dict[str, dict[str, Any]]) -> str | None:
        """The execution this session launched that the store does not show yet, or None."""
        launched = self.launches.get(scenario_id)
        if launched is None or time.monotonic() - launched["at"] > STARTING_S:
            return None
        row = rows.get(scenario_id)
        if row is not None and row.get("execution_id") == launched["execution_id"]:
            return None
        return str(launched["execution_id"])

    def running_now(self, rows: dict[str, dict[str, Any]]) -> bool:
        return any(row.get("status") == ANALYZING for row in rows.values()) or any(
            self.starting(scenario_id, rows) for scenario_id in self.launches
        )

    # -- drawing --------------------------------------------------------------------------------------

    def render(self) -> None:
        notice = st.session_state.pop("launch_notice", None)
        if notice:
            st.warning(esc(notice))
        polling = self.running_now(self.latest_runs())
        if not polling:  # drawn again when the runs change; read before the cards read them
            refresh.drawn("scenario_runs", safe(self.drawn_from, default=None, what="scenario runs"))
            refresh.watch("scenario_runs", self.drawn_from)

        @st.fragment(run_every=1.0 if polling else None)
        def scenario_cards() -> None:
            rows = self.latest_runs()
            decided = safe(
                self.store.scenario_runs.latest, self.ids, decided=True, default={}, what="scoreboard"
            )
            scoreboard(len(self.ids), decided)
            cols = st.columns(3)
            for i, card in enumerate(self.scenarios):
                with cols[i % 3], st.container(border=True, key=f"scenario_{card.id}"):
                    self.card(card, rows.get(card.id), self.starting(card.id, rows))
            if self.running_now(rows) != polling:
                st.rerun()  # a run started or every run finished: a full run starts or stops the polling

        scenario_cards()
        self.past_runs()

    def card(self, card: reads.ScenarioCard, row: dict[str, Any] | None, pending: str | None) -> None:
        demo = " :blue-badge[:material/star: the one-click demo]" if card.id == DEMO_SCENARIO else ""
        st.markdown(f"**{esc(card.title)}**{demo}")
        st.markdown(f"Expected {widgets.badge_md(fmt.verdict_badge(card.expected_verdict))}")
        st.caption(esc(card.description))
        self.card_status(card, row, pending)
        busy = pending is not None or (row is not None and row.get("status") == ANALYZING)
        st.button(
            "Running…" if busy else "Launch" if row is None else "Launch again",
            key=f"launch_{card.id}",
            on_click=self.launch,
            args=(card.id,),
            icon=":material/rocket_launch:",
            type="primary" if row is None else "secondary",
        )

    def card_status(self, card: reads.ScenarioCard, row: dict[str, Any] | None, pending: str | None) -> None:
        """Where the scenario's latest run stands (from the store; the steps from the engine)."""
        if pending is not None:
            st.caption(esc(f"Starting… ({pending})"))
            return
        if row is None:
            st.caption("Not run yet.")
            return
        status = row.get("status")
        execution_id = str(row.get("execution_id") or "")
        execution = None
        if status == ANALYZING:
            execution = safe(self.backend.get_execution, execution_id, default=None, what="progress")
        if status == ANALYZING:
            if execution is not None:
                st.progress(tables.progress_fraction(execution), text=esc(f"Running… · {execution_id}"))
                st.markdown(
                    " ".join(widgets.badge_md(tables.step_badge(s)) for s in tables.loop_progress(execution))
                )
            decision_line(card, row)
            return
        decision_line(card, row)
        if status == AWAITING:
            self.awaiting(row)
        else:
            outcome_line(row)
        widgets.link_to_execution(execution_id)

    def awaiting(self, row: dict[str, Any]) -> None:
        execution_id = str(row.get("execution_id") or "")
        st.markdown(":orange-badge[:material/pause_circle: Awaiting approval]")
        db = reads.db_key(self.services)
        plan = safe(reads.read_plan, self.backend, db, execution_id, default=None, what="plan")
        why = live_view.waiting_reason(row.get("verdict"), row.get("confidence"), plan)
        if why:
            st.caption(esc(why))
        approval = safe(self.store.approvals.for_execution, execution_id, default=None, what="approval")
        if approval is not None:
            st.page_link(
                "pages/approvals.py",
                label="Open its approval card",
                icon=":material/gavel:",
                query_params={"approval": str(approval["id"])},
            )

    def past_runs(self) -> None:
        past = safe(self.store.scenario_runs.list, limit=PAST_RUNS, default=[], what="past runs")
        more = "+" if len(past) >= PAST_RUNS else ""
        with st.expander(f"Past scenario runs ({len(past)}{more})", expanded=False):
            if not past:
                st.caption("No scenario has been run yet.")
                return
            st.dataframe(
                past_runs_frame(past),
                hide_index=True,
                width="stretch",
                key="past_runs",
                column_config={
                    "launched": st.column_config.DatetimeColumn("Launched", format="YYYY-MM-DD HH:mm:ss"),
                    "as expected": st.column_config.CheckboxColumn("As expected"),
                    "simulated": st.column_config.CheckboxColumn("Simulated"),
                },
            )


def scoreboard(scenarios: int, decided: dict[str, dict[str, Any]]) -> None:
    """How many scenarios' latest decided run got the expected verdict (from the store)."""
    matched = sum(1 for row in decided.values() if row.get("expected_match"))
    total = len(decided)
    never = scenarios - total
    if total == 0:
        st.markdown(":gray-badge[:material/scoreboard: no scenario run yet]")
        return
    color = "green" if matched == total else "orange"
    st.markdown(
        f":{color}-badge[:material/scoreboard: {matched}/{total} as expected] "
        f"· the latest decided run of each scenario"
        + (f" · {never} not run yet" if never else "")
        + " · simulated"
    )


def decision_line(card: reads.ScenarioCard, row: dict[str, Any]) -> None:
    verdict = row.get("verdict")
    if not verdict:
        return
    line = (
        f"Decision {widgets.badge_md(fmt.verdict_badge(verdict))} · expected "
        f"{widgets.badge_md(fmt.verdict_badge(card.expected_verdict))}"
    )
    match = row.get("expected_match")
    if match is None:
        match = str(verdict).upper() == str(card.expected_verdict).upper()
    line += " " + (
        ":green-badge[:material/check: as expected]"
        if match
        else ":red-badge[:material/close: not as expected]"
    )
    st.markdown(line)


def outcome_line(row: dict[str, Any]) -> None:
    simulated = " · simulated" if row.get("simulated") or row.get("source") == "scenario" else ""
    parts = [widgets.badge_md(fmt.status_badge(row.get("status"))) + simulated]
    measured = row.get("measured_status")
    if measured:
        parts.append(
            f"measured {esc(str(measured).replace('_', ' '))} (recorded scenario segment, simulated)"
        )
    st.markdown(" · ".join(parts))


def past_runs_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "launched": fmt.as_time(row.get("created_at")),
                "scenario": row.get("scenario"),
                "verdict": row.get("verdict"),
                "expected": row.get("expected_verdict"),
                "as expected": row.get("expected_match"),
                "status": row.get("status"),
                "measured": row.get("measured_status"),
                "simulated": bool(row.get("simulated")) or row.get("source") == "scenario",
                "execution": row.get("execution_id"),
            }
            for row in rows
        ]
    )
