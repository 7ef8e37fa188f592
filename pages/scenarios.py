"""Scenarios: the Live section (a real service, when one is configured: ui/live_section.py) and the demo
scenarios (recorded deployments, simulated: ui/scenario_cards.py), then how to start a live stack
when none is configured."""

from __future__ import annotations

import streamlit as st

from console.presentation import formatting as fmt
from ui import live_section, reads, scenario_cards
from ui.services import get_services, safe
from ui.shell import require_app_shell

require_app_shell()

esc = fmt.md_escape
services = get_services()
st.title(":material/science: Scenarios")

if services.backend is None:
    st.error(esc(services.error or "No engine is available."), icon=":material/block:")
    st.stop()
if not reads.require_store(services) or services.store is None:
    st.stop()
store = services.store
backend = services.backend

live_shown = live_section.render_live_section(services)

st.subheader(":material/theater_comedy: Demo scenarios · simulated")
st.caption(
    "Each scenario is a recorded deployment (metrics and logs, time-shifted to now). Launching one runs "
    "the full loop on it: collect → analyze → summarize → decide → (approval) → execute → verify → "
    "record. Its actions run in the simulated executor and its outcome is measured on the file's "
    "recorded post-action segment: every result says simulated."
)

scenarios = safe(reads.read_scenarios, str(services.settings.mock_data_dir), default=[], what="scenarios")
if not scenarios:
    st.info(f"No scenarios found in {esc(services.settings.mock_data_dir)}.")
    if not live_shown:
        live_section.render_live_hint()
    st.stop()
scenario_cards.render_scenarios(services, store, backend, scenarios)

if not live_shown:
    live_section.render_live_hint()
