"""One Services per process, for the pages and the API: opened once under concurrency, the same
object through ui/services.get_services, and opened anew from the settings of the moment once closed."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from console import runtime


@pytest.fixture
def fresh(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("CONSOLE_DATA_DIR", str(tmp_path / "one"))
    monkeypatch.setenv("CONSOLE_SECRETS", str(tmp_path / "no-secrets.toml"))
    for name in ("KESTRA_URL", "TOGETHER_API_KEY", "CONSOLE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    runtime.close_shared_services()
    yield tmp_path
    runtime.close_shared_services()


def test_threads_asking_at_once_get_one_services_opened_once(fresh, monkeypatch):
    opened = []
    real = runtime.open_services

    def counting(settings=None):
        opened.append(1)
        return real(settings)

    monkeypatch.setattr(runtime, "open_services", counting)
    got = []
    barrier = threading.Barrier(8)

    def ask() -> None:
        barrier.wait()
        got.append(runtime.shared_services())

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(opened) == 1 and len({id(s) for s in got}) == 1
    assert got[0].store is not None and got[0].approvals is not None and got[0].error == ""


def test_the_pages_get_the_same_object_as_the_api(fresh):
    from ui.services import get_services

    assert get_services() is runtime.shared_services()


def test_once_closed_the_next_call_opens_from_the_settings_of_that_moment(fresh, monkeypatch):
    first = runtime.shared_services()
    assert first.settings.data_dir == fresh / "one"
    first.close()  # what the UI tests' teardown does
    monkeypatch.setenv("CONSOLE_DATA_DIR", str(fresh / "two"))
    second = runtime.shared_services()
    assert second is not first and second.settings.data_dir == fresh / "two"
    runtime.close_shared_services()
    assert second.closed
    assert runtime.shared_services() is not second
