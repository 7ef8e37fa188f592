"""Issue 18, the operator's side: a password sign-in survives a reload and a deep link opened in a
new tab (a signed, HttpOnly, SameSite cookie set by ``/auth/session`` on the same server), and
signing out ends the session on the server, so even a copy of the cookie is dead. Headless
Chromium at 1440x900 against ``streamlit run server.py``."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from console.access.auth import hash_password
from console.access.sessions import COOKIE_NAME
from tests.api.test_server import launch_from_cli
from tests.browser_support import wait_ready
from tests.ui.conftest import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.identity]

PASSWORD = "correct horse 42"
VIEWPORT = {"width": 1440, "height": 900}


def session_cookie(context) -> dict | None:
    return next((c for c in context.cookies() if c["name"] == COOKIE_NAME), None)


def signed_in_as(page, name: str) -> bool:
    sidebar = page.get_by_test_id("stSidebar")
    return (
        sidebar.get_by_role("button", name="Sign out").count() == 1
        and sidebar.get_by_text(name, exact=True).count() >= 1
        and page.locator(".st-key-login_password").count() == 0
    )


def test_a_sign_in_survives_a_reload_and_a_deep_link_in_a_new_tab_until_sign_out(
    start_console, chromium, tmp_path: Path
):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(
        f'[console_auth.users.bob]\npassword_hash = "{hash_password(PASSWORD, iterations=1000)}"\n'
        'role = "approver"\n'
    )
    server = start_console(CONSOLE_SECRETS=str(secrets))
    approval_id = launch_from_cli(server.data_dir)
    context = chromium.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.goto(server.url + "/")
        wait_ready(page)
        page.locator(".st-key-login_user input").fill("bob")
        page.locator(".st-key-login_password input").fill(PASSWORD)
        page.locator(".st-key-sign_in button").click()
        wait_ready(page)
        page.get_by_test_id("stSidebar").get_by_role("button", name="Sign out").wait_for(timeout=15_000)
        cookie = wait_for(lambda: session_cookie(context))
        assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax" and cookie["path"] == "/"
        assert cookie["expires"] > time.time() + 3600  # it expires, in CONSOLE_SESSION_HOURS (12)
        assert PASSWORD not in cookie["value"] and "bob" not in cookie["value"]

        page.reload()
        wait_ready(page)
        assert wait_for(lambda: signed_in_as(page, "bob"))  # still signed in after a reload

        tab = context.new_page()
        tab.goto(f"{server.url}/approvals?approval={approval_id}")
        wait_ready(tab)
        assert wait_for(lambda: signed_in_as(tab, "bob"))  # signed in in the new tab
        card = tab.locator(f".st-key-approval_{approval_id}")
        card.wait_for(timeout=15_000)
        assert card.get_by_role("button", name=re.compile("Approve")).count() >= 1

        stolen = dict(cookie)
        tab.get_by_test_id("stSidebar").get_by_role("button", name="Sign out").click()
        wait_ready(tab)
        tab.locator(".st-key-login_password").wait_for(timeout=15_000)
        wait_for(lambda: session_cookie(context) is None)
        page.reload()
        wait_ready(page)
        page.locator(".st-key-login_password").wait_for(timeout=15_000)

        # a copy of the cookie taken before the sign-out is dead: the session ended on the server
        other = chromium.new_context(viewport=VIEWPORT)
        try:
            other.add_cookies([{k: stolen[k] for k in ("name", "value", "domain", "path")}])
            thief = other.new_page()
            thief.goto(server.url + "/")
            wait_ready(thief)
            thief.locator(".st-key-login_password").wait_for(timeout=15_000)
            assert not signed_in_as(thief, "bob")
        finally:
            other.close()
    finally:
        context.close()
