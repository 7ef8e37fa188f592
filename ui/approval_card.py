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
from console.presentation.approval_card import ApprovalCard, DecisionBar, Levels
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
    bar: DecisionBar,
    *,
    decision: Decision | None,
    series: dict[str, tuple[list[float], list[float]]],
    levels: dict[str, Levels],
    deployed_at: Any,
    countdown: Callable[[str | None], None],
    on_approve: Callable[[str, str | None], None],
    on_reject: Callable[[str, str], None],
    sign_in: Callable[[str], None] | None = None,
    now: Callable[[ApprovalCard], None] | None = None,
    linked: bool = False,
) -> None:
    """One card: the decision bar first (on a phone it is the first screen), then what each choice
    does, the service now, who started the run and the votes, and the evidence, folded on a
    narrow screen (:func:`fold_on_narrow_screens`)."""
    with st.container(border=True, key=f"approval_{card.id}"):
        decision_bar(card, bar, countdown, on_approve, on_reject, sign_in, linked)
        yes, no = st.columns(2, gap="medium")
        with yes, st.container(key=f"approve_says_{card.id}"):
            st.markdown("**If you approve** (the bar above says what runs)")
            for line in card.how:
                st.caption(f"How: {esc(line)}")
            for line in card.effectiveness:
                st.caption(f":material/history: {esc(line)}")
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
        if card.notification:
            st.warning(esc(card.notification), icon=":material/notifications_off:")

        with st.container(horizontal=True, vertical_alignment="center"):
            if card.verdict_rule:
                st.caption(f":material/rule: verdict rule: {esc(card.verdict_rule)}", width="content")
            widgets.link_to_execution(card.execution_id, "Open the execution")
        with st.container(key=f"evidence_{card.id}"), st.expander("Evidence", expanded=card.evidence_open):
            evidence(card, decision, series, levels, deployed_at)


def decision_bar(
    card: ApprovalCard,
    bar: DecisionBar,
    countdown: Callable[[str | None], None],
    on_approve: Callable[[str, str | None], None],
    on_reject: Callable[[str, str], None],
    sign_in: Callable[[str], None] | None,
    linked: bool,
) -> None:
    """What is decided and on what, the two buttons, and beside a button that is off, why."""
    with st.container(key=f"bar_{card.id}"):
        title = f"{esc(card.service)} {esc(card.version)}"
        if linked:
            title += " :blue-badge[:material/link: opened from a link]"
        st.markdown(f"#### {title}")
        risk = fmt.Badge(card.risk or "—", fmt.RISK_COLORS.get(card.risk, "gray"), ":material/shield:")
        line = (
            f"{widgets.badge_md(fmt.verdict_badge(bar.verdict))} confidence {esc(bar.confidence)} · "
            f"severity {esc(card.severity or '?')} · {widgets.badge_md(risk)} risk, "
            f"{card.required} approver{'s' if card.required > 1 else ''} needed"
        )
        if card.simulated:
            line += " · :gray-badge[simulated]"
        st.markdown(line)
        st.markdown(f"**Approve:** {esc(bar.does)}.")  # every action, in the order they run
        if bar.target is not None:
            with st.container(key=f"target_{card.id}"):
                icon = ":material/block:" if card.no_target else ":material/verified:"
                st.markdown(f"{icon} **Rollback target:** {esc(bar.target)}")
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
        with st.container(horizontal=True, vertical_alignment="center", key=f"buttons_{card.id}"):
            st.button(
                "Approve",
                key=f"approve_{card.id}",
                type="primary",
                disabled=bar.approve_off is not None,
                on_click=on_approve,
                args=(card.id, card.target_version),
                icon=":material/check:",
            )
            st.button(
                "Reject",
                key=f"reject_{card.id}",
                disabled=bar.reject_off is not None,
                on_click=on_reject,
                args=(card.id, f"Reject: {card.reject}"),
                icon=":material/close:",
            )
        if bar.approve_off is not None:
            with st.container(key=f"approve_off_{card.id}"):
                both = bar.reject_off == bar.approve_off
                what = "Approve and Reject are" if both else "Approve is"
                st.caption(f":material/block: {what} off: {esc(bar.approve_off)}")
        if bar.reject_off is not None and bar.reject_off != bar.approve_off:
            with st.container(key=f"reject_off_{card.id}"):
                st.caption(f":material/block: Reject is off: {esc(bar.reject_off)}")
        if bar.sign_in and sign_in is not None:
            with st.container(key=f"sign_in_{card.id}"):
                sign_in(card.id)
        countdown(card.expires_at)


NARROW_PX = 640
"""Below this width Streamlit stacks columns: a phone."""
_FOLD_SCRIPT = """<script>
(() => {
  if (window.consoleFoldsEvidence) return;  // one observer per browser tab
  window.consoleFoldsEvidence = true;
  const narrow = window.matchMedia("(max-width: NARROW_PXpx)");
  const fold = () => {
    if (!narrow.matches) return;
    document.querySelectorAll("[class*='st-key-evidence_'] details").forEach((details) => {
      if (details.dataset.folded) return;  // each card once: the operator may open it again
      details.dataset.folded = "1";
      if (details.open) details.querySelector("summary").click();
    });
  };
  new MutationObserver(fold).observe(document.body, {childList: true, subtree: true});
  fold();
})();
</script>""".replace("NARROW_PX", str(NARROW_PX))


def fold_on_narrow_screens() -> None:
    """On a phone each card's evidence starts folded, so the decision bar and what each choice does
    fill the first screen; a wide screen keeps it open (HIGH and CRITICAL). Only the browser knows
    its width: a fixed script (no user text in it) folds each card once."""
    st.html(_FOLD_SCRIPT, unsafe_allow_javascript=True)


def evidence(
    card: ApprovalCard,
    decision: Decision | None,
    series: dict[str, tuple[list[float], list[float]]],
    levels: dict[str, Levels],
    deployed_at: Any,
) -> None:
    """The decisive metrics as small charts in the summary's numbers, then the decision card."""
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
