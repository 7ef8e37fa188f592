"""Approvals: risky actions waiting for a human, with evidence, risk, confidence and a countdown.

Approve / Reject go through a confirm dialog driven by session_state (see NOTES: the dialog opens
whenever ``approval_request`` is set; confirming or dismissing clears it), so a double click cannot
decide twice and the write happens only in the confirm branch. Roles, self-approval and double
decisions are enforced by ``ApprovalService``; this page only shows its one-line answers.
"""

from __future__ import annotations

import streamlit as st

from console.access.approvals import AlreadyDecided
from console.access.auth import PermissionDenied
from console.domain.models import Decision
from console.presentation import formatting as fmt
from console.presentation import tables
from ui import widgets
from ui.identity import current_identity
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


def request_decision(approval_id: str, approved: bool) -> None:
    """Button callback: remember what the operator asked for; the dialog confirms it."""
    st.session_state["approval_request"] = {"id": approval_id, "approved": approved}
    st.session_state.pop("approval_result", None)


def clear_request() -> None:
    st.session_state.pop("approval_request", None)


def decide(approval_id: str, approved: bool, comment: str) -> None:
    """Call the service and keep its one-line answer for the next run."""
    who = current_identity()
    verb = "approved" if approved else "rejected"
    try:
        if who is None:
            raise PermissionDenied("sign in first")
        result = approvals.decide(approval_id, who, approved, comment)
    except PermissionDenied as exc:
        st.session_state["approval_result"] = ("error", f"Not allowed: {exc}")
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


@st.dialog("Confirm decision", on_dismiss=clear_request)
def confirm_dialog(request: dict) -> None:
    approved = request["approved"]
    verb = "approve" if approved else "reject"
    st.markdown(f"You are about to **{verb}** approval {esc(request['id'])}.")
    if approved:
        st.caption("The recommended actions will run as soon as you confirm.")
    else:
        st.caption("Nothing risky will run. A comment is required when rejecting.")
    comment = st.text_area("Comment", key="approval_comment", max_chars=1000)
    left, right = st.columns(2)
    if left.button("Confirm", type="primary", key="approval_confirm"):
        if not approved and not comment.strip():
            st.error("A rejection needs a comment saying why.")
            return
        decide(request["id"], approved, comment.strip())
        clear_request()
        st.session_state.pop("approval_comment", None)
        st.rerun()
    if right.button("Cancel", key="approval_cancel"):
        clear_request()
        st.rerun()


@st.fragment(run_every=1.0)
def countdown(expires_at: str | None) -> None:
    """Ticks every second on its own (only this fragment reruns); on expiry the page reruns so
    the service expires the request (expiry = rejection) and the card leaves the list."""
    left = fmt.seconds_left(expires_at)
    text = fmt.countdown_text(expires_at)
    if left is not None and left <= 0:
        st.error(f"{text} — rejected (nobody decided in time)", icon=":material/timer_off:")
        if left > -3:  # rerun the page once, right after the deadline
            clear_caches()
            st.rerun(scope="app")
        return
    (st.warning if left is not None and left < 300 else st.info)(
        f"{text} — rejected automatically on expiry", icon=":material/timer:"
    )


result = st.session_state.get("approval_result")
if result:
    kind, message = result
    {"success": st.success, "warning": st.warning, "error": st.error}[kind](esc(message))

request = st.session_state.get("approval_request")
if request:
    confirm_dialog(request)

can_decide = identity is not None and identity.can_approve
if identity is not None and not can_decide:
    st.info(f"You are signed in as a {identity.role.value}: you can see approvals but not decide them.")


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
    for item in pending:
        approval_id = str(fmt.field(item, "id"))
        decision_doc = fmt.field(item, "decision", {})
        try:
            decision = Decision.from_dict(decision_doc) if decision_doc else None
        except (KeyError, ValueError, TypeError):
            decision = None
        actions = fmt.field(item, "actions", [])
        risk = str(fmt.field(item, "risk", ""))
        with st.container(border=True, key=f"approval_{approval_id}"):
            head = st.columns([3, 1, 1, 2])
            with head[0]:
                st.markdown(
                    f"**{esc(fmt.field(item, 'service', '?'))}** · "
                    + esc(", ".join(tables.action_names(actions)))
                )
                st.caption(
                    f"Requested by {esc(fmt.field(item, 'requested_by', '?'))} — "
                    f"{esc(fmt.requester_source_text(fmt.field(item, 'requested_by_source')))} · "
                    f"execution {esc(fmt.field(item, 'execution_id', '?'))}"
                )
            with head[1]:
                st.caption("Risk")
                widgets.badge(fmt.Badge(risk or "—", fmt.RISK_COLORS.get(risk, "gray"), ":material/shield:"))
            head[2].metric("Confidence", fmt.format_percent(fmt.field(item, "confidence")))
            with head[3]:
                countdown(fmt.field(item, "expires_at"))
            needed = int(fmt.field(item, "required_approvals", 1) or 1)
            if needed > 1:
                votes = fmt.field(item, "votes", []) or []
                so_far = ", ".join(
                    f"{v.get('actor')} ({'approved' if v.get('approved') else 'rejected'})" for v in votes
                )
                st.caption(esc(f"Needs {needed} different approvers. Votes so far: {so_far or 'none'}."))
            if decision is not None:
                with st.expander("Evidence", expanded=False):
                    widgets.render_decision(decision, key=f"ap_{approval_id}")
            b1, b2, _ = st.columns([1, 1, 4])
            b1.button(
                "Approve",
                key=f"approve_{approval_id}",
                type="primary",
                disabled=not can_decide,
                on_click=request_decision,
                args=(approval_id, True),
                icon=":material/check:",
            )
            b2.button(
                "Reject",
                key=f"reject_{approval_id}",
                disabled=not can_decide,
                on_click=request_decision,
                args=(approval_id, False),
                icon=":material/close:",
            )

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
