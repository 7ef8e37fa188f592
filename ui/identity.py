"""Who is at the console: the sign-in widgets for the sign-in that applies (password, OIDC, demo;
or none configured, or a broken configuration: see :mod:`console.access.signin`) and the identity
kept in the session. Roles, and who may decide at all, are enforced again by the approval service.

A password sign-in goes through the attempt limits (:mod:`console.access.attempts`) and starts a
session (:mod:`console.access.sessions`): the page hands its one-time ticket to the browser, which
exchanges it at ``/auth/session`` for an HttpOnly cookie, so a reload or a deep link in a new tab
stays signed in; each run reads that cookie through ``st.context.cookies`` and checks the session
in the store, so a sign-out anywhere ends it everywhere."""

from __future__ import annotations

import json
from collections.abc import Mapping

import streamlit as st

from console.access import auth, signin
from console.access.attempts import SignInRefused, password_sign_in
from console.access.sessions import COOKIE_NAME, Sessions
from console.api.session import PATH as SESSION_PATH
from console.presentation.formatting import md_escape
from console.settings import Settings
from ui.services import get_services, log

ROLE_OPTIONS = [r.value for r in auth.Role]


def current_identity() -> auth.Identity | None:
    ident = st.session_state.get("identity")
    return ident if isinstance(ident, auth.Identity) else None


def identity_sidebar(settings: Settings) -> auth.Identity | None:
    """Sign-in widgets for the sign-in that applies; stores the identity in session_state."""
    policy = signin.sign_in(settings)
    with st.sidebar:
        st.caption("Signed in as")
        if policy.broken:
            st.error("Sign-in is misconfigured: nobody can sign in or decide.", icon=":material/lock:")
            ident = None
        elif policy.mode == "none":
            _setup_sidebar(policy)
            ident = None
        elif policy.mode == "oidc":
            ident = _oidc_sidebar(settings)
        elif policy.mode == "password":
            ident = _password_sidebar(settings)
        else:
            ident = _demo_sidebar()
    # The pages read the identity from session_state: never leave a stale one behind (log out).
    if ident is None:
        st.session_state.pop("identity", None)
    else:
        st.session_state["identity"] = ident
    return ident


def sign_in_banners(settings: Settings) -> signin.SignIn:
    """What every page shows about the sign-in: a broken configuration (each problem, and that
    nobody can decide), demo identity switched on where the console acts for real (red), plain
    demo mode (a caption)."""
    policy = signin.sign_in(settings)
    if policy.broken:
        lines = "\n".join(f"- {md_escape(problem)}" for problem in policy.problems)
        st.error(
            "**The sign-in configuration cannot be used, so nobody can sign in or decide** "
            "(it never falls back to demo mode). Fix it in `.streamlit/secrets.toml`:\n" + lines,
            icon=":material/lock:",
        )
    elif policy.demo_on_live:
        st.error(
            "**Demo identity is on** (CONSOLE_DEMO_IDENTITY) although this console acts for real: "
            + md_escape(", ".join(policy.live))
            + ". Anyone who reaches this page can pick any name and role, admin included. Unset "
            "CONSOLE_DEMO_IDENTITY and configure a password or OIDC sign-in.",
            icon=":material/warning:",
        )
    elif policy.mode == "demo":
        st.caption(
            ":orange-badge[:material/info: Demo mode] anyone can pick any name and role in the sidebar."
        )
    return policy


def _setup_sidebar(policy: signin.SignIn) -> None:
    st.warning(
        "No sign-in is configured, and demo identity is off because "
        + md_escape(signin.why_live(policy.live))
        + ". You can look around; nobody can approve.",
        icon=":material/lock:",
    )
    for note in policy.notes:
        st.caption(md_escape(note))
    st.markdown(signin.SETUP_HELP)
    st.caption(
        "For a demo only: CONSOLE_DEMO_IDENTITY=1 lets anyone pick a name and role (with a red banner)."
    )


def _demo_sidebar() -> auth.Identity | None:
    # Widget state can be dropped by a run that did not draw the sidebar (a dialog/fragment rerun):
    # restore it from the identity kept in session_state, so nobody is silently renamed.
    previous = current_identity()
    if previous is not None and previous.source != "demo":
        previous = None
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
        st.error(md_escape(exc))
        st.session_state.pop("identity", None)
        return None
    st.session_state["identity"] = ident
    return ident


def _still_configured(settings: Settings, ident: auth.Identity) -> bool:
    """A signed-in password user whose table was removed, or whose role changed, is signed out."""
    user = auth.configured_users(settings).get(ident.name)
    if not isinstance(user, Mapping):
        return False
    try:
        return auth.parse_role(user.get("role")) == ident.role
    except auth.InvalidIdentity:
        return False


_SESSION_KEYS = ("identity", "session_id", "session_ticket")


def _signed_in_session(settings: Settings, sessions: Sessions | None) -> auth.Identity | None:
    """The password identity of this browser session, if still good: kept from a sign-in in this
    tab (its stored session still live), or resumed from the session cookie (a reload, a new tab)."""
    ident = current_identity()
    session_id = st.session_state.get("session_id")
    kept = ident is not None and ident.source == "password" and _still_configured(settings, ident)
    if kept and (sessions is None or not session_id or sessions.check(session_id) is not None):
        return ident
    for key in _SESSION_KEYS:  # signed out elsewhere, expired, or no longer configured
        st.session_state.pop(key, None)
    resumed = sessions.resume(st.context.cookies.get(COOKIE_NAME)) if sessions is not None else None
    if resumed is None:
        return None
    st.session_state["identity"] = resumed.identity
    st.session_state["session_id"] = resumed.session_id
    return resumed.identity


def _browser_call(method: str, body: dict[str, str] | None = None) -> None:
    """Have the browser call ``/auth/session`` (only the browser can receive or drop an HttpOnly
    cookie). Nothing here comes from a user: the path is fixed and a ticket is a random token."""
    payload = f", headers: {{'Content-Type': 'application/json'}}, body: {json.dumps(json.dumps(body))}"
    script = (
        f"<script>fetch({json.dumps(SESSION_PATH)}, {{method: {json.dumps(method)}, "
        f"credentials: 'same-origin'{payload if body is not None else ''}}});</script>"
    )
    st.html(script, unsafe_allow_javascript=True)


def _sign_out(sessions: Sessions | None) -> None:
    session_id = st.session_state.get("session_id")
    if sessions is not None and session_id:
        sessions.end(session_id=session_id)
    for key in _SESSION_KEYS:
        st.session_state.pop(key, None)
    st.session_state["clear_session_cookie"] = True


def _client_address() -> str:
    return st.context.ip_address or "local"


def _password_sidebar(settings: Settings) -> auth.Identity | None:
    services = get_services()
    sessions = services.sessions
    ident = _signed_in_session(settings, sessions)
    if ident is not None:
        ticket = st.session_state.get("session_ticket")
        if ticket and sessions is not None and sessions.ticket_pending(ticket):
            _browser_call("POST", {"ticket": ticket})  # until the browser has its cookie
        else:
            st.session_state.pop("session_ticket", None)
        st.markdown(f"**{md_escape(ident.name)}** · {ident.role.value}")
        st.button("Sign out", key="sign_out", on_click=_sign_out, args=(sessions,))
        return ident
    if st.session_state.pop("clear_session_cookie", False):
        _browser_call("DELETE")
    with st.form("login", border=False):
        name = st.text_input("User", key="login_user")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Sign in", key="sign_in")
    if submitted:
        if services.store is None:
            st.error("Signing in is unavailable: the console's store did not start.")
            return None
        try:
            found = password_sign_in(
                services.store, settings, name, password, address=_client_address(), via="console page"
            )
        except SignInRefused as exc:
            st.error(md_escape(str(exc)[:1].upper() + str(exc)[1:]))
            return None
        st.session_state["identity"] = found
        if sessions is not None:
            try:
                st.session_state["session_id"], st.session_state["session_ticket"] = sessions.start(found)
            except Exception:  # signed in all the same, for this tab only
                log.exception("could not start a session for %s", found.name)
        st.rerun()
    return None


def _oidc_sidebar(settings: Settings) -> auth.Identity | None:
    user = st.user
    if not getattr(user, "is_logged_in", False):
        for provider in signin.oidc_providers(settings):
            if provider is None:
                st.button("Log in", on_click=st.login, key="oidc_login")
            else:
                st.button(
                    f"Log in with {md_escape(provider)}",
                    on_click=st.login,
                    args=(provider,),
                    key=f"oidc_login_{provider}",
                )
        return None
    ident = auth.identity_from_oidc(user.to_dict(), settings)
    if ident is None:
        st.error("Your account has no e-mail address the console can use")
        return None
    st.session_state["identity"] = ident
    st.markdown(f"**{md_escape(ident.name)}** · {ident.role.value}")
    st.button("Log out", on_click=st.logout, key="oidc_logout")
    return ident
