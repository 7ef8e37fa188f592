"""What the operator's pages say, as pure functions: the approval card's sentences and numbers, the
queue's order, the story's rows, the charts' colours and units, calibration intervals."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta

import pytest

from console.analysis import analyze
from console.domain.models import Classification, Direction, MetricResult
from console.domain.snapshot import parse_snapshot
from console.loop.effectiveness import Effectiveness
from console.loop.scenarios import load_scenario_document
from console.loop.timeline import TimelineEvent
from console.presentation import approval_card as cards
from console.presentation import charts, learning, story
from console.presentation import formatting as fmt
from console.settings import Settings
from tests.conftest import MOCK_DATA

T0 = datetime(2026, 11, 29, 17, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def leak():
    """The memory-leak scenario: its snapshot, the decision on it, and a pending approval row."""
    doc = load_scenario_document("memory-leak", MOCK_DATA)
    decision = analyze(parse_snapshot({k: v for k, v in doc.items() if k != "scenario"})).to_dict()
    deployment = {**doc["deployment"], "source": "scenario", "scenario": "memory-leak"}
    approval = {
        "id": "ap-1",
        "execution_id": "ex-1",
        "service": deployment["service"],
        "actions": [a for a in decision["actions"] if a["name"] == "rollback_deployment"],
        "risk": "HIGH",
        "required_approvals": 1,
        "requested_by": "ci-bot",
        "requested_by_source": "scenario file",
        "expires_at": "2026-11-29T20:15:00Z",
        "verdict": decision["verdict"],
        "severity": decision["severity"],
        "confidence": decision["confidence"],
        "decision": decision,
        "votes": [],
    }
    return doc, decision, deployment, approval


STARTERS = [
    {"name": "ci-bot", "roles": ["requester", "deployer"], "sources": {"requester": "scenario file",
                                                                      "deployer": "the scenario file"}},
    {"name": "seed", "roles": ["launcher"], "sources": {"launcher": "launched_by label (unverified)"}},
]  # fmt: skip


def test_the_card_says_what_approve_and_reject_do_in_the_summarys_numbers(leak):
    doc, decision, deployment, approval = leak
    levels = cards.metric_levels({k: v for k, v in doc.items() if k != "scenario"})
    card = cards.build_card(approval, deployment=deployment, levels=levels, starters=STARTERS)
    assert card.approve == ["Roll back payment-service v1.2.3 → v1.2.2 in production"]
    assert card.reject == (
        "Nothing runs: v1.2.3 stays live while errors are at 34.9% and memory is at 91.8% of its limit."
    )
    assert card.dangerous and card.evidence_open
    assert card.timeout == "If nobody decides by 20:15 UTC, the request expires and counts as a rejection: " \
        "the same happens."  # fmt: skip
    # the guarded metrics first, then latency; each number is one the summary quotes, and says which
    assert [m.name for m in card.metrics] == ["error_rate", "memory_utilization", "latency_p95_ms"]
    for metric in card.metrics:
        assert f"{metric.before} → {metric.now}" in decision["summary"]
        assert metric.statistic == "median before the deploy → median of the last 20 points after it"
    assert [m.threshold for m in card.metrics] == [0.20, 0.90, None]
    assert card.metrics[0].threshold_text == "hard guard at 20.0%"


def test_the_card_names_who_started_the_run_and_the_rule(leak):
    _, _, deployment, approval = leak
    card = cards.build_card(approval, deployment=deployment, levels={}, starters=STARTERS)
    assert [(p.role, p.name, p.source) for p in card.people] == [
        ("deployed and requested by", "ci-bot", "the scenario file"),
        ("launched by", "seed", "the run's launched_by label, not verified"),
    ]
    assert card.rule == "ci-bot and seed started this run: the approval must come from someone else."
    critical = {**approval, "required_approvals": 2, "votes": [{"actor": "seed", "approved": True}]}
    card = cards.build_card(critical, deployment=deployment, levels={}, starters=STARTERS)
    assert card.rule == (
        "At most one of the 2 approvals may come from seed; ci-bot cannot vote on their own request."
    )
    assert card.votes == ["seed approved"]
    assert card.still == (
        "Still needed: 1 more approval from any approver except seed (voted) and ci-bot (requested it)."
    )


def test_effectiveness_failed_notifications_and_the_executors_words(leak, tmp_path):
    _, decision, deployment, approval = leak
    table = [Effectiveness("out_of_memory", "rollback_deployment", 9, 10, 3, 3)]
    notes = [{"status": "failed", "channel": "slack", "attempts": 5, "last_error": "HTTP 500 from slack"}]
    card = cards.build_card(
        approval, deployment=deployment, levels={}, starters=[], effectiveness=table, notifications=notes
    )
    assert card.effectiveness == [
        "rollback_deployment resolved 9 of 10 out-of-memory regressions "
        "(3 of 3 in simulated runs, not counted)"
    ]
    assert card.notification == "Notification not delivered to slack after 5 attempt(s): HTTP 500 from slack"
    assert cards.effectiveness_lines(decision, approval["actions"], []) == []  # no history: nothing said

    how, simulated = cards.describe_actions(approval, deployment, Settings(data_dir=tmp_path))
    assert simulated and how == ["simulated: would roll back payment-service to v1.2.2 (nothing is touched)"]
    services = tmp_path / "services.yaml"
    services.write_text(
        "services:\n  payment-service:\n    environment: live\n    logs: {type: jsonl, path: x.log}\n"
        "    executor: {type: demo-service, url: 'http://127.0.0.1:8700'}\n"
    )
    live = {**deployment, "source": "deployer", "scenario": None}
    settings = Settings(data_dir=tmp_path, services_file=services)
    how, simulated = cards.describe_actions(approval, live, settings)
    assert not simulated
    assert how[0].startswith("POST http://127.0.0.1:8700/rollback to v1.2.2, then wait up to")


def test_the_decision_bar_says_what_is_decided_and_why_a_button_is_off(leak):
    _, _, deployment, approval = leak
    card = cards.build_card(approval, deployment=deployment, levels={}, starters=STARTERS)
    before = datetime(2026, 11, 29, 20, 0, tzinfo=UTC)  # the request expires at 20:15
    bob = cards.Viewer("bob", can_decide=True, role="approver")

    bar = cards.decision_bar(card, bob, now=before)
    assert (bar.verdict, bar.confidence) == ("ROLLBACK", "99%")
    assert bar.does == "Roll back payment-service v1.2.3 → v1.2.2 in production"
    assert bar.approve_off is None and bar.reject_off is None and not bar.sign_in

    def off(viewer: cards.Viewer = bob, **kwargs) -> tuple:
        bar = cards.decision_bar(kwargs.pop("card", card), viewer, now=kwargs.pop("now", before), **kwargs)
        return bar.approve_off, bar.reject_off, bar.sign_in

    nobody = "Sign in to decide."
    assert off(cards.Viewer(None, sign_in="password")) == (nobody, nobody, True)  # the form goes right here
    assert off(cards.Viewer(None, sign_in="oidc")) == (nobody, nobody, True)
    none = off(cards.Viewer(None, sign_in="none"))
    assert none[0] == none[1] == "No sign-in is configured on this console: nobody can decide here."
    assert not none[2]
    assert off(cards.Viewer(None, sign_in="broken"))[0].startswith("The sign-in configuration cannot be used")
    viewer = off(cards.Viewer("vic", can_decide=False, role="viewer"))
    assert (
        viewer[0]
        == viewer[1]
        == ("You are signed in as a viewer: you can read approvals, approvers decide them.")
    )
    # self-review: the starters' rule's own words, per button
    refused = off(
        approve_refusal="you launched this run: this action needs one approver, who must be someone who "
        "did not start the run",
        reject_refusal="you launched this run: a rejection decides on its own",
    )
    assert refused[0].startswith("You launched this run: this action needs one approver")
    assert refused[1] == "You launched this run: a rejection decides on its own."
    # the service moved on: Approve off, Reject still decides
    moved = dataclasses.replace(card, superseded="v1.1.0 is running now since 19:58 UTC")
    assert off(card=moved) == (
        "Superseded: v1.1.0 is running now since 19:58 UTC. Reject escalates the deployment.",
        None,
        False,
    )
    no_target = dataclasses.replace(
        card, no_target=True, target="no known-good version of payment-service on record"
    )
    assert off(card=no_target)[:2] == (
        "No known-good version of payment-service on record. Reject escalates the deployment.",
        None,
    )
    closed = off(closed="already approved by carol at 19:59 UTC")
    assert closed[0] == closed[1] == "Already approved by carol at 19:59 UTC."
    late = off(now=datetime(2026, 11, 29, 20, 16, tzinfo=UTC))
    assert (
        late[0] == late[1] == ("Expired at 20:15 UTC: nobody decided in time, so it counts as a rejection.")
    )
    voted = dataclasses.replace(card, voters=["Bob"])  # the same person, spelled differently
    assert off(card=voted)[0] == (
        "You already voted on this: the next approval must come from someone else."
    )


def test_the_queue_is_riskiest_first_then_soonest_to_expire():
    soon, later = "2026-11-29T20:00:00Z", "2026-11-29T20:30:00Z"
    items = [
        {"id": "high-later", "risk": "HIGH", "expires_at": later},
        {"id": "medium", "risk": "MEDIUM", "expires_at": soon},
        {"id": "critical", "risk": "CRITICAL", "expires_at": later},
        {"id": "high-soon", "risk": "HIGH", "expires_at": soon},
    ]
    assert [i["id"] for i in cards.queue_order(items)] == ["critical", "high-soon", "high-later", "medium"]


def test_action_sentences_and_what_rejecting_does():
    dep = {"service": "billing", "version": "v2", "previous_version": "v1", "environment": "staging"}
    assert cards.action_sentence({"name": "rollback_deployment", "params": {}}, dep) == (
        "Roll back billing v2 → v1 in staging"
    )
    assert cards.action_sentence({"name": "scale_deployment", "params": {"replicas": 6}}, dep) == (
        "Scale billing to 6 replicas in staging"
    )
    assert cards.reject_sentence([{"name": "failover_database"}], dep, []) == (
        "Nothing runs: no database failover; the deployment is marked escalated."
    )


def _result(name: str, before: float, after: float, classification: str = "High") -> MetricResult:
    return MetricResult(
        name, Classification(classification), Direction.INCREASE, before, after, 0.001, 0.9, "r"
    )


def test_comparison_colours_follow_each_metrics_direction():
    results = [
        _result("error_rate", 0.01, 0.30),  # errors up: worse
        _result("latency_p95_ms", 800.0, 200.0, "Pass"),  # latency down: better
        _result("requests_per_second", 120.0, 40.0, "Low"),  # traffic down: worse
        _result("cpu_utilization", 0.40, 0.41, "Pass"),  # no real move
    ]
    fig = charts.comparison_figure(results)
    kinds = {bar.name: (bar.marker.color, list(bar.y)) for bar in fig.data}
    assert kinds["worse"] == ("#D62728", ["Error rate", "Requests / s"])
    assert kinds["better"] == ("#2CA02C", ["p95 latency (ms)"])
    assert kinds["no meaningful change"][1] == ["CPU utilisation"]
    texts = [t for bar in fig.data for t in bar.text]
    assert "1.0% → 30.0% (+2,900%)" in texts and "800 ms → 200 ms (−75%)" in texts


def test_metric_axes_use_the_captions_units():
    assert charts.axis_format("error_rate")["tickformat"] == ".0%"
    assert charts.axis_format("latency_p95_ms")["ticksuffix"] == " ms"
    assert charts.axis_format("db_query_p95_ms")["ticksuffix"] == " ms"


def test_a_short_live_window_labels_its_time_axis_with_seconds():
    start = T0.timestamp()
    live = [start + i for i in range(40)]  # a 40 s live window: minutes alone would repeat "17:00"
    card = charts.card_metric_figure(live, [0.1] * 40, metric="error_rate", title="", deployed_at=T0)
    page = charts.metric_figure(live, [0.1] * 40, metric="error_rate")
    assert card.layout.xaxis.tickformat == page.layout.xaxis.tickformat == "%H:%M:%S"
    hour = [start + 60 * i for i in range(60)]
    assert charts.metric_figure(hour, [0.1] * 60, metric="error_rate").layout.xaxis.tickformat == "%H:%M"
    week = [start + 3600 * i for i in range(24 * 7)]
    assert charts.time_tickformat(week) == "%b %d %H:%M"


def test_calibration_buckets_carry_counts_and_wilson_intervals():
    low, high = learning.wilson_interval(0, 1)
    assert low == 0.0 and high == pytest.approx(0.7935, abs=1e-3)
    low, high = learning.wilson_interval(9, 10)
    assert (low, high) == (pytest.approx(0.5958, abs=1e-3), pytest.approx(0.9821, abs=1e-3))
    records = [{"confidence": 0.95, "held": True}] * 9 + [{"confidence": 0.91, "held": False}]
    table = learning.calibration_table(learning.calibration_frame(records))
    assert table.to_dict("records") == [
        {"confidence bucket": "80–100%", "decisions": 10, "stated (mean)": "95%", "held": "90%",
         "95% interval": "60–98%"}
    ]  # fmt: skip
    figure = charts.calibration_figure(learning.calibration_frame(records))
    loop = figure.data[1]
    assert loop.mode == "markers+text" and list(loop.text) == ["n=10"] and loop.error_y.array is not None


def test_what_if_cards_never_share_a_label():
    assert len(set(learning.whatif_labels(0.8, 0.8))) == 2
    assert learning.whatif_labels(0.8, 0.9) == ("Need a human today (threshold 80%)", "Need a human at 90%")


def test_story_rows_and_the_version_that_runs():
    events = [
        TimelineEvent(T0, "deployed", "svc v2 deployed", actor="ci-bot"),
        TimelineEvent(T0 + timedelta(seconds=1), "step", "Step collect", "success", duration_s=0.012,
                      status="success"),
        TimelineEvent(T0 + timedelta(seconds=2), "vote", "bob approved", "leak confirmed", actor="bob",
                      status="approved"),
        TimelineEvent(T0 + timedelta(seconds=3), "action", "rollback_deployment (approved)",
                      "failed: HTTP 503", status="failed"),
    ]  # fmt: skip
    rows = story.story_rows(events)
    assert [(r.time, r.title, r.actor, r.duration, r.detail, r.tone) for r in rows] == [
        ("17:00:00.000", "svc v2 deployed", "ci-bot", "", "", "gray"),
        ("17:00:01.000", "Step collect", "", "12 ms", "", "green"),
        ("17:00:02.000", "bob approved", "", "", "leak confirmed", "green"),
        ("17:00:03.000", "rollback_deployment (approved)", "", "", "failed: HTTP 503", "red"),
    ]
    rolled = {"version": "v1.2.3", "running_version": "v1.2.2", "simulated": True, "status": "rolled back",
              "measured_status": "resolved"}  # fmt: skip
    assert story.running_parts(rolled) == ("v1.2.2", "rolled back from v1.2.3 · simulated")
    assert story.running_parts({"version": "v1.2.3", "running_version": "v1.2.3"}) == ("v1.2.3", "")
    assert story.outcome_text(rolled) == "rolled back · simulated · measured resolved"
    assert story.outcome_color(rolled) == "green"  # the rollback worked
    # Kestra's SUCCESS is the loop reaching its end: beside a rejected or escalated deployment it is
    # never a green "SUCCESS"
    escalated = story.run_badge("SUCCESS", {"status": "escalated"})
    assert (escalated.label, escalated.color) == ("loop finished", "gray")
    assert story.run_badge("SUCCESS", {"status": "healthy"}).color == "green"
    assert story.run_badge("FAILED", {"status": "escalated"}).label == "FAILED"
    assert story.run_badge("SUCCESS", None) == fmt.state_badge("SUCCESS")  # no deployment: Kestra's words
    finished = TimelineEvent(T0, "finished", "Loop finished: SUCCESS", status="success")
    assert story.story_rows([finished])[0].tone == "gray"
    assert story.postmortem_filename({"service": "pay svc", "version": "v1"}, "abcdefghijklmnop") == (
        "postmortem-pay-svc-v1-abcdefghijkl.md"
    )


def test_a_metric_degraded_before_the_deploy_shows_the_summarys_before_and_says_so():
    """database-outage-before-deploy: the summary quotes each metric's level just before the deploy
    (already degraded), not the older baseline; the card's numbers and units must be the same."""
    doc = load_scenario_document("database-outage-before-deploy", MOCK_DATA)
    snapshot = {k: v for k, v in doc.items() if k != "scenario"}
    decision = analyze(parse_snapshot(snapshot)).to_dict()
    metrics = cards.decisive_metrics(decision, cards.metric_levels(snapshot))
    assert [m.name for m in metrics] == ["error_rate", "latency_p95_ms", "db_query_p95_ms"]
    for metric in metrics:
        assert f"{metric.name} {metric.before} → {metric.now}" in decision["summary"]
        assert metric.statistic.startswith("median just before the deploy (already degraded; median ")
    assert metrics[0].before == "20.0%" and "median 0.9% before that" in metrics[0].statistic
    assert metrics[2].before.endswith(" ms")  # a *_ms metric the analyzer has no table entry for
    assert metrics[0].baseline_value == pytest.approx(0.2004, abs=1e-3)  # the chart's "before" line


def test_a_ratio_that_barely_moves_gets_decimals_on_its_axis():
    """0.7%..0.9% on a ".0%" axis reads "1%, 1%": the ticks get a decimal instead."""
    assert charts.axis_format("error_rate", [0.007, 0.009, 0.0085])["tickformat"] == ".2%"
    assert charts.axis_format("error_rate", [0.005, 0.03])["tickformat"] == ".1%"
    assert charts.axis_format("memory_utilization", [0.5, 0.92])["tickformat"] == ".0%"
    times = [1_764_435_600.0 + 15 * i for i in range(40)]
    fig = charts.metric_figure(times, [0.008 + 0.0002 * (i % 5) for i in range(40)], metric="error_rate")
    assert fig.layout.yaxis.tickformat == ".2%"


# -- the pages under AppTest ------------------------------------------------------------------------


def test_the_approvals_page_orders_the_queue_and_keeps_cancel_after_the_comment_error(app_env, engine):
    from tests.ui.conftest import make_app, texts

    leak = engine.run_sync(scenario="memory-leak", triggered_by="seed", timeout=60)
    critical = engine.run_sync(scenario="database-outage-before-deploy", triggered_by="seed", timeout=60)
    leak_id = engine.store.approvals.for_execution(leak.id)["id"]
    critical_id = engine.store.approvals.for_execution(critical.id)["id"]
    at = make_app("alice", "approver", "approvals")
    assert not at.exception
    headings = [t for t in texts(at, "markdown") if t.startswith("#### ")]
    assert headings == ["#### billing-service v6.3.2", "#### payment-service v1.2.3"]  # CRITICAL first
    markdown = texts(at, "markdown")
    assert "**Approve:** Roll back payment-service v1.2.3 → v1.2.2 in production." in markdown
    assert any(
        w.startswith("Nothing runs: v1.2.3 stays live while errors are at 34.9%")
        for w in texts(at, "warning")
    )
    assert [e.label for e in at.expander] == ["Evidence", "Evidence"]  # open: HIGH and CRITICAL

    at.button(key=f"reject_{leak_id}").click().run()
    at.button(key="approval_confirm").click().run()
    assert "A rejection needs a comment saying why." in texts(at, "error")
    at.button(key="approval_cancel").click().run()  # still there after the error
    assert "approval_request" not in at.session_state
    assert engine.store.approvals.get(leak_id)["status"] == "pending"
    assert engine.store.approvals.get(critical_id)["status"] == "pending"


def test_an_approval_link_to_a_decided_or_unknown_request_says_so(app_env, paused_leak, engine):
    from tests.ui.conftest import make_app, texts

    at = make_app("alice", "approver", "approvals")
    at.query_params["approval"] = "ap-000000000000"
    at.run()
    assert "Approval ap-000000000000 not found." in texts(at, "warning")
    approval_id = engine.store.approvals.for_execution(paused_leak.id)["id"]
    at.query_params["approval"] = approval_id
    at.run()
    assert any(":blue-badge[:material/link: opened from a link]" in m for m in texts(at, "markdown"))
    at.button(key=f"approve_{approval_id}").click().run()
    assert any(s.startswith("approved by alice") for s in texts(at, "success"))  # said once, not twice
    assert not texts(at, "info")
    later = make_app("bob", "approver")  # someone else follows the same link afterwards
    later.query_params["approval"] = approval_id
    later.switch_page("pages/approvals.py").run()
    assert any(
        i.startswith(f"Approval {approval_id} is no longer pending: already approved by alice at ")
        for i in texts(later, "info")
    )


def test_after_an_approved_rollback_the_story_the_postmortem_and_overview_agree(app_env, paused_leak, engine):
    from console.domain.executions import State
    from tests.ui.conftest import make_app, texts, wait_for

    approval_id = engine.store.approvals.for_execution(paused_leak.id)["id"]
    at = make_app("alice", "approver", "approvals")
    at.button(key=f"approve_{approval_id}").click().run()
    wait_for(lambda: engine.get_execution(paused_leak.id).state == State.SUCCESS)
    deployment = engine.store.deployments.for_execution(paused_leak.id)

    at.switch_page("pages/deployments.py")
    at.query_params["deployment"] = str(deployment["id"])
    at.run()
    assert not at.exception
    story = " ".join(texts(at, "markdown"))
    assert "**alice approved**" in story and "**rollback_deployment (approved)**" in story
    assert "**Outcome: rolled back · simulated**" in story
    assert any(
        c.startswith("measured: resolved (recorded scenario segment, simulated)")
        for c in texts(at, "caption")
    )
    assert "running v1.2.2 · rolled back from v1.2.3 · simulated" in texts(at, "caption")
    assert [b.label for b in at.get("download_button")] == ["Postmortem (Markdown)"]

    at.switch_page("pages/overview.py").run()
    assert "Running **v1.2.2**" in texts(at, "markdown")
    assert "rolled back from v1.2.3 · simulated" in texts(at, "caption")
