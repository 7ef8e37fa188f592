"""Concurrency: parallel launches on the embedded engine, then a storm of simultaneous decisions.

Test-sized versions of ``benchmarks/bench_concurrency.py`` (which runs 200 of each and prints
throughput and latency).
"""

from __future__ import annotations

import itertools
import sqlite3
from collections import Counter

import pytest

from console.access.approvals import ApprovalService
from console.domain.executions import State
from console.engines.embedded.runner import EmbeddedEngine
from console.storage import Store
from tests.reliability.load import (
    FINISHING,
    PAUSING,
    Readers,
    check_decisions,
    decide_storm,
    launch_parallel,
    wait_all,
)

LAUNCHES = 36
THREADS = 20


@pytest.fixture
def engine(settings):
    store = Store(settings.db_path)
    engine = EmbeddedEngine(settings, store, max_workers=2)
    yield engine
    engine.close()
    store.close()


def _no_sqlite_error_anywhere(engine: EmbeddedEngine) -> None:
    """No execution failed on, and no log line mentions, a database error."""
    rows = engine.store.db.conn.execute(
        "SELECT execution_id, message FROM logs WHERE message LIKE '%database is%' "
        "OR message LIKE '%sqlite%' OR message LIKE '%locked%' OR message LIKE '%OperationalError%' "
        "OR message LIKE '%busy%' OR message LIKE '%internal error%'"
    ).fetchall()
    assert [dict(r) for r in rows] == []


def test_parallel_launches_are_all_recorded_and_finish(engine):
    scenarios = list(itertools.islice(itertools.cycle(PAUSING + FINISHING), LAUNCHES))
    with Readers(engine, None) as readers:  # pages keep reading meanwhile
        report = launch_parallel(engine, scenarios, threads=THREADS)
        states = wait_all(engine, report.ids, timeout=120)
    assert report.errors == []
    assert readers.errors == [] and len(readers.latencies_s) > 0
    assert len(report.ids) == len(set(report.ids)) == LAUNCHES

    assert all(s.terminal or s == State.PAUSED for s in states.values()), Counter(states.values())
    assert Counter(states.values()) == Counter(
        {
            State.PAUSED: sum(s in PAUSING for s in scenarios),
            State.SUCCESS: sum(s in FINISHING for s in scenarios),
        }
    )
    page = engine.search_executions(size=500)
    assert page.total == LAUNCHES and {e.id for e in page.items} == set(report.ids)
    launched = [r for r in engine.store.audit.trail(limit=1000) if r["event"] == "execution.launched"]
    assert sorted(r["subject"] for r in launched) == sorted(report.ids)
    # one deployment row and at most one approval per execution, one approval per paused one
    for execution_id, state in states.items():
        assert engine.store.deployments.for_execution(execution_id) is not None
        approvals = engine.store.db.conn.execute(
            "SELECT COUNT(*) FROM approvals WHERE execution_id = ?", (execution_id,)
        ).fetchone()[0]
        assert approvals == (1 if state == State.PAUSED else 0)
    _no_sqlite_error_anywhere(engine)


def test_decision_storm_exactly_one_decision_per_approval(engine, settings):
    scenarios = list(itertools.islice(itertools.cycle(PAUSING), 30))
    report = launch_parallel(engine, scenarios, threads=10)
    assert report.errors == []
    wait_all(engine, report.ids, timeout=120)
    service = ApprovalService(engine.store, engine, settings)
    pending = service.pending()
    assert len(pending) == len(scenarios)
    ids = [p["id"] for p in pending]
    assert Counter(p["required_approvals"] for p in pending)[2] > 0, (
        "a CRITICAL two-approver item is included"
    )

    with Readers(engine, service) as readers:
        attempts, _ = decide_storm(service, ids, threads=THREADS, seed=7, collide_every=3)
    assert readers.errors == []
    problems = check_decisions(service, ids, attempts)
    assert problems == []
    outcomes = Counter(a.outcome.split(":")[0] for a in attempts)
    assert outcomes["refused"] > 0, "collisions happened (same item decided at once)"
    requested_by = {p["id"]: p["requested_by"] for p in pending}
    own = [a for a in attempts if a.actor == requested_by[a.approval_id]]
    assert all(a.outcome.startswith("refused:") for a in own), "a requester decided their own request"

    # every decision reached the engine: all executions run to the end
    states = wait_all(engine, report.ids, timeout=120)
    assert set(states.values()) == {State.SUCCESS}, Counter(states.values())
    assert (
        engine.store.db.conn.execute(
            "SELECT COUNT(*) FROM approvals WHERE resume_state != 'done'"
        ).fetchone()[0]
        == 0
    )
    _no_sqlite_error_anywhere(engine)


def test_the_audit_trail_cannot_be_rewritten_under_load(engine, settings):
    """Append-only holds for every connection, including one opened behind the console's back."""
    report = launch_parallel(engine, PAUSING * 2, threads=5)
    wait_all(engine, report.ids, timeout=60)
    raw = sqlite3.connect(engine.store.db.path)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            raw.execute("UPDATE audit SET actor = 'mallory'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            raw.execute("DELETE FROM audit")
    finally:
        raw.close()


def test_the_storm_checker_catches_a_double_decision(engine, settings):
    """The invariant checker itself fails on a doctored history (two callers told they decided)."""
    report = launch_parallel(engine, ["memory-leak"], threads=1)
    wait_all(engine, report.ids, timeout=60)
    service = ApprovalService(engine.store, engine, settings)
    [item] = service.pending()
    attempts, _ = decide_storm(service, [item["id"]], threads=2, seed=1)
    assert check_decisions(service, [item["id"]], attempts) == []
    winner = next(a for a in attempts if a.outcome in ("approved", "rejected"))
    doubled = [*attempts, winner]
    problems = check_decisions(service, [item["id"]], doubled)
    assert any("2 callers were told they decided it" in p for p in problems)
    assert any("audit events" in p for p in problems)
