"""Pages that stay current: a page draws from the store, notes a cheap digest of what it drew, and
a small fragment (``run_every``) reads that digest again every :data:`EVERY_S` seconds; when it
differs (another browser decided, a run paused, a deployment moved on) the page reruns, so a change
made anywhere shows within a few seconds. Nothing is drawn again while nothing changed, and the
poll reads the store only (the read model), never the engine.

While the operator types in a dialog (:func:`hold`), a change waits: the page reruns when the
dialog closes. Keyed widgets keep their values across a rerun (filters, a picked rollback target).
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from ui.services import log

EVERY_S = 2.0
"""How often a page's digest is read again: a change shows within this plus one page run."""
HOLD_KEY = "refresh_hold"


def drawn(name: str, digest: object) -> None:
    """What this run of the page was drawn from (read it *before* the page's own reads: a change
    in between then shows once more rather than never)."""
    st.session_state[f"refresh_{name}"] = digest


def hold(on: bool) -> None:
    """Keep the page as it is while ``on`` (a dialog is open): nothing the operator types is lost."""
    st.session_state[HOLD_KEY] = bool(on)


def held() -> bool:
    """Whether the page is kept as it is now (:func:`hold`)."""
    return bool(st.session_state.get(HOLD_KEY))


def watch(
    name: str,
    read: Callable[[], object],
    *,
    every_s: float = EVERY_S,
    on_change: Callable[[], None] | None = None,
) -> None:
    """Rerun the page when ``read()`` differs from what :func:`drawn` noted for ``name``.
    ``on_change`` runs first (e.g. to drop cached reads the page would otherwise draw again)."""

    @st.fragment(run_every=every_s, key=f"refresh_{name}")
    def poll() -> None:
        if held():
            return
        try:
            now = read()
        except Exception:  # a busy or closed store: the next poll tries again
            log.warning("live refresh of %s could not read the store", name, exc_info=True)
            return
        if now != st.session_state.get(f"refresh_{name}"):
            if on_change is not None:
                on_change()
            st.rerun(scope="app")

    poll()
