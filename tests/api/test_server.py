"""The API on the real server, as ``./scripts/console.sh`` runs it (``streamlit run server.py``): one
port for the pages and ``/api/``, a run launched from the command line decided through the API,
the error answers over real HTTP, and the token never in the server's output. Then, in one
Chromium page, the pages and deep links under server.py, with a decision made through the API on
the page."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.browser_support import CHROMIUM, PROJECT_ROOT, SCRUBBED_ENV, wait_ready
from tests.waiting import patience

TOKEN = "t0k3n-that-must-never-be-logged"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

pytestmark = pytest.mark.slow


def launch_from_cli(data_dir: Path, scenario: str = "memory-leak") -> str:
    """Run a scenario with ``python -m console run`` on the server's database; the approval's id."""
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env.update(CONSOLE_DATA_DIR=str(data_dir), CONSOLE_SECRETS=str(data_dir / "no-secrets.toml"))
    done = subprocess.run(
        [sys.executable, "-m", "console", "run", scenario],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        env=env,
        timeout=120,
        check=False,
    )
    found = re.search(r"waiting for approval (ap-[0-9a-f]+)", done.stderr)
    assert found, done.stderr
    return found.group(1)


def wait_state(url: str, execution_id: str, state: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + patience(timeout)
    while True:
        body = requests.get(f"{url}/api/executions/{execution_id}", headers=AUTH, timeout=10).json()
        if body.get("state") == state or time.monotonic() > deadline:
            return body
        time.sleep(0.3)


def test_pages_and_api_on_one_port_with_a_cli_run_decided_through_the_api(start_console):
    console = start_console(
        "--logger.level",
        "debug",
        CONSOLE_API_TOKEN=TOKEN,
        CONSOLE_API_TOKEN_ROLE="approver",
        CONSOLE_API_RATE_PER_MINUTE="600",
        CONSOLE_API_BURST="40",
        CONSOLE_API_MAX_BODY_BYTES="4096",
    )
    url = console.url
    health = requests.get(f"{url}/api/health", timeout=10)
    assert health.status_code == 200 and health.headers["content-type"] == "application/json"
    assert health.json()["checks"]["store"]["status"] == "up"
    page = requests.get(f"{url}/approvals", timeout=10)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]

    approval_id = launch_from_cli(console.data_dir)
    listed = requests.get(f"{url}/api/approvals?status=pending", headers=AUTH, timeout=10).json()
    [item] = [a for a in listed["approvals"] if a["id"] == approval_id]
    execution_id = item["execution_id"]
    assert wait_state(url, execution_id, "PAUSED")["approval"]["status"] == "pending"

    decision_url = f"{url}/api/approvals/{approval_id}/decision"
    assert requests.post(decision_url, json={"decision": "approve"}, timeout=10).status_code == 401
    wrong = requests.post(
        decision_url, json={"decision": "approve"}, headers={"Authorization": "Bearer nope"}
    )
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Bearer")
    bad = requests.post(decision_url, json={"decision": "maybe"}, headers=AUTH, timeout=10)
    assert bad.status_code == 400 and bad.json()["error"].startswith("decision:")
    big = requests.post(
        decision_url, data=b"{" + b" " * 5000 + b"}", headers={**AUTH, "Content-Type": "application/json"}
    )
    assert big.status_code == 413
    acting = requests.post(
        decision_url, json={"decision": "approve", "actor": "alice"}, headers=AUTH, timeout=10
    )
    assert acting.status_code == 403
    missing = requests.post(
        f"{url}/api/approvals/ap-000000000000/decision", json={"decision": "approve"}, headers=AUTH
    )
    assert missing.status_code == 404 and missing.headers["content-type"] == "application/json"

    decided = requests.post(decision_url, json={"decision": "approve", "comment": "from chat"}, headers=AUTH)
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "approved" and decided.json()["actor"] == "api"
    again = requests.post(decision_url, json={"decision": "approve"}, headers=AUTH, timeout=10)
    assert again.status_code == 409 and again.json()["approval"]["decided_by"] == "api"
    done = wait_state(url, execution_id, "SUCCESS")
    assert done["deployment"]["status"] == "rolled back" and done["outcome"]["outcome"]["held"] is True

    statuses = [requests.get(f"{url}/api/approvals", headers=AUTH, timeout=10).status_code for _ in range(60)]
    assert 429 in statuses and statuses[0] == 200
    limited = requests.get(f"{url}/api/approvals", headers=AUTH, timeout=10)
    if limited.status_code == 429:
        assert int(limited.headers["retry-after"]) >= 1

    log = console.log_text()
    assert TOKEN not in log
    assert "API POST /api/approvals/" in log and "-> 200 (token env" in log  # the access lines are there


def test_with_no_token_the_write_and_read_endpoints_are_off(start_console):
    console = start_console()
    assert (
        requests.get(f"{console.url}/api/health", timeout=10).json()["checks"]["api"]["status"]
        == "not configured"
    )
    for response in (
        requests.get(f"{console.url}/api/approvals", headers=AUTH, timeout=10),
        requests.post(f"{console.url}/api/approvals/ap-1/decision", json={"decision": "approve"}, timeout=10),
    ):
        assert response.status_code == 403 and "CONSOLE_API_TOKEN" in response.json()["error"]


@pytest.mark.browser
@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed")
def test_pages_and_deep_links_under_server_py_show_what_the_api_decided(start_console, chromium):
    """One browser page: the approvals deep link (the server's first session), then after the API's
    decision the execution's deep link (a new session) and, from its menu, the approvals page."""
    console = start_console(CONSOLE_API_TOKEN=TOKEN, CONSOLE_API_TOKEN_ROLE="approver")
    approval_id = launch_from_cli(console.data_dir)
    wait_ms = patience(10) * 1000
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"{console.url}/approvals")  # a deep link is the first session of this server
    wait_ready(page)
    assert page.get_by_text("Page not found").count() == 0
    page.get_by_test_id("stSidebar").get_by_text("DevOps Loop").wait_for(timeout=wait_ms)
    page.get_by_test_id("stButton").filter(has_text="Approve").first.wait_for(timeout=wait_ms)

    execution_id = requests.get(f"{console.url}/api/approvals", headers=AUTH, timeout=10).json()["approvals"][
        0
    ]["execution_id"]
    decided = requests.post(
        f"{console.url}/api/approvals/{approval_id}/decision",
        json={"decision": "approve"},
        headers=AUTH,
        timeout=10,
    )
    assert decided.status_code == 200
    assert wait_state(console.url, execution_id, "SUCCESS")["state"] == "SUCCESS"

    page.goto(f"{console.url}/executions?execution={execution_id}")
    wait_ready(page)
    assert page.get_by_text("Page not found").count() == 0
    page.get_by_text(execution_id).first.wait_for(timeout=wait_ms)
    page.get_by_text("loop finished").first.wait_for(timeout=wait_ms)  # SUCCESS, beside its deployment
    # the menu says "Approvals", not "Approvals (1)"; the page, drawn afresh, has nothing to approve
    page.get_by_test_id("stSidebarNav").get_by_text("Approvals", exact=True).click()
    page.get_by_test_id("stMain").locator("h1").filter(has_text="Approvals").wait_for(timeout=wait_ms)
    wait_ready(page)
    assert page.get_by_test_id("stButton").filter(has_text="Approve").count() == 0  # nothing pending any more
    context.close()
