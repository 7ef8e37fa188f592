"""Pages that stay current: a page draws from the store and notes a cheap digest of what it drew
(:func:`drawn`) with the read that gives it again (:func:`watch`). One small fragment per page
(:func:`poll`, drawn by app.py) reads every watched digest again each :data:`EVERY_S` seconds; when
one differs (another browser decided, a run paused, a deployment moved on) the page reruns, so a
change made anywhere shows within a few seconds. Nothing is drawn again while nothing changed, and
the poll reads the store only (the read model), never the engine.

One poll per page, not one per digest: each fragment run costs the browser a redraw pass over the
whole page, whether or not anything changed.

While the operator types in a dialog (:func:`hold`), a change waits: the page reruns when the
dialog closes. Keyed widgets keep their values across a rerun (filters, a picked rollback target).
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from ui.services import log

EVERY_S = 2.0
"""How often a page's digests are read again: a change shows within this plus one page run."""
HOLD_KEY = "refresh_hold"
WATCHES_KEY = "refresh_watches"

Watches = dict[str, tuple[Callable[[], object], Callable[[], None] | None]]


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


def watch(name: str, read: Callable[[], object], *, on_change: Callable[[], None] | None = None) -> None:
    """Rerun the page when ``read()`` differs from what :func:`drawn` noted for ``name`` (the page's
    :func:`poll` reads it). ``on_change`` runs first (e.g. to drop cached reads the page would
    otherwise draw again)."""
    st.session_state.setdefault(WATCHES_KEY, {})[name] = (read, on_change)


def changed(watches: Watches, noted: Callable[[str], object]) -> list[str] | None:
    """The watches whose read differs from what ``noted`` gives for them; None when the page is
    held. A read that fails (a busy or closed store) counts as unchanged: the next poll tries again."""
    if held():
        return None
    out = []
    for name, (read, _) in list(watches.items()):
        try:
            now = read()
        except Exception:
            log.warning("live refresh of %s could not read the store", name, exc_info=True)
            continue
        if now != noted(name):
            out.append(name)
    return out


def poll() -> None:
    """The page's one poll: called by app.py before the page runs (so a page that stops early is
    still polled); the watches the page registers during this run are read from the next poll on."""
    watches: Watches = {}
    st.session_state[WATCHES_KEY] = watches

    @st.fragment(run_every=EVERY_S, key="refresh_poll")
    def poll_watches() -> None:
        names = changed(watches, lambda name: st.session_state.get(f"refresh_{name}"))
        if not names:
            return
        for name in names:
            on_change = watches[name][1]
            if on_change is not None:
                on_change()
        st.rerun(scope="app")

    poll_watches()
