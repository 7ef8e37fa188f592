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

from console.storage.codec import put_document_in


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

SCHEMA_3 = """CREATE TABLE IF NOT EXISTS documents (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    size INTEGER NOT NULL,
    dictionary INTEGER NOT NULL DEFAULT 0,
    body BLOB NOT NULL
);

CREATE TABLE IF NOT EXISTS logs (
    execution_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    task_id TEXT,
    ts TEXT NOT NULL,
    level TEXT NOT NULL,
    message TEXT NOT NULL,
    PRIMARY KEY (execution_id, seq)
) WITHOUT ROWID;

CREATE TABLE IF NOT EXISTS actions (
    execution_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    name TEXT NOT NULL,
    risk TEXT,
    mode TEXT NOT NULL,
    status TEXT NOT NULL,
    simulated INTEGER NOT NULL DEFAULT 0,
    changed INTEGER NOT NULL DEFAULT 0,
    executor TEXT,
    label TEXT,
    detail TEXT,
    started_at TEXT,
    finished_at TEXT,
    result TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (execution_id, seq)
);

CREATE TABLE IF NOT EXISTS mirror_state (
    source TEXT PRIMARY KEY,
    cursor TEXT,
    last_attempt TEXT,
    last_success TEXT,
    last_error TEXT
);

CREATE TABLE IF NOT EXISTS mirrored_executions (
    execution_id TEXT PRIMARY KEY,
    flow_id TEXT NOT NULL,
    state TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    start_date TEXT,
    synced_at TEXT NOT NULL,
    gone INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS ix_mirrored_open ON mirrored_executions (gone, state);
"""

TASK_RUNS_3 = """CREATE TABLE task_runs_3 (
    execution_id TEXT NOT NULL,
    task_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    id TEXT NOT NULL,
    state TEXT NOT NULL,
    histories TEXT NOT NULL DEFAULT '[]',
    outputs TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (execution_id, task_id)
) WITHOUT ROWID;
INSERT INTO task_runs_3 (execution_id, seq, id, task_id, state, histories, outputs)
    SELECT execution_id, seq, id, task_id, state, histories, outputs FROM task_runs;
DROP TABLE task_runs;
ALTER TABLE task_runs_3 RENAME TO task_runs;
"""

_DEPLOYMENT_COLUMNS_3 = (
    ("engine", "TEXT"),
    ("source", "TEXT"),
    ("snapshot_ref", "TEXT"),
    ("decision_ref", "TEXT"),
    ("simulated", "INTEGER NOT NULL DEFAULT 0"),
    ("running_version", "TEXT"),
    ("measured_status", "TEXT"),
    ("expected_verdict", "TEXT"),
    ("expected_match", "INTEGER"),
    ("note", "TEXT"),
)


def _read_model_3(conn: sqlite3.Connection) -> None:
    """One read model for both engines: documents stored once, compressed (the snapshot of each
    deployment moves there from ``artifacts``), the deployment row says what its decision saw and
    what its actions did, an ``actions`` table, the Kestra mirror's cursor; metric points kept per
    service go (two runs of one service interleaved in them: a deployment's charts read its own
    snapshot now)."""
    _script(SCHEMA_3)(conn)
    for column, kind in _DEPLOYMENT_COLUMNS_3:
        _add_column("deployments", column, kind)(conn)
    present = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    if "execution_logs" in present:  # one index fewer: the lines are kept in the execution's order
        conn.execute(
            "INSERT OR IGNORE INTO logs (execution_id, seq, task_id, ts, level, message) "
            "SELECT execution_id, ROW_NUMBER() OVER (PARTITION BY execution_id ORDER BY id), task_id, ts, "
            "level, message FROM execution_logs"
        )
        conn.execute("DROP TABLE execution_logs")
    # task runs clustered by execution and found by (execution, task): no index besides the table
    _script(TASK_RUNS_3)(conn)
    if "artifacts" in present:
        import json

        rows = conn.execute("SELECT execution_id, body FROM artifacts WHERE name = 'snapshot'").fetchall()
        for execution_id, body in rows:
            key = put_document_in(conn, "snapshot", json.loads(body))
            conn.execute(
                "UPDATE deployments SET snapshot_ref = ? WHERE execution_id = ?", (key, execution_id)
            )
        conn.execute("DROP TABLE artifacts")
    conn.execute("DROP TABLE IF EXISTS metric_points")
    conn.execute(
        "UPDATE deployments SET engine = COALESCE(engine, 'embedded'), "
        "running_version = COALESCE(running_version, CASE WHEN status = 'rolled back' "
        "THEN COALESCE(previous_version, version) ELSE version END)"
    )


SCHEMA_4 = """CREATE TABLE IF NOT EXISTS notify_cursor (
    feed TEXT PRIMARY KEY,
    seq INTEGER NOT NULL
);
-- a database of before the outbox starts following its trail from now: its history is not replayed
INSERT OR IGNORE INTO notify_cursor (feed, seq) SELECT 'approvals', COALESCE(MAX(seq), 0) FROM audit;

CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    audit_seq INTEGER NOT NULL,
    channel TEXT NOT NULL,
    event TEXT NOT NULL,
    subject TEXT,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    lease_until TEXT,
    last_error TEXT,
    created_at TEXT NOT NULL,
    delivered_at TEXT,
    UNIQUE (audit_seq, channel)
);
CREATE INDEX IF NOT EXISTS ix_notifications_due ON notifications (status, next_attempt_at);
CREATE INDEX IF NOT EXISTS ix_notifications_subject ON notifications (subject, id);
-- an execution's story reads its audit rows by subject (the execution and its approval)
CREATE INDEX IF NOT EXISTS ix_audit_subject ON audit (subject, seq);
-- the newest incident (python -m console postmortem --latest): 92 -> 0.2 ms at 100k deployments
CREATE INDEX IF NOT EXISTS ix_deployments_verdict ON deployments (verdict, created_at);
"""

SCHEMA_5 = """CREATE TABLE IF NOT EXISTS inbound_deliveries (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    received_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    status TEXT NOT NULL,
    execution_id TEXT,
    attempts INTEGER NOT NULL DEFAULT 1,
    detail TEXT NOT NULL DEFAULT '{}',
    PRIMARY KEY (kind, key)
);
CREATE INDEX IF NOT EXISTS ix_inbound_received ON inbound_deliveries (received_at DESC);
CREATE INDEX IF NOT EXISTS ix_inbound_execution ON inbound_deliveries (execution_id);

CREATE TABLE IF NOT EXISTS incidents (
    id TEXT PRIMARY KEY,
    service TEXT NOT NULL,
    alert_key TEXT NOT NULL,
    status TEXT NOT NULL,
    severity TEXT NOT NULL,
    summary TEXT,
    execution_id TEXT,
    opened_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    resolved_at TEXT
);
-- at most one open incident per service and alert: a second firing alert attaches to it
CREATE UNIQUE INDEX IF NOT EXISTS ux_incidents_open ON incidents (service, alert_key) WHERE status = 'open';
CREATE INDEX IF NOT EXISTS ix_incidents_opened ON incidents (opened_at DESC);
CREATE INDEX IF NOT EXISTS ix_incidents_execution ON incidents (execution_id);

CREATE TABLE IF NOT EXISTS incident_alerts (
    incident_id TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    starts_at TEXT NOT NULL,
    status TEXT NOT NULL,
    ends_at TEXT,
    labels TEXT NOT NULL DEFAULT '{}',
    annotations TEXT NOT NULL DEFAULT '{}',
    first_seen_at TEXT NOT NULL,
    last_seen_at TEXT NOT NULL,
    PRIMARY KEY (incident_id, fingerprint, starts_at)
);
"""


SCHEMA_10 = """
CREATE TABLE IF NOT EXISTS sign_in_failures (
    key TEXT PRIMARY KEY,
    failures INTEGER NOT NULL,
    last_at REAL NOT NULL,
    locked_until REAL NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at REAL NOT NULL,
    ticket_hash TEXT UNIQUE,
    ticket_expires_at REAL,
    revoked_at TEXT
);
"""


SCHEMA_11 = """CREATE TABLE IF NOT EXISTS revision_events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL UNIQUE,
    service TEXT NOT NULL,
    version TEXT NOT NULL,
    kind TEXT NOT NULL,
    at TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL,
    execution_id TEXT,
    actor TEXT,
    window_start TEXT,
    window_end TEXT
);
CREATE INDEX IF NOT EXISTS ix_revision_events_service ON revision_events (service, at);
"""


SCHEMA_12 = """CREATE TABLE IF NOT EXISTS run_queue (
    execution_id TEXT PRIMARY KEY,
    due_at REAL NOT NULL,
    priority INTEGER NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    reason TEXT NOT NULL DEFAULT '',
    queued_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS ix_run_queue_due ON run_queue (due_at);
CREATE INDEX IF NOT EXISTS ix_run_queue_order ON run_queue (priority, due_at);
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
    Migration(3, "one read model for both engines: documents (snapshots, decisions) stored once and "
              "compressed, deployment columns, actions, the Kestra mirror's state; per-service metric "
              "points and artifacts go", _read_model_3),
    Migration(4, "notifications: the outbox that follows the audit trail (its cursor; one row per "
              "message and channel with its delivery status); audit rows by subject; deployments "
              "by verdict",
              _script(SCHEMA_4)),
    Migration(5, "inbound deliveries (idempotent webhooks), incidents and the alerts attached to them",
              _script(SCHEMA_5)),
    Migration(6, "approvals.requested_by_source and console_launches: who requested an approval and "
              "how the console knows it", _requesters),
    Migration(7, "outcomes.effect: the few fields action effectiveness reads, beside each record",
              _add_column("outcomes", "effect", "TEXT")),
    Migration(8, "deployments by scenario: the Scenarios page's latest run per scenario in one seek each",
              _script("CREATE INDEX IF NOT EXISTS ix_deployments_scenario "
                      "ON deployments (scenario, created_at DESC);")),
    Migration(9, "outcomes by effect: action effectiveness groups identical effects from the index alone",
              _script("CREATE INDEX IF NOT EXISTS ix_outcomes_effect ON outcomes (effect);")),
    Migration(10, "sign-in failures (per person and per address, persisted so a restart forgives "
              "nothing) and password sessions (the session cookie's server side)", _script(SCHEMA_10)),
    Migration(11, "revision events: every version seen running, with the evidence that makes it "
               "known-good or known-bad (the rollback target comes from them)", _script(SCHEMA_11)),
    Migration(12, "run_queue: a run that waits (a watched window, a backoff) or is due is a row with its "
              "wake-up time and priority, held by no worker", _script(SCHEMA_12)),
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
