"""Who is at the console: the sign-in widgets for the configured mode (demo, password, OIDC) and
the identity kept in the session. Roles are enforced again by the approval service."""

from __future__ import annotations

import streamlit as st

from console.access import auth
from console.presentation.formatting import md_escape
from console.settings import Settings

ROLE_OPTIONS = [r.value for r in auth.Role]


def current_identity() -> auth.Identity | None:
    ident = st.session_state.get("identity")
    return ident if isinstance(ident, auth.Identity) else None


def identity_sidebar(settings: Settings) -> auth.Identity | None:
    """Sign-in widgets for the configured mode; stores the identity in session_state."""
    try:
        mode = auth.auth_mode(settings)
    except Exception:
        mode = "demo"
    with st.sidebar:
        st.caption("Signed in as")
        if mode == "oidc":
            ident = _oidc_sidebar(settings)
        elif mode == "password":
            ident = _password_sidebar(settings)
        else:
            ident = _demo_sidebar()
    # The pages read the identity from session_state: never leave a stale one behind (log out).
    if ident is None:
        st.session_state.pop("identity", None)
    else:
        st.session_state["identity"] = ident
    return ident


def _demo_sidebar() -> auth.Identity | None:
    # Widget state can be dropped by a run that did not draw the sidebar (a dialog/fragment rerun):
    # restore it from the identity kept in session_state, so nobody is silently renamed.
    previous = current_identity()
    if not st.session_state.get("demo_name"):
        st.session_state["demo_name"] = previous.name if previous else "operator"
    if st.session_state.get("demo_role") not in ROLE_OPTIONS:
        st.session_state["demo_role"] = previous.role.value if previous else "approver"
    st.text_input("Name", key="demo_name", max_chars=64)
    st.selectbox("Role", ROLE_OPTIONS, key="demo_role")
    if not str(st.session_state.get("demo_name") or "").strip() and previous is not None:
        st.caption(f"Name left empty: still {md_escape(previous.name)}.")
        return previous
    try:
        ident = auth.demo_identity(st.session_state["demo_name"], st.session_state["demo_role"])
    except auth.InvalidIdentity as exc:
        st.error(str(exc))
        st.session_state.pop("identity", None)
        return None
    st.session_state["identity"] = ident
    return ident


def _password_sidebar(settings: Settings) -> auth.Identity | None:
    ident = current_identity()
    if ident is not None and ident.source == "password":
        st.markdown(f"**{md_escape(ident.name)}** · {ident.role.value}")
        if st.button("Sign out", key="sign_out"):
            st.session_state.pop("identity", None)
            st.rerun()
        return ident
    with st.form("login", border=False):
        name = st.text_input("User", key="login_user")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Sign in", key="sign_in")
    if submitted:
        found = auth.verify_password(settings, name.strip(), password)
        if found is None:
            st.error("Unknown user or wrong password")
        else:
            st.session_state["identity"] = found
            st.rerun()
    return None


def _oidc_sidebar(settings: Settings) -> auth.Identity | None:
    user = st.user
    if not getattr(user, "is_logged_in", False):
        st.button("Log in", on_click=st.login, key="oidc_login")
        return None
    ident = auth.identity_from_oidc(user.to_dict(), settings)
    if ident is None:
        st.error("Your account has no e-mail address the console can use")
        return None
    st.session_state["identity"] = ident
    st.markdown(f"**{md_escape(ident.name)}** · {ident.role.value}")
    st.button("Log out", on_click=st.logout, key="oidc_logout")
    return ident


def demo_mode(settings: Settings) -> bool:
    try:
        return auth.auth_mode(settings) == "demo"
    except Exception:
        return True
