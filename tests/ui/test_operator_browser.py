"""The operator's pages in real headless Chromium (issue 11), against one console started for the
module on a store seeded beforehand: the approval card's sentences and charts, the queue by risk
then expiry, a CRITICAL card's votes, the pending count in the menu, the reject dialog keeping its
Cancel after "A rejection needs a comment", a rolled-back deployment's timeline and the version that
runs now, the execution titled by service and version with durations on its Gantt, and the Metrics
comparison coloured by each metric's direction."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from console.access.auth import Identity, Role
from console.presentation.formatting import WORD_JOINER
from console.settings import Settings
from console.storage import Store
from tests.browser_support import CHROMIUM, ConsoleServer, open_page, start_console_server

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed"),
]

RED, GREEN = "#D62728", "#2CA02C"


@dataclass
class Seeded:
    server: ConsoleServer
    leak: str
    """approval id: memory-leak paused (HIGH, payment-service), launched first"""
    latency: str
    """approval id: latency-regression paused (HIGH, search-service), launched after the leak"""
    critical: str
    """approval id: database-outage-before-deploy paused (CRITICAL), carol's vote recorded"""
    rolled_execution: str
    rolled_deployment: str
    """crash-loop approved by bob: inventory-service v2.0.0 rolled back to v1.9.4 (simulated)"""
    improved_deployment: str
    """performance-improvement: CONTINUE, latency and CPU better"""


def _seed(data_dir: Path) -> dict[str, str]:
    """The store the console will open, filled the way the CLI fills it (launcher: seed)."""
    from console.runtime import embedded_runtime

    runtime = embedded_runtime(Settings(data_dir=data_dir), synchronous=True)
    engine, approvals = runtime.engine, runtime.approvals
    try:

        def paused(scenario: str) -> str:
            execution = engine.run_sync(scenario=scenario, triggered_by="seed", timeout=60)
            assert execution.state.value == "PAUSED", scenario
            return approvals.for_execution(execution.id)["id"]

        improved = engine.run_sync(scenario="performance-improvement", triggered_by="seed", timeout=60)
        crash = paused("crash-loop")
        bob, carol = (Identity(name, Role.APPROVER, source="password") for name in ("bob", "carol"))
        approvals.vote(crash, bob, True, "crash loop confirmed")
        rolled = approvals.get(crash)["execution_id"]
        assert engine.wait(rolled).state.value == "SUCCESS"
        critical = paused("database-outage-before-deploy")
        approvals.vote(critical, carol, True, "primary is down")
        ids = {"leak": paused("memory-leak"), "latency": paused("latency-regression"), "critical": critical}
        store = engine.store
        ids["rolled_execution"] = rolled
        ids["rolled_deployment"] = str(store.deployments.for_execution(rolled)["id"])
        ids["improved_deployment"] = str(store.deployments.for_execution(improved.id)["id"])
        assert store.deployments.for_execution(rolled)["status"] == "rolled back"
        return ids
    finally:
        runtime.close()


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    work = tmp_path_factory.mktemp("operator-browser")
    ids = _seed(work / "data-operator")  # start_console_server's data dir for the name "operator"
    server = start_console_server(work, "operator")
    try:
        yield Seeded(server=server, **ids)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def page(chromium):
    context = chromium.new_context(viewport={"width": 1440, "height": 900})
    yield context.new_page()
    context.close()


def shown(locator) -> str:
    """What a reader sees: the word joiners md_escape puts after ':' and '.' taken out."""
    return locator.inner_text().replace(WORD_JOINER, "")


def _no_exception(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0


def test_the_queue_the_cards_sentences_charts_votes_and_the_pending_count(seeded, page):
    url = seeded.server.url
    open_page(page, f"{url}/approvals")
    # the menu says how many wait
    page.get_by_test_id("stSidebarNav").get_by_text("Approvals (3)").wait_for(timeout=10_000)
    # riskiest first, then the soonest to expire (the leak was requested before the latency one)
    cards = page.locator("[class*='st-key-approval_ap-']")
    cards.first.wait_for(timeout=15_000)
    order = [
        re.search(r"st-key-approval_(ap-[0-9a-f]+)", cls).group(1)
        for cls in cards.evaluate_all("els => els.map(e => e.className)")
    ]
    assert order == [seeded.critical, seeded.leak, seeded.latency]

    leak = page.locator(f".st-key-approval_{seeded.leak}")
    bar = leak.locator(f".st-key-bar_{seeded.leak}")
    assert "Approve: Roll back payment-service v1.2.3 → v1.2.2 in production." in shown(bar)
    reject_says = shown(leak.locator(f".st-key-reject_says_{seeded.leak}"))
    assert (
        "Nothing runs: v1.2.3 stays live while errors are at 34.9% and memory is at 91.8% of its limit."
        in reject_says
    )
    assert "counts as a rejection" in reject_says
    assert "ci-bot" in shown(leak) and "seed" in shown(leak)  # both starters named
    # HIGH: the evidence is open, with the decisive metrics charted in the summary's numbers
    for metric, title in (
        ("error_rate", "Error rate: 0.8% → 34.9%"),
        ("memory_utilization", "Memory utilisation: 54.8% → 91.8%"),
        ("latency_p95_ms", "p95 latency: 182 ms → 868 ms"),
    ):
        chart = leak.locator(f".st-key-card_{seeded.leak}_{metric}")
        chart.locator(".main-svg").first.wait_for(state="visible", timeout=15_000)
        assert title in chart.locator(".gtitle").text_content().replace(WORD_JOINER, "")
    assert "hard guard at 20.0%" in shown(leak.locator(f".st-key-card_{seeded.leak}_error_rate"))
    ticks = leak.locator(f".st-key-card_{seeded.leak}_error_rate .ytick").all_text_contents()
    assert ticks and all(t.endswith("%") for t in ticks), ticks  # people's units, never 0.35

    critical = shown(page.locator(f".st-key-approval_{seeded.critical}"))
    assert "CRITICAL" in critical and "2 approvers needed" in critical
    assert "Votes so far: carol approved: “primary is down”" in critical
    assert "Still needed: 1 more approval" in critical
    _no_exception(page)


def test_the_reject_dialog_keeps_cancel_after_asking_for_a_comment(seeded, page):
    open_page(page, f"{seeded.server.url}/approvals")
    page.locator(f".st-key-reject_{seeded.leak} button").click()
    dialog = page.get_by_role("dialog")
    dialog.wait_for(timeout=10_000)
    assert "Nothing runs: v1.2.3 stays live" in shown(dialog)  # what rejecting does
    page.locator(".st-key-approval_confirm button").click()
    # the error, not the comment box's label (which says the same while the dialog redraws)
    dialog.get_by_test_id("stAlertContentError").get_by_text("A rejection needs a comment").wait_for(
        timeout=10_000
    )
    cancel = page.locator(".st-key-approval_cancel button")
    assert cancel.is_visible()
    cancel.click()
    dialog.wait_for(state="detached", timeout=10_000)
    store = Store(seeded.server.data_dir / "console.sqlite3")
    try:
        assert store.approvals.get(seeded.leak)["status"] == "pending"  # nothing was decided
    finally:
        store.close()
    _no_exception(page)


def test_a_rolled_back_deployment_tells_its_story_and_overview_shows_what_runs(seeded, page):
    url = seeded.server.url
    open_page(page, f"{url}/deployments?deployment={seeded.rolled_deployment}")
    timeline = page.locator(".st-key-dep_timeline")
    timeline.wait_for(timeout=15_000)
    text = shown(timeline)
    for expected in (
        "inventory-service v2.0.0 deployed",
        "Loop started",
        "Step collect",
        "Decision: ROLLBACK",
        "bob approved",
        "crash loop confirmed",
        "rollback_deployment (approved)",
        "Outcome: rolled back · simulated",
        "measured: resolved (recorded scenario segment, simulated)",
        "Loop finished: SUCCESS",
    ):
        assert expected in text, expected
    assert re.search(r"Step analyze · \d+ ms", text), text  # each step with its duration
    assert text.index("bob approved") < text.index("rollback_deployment (approved)") < text.index("Outcome")
    page.get_by_test_id("stDownloadButton").filter(has_text="Postmortem (Markdown)").wait_for(timeout=10_000)
    assert "running v1.9.4 · rolled back from v2.0.0 · simulated" in shown(page.get_by_test_id("stMain"))

    open_page(page, url)
    card = page.locator("[class*='st-key-service_card_']", has_text="inventory-service")
    card.wait_for(timeout=10_000)
    assert "Running v1.9.4" in shown(card) and "rolled back from v2.0.0 · simulated" in shown(card)
    _no_exception(page)


def test_the_execution_is_titled_by_service_and_version_and_its_gantt_says_durations(seeded, page):
    open_page(page, f"{seeded.server.url}/executions?execution={seeded.rolled_execution}")
    main = page.get_by_test_id("stMain")
    main.get_by_role("heading", name="inventory-service v2.0.0").wait_for(timeout=15_000)
    assert "rolled back · simulated" in shown(main)  # the deployment's outcome beside SUCCESS
    gantt = page.locator(".st-key-ex_gantt")
    gantt.locator(".main-svg").first.wait_for(state="visible", timeout=15_000)
    labels = gantt.locator("text.bartext").all_text_contents()
    tasks = gantt.locator(".ytick").all_text_contents()
    assert {"collect", "analyze", "decide", "execute", "verify", "record"} <= set(tasks), tasks
    assert len(labels) == len(tasks), (labels, tasks)  # every bar, however short, carries its duration
    assert all(re.fullmatch(r"[\d.,]+ (ms|s)|\d+ min \d+ s", label) for label in labels), labels
    _no_exception(page)


def _bars(page, key: str) -> dict[str, tuple[str, list[str]]]:
    """The comparison chart's traces as Plotly drew them: name → (colour, metric titles)."""
    return page.locator(f".st-key-{key} .js-plotly-plot").evaluate(
        "gd => Object.fromEntries(gd.data.map(t => [t.name, [t.marker.color, Array.from(t.y)]]))"
    )


def test_metrics_colour_each_bar_by_the_metrics_direction(seeded, page):
    url = seeded.server.url
    open_page(page, f"{url}/metrics?deployment={seeded.improved_deployment}")
    chart = page.locator(".st-key-metrics_comparison")
    chart.locator(".main-svg").first.wait_for(state="visible", timeout=15_000)
    bars = _bars(page, "metrics_comparison")
    assert bars["better"][0] == GREEN and {"p95 latency (ms)", "CPU utilisation"} <= set(bars["better"][1])
    assert "worse" not in bars
    fills = chart.locator(".trace.bars path").evaluate_all("els => els.map(e => e.style.fill)")
    assert "rgb(44, 160, 44)" in fills  # drawn green, not only declared
    assert "ms" in " ".join(chart.locator(".bartext").all_text_contents())  # values in the captions' units

    open_page(page, f"{url}/metrics?deployment={seeded.rolled_deployment}")
    page.locator(".st-key-metrics_comparison .main-svg").first.wait_for(state="visible", timeout=15_000)
    bars = _bars(page, "metrics_comparison")
    assert bars["worse"][0] == RED and {"Error rate", "p95 latency (ms)"} <= set(bars["worse"][1])
    fills = page.locator(".st-key-metrics_comparison .trace.bars path").evaluate_all(
        "els => els.map(e => e.style.fill)"
    )
    assert "rgb(214, 39, 40)" in fills
    ticks = page.locator(".st-key-metric_error_rate .ytick").all_text_contents()
    assert ticks and all(t.endswith("%") for t in ticks) and len(set(ticks)) == len(ticks), ticks
    _no_exception(page)
