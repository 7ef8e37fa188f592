"""Services failing during a browser session: the console keeps rendering with a clear banner.

The console runs as a real ``streamlit run`` process; Chromium (Debian's, through Playwright) opens
its pages while the fake Kestra or the fake LLM is made down, slow (beyond the timeout) or answering
garbage. Every page must still render (title drawn, script finished), show a one-line banner that
says what is wrong, and never show a traceback or a secret.

- Kestra failing (500, not JSON, slow, down): one page load, then the session moves from page to
  page through the sidebar's menu, as an operator does, and each page must show the fault's banner.
- Kestra down from the start: every page opened by its URL, each the first page of a new session.
- The LLM failing (garbage, slow, down) and answering: one run per case, launched one after another
  from one Scenarios page, each on a ROLLBACK scenario of another service so the four approvals
  wait side by side; one Approvals page (reached from a scenario card's link) shows the four cards:
  the rules summary with the failure's note, or the LLM's narrative, and every ROLLBACK waiting
  for a human. The execution of the last run is opened from its card.
"""

from __future__ import annotations

import re
import time

import pytest
from playwright.sync_api import expect

from tests.browser_support import free_port, open_page, wait_ready
from tests.reliability.conftest import KESTRA_PASSWORD_SENTINEL, KESTRA_USER, TOGETHER_KEY_SENTINEL
from tests.waiting import patience, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.slow]

# page -> its title; the Overview is the default page, at / (``/overview`` is "Page not found")
KESTRA_PAGES = {
    "executions": "Executions",
    "approvals": "Approvals",
    "overview": "Overview",
    "deployments": "Deployments",
}
# what the operator must be told, per fault
BANNERS = {
    "down": re.compile(r"cannot be reached|unreachable", re.I),
    "slow": re.compile(r"did not answer .* within", re.I),
    "500": re.compile(r"HTTP 500|failed on", re.I),
    "malformed": re.compile(r"not JSON|unexpected", re.I),
}


def page_text(page) -> str:
    return page.locator("body").inner_text()


def assert_rendered(page, title: str) -> str:
    """The page drew its title, no exception box, no traceback; returns the visible text."""
    page.get_by_role("heading", name=re.compile(title)).first.wait_for(timeout=30_000)
    assert page.locator("[data-testid='stException']").count() == 0
    text = page_text(page)
    assert "Traceback" not in text
    assert KESTRA_PASSWORD_SENTINEL not in page.content()
    assert TOGETHER_KEY_SENTINEL not in page.content()
    return text


def page_url(base: str, name: str) -> str:
    return f"{base}/" if name == "overview" else f"{base}/{name}"


def follow(page, link, title: str) -> float:
    """Click a link to another page of the console (Streamlit runs that page over the open
    connection, as when an operator moves on: no reload) and wait until the page titled ``title``
    has rendered; returns the seconds it took."""
    started = time.perf_counter()
    link.click()
    page.locator("[data-testid='stMain'] h1", has_text=title).wait_for(timeout=patience(60) * 1000)
    wait_ready(page)
    return time.perf_counter() - started


def visit(page, base: str, name: str) -> float:
    """Open page ``name`` from the sidebar's menu (:func:`follow`); returns the seconds it took."""
    url = page_url(base, name)
    assert page.url != url, f"{name} is the page shown: its link would not run it again"
    link = page.locator(f"a[data-testid='stSidebarNavLink'][href='{url}']")
    return follow(page, link, KESTRA_PAGES[name])


def wait_banner(page, base: str, name: str, pattern: re.Pattern[str], timeout: float = 45.0) -> float:
    """Open the page from the menu until it shows the banner (a cached read may still hold the last
    answer: they expire within 10 s); returns the last render time. Between two looks the session
    steps to another page and back (each render checked). A page that hangs on a failing Kestra
    fails here (no banner within the bound)."""
    title = KESTRA_PAGES[name]
    other = "deployments" if name != "deployments" else "overview"  # both read the store: quick
    deadline = time.monotonic() + patience(timeout)
    while True:
        took = visit(page, base, name)
        text = assert_rendered(page, title)
        if pattern.search(text):
            return took
        assert time.monotonic() < deadline, f"no {pattern.pattern!r} banner on {name}:\n{text[:1500]}"
        page.wait_for_timeout(1000)  # the next look, a moment later
        visit(page, base, other)
        assert_rendered(page, KESTRA_PAGES[other])


def test_kestra_down_slow_and_garbage_keep_every_page_rendering(start_console, fake_kestra, chromium):
    console = start_console(
        KESTRA_URL=fake_kestra.url,
        KESTRA_USERNAME=KESTRA_USER,
        KESTRA_PASSWORD=KESTRA_PASSWORD_SENTINEL,
        KESTRA_TIMEOUT_S="1",
        TOGETHER_API_KEY=TOGETHER_KEY_SENTINEL,
        LLM_BASE_URL=f"http://127.0.0.1:{free_port()}",
    )
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    timings: dict[str, list[float]] = {}

    # healthy first: the pages talk to the fake Kestra; one page load, then the session moves on
    # from page to page through the sidebar's menu
    for i, (name, title) in enumerate(KESTRA_PAGES.items()):
        if i == 0:
            open_page(page, page_url(console.url, name))
        else:
            visit(page, console.url, name)
        text = assert_rendered(page, title)
        assert not BANNERS["down"].search(text)

    for fault in ("500", "malformed", "slow", "down"):
        if fault == "down":
            fake_kestra.down()
        else:
            fake_kestra.fault = fault
            fake_kestra.slow_seconds = 3.0  # > KESTRA_TIMEOUT_S
        for name in KESTRA_PAGES:
            if fault == "slow" and name in ("overview", "deployments"):
                continue  # they read the store; Kestra only for health, covered by the other pages
            took = wait_banner(page, console.url, name, BANNERS[fault])
            timings.setdefault(fault, []).append(took)
        fake_kestra.fault = None

    print("\npage render with Kestra failing (s):", {k: [round(t, 1) for t in v] for k, v in timings.items()})
    log = console.log_text()
    assert KESTRA_PASSWORD_SENTINEL not in log and TOGETHER_KEY_SENTINEL not in log
    context.close()


def _launch(page, store, scenario: str) -> dict:
    """Click ``scenario``'s Launch button on the open Scenarios page and wait, in the store, until
    the new run's approval is pending (the analyzer has answered or failed, the rules decided);
    returns that approval."""
    before = store.scenario_runs.latest([scenario]).get(scenario)
    wait_ready(page)  # the page has drawn what the previous launch changed
    page.locator(f".st-key-launch_{scenario} button").click()

    def pending() -> dict | None:
        row = store.scenario_runs.latest([scenario]).get(scenario)
        if row is None or row == before or not row.get("execution_id"):
            return None
        approval = store.approvals.for_execution(row["execution_id"])
        return approval if approval is not None and approval["status"] == "pending" else None

    return wait_until(pending, 90, step=0.2, what=f"a new run of {scenario} awaiting approval")


def test_llm_down_slow_and_garbage_fall_back_with_a_note(start_console, fake_llm, chromium):
    from tests.llm.fake_llm import content, slow, valid

    budget_s = patience(8)  # room for the SDK's cold start on a busy machine; the slow case waits it out
    console = start_console(
        TOGETHER_API_KEY=TOGETHER_KEY_SENTINEL,
        LLM_BASE_URL=fake_llm.url,
        LLM_TIMEOUT_S=f"{budget_s:g}",
        LLM_MAX_RETRIES="0",
    )
    context = chromium.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    from console.storage import Store

    store = Store(console.data_dir / "console.sqlite3")
    # One ROLLBACK scenario per case, each of another service: the four approvals stay pending side
    # by side (none supersedes another) and one Approvals page shows the four cards.
    # garbage first: its call imports the SDK and builds the (cached) client, so the budget of the
    # valid case measures the answer, not the process's one-off cold start (0.5-1.9 s measured)
    cases = [
        ("crash-loop", content("<html>502 Bad Gateway</html> not json"), "answer rejected (invalid JSON)"),
        ("memory-leak", valid(), None),
        ("latency-regression", slow(budget_s + 600), "unavailable (timeout"),  # answered when the fake closes
        ("db-timeouts", None, "unavailable (connection failed"),  # down: the fake is closed
    ]
    approvals: dict[str, dict] = {}
    try:
        # the runs are launched one after another from one Scenarios page, each once the previous
        # one waits for a human (the fake's behaviour is set per run)
        open_page(page, f"{console.url}/scenarios")
        assert_rendered(page, "Scenarios")
        for scenario, behaviour, _note in cases:
            if behaviour is None:
                fake_llm.close()
            else:
                fake_llm.reset(behaviour)
            approvals[scenario] = _launch(page, store, scenario)
        # each card, redrawn on its own, links to its run's approval card
        links = {}
        for scenario, approval in approvals.items():
            card = page.locator(f".st-key-scenario_{scenario}")
            links[scenario] = card.get_by_role("link", name="Open its approval card")
            href = re.compile(rf"approval={re.escape(approval['id'])}$")
            expect(links[scenario]).to_have_attribute("href", href, timeout=patience(15) * 1000)
        assert_rendered(page, "Scenarios")

        # the decision cards (with the analyzer's notes) of the four pending approvals, on one page
        follow(page, links["crash-loop"], "Approvals")
        assert_rendered(page, "Approvals")
        for scenario, _behaviour, note in cases:
            card = page.locator(f".st-key-approval_{approvals[scenario]['id']}")
            if not card.get_by_text("Summary").first.is_visible():  # HIGH and CRITICAL open it already
                card.get_by_text("Evidence").first.click()
            card.get_by_text("Summary").first.wait_for(timeout=10_000)
            text = card.inner_text()
            if note is None:
                assert "rules summary used" not in text, text[:1500]
                assert "llm:" in text  # the analyzer shown is the LLM's narrative
            else:
                assert note in text, (scenario, text[:2000])
                assert "rules summary used" in text
            # the rules decision is kept: ROLLBACK still waits for a human
            approval = store.approvals.get(approvals[scenario]["id"])
            assert approval["status"] == "pending" and approval["decision"]["verdict"] == "ROLLBACK"

        # the execution of the run that met the LLM down renders (its card links to it)
        down = approvals["db-timeouts"]
        card = page.locator(f".st-key-approval_{down['id']}")
        follow(page, card.get_by_role("link", name="Open the execution"), "Executions")
        assert down["execution_id"] in assert_rendered(page, "Executions")
    finally:
        store.close()
    log = console.log_text()
    assert TOGETHER_KEY_SENTINEL not in log
    assert "Traceback" not in log, log[-3000:]
    context.close()


def test_a_fresh_session_renders_when_kestra_is_down_from_the_start(start_console, chromium):
    """Kestra never reachable: the console still starts and every page explains why."""
    console = start_console(
        KESTRA_URL=f"http://127.0.0.1:{free_port()}",
        KESTRA_USERNAME=KESTRA_USER,
        KESTRA_PASSWORD=KESTRA_PASSWORD_SENTINEL,
        KESTRA_TIMEOUT_S="1",
    )
    page = chromium.new_page()
    for name, title in KESTRA_PAGES.items():
        open_page(page, page_url(console.url, name))
        wait_ready(page)
        text = assert_rendered(page, title)
        if name != "deployments":
            assert BANNERS["down"].search(text), text[:1500]
    assert KESTRA_PASSWORD_SENTINEL not in console.log_text()
    page.close()
