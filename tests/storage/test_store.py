"""Store: documents stored once, listing speed at 100,000 executions, lock handling."""

from __future__ import annotations

import json
import sqlite3
import threading
from datetime import UTC, datetime, timedelta

import pytest

from console.storage import Store, StoreBusy, dumps
from console.storage.codec import pack
from console.storage.documents import DocumentMissing


def test_documents_are_stored_once_compressed_and_read_back_whole(store):
    decision = {"verdict": "ROLLBACK", "summary": "memory climbs " * 80, "metrics": [{"name": "x"}] * 20}
    small = {"verdict": "CONTINUE"}
    with store.db.write() as conn:
        packed = pack(conn, {"analyze": {"decision": decision}, "again": {"decision": dict(decision)},
                             "tiny": {"decision": small}, "list": [{"decision": decision}]})  # fmt: skip
    ref = packed["analyze"]["decision"]
    assert set(ref) == {"$doc"} and packed["again"]["decision"] == ref == packed["list"][0]["decision"]
    assert packed["tiny"]["decision"] == small  # too small to be worth a document
    count, size = store.documents.stored_bytes()
    assert count == 1 and size < len(json.dumps(decision)) / 3
    assert store.documents.unpack(packed) == {
        "analyze": {"decision": decision},
        "again": {"decision": decision},
        "tiny": {"decision": small},
        "list": [{"decision": decision}],
    }
    whole = store.documents.get(ref["$doc"])
    whole["verdict"] = "changed by a caller"
    assert store.documents.get(ref["$doc"])["verdict"] == "ROLLBACK"  # callers get private copies
    with pytest.raises(DocumentMissing, match="missing"):
        store.documents.get("0" * 32)


def unindexed_reads(store: Store, call) -> tuple[object, list[str]]:
    """Run ``call`` and return (its result, each query it ran that reads a table with no index:
    the query's text and SQLite's plan line). What keeps a read fast on 100k rows is that none does;
    how fast it is on this machine is benchmarks/bench_scale.py's to say."""
    statements: list[str] = []
    store.db.conn.set_trace_callback(statements.append)
    try:
        result = call()
    finally:
        store.db.conn.set_trace_callback(None)
    assert statements, "the call ran no query on store.db.conn"
    full_scans = []
    for sql in statements:
        if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
            continue
        steps = [row[3] for row in store.db.conn.execute("EXPLAIN QUERY PLAN " + sql)]
        derived = {step.split()[-1] for step in steps if step.startswith(("MATERIALIZE ", "CO-ROUTINE "))}
        for step in steps:  # "SCAN <table>" with no index; a derived table's rows are already few
            words = step.split()
            if words[0] == "SCAN" and len(words) == 2 and words[1] not in derived:
                full_scans.append(f"{step}: {' '.join(sql.split())[:200]}")
    return result, full_scans


def _fill_executions(store: Store, n: int) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    states = ["SUCCESS", "FAILED", "PAUSED", "RUNNING"]
    rows = []
    for i in range(n):
        start = (base + timedelta(seconds=i)).isoformat().replace("+00:00", "Z")
        rows.append(
            (
                f"e{i:06d}",
                "devops.loop",
                "devops-loop",
                states[i % 4],
                start,
                start,
                dumps({"service": f"s{i % 7}"}),
                dumps({"launched_by": "x"}),
                dumps([{"state": "CREATED", "date": start}]),
            )
        )
    with store.db.write() as conn:
        conn.executemany(
            "INSERT INTO executions (id, namespace, flow_id, state, start_date, updated_at, inputs, "
            "labels, histories)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def test_listing_stays_fast_with_100k_executions(store):
    _fill_executions(store, 100_000)
    for label, kwargs in {
        "first page": {},
        "page 1000": {"page": 1000, "size": 50},
        "PAUSED only": {"states": ["PAUSED"]},
        "FAILED page 200": {"states": ["FAILED"], "page": 200},
    }.items():
        (items, total), full_scans = unindexed_reads(
            store, lambda kwargs=kwargs: store.executions.search(**kwargs)
        )
        assert len(items) == 50
        assert full_scans == [], label
    assert total == 25_000
    deep, _ = store.executions.search(page=1000, size=50)
    assert [e.id for e in deep] == [f"e{i:06d}" for i in range(50049, 49999, -1)]
    items, _ = store.executions.search(states=["PAUSED"])
    assert items[0].id == "e099998" and all(e.state.value == "PAUSED" for e in items)
    plan = " ".join(
        r[3]
        for r in store.db.conn.execute(
            "EXPLAIN QUERY PLAN SELECT id FROM executions WHERE state IN (?) "
            "ORDER BY start_date DESC, id DESC LIMIT 50",
            ["PAUSED"],
        )
    )
    assert "COVERING INDEX ix_executions_state_list" in plan


def test_busy_database_gives_a_clear_error_not_a_lock_error(settings, monkeypatch):
    import console.storage.database as database_module

    monkeypatch.setattr(database_module, "BUSY_TIMEOUT_MS", 50)
    store = Store(settings.db_path)
    blocker = sqlite3.connect(settings.db_path, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreBusy, match="busy; please try again"), store.db.write():
            pass
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    with store.db.write() as conn:  # the lock is gone: writes work again
        conn.execute("INSERT INTO audit (at, actor, event) VALUES ('now', 'x', 'y')")


def test_concurrent_writers_from_many_threads_all_land(store):
    def write(i):
        for j in range(20):
            store.audit.record(f"t{i}", "test.write", str(j), {})

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert store.db.conn.execute("SELECT COUNT(*) FROM audit").fetchone()[0] == 120


def test_connections_of_finished_threads_are_closed(store):
    def read():
        store.executions.search()

    for _ in range(30):  # like Streamlit, one short-lived thread per script run
        t = threading.Thread(target=read)
        t.start()
        t.join()
    read()
    assert store.db.open_connections() <= 3


def test_dashboard_reads_stay_fast_with_100k_deployments(store):
    now = datetime.now(UTC)
    statuses = ["healthy", "rolled back", "escalated", "awaiting approval"]
    rows = []
    for i in range(100_000):
        at = (now - timedelta(minutes=i)).isoformat().replace("+00:00", "Z")
        rows.append(
            (
                f"d{i}",
                f"r{i}",
                f"svc{i % 40}",
                "v1",
                at,
                f"e{i}",
                "CONTINUE",
                "LOW",
                0.9,
                "auto",
                statuses[i % 4],
                at,
                at,
            )
        )
    with store.db.write() as conn:
        conn.executemany(
            "INSERT INTO deployments (id, ref, service, version, deployed_at, execution_id, verdict, "
            "severity, confidence, approval, status, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    for label, call in {
        "dashboard_kpis": lambda: store.deployments.dashboard_kpis(now),
        "latest_decisions": lambda: store.deployments.latest_decisions(10),
        "service_health": store.deployments.service_health,
        "list_deployments(service)": lambda: store.deployments.list(service="svc7", limit=50),
    }.items():
        result, full_scans = unindexed_reads(store, call)
        assert result
        assert full_scans == [], label
    kpis = store.deployments.dashboard_kpis(now)
    today = now.hour * 60 + now.minute + 1  # one deployment per minute since midnight
    assert kpis.deployments_today == today
    assert len(store.deployments.service_health()) == 40


def test_overview_kpis_keep_the_loops_time_and_the_humans_apart_and_an_escalate_needs_a_human(store):
    now = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)
    rows = [  # id, scenario, verdict, approval, deployed_at, created_at, decided_at
        ("live", None, "CONTINUE", "not_required", "10:00:00", "10:00:01", "10:00:31"),  # 31 s
        ("esc", None, "ESCALATE", "auto", "10:05:00", "10:05:01", "10:05:41"),  # notify_only ran alone: 41 s
        # a recorded scenario's deploy is hours old in its data: its loop counts from the launch (2 s)
        ("demo", "memory-leak", "ROLLBACK", "approved", "09:20:00", "11:00:00", "11:01:02"),
    ]
    day = "2026-11-29T"
    with store.db.write() as conn:
        for key, scenario, verdict, approval, deployed, created, decided in rows:
            conn.execute(
                "INSERT INTO deployments (id, ref, service, version, deployed_at, execution_id, scenario, "
                "verdict, approval, status, created_at, decided_at, updated_at) "
                "VALUES (?, ?, 'svc', 'v2', ?, ?, ?, ?, ?, 'healthy', ?, ?, ?)",
                (key, key, f"{day}{deployed}Z", f"ex-{key}", scenario, verdict, approval, f"{day}{created}Z",
                 f"{day}{decided}Z", f"{day}{decided}Z"),
            )  # fmt: skip
        conn.execute(  # the scenario asked at 11:00:02; a human took a minute
            "INSERT INTO approvals (id, execution_id, service, actions, risk, required_approvals, "
            "requested_by, requested_at, expires_at, status, decided_at) VALUES ('ap-1', 'ex-demo', 'svc', "
            "'[]', 'HIGH', 1, 'ci-bot', ?, ?, 'approved', ?)",
            (f"{day}11:00:02Z", f"{day}11:30:02Z", f"{day}11:01:02Z"),
        )
    kpis = store.deployments.dashboard_kpis(now)
    assert kpis.mean_loop_time_s == pytest.approx((31 + 41 + 2) / 3, abs=0.01)
    assert kpis.mean_human_wait_s == pytest.approx(60, abs=0.01)
    assert kpis.auto_approved_share == pytest.approx(1 / 3)  # the ESCALATE asked for a human
