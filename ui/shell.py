"""Every page runs inside ``app.py``'s shell (sidebar, identity, role-filtered menu), deep links too;
the shell's banners (the store degraded) show on every page."""

from __future__ import annotations

import runpy
from pathlib import Path

import streamlit as st

from console.presentation import formatting as fmt
from console.presentation import health
from console.runtime import Services

APP_SCRIPT = Path(__file__).resolve().parent.parent / "app.py"


def require_app_shell() -> None:
    """Make sure this page runs inside ``app.py``'s navigation, never on its own.

    Streamlit treats a ``pages/`` folder beside the entry script as a legacy multipage app until the
    first ``st.navigation`` call (Streamlit 1.67: the class switch ``PagesManager.uses_pages_directory``;
    ``AppTest`` sets it again before every run). In that mode a deep link such as
    ``/executions?execution=ID`` runs the page file alone, without the sidebar, the identity or the
    role-filtered menu. So a page that finds itself there turns the legacy mode off and runs
    ``app.py`` in its place: its ``st.navigation`` resolves the same URL to this same page, which then
    renders inside the shell. The browser deep-link test and every AppTest page test cover this.
    ``server.py`` (how the console is served) turns the legacy mode off before any session, so
    there this only matters for ``streamlit run app.py`` and AppTest.
    """
    from streamlit.runtime.pages_manager import PagesManager

    if PagesManager.uses_pages_directory:
        PagesManager.uses_pages_directory = False
        runpy.run_path(str(APP_SCRIPT), run_name="__main__")
        st.stop()


def degraded_banner(services: Services) -> None:
    """The banner of every page while the store is degraded (locked, disk full, nearly full)."""
    try:
        condition = services.store_condition()
    except Exception:  # the banner never takes a page down
        return
    text = health.degraded_banner(condition) if condition is not None else None
    if text:
        st.error(fmt.md_escape(text), icon=":material/database:")

