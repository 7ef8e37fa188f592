"""Overview: today's KPIs, latest decisions, service health, engine and analyzer in use."""

from __future__ import annotations

import streamlit as st

from console.presentation import formatting as fmt
from console.presentation import tables
from ui import reads, widgets
from ui.services import backend_health, get_services, safe
from ui.shell import require_app_shell

require_app_shell()

services = get_services()
settings = services.settings

st.title(":material/dashboard: Overview")

if reads.require_store(services):
    kpis = safe(reads.read_kpis, services.store, reads.db_key(services), default=None, what="KPIs")
    if kpis is not None:
        for col, tile in zip(st.columns(5), tables.kpi_tiles(kpis), strict=True):
            col.metric(tile.label, tile.value, help=tile.help, border=True)

    latest = safe(
        reads.read_latest_decisions, services.store, reads.db_key(services), 10, default=[], what="decisions"
    )
    if not latest:
        widgets.empty_state(
            "No deployment has been analysed on this machine yet. Launch a demo scenario to watch the "
            "loop collect, analyse, decide and act."
        )
    else:
        left, right = st.columns([3, 2], gap="large")
        with left:
            st.subheader("Latest decisions")
            frame = tables.with_detail_links(tables.deployments_frame(latest))
            st.dataframe(
                fmt.style_statuses(frame),
                hide_index=True,
                column_order=["link", "service", "version", "verdict", "confidence", "status", "deployed_at"],
                column_config={
                    **widgets.deployment_columns(),
                    "link": st.column_config.LinkColumn("", display_text="Open"),
                },
                width="stretch",
                key="overview_latest",
            )
            st.page_link("pages/deployments.py", label="All deployments", icon=":material/rocket:")
        with right:
            st.subheader("Services")
            health = safe(
                reads.read_service_health,
                services.store,
                reads.db_key(services),
                default=[],
                what="service health",
            )
            for i, row in enumerate(health):
                with st.container(border=True, key=f"service_card_{i}"):
                    name_col, badge_col = st.columns([3, 2])
                    name_col.markdown(f"**{fmt.md_escape(fmt.field(row, 'service', '?'))}**")
                    name_col.caption(f"version {fmt.md_escape(fmt.field(row, 'version', '?'))}")
                    with badge_col:
                        widgets.verdict(fmt.field(row, "verdict", ""))
                        widgets.status(fmt.field(row, "status", ""))

st.subheader("Engine and analyzer")
engine_col, analyzer_col = st.columns(2)
ok, name, message = backend_health(services.backend, settings.backend_name)
with engine_col, st.container(border=True):
    st.markdown(f"**Engine:** {'Kestra' if name == 'kestra' else 'Embedded'} ({fmt.md_escape(name)})")
    widgets.badge(fmt.Badge("healthy" if ok else "unreachable", "green" if ok else "red", ":material/dns:"))
    if message:
        st.caption(fmt.md_escape(message))
with analyzer_col, st.container(border=True):
    if settings.llm_enabled:
        st.markdown(f"**Analyzer:** statistics + LLM narrative ({fmt.md_escape(settings.llm_model)})")
    else:
        st.markdown("**Analyzer:** deterministic rules (no LLM key configured)")
    st.caption(
        f"Auto-approve threshold: {settings.auto_approve_confidence:.0%} confidence, LOW-risk actions only"
    )
