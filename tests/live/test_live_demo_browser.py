"""The live demo from the Scenarios page, in Debian's Chromium, on the live stack as
``./scripts/live.sh`` starts it (livestack/stack.py: the demo service with its load, Prometheus, the
console, two password users), with tight windows:

alice signs in and double-clicks "v1.2.0-leak" in the Live section (one deploy, one run) → the
loop decides ROLLBACK early and the section says "Awaiting approval" with a link to the card → bob,
signed in elsewhere, follows that link and approves → the deployer runs v1.0.0 again → the section
shows the measured outcome (resolved). Then the card shows now: the leak again, its card open in
bob's browser, its now strip changing while it is open; a deploy straight to the deployer meanwhile
supersedes it, and Approve goes off with the reason. Screenshots of the section mid-run, after the
recovery and of the superseded card go to ``LIVE_SCREENS_DIR`` when it is set (1440×900). About a
minute and a half.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from console.storage import Store
from livestack.stack import FREE_PORTS, LiveStack, StackOptions, Windows, start_live_stack
from tests.browser_support import wait_ready
from tests.live.conftest import require_prometheus
from tests.waiting import patience

pytestmark = [pytest.mark.live, pytest.mark.browser, pytest.mark.slow]

PASSWORDS = {"alice": "alice-live-Pass-1", "bob": "bob-live-Pass-1"}
LEAK = "v1.2.0-leak"
SECTION = ".st-key-live_demo-service"


def sign_in(page, url: str, name: str) -> None:
    """Sign in with the password form (one submit: tests/ui/test_sign_in_browser.py)."""
    page.goto(url)
    wait_ready(page)
    page.locator(".st-key-login_user input").fill(name)
    page.locator(".st-key-login_password input").fill(PASSWORDS[name])
    page.locator(".st-key-sign_in button").click()
    wait_ready(page)
    page.get_by_test_id("stSidebar").get_by_text(name, exact=True).wait_for(timeout=10_000)


def screenshot(page, name: str) -> None:
    """The viewport, then scrolled down to the scenario cards below the Live section."""
    target = os.environ.get("LIVE_SCREENS_DIR")
    if target:
        page.mouse.move(1, 1)  # no tooltip left from a click
        page.wait_for_timeout(2500)  # a chart refresh (every 2 s) with the latest points and markers
        Path(target).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(target) / name))
        # Streamlit scrolls inside its main block (a full-page shot is the viewport): scroll there
        page.get_by_text("Demo scenarios").first.evaluate("el => el.scrollIntoView({block: 'center'})")
        page.screenshot(path=str(Path(target) / name.replace(".png", "-cards.png")))
        page.get_by_test_id("stMain").evaluate("el => el.scrollTo(0, 0)")


def wait_text(locator, text: str, timeout_s: float) -> float:
    """Seconds until ``text`` is in ``locator``'s text."""
    started = time.monotonic()
    locator.get_by_text(text, exact=False).first.wait_for(timeout=timeout_s * 1000)
    return time.monotonic() - started


def read_at(strip) -> str:
    """When the card's now strip was last read (its first line: "Now (read 12:54:48 UTC) · ...")."""
    return strip.inner_text().splitlines()[0].split(")")[0]


def wait_for_approval(stack: LiveStack, deployment_id: str, timeout_s: float = 90) -> dict:
    """The pending approval of the run the deployer's announcement of ``deployment_id`` started."""
    deadline = time.monotonic() + patience(timeout_s)
    store = Store(stack.options.state_dir / "console-data" / "console.sqlite3")
    try:
        while True:
            rows = [
                r
                for r in store.deployments.list(service="demo-service", limit=20)
                if r.get("ref") == deployment_id
            ]
            approval = store.approvals.for_execution(rows[0]["execution_id"]) if rows else None
            if approval is not None and approval["status"] == "pending":
                return approval
            assert time.monotonic() < deadline, f"no pending approval for {deployment_id}"
            time.sleep(0.2)
    finally:
        store.close()


def test_live_demo_deploy_leak_rollback_approved_recovered(tmp_path, chromium):
    require_prometheus()
    began = time.monotonic()
    stack: LiveStack = start_live_stack(
        StackOptions(
            tmp_path / "live", ports=dict(FREE_PORTS), windows=Windows(8, 30, 8), passwords=PASSWORDS
        )
    )
    contexts = []
    print(f"\nstack started in {time.monotonic() - began:.1f} s")
    try:
        alice_ctx = chromium.new_context(viewport={"width": 1440, "height": 900})
        bob_ctx = chromium.new_context(viewport={"width": 1440, "height": 900})
        contexts += [alice_ctx, bob_ctx]
        alice, bob = alice_ctx.new_page(), bob_ctx.new_page()
        # the baseline first: a page left open redraws its Live section every 2 s, which costs the
        # browser CPU while nothing happens
        print(f"\nsteady baseline after {stack.wait_steady():.1f} s")
        sign_in(alice, f"{stack.console_url}/scenarios", "alice")
        section = alice.locator(SECTION)
        section.get_by_text("runs v1.0.0", exact=False).wait_for(timeout=30_000)
        print(f"alice signed in, Live section shown: {time.monotonic() - began:.1f} s from the start")

        # a double click deploys once and starts one run
        clicked = time.monotonic()
        alice.locator(
            ".st-key-deploy_demo-service_v1-2-0-leak button"
        ).first.dblclick()  # (a hidden copy follows)
        wait_text(section, f"{LEAK} by alice", 30)
        wait_text(section, "Awaiting approval", 60)
        to_decision = time.monotonic() - clicked
        print(f"click deploy → 'Awaiting approval' in the browser: {to_decision:.1f} s")
        section.get_by_text("ROLLBACK").first.wait_for(timeout=5_000)
        section.get_by_text("Decided early", exact=False).wait_for(timeout=5_000)
        deploys = [d for d in stack.demo.deployments() if d["kind"] == "deploy"]
        assert [d["version"] for d in deploys] == [LEAK], "a double click deployed twice"
        assert deploys[0]["by"] == "alice"
        screenshot(alice, "live-mid-run.png")

        # bob opens the card's link, signs in and approves
        link = section.get_by_role("link", name="Open its approval card")
        href = link.get_attribute("href")
        assert href and "approval=" in href
        # a fresh page (as a link from a notification opens): bob signs in there
        signing = time.monotonic()
        sign_in(bob, href if href.startswith("http") else stack.console_url + "/" + href.lstrip("/"), "bob")
        print(f"bob signed in on the card's link in {time.monotonic() - signing:.1f} s")
        store = Store(stack.options.state_dir / "console-data" / "console.sqlite3")
        try:
            # the console and the deployer's own announcement name the same deploy: one run
            [row] = store.deployments.list(service="demo-service", limit=10)
            assert row["source"] in ("console", "deployer") and row["deployed_by"] == "alice"
            assert row["version"] == LEAK
            approval = store.approvals.for_execution(row["execution_id"])
        finally:
            store.close()
        assert approval["requested_by"] == "alice"
        bob.locator(f".st-key-approve_{approval['id']} button").click()  # one click decides
        bob.get_by_text("approved by bob", exact=False).first.wait_for(timeout=30_000)
        approved = time.monotonic()
        bob.goto("about:blank")  # bob is done for now: an open card keeps polling (his cookie stays)

        # the previous version serves again, and the section shows the measured outcome
        deadline = time.monotonic() + patience(30)
        while stack.demo.status()["version"] != "v1.0.0":
            assert time.monotonic() < deadline, "the deployer did not run v1.0.0 again"
            time.sleep(0.2)
        print(f"approve → v1.0.0 serving: {time.monotonic() - approved:.1f} s")
        section.get_by_text("runs v1.0.0", exact=False).wait_for(timeout=30_000)
        wait_text(section, "Measured outcome", 60)
        section.get_by_text("resolved", exact=True).first.wait_for(timeout=5_000)
        print(f"approve → measured outcome shown: {time.monotonic() - approved:.1f} s")
        screenshot(alice, "live-after-recovery.png")
        alice_ctx.close()  # alice is done: her open Live section would only keep redrawing

        # the card shows now: alice deploys the leak again; bob keeps its card open; its now strip
        # changes while it is open; a deploy made meanwhile supersedes it and Approve goes off
        stack.wait_steady()
        again = stack.demo.deploy(LEAK, by="alice", reason="once more")
        pending = wait_for_approval(stack, again["id"])
        # bob is still signed in (the session cookie): the link opens the card at once
        bob.goto(f"{stack.console_url}/approvals?approval={pending['id']}")
        wait_ready(bob)
        bob.get_by_test_id("stSidebar").get_by_text("bob", exact=True).wait_for(timeout=10_000)
        strip = bob.locator(f".st-key-now_{pending['id']}")
        strip.get_by_text("at the decision", exact=False).first.wait_for(timeout=30_000)
        assert "Error rate" in strip.inner_text()  # what users feel, beside the decisive memory
        first = read_at(strip)
        approve = bob.locator(f".st-key-approve_{pending['id']} button")
        assert approve.is_enabled()
        # bob starts rejecting and types why while the strip keeps reading: nothing he typed is lost
        bob.locator(f".st-key-reject_{pending['id']} button").click()
        comment = bob.locator(".st-key-approval_comment textarea")
        comment.fill("checking the heap first")
        opened = time.monotonic()
        while read_at(strip) == first:
            assert time.monotonic() < opened + patience(30), f"the now strip was not read again: {first}"
            bob.wait_for_timeout(250)
        print(f"the now strip was read again {time.monotonic() - opened:.1f} s later, the dialog open")
        assert comment.input_value() == "checking the heap first"
        bob.locator(".st-key-approval_cancel button").click()

        # a deploy made straight to the deployer (as with curl) starts the loop through its
        # announcement to /api/deployments, and supersedes the open card
        direct = stack.demo.deploy("v1.1.0-fast", by="carol", reason="from a pipeline")
        strip.get_by_text("running v1.1.0-fast", exact=False).first.wait_for(timeout=30_000)
        bob.get_by_text("this approval is superseded and cannot be approved", exact=False).first.wait_for(
            timeout=30_000
        )
        off = bob.locator(f".st-key-approve_off_{pending['id']}")
        off.get_by_text("v1.1.0-fast is running now", exact=False).first.wait_for(timeout=10_000)
        assert not bob.locator(f".st-key-approve_{pending['id']} button").is_enabled()
        if os.environ.get("LIVE_SCREENS_DIR"):
            bob.screenshot(path=str(Path(os.environ["LIVE_SCREENS_DIR"]) / "live-card-superseded.png"))
        deadline = time.monotonic() + patience(20)
        store = Store(stack.options.state_dir / "console-data" / "console.sqlite3")
        try:
            while not (rows := [r for r in store.deployments.list(service="demo-service", limit=10)
                                if r["version"] == "v1.1.0-fast"]):  # fmt: skip
                assert time.monotonic() < deadline, "the deployer's announcement started no run"
                time.sleep(0.2)
        finally:
            store.close()
        assert rows[0]["deployed_by"] == "carol" and rows[0]["source"] == "deployer", rows[0]
        assert direct["version"] == "v1.1.0-fast"
    finally:
        for context in contexts:
            context.close()
        stack.stop()
    assert not stack.demo.leftovers
