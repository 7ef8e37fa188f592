"""The Deployments page's revision history of one service: every version seen running, known-good
/ known-bad / unknown and why, and (for approvers and admins) an audited mark. What is known comes
from ``console.loop.revisions``; the mark is checked in ``console.access.revisions``."""

from __future__ import annotations

import streamlit as st

from console.access.auth import PermissionDenied
from console.access.revisions import mark_revision
from console.loop import revisions
from console.presentation import formatting as fmt
from console.presentation import tables
from console.runtime import Services
from ui.identity import current_identity
from ui.services import clear_caches, safe

esc = fmt.md_escape
STATUS_COLORS = {revisions.KNOWN_GOOD: "green", revisions.KNOWN_BAD: "red", revisions.UNKNOWN: "gray"}


def render_revisions(services: Services, service: str) -> None:
    store = services.store
    if store is None:
        return
    history = revisions.revisions(safe(store.revisions.events, service, default=[], what="revision history"))
    if not history:
        st.caption(
            f"No revision history of {esc(service)} yet: it is written by deployments the loop watched "
            "on a real service (never by scenarios)."
        )
        return
    frame = tables.revisions_frame(history)
    st.dataframe(
        frame,
        hide_index=True,
        width="stretch",
        key=f"revisions_{service}",
        column_config={
            "decided_at": st.column_config.DatetimeColumn("decided", format="HH:mm:ss"),
            "last_seen": st.column_config.DatetimeColumn("last seen", format="YYYY-MM-DD HH:mm:ss"),
        },
    )
    good = [r.version for r in history if r.status == revisions.KNOWN_GOOD]
    st.caption(
        "A rollback goes to the newest known-good version before the current one, never to a known-bad "
        f"one. Known-good now: {esc(', '.join(good) or 'none')}."
    )
    result = st.session_state.pop("revision_result", None)
    if result:
        {"success": st.success, "error": st.error}[result[0]](esc(result[1]))
    identity = current_identity()
    if identity is None or not identity.can_approve:
        return
    with st.form(f"mark_{service}", clear_on_submit=True):
        st.markdown("**Mark a version** (audited; approvers and admins)")
        c1, c2 = st.columns([1, 1])
        version = c1.selectbox("Version", [r.version for r in history], key=f"mark_version_{service}")
        verdict = c2.radio("As", ["known-good", "known-bad"], horizontal=True, key=f"mark_as_{service}")
        reason = st.text_input("Why (what was checked, where)", key=f"mark_reason_{service}", max_chars=500)
        if st.form_submit_button("Mark", icon=":material/flag:"):
            try:
                marked = mark_revision(
                    services.approvals, identity, service, str(version), verdict == "known-good", reason
                )
            except (PermissionDenied, ValueError) as exc:
                st.session_state["revision_result"] = ("error", f"Not marked: {exc}")
            else:
                st.session_state["revision_result"] = (
                    "success",
                    f"{marked.version} is {marked.status}: {marked.reason}",
                )
            clear_caches()
            st.rerun()
