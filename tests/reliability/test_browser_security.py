"""In the browser: text from logs, scenario files and task outputs is never rendered as HTML, and
secrets never reach a page or the server log.

A scenario is planted whose log lines, title, description, version and deployer all carry a script
tag and an ``onerror`` image. One browser session does it all, on one page load: it launches the
scenario from its card (the run, and the LLM call that fails, happen in the console server, whose log
is checked at the end), switches to the admin role, follows the card's link to the approval card
(evidence), the card's link to the execution (task outputs, logs), the execution's link to the
deployment detail (the list and the story), then opens the remaining pages from the sidebar
(Overview, the Executions list, Metrics, Learning, Settings with the effective configuration). On
every page the payload must show as literal text, no payload element may exist, ``window.__pwned``
must stay undefined and no secret may be in the HTML.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import expect

from console.domain.models import format_time, parse_time
from console.storage import Store
from tests.browser_support import PROJECT_ROOT, free_port, open_page, wait_ready
from tests.reliability.conftest import KESTRA_PASSWORD_SENTINEL, TOGETHER_KEY_SENTINEL
from tests.waiting import patience

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PAYLOAD = '<script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">'
SCENARIO = "xss-probe"


def plant_scenario(mock_dir: Path) -> None:
    doc = json.loads((PROJECT_ROOT / "mock-data" / "memory-leak.json").read_text())
    doc["scenario"].update(
        id=SCENARIO, title=f"XSS probe {PAYLOAD}", description=f"Log lines carry {PAYLOAD} as data."
    )
    doc["deployment"].update(version=f"v9{PAYLOAD}", deployed_by=f"ci{PAYLOAD}")
    deployed = parse_time(doc["deployment"]["deployed_at"])
    for i in range(40):
        doc["logs"].append(
            {
                "ts": format_time(deployed + timedelta(seconds=20 * i + 7)),
                "level": "ERROR",
                "message": f"upstream answered {PAYLOAD} id={i}",
                "source": "payment-service-x",
            }
        )
    doc["logs"].sort(key=lambda r: r["ts"])
    mock_dir.mkdir(parents=True, exist_ok=True)
    (mock_dir / f"{SCENARIO}.json").write_text(json.dumps(doc))


def assert_not_pwned(page) -> None:
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert page.locator("img[src='x']").count() == 0
    assert page.locator("[data-testid='stException']").count() == 0
    html = page.content()
    assert KESTRA_PASSWORD_SENTINEL not in html and TOGETHER_KEY_SENTINEL not in html


def shows_payload_literally(page, where) -> None:
    """The payload is in the DOM as text (visible, or in a data grid's accessible cell table)."""
    found = where.get_by_text("window.__pwned=1", exact=False).first
    found.wait_for(state="attached", timeout=patience(15) * 1000)
    text = where.text_content() or ""
    assert "<script>window.__pwned=1</script>" in text, text[:2000]
    assert 'onerror="window.__pwned=2"' in text
    assert_not_pwned(page)


def assert_page_sound(page) -> None:
    assert_not_pwned(page)
    assert "Traceback" not in page.locator("body").inner_text()


def choose_role(page, role: str) -> None:
    """Pick ``role`` in the demo identity's selectbox; returns once the rerun it starts has finished
    with the Settings page in the menu (only an admin has it)."""
    box = page.get_by_test_id("stSelectbox").filter(has_text="Role")
    box.click()
    page.get_by_role("option", name=role, exact=True).click()
    nav = page.get_by_test_id("stSidebarNav").get_by_text("Settings", exact=True)
    nav.wait_for(timeout=patience(30) * 1000)
    wait_ready(page)


def arrive(page, title: str) -> None:
    """Wait until the page navigated to (a link, the menu) has drawn its title and finished its run."""
    heading = page.get_by_test_id("stMain").locator("h1").filter(has_text=re.compile(rf"{title}$"))
    heading.wait_for(timeout=patience(60) * 1000)
    wait_ready(page)


def follow(page, link, title: str) -> None:
    """Click an in-app link (``st.page_link``): the same session goes to the page, no reload."""
    link.click()
    arrive(page, title)


def open_tab(where, name: str) -> None:
    """Click a tab and wait until its panel is the one shown (every panel is in the DOM already)."""
    tab = where.get_by_role("tab", name=name, exact=True)
    tab.click()
    expect(tab).to_have_attribute("aria-selected", "true")


def test_log_text_and_outputs_are_never_html_and_secrets_never_shown(start_console, chromium, tmp_path):
    mock_dir = tmp_path / "mock"
    plant_scenario(mock_dir)
    console = start_console(
        CONSOLE_MOCK_DATA_DIR=str(mock_dir),
        TOGETHER_API_KEY=TOGETHER_KEY_SENTINEL,  # an LLM that cannot be reached: the failure path
        LLM_BASE_URL=f"http://127.0.0.1:{free_port()}",
        LLM_TIMEOUT_S="1",
        KESTRA_PASSWORD=KESTRA_PASSWORD_SENTINEL,  # set, though unused by the embedded engine
    )
    context = chromium.new_context(viewport={"width": 1400, "height": 1100})
    page = context.new_page()

    # the scenario card, then its launch (the run and the failing LLM call are the server's)
    open_page(page, f"{console.url}/scenarios")
    card = page.locator(f".st-key-scenario_{SCENARIO}")
    shows_payload_literally(page, card)
    card.locator("button").click()
    to_approval = card.get_by_role("link", name="Open its approval card")
    to_approval.wait_for(timeout=patience(90) * 1000)
    assert_page_sound(page)

    store = Store(console.data_dir / "console.sqlite3")
    try:
        [deployment] = store.deployments.list(limit=1)
        execution_id = deployment["execution_id"]
        approval = store.approvals.for_execution(execution_id)
    finally:
        store.close()
    assert approval is not None and PAYLOAD in approval["requested_by"]

    # from here on as an admin, who sees every page (Settings: the effective configuration, masked)
    choose_role(page, "admin")
    shows_payload_literally(page, card)

    # the approval card: requested by, and the evidence
    follow(page, to_approval, "Approvals")
    assert f"approval={approval['id']}" in page.url
    card = page.locator(f".st-key-approval_{approval['id']}")
    shows_payload_literally(page, card)
    if not card.get_by_text("Summary").first.is_visible():  # HIGH and CRITICAL open it already
        card.get_by_text("Evidence").first.click()
    card.get_by_text("Summary").first.wait_for(timeout=patience(10) * 1000)
    assert_page_sound(page)
    for tab in ("New log patterns", "Recommended actions"):
        open_tab(card, tab)
        assert_not_pwned(page)

    # the execution: task outputs (collect carries the deployment, analyze the log patterns)
    follow(page, card.get_by_role("link", name="Open the execution"), "Executions")
    assert f"execution={execution_id}" in page.url
    main = page.get_by_test_id("stMain")
    for task in ("collect", "analyze"):
        open_tab(main, task)
        assert_not_pwned(page)
    open_tab(main, "collect")
    shows_payload_literally(page, main)
    assert_page_sound(page)

    # the deployment detail (the list above it): version, deployer and decision card
    follow(page, main.get_by_role("link", name="The deployment's story"), "Deployments")
    assert f"deployment={deployment['id']}" in page.url
    shows_payload_literally(page, main)
    assert_page_sound(page)

    # the other pages, from the menu (Scenarios, Approvals and Deployments were seen as an admin above)
    for name in ("overview", "executions", "metrics", "learning", "settings"):
        page.get_by_test_id("stSidebarNav").get_by_text(name.capitalize(), exact=True).click()
        arrive(page, name.capitalize())
        assert_page_sound(page)
    page.get_by_text("Effective settings").wait_for(timeout=patience(10) * 1000)

    log = console.log_text()
    assert KESTRA_PASSWORD_SENTINEL not in log and TOGETHER_KEY_SENTINEL not in log
    assert "Traceback" not in log, log[-3000:]
    context.close()
