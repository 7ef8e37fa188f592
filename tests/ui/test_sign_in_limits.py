"""Issue 18, guessing passwords on the page's sign-in form: after a few wrong passwords the person and
the address are locked out for a time that doubles, the right password included meanwhile; the
counts live in the store, so a restart forgives nothing; every failure and lock-out is audited,
never with the password. The limits' clock is frozen here, so nothing depends on speed."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from console.access import attempts
from console.presentation.formatting import plain
from console.storage import Store
from tests.ui.conftest import APP, TIMEOUT, password_of, write_users
from tests.ui.test_sign_in import restart_console

pytestmark = [pytest.mark.identity]


class Clock:
    def __init__(self) -> None:
        self.now = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    frozen = Clock()
    monkeypatch.setattr(attempts, "now", frozen)
    return frozen


def try_password(at: AppTest, name: str, password: str) -> AppTest:
    at.text_input(key="login_user").input(name)
    at.text_input(key="login_password").input(password)
    at.button(key="sign_in").click().run()
    return at


def signed_in(at: AppTest) -> bool:
    return any(b.key == "sign_out" for b in at.button)


def login_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    return at.run()  # the first run's widget ids differ (no page chosen yet)


def test_forty_wrong_passwords_then_the_right_one_is_still_refused(app_env, tmp_path, monkeypatch, clock):
    monkeypatch.setenv("CONSOLE_SECRETS", str(write_users(tmp_path / "secrets.toml", bob="approver")))
    at = login_page()
    for i in range(40):
        try_password(at, "bob", f"guess-{i}")
        assert not at.exception and not signed_in(at)
    try_password(at, "bob", password_of("bob"))
    assert not signed_in(at)
    [error] = [e.value for e in at.error]
    assert "too many failed sign-ins" in plain(error).lower()

    store = Store(app_env.db_path)
    try:
        trail = store.audit.trail(limit=200)
        failed = [r for r in trail if r["event"] == "signin.failed"]
        locked = [r for r in trail if r["event"] == "signin.locked"]
        assert len(failed) == 5 and len(locked) == 36  # the clock stood still: one lock-out, 1 s
        assert {r["actor"] for r in failed + locked} == {"bob"}
        assert failed[0]["detail"]["failures"] == 5 and failed[0]["detail"]["locked_for_s"] == 1
        assert all(r["detail"]["via"] == "console page" for r in failed)
        assert password_of("bob") not in str(trail) and "guess-3" not in str(trail)
    finally:
        store.close()

    # the lock-out survives a restart; once it is over the right password signs in
    restart_console()
    at = login_page()
    try_password(at, "bob", password_of("bob"))
    assert not signed_in(at)
    clock.now += 2
    try_password(at, "bob", password_of("bob"))
    assert signed_in(at)


def test_each_further_failure_doubles_the_lock_out(app_env, tmp_path, monkeypatch, clock):
    monkeypatch.setenv("CONSOLE_SECRETS", str(write_users(tmp_path / "secrets.toml", bob="approver")))
    at = login_page()
    locks = []
    for i in range(8):
        try_password(at, "bob", f"wrong-{i}")
        store = Store(app_env.db_path)
        try:
            row = store.sign_in_failures.get(["user:bob"])["user:bob"]
        finally:
            store.close()
        locks.append(row["locked_until"] - clock.now)
        clock.now = max(clock.now, row["locked_until"])  # wait out each lock-out, exactly
    assert locks == [0, 0, 0, 0, 1, 2, 4, 8]
