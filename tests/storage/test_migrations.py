"""The schema is versioned (PRAGMA user_version, one ordered list of migrations) and older files are
upgraded in place with their rows."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from console.engines.embedded.runner import EmbeddedEngine
from console.presentation.learning import learning_frame
from console.settings import Settings
from console.storage import SchemaTooNew, Store, migrations
from tests.conftest import HEALTHY_SCENARIO, run_paused


def _version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA user_version").fetchone()[0]
    finally:
        conn.close()


def _columns(store: Store, table: str) -> set[str]:
    return {row[1] for row in store.db.conn.execute(f"PRAGMA table_info({table})")}


def test_a_new_file_gets_every_migration_and_the_latest_version(settings: Settings):
    store = Store(settings.db_path)
    try:
        assert store.db.schema_version == migrations.LATEST == _version(settings.db_path)
        assert "learning" in _columns(store, "outcomes")
    finally:
        store.close()
    assert [m.version for m in migrations.MIGRATIONS] == list(range(1, migrations.LATEST + 1))


def test_a_database_of_before_versioning_is_upgraded_with_its_rows(settings: Settings):
    """Today's schema at user_version 0 (every file written before versioning), with real rows."""
    engine = EmbeddedEngine(settings, synchronous=True)
    engine.run_sync(scenario=HEALTHY_SCENARIO, triggered_by="alice")
    execution, approval = run_paused(engine)
    before = {
        "executions": engine.store.executions.search()[1],
        "outcomes": engine.store.outcomes.records(),
        "approval": engine.store.approvals.get(approval["id"]),
        "audit": engine.store.audit.trail(),
        "deployments": engine.store.deployments.list(),
    }
    engine.close()
    engine.store.close()
    raw = sqlite3.connect(settings.db_path)
    raw.execute("PRAGMA user_version = 0")
    raw.close()
    assert _version(settings.db_path) == 0

    reopened = EmbeddedEngine(settings, synchronous=True)
    try:
        store = reopened.store
        assert store.db.schema_version == migrations.LATEST == _version(settings.db_path)
        assert store.executions.search()[1] == before["executions"]
        assert store.outcomes.records() == before["outcomes"]
        assert store.approvals.get(approval["id"]) == before["approval"]
        assert store.audit.trail() == before["audit"]
        assert store.deployments.list() == before["deployments"]
        # and it keeps working: the paused run resumes, a new one runs
        reopened.resume(execution.id, approved=True, comment="", approver="bob")
        assert reopened.get_execution(execution.id).outputs["deployment_status"] == "rolled back"
        assert reopened.run_sync(scenario=HEALTHY_SCENARIO, triggered_by="alice").state.value == "SUCCESS"
    finally:
        reopened.close()


def test_a_database_from_before_the_learning_column_gets_it_with_its_rows(tmp_path: Path):
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    migrations.MIGRATIONS[0].apply(conn)  # the schema as first released: no outcomes.learning
    conn.execute(
        "INSERT INTO outcomes (execution_id, deployment_id, record, recorded_at) VALUES (?, ?, ?, ?)",
        (
            "old-1",
            "d",
            '{"decision": {"verdict": "ROLLBACK", "confidence": 0.9}, "outcome": {"held": true}}',
            "t",
        ),
    )
    conn.close()
    store = Store(path)
    try:
        assert "learning" in _columns(store, "outcomes") and store.db.schema_version == migrations.LATEST
        [row] = learning_frame(store.outcomes.learning_rows()).drop(columns="seq").to_dict("records")
        assert row == {
            "execution_id": "old-1",
            "verdict": "ROLLBACK",
            "confidence": 0.9,
            "actions": [],
            "approval_actions": [],
            "approval": "",
            "held": True,
        }
    finally:
        store.close()


def test_several_processes_opening_an_old_file_at_once_upgrade_it_once(tmp_path: Path):
    path = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(path, isolation_level=None)
    migrations.MIGRATIONS[0].apply(conn)
    conn.close()
    errors: list[BaseException] = []
    stores: list[Store] = []

    def open_it() -> None:
        try:
            stores.append(Store(path))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == [] and len(stores) == 6
    assert {s.db.schema_version for s in stores} == {migrations.LATEST}
    assert "learning" in _columns(stores[0], "outcomes")
    for s in stores:
        s.close()


def test_a_file_from_a_newer_console_is_refused_with_one_line(tmp_path: Path):
    path = tmp_path / "new.sqlite3"
    Store(path).close()
    raw = sqlite3.connect(path)
    raw.execute(f"PRAGMA user_version = {migrations.LATEST + 1}")
    raw.close()
    newer = migrations.LATEST + 1
    with pytest.raises(SchemaTooNew, match=rf"schema version {newer}, newer than this console"):
        Store(path)


def test_a_file_of_version_2_keeps_each_snapshot_once_compressed_and_drops_per_service_points(
    tmp_path: Path,
):
    """Version 2 kept each snapshot as a plain-JSON artifact and every metric point per service;
    migration 3 moves the snapshot into the documents table, points the deployment at it, and
    drops the artifacts and the per-service points (two runs of one service interleaved there)."""
    import json

    from tests.conftest import MOCK_DATA

    snapshot = json.loads((MOCK_DATA / f"{HEALTHY_SCENARIO}.json").read_text())
    path = tmp_path / "v2.sqlite3"
    raw = sqlite3.connect(path)
    for migration in migrations.MIGRATIONS[:2]:
        migration.apply(raw)
    raw.execute(
        "INSERT INTO deployments (id, ref, service, version, deployed_at, execution_id, status, created_at, "
        "updated_at) VALUES ('d-1', 'd', 'checkout', 'v2', '2026-01-01T00:00:00Z', 'ex-1', 'healthy', "
        "'2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')"
    )
    raw.execute("INSERT INTO artifacts VALUES ('ex-1', 'snapshot', ?)", (json.dumps(snapshot),))
    raw.execute("INSERT INTO metric_points VALUES ('checkout', 'error_rate', 1.0, 0.5, 'd-1')")
    raw.execute("PRAGMA user_version = 2")
    raw.commit()
    raw.close()

    store = Store(path)
    try:
        assert store.db.schema_version == migrations.LATEST
        tables = {r[0] for r in store.db.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        assert "artifacts" not in tables and "metric_points" not in tables
        deployment = store.deployments.get("d-1")
        assert store.deployments.snapshot(deployment) == snapshot
        assert deployment["engine"] == "embedded" and deployment["running_version"] == "v2"
        count, size = store.documents.stored_bytes("snapshot")
        assert count == 1 and size < len(json.dumps(snapshot)) / 3
    finally:
        store.close()
