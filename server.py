"""One server, one port: the console's pages (``app.py``) and its HTTP API (``/api/...``).

Run with ``streamlit run server.py`` (``./scripts/console.sh`` does). Streamlit 1.67 serves an
``st.App`` in ASGI mode with extra Starlette routes beside the app; the API shares the pages' parts
(store, engine, approval service) through :func:`console.runtime.shared_services`, opened here at
start so the approval expiry timer and crash recovery run before the first page or request.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import streamlit as st
from starlette.concurrency import run_in_threadpool
from streamlit.runtime.pages_manager import PagesManager

from console.api import api_routes
from console.api.guard import trusted_proxy_headers
from console.api.session import session_routes
from console.runtime import close_shared_services, shared_services
from console.settings import Settings, SettingsError, load_settings


def _access_log() -> None:
    """One line per API request on stderr beside Streamlit's own (method, path, status, the token's
    name, the time; never a header, a query string or a body: console/api/app.py)."""
    logger = logging.getLogger("console.api")
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s.%(msecs)03d %(message)s", "%Y-%m-%d %H:%M:%S"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


@asynccontextmanager
async def lifespan(_app: Any) -> AsyncIterator[None]:
    await run_in_threadpool(shared_services)
    try:
        yield None
    finally:
        await run_in_threadpool(close_shared_services, False)


def _navigation_only() -> None:
    """The console navigates with ``st.navigation`` (app.py) only. Left alone, Streamlit 1.67 runs
    the first session after start in its legacy ``pages/``-folder mode until app.py's first
    ``st.navigation`` call, and in a real browser that first session's first sign-in submit was
    lost (tests/ui/test_sign_in_browser.py). Deciding it once here, before any session, gives every
    session the same runs; ``ui/shell.py`` still covers ``streamlit run app.py`` and AppTest."""
    PagesManager.uses_pages_directory = False


def _trusted_proxies_only() -> None:
    """Who the client is, for the API's failure limits and the sign-in limits: uvicorn (which runs
    an ``st.App``) replaces the peer's address with ``X-Forwarded-For`` for the peers in its
    ``FORWARDED_ALLOW_IPS``, loopback by default, so anything on this machine could pose as any
    address. The console trusts only ``CONSOLE_TRUSTED_PROXIES`` (none by default) instead:
    uvicorn builds that middleware right after importing this module, through the name replaced
    here (:func:`console.api.guard.trusted_proxy_headers`)."""
    import uvicorn.config

    try:
        settings = load_settings()
    except SettingsError:
        settings = Settings()  # the pages say what is wrong; trust no proxy meanwhile

    def proxy_headers(app: Any, trusted_hosts: Any = None) -> Any:
        return trusted_proxy_headers(app, settings)

    uvicorn.config.ProxyHeadersMiddleware = proxy_headers  # type: ignore[attr-defined,assignment]


_access_log()
_navigation_only()
_trusted_proxies_only()
app = st.App("app.py", routes=[*api_routes(), *session_routes()], lifespan=lifespan)
