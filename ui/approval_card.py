"""Drawing one approval card (its content is :mod:`console.presentation.approval_card`'s): what
Approve does and where a rollback goes (the revision history's known-good target, or another one
the approver picks), what Reject and the timeout do, the "now" strip (the decisive metrics and the
service's state as they are while the card is open, refreshed by the page's fragment), the decisive
metrics at decision time as small charts, who started the run, the votes, the action's record, a
failed notification. Every name and text from the store goes through ``fmt.md_escape`` or
``st.text``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from console.domain.models import Decision
from console.presentation import charts
from console.presentation import formatting as fmt
from console.presentation.approval_card import ApprovalCard, Levels
from console.presentation.now_strip import NowStrip
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
    now: Callable[[ApprovalCard], None] | None = None,
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
            if card.target is not None:
                with st.container(key=f"target_{card.id}"):
                    icon = ":material/block:" if card.no_target else ":material/verified:"
                    st.markdown(f"{icon} **Rollback target:** {esc(card.target)}")
                    for note in card.target_notes:
                        st.caption(f":material/warning: {esc(note)}")
                    if card.target_version and card.alternatives:
                        st.selectbox(
                            "Roll back to (known-good versions)",
                            [card.target_version, *card.alternatives],
                            key=f"rollback_to_{card.id}",
                            help="Another known-good version of the revision history; checked again "
                            "on the server when you approve, and audited.",
                        )
        with no, st.container(key=f"reject_says_{card.id}"):
            st.markdown("**If you reject, or nobody decides in time**")
            (st.warning if card.dangerous else st.info)(
                esc(card.reject), icon=":material/warning:" if card.dangerous else ":material/block:"
            )
            st.caption(esc(card.timeout))

        if now is not None:
            with st.container(key=f"now_{card.id}"):
                now(card)

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


def render_now(card_id: str, strip: NowStrip) -> None:
    """The "now" strip of one card: each decisive metric at the decision and now, what changed since
    and when, the running version and its state; a superseded decision first."""
    if strip.superseded:
        st.error(
            f"{esc(strip.superseded)}: this approval is superseded and cannot be approved",
            icon=":material/update_disabled:",
        )
    head = f"**Now** (read {esc(strip.read_at)} UTC)" if strip.read_at else "**Now**"
    if strip.running:
        head += f" · running {esc(strip.running)}"
    st.markdown(head)
    if strip.items:
        cols = st.columns(len(strip.items))
        for col, item in zip(cols, strip.items, strict=True):
            with col:
                now_text = f":red[**{esc(item.now)}**]" if item.bad else f"**{esc(item.now)}**"
                since = f" since {esc(item.since)}" if item.since else ""
                st.markdown(f"{esc(item.title)}: {esc(item.then)} at the decision → {now_text} now{since}")
    for change in strip.changes:
        if change.endswith("this approval is superseded"):
            continue
        st.warning(esc(change), icon=":material/trending_up:")
    for problem in strip.problems:
        st.caption(f":material/cloud_off: {esc(problem)}")
