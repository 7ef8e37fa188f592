"""Drawing one approval card (its content is :mod:`console.presentation.approval_card`'s): what
Approve does, what Reject and the timeout do, the decisive metrics as small charts, who started the
run, the votes, the action's record, a failed notification. Every name and text from the store goes
through ``fmt.md_escape`` or ``st.text``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from console.domain.models import Decision
from console.presentation import charts
from console.presentation import formatting as fmt
from console.presentation.approval_card import ApprovalCard, Levels
from ui import widgets

esc = fmt.md_escape


def highlight(approval_id: str) -> None:
    """Outline the card a deep link opened (``approval_id`` is a stored id, never the raw link)."""
    safe_id = "".join(ch for ch in approval_id if ch.isalnum() or ch in "-_")
    rule = "box-shadow: 0 0 0 3px #1565C0; border-radius: 0.5rem;"
    st.html(f"<style>.st-key-approval_{safe_id} {{ {rule} }}</style>")


def render_card(
    card: ApprovalCard,
    *,
    decision: Decision | None,
    series: dict[str, tuple[list[float], list[float]]],
    levels: dict[str, Levels],
    deployed_at: Any,
    countdown: Callable[[str | None], None],
    buttons: Callable[[ApprovalCard], None],
    linked: bool = False,
) -> None:
    with st.container(border=True, key=f"approval_{card.id}"):
        head, clock = st.columns([5, 2])
        with head:
            title = f"{esc(card.service)} {esc(card.version)}"
            if linked:
                title += " :blue-badge[:material/link: opened from a link]"
            st.markdown(f"#### {title}")
            risk = fmt.Badge(card.risk or "—", fmt.RISK_COLORS.get(card.risk, "gray"), ":material/shield:")
            line = (
                f"{widgets.badge_md(fmt.verdict_badge(card.verdict))} confidence {esc(card.confidence)} · "
                f"severity {esc(card.severity or '?')} · {widgets.badge_md(risk)} risk, "
                f"{card.required} approver{'s' if card.required > 1 else ''} needed"
            )
            if card.simulated:
                line += " · :gray-badge[simulated]"
            st.markdown(line)
            if card.verdict_rule:
                st.caption(f":material/rule: verdict rule: {esc(card.verdict_rule)}")
        with clock:
            countdown(card.expires_at)

        yes, no = st.columns(2, gap="medium")
        with yes, st.container(key=f"approve_says_{card.id}"):
            st.markdown("**If you approve**")
            with st.container(border=True):
                for sentence in card.approve or ["Nothing is named."]:
                    st.markdown(f":material/play_arrow: {esc(sentence)}.")
            for line in card.how:
                st.caption(f"How: {esc(line)}")
        with no, st.container(key=f"reject_says_{card.id}"):
            st.markdown("**If you reject, or nobody decides in time**")
            (st.warning if card.dangerous else st.info)(
                esc(card.reject), icon=":material/warning:" if card.dangerous else ":material/block:"
            )
            st.caption(esc(card.timeout))

        people = " · ".join(f"{p.role} **{esc(p.name)}** ({esc(p.source)})" for p in card.people)
        if people:
            st.markdown(people[:1].upper() + people[1:])
        if card.rule:
            st.caption(f":material/group: {esc(card.rule)}")
        if card.required > 1:
            votes = "; ".join(card.votes) if card.votes else "none yet"
            st.markdown(f"**Votes so far:** {esc(votes)}")
            if card.still:
                st.caption(esc(card.still))
        for line in card.effectiveness:
            st.caption(f":material/history: {esc(line)}")
        if card.notification:
            st.warning(esc(card.notification), icon=":material/notifications_off:")

        with st.expander("Evidence", expanded=card.evidence_open):
            if card.metrics:
                cols = st.columns(len(card.metrics))
                for col, metric in zip(cols, card.metrics, strict=True):
                    with col:
                        times, values = series.get(metric.name, ([], []))
                        level = levels.get(metric.name)
                        if times:
                            fig = charts.card_metric_figure(
                                times,
                                values,
                                metric=metric.name,
                                title=f"{metric.title}: {metric.before} → {metric.now}",
                                deployed_at=deployed_at,
                                baseline_level=metric.baseline_value,
                                threshold=metric.threshold,
                                threshold_text=metric.threshold_text,
                                tail_points=level.tail_points if level else 0,
                            )
                            st.plotly_chart(
                                fig,
                                key=f"card_{card.id}_{metric.name}",
                                width="stretch",
                                config={"displayModeBar": False},
                            )
                        else:
                            st.markdown(f"**{esc(metric.title)}: {esc(metric.before)} → {esc(metric.now)}**")
                        guard = f"; {metric.threshold_text}" if metric.threshold_text else ""
                        st.caption(esc(metric.statistic + guard))
            if decision is not None:
                widgets.render_decision(decision, key=f"ap_{card.id}", levels=levels, compact=True)
        buttons(card)
