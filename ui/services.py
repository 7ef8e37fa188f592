"""The console's parts once per process (built by :mod:`console.runtime`), calls that show one line
instead of a traceback, and the engine's status in the sidebar."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import streamlit as st

from console.domain.text import one_line
from console.engines.backend import Backend, BackendError, BackendUnavailable
from console.presentation import formatting as fmt
from console.runtime import Services, shared_services

log = logging.getLogger("console.ui")
T = TypeVar("T")


def get_services() -> Services:
    """Settings, the engine (embedded or Kestra), the store and the approval service, wired once per
    process and shared with the HTTP API (:func:`console.runtime.shared_services`, which caches it
    itself, so no ``st.cache_resource`` here); what cannot start is in ``Services.error``."""
    return shared_services()


def clear_caches() -> None:
    """After a write: drop cached reads so the next render shows it."""
    st.cache_data.clear()


def safe(fn: Callable[..., T], *args: Any, default: T, what: str = "", **kwargs: Any) -> T:
    """Call a backend/store function; on failure show one line and return ``default``.

    BackendUnavailable becomes a warning banner (the page keeps rendering what it has); any other
    error an st.error with the message. Tracebacks go to the server log, never to the screen.
    """
    try:
        return fn(*args, **kwargs)
    except BackendUnavailable as exc:
        st.warning(
            fmt.md_escape(f"Engine unreachable{f' ({what})' if what else ''}: {one_line(exc)}"),
            icon=":material/cloud_off:",
        )
    except (BackendError, ValueError, LookupError, PermissionError) as exc:
        st.error(fmt.md_escape(f"{what + ': ' if what else ''}{one_line(exc)}"), icon=":material/block:")
    except Exception as exc:
        log.exception("unexpected error in %s", what or getattr(fn, "__name__", "call"))
        st.error(
            fmt.md_escape(
                f"{what + ': ' if what else ''}unexpected error ({type(exc).__name__}): {one_line(exc)}"
            )
        )
    return default


@st.cache_data(ttl=10, show_spinner=False)
def backend_health(_backend: Backend | None, backend_name: str) -> tuple[bool, str, str]:
    """(ok, name, message) for the sidebar; cached briefly so every rerun does not ping Kestra."""
    if _backend is None:
        return False, backend_name, "not started"
    try:
        health = _backend.health()
        return bool(health.ok), health.backend or backend_name, health.message or ""
    except BackendError as exc:
        return False, backend_name, one_line(exc)
    except Exception as exc:
        log.exception("health check failed")
        return False, backend_name, f"{type(exc).__name__}: {one_line(exc)}"


def sidebar_status(services: Services) -> None:
    settings = services.settings
    ok, name, message = backend_health(services.backend, settings.backend_name)
    with st.sidebar:
        st.divider()
        colour = "green" if ok else "red"
        icon = ":material/check_circle:" if ok else ":material/error:"
        st.markdown(f"Engine :{colour}-badge[{icon} {fmt.md_escape(name)}]")
        if message:
            st.caption(fmt.md_escape(message))
        if services.mirror is not None and services.store is not None:
            state = services.store.mirror.state("kestra")
            st.caption(fmt.md_escape(fmt.mirror_caption(state, datetime.now(UTC))))
        analyzer = settings.analyzer_name
        label = "rules" if analyzer == "rules" else "LLM"
        st.markdown(f"Analyzer :blue-badge[:material/psychology: {label}]")
        if analyzer != "rules":
            st.caption(fmt.md_escape(settings.llm_model))
