"""The presentation (tables, formatting, learning analytics, figures): pure functions, checked on their
own."""

from __future__ import annotations

import json
import re
import string
import unicodedata
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from console.domain.executions import Execution, State, StateHistory, TaskRun
from console.domain.models import Classification, Decision, Direction, MetricResult
from console.domain.vocabulary import LOOP_TASKS, DeploymentStatus
from console.loop.policy import plan_actions
from console.presentation import charts, learning, tables
from console.presentation import formatting as fmt
from console.storage import DashboardKpis
from tests.properties import examples

T0 = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)


def _execution(exec_id: str, start: datetime, state: State, runs: list[TaskRun] | None = None) -> Execution:
    histories = [StateHistory(State.CREATED, start), StateHistory(state, start + timedelta(seconds=3))]
    return Execution(exec_id, "devops.loop", "devops-loop", state, histories, task_runs=runs or [])


# --- downsampling ---------------------------------------------------------------------------


@hsettings(max_examples=examples(60), deadline=None)
@given(
    values=st.lists(st.floats(-1e6, 1e6, allow_nan=False), min_size=1, max_size=3000),
    max_points=st.integers(4, 500),
)
def test_downsample_bounds_and_keeps_extremes(values, max_points):
    times = np.arange(len(values), dtype=float)
    t, v = charts.downsample_minmax(times, values, max_points)
    assert len(t) == len(v)
    assert len(t) <= max_points
    assert v.max() == max(values) and v.min() == min(values)
    assert np.all(np.diff(t) > 0)  # time order, no duplicates
    assert set(t) <= set(times)


def test_downsample_short_series_unchanged_and_bad_input_refused():
    t, v = charts.downsample_minmax([1.0, 2.0], [3.0, 4.0], 10)
    assert list(t) == [1.0, 2.0] and list(v) == [3.0, 4.0]
    with pytest.raises(ValueError):
        charts.downsample_minmax([1.0, 2.0], [3.0], 10)
    with pytest.raises(ValueError):
        charts.downsample_minmax([1.0], [3.0], 3)


# --- metric figure --------------------------------------------------------------------------


def _result(classification: Classification) -> MetricResult:
    return MetricResult("memory", classification, Direction.INCREASE, 50, 90, 0.001, 0.9, "up")


def test_metric_figure_marks_deploy_windows_and_anomalies():
    times = np.array([(T0 + timedelta(minutes=m)).timestamp() for m in range(-30, 30)])
    values = np.where(np.arange(60) < 30, 50.0, 50.0)
    values[45] = 95.0  # one spike after the deploy
    fig = charts.metric_figure(
        times,
        values,
        metric="memory_utilization",
        deployed_at=T0,
        baseline_window=(T0 - timedelta(minutes=30), T0),
        after_window=(T0, T0 + timedelta(minutes=30)),
        result=_result(Classification.HIGH),
    )
    kinds = [s.type for s in fig.layout.shapes]
    assert kinds.count("rect") == 2 and kinds.count("line") == 1
    deploy = next(s for s in fig.layout.shapes if s.type == "line")
    assert pd.Timestamp(deploy.x0) == pd.Timestamp(T0)
    anomaly = next(tr for tr in fig.data if tr.name == "anomaly")
    assert list(anomaly.y) == [95.0]
    # a metric the judge passed gets no red points even with the same spike
    calm = charts.metric_figure(
        times, values, metric="m", deployed_at=T0, result=_result(Classification.PASS)
    )
    assert all(tr.name != "anomaly" for tr in calm.data)


def test_metric_figure_sends_at_most_max_points():
    n = 200_000
    times = np.arange(n, dtype=float) + T0.timestamp()
    values = np.sin(np.arange(n) / 500.0)
    values[123_456] = 10.0
    fig = charts.metric_figure(times, values, metric="cpu", max_points=1000)
    line = fig.data[0]
    assert len(line.y) <= 1000 and max(line.y) == 10.0


def test_gantt_one_bar_per_task_and_instant_tasks_visible():
    start = T0
    runs = [
        TaskRun("r1", "collect", State.SUCCESS, [StateHistory(State.RUNNING, start),
                                                 StateHistory(State.SUCCESS, start + timedelta(seconds=2))]),
        TaskRun("r2", "analyze", State.SUCCESS, [StateHistory(State.RUNNING, start + timedelta(seconds=2)),
                                                 StateHistory(State.SUCCESS, start + timedelta(seconds=2))]),
        TaskRun("r3", "approval", State.PAUSED, [StateHistory(State.PAUSED, start + timedelta(seconds=3))]),
    ]  # fmt: skip
    frame = tables.task_runs_frame(
        _execution("e", start, State.PAUSED, runs), now=start + timedelta(seconds=9)
    )
    fig = charts.gantt_figure(frame)
    bars = {task: width for tr in fig.data for task, width in zip(tr.y, tr.x, strict=True)}
    labels = {task: text for tr in fig.data for task, text in zip(tr.y, tr.text, strict=True)}
    starts = {task: base for tr in fig.data for task, base in zip(tr.y, tr.base, strict=True)}
    assert set(bars) == {"collect", "analyze", "approval"}
    assert fig.layout.xaxis.ticksuffix == " ms"  # a 3 s run is told in ms since its start
    assert bars["collect"] == pytest.approx(2000) and starts["analyze"] == pytest.approx(2000)
    assert labels == {"collect": "2.0 s", "analyze": "0 ms", "approval": "0 ms"}  # durations labelled
    assert bars["analyze"] > 0  # zero-length task still drawn


def test_gantt_of_a_run_of_a_few_hundred_milliseconds_is_in_ms():
    ms = [T0 + timedelta(milliseconds=m) for m in (0, 120, 300)]
    runs = [
        TaskRun("r1", "collect", State.SUCCESS, [StateHistory(State.RUNNING, ms[0]),
                                                 StateHistory(State.SUCCESS, ms[1])]),
        TaskRun("r2", "analyze", State.SUCCESS, [StateHistory(State.RUNNING, ms[1]),
                                                 StateHistory(State.SUCCESS, ms[2])]),
    ]  # fmt: skip
    frame = tables.task_runs_frame(_execution("e", T0, State.SUCCESS, runs))
    fig = charts.gantt_figure(frame)
    assert fig.layout.xaxis.ticksuffix == " ms"
    assert [list(tr.text) for tr in fig.data] == [["120 ms", "180 ms"]]
    assert [list(tr.base) for tr in fig.data] == [[0.0, 120.0]]


# --- executions -----------------------------------------------------------------------------


def test_executions_frame_newest_first_and_running_duration_so_far():
    now = T0 + timedelta(minutes=10)
    old = _execution("old", T0, State.SUCCESS)
    running = Execution("run", "devops.loop", "devops-loop", State.RUNNING,
                        [StateHistory(State.CREATED, T0 + timedelta(minutes=5))])  # fmt: skip
    frame = tables.executions_frame([old, running], now=now)
    assert list(frame["id"]) == ["run", "old"]
    assert frame.loc[0, "duration_s"] == pytest.approx(300)
    assert frame.loc[1, "duration_s"] == pytest.approx(3)


def test_executions_frame_reads_service_and_trigger_from_inputs_or_labels():
    from_inputs = _execution("a", T0, State.SUCCESS)
    from_inputs.inputs = {"service": "payment-service", "triggered_by": "ci-bot", "scenario": "memory-leak"}
    from_labels = _execution("b", T0 - timedelta(minutes=1), State.SUCCESS)
    from_labels.labels = {"service": "user-service", "scenario": "db-timeouts"}
    frame = tables.executions_frame([from_inputs, from_labels], now=T0)
    assert list(frame["service"]) == ["payment-service", "user-service"]
    assert list(frame["triggered_by"]) == ["ci-bot", ""]
    assert list(frame["scenario"]) == ["memory-leak", "db-timeouts"]


def test_loop_progress_lists_pending_steps():
    runs = [TaskRun("r1", "collect", State.SUCCESS, [StateHistory(State.SUCCESS, T0)]),
            TaskRun("r2", "analyze", State.RUNNING, [StateHistory(State.RUNNING, T0)])]  # fmt: skip
    execution = _execution("e", T0, State.RUNNING, runs)
    steps = tables.loop_progress(execution)
    assert [s.task for s in steps][:3] == ["collect", "analyze", "summarize"]
    assert [s.state for s in steps][:3] == ["SUCCESS", "RUNNING", "pending"]
    assert tables.progress_fraction(execution) == pytest.approx(1 / len(LOOP_TASKS))
    assert tables.step_badge(steps[2]).color == "gray" and tables.step_badge(steps[0]).color == "green"


# --- labels ---------------------------------------------------------------------------------


def test_status_colours():
    assert fmt.verdict_badge("ROLLBACK").color == "red"
    assert fmt.verdict_badge("ESCALATE").color == "orange"
    assert fmt.verdict_badge("CONTINUE").color == "green"
    assert fmt.state_badge(State.PAUSED).color == "orange"
    assert fmt.state_badge("FAILED").color == "red"
    # a rollback that worked is no error (the ROLLBACK verdict says the deploy was bad); one that failed is
    assert fmt.status_badge("rolled back") == fmt.Badge("rolled back", "green", ":material/undo:")
    assert fmt.status_badge("rollback failed").color == "red"
    assert fmt.cell_style("ROLLBACK") == "color: #C62828; font-weight: 600"
    assert fmt.cell_style("PAUSED").startswith("color: #B26A00")


def test_every_deployment_status_is_in_the_filter_and_coloured():
    assert sorted(fmt.DEPLOYMENT_STATUSES) == sorted(s.value for s in DeploymentStatus)
    colours = {s: fmt.status_badge(s.value).color for s in DeploymentStatus}
    assert colours[DeploymentStatus.ROLLBACK_FAILED] == "red" and colours[DeploymentStatus.HEALTHY] == "green"
    assert colours[DeploymentStatus.ANALYZING] == "blue" and colours[DeploymentStatus.ESCALATED] == "orange"


def test_a_countdown_is_redrawn_every_second_only_while_it_counts_seconds():
    """A page that redraws every second costs an open browser tab a third of a core: minutes are
    redrawn every 10 s, and the switch to seconds comes before the last five minutes start."""
    minutes_left = T0 + timedelta(minutes=30)
    assert fmt.countdown_ticks_every_second(minutes_left, T0) is False
    switch = fmt.COUNTDOWN_SECONDS_FROM_S + fmt.COUNTDOWN_MINUTES_EVERY_S
    # the last redraw that counts minutes happens at most 10 s before the text must count seconds
    assert fmt.countdown_ticks_every_second(T0 + timedelta(seconds=switch + 1), T0) is False
    assert fmt.countdown_ticks_every_second(T0 + timedelta(seconds=switch), T0) is True
    # expired: the page reruns
    assert fmt.countdown_ticks_every_second(T0 + timedelta(seconds=-2), T0) is True
    assert fmt.countdown_ticks_every_second(None, T0) is False


def test_countdown_and_durations():
    now = T0
    assert fmt.countdown_text(T0 + timedelta(minutes=12, seconds=30), now) == "expires in 12 min"
    assert fmt.countdown_text(T0 + timedelta(minutes=4, seconds=30), now) == "expires in 4m 30s"
    assert fmt.countdown_text(T0 + timedelta(hours=2, minutes=5), now) == "expires in 2h 05m"
    assert fmt.countdown_text("2026-11-20T13:57:00Z", now) == "expired 3m 00s ago"
    assert fmt.countdown_text(None, now) == "no deadline"
    assert fmt.format_duration(0.25) == "250 ms"
    assert fmt.format_duration(75) == "1m 15s"
    assert fmt.format_duration(None) == "—"


def test_kpi_tiles_from_store_kpis():
    kpis = DashboardKpis("2026-11-20", 5, 4, 2, 1, 3, 0.5, 95.0, 0, mean_loop_time_s=10.4)
    tiles = {t.label: t.value for t in tables.kpi_tiles(kpis)}
    assert tiles == {
        "Deployments today": "4",
        "Rollbacks": "2",
        "Pending approvals": "3",
        "Without a human": "50%",
        "Loop time": "10.4 s",  # the loop's own time to a decision
        "Human wait": "1m 35s",  # how long people took, apart
    }


def test_calibration_bins_mean_confidence_and_hold_rate():
    records = [{"confidence": 0.95, "held": True}, {"confidence": 0.85, "held": False},
               {"confidence": 0.15, "held": True}, {"confidence": None, "held": True}]  # fmt: skip
    frame = learning.calibration_frame(records)
    top = frame[frame["bin"] == "0.8–1.0"].iloc[0]
    assert top["n"] == 2 and top["held"] == 0.5 and top["stated"] == pytest.approx(0.9)
    assert frame["n"].sum() == 3
    assert learning.calibration_frame(pd.DataFrame(records)).equals(frame)


# --- read models on a real store ------------------------------------------------------------


@pytest.fixture
def finished_runs(settings):
    from console.engines.embedded.runner import EmbeddedEngine

    engine = EmbeddedEngine(settings, recover=False)
    for scenario in ("memory-leak", "healthy-hotfix", "dependency-outage"):
        engine.run_sync(scenario=scenario, triggered_by="t", timeout=60)
    from console.access.approvals import ApprovalService
    from console.access.auth import Identity, Role

    approvals = ApprovalService(engine.store, engine, settings)
    for item in approvals.pending():
        approvals.vote(item["id"], Identity("alice", Role.APPROVER), False, "not now")
    for ex in engine.store.executions.search()[0]:
        engine.wait(ex.id, timeout=60)
    yield engine
    engine.close()


def test_learning_frame_matches_outcome_records(finished_runs, settings):
    store = finished_runs.store
    records = store.outcomes.records()
    frame = learning.learning_frame(store.outcomes.learning_rows())
    assert len(frame) == len(records) >= 3
    by_id = {r["execution_id"]: r for r in records}
    for row in frame.to_dict("records"):
        rec = by_id[row["execution_id"]]
        assert row["verdict"] == rec["decision"]["verdict"]
        assert row["confidence"] == pytest.approx(rec["decision"]["confidence"])
        assert row["held"] == rec["outcome"]["held"]
        assert row["approval"] == rec["approval"]["status"]
        assert row["actions"] == [a["name"] for a in rec["decision"]["actions"]]
    # incremental read: nothing new after the last rowid, everything after 0
    assert learning.learning_frame(store.outcomes.learning_rows(after=int(frame["seq"].max()))).empty
    assert learning.merge_learning(frame, frame.tail(1)).shape == frame.shape


def test_learning_frame_reads_the_small_column_and_falls_back_for_older_rows(finished_runs):
    store = finished_runs.store
    with store.db.read() as conn:
        assert conn.execute("SELECT COUNT(*) FROM outcomes WHERE learning IS NULL").fetchone()[0] == 0
    from_column = learning.learning_frame(store.outcomes.learning_rows()).drop(columns="seq")
    with store.db.write() as conn:  # rows recorded before the column existed (their records were inline)
        for execution_id, record in conn.execute("SELECT execution_id, record FROM outcomes").fetchall():
            whole = store.documents.unpack(json.loads(record), conn)
            conn.execute(
                "UPDATE outcomes SET learning = NULL, record = ? WHERE execution_id = ?",
                (json.dumps(whole), execution_id),
            )
    from_records = learning.learning_frame(store.outcomes.learning_rows()).drop(columns="seq")
    assert from_column.sort_values("execution_id").to_dict("records") == from_records.sort_values(
        "execution_id"
    ).to_dict("records")


def test_a_store_from_before_the_learning_column_is_upgraded_in_place(tmp_path):
    import sqlite3

    from console.storage import Store

    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute(
            "CREATE TABLE outcomes (execution_id TEXT PRIMARY KEY, deployment_id TEXT, "
            "record TEXT NOT NULL, recorded_at TEXT NOT NULL)"
        )
        conn.execute(
            "INSERT INTO outcomes VALUES ('old-1', 'd', '{\"decision\": {\"verdict\": \"CONTINUE\"}}', 't')"
        )
    store = Store(path)
    frame = learning.learning_frame(store.outcomes.learning_rows())
    assert list(frame["execution_id"]) == ["old-1"] and list(frame["verdict"]) == ["CONTINUE"]
    store.close()


@pytest.mark.parametrize("threshold", [0.0, 0.5, 0.8, 1.0])
def test_whatif_matches_plan_actions_on_full_decisions(finished_runs, settings, threshold):
    records = finished_runs.store.outcomes.records()
    routed = learning.whatif_frame(
        learning.learning_frame(finished_runs.store.outcomes.learning_rows()), settings, threshold
    )
    expected = [
        plan_actions(Decision.from_dict(r["decision"]), settings, threshold=threshold) for r in records
    ]
    assert list(routed["whatif_needs_human"]) == [p.needs_approval for p in expected]
    assert list(routed["whatif_auto"]) == [len(p.auto) for p in expected]


def test_votes_from_learning_feed_the_agreement_table(finished_runs):
    frame = learning.learning_frame(finished_runs.store.outcomes.learning_rows())
    votes = learning.votes_from_learning(frame)
    assert votes and all(v["approved"] is False for v in votes)
    table = learning.agreement_by_action(votes)
    assert (table["agreement"] == 0).all()


def test_execution_decision_reads_the_verdict_and_evidence_of_a_finished_run(finished_runs):
    leak = next(
        ex for ex in finished_runs.store.executions.search()[0] if ex.labels.get("scenario") == "memory-leak"
    )
    execution = finished_runs.get_execution(leak.id)
    decision = tables.execution_decision(execution)
    assert decision is not None and decision.verdict.value == "ROLLBACK"
    evidence = tables.evidence_frame(decision)
    assert "High ▲" in set(evidence["result"])


def test_md_escape_neutralises_markdown_and_directives():
    hostile = "svc**x** [click](http://evil) :red[alarm] <b>hi</b> `code` $x$"
    escaped = fmt.md_escape(hostile)
    for token in ("**", "[click]", ":red[", "<b>", "`code`", "$x$"):
        assert token not in escaped
    assert fmt.plain(escaped) == hostile


MD_TRICKY = [
    "[Re-login](http://127.0.0.1:9/phish) ![t](http://127.0.0.1:9/t.png)",
    "www.example.com WWW.Example.org wwwx",
    "http://a.example HTTPS://B.example ftp://c.example",
    "alice@example.com mailto:bob@example.com",
    "<http://a.example> <img src=x onerror=alert(1)> &amp; &#64; &lt;",
    ":smile: :material/lock: :red[x] $x^2$ \\(y\\)",
    "# h1\n- item\r\n1. one\u2028> quote",
    "bidi \u202e gnp.exe zero\u200bwidth \x00nul \x1b[31m",
    "\\[already escaped\\]",
]


@pytest.mark.parametrize("text", MD_TRICKY)
def test_md_escape_tricky_inputs(text):
    escaped = fmt.md_escape(text)
    # every ASCII punctuation character is escaped: nothing the Markdown parser can act on
    unescaped = re.sub(r"\\.", "", escaped)
    assert not [ch for ch in unescaped if ch in string.punctuation], escaped
    # autolinks found in the parsed text: never at the start or after whitespace/punctuation
    shown = re.sub(r"\\(.)", r"\1", escaped)
    for match in re.finditer(r"(?i)www|https?|@", shown):
        assert match.start() > 0 and shown[match.start() - 1] == fmt.WORD_JOINER, (shown, match)
    for match in re.finditer(":", shown):
        assert shown[match.end() : match.end() + 1] == fmt.WORD_JOINER
    # one line, no control or invisible format characters but the word joiners
    assert not [ch for ch in escaped if unicodedata.category(ch) in ("Cc", "Zl", "Zp") and ch != "\t"]
    assert not [ch for ch in escaped if unicodedata.category(ch) == "Cf" and ch != fmt.WORD_JOINER]
    # and what it renders as is the text, line breaks as spaces, invisible characters dropped
    expected = "".join(
        " " if unicodedata.category(ch) in ("Cc", "Zl", "Zp") and ch != "\t" else ch
        for ch in text
        if unicodedata.category(ch) != "Cf"
    )
    assert " ".join(fmt.plain(escaped).split()) == " ".join(expected.split())


@pytest.mark.parametrize(
    "value",
    ['=HYPERLINK("http://x","y")', "+1+1", "-2+3", "@SUM(A1)", "\tx", "\rx", "\n=x", "  =1", "＝1"],
)
def test_csv_cell_neutralises_formulas(value):
    assert fmt.csv_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["alice", "ci-bot", "a=b", "", 3, -2.5, None])
def test_csv_cell_leaves_other_values(value):
    assert fmt.csv_cell(value) == value


def test_audit_csv_has_no_formula_cells(tmp_path):
    import csv
    import io

    from console.storage import Store

    store = Store(tmp_path / "audit.sqlite3")
    try:
        hostile = [
            '=HYPERLINK("http://127.0.0.1:9","x")',
            "+cmd|' /C calc'!A0",
            "-1+1",
            "@SUM(1)",
            "\tx",
            "\rx",
            "ok\r=1+1",  # a line break must not start a row with a formula
        ]
        for text in hostile:
            store.audit.record(text, "approval.requested", "ap-1", {"comment": "c"})
            store.audit.record("bob", "approval.rejected", "ap-1", {"comment": text})
        frame = tables.audit_frame(store.audit.trail())
    finally:
        store.close()
    rows = list(csv.reader(io.StringIO(tables.csv_bytes(frame).decode(), newline="")))
    assert rows[0] == ["seq", "at", "actor", "event", "subject", "detail"]
    cells = [cell for row in rows[1:] for cell in row]
    assert not [c for c in cells if c.lstrip(" ").startswith(("=", "+", "-", "@", "\t", "\r"))], cells
    assert all(len(row) == 6 for row in rows), rows
    assert {r[2] for r in rows[1:]} >= {"'" + text for text in hostile if text != "ok\r=1+1"} | {"ok\r=1+1"}


def test_learning_says_how_much_of_it_is_simulated():
    assert learning.provenance_note(0, 0) is None
    assert learning.provenance_note(5, 0) is None  # all measured on running services
    assert learning.provenance_note(3, 3).startswith("All 3 recorded decisions come from demo scenarios")
    mixed = learning.provenance_note(10, 4)
    assert mixed.startswith("4 of 10 recorded decisions come from demo scenarios")
    assert "6 were measured on running services" in mixed
