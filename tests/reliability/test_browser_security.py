"""In the browser: text from logs, scenario files and task outputs is never rendered as HTML, and
secrets never reach a page or the server log.

A scenario is planted whose log lines, title, description, version and deployer all carry a script
tag and an ``onerror`` image. It is launched and its scenario card, execution (task outputs, logs),
approval card (evidence), deployment detail and the admin Settings page are opened: the payload
must show as literal text and ``window.__pwned`` must stay undefined.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest

from console.domain.models import format_time, parse_time
from console.storage import Store
from tests.browser_support import PROJECT_ROOT, free_port, open_page
from tests.reliability.conftest import KESTRA_PASSWORD_SENTINEL, TOGETHER_KEY_SENTINEL

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
    where.get_by_text("window.__pwned=1", exact=False).first.wait_for(state="attached", timeout=15_000)
    text = where.text_content() or ""
    assert "<script>window.__pwned=1</script>" in text, text[:2000]
    assert 'onerror="window.__pwned=2"' in text
    assert_not_pwned(page)


def choose_role(page, role: str) -> None:
    box = page.get_by_test_id("stSelectbox").filter(has_text="Role")
    box.click()
    page.get_by_role("option", name=role, exact=True).click()
    page.wait_for_timeout(500)


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

    open_page(page, f"{console.url}/scenarios")
    card = page.locator(f".st-key-scenario_{SCENARIO}")
    shows_payload_literally(page, card)
    card.locator("button").click()
    page.get_by_text("Open its approval card").first.wait_for(timeout=90_000)
    assert_not_pwned(page)

    store = Store(console.data_dir / "console.sqlite3")
    try:
        [deployment] = store.deployments.list(limit=1)
        execution_id = deployment["execution_id"]
        approval = store.approvals.for_execution(execution_id)
    finally:
        store.close()
    assert approval is not None and PAYLOAD in approval["requested_by"]

    # the execution: task outputs (collect carries the deployment, analyze the log patterns)
    open_page(page, f"{console.url}/executions?execution={execution_id}")
    main = page.get_by_test_id("stMain")
    for task in ("collect", "analyze"):
        page.get_by_role("tab", name=task, exact=True).click()
        page.wait_for_timeout(300)
        assert_not_pwned(page)
    page.get_by_role("tab", name="collect", exact=True).click()
    shows_payload_literally(page, main)

    # the approval card: requested by, and the evidence
    open_page(page, f"{console.url}/approvals")
    card = page.locator(f".st-key-approval_{approval['id']}")
    shows_payload_literally(page, card)
    if not card.get_by_text("Summary").first.is_visible():  # HIGH and CRITICAL open it already
        card.get_by_text("Evidence").first.click()
    card.get_by_text("Summary").first.wait_for(timeout=10_000)
    assert_not_pwned(page)
    for tab in ("New log patterns", "Recommended actions"):
        card.get_by_role("tab", name=tab).click()
        page.wait_for_timeout(300)
        assert_not_pwned(page)

    # the deployment detail (deep link): version and decision card
    open_page(page, f"{console.url}/deployments?deployment={deployment['id']}")
    shows_payload_literally(page, page.get_by_test_id("stMain"))

    # every page as an admin (Settings shows the effective configuration, secrets masked)
    choose_role(page, "admin")
    for name in ("overview", "deployments", "approvals", "executions", "metrics", "learning", "settings"):
        title = re.compile(rf"^{name.capitalize()}( \(\d+\))?$")  # "Approvals (1)": the pending count
        page.get_by_test_id("stSidebarNav").get_by_text(title).click()
        page.wait_for_timeout(200)
        page.wait_for_selector("[data-testid='stApp'][data-test-script-state='notRunning']", timeout=60_000)
        assert_not_pwned(page)
        assert "Traceback" not in page.locator("body").inner_text()
    page.get_by_text("Effective settings").wait_for(timeout=10_000)

    log = console.log_text()
    assert KESTRA_PASSWORD_SENTINEL not in log and TOGETHER_KEY_SENTINEL not in log
    assert "Traceback" not in log, log[-3000:]
    context.close()
