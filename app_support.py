"""Streamlit-side glue shared by the pages: services, identity, safe calls, badges.

Everything that touches ``st`` and is used by more than one page lives here; everything that can
be computed without Streamlit lives in ``console/`` (presentation). Pages stay thin: read through
these helpers, render, call an action.
"""

from __future__ import annotations

import logging
import runpy
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import streamlit as st

from console.access import auth
from console.engines.backend import BackendError, BackendUnavailable
from console.presentation.formatting import Badge, state_badge, status_badge, verdict_badge
from console.runtime import Services, open_services
from console.settings import Settings

log = logging.getLogger("console.ui")
T = TypeVar("T")

APP_SCRIPT = Path(__file__).resolve().parent / "app.py"
ROLE_OPTIONS = [r.value for r in auth.Role]


# --- services --------------------------------------------------------------------------------


def require_app_shell() -> None:
    """Make sure this page runs inside ``app.py``'s navigation, never on its own.

    Streamlit treats a ``pages/`` folder beside the entry script as a legacy multipage app until the
    first ``st.navigation`` call (Streamlit 1.67: the class switch ``PagesManager.uses_pages_directory``;
    ``AppTest`` sets it again before every run). In that mode a deep link such as
    ``/executions?execution=ID`` runs the page file alone, without the sidebar, the identity or the
    role-filtered menu. So a page that finds itself there turns the legacy mode off and runs
    ``app.py`` in its place: its ``st.navigation`` resolves the same URL to this same page, which then
    renders inside the shell. The browser deep-link test and every AppTest page test cover this.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        runpy.run_path(str(APP_SCRIPT), run_name="__main__")
        st.stop()


@st.cache_resource(show_spinner=False)
def get_services() -> Services:
    """Settings, the engine (embedded or Kestra), the store and the approval service, wired once per
    process (:func:`console.runtime.open_services`); what cannot start is in ``Services.error``."""
    return open_services()


def clear_caches() -> None:
    """After a write: drop cached reads so the next render shows it."""
    st.cache_data.clear()


def _esc(text: Any) -> str:
    from console.presentation.formatting import md_escape

    return md_escape(text)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:300]


def safe(fn: Callable[..., T], *args: Any, default: T, what: str = "", **kwargs: Any) -> T:
    """Call a backend/store function; on failure show one line and return ``default``.

    BackendUnavailable becomes a warning banner (the page keeps rendering what it has); any other
    error an st.error with the message. Tracebacks go to the server log, never to the screen.
    """
    try:
        return fn(*args, **kwargs)
    except BackendUnavailable as exc:
        st.warning(
            f"Engine unreachable{f' ({what})' if what else ''}: {_one_line(exc)}", icon=":material/cloud_off:"
        )
    except (BackendError, ValueError, LookupError, PermissionError) as exc:
        st.error(f"{what + ': ' if what else ''}{_one_line(exc)}", icon=":material/block:")
    except Exception as exc:
        log.exception("unexpected error in %s", what or getattr(fn, "__name__", "call"))
        st.error(f"{what + ': ' if what else ''}unexpected error ({type(exc).__name__}): {_one_line(exc)}")
    return default


# --- identity --------------------------------------------------------------------------------


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
        st.caption(f"Name left empty: still {_esc(previous.name)}.")
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
        st.markdown(f"**{_esc(ident.name)}** · {ident.role.value}")
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
    st.markdown(f"**{_esc(ident.name)}** · {ident.role.value}")
    st.button("Log out", on_click=st.logout, key="oidc_logout")
    return ident


# --- rendering helpers -----------------------------------------------------------------------


def badge(b: Badge) -> None:
    st.badge(b.label, color=b.color, icon=b.icon)


def verdict(v: Any) -> None:
    badge(verdict_badge(v))


def state(s: Any) -> None:
    badge(state_badge(s))


def status(s: str | None) -> None:
    badge(status_badge(s))


def badge_md(b: Badge) -> str:
    """Badge as markdown (labels come from fixed enums, never from user text)."""
    return f":{b.color}-badge[{b.icon} {b.label}]"


def empty_state(message: str, *, link_scenarios: bool = True) -> None:
    st.info(message, icon=":material/info:")
    if link_scenarios:
        st.page_link("pages/scenarios.py", label="Launch a scenario", icon=":material/rocket_launch:")


def demo_mode(settings: Settings) -> bool:
    try:
        return auth.auth_mode(settings) == "demo"
    except Exception:
        return True


@st.cache_data(ttl=10, show_spinner=False)
def backend_health(_backend: Any, backend_name: str) -> tuple[bool, str, str]:
    """(ok, name, message) for the sidebar; cached briefly so every rerun does not ping Kestra."""
    if _backend is None:
        return False, backend_name, "not started"
    try:
        health = _backend.health()
        return bool(health.ok), health.backend or backend_name, health.message or ""
    except BackendError as exc:
        return False, backend_name, _one_line(exc)
    except Exception as exc:
        log.exception("health check failed")
        return False, backend_name, f"{type(exc).__name__}: {_one_line(exc)}"


def sidebar_status(services: Services) -> None:
    settings = services.settings
    ok, name, message = backend_health(services.backend, settings.backend_name)
    with st.sidebar:
        st.divider()
        colour = "green" if ok else "red"
        icon = ":material/check_circle:" if ok else ":material/error:"
        st.markdown(f"Engine :{colour}-badge[{icon} {name}]")
        if message:
            st.caption(message)
        analyzer = settings.analyzer_name
        label = "rules" if analyzer == "rules" else "LLM"
        st.markdown(f"Analyzer :blue-badge[:material/psychology: {label}]")
        if analyzer != "rules":
            st.caption(settings.llm_model)


# --- cached reads (cleared by clear_caches() after every write) -------------------------------
# The store/backend arguments start with "_" so Streamlit does not hash them; the database path is
# part of the key so two data directories in one process never share entries.

READ_TTL_S = 5


@st.cache_data(ttl=READ_TTL_S, show_spinner=False)
def read_kpis(_store: Any, db: str) -> Any:
    return _store.dashboard_kpis()


@st.cache_data(ttl=READ_TTL_S, show_spinner=False)
def read_deployments(
    _store: Any,
    db: str,
    service: str | None = None,
    status: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[dict[str, Any]]:
    return _store.list_deployments(service=service or None, status=status or None, limit=limit, offset=offset)


@st.cache_data(ttl=READ_TTL_S, show_spinner=False)
def read_latest_decisions(_store: Any, db: str, limit: int = 10) -> list[dict[str, Any]]:
    return _store.latest_decisions(limit)


@st.cache_data(ttl=READ_TTL_S, show_spinner=False)
def read_service_health(_store: Any, db: str) -> list[dict[str, Any]]:
    return _store.service_health()


class _LearningCache:
    """The Learning read model, kept per process and refreshed incrementally (only outcome
    rows written since the last read are fetched, see ``Store.learning_rows``)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.frames: dict[str, Any] = {}
        self.after: dict[str, int] = {}


@st.cache_resource(show_spinner=False)
def _learning_cache() -> _LearningCache:
    return _LearningCache()


def read_learning(store: Any, db: str) -> Any:
    from console.presentation.learning import learning_frame, merge_learning

    cache = _learning_cache()
    with cache.lock:
        fresh = learning_frame(store.learning_rows(after=cache.after.get(db, 0)))
        frame = merge_learning(cache.frames.get(db), fresh)
        cache.frames[db] = frame
        if not frame.empty:
            cache.after[db] = int(frame["seq"].max())
        return frame


@st.cache_data(ttl=30, show_spinner=False)
def read_metric_index(_store: Any, db: str) -> dict[str, list[str]]:
    return {service: _store.metric_names(service) for service in _store.metric_services()}


@st.cache_data(ttl=READ_TTL_S, show_spinner=False)
def read_metric_series(
    _store: Any, db: str, service: str, metric: str, start: Any, end: Any, max_points: int
) -> tuple[list[float], list[float]]:
    points = _store.metric_series(service, metric, start, end, max_points)
    return [p[0].timestamp() for p in points], [p[1] for p in points]


def db_key(services: Services) -> str:
    return str(services.settings.db_path)


def require_store(services: Services) -> bool:
    """Show why the page cannot render when the store is missing; True when it is there."""
    if services.store is None:
        st.error(services.error or "The console's database is not available.", icon=":material/block:")
        return False
    return True


@st.cache_data(ttl=2, show_spinner=False)
def read_execution(_backend: Any, db: str, execution_id: str) -> Any:
    return _backend.get_execution(execution_id)


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
            "Confidence", min_value=0.0, max_value=1.0, format="percent"
        ),
        "status": st.column_config.TextColumn("Status"),
        "deployed_at": st.column_config.DatetimeColumn("Deployed", format="YYYY-MM-DD HH:mm:ss"),
        "execution_id": st.column_config.TextColumn("Execution"),
    }


def render_decision(decision: Any, *, key: str) -> None:
    """The decision card: verdict, severity, confidence, summary, root cause, evidence, log patterns.

    All analyzer/LLM text goes through st.text / dataframes (never HTML or markdown), so text taken
    from logs cannot format or script the page.
    """
    from console.presentation import formatting as fmt
    from console.presentation import tables

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
    if decision.impact:
        st.caption("Impact")
        st.text(decision.impact)
    if decision.guards:
        st.caption("Hard guards fired")
        st.text("; ".join(decision.guards))
    tabs = st.tabs(["Evidence per metric", "New log patterns", "Recommended actions"])
    with tabs[0]:
        frame = tables.evidence_frame(decision)
        if frame.empty:
            st.caption("No metric evidence.")
        else:
            st.dataframe(
                frame,
                hide_index=True,
                width="stretch",
                key=f"{key}_evidence",
                column_config={
                    "change": st.column_config.NumberColumn("Change", format="percent"),
                    "p_value": st.column_config.NumberColumn("p", format="%.4f"),
                    "effect": st.column_config.NumberColumn("Cliff's δ", format="%.2f"),
                },
            )
    with tabs[1]:
        frame = tables.log_patterns_frame(decision)
        if frame.empty:
            st.caption("No new or surging log patterns.")
        else:
            st.dataframe(frame, hide_index=True, width="stretch", key=f"{key}_patterns")
    with tabs[2]:
        frame = tables.actions_frame(decision)
        if frame.empty:
            st.caption("No action recommended.")
        else:
            st.dataframe(frame, hide_index=True, width="stretch", key=f"{key}_actions")


# --- scenarios -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScenarioCard:
    id: str
    title: str
    description: str
    expected_verdict: str


@st.cache_data(ttl=300, show_spinner=False)
def read_scenarios(mock_dir: str) -> list[ScenarioCard]:
    """The demo scenarios (``console.loop.scenarios.list_scenarios``), as plain cards."""
    from console.loop import scenarios

    return [
        ScenarioCard(
            id=str(_attr(s, "id")),
            title=str(_attr(s, "title") or _attr(s, "id")),
            description=str(_attr(s, "description") or ""),
            expected_verdict=str(_attr(s, "expected_verdict") or ""),
        )
        for s in scenarios.list_scenarios(mock_dir)
    ]


def _attr(obj: Any, name: str) -> Any:
    from console.presentation.formatting import field

    return field(obj, name)
