"""Issue 18, the on-call path, in headless Chromium against ``streamlit run server.py``: a password
sign-in survives a reload and a notification's deep link opened in a new tab of the same browser (a
signed, HttpOnly, SameSite cookie set by ``/auth/session`` on the same server), where one click
decides; a second browser, a 390x844 phone, follows another notification's link, signs in on the
card's decision bar and approves, all in the first screen, and the first browser's queue and menu
count follow on their own within 5 s; signing out clears the cookie and ends the session on the
server, so a copy of the cookie taken before, put back in the browser, is dead. The two approvals
are made beforehand by the memory-leak scenario, run in this process as the command line runs it.
Screenshots of the phone's first screen go to ``CONSOLE_SCREENS_DIR`` when it is set."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from playwright.sync_api import expect

from console.access.auth import hash_password
from console.access.sessions import COOKIE_NAME
from console.notify.messages import approval_link
from console.runtime import embedded_runtime
from console.settings import Settings
from console.storage import Store
from tests.browser_support import wait_ready
from tests.ui.conftest import wait_for
from tests.waiting import patience

pytestmark = [pytest.mark.browser, pytest.mark.identity]

PASSWORD = "correct horse 42"
VIEWPORT = {"width": 1440, "height": 900}
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}


def session_cookie(context) -> dict | None:
    return next((c for c in context.cookies() if c["name"] == COOKIE_NAME), None)


def signed_in_as(page, name: str) -> bool:
    sidebar = page.get_by_test_id("stSidebar")
    return (
        sidebar.get_by_role("button", name="Sign out").count() == 1
        and sidebar.get_by_text(name, exact=True).count() >= 1
        and page.locator(".st-key-login_password").count() == 0
    )


def in_first_screen(page, locator) -> bool:
    """Whether ``locator`` is drawn whole inside the viewport as the page opens (nothing scrolled)."""
    box = locator.bounding_box()
    return box is not None and 0 <= box["y"] and box["y"] + box["height"] <= page.viewport_size["height"]


def paused_leaks(data_dir: Path, count: int) -> list[str]:
    """``count`` memory-leak runs paused on their approval, launched as ``python -m console run``
    launches them (a synchronous engine on the console's database, here without its recovery of
    other runs: the console owns those); their approvals' ids."""
    runtime = embedded_runtime(Settings(data_dir=data_dir), synchronous=True, recover=False)
    try:
        ids = []
        for _ in range(count):
            execution = runtime.engine.run_sync(scenario="memory-leak", triggered_by="cli-operator")
            assert execution.state.value == "PAUSED", execution.state
            ids.append(runtime.approvals.for_execution(execution.id)["id"])
        return ids
    finally:
        runtime.close()


def screenshot(page, name: str) -> None:
    target = os.environ.get("CONSOLE_SCREENS_DIR")
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / name))


def test_a_sign_in_survives_a_reload_and_a_deep_link_in_a_new_tab_until_sign_out(
    start_console, chromium, tmp_path: Path
):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text(
        "".join(
            f'[console_auth.users.{name}]\npassword_hash = "{hash_password(PASSWORD, iterations=1000)}"\n'
            'role = "approver"\n'
            for name in ("bob", "carol")
        )
    )
    server = start_console(CONSOLE_SECRETS=str(secrets))
    approval_id, second_id = paused_leaks(server.data_dir, 2)
    store = Store(server.data_dir / "console.sqlite3")
    public = Settings(public_url=server.url)  # what a notification's link is made of
    context = chromium.new_context(viewport=VIEWPORT)  # bob's browser
    try:
        page = context.new_page()  # bob's first tab
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

        tab = context.new_page()  # the same browser: it sends the same cookie
        tab.goto(approval_link(public, approval_id))  # the notification's link, in a new tab
        wait_ready(tab)
        assert wait_for(lambda: signed_in_as(tab, "bob"))  # signed in in the new tab
        card = tab.locator(f".st-key-approval_{approval_id}")
        card.wait_for(timeout=15_000)
        clicked = time.monotonic()
        tab.locator(f".st-key-approve_{approval_id} button").click()  # one click decides
        tab.get_by_text("approved by bob").first.wait_for(timeout=15_000)
        print(f"\none click to 'approved by bob': {time.monotonic() - clicked:.2f} s")
        assert store.approvals.get(approval_id)["decided_by"] == "bob"

        # bob's first tab shows the queue (opened after the first decision: a card costs a lot to draw)
        page.goto(f"{server.url}/approvals")
        wait_ready(page)
        page.locator(f".st-key-approval_{second_id}").wait_for(timeout=15_000)
        page.get_by_test_id("stSidebarNav").get_by_text("Approvals (1)").wait_for(timeout=15_000)

        # carol, on a phone (another browser: no cookie of bob's), follows the other notification's link
        phone = chromium.new_context(**PHONE)
        try:
            carol = phone.new_page()
            carol.goto(approval_link(public, second_id))
            wait_ready(carol)
            approve = carol.locator(f".st-key-approve_{second_id} button")
            submit = carol.locator(".st-key-card_login_submit button")  # the sign-in on the card
            submit.wait_for(timeout=15_000)
            evidence = carol.locator(f".st-key-evidence_{second_id} details")
            wait_for(lambda: evidence.get_attribute("open") is None)  # folded on a phone
            screenshot(carol, "phone-decision-bar-signed-out.png")
            assert in_first_screen(carol, approve) and in_first_screen(carol, submit)
            carol.locator(".st-key-card_login_user input").fill("carol")
            carol.locator(".st-key-card_login_password input").fill(PASSWORD)
            submit.click()
            wait_ready(carol)
            expect(approve).to_be_enabled(timeout=15_000)
            screenshot(carol, "phone-decision-bar.png")
            assert in_first_screen(carol, approve)
            approve.click()
            carol.get_by_text("approved by carol").first.wait_for(timeout=15_000)
            decided = time.monotonic()
        finally:
            phone.close()
        # bob's first tab follows on its own: the card leaves and the menu's count goes
        page.locator(f".st-key-approval_{second_id}").wait_for(state="detached", timeout=patience(5) * 1000)
        page.get_by_text("Nothing is waiting for a decision.").wait_for(timeout=patience(5) * 1000)
        assert page.get_by_test_id("stSidebarNav").get_by_text("Approvals (1)").count() == 0
        print(f"the other browser's approval showed here {time.monotonic() - decided:.2f} s later")

        stolen = dict(cookie)
        tab.get_by_test_id("stSidebar").get_by_role("button", name="Sign out").click()
        wait_ready(tab)
        tab.locator(".st-key-login_password").wait_for(timeout=15_000)
        wait_for(lambda: session_cookie(context) is None)  # the sign-out cleared it from the browser

        # a copy of the cookie taken before the sign-out, put back: the first tab's reload is still
        # signed out, because the session ended on the server (only the cookie is read, so this
        # browser holding the copy is any browser holding it)
        context.add_cookies([{k: stolen[k] for k in ("name", "value", "domain", "path")}])
        assert session_cookie(context)["value"] == stolen["value"]
        page.reload()
        wait_ready(page)
        page.locator(".st-key-login_password").wait_for(timeout=15_000)
        assert not signed_in_as(page, "bob")
    finally:
        context.close()
        store.close()
