"""The Scenarios page under AppTest: the scoreboard and the cards come from the store (they survive a
reload), a paused run says "Awaiting approval" with a link to its card and, for a CONTINUE, why it
waits; past runs are collapsed below; and the Live section: how to start it when nothing live is
configured, one line each when its deployer and its Prometheus are down. (The Live section on a
real deployer and Prometheus: tests/live/test_live_section.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from console.domain.executions import State
from console.engines.embedded.runner import EmbeddedEngine
from console.presentation import live_section as live_view
from console.presentation.formatting import plain
from tests.ui.conftest import make_app, texts


def page_links(at) -> list[tuple[str, str]]:
    """(label, query string) of each st.page_link on the page."""
    return [(link.proto.label, link.proto.page) for link in at.get("page_link")]


def test_scoreboard_and_cards_come_from_the_store_and_survive_a_reload(app_env, engine: EmbeddedEngine):
    engine.run_sync(scenario="healthy-hotfix", triggered_by="seed", timeout=60)
    engine.run_sync(scenario="performance-improvement", triggered_by="seed", timeout=60)
    for _ in range(2):  # a second AppTest is a fresh session: a reload
        at = make_app(page="scenarios")
        assert not at.exception, at.exception
        markdown = " ".join(texts(at, "markdown"))
        assert "2/2 as expected" in markdown and "10 not run yet" in markdown
        assert markdown.count("Decision") == 2 and "not as expected" not in markdown
        assert "healthy] · simulated" in markdown  # the status badge, then "simulated"
        assert at.button(key="launch_healthy-hotfix").label == "Launch again"
        assert at.button(key="launch_memory-leak").label == "Launch"
    [past] = [e for e in at.expander if e.label.startswith("Past scenario runs")]
    [frame] = [d.value for d in at.dataframe]
    assert past.label == "Past scenario runs (2)" and list(frame["scenario"]) == [
        "performance-improvement",
        "healthy-hotfix",
    ]
    assert frame["simulated"].all() and frame["as expected"].all()
    assert "No live service is configured" in " ".join(texts(at, "info"))
    assert "./scripts/live.sh" in " ".join(texts(at, "info"))
    assert not at.get("plotly_chart")  # never made-up live data


def test_a_paused_run_says_awaiting_approval_with_a_link_to_its_card(app_env, paused_leak, engine):
    approval = engine.store.approvals.for_execution(paused_leak.id)
    at = make_app(page="scenarios")
    card = " ".join(texts(at, "markdown"))
    assert "Awaiting approval" in card
    assert at.button(key="launch_memory-leak").label == "Launch again"  # never "Running…"
    assert ("Open its approval card", "approvals") in [
        (label, page.split("/")[-1].removesuffix(".py")) for label, page in page_links(at)
    ]
    [link] = [e for e in at.get("page_link") if e.proto.label == "Open its approval card"]
    assert f"approval={approval['id']}" in link.proto.query_string


def test_a_continue_waiting_for_a_human_says_why(app_env, engine):
    execution = engine.run_sync(scenario="low-traffic-noise", triggered_by="seed", timeout=60)
    assert execution.state == State.PAUSED
    at = make_app(page="scenarios")
    captions = " ".join(texts(at, "caption"))
    assert "the confidence 76% is under the auto-approve threshold 80%" in captions


def test_waiting_reason_only_for_a_continue_under_the_threshold():
    plan = {"threshold": 0.8}
    assert live_view.waiting_reason("CONTINUE", 0.76, plan) is not None
    assert live_view.waiting_reason("CONTINUE", 0.85, plan) is None
    assert live_view.waiting_reason("ROLLBACK", 0.5, plan) is None  # risky: always a human
    assert live_view.waiting_reason("CONTINUE", 0.5, None) is None


def _live_services_file(directory: Path, deployer_port: int, prometheus_port: int) -> Path:
    path = directory / "services.yaml"
    path.write_text(
        "services:\n  demo-service:\n    environment: live-demo\n"
        f"    prometheus: {{url: 'http://127.0.0.1:{prometheus_port}', profile: demo-service, "
        "selector: 'service=\"demo-service\"', scrape_interval_s: 1, timeout_s: 1}\n"
        f"    executor: {{type: demo-service, url: 'http://127.0.0.1:{deployer_port}', "
        "token_env: LIVE_TEST_TOKEN}\n",
        encoding="utf-8",
    )
    return path


def test_deployer_and_prometheus_down_are_one_line_each_and_the_page_keeps_working(
    app_env, tmp_path, monkeypatch
):
    from tests.browser_support import free_port

    deployer, prometheus = free_port(), free_port()  # nothing listens there
    monkeypatch.setenv("CONSOLE_SERVICES_FILE", str(_live_services_file(tmp_path, deployer, prometheus)))
    monkeypatch.setenv("LIVE_TEST_TOKEN", "a-token-for-the-test-0123456789")
    at = make_app(page="scenarios")
    assert not at.exception, at.exception
    warnings = [plain(w) for w in texts(at, "warning")]
    assert f"Deployer: deployer unreachable at http://127.0.0.1:{deployer}: connection refused" in warnings
    assert any(w.startswith("Prometheus: ") and str(prometheus) in w for w in warnings), warnings
    assert not texts(at, "error")
    assert "a-token" not in " ".join(warnings)
    assert not [b for b in at.button if b.key.startswith("deploy_")]  # no versions known: no buttons
    assert at.button(key="launch_memory-leak").label == "Launch"  # the scenarios still work
    assert "No live service is configured" not in " ".join(texts(at, "info"))


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ('<a href="http://x">v9</a>', '&lt;a href="http://x"&gt;v9&lt;/a&gt;'),
        ("a\nb  c", "a b c"),
        ("x" * 80, "x" * 59 + "…"),
    ],
)
def test_chart_labels_from_a_deployer_cannot_carry_html(text, shown):
    assert live_view.chart_text(text) == shown


def test_markers_keep_the_window_and_say_what_happened():
    start, end = 1_000.0, 2_000.0
    records = [
        {"at": "1970-01-01T00:20:00Z", "kind": "deploy", "version": "v1.2.0-leak", "by": "alice"},
        {"at": "1970-01-01T00:25:00Z", "kind": "rollback", "version": "v1.0.0", "by": "bob"},
        {"at": "1970-01-01T01:00:00Z", "kind": "deploy", "version": "v2", "by": "x"},  # after the window
        {"at": "not a time", "kind": "deploy", "version": "v3"},
    ]
    markers = live_view.deployer_markers(records, start, end)
    assert [(m.at, m.label, m.kind) for m in markers] == [
        (1200.0, "deploy v1.2.0-leak by alice", "deploy"),
        (1500.0, "rollback to v1.0.0 by bob", "rollback"),
    ]
    actions = [{"started_at": "1970-01-01T00:25:01Z", "label": "rolled back to v1.0.0", "simulated": False}]
    assert [m.label for m in live_view.action_markers(actions, start, end)] == ["rolled back to v1.0.0"]
    assert live_view.value_text("error_rate", 0.349) == "34.9 %"
    assert live_view.value_text("latency_p95_ms", 412.3) == "412 ms"
    assert live_view.value_text("memory_utilization", None) == "—"
