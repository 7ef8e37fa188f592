"""Scale smoke test: the store's page queries keep index plans (no full scans, no big sorts).

``benchmarks/bench_scale.py`` measures the pages with 100k executions; this
test seeds a small store the same way and checks the *query plans* of the reads the pages make, so
a change that would bring back a full scan (e.g. SELECT DISTINCT over every deployment, or a sort
of every decided approval) fails here in seconds instead of at 100k. The console never runs
ANALYZE, so neither does this test.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.bench_scale import seed_clones, seed_templates, service_names
from console.access.approvals import ApprovalService
from console.engines.embedded.runner import EmbeddedEngine
from console.settings import Settings
from console.storage import Store


@pytest.fixture(scope="module")
def seeded(tmp_path_factory) -> Iterator[Path]:
    saved = dict(os.environ)  # the seeding helpers point CONSOLE_* at the seeded directory
    try:
        data_dir = tmp_path_factory.mktemp("scale") / "data"
        seed_templates(data_dir)
        seed_clones(data_dir, 2000, service_names(5, []), days=7)
        yield data_dir
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _plans(conn: sqlite3.Connection, statements: list[str]) -> dict[str, str]:
    out = {}
    for sql in statements:
        if not sql.lstrip().upper().startswith(("SELECT", "WITH")):
            continue
        out[sql] = " | ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + sql))
    return out


def test_page_queries_use_indexes(seeded: Path):
    store = Store(seeded / "console.sqlite3")
    settings = Settings(data_dir=seeded)
    engine = EmbeddedEngine(settings, store, recover=False)
    service = ApprovalService(store, engine, settings)
    statements: list[str] = []
    store.db.conn.set_trace_callback(statements.append)
    try:
        assert store.db.conn.execute("SELECT COUNT(*) FROM executions").fetchone()[0] >= 2000
        services = store.deployments.services()
        assert len(services) >= 5
        newest = store.deployments.list(service=services[0], limit=50)
        assert newest and store.deployments.decision(newest[0]) is not None
        store.actions.for_execution(newest[0]["execution_id"])
        store.approvals.list(statuses=["pending"])
        decided = service.decided()
        assert decided and all(a["status"] != "pending" for a in decided)
        service.resume_failed()
        store.deployments.dashboard_kpis()
        store.executions.search(page=1, size=50)
        store.executions.search(page=30, size=50)
        store.deployments.list(limit=100)
        store.deployments.latest_decisions(10)
        store.approvals.overdue_ids()
        store.audit.trail(limit=1000)
    finally:
        store.db.conn.set_trace_callback(None)
    plans = _plans(store.db.conn, statements)
    assert plans, "no statement captured"
    problems = []
    for sql, plan in plans.items():
        text = " ".join(sql.split())
        ordered_limit = "LIMIT" in text and "TEMP B-TREE" not in plan  # stops after the page
        for table in ("actions", "approvals", "executions", "audit", "deployments", "documents"):
            after = plan.split(f"SCAN {table}")[1][:40] if f"SCAN {table}" in plan else None
            if after is not None and "USING" not in after and not ordered_limit:
                problems.append(f"full scan of {table}: {text[:140]} -> {plan}")
        # sorting is fine over a bounded subquery (at most `limit` rows per status), not over a table
        if "approvals" in text and "TEMP B-TREE FOR ORDER BY" in plan and "FROM (SELECT" not in text:
            problems.append(f"sort of approvals: {text[:140]} -> {plan}")
    engine.close()
    store.close()
    assert problems == []
