"""The schema, versioned: one ordered list of migrations, the file's ``PRAGMA user_version`` says
how many have run.

Opening a database runs the migrations it has not had yet, in order, in one ``BEGIN IMMEDIATE``
transaction (so two processes opening an old file at once upgrade it once), then sets
``user_version``. Migration 1 is the schema as it stood when versioning began; it only creates
what is missing, so a database of that time (``user_version`` 0, with its rows) is upgraded in
place. A new migration is appended with the next number; a released one is never edited.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass


class SchemaTooNew(RuntimeError):
    """The file was written by a newer console; the message is fit for operators."""


@dataclass(frozen=True)
class Migration:
    version: int
    what: str
    apply: Callable[[sqlite3.Connection], None]


def _statements(script: str) -> Iterator[str]:
    """The statements of a script, one at a time (a trigger's body keeps its inner semicolons)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            if statement.strip():
                yield statement.strip()
            statement = ""
    if statement.strip() and not statement.strip().startswith("--"):
        yield statement.strip()


def _script(script: str) -> Callable[[sqlite3.Connection], None]:
    def apply(conn: sqlite3.Connection) -> None:
        # one statement at a time: executescript would commit the migration's transaction first
        for statement in _statements(script):
            conn.execute(statement)

    return apply


def _add_column(table: str, column: str, kind: str) -> Callable[[sqlite3.Connection], None]:
    """ALTER TABLE ADD COLUMN, skipped when the column is there (files of before versioning that
    already had it)."""

    def apply(conn: sqlite3.Connection) -> None:
        present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
        if column not in present:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    return apply


SCHEMA_1 = """CREATE TABLE IF NOT EXISTS executions (
    id TEXT PRIMARY KEY,
    namespace TEXT NOT NULL,
    flow_id TEXT NOT NULL,
    state TEXT NOT NULL,
    start_date TEXT NOT NULL,
    end_date TEXT,
    updated_at TEXT NOT NULL,
    inputs TEXT NOT NULL DEFAULT '{}',
    outputs TEXT NOT NULL DEFAULT '{}',
    labels TEXT NOT NULL DEFAULT '{}',
    histories TEXT NOT NULL DEFAULT '[]',
    triggered_by TEXT,
    launch TEXT,
    owner TEXT,
    heartbeat_at TEXT
);
DROP INDEX IF EXISTS ix_executions_start;
DROP INDEX IF EXISTS ix_executions_state_start;
DROP INDEX IF EXISTS ix_executions_flow_start;
CREATE INDEX IF NOT EXISTS ix_executions_list ON executions (start_date DESC, id DESC);
CREATE INDEX IF NOT EXISTS ix_executions_state_list ON executions (state, start_date DESC, id DESC);
CREATE INDEX IF NOT EXISTS ix_executions_flow_list ON executions (flow_id, start_date DESC, id DESC);

CREATE TABLE IF NOT EXISTS task_runs (
    id TEXT PRIMARY KEY,
    execution_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    task_id TEXT NOT NULL,
    state TEXT NOT NULL,
    histories TEXT NOT NULL DEFAULT '[]',
    outputs TEXT NOT NULL DEFAULT '{}',
    UNIQUE (execution_id, seq)
);

CREATE TABLE IF NOT EXISTS execution_logs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    execution_id TEXT NOT NULL,
    task_id TEXT,
    task_run_id TEXT,
    ts TEXT NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_logs_execution ON execution_logs (execution_id, id);

CREATE TABLE IF NOT EXISTS deployments (
    id TEXT PRIMARY KEY,
    ref TEXT NOT NULL,
    service TEXT NOT NULL,
    version TEXT NOT NULL,
    previous_version TEXT,
    environment TEXT,
    deployed_at TEXT NOT NULL,
    deployed_by TEXT,
    execution_id TEXT UNIQUE,
    scenario TEXT,
    verdict TEXT,
    severity TEXT,
    confidence REAL,
    analyzer TEXT,
    summary TEXT,
    approval TEXT,
    status TEXT NOT NULL,
    created_at TEXT NOT NULL,
    decided_at TEXT,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_deployments_created ON deployments (created_at DESC);
CREATE INDEX IF NOT EXISTS ix_deployments_service ON deployments (service, created_at DESC);

CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY,
    execution_id TEXT NOT NULL,
    deployment_id TEXT,
    service TEXT NOT NULL,
    actions TEXT NOT NULL,
    risk TEXT NOT NULL,
    required_approvals INTEGER NOT NULL,
    requested_by TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    status TEXT NOT NULL,
    decided_at TEXT,
    decided_by TEXT,
    comment TEXT,
    verdict TEXT,
    severity TEXT,
    confidence REAL,
    decision TEXT NOT NULL DEFAULT '{}',
    resume_state TEXT,
    resume_error TEXT
);
CREATE INDEX IF NOT EXISTS ix_approvals_status ON approvals (status, expires_at);
CREATE INDEX IF NOT EXISTS ix_approvals_execution ON approvals (execution_id);
-- the Approvals page and the KPIs at 100k approvals (benchmarks/bench_scale.py, no ANALYZE): lists by
-- status newest first 450 -> 2 ms, decisions waiting to resume 156 -> 0 ms, time to decision 57 -> 5 ms
CREATE INDEX IF NOT EXISTS ix_approvals_requested ON approvals (requested_at DESC);
CREATE INDEX IF NOT EXISTS ix_approvals_status_requested ON approvals (status, requested_at DESC);
CREATE INDEX IF NOT EXISTS ix_approvals_resume ON approvals (resume_state, decided_at);
CREATE INDEX IF NOT EXISTS ix_approvals_decided ON approvals (decided_at);

CREATE TABLE IF NOT EXISTS approval_votes (
    approval_id TEXT NOT NULL,
    actor TEXT NOT NULL,
    approved INTEGER NOT NULL,
    comment TEXT,
    at TEXT NOT NULL,
    UNIQUE (approval_id, actor)
);

CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL,
    actor TEXT NOT NULL,
    event TEXT NOT NULL,
    subject TEXT,
    detail TEXT NOT NULL DEFAULT '{}'
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END;

CREATE TABLE IF NOT EXISTS outcomes (
    execution_id TEXT PRIMARY KEY,
    deployment_id TEXT,
    record TEXT NOT NULL,
    recorded_at TEXT NOT NULL
);

CREATE TABLE IF NOT EXISTS artifacts (
    execution_id TEXT NOT NULL,
    name TEXT NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (execution_id, name)
);

CREATE TABLE IF NOT EXISTS metric_points (
    service TEXT NOT NULL,
    metric TEXT NOT NULL,
    ts REAL NOT NULL,
    value REAL NOT NULL,
    deployment_id TEXT,
    PRIMARY KEY (service, metric, ts)
) WITHOUT ROWID;
"""


def _requesters(conn: sqlite3.Connection) -> None:
    """approvals.requested_by_source (how the requester is known), and the executions the console
    itself launched on an engine it does not own (Kestra), with who was signed in."""
    _add_column("approvals", "requested_by_source", "TEXT")(conn)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS console_launches ("
        "execution_id TEXT PRIMARY KEY, launched_by TEXT NOT NULL, source TEXT NOT NULL, "
        "at TEXT NOT NULL)"
    )


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "executions, task runs, logs, deployments, approvals, votes, audit, outcomes, "
              "artifacts, metric points", _script(SCHEMA_1)),
    Migration(2, "outcomes.learning: the few fields the Learning page reads, beside each record",
              _add_column("outcomes", "learning", "TEXT")),
    Migration(3, "approvals.requested_by_source and console_launches: who requested an approval and "
              "how the console knows it", _requesters),
)  # fmt: skip
LATEST = MIGRATIONS[-1].version
assert [m.version for m in MIGRATIONS] == list(range(1, LATEST + 1)), "migrations are numbered 1..N"


def schema_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, write: Callable[[], AbstractContextManager[sqlite3.Connection]]) -> int:
    """Bring the file to :data:`LATEST`; returns the version. ``write`` opens the store's write
    transaction; ``conn`` is only read (an up-to-date file takes no lock at all)."""
    version = schema_version(conn)
    if version > LATEST:
        raise SchemaTooNew(
            f"the console database has schema version {version}, newer than this console knows "
            f"({LATEST}); upgrade the console or point CONSOLE_DATA_DIR elsewhere"
        )
    if version == LATEST:
        return version
    with write() as tx:
        version = schema_version(tx)  # another process may have upgraded it meanwhile
        for migration in MIGRATIONS:
            if migration.version > version:
                migration.apply(tx)
        tx.execute(f"PRAGMA user_version = {LATEST}")
    return LATEST
