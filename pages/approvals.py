"""Approvals: risky actions waiting for a human, riskiest and soonest-expiring first. Each card opens
with its decision bar (verdict and confidence, what Approve does and where a rollback goes, Approve
and Reject, and beside a button that is off, why; a sign-in form right there when nobody is signed
in), then what Reject or the timeout does, the decisive metrics at the decision and, for a live
service, as they are now, who started the run, the votes so far, the action's record, a
notification that did not get out, and the evidence (folded on a phone). A deep link
``?approval=ID`` (the notifications' link) puts that card first and outlines it.

The page stays current on its own (``ui/refresh.py``: the shell watches the pending approvals and
reruns the page when another browser decides, a run pauses or a request expires).

Approve decides in one click (its ``on_click``; a second click of the same session does nothing).
Reject asks for a comment in a dialog driven by session_state (see NOTES: it opens whenever
``approval_request`` is set; confirming or dismissing clears it), and the page holds its refresh
while it is open. Roles, self-approval, the starters' rule and double decisions are enforced by
``ApprovalService``; this page only shows its answers.
"""

from __future__ import annotations

import streamlit as st

from console.access import signin
from console.access.approvals import AlreadyDecided, NoRollbackTarget, Superseded, already_message
from console.access.auth import PermissionDenied
from console.domain.models import Decision
from console.loop.now import read_now
from console.presentation import approval_card as cards
from console.presentation import formatting as fmt
from console.presentation import tables
from console.presentation.now_strip import now_strip
from ui import reads, refresh
from ui.approval_card import fold_on_narrow_screens, highlight, render_card, render_now
from ui.identity import current_identity, sign_in_here
from ui.services import clear_caches, get_services, log, one_line, safe
from ui.shell import require_app_shell

require_app_shell()

esc = fmt.md_escape
services = get_services()
approvals = services.approvals
identity = current_identity()

st.title(":material/gavel: Approvals")
if approvals is None:
    st.error(esc(services.error or "The approval service is not available."), icon=":material/block:")
    st.stop()


NOW_EVERY_S = 5.0  # how often an open card's "now" strip is read again (a docstring here would be drawn)


def approve(approval_id: str, default_target: str | None) -> None:
    """Approve's on_click: decide now, with another known-good target if one was picked on the
    card. A second click of a double click finds the decision already made here and does nothing."""
    decided_here = st.session_state.setdefault("decided_here", [])
    if approval_id in decided_here:
        return
    picked = st.session_state.get(f"rollback_to_{approval_id}")
    rollback_to = picked if picked and picked != default_target else None
    st.session_state.pop("approval_request", None)
    if vote(approval_id, True, "", rollback_to):
        decided_here.append(approval_id)


def request_reject(approval_id: str, says: str) -> None:
    """Reject's on_click: the dialog asks why (a rejection needs a comment) before deciding."""
    st.session_state["approval_request"] = {"id": approval_id, "says": says}
    st.session_state.pop("approval_result", None)


def clear_request() -> None:
    st.session_state.pop("approval_request", None)


def sign_in_form(card_id: str) -> None:
    """The sign-in on the first card's decision bar (a phone hides the sidebar)."""
    sign_in_here(services.settings, "card_login")


def vote(approval_id: str, approved: bool, comment: str, rollback_to: str | None = None) -> bool:
    """Call the service and keep its one-line answer for the next run; True when it was taken."""
    who = current_identity()
    verb = "approved" if approved else "rejected"
    try:
        if who is None:
            raise PermissionDenied("sign in first")
        result = approvals.vote(approval_id, who, approved, comment, rollback_to=rollback_to)
    except PermissionDenied as exc:
        st.session_state["approval_result"] = ("error", f"Not allowed: {exc}")
    except Superseded as exc:
        st.session_state["approval_result"] = ("warning", f"Superseded, nothing ran: {exc}")
    except NoRollbackTarget as exc:
        st.session_state["approval_result"] = ("error", f"Not approved: {exc}")
    except AlreadyDecided as exc:
        st.session_state["approval_result"] = ("warning", f"Already decided: {exc}")
    except ValueError as exc:
        st.session_state["approval_result"] = ("error", str(exc))
    except Exception as exc:  # the engine failing to resume, the store busy...
        log.exception("approval decision failed")
        st.session_state["approval_result"] = ("error", f"The decision could not be saved: {exc}")
    else:
        message = fmt.field(result, "message", "") or f"{verb.capitalize()} {approval_id}."
        saved_only = fmt.field(result, "status") != "recorded" and not fmt.field(result, "resumed", True)
        st.session_state["approval_result"] = ("warning" if saved_only else "success", str(message))
        clear_caches()
        return True
    clear_caches()
    return False


@st.dialog("Reject", on_dismiss=clear_request)
def reject_dialog(request: dict) -> None:
    st.markdown(f"You are about to **reject** approval {esc(request['id'])}.")
    says = str(request.get("says") or "")
    if says:
        st.markdown(esc(says))
    st.caption("A rejection needs a comment: say why.")
    comment = st.text_area("Comment", key="approval_comment", max_chars=1000)
    left, right = st.columns(2)
    confirmed = left.button("Confirm", type="primary", key="approval_confirm")
    cancelled = right.button("Cancel", key="approval_cancel")  # drawn before any message: it stays
    if cancelled:
        clear_request()
        st.session_state.pop("approval_comment", None)
        st.rerun()
    if confirmed:
        if not comment.strip():
            st.error("A rejection needs a comment saying why.")
            return
        vote(request["id"], False, comment.strip())
        clear_request()
        st.session_state.pop("approval_comment", None)
        st.rerun()


def countdown(expires_at: str | None) -> None:
    """The card's deadline, drawn by a fragment that reruns on its own (only it): every second
    while it counts seconds, every 10 s while it counts minutes (fmt.countdown_ticks_every_second)."""
    if fmt.countdown_ticks_every_second(expires_at):
        countdown_seconds(expires_at)
    else:
        countdown_minutes(expires_at)


def _countdown(expires_at: str | None, counting_seconds: bool) -> None:
    """On expiry the page reruns so the service expires the request (expiry = rejection) and the
    card leaves the list; when the countdown must start counting seconds the page reruns too (the
    fragment that ticks every second takes over), unless the operator is typing in a dialog."""
    left = fmt.seconds_left(expires_at)
    text = fmt.countdown_text(expires_at)
    if left is not None and left <= 0:
        st.markdown(f":red-badge[:material/timer_off: {text}] rejected (nobody decided in time)")
        if left > -3:  # rerun the page once, right after the deadline
            clear_caches()
            st.rerun(scope="app")
        return
    if not counting_seconds and fmt.countdown_ticks_every_second(expires_at) and not refresh.held():
        st.rerun(scope="app")
    colour = "orange" if left is not None and left < fmt.COUNTDOWN_SECONDS_FROM_S else "blue"
    st.markdown(f":{colour}-badge[:material/timer: {text}] rejected automatically on expiry")


@st.fragment(run_every=1.0)
def countdown_seconds(expires_at: str | None) -> None:
    _countdown(expires_at, counting_seconds=True)


@st.fragment(run_every=fmt.COUNTDOWN_MINUTES_EVERY_S)
def countdown_minutes(expires_at: str | None) -> None:
    _countdown(expires_at, counting_seconds=False)


result = st.session_state.get("approval_result")
if result:
    kind, message = result
    {"success": st.success, "warning": st.warning, "error": st.error}[kind](esc(message))

request = st.session_state.get("approval_request")
refresh.hold(bool(request))  # what the operator types in the dialog is never lost to a refresh
if request:
    reject_dialog(request)

can_decide = identity is not None and identity.can_approve
viewer = cards.Viewer(
    name=identity.name if identity is not None else None,
    can_decide=can_decide,
    role=identity.role.value if identity is not None else "",
    sign_in=signin.sign_in(services.settings).mode,
)


def retry_resume(approval_id: str) -> None:
    try:
        result = approvals.retry_resume(approval_id)
    except Exception as exc:
        log.exception("retry resume failed")
        st.session_state["approval_result"] = ("error", f"Retry failed: {one_line(exc)}")
    else:
        kind = "success" if result.resumed else "warning"
        st.session_state["approval_result"] = (kind, f"{approval_id}: {result.message}")
    clear_caches()


stuck = safe(approvals.resume_failed, default=[], what="decisions waiting to resume")
if stuck:
    with st.container(border=True):
        st.warning(
            f"{len(stuck)} decision(s) are saved but the engine could not be told; the executions "
            "stay paused until it is.",
            icon=":material/sync_problem:",
        )
        for item in stuck:
            item_id = str(fmt.field(item, "id"))
            cols = st.columns([4, 1])
            cols[0].text(
                f"{item_id} · {fmt.field(item, 'status', '?')} by {fmt.field(item, 'decided_by', '?')} · "
                f"{fmt.field(item, 'resume_error', '') or ''}"
            )
            cols[1].button(
                "Retry",
                key=f"retry_{item_id}",
                on_click=retry_resume,
                args=(item_id,),
                disabled=not can_decide,
            )


def decision_of(item: dict) -> Decision | None:
    doc = fmt.field(item, "decision", {})
    try:
        return Decision.from_dict(doc) if doc else None
    except (KeyError, ValueError, TypeError):
        return None


def card_of(item: dict, starters: list[dict]) -> tuple[cards.ApprovalCard, dict, dict, dict | None]:
    """The card's content and what its charts need (series, levels, deployment row)."""
    db = reads.db_key(services)
    execution_id = str(fmt.field(item, "execution_id", ""))
    deployment = safe(reads.read_deployment_of, store, db, execution_id, default=None, what="deployment")
    series: dict = {}
    levels: dict = {}
    if deployment and deployment.get("snapshot_ref"):
        ref = deployment["snapshot_ref"]
        series = safe(reads.read_snapshot_series, store, db, ref, default={}, what="snapshot")
        levels = safe(reads.read_levels, store, db, ref, default={}, what="metric levels")
    how, simulated = safe(
        cards.describe_actions, item, deployment, services.settings, default=([], False), what="executor"
    )
    check = safe(approvals.check_now, item, default=None, what="the service's state")
    target = safe(approvals.rollback_choice, item, default=None, what="the rollback target")
    card = cards.build_card(
        item,
        deployment=deployment,
        levels=levels,
        starters=starters,
        effectiveness=safe(reads.read_effectiveness, store, db, default=[], what="effectiveness"),
        notifications=safe(
            store.notifications.list, subject=str(fmt.field(item, "id")), default=[], what="notifications"
        ),
        how=how,
        simulated=simulated,
        target=target,
        superseded=check.superseded if check is not None else None,
    )
    return card, series, levels, deployment


def live_card(deployment: dict | None) -> bool:
    """A card about a live service (the now strip reads it), not a scenario or a given snapshot."""
    return (
        bool(deployment)
        and deployment.get("source") not in ("scenario", "snapshot")
        and not deployment.get("scenario")
    )


@st.fragment(run_every=NOW_EVERY_S)
def now_fragment(card: cards.ApprovalCard, deployment: dict, requested_at: str | None) -> None:
    """The card's now strip, read again every few seconds (only this fragment reruns: a comment being
    typed in the dialog is kept). When the service moves past the decision the page reruns, so
    Approve turns off with the reason."""
    item = safe(approvals.get, card.id, default=None, what="approval")
    if item is None or item.get("status") != "pending":
        st.caption("This approval is no longer pending.")
        return
    check = safe(approvals.check_now, item, default=None, what="the service's state")
    since = fmt.as_time(requested_at)
    names = [m.name for m in card.watch]
    live = safe(
        read_now,
        deployment,
        names,
        services.settings,
        since=since.timestamp() if since else None,
        default=None,
        what="live figures",
    )
    problems = list(live.problems) if live is not None else ["the live figures could not be read"]
    if check is not None and check.unreadable:
        problems.append(f"the service's state could not be read: {check.unreadable}")
    strip = now_strip(
        card.watch,
        live.series if live is not None else {},
        running=check.state.to_dict() if check is not None and check.state else None,
        superseded=check.superseded if check is not None else None,
        problems=problems,
        read_at=live.read_at if live is not None else None,
    )
    render_now(card.id, strip)
    if bool(strip.superseded) != bool(card.superseded):
        clear_caches()
        st.rerun(scope="app")


store = services.store
linked = st.query_params.get("approval")
pending_tab, history_tab = st.tabs(["Pending", "History"])

with pending_tab:
    pending = safe(approvals.pending, default=[], what="pending approvals")
    sync_error = approvals.sync_error
    if sync_error:
        st.warning(
            f"The engine's paused executions could not be read ({esc(sync_error)}); only approvals "
            "already known to the console are listed.",
            icon=":material/cloud_off:",
        )
    elif not pending:
        st.success("Nothing is waiting for a decision.", icon=":material/task_alt:")
    if sync_error and not pending:
        st.caption("No approval known to the console is pending.")
    queue = cards.queue_order(pending)
    linked_id = None
    if linked:
        linked_id = next((str(fmt.field(i, "id")) for i in queue if str(fmt.field(i, "id")) == linked), None)
        if linked_id is None:
            row = safe(store.approvals.get, str(linked), default=None, what="approval") if store else None
            if row is None:
                st.warning(f"Approval {esc(linked)} not found.", icon=":material/search_off:")
            elif linked not in st.session_state.get("decided_here", []):  # else the result says it
                st.info(
                    f"Approval {esc(linked)} is no longer pending: {esc(already_message(row))}.",
                    icon=":material/history:",
                )
        else:
            queue.sort(key=lambda i: str(fmt.field(i, "id")) != linked_id)  # stable: the rest keep order
            highlight(linked_id)
    if len(queue) > 1:
        st.caption(f"{len(queue)} waiting, riskiest first, then the soonest to expire.")
    sign_in_drawn = False  # one sign-in form, on the first card (the linked one comes first)
    for item in queue:
        starters = safe(
            approvals.starters, str(fmt.field(item, "execution_id")), default=[], what="who started the run"
        )
        card, series, levels, deployment = card_of(item, starters)
        bar = cards.decision_bar(
            card,
            viewer,
            approve_refusal=approvals.vote_refusal(item, identity, True, starters) if can_decide else None,
            reject_refusal=approvals.vote_refusal(item, identity, False, starters) if can_decide else None,
        )
        strip = None
        if live_card(deployment):
            requested = fmt.field(item, "requested_at")

            def strip(card: cards.ApprovalCard, dep: dict = deployment, at: str | None = requested) -> None:
                now_fragment(card, dep, at)

        render_card(
            card,
            bar,
            decision=decision_of(item),
            series=series,
            levels=levels,
            deployed_at=fmt.as_time((deployment or {}).get("deployed_at")),
            countdown=countdown,
            on_approve=approve,
            on_reject=request_reject,
            sign_in=sign_in_form if bar.sign_in and not sign_in_drawn else None,
            now=strip,
            linked=card.id == linked_id,
        )
        sign_in_drawn = sign_in_drawn or bar.sign_in
    if queue:
        fold_on_narrow_screens()

with history_tab:
    decided = safe(approvals.decided, default=[], what="decided approvals")
    st.subheader("Decided approvals")
    frame = tables.approvals_history_frame(tables.flatten_approvals(decided))
    if frame.empty:
        st.caption("No decided approvals yet.")
    else:
        st.dataframe(frame, hide_index=True, width="stretch", key="approvals_decided")
    st.subheader("Audit trail")
    trail = tables.audit_frame(safe(approvals.history, 1000, default=[], what="audit trail"))
    if trail.empty:
        st.caption("The audit trail is empty.")
    else:
        st.dataframe(trail, hide_index=True, width="stretch", key="approvals_audit")
        st.download_button(
            "Download audit trail (CSV)",
            tables.csv_bytes(trail),
            file_name="audit_trail.csv",
            mime="text/csv",
            icon=":material/download:",
            key="approvals_csv",
        )
