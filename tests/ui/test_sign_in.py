"""Sign-in on the pages: on Kestra nobody can approve until a sign-in is configured (and then the
same person can), demo identity switched on where the console acts for real shows a red banner
on every page, and a broken sign-in configuration is one clear error, never demo mode."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from console.access.auth import Identity, PermissionDenied, Role
from console.domain.executions import State
from console.engines.kestra.backend import KestraBackend
from console.settings import Secret, Settings
from tests.kestra.conftest import FLOWS_DIR, PASSWORD, USER
from tests.kestra.fake_kestra import FakeKestra
from tests.ui.conftest import APP, PAGES, TIMEOUT, crafted_reject, make_app, signed_in_app, texts, write_users
from tests.waiting import patience


@pytest.fixture
def kestra(app_env, tmp_path, monkeypatch) -> Iterator[FakeKestra]:
    """The project's fake Kestra with the flows deployed, and the console pointed at it."""
    fake = FakeKestra(
        version="1.3.21", username=USER, password=PASSWORD, settings=Settings(data_dir=tmp_path / "fake-data")
    ).start()
    fake.deploy_dir(FLOWS_DIR)
    monkeypatch.setenv("KESTRA_URL", fake.url)
    monkeypatch.setenv("KESTRA_USERNAME", USER)
    monkeypatch.setenv("KESTRA_PASSWORD", PASSWORD)
    monkeypatch.setenv("KESTRA_TIMEOUT_S", "2")
    try:
        yield fake
    finally:
        fake.stop()


def launch_paused(fake: FakeKestra, tmp_path: Path, scenario: str, triggered_by: str) -> str:
    """Start a run on Kestra as a launcher outside the console does (typing ``triggered_by``)."""
    backend = KestraBackend(
        Settings(
            data_dir=tmp_path / "launcher",
            kestra_url=fake.url,
            kestra_username=USER,
            kestra_password=Secret(PASSWORD),
        )
    )
    try:
        execution_id = backend.launch_scenario(scenario, triggered_by)
        fake.wait_state(execution_id, {"PAUSED", "FAILED"})
        assert backend.get_execution(execution_id).state == State.PAUSED
        return execution_id
    finally:
        backend.close()


def restart_console() -> None:
    """What restarting the console does to its settings: read again on the next run."""
    from ui.services import get_services

    get_services().close(wait=True)
    st.cache_data.clear()
    st.cache_resource.clear()


def approve_button(at: AppTest):
    return next(b for b in at.button if (b.key or "").startswith("approve_"))


@pytest.mark.slow
def test_on_kestra_nobody_approves_until_a_sign_in_is_configured(kestra, tmp_path, monkeypatch):
    launch_paused(kestra, tmp_path, "memory-leak", "ci-bot")

    # No identity configured: the would-be demo admin "carol" gets setup instructions, not a name box.
    at = make_app("carol", "admin", "approvals")
    assert not at.exception, at.exception
    assert "demo_name" not in [t.key for t in at.text_input]
    warnings = " ".join(texts(at, "warning"))
    assert "No sign-in is configured" in warnings and "Kestra (KESTRA_URL)" in warnings
    assert any("python -m console.access.auth hash" in m for m in texts(at, "markdown"))
    assert "Demo mode" not in " ".join(texts(at, "caption"))
    assert approve_button(at).disabled
    [people] = [m for m in texts(at, "markdown") if "requested by **" in m]
    assert "requested by **ci-bot** (the scenario file; from the Kestra input, not verified)" in people

    # a crafted request opens the reject dialog anyway: refused, and the service refuses a demo identity
    approval_id = approve_button(at).key.removeprefix("approve_")
    crafted_reject(at, approval_id)
    assert any(e.startswith("Not allowed:") for e in texts(at, "error")), texts(at, "error")
    from ui.services import get_services

    service = get_services().approvals
    with pytest.raises(PermissionDenied, match="demo identity cannot decide here"):
        service.vote(approval_id, Identity("carol", Role.ADMIN, source="demo"), True, "")
    assert service.get(approval_id)["status"] == "pending"

    # Configure a password user and restart: the same person signs in and approves.
    monkeypatch.setenv("CONSOLE_SECRETS", str(write_users(tmp_path / "secrets.toml", carol="admin")))
    restart_console()
    at = signed_in_app("carol", "approvals")
    assert "**carol** · admin" in texts(at, "markdown")
    assert not approve_button(at).disabled
    at.button(key=f"approve_{approval_id}").click().run()
    assert any("approved by carol" in s for s in texts(at, "success")), (
        texts(at, "success"),
        texts(at, "error"),
    )


@pytest.mark.slow
def test_a_scenario_the_console_launches_on_kestra_is_requested_by_its_deployer(
    kestra, tmp_path, monkeypatch
):
    """As on the embedded engine: the card names the scenario's deployer and how that is known;
    a signed-in approver other than the deployer decides."""
    monkeypatch.setenv(
        "CONSOLE_SECRETS", str(write_users(tmp_path / "s.toml", dana="approver", erin="approver"))
    )
    at = signed_in_app("dana", "scenarios")
    at.button(key="launch_memory-leak").click().run()
    execution_id = at.session_state["launches"]["memory-leak"]["execution_id"]
    kestra.wait_state(execution_id, {"PAUSED", "FAILED"})
    deadline = time.monotonic() + patience(30)
    while True:
        at.switch_page("pages/approvals.py").run()
        cards = [m for m in texts(at, "markdown") if "requested by **" in m]
        if cards or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    [people] = cards
    assert people.startswith("Deployed and requested by **ci-bot** (the scenario file)")
    assert "launched by **dana** (signed in to the console)" in people  # the console's own record
    assert approve_button(at).disabled  # dana launched it: someone else approves
    approval_id = approve_button(at).key.removeprefix("approve_")
    other = signed_in_app("erin", "approvals")
    other.button(key=f"approve_{approval_id}").click().run()
    assert any("approved by erin" in s for s in texts(other, "success")), texts(other, "error")


@pytest.mark.parametrize("page", PAGES)
def test_demo_identity_enabled_on_kestra_shows_a_red_banner_on_every_page(app_env, monkeypatch, page):
    monkeypatch.setenv("KESTRA_URL", "http://127.0.0.1:9")  # nobody listens there
    monkeypatch.setenv("KESTRA_TIMEOUT_S", "0.2")
    monkeypatch.setenv("CONSOLE_DEMO_IDENTITY", "1")
    at = make_app("carol", "admin", page)
    assert not at.exception, at.exception
    banners = [e for e in texts(at, "error") if "Demo identity is on" in e]
    assert len(banners) == 1, texts(at, "error")
    assert (
        "Kestra (KESTRA_URL)" in banners[0]
        and "anyone who reaches this page can pick any name" in banners[0].lower()
    )


BROKEN = {
    "users array": (
        '[[console_auth.users]]\nname = "carol"\nrole = "admin"\n',
        "[[console_auth.users]] is an array",
    ),
    "non-table console_auth": ('console_auth = "carol"\n', "console_auth in secrets.toml is a string"),
    "auth without client_id": ('[auth]\nredirect_uri = "http://x/cb"\ncookie_secret = "c"\n', "no client_id"),
    "user without a hash": ('[console_auth.users.carol]\nrole = "admin"\n', "password_hash: missing"),
}


@pytest.mark.parametrize("shape", list(BROKEN))
def test_a_broken_sign_in_configuration_is_one_error_and_never_demo(
    app_env, paused_leak, tmp_path, monkeypatch, shape
):
    text, problem = BROKEN[shape]
    (tmp_path / "secrets.toml").write_text(text)
    monkeypatch.setenv("CONSOLE_SECRETS", str(tmp_path / "secrets.toml"))
    at = make_app("carol", "admin", "approvals")  # a demo name in the session changes nothing
    assert not at.exception, at.exception
    errors = texts(at, "error")
    [banner] = [e for e in errors if "sign-in configuration cannot be used" in e]
    assert problem in banner and "nobody can sign in or decide" in banner
    assert "Sign-in is misconfigured: nobody can sign in or decide." in errors  # the sidebar says it too
    assert not [t for t in at.text_input if t.key in ("demo_name", "login_user")]
    assert "Demo mode" not in " ".join(texts(at, "caption"))
    assert approve_button(at).disabled
    crafted_reject(at, approve_button(at).key.removeprefix("approve_"))
    assert any(e.startswith("Not allowed:") for e in texts(at, "error"))


def test_unreadable_secrets_file_is_not_demo_mode(app_env, tmp_path, monkeypatch):
    (tmp_path / "secrets.toml").write_text("[console_auth.users.carol\n")
    monkeypatch.setenv("CONSOLE_SECRETS", str(tmp_path / "secrets.toml"))
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception
    assert any("could not be read" in e for e in texts(at, "error")), texts(at, "error")
    assert not [t for t in at.text_input if t.key == "demo_name"]
