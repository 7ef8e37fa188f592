"""Approvals and their votes as stored. Who may decide and what a decision means is the approval
service's (:mod:`console.access.approvals`); it calls the ``*_in`` methods inside its own
transactions, so a vote and the status change it causes commit together.

Two rules hold here, whichever engine asks for the approval: how many approvers it needs comes
from the registry's risk of the requested actions (never from the plan that asks), and the
requester is stored in its canonical form (:func:`console.domain.names.requester_name`) with where
that name came from (``requested_by_source``)."""

from __future__ import annotations

import secrets
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

from console.domain.actions import registry_risk, required_approvals
from console.domain.models import format_time, parse_time
from console.domain.names import requester_name, same_person
from console.storage.audit import Audit
from console.storage.codec import put_large_in
from console.storage.database import Connection, Database, dumps, loads
from console.storage.documents import Documents


class Approvals:
    """Approval requests, votes, decisions and whether the engine was told. A request and a closing
    write their audit row in the same transaction (through :class:`Audit`)."""

    def __init__(self, db: Database, documents: Documents, audit: Audit) -> None:
        self.db = db
        self.documents = documents
        self.audit = audit

    # -- reads ------------------------------------------------------------------------------------

    def get(self, approval_id: str, conn: Connection | None = None) -> dict[str, Any] | None:
        row = (
            (conn or self.db.conn).execute("SELECT * FROM approvals WHERE id = ?", (approval_id,)).fetchone()
        )
        return self._approval(row, conn) if row else None

    def votes(self, approval_id: str, conn: Connection | None = None) -> list[dict[str, Any]]:
        rows = (conn or self.db.conn).execute(
            "SELECT actor, approved, comment, at FROM approval_votes WHERE approval_id = ? "
            "ORDER BY at, rowid",
            (approval_id,),
        )
        return [{**dict(r), "approved": bool(r["approved"])} for r in rows]

    def list(
        self, *, statuses: list[str] | None = None, limit: int = 200, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Newest request first. With statuses, each status is read through the (status,
        requested_at) index up to ``limit + offset`` rows and the parts merged: without table
        statistics (the console never runs ANALYZE) SQLite would otherwise sort every decided
        approval, ~450 ms at 100k."""
        limit, offset = max(0, int(limit)), max(0, int(offset))
        if not statuses:
            rows = self.db.conn.execute(
                "SELECT * FROM approvals ORDER BY requested_at DESC LIMIT ? OFFSET ?", (limit, offset)
            )
            return [self._approval(r) for r in rows]
        part = "SELECT * FROM (SELECT * FROM approvals WHERE status = ? ORDER BY requested_at DESC LIMIT ?)"
        sql = " UNION ALL ".join([part] * len(statuses)) + " ORDER BY requested_at DESC LIMIT ? OFFSET ?"
        args: list[Any] = []
        for status in statuses:
            args += [status, limit + offset]
        return [self._approval(r) for r in self.db.conn.execute(sql, [*args, limit, offset]).fetchall()]

    def digest(self) -> tuple[tuple[str, ...], ...]:
        """What the pages' live refresh compares (``ui/refresh.py``): each pending approval with
        its number of votes, and each decision the engine could not be told about. Any decision,
        vote, new request, expiry or failed resume changes it. Two index seeks."""
        rows = self.db.conn.execute(
            "SELECT a.id, 'pending', (SELECT COUNT(*) FROM approval_votes v WHERE v.approval_id = a.id) "
            "FROM approvals a WHERE a.status = 'pending' "
            "UNION ALL SELECT id, 'resume failed', 0 FROM approvals WHERE resume_state = 'failed' "
            "ORDER BY 1, 2"
        )
        return tuple((str(r[0]), str(r[1]), str(r[2])) for r in rows)

    def for_execution(self, execution_id: str) -> dict[str, Any] | None:
        row = self.db.conn.execute(
            "SELECT * FROM approvals WHERE execution_id = ? ORDER BY requested_at DESC LIMIT 1",
            (execution_id,),
        ).fetchone()
        return self._approval(row) if row else None

    def overdue_ids(self, now: datetime | None = None) -> list[str]:
        now_s = format_time(now or datetime.now(UTC))
        rows = self.db.conn.execute(
            "SELECT id FROM approvals WHERE status = 'pending' AND expires_at <= ?", (now_s,)
        )
        return [r[0] for r in rows]

    def resume_failed_ids(self) -> list[str]:
        """Decisions the engine could not be told about, oldest decision first."""
        rows = self.db.conn.execute(
            "SELECT id FROM approvals WHERE resume_state = 'failed' ORDER BY decided_at"
        )
        return [r[0] for r in rows]

    def unresumed_decision_ids(self) -> list[str]:
        """Final decisions whose execution still waits PAUSED: the resume never happened (the
        process died in between) or failed."""
        rows = self.db.conn.execute(
            "SELECT a.id FROM approvals a JOIN executions e ON e.id = a.execution_id "
            "WHERE a.status IN ('approved', 'rejected', 'expired', 'superseded') "
            "AND a.resume_state IN ('pending', 'failed') "
            "AND e.state = 'PAUSED'"
        )
        return [r[0] for r in rows]

    # -- writes -----------------------------------------------------------------------------------

    def request_in(
        self,
        conn: Connection,
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
        requested_by_source: str | None = None,
        critical_approvers: int = 2,
    ) -> tuple[str, str]:
        """Create the one approval of an execution (idempotent: an existing pending one is returned).

        Used by both engines (the embedded engine when it pauses, the approval service for a PAUSED
        Kestra execution). ``required_approvals`` is derived here: ``critical_approvers`` (at least
        2) when the registry rates any requested action CRITICAL, else 1, whatever
        ``plan["required_approvals"]`` says. Returns (approval id, expires_at)."""
        existing = conn.execute(
            "SELECT id, expires_at FROM approvals WHERE execution_id = ? AND status = 'pending'",
            (execution_id,),
        ).fetchone()
        if existing is not None:
            return existing["id"], existing["expires_at"]
        actions = list(plan.get("approval") or [])
        risk = registry_risk(actions)
        required = required_approvals(actions, critical_approvers) or 1
        requester = requester_name(requested_by)
        now = parse_time(requested_at) if requested_at else datetime.now(UTC)
        approval_id = "ap-" + secrets.token_hex(6)
        expires = expires_at or format_time(now + timedelta(minutes=timeout_minutes))
        conn.execute(
            "INSERT INTO approvals (id, execution_id, deployment_id, service, actions, risk, "
            "required_approvals, requested_by, requested_by_source, requested_at, expires_at, status, "
            "verdict, severity, confidence, decision) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)",
            (
                approval_id,
                execution_id,
                deployment_id,
                service,
                dumps(actions),
                risk.value,
                required,
                requester,
                requested_by_source,
                format_time(now),
                expires,
                decision.get("verdict"),
                decision.get("severity"),
                decision.get("confidence"),
                dumps(put_large_in(conn, "decision", decision)),
            ),
        )
        self.audit.record_in(
            conn,
            requester,
            "approval.requested",
            approval_id,
            {
                "execution_id": execution_id,
                "actions": ", ".join(str(a.get("name")) for a in actions if isinstance(a, dict)),
                "risk": risk.value,
                "required_approvals": required,
                "requested_by_source": requested_by_source,
            },
        )
        return approval_id, expires

    @staticmethod
    def vote_in(conn: Connection, approval_id: str, actor: str) -> dict[str, Any] | None:
        """``actor``'s vote on the approval, or None. Names compare in their canonical form,
        case-insensitively (:func:`console.domain.names.same_person`), in Python: SQLite's
        ``lower()`` folds ASCII only."""
        rows = conn.execute(
            "SELECT actor, approved, comment, at FROM approval_votes WHERE approval_id = ?",
            (approval_id,),
        )
        for row in rows:
            if same_person(row["actor"], actor):
                return {
                    "approved": bool(row["approved"]),
                    "comment": row["comment"],
                    "at": row["at"],
                }
        return None

    @staticmethod
    def add_vote_in(
        conn: Connection, approval_id: str, actor: str, approved: bool, comment: str, at: str
    ) -> bool:
        """Record a vote; False when this actor has voted already."""
        try:
            conn.execute(
                "INSERT INTO approval_votes (approval_id, actor, approved, comment, at) "
                "VALUES (?, ?, ?, ?, ?)",
                (approval_id, actor, int(approved), comment, at),
            )
        except sqlite3.IntegrityError:
            return False
        return True

    @staticmethod
    def voters_in(conn: Connection, approval_id: str, *, approved: bool) -> list[str]:
        """Who voted this way, in voting order."""
        rows = conn.execute(
            "SELECT actor FROM approval_votes WHERE approval_id = ? AND approved = ? ORDER BY at, rowid",
            (approval_id, int(approved)),
        )
        return [r[0] for r in rows]

    @staticmethod
    def close_in(
        conn: Connection, approval_id: str, *, status: str, decided_by: str, comment: str, at: str
    ) -> bool:
        """Make a pending approval final (approved, rejected or expired) with the engine still to be
        told (``resume_state`` pending). False when it was not pending any more."""
        return (
            conn.execute(
                "UPDATE approvals SET status = ?, decided_at = ?, decided_by = ?, comment = ?, "
                "resume_state = 'pending' WHERE id = ? AND status = 'pending'",
                (status, at, decided_by, comment, approval_id),
            ).rowcount
            == 1
        )

    def cancel_pending_in(self, conn: Connection, execution_id: str, at: str) -> int:
        """The execution stopped (killed, failed): its pending approval is cancelled, and the trail
        says so (``approval.cancelled``, which the notifications follow). Returns how many."""
        return self._close_all_in(
            conn, execution_id, "pending", "cancelled", {"decided_at": at}, "system", {"at": at}
        )

    def supersede_in(self, conn: Connection, execution_id: str, reason: str, *, at: str) -> int:
        """The execution's approved approval was never carried out: right before it ran, the service
        no longer ran the version it was about. It closes as ``superseded`` with the reason (the
        trail says so: ``approval.superseded``). Returns how many."""
        return self._close_all_in(
            conn,
            execution_id,
            "approved",
            "superseded",
            {"comment": f"superseded: {reason}"},
            "system:precondition",
            {"reason": reason, "at": at, "after": "approved"},
        )

    def _close_all_in(
        self,
        conn: Connection,
        execution_id: str,
        was: str,
        status: str,
        values: dict[str, str],
        actor: str,
        detail: dict[str, Any],
    ) -> int:
        """Every approval of the execution in status ``was`` moves to ``status`` (with ``values``:
        ``decided_at`` or ``comment``), each with its ``approval.<status>`` audit row."""
        column = "decided_at" if "decided_at" in values else "comment"
        ids = [
            r[0]
            for r in conn.execute(
                "SELECT id FROM approvals WHERE execution_id = ? AND status = ?", (execution_id, was)
            )
        ]
        for approval_id in ids:
            conn.execute(
                "UPDATE approvals SET status = ?, decided_at = CASE WHEN ? = 'decided_at' THEN ? "
                "ELSE decided_at END, comment = CASE WHEN ? = 'comment' THEN ? ELSE comment END "
                "WHERE id = ? AND status = ?",
                (status, column, values[column], column, values[column], approval_id, was),
            )
            self.audit.record_in(
                conn, actor, f"approval.{status}", approval_id, {"execution_id": execution_id, **detail}
            )
        return len(ids)

    def set_resume_state(self, approval_id: str, state: str, error: str | None) -> None:
        with self.db.write() as conn:
            conn.execute(
                "UPDATE approvals SET resume_state = ?, resume_error = ? WHERE id = ?",
                (state, error, approval_id),
            )

    def _approval(self, row: Any, conn: Connection | None = None) -> dict[str, Any]:
        data = dict(row)
        data["actions"] = loads(data["actions"], [])
        data["decision"] = self.documents.unpack(loads(data["decision"], {}), conn)
        return data
