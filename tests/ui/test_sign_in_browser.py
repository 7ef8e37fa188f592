"""Password sign-in in real headless Chromium, in the first session after the server starts.

Streamlit 1.67 runs the first session of a server whose entry script sits beside a ``pages/`` folder
in its legacy folder mode until ``st.navigation`` is first called; in that session the first
"Sign in" was lost (the user had to type the password twice). ``server.py`` decides navigation-only
mode before any session exists; this test fails without that.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from console.access.auth import hash_password
from tests.browser_support import wait_ready

pytestmark = [pytest.mark.browser]

PASSWORD = "correct horse 42"


@pytest.mark.parametrize("path", ["/", "/approvals"])
def test_the_first_sign_in_of_a_fresh_server_takes_one_submit(start_console, chromium, tmp_path: Path, path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(
        f'[console_auth.users.bob]\npassword_hash = "{hash_password(PASSWORD)}"\nrole = "approver"\n'
    )
    server = start_console(CONSOLE_SECRETS=str(secrets))
    page = chromium.new_page(viewport={"width": 1440, "height": 900})
    try:
        page.goto(server.url + path)
        wait_ready(page)
        sidebar = page.get_by_test_id("stSidebar")
        page.locator(".st-key-login_user input").fill("bob")
        page.locator(".st-key-login_password input").fill(PASSWORD)
        page.locator(".st-key-sign_in button").click()
        wait_ready(page)
        sidebar.get_by_role("button", name="Sign out").wait_for(timeout=10_000)
        assert sidebar.get_by_text("bob", exact=True).is_visible()
        assert page.locator(".st-key-login_password").count() == 0
    finally:
        page.close()
