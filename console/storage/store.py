"""SQLite storage for the embedded engine, approvals, the audit trail and the console's read models.

One file at ``settings.db_path``. WAL mode so readers never block the writer; one connection per
thread; every write runs in ``BEGIN IMMEDIATE`` (the write lock is taken up front, so a transaction
never fails half-way with "database is locked") and taking that lock is retried a bounded number of
times. If the database stays locked, :class:`StoreBusy` carries a one-line message for operators.

Listing queries read indexed scalar columns and only decode the small JSON columns of the rows on
the requested page, so they stay fast with 100,000 executions.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from console.domain.executions import Execution, LogEntry, State, StateHistory, TaskRun
from console.domain.models import format_time, highest_risk, parse_time
from console.domain.vocabulary import DeploymentStatus

SCHEMA = """
CREATE TABLE IF NOT EXISTS executions (
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
    recorded_at TEXT NOT NULL,
    learning TEXT
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

BUSY_TIMEOUT_MS = 5000
LOCK_RETRIES = 5


class StoreBusy(RuntimeError):
    """The database stayed locked by another writer; the message is fit for operators."""


def now_text() -> str:
    return format_time(datetime.now(UTC))


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def loads(text: str | None, default: Any = None) -> Any:
    if text is None or text == "":
        return default
    return json.loads(text)


@dataclass
class DashboardKpis:
    """Inputs of the dashboard's KPI tiles for one day (UTC)."""

    day: str
    executions_today: int
    deployments_today: int
    rollbacks_today: int
    escalations_today: int
    pending_approvals: int
    auto_approved_share: float | None
    """Share of today's decided deployments whose actions ran without a human."""
    mean_time_to_decision_s: float | None
    """Mean time from a request for approval to its final decision, for approvals decided today."""
    failed_today: int
    verdicts_today: dict[str, int] = field(default_factory=dict)


class Store:
    """Thread-safe access to the console's SQLite file."""

    def open_connections(self) -> int:
        with self._all_lock:
            return len(self._all)

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._all_lock = threading.Lock()
        conn = self._connect()
        conn.executescript(SCHEMA)
        self._add_missing_columns(conn)

    # Columns added after a table's first release: (table, column, type). CREATE TABLE IF NOT EXISTS
    # leaves an older database as it was, so these are added in place.
    _LATER_COLUMNS = (("outcomes", "learning", "TEXT"),)

    @classmethod
    def _add_missing_columns(cls, conn: sqlite3.Connection) -> None:
        for table, column, kind in cls._LATER_COLUMNS:
            present = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            if column not in present:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")

    # -- connections and transactions -------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
            with self._all_lock:
                # threads come and go (Streamlit runs each script run in a fresh thread): close the
                # connections of threads that have ended so they do not pile up
                alive = []
                for thread, other in self._all:
                    if thread.is_alive():
                        alive.append((thread, other))
                    else:
                        with suppress(sqlite3.Error):
                            other.close()
                alive.append((threading.current_thread(), conn))
                self._all = alive
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection, in autocommit mode (each read is its own snapshot)."""
        return self._connect()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: BEGIN IMMEDIATE (retried while locked), COMMIT, or ROLLBACK on error."""
        conn = self._connect()
        for attempt in range(LOCK_RETRIES):
            try:
                conn.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if attempt == LOCK_RETRIES - 1:
                    raise StoreBusy("the console database is busy; please try again in a moment") from None
                time.sleep(0.05 * (2**attempt))
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent read snapshot over several statements."""
        conn = self._connect()
        if conn.in_transaction:  # already inside this thread's write: it is consistent already
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def close(self) -> None:
        with self._all_lock:
            for _, conn in self._all:
                with suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()
        self._local = threading.local()

    # -- audit --------------------------------------------------------------------------------------

    @staticmethod
    def audit_in(
        conn: sqlite3.Connection, actor: str, event: str, subject: str | None, detail: dict[str, Any]
    ) -> None:
        conn.execute(
            "INSERT INTO audit (at, actor, event, subject, detail) VALUES (?, ?, ?, ?, ?)",
            (now_text(), actor, event, subject, dumps(detail)),
        )

    def audit(self, actor: str, event: str, subject: str | None, detail: dict[str, Any]) -> None:
        with self.write() as conn:
            self.audit_in(conn, actor, event, subject, detail)

    def audit_trail(
        self, *, subject: str | None = None, limit: int = 200, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Audit rows, newest first."""
        sql = "SELECT seq, at, actor, event, subject, detail FROM audit"
        args: list[Any] = []
        if subject is not None:
            sql += " WHERE subject = ?"
            args.append(subject)
        sql += " ORDER BY seq DESC LIMIT ? OFFSET ?"
        args += [limit, offset]
        return [{**dict(row), "detail": loads(row["detail"], {})} for row in self.conn.execute(sql, args)]

    # -- executions -----------------------------------------------------------------------------------

    def get_execution(self, execution_id: str, *, with_task_runs: bool = True) -> Execution | None:
        with self.read() as conn:
            row = conn.execute("SELECT * FROM executions WHERE id = ?", (execution_id,)).fetchone()
            if row is None:
                return None
            runs = (
                conn.execute(
                    "SELECT * FROM task_runs WHERE execution_id = ? ORDER BY seq", (execution_id,)
                ).fetchall()
                if with_task_runs
                else []
            )
        execution = _execution(row)
        execution.task_runs = [_task_run(r) for r in runs]
        return execution

    def execution_row(self, execution_id: str) -> sqlite3.Row | None:
        return self.conn.execute("SELECT * FROM executions WHERE id = ?", (execution_id,)).fetchone()

    def search_executions(
        self,
        *,
        states: list[State] | None = None,
        flow_id: str | None = None,
        page: int = 1,
        size: int = 50,
    ) -> tuple[list[Execution], int]:
        """Newest first, without task runs (like Kestra's search)."""
        page = max(1, int(page))
        size = max(1, min(int(size), 500))
        where: list[str] = []
        args: list[Any] = []
        if states:
            where.append(f"state IN ({','.join('?' * len(states))})")
            args += [State(s).value for s in states]
        if flow_id:
            where.append("flow_id = ?")
            args.append(flow_id)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        columns = "id, namespace, flow_id, state, start_date, inputs, outputs, labels, histories"
        with self.read() as conn:
            total = conn.execute(f"SELECT COUNT(*) FROM executions{clause}", args).fetchone()[0]  # noqa: S608
            # the page's ids come from a covering index (deep pages skip index entries, not rows)
            rows = conn.execute(
                f"SELECT {columns} FROM executions WHERE id IN ("  # noqa: S608 - clause built from constants
                f"SELECT id FROM executions{clause} ORDER BY start_date DESC, id DESC LIMIT ? OFFSET ?) "
                "ORDER BY start_date DESC, id DESC",
                [*args, size, (page - 1) * size],
            ).fetchall()
        return [_execution(r) for r in rows], total

    def execution_logs(self, execution_id: str) -> list[LogEntry]:
        rows = self.conn.execute(
            "SELECT ts, level, message, task_id, task_run_id FROM execution_logs "
            "WHERE execution_id = ? ORDER BY id",
            (execution_id,),
        )
        return [
            LogEntry(
                timestamp=parse_time(r["ts"]),
                level=r["level"],
                message=r["message"],
                task_id=r["task_id"],
                task_run_id=r["task_run_id"],
            )
            for r in rows
        ]

    @staticmethod
    def log_in(
        conn: sqlite3.Connection,
        execution_id: str,
        level: str,
        message: str,
        *,
        task_id: str | None = None,
        task_run_id: str | None = None,
    ) -> None:
        conn.execute(
            "INSERT INTO execution_logs (execution_id, task_id, task_run_id, ts, level, message) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (execution_id, task_id, task_run_id, now_text(), level, message),
        )

    # -- deployments and read models ----------------------------------------------------------------

    def list_deployments(
        self, *, service: str | None = None, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Deployments with their loop status, newest launch first."""
        where: list[str] = []
        args: list[Any] = []
        if service:
            where.append("service = ?")
            args.append(service)
        if status:
            where.append("status = ?")
            args.append(status)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self.conn.execute(
            f"SELECT * FROM deployments{clause} ORDER BY created_at DESC LIMIT ? OFFSET ?",  # noqa: S608
            [*args, limit, offset],
        )
        return [dict(r) for r in rows]

    def get_deployment(self, deployment_id: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM deployments WHERE id = ?", (deployment_id,)).fetchone()
        return dict(row) if row else None

    def deployment_for_execution(self, execution_id: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT * FROM deployments WHERE execution_id = ?", (execution_id,)
        ).fetchone()
        return dict(row) if row else None

    def latest_decisions(self, limit: int = 10) -> list[dict[str, Any]]:
        """The newest deployments that have a verdict (the dashboard's "latest decisions")."""
        rows = self.conn.execute(
            "SELECT * FROM deployments WHERE verdict IS NOT NULL ORDER BY created_at DESC LIMIT ?", (limit,)
        )
        return [dict(r) for r in rows]

    def service_health(self) -> list[dict[str, Any]]:
        """Per service: its latest deployment's version, verdict and status, and its launch count."""
        rows = self.conn.execute(
            """
            SELECT d.service, d.version, d.verdict, d.severity, d.confidence, d.status, d.created_at,
                   d.execution_id, c.launches
            FROM deployments d
            JOIN (SELECT service, MAX(created_at) AS latest, COUNT(*) AS launches
                  FROM deployments GROUP BY service) c
              ON c.service = d.service AND c.latest = d.created_at
            ORDER BY d.service
            """
        )
        seen: dict[str, dict[str, Any]] = {}
        for r in rows:
            seen.setdefault(r["service"], dict(r))
        return list(seen.values())

    def dashboard_kpis(self, now: datetime | None = None) -> DashboardKpis:
        now = now or datetime.now(UTC)
        start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        day_start, day_end = format_time(start), format_time(start + timedelta(days=1))
        with self.read() as conn:
            executions = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(state = 'FAILED'), 0) FROM executions "
                "WHERE start_date >= ? AND start_date < ?",
                (day_start, day_end),
            ).fetchone()
            dep = conn.execute(
                """
                SELECT COUNT(*),
                       COALESCE(SUM(status = ?), 0),
                       COALESCE(SUM(status = ?), 0),
                       COALESCE(SUM(approval IN ('auto', 'not_required')), 0),
                       COALESCE(SUM(approval IN
                           ('auto', 'not_required', 'approved', 'rejected', 'expired')), 0)
                FROM deployments WHERE created_at >= ? AND created_at < ?
                """,
                (DeploymentStatus.ROLLED_BACK.value, DeploymentStatus.ESCALATED.value, day_start, day_end),
            ).fetchone()
            verdicts = conn.execute(
                "SELECT verdict, COUNT(*) FROM deployments WHERE created_at >= ? AND created_at < ? "
                "AND verdict IS NOT NULL GROUP BY verdict",
                (day_start, day_end),
            ).fetchall()
            pending = conn.execute("SELECT COUNT(*) FROM approvals WHERE status = 'pending'").fetchone()[0]
            mttd = conn.execute(
                "SELECT AVG((julianday(decided_at) - julianday(requested_at)) * 86400.0) FROM approvals "
                "WHERE decided_at >= ? AND decided_at < ? AND status IN ('approved', 'rejected', 'expired')",
                (day_start, day_end),
            ).fetchone()[0]
        decided = dep[4]
        return DashboardKpis(
            day=start.date().isoformat(),
            executions_today=executions[0],
            failed_today=executions[1],
            deployments_today=dep[0],
            rollbacks_today=dep[1],
            escalations_today=dep[2],
            pending_approvals=pending,
            auto_approved_share=(dep[3] / decided) if decided else None,
            mean_time_to_decision_s=float(mttd) if mttd is not None else None,
            verdicts_today={v: n for v, n in verdicts},
        )

    # -- approvals ------------------------------------------------------------------------------------

    def approval_row(self, approval_id: str, conn: sqlite3.Connection | None = None) -> dict[str, Any] | None:
        row = (conn or self.conn).execute("SELECT * FROM approvals WHERE id = ?", (approval_id,)).fetchone()
        return _approval(row) if row else None

    def approval_votes(
        self, approval_id: str, conn: sqlite3.Connection | None = None
    ) -> list[dict[str, Any]]:
        rows = (conn or self.conn).execute(
            "SELECT actor, approved, comment, at FROM approval_votes WHERE approval_id = ? ORDER BY "
            "at, rowid",
            (approval_id,),
        )
        return [{**dict(r), "approved": bool(r["approved"])} for r in rows]

    def approvals(
        self, *, statuses: list[str] | None = None, limit: int = 200, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Newest request first. With statuses, each status is read through the (status,
        requested_at) index up to ``limit + offset`` rows and the parts merged: without table
        statistics (the console never runs ANALYZE) SQLite would otherwise sort every decided
        approval, ~450 ms at 100k."""
        limit, offset = max(0, int(limit)), max(0, int(offset))
        if not statuses:
            rows = self.conn.execute(
                "SELECT * FROM approvals ORDER BY requested_at DESC LIMIT ? OFFSET ?", (limit, offset)
            )
            return [_approval(r) for r in rows]
        part = "SELECT * FROM (SELECT * FROM approvals WHERE status = ? ORDER BY requested_at DESC LIMIT ?)"
        sql = " UNION ALL ".join([part] * len(statuses)) + " ORDER BY requested_at DESC LIMIT ? OFFSET ?"
        args: list[Any] = []
        for status in statuses:
            args += [status, limit + offset]
        return [_approval(r) for r in self.conn.execute(sql, [*args, limit, offset])]

    def approval_for_execution(self, execution_id: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT * FROM approvals WHERE execution_id = ? ORDER BY requested_at DESC LIMIT 1",
            (execution_id,),
        ).fetchone()
        return _approval(row) if row else None

    def request_approval_in(
        self,
        conn: sqlite3.Connection,
        *,
        execution_id: str,
        plan: dict[str, Any],
        decision: dict[str, Any],
        requested_by: str,
        service: str,
        deployment_id: str | None,
        timeout_minutes: float,
        requested_at: str | None = None,
        expires_at: str | None = None,
    ) -> tuple[str, str]:
        """Create the one approval of an execution (idempotent: an existing pending one is returned).

        Used by both engines (the Kestra backend calls it when it finds a PAUSED execution).
        Returns (approval id, expires_at)."""
        existing = conn.execute(
            "SELECT id, expires_at FROM approvals WHERE execution_id = ? AND status = 'pending'",
            (execution_id,),
        ).fetchone()
        if existing is not None:
            return existing["id"], existing["expires_at"]
        actions = list(plan.get("approval") or [])
        risk = highest_risk(actions).value
        now = parse_time(requested_at) if requested_at else datetime.now(UTC)
        approval_id = "ap-" + secrets.token_hex(6)
        expires = expires_at or format_time(now + timedelta(minutes=timeout_minutes))
        conn.execute(
            "INSERT INTO approvals (id, execution_id, deployment_id, service, actions, risk, "
            "required_approvals, "
            "requested_by, requested_at, expires_at, status, verdict, severity, confidence, decision) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)",
            (
                approval_id,
                execution_id,
                deployment_id,
                service,
                dumps(actions),
                risk,
                max(1, int(plan.get("required_approvals") or 1)),
                requested_by,
                format_time(now),
                expires,
                decision.get("verdict"),
                decision.get("severity"),
                decision.get("confidence"),
                dumps(decision),
            ),
        )
        self.audit_in(
            conn,
            requested_by,
            "approval.requested",
            approval_id,
            {
                "execution_id": execution_id,
                "actions": ", ".join(str(a.get("name")) for a in actions),
                "required_approvals": plan.get("required_approvals"),
            },
        )
        return approval_id, expires

    def overdue_approval_ids(self, now: datetime | None = None) -> list[str]:
        now_s = format_time(now or datetime.now(UTC))
        rows = self.conn.execute(
            "SELECT id FROM approvals WHERE status = 'pending' AND expires_at <= ?", (now_s,)
        )
        return [r[0] for r in rows]

    # -- outcomes -------------------------------------------------------------------------------------

    def save_outcome_in(
        self, conn: sqlite3.Connection, execution_id: str, deployment_id: str | None, record: dict[str, Any]
    ) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO outcomes (execution_id, deployment_id, record, recorded_at, learning) "
            "VALUES (?, ?, ?, ?, ?)",
            (execution_id, deployment_id, dumps(record), now_text(), dumps(learning_fields(record))),
        )

    def outcome_records(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Outcome records, oldest first, with the approval part taken from the approvals table
        (the authoritative source for who decided) when the execution had one."""
        sql = (
            "SELECT o.execution_id, o.record, a.id AS approval_id, a.status AS a_status, a.comment "
            "AS a_comment "
            "FROM outcomes o LEFT JOIN approvals a ON a.execution_id = o.execution_id "
            "ORDER BY o.recorded_at, o.execution_id"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        out = []
        with self.read() as conn:
            for row in conn.execute(sql).fetchall():
                record = loads(row["record"], {})
                if row["approval_id"] is not None and row["a_status"] in ("approved", "rejected", "expired"):
                    votes = self.approval_votes(row["approval_id"], conn)
                    approval = dict(record.get("approval") or {})
                    approval["status"] = row["a_status"]
                    # who decided: the approving voters, the rejecting one, nobody for an expiry
                    approved = row["a_status"] == "approved"
                    approval["approvers"] = (
                        []
                        if row["a_status"] == "expired"
                        else [v["actor"] for v in votes if v["approved"] == approved]
                    )
                    approval["comment"] = (
                        row["a_comment"] if row["a_comment"] is not None else approval.get("comment")
                    )
                    record["approval"] = approval
                out.append(record)
        return out

    # -- metric points --------------------------------------------------------------------------------

    def add_metric_points(
        self, service: str, deployment_id: str | None, metrics: dict[str, list[tuple[float, float]]]
    ) -> int:
        with self.write() as conn:
            return self.add_metric_points_in(conn, service, deployment_id, metrics)

    @staticmethod
    def add_metric_points_in(
        conn: sqlite3.Connection,
        service: str,
        deployment_id: str | None,
        metrics: dict[str, list[tuple[float, float]]],
    ) -> int:
        rows = [
            (service, name, float(ts), float(value), deployment_id)
            for name, points in metrics.items()
            for ts, value in points
        ]
        conn.executemany(
            "INSERT OR REPLACE INTO metric_points (service, metric, ts, value, deployment_id) "
            "VALUES (?, ?, ?, ?, ?)",
            rows,
        )
        return len(rows)

    # Both lists jump from one distinct value to the next through the primary key (a "loose index
    # scan", one seek per value) instead of SELECT DISTINCT, which without table statistics reads
    # every point: 645 ms for the services of 6M points, 8 ms per service for its metric names.

    def metric_names(self, service: str) -> list[str]:
        rows = self.conn.execute(
            """
            WITH RECURSIVE names(metric) AS (
                SELECT MIN(metric) FROM metric_points WHERE service = ?1
                UNION ALL
                SELECT (SELECT MIN(metric) FROM metric_points WHERE service = ?1 AND metric > names.metric)
                FROM names WHERE names.metric IS NOT NULL
            )
            SELECT metric FROM names WHERE metric IS NOT NULL
            """,
            (service,),
        )
        return [r[0] for r in rows]

    def metric_services(self) -> list[str]:
        rows = self.conn.execute(
            """
            WITH RECURSIVE services(service) AS (
                SELECT MIN(service) FROM metric_points
                UNION ALL
                SELECT (SELECT MIN(service) FROM metric_points WHERE service > services.service)
                FROM services WHERE services.service IS NOT NULL
            )
            SELECT service FROM services WHERE service IS NOT NULL
            """
        )
        return [r[0] for r in rows]

    def metric_series(
        self, service: str, metric: str, start: datetime, end: datetime, max_points: int = 500
    ) -> list[tuple[datetime, float]]:
        """One metric's points between start and end; averaged per time bucket in SQL when the range
        holds more than ``max_points`` points, so a chart never receives more than that."""
        t0, t1 = start.timestamp(), end.timestamp()
        max_points = max(1, int(max_points))
        with self.read() as conn:
            count = conn.execute(
                "SELECT COUNT(*) FROM metric_points WHERE service = ? AND metric = ? AND ts >= ? AND ts <= ?",
                (service, metric, t0, t1),
            ).fetchone()[0]
            if count <= max_points:
                rows = conn.execute(
                    "SELECT ts, value FROM metric_points WHERE service = ? AND metric = ? AND ts >= "
                    "? AND ts <= ? "
                    "ORDER BY ts",
                    (service, metric, t0, t1),
                ).fetchall()
            else:
                width = (t1 - t0) / max_points or 1.0
                rows = conn.execute(
                    "SELECT AVG(ts), AVG(value) FROM metric_points "
                    "WHERE service = ? AND metric = ? AND ts >= ? AND ts <= ? "
                    "GROUP BY MIN(CAST((ts - ?) / ? AS INTEGER), ?) ORDER BY 1",
                    (service, metric, t0, t1, t0, width, max_points - 1),
                ).fetchall()
        return [(datetime.fromtimestamp(r[0], UTC), float(r[1])) for r in rows]


# -- row converters ------------------------------------------------------------------------------------


def _histories(text: str | None) -> list[StateHistory]:
    return [StateHistory(State(h["state"]), parse_time(h["date"])) for h in loads(text, [])]


def histories_json(histories: list[StateHistory]) -> str:
    return dumps([{"state": h.state.value, "date": format_time(h.date)} for h in histories])


def _execution(row: sqlite3.Row) -> Execution:
    return Execution(
        id=row["id"],
        namespace=row["namespace"],
        flow_id=row["flow_id"],
        state=State(row["state"]),
        histories=_histories(row["histories"]),
        inputs=loads(row["inputs"], {}),
        outputs=loads(row["outputs"], {}),
        labels=loads(row["labels"], {}),
    )


def _task_run(row: sqlite3.Row) -> TaskRun:
    return TaskRun(
        id=row["id"],
        task_id=row["task_id"],
        state=State(row["state"]),
        histories=_histories(row["histories"]),
        outputs=loads(row["outputs"], {}),
    )


def _approval(row: sqlite3.Row) -> dict[str, Any]:
    data = dict(row)
    data["actions"] = loads(data["actions"], [])
    data["decision"] = loads(data["decision"], {})
    return data


def learning_fields(record: dict[str, Any]) -> list[Any]:
    """The few fields of an outcome record the Learning page reads, kept beside the record so the page
    never decodes whole records (~4 KB each): [verdict, confidence, actions, approval actions,
    approval status, held], actions as ``{"name": ...}`` like in the record."""
    decision = record.get("decision") if isinstance(record.get("decision"), dict) else {}
    plan = record.get("plan") if isinstance(record.get("plan"), dict) else {}
    approval = record.get("approval") if isinstance(record.get("approval"), dict) else {}
    outcome = record.get("outcome") if isinstance(record.get("outcome"), dict) else {}

    def names(items: Any) -> list[dict[str, str]]:
        if not isinstance(items, list):
            return []
        return [{"name": str(i["name"])} for i in items if isinstance(i, dict) and i.get("name")]

    return [
        decision.get("verdict"),
        decision.get("confidence"),
        names(decision.get("actions")),
        names(plan.get("approval")),
        approval.get("status"),
        outcome.get("held"),
    ]
