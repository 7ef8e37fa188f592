"""What several pages draw: badges, the decision card, links to an execution, empty states and the
deployments' column set. All text from analyzers, LLMs and logs goes through st.text or dataframes,
never through HTML."""

from __future__ import annotations

from typing import Any

import streamlit as st

from console.domain.models import Decision
from console.presentation import formatting as fmt
from console.presentation import tables
from console.presentation.formatting import Badge, state_badge, status_badge, verdict_badge


def badge(b: Badge) -> None:
    st.badge(b.label, color=b.color, icon=b.icon)


def verdict(v: Any) -> None:
    badge(verdict_badge(v))


def state(s: Any) -> None:
    badge(state_badge(s))


def status(s: str | None) -> None:
    badge(status_badge(s))


def badge_md(b: Badge) -> str:
    """Badge as markdown; the label is escaped (it usually comes from a fixed enum, but a verdict or
    status read from an engine is text)."""
    return f":{b.color}-badge[{b.icon} {fmt.md_escape(b.label)}]"


def empty_state(message: str, *, link_scenarios: bool = True) -> None:
    st.info(message, icon=":material/info:")
    if link_scenarios:
        st.page_link("pages/scenarios.py", label="Launch a scenario", icon=":material/rocket_launch:")


def link_to_execution(execution_id: str, label: str = "Open execution") -> None:
    st.page_link(
        "pages/executions.py",
        label=label,
        icon=":material/account_tree:",
        query_params={"execution": execution_id},
    )


def deployment_columns() -> dict[str, Any]:
    return {
        "deployment_id": st.column_config.TextColumn("Deployment"),
        "service": st.column_config.TextColumn("Service"),
        "version": st.column_config.TextColumn("Version"),
        "previous_version": st.column_config.TextColumn("Previous"),
        "environment": st.column_config.TextColumn("Env"),
        "verdict": st.column_config.TextColumn("Verdict"),
        "confidence": st.column_config.ProgressColumn(
            "Confidence", min_value=0, max_value=100, format="%d%%"
        ),
        "status": st.column_config.TextColumn("Status"),
        "deployed_at": st.column_config.DatetimeColumn("Deployed", format="YYYY-MM-DD HH:mm:ss"),
        "execution_id": st.column_config.TextColumn("Execution"),
    }


def text_table(frame: Any) -> None:
    """A static table that wraps long text instead of cutting it off. ``st.table`` renders Markdown
    in its cells, so every cell (and header) goes through ``fmt.md_escape``: the text stays text."""
    shown = frame.map(lambda v: fmt.md_escape(v) if isinstance(v, str) else v)
    shown.columns = [fmt.md_escape(str(c)) for c in frame.columns]
    st.table(shown, border="horizontal", hide_index=True)


def render_decision(
    decision: Decision, *, key: str, levels: dict[str, Any] | None = None, compact: bool = False
) -> None:
    """The decision card: verdict, severity, confidence, summary, root cause, evidence, log patterns.
    ``compact`` leaves out the verdict row (the approval card shows it already); ``levels`` (the
    summary's numbers per metric) make the evidence table agree with the summary.

    All analyzer/LLM text goes through st.text / tables (never HTML or markdown), so text taken
    from logs cannot format or script the page.
    """
    if not compact:
        top = st.columns([1, 1, 1, 2])
        with top[0]:
            st.caption("Verdict")
            verdict(decision.verdict.value)
        with top[1]:
            st.caption("Severity")
            sev = decision.severity.value
            badge(Badge(sev, fmt.SEVERITY_COLORS.get(sev, "gray"), ":material/warning:"))
        top[2].metric("Confidence", fmt.format_percent(decision.confidence), border=False)
        with top[3]:
            st.caption("Analyzer")
            st.text(decision.analyzer)
    else:  # the card shows verdict, severity and confidence; who analysed is said here
        st.caption(f"Analyzer: {fmt.md_escape(decision.analyzer)}")
    if decision.rule:
        st.caption(f"Verdict rule: {fmt.md_escape(decision.rule)}")
    if decision.disagreement:
        st.warning(
            f"The LLM ({decision.llm_verdict.value}) and the rules ({decision.rules_verdict.value}) "
            "disagree; the stricter verdict was kept.",
            icon=":material/balance:",
        )
    for note in decision.notes:
        st.caption("Analyzer note:")
        st.text(note)
    st.caption("Summary")
    st.text(decision.summary or "—")
    st.caption("Root cause")
    st.text(decision.root_cause or "—")
    if decision.impact and not compact:
        st.caption("Impact")
        st.text(decision.impact)
    if decision.guards:
        st.caption("Hard guards fired")
        st.text("; ".join(decision.guards))
    tabs = st.tabs(["Evidence per metric", "New log patterns", "Recommended actions"])
    with tabs[0]:
        frame = tables.evidence_frame(decision, levels)
        if frame.empty:
            st.caption("No metric evidence.")
        else:
            # a static table wraps long reasons instead of cutting them off
            text_table(frame.rename(columns=tables.evidence_headers(levels)))
    with tabs[1]:
        frame = tables.log_patterns_frame(decision)
        if frame.empty:
            st.caption("No new or surging log patterns.")
        else:
            st.dataframe(
                frame,
                hide_index=True,
                width="stretch",
                key=f"{key}_patterns",
                column_config={"template": st.column_config.TextColumn("template", width="large")},
            )
    with tabs[2]:
        frame = tables.actions_frame(decision)
        if frame.empty:
            st.caption("No action recommended.")
        else:
            text_table(frame)
