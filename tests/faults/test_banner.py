"""Every page says when the store is degraded: the banner of the shell (ui/shell.py, from
console/presentation/health.py) while writes are refused, gone once a write commits again."""

from __future__ import annotations

import pytest

from console.storage import StoreBusy
from tests.faults.test_store_faults import Lock
from tests.ui.conftest import PAGES, make_app, texts

pytestmark = pytest.mark.faults


def _banners(page: str) -> list[str]:
    at = make_app(role="admin", page=page)
    assert not at.exception, at.exception
    return [t for t in texts(at, "error") if "store is degraded" in t]


def test_every_page_shows_the_banner_while_the_store_refuses_writes(app_env, monkeypatch) -> None:
    monkeypatch.setenv("CONSOLE_STORE_BUSY_TIMEOUT_S", "0.1")
    make_app()  # the console opens its store
    from ui.services import get_services

    store = get_services().store
    assert _banners("overview") == []
    lock = Lock(store.db.path)
    try:
        with pytest.raises(StoreBusy):
            store.audit.record("tester", "probe", None, {})
        for page in PAGES:
            [banner] = _banners(page)
            assert "busy since" in banner and "Retry-After" in banner, (page, banner)
    finally:
        lock.release()
    store.audit.record("tester", "probe", None, {})  # a write commits again: the fault is over
    assert _banners("deployments") == []
