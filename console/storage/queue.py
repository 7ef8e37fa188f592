"""The run queue: runs that are due, or wait for a moment, held by no worker.

A run of the embedded engine that waits (for its baseline, its verification window, a ``deployed_at``
in the future, a post-action window, a backoff after a fault) is one row here with its wake-up time
(``due_at``, Unix seconds) and its ``priority`` (lower runs first), not a sleeping thread; a run just
launched or resumed is a row due now. The engine's scheduler takes due rows in order of priority
then wake-up time (:meth:`RunQueue.due_runs`) and claims each one before a worker runs it
(:meth:`RunQueue.claim_in`: the row goes and the execution gets the worker's owner token in
one transaction, so two engines on one file never run it twice). While a run is queued its
execution has no owner. The rows survive a restart; a killed run's row goes with the kill.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from console.domain.models import now_text
from console.storage.database import Connection, Database


@dataclass(frozen=True)
class QueuedRun:
    """One row of the queue."""

    execution_id: str
    due_at: float
    priority: int
    source: str
    reason: str
    queued_at: float


def _queued(row: Any) -> QueuedRun:
    return QueuedRun(
        row["execution_id"],
        float(row["due_at"]),
        int(row["priority"]),
        row["source"] or "",
        row["reason"] or "",
        float(row["queued_at"]),
    )


_AHEAD = (
    "SELECT COUNT(*) FROM run_queue WHERE due_at <= :now AND (priority < :p OR (priority = :p AND "
    "(due_at < :d OR (due_at = :d AND execution_id < :id))))"
)
"""Due rows that run before a given one (same order as :meth:`RunQueue.due_runs`)."""


class RunQueue:
    """The run queue of the embedded engine."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- writes inside the caller's transaction ------------------------------------------------------

    @staticmethod
    def enqueue_in(
        conn: Connection,
        execution_id: str,
        *,
        due_at: float,
        priority: int,
        source: str,
        reason: str,
        now: float,
    ) -> None:
        """Queue the run (or move its wake-up) and release it: no worker holds it while it waits."""
        conn.execute(
            "INSERT INTO run_queue (execution_id, due_at, priority, source, reason, queued_at) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (execution_id) DO UPDATE SET due_at = excluded.due_at, "
            "priority = excluded.priority, source = excluded.source, reason = excluded.reason, "
            "queued_at = excluded.queued_at",
            (execution_id, float(due_at), int(priority), source[:200], reason[:300], float(now)),
        )
        stamp = now_text()
        conn.execute(
            "UPDATE executions SET owner = NULL, heartbeat_at = ?, updated_at = ? WHERE id = ?",
            (stamp, stamp, execution_id),
        )

    @staticmethod
    def dequeue_in(conn: Connection, execution_id: str) -> None:
        """The run leaves the queue (killed, failed, ended)."""
        conn.execute("DELETE FROM run_queue WHERE execution_id = ?", (execution_id,))

    @staticmethod
    def claim_in(conn: Connection, execution_id: str, *, owner: str, now: float) -> bool:
        """Take a due run off the queue for ``owner``'s worker; False when it is not due, already
        taken, or no longer running (its stale row is dropped then)."""
        taken = conn.execute(
            "DELETE FROM run_queue WHERE execution_id = ? AND due_at <= ?", (execution_id, float(now))
        ).rowcount
        if not taken:
            return False
        row = conn.execute("SELECT state FROM executions WHERE id = ?", (execution_id,)).fetchone()
        if row is None or row["state"] not in ("CREATED", "RUNNING"):
            return False
        stamp = now_text()
        conn.execute(
            "UPDATE executions SET owner = ?, heartbeat_at = ?, updated_at = ? WHERE id = ?",
            (owner, stamp, stamp, execution_id),
        )
        return True

    def requeue_lost_in(
        self, conn: Connection, execution_id: str, *, owner: str, priority: int, source: str, now: float
    ) -> bool:
        """Queue again, due now, a run ``owner`` holds without running it (its worker stopped before
        it could queue or end the run); False when the run is queued, ended or taken meanwhile."""
        row = conn.execute(
            "SELECT e.state, e.owner, q.execution_id AS queued FROM executions e "
            "LEFT JOIN run_queue q ON q.execution_id = e.id WHERE e.id = ?",
            (execution_id,),
        ).fetchone()
        if (
            row is None
            or row["queued"]
            or row["owner"] != owner
            or row["state"] not in ("CREATED", "RUNNING")
        ):
            return False
        self.enqueue_in(
            conn,
            execution_id,
            due_at=now,
            priority=priority,
            source=source,
            reason="resumed after its worker stopped",
            now=now,
        )
        return True

    # -- reads -----------------------------------------------------------------------------------------

    def due_runs(self, now: float, limit: int = 64) -> list[QueuedRun]:
        """Due rows, in the order they should run: priority, then wake-up time."""
        rows = self.db.conn.execute(
            "SELECT * FROM run_queue WHERE due_at <= ? ORDER BY priority, due_at, execution_id LIMIT ?",
            (float(now), max(1, int(limit))),
        ).fetchall()
        return [_queued(r) for r in rows]

    def next_wake(self) -> float | None:
        """The earliest wake-up time in the queue (None when it is empty)."""
        row = self.db.conn.execute("SELECT MIN(due_at) FROM run_queue").fetchone()
        return float(row[0]) if row and row[0] is not None else None

    def get(self, execution_id: str) -> QueuedRun | None:
        return self.get_in(self.db.conn, execution_id)

    @staticmethod
    def get_in(conn: Connection, execution_id: str) -> QueuedRun | None:
        row = conn.execute("SELECT * FROM run_queue WHERE execution_id = ?", (execution_id,)).fetchone()
        return _queued(row) if row else None

    def positions(self, execution_ids: list[str], now: float) -> dict[str, dict[str, Any]]:
        """Where each queued run of ``execution_ids`` stands: ``{"due": bool, "ahead": n (due runs
        that go first; 0 for a run that is not due yet), "due_at", "reason", "queued_at"}``; runs not
        in the queue are absent."""
        if not execution_ids:
            return {}
        out: dict[str, dict[str, Any]] = {}
        with self.db.read() as conn:
            marks = ",".join("?" for _ in execution_ids)
            rows = conn.execute(
                f"SELECT * FROM run_queue WHERE execution_id IN ({marks})",  # noqa: S608 - placeholders only
                list(execution_ids),
            ).fetchall()
            for row in rows:
                entry = _queued(row)
                due = entry.due_at <= now
                ahead = 0
                if due:
                    args = {"now": now, "p": entry.priority, "d": entry.due_at, "id": entry.execution_id}
                    ahead = int(conn.execute(_AHEAD, args).fetchone()[0])
                out[entry.execution_id] = {
                    "due": due,
                    "ahead": ahead,
                    "due_at": entry.due_at,
                    "reason": entry.reason,
                    "queued_at": entry.queued_at,
                    "priority": entry.priority,
                }
        return out

    def depth(self, now: float) -> tuple[int, int]:
        """(runs due now, runs waiting for a later moment)."""
        row = self.db.conn.execute(
            "SELECT COALESCE(SUM(due_at <= ?), 0), COALESCE(SUM(due_at > ?), 0) FROM run_queue",
            (float(now), float(now)),
        ).fetchone()
        return int(row[0]), int(row[1])

    def owned_unqueued(self, owner: str) -> list[str]:
        """CREATED/RUNNING executions ``owner`` holds that are not queued."""
        rows = self.db.conn.execute(
            "SELECT id FROM executions WHERE state IN ('CREATED', 'RUNNING') AND owner = ? "
            "AND id NOT IN (SELECT execution_id FROM run_queue)",
            (owner,),
        ).fetchall()
        return [r["id"] for r in rows]
