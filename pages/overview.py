"""Overview: today's KPIs, latest decisions, service health (with the version that runs now: after a
rollback the previous one, simulated said), engine and analyzer in use."""

from __future__ import annotations

import streamlit as st

from console.presentation import formatting as fmt
from console.presentation import story, tables
from ui import reads, widgets
from ui.services import backend_health, get_services, safe
from ui.shell import require_app_shell

require_app_shell()

PRODUCT_LINE = (
    "The console of an autonomous DevOps loop: every deployment is watched, judged on its metrics and "
    "logs (CONTINUE, ROLLBACK or ESCALATE), low-risk fixes run on their own, and anything risky waits "
    "here for a human to approve."
)

services = get_services()
settings = services.settings

st.title(":material/dashboard: Overview")
st.caption(PRODUCT_LINE)

if reads.require_store(services):
    kpis = safe(reads.read_kpis, services.store, reads.db_key(services), default=None, what="KPIs")
    if kpis is not None:
        tiles = tables.kpi_tiles(kpis)
        for col, tile in zip(st.columns(len(tiles)), tiles, strict=True):
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
        st.subheader("Services")
        health = safe(
            reads.read_service_health,
            services.store,
            reads.db_key(services),
            default=[],
            what="service health",
        )
        per_row = 4
        for start in range(0, len(health), per_row):
            part = health[start : start + per_row]
            for i, (col, row) in enumerate(zip(st.columns(per_row)[: len(part)], part, strict=True), start):
                with col, st.container(border=True, key=f"service_card_{i}"):
                    st.markdown(f"**{fmt.md_escape(fmt.field(row, 'service', '?'))}**")
                    running, note = story.running_parts(row)
                    st.markdown(f"Running **{fmt.md_escape(running)}**")
                    st.caption(fmt.md_escape(note) if note else "the deployed version")
                    st.markdown(
                        widgets.badge_md(fmt.verdict_badge(fmt.field(row, "verdict", "")))
                        + " "
                        + widgets.badge_md(fmt.status_badge(fmt.field(row, "status", "")))
                    )

        st.subheader("Latest decisions")
        frame = tables.with_detail_links(tables.deployments_frame(latest))
        st.dataframe(
            fmt.style_statuses(frame),
            hide_index=True,
            column_order=["link", "service", "version", "verdict", "confidence", "status", "deployed_at"],
            column_config={
                **widgets.deployment_columns(),
                "link": st.column_config.LinkColumn("", display_text="Open", width=50),
                "deployed_at": st.column_config.DatetimeColumn("Deployed", format="YYYY-MM-DD HH:mm:ss"),
            },
            width="stretch",
            key="overview_latest",
        )
        st.page_link("pages/deployments.py", label="All deployments", icon=":material/rocket:")

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
