"""The long-running console's composition root (``console.runtime.open_services``): what it wires on
each engine, and that a part that cannot start is one line in ``Services.error`` while the others
are left out, never a traceback."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from console.engines.embedded.runner import EmbeddedEngine
from console.engines.kestra.backend import KestraBackend
from console.runtime import open_services
from console.settings import Secret, Settings
from tests.conftest import kestra_settings
from tests.kestra.fake_kestra import FakeKestra


def test_settings_that_cannot_load_give_defaults_marked_as_such(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CONSOLE_SECRETS", str(tmp_path / "none.toml"))
    monkeypatch.setenv("AUTO_APPROVE_CONFIDENCE", "high")
    services = open_services()
    assert services.error == "Settings: AUTO_APPROVE_CONFIDENCE must be a number, got 'high'"
    assert services.settings.load_error == "AUTO_APPROVE_CONFIDENCE must be a number, got 'high'"
    assert (services.store, services.backend, services.approvals, services.sessions) == (None,) * 4


def test_the_embedded_console_is_wired(settings: Settings) -> None:
    services = open_services(settings)
    try:
        assert services.error == "" and services.recovery == []
        assert isinstance(services.backend, EmbeddedEngine) and services.backend.store is services.store
        assert services.approvals is not None and services.approvals.refresh is None
        assert services.mirror is None and services.notifier is None  # no channel configured
        assert services.inbound is not None and services.inbound.local is services.backend
        assert services.sessions is not None
    finally:
        services.close()


def test_a_store_that_cannot_open_leaves_out_what_needs_it(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "data"
    not_a_directory.write_text("a file where the data directory should be")
    services = open_services(Settings(data_dir=not_a_directory))
    try:
        store_error, engine_error = services.error.split("; ")
        assert store_error.startswith("Store unavailable: ")
        assert engine_error.startswith("Engine unavailable: ")
        assert "\n" not in services.error
        assert services.store is None and services.backend is None
        assert (services.approvals, services.notifier, services.inbound, services.sessions) == (None,) * 4
    finally:
        services.close()


def test_on_kestra_the_mirror_refreshes_approvals_and_the_notifier_expires_them(
    kestra: FakeKestra, tmp_path: Path
) -> None:
    settings = replace(
        kestra_settings(kestra, tmp_path),
        kestra_mirror_interval_s=60.0,
        public_url="http://console.example",
        notify_webhook_url=Secret("http://127.0.0.1:9/hook"),
    )
    services = open_services(settings)
    try:
        assert services.error == "" and isinstance(services.backend, KestraBackend)
        assert services.mirror is not None and services.approvals is not None
        assert services.approvals.refresh == services.mirror.refresh
        assert services.notifier is not None  # on Kestra, its rounds expire the approvals
        assert services.notifier.before_round == services.approvals.maybe_expire
        assert services.inbound is not None and services.inbound.local is None
        assert services.recovery == []
    finally:
        services.close()
