"""The notifications outbox, as stored: a cursor over the audit trail and one row per message and
channel with its delivery status.

The dispatcher (:mod:`console.notify`) reads the audit rows after the cursor, builds the messages and
hands them to :meth:`Notifications.enqueue`, which inserts them and moves the cursor
in one transaction (compare-and-set: of two dispatchers reading the same rows, one enqueues them;
``UNIQUE (audit_seq, channel)`` keeps a message from being queued twice anyway). Deliveries are
claimed with a lease (``status = 'sending'``, ``lease_until``) inside ``BEGIN IMMEDIATE``, so two
dispatchers (the Streamlit app and the API server on one file) never send the same message, and a
dispatcher that died mid-send leaves a lease that runs out and is claimed again.

Statuses: ``pending`` (waiting for its first or next attempt at ``next_attempt_at``), ``sending``
(claimed), ``delivered``, ``failed`` (given up; ``last_error`` says why in one line).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from console.domain.models import format_time, now_text
from console.storage.approvals import Approvals
from console.storage.database import Database, dumps, loads

NOTIFICATION_STATUSES = ("pending", "sending", "delivered", "failed")


class Notifications:
    """The outbox's cursor, its messages and their delivery status."""

    def __init__(self, db: Database, approvals: Approvals) -> None:
        self.db = db
        self.approvals = approvals

    # -- the cursor and what it follows ---------------------------------------------------------------

    def cursor(self, feed: str) -> int:
        """The last audit ``seq`` the feed has turned into messages (created at the audit trail's end
        the first time a feed is read, so a new feed does not replay history)."""
        row = self.db.conn.execute("SELECT seq FROM notify_cursor WHERE feed = ?", (feed,)).fetchone()
        if row is not None:
            return int(row[0])
        with self.db.write() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO notify_cursor (feed, seq) SELECT ?, COALESCE(MAX(seq), 0) FROM audit",
                (feed,),
            )
            return int(conn.execute("SELECT seq FROM notify_cursor WHERE feed = ?", (feed,)).fetchone()[0])

    def material(self, approval_id: str) -> dict[str, Any] | None:
        """What a message about an approval says: the approval row, its votes and its deployment row
        (None when the approval does not exist)."""
        with self.db.read() as conn:
            approval = self.approvals.get(approval_id, conn)
            if approval is None:
                return None
            votes = self.approvals.votes(approval_id, conn)
            row = conn.execute(
                "SELECT * FROM deployments WHERE execution_id = ?", (approval["execution_id"],)
            ).fetchone()
            if row is None and approval.get("deployment_id"):
                row = conn.execute(
                    "SELECT * FROM deployments WHERE id = ? OR ref = ? ORDER BY created_at DESC LIMIT 1",
                    (approval["deployment_id"], approval["deployment_id"]),
                ).fetchone()
        return {"approval": approval, "votes": votes, "deployment": dict(row) if row else None}

    # -- the outbox -----------------------------------------------------------------------------------

    def enqueue(self, feed: str, *, expected: int, cursor: int, messages: Sequence[dict[str, Any]]) -> bool:
        """Queue ``messages`` (``audit_seq``, ``channel``, ``event``, ``subject``, ``payload``) and move
        the feed's cursor from ``expected`` to ``cursor``, together. False (nothing written) when the
        cursor is no longer at ``expected``: another dispatcher took these rows."""
        now = now_text()
        with self.db.write() as conn:
            moved = conn.execute(
                "UPDATE notify_cursor SET seq = ? WHERE feed = ? AND seq = ?",
                (int(cursor), feed, int(expected)),
            ).rowcount
            if moved != 1:
                return False
            conn.executemany(
                "INSERT OR IGNORE INTO notifications (audit_seq, channel, event, subject, payload, status, "
                "attempts, next_attempt_at, created_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?)",
                [
                    (
                        int(m["audit_seq"]),
                        m["channel"],
                        m["event"],
                        m.get("subject"),
                        dumps(m["payload"]),
                        now,
                        now,
                    )
                    for m in messages
                ],
            )
        return True

    def claim(
        self, *, limit: int = 20, lease_s: float = 60.0, now: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Claim the messages due now (pending and due, or sending with a lease that ran out), oldest
        first: each comes back with ``attempts`` already counting this attempt."""
        moment = now or datetime.now(UTC)
        now_s, lease = format_time(moment), format_time(moment + timedelta(seconds=lease_s))
        with self.db.write() as conn:
            rows = conn.execute(
                "SELECT id FROM notifications WHERE status = 'pending' AND next_attempt_at <= ? "
                "UNION SELECT id FROM notifications WHERE status = 'sending' AND lease_until <= ? "
                "ORDER BY id LIMIT ?",
                (now_s, now_s, int(limit)),
            ).fetchall()
            ids = [r[0] for r in rows]
            claimed = []
            for ident in ids:
                conn.execute(
                    "UPDATE notifications SET status = 'sending', lease_until = ?, attempts = attempts + 1 "
                    "WHERE id = ?",
                    (lease, ident),
                )
                row = conn.execute("SELECT * FROM notifications WHERE id = ?", (ident,)).fetchone()
                claimed.append(_notification(row))
        return claimed

    def settle(
        self,
        notification_id: int,
        *,
        status: str,
        error: str | None = None,
        next_attempt_at: datetime | None = None,
    ) -> None:
        """The result of an attempt: ``delivered``, ``failed`` (final), or ``pending`` again with the
        time of the next attempt."""
        if status not in ("delivered", "failed", "pending"):
            raise ValueError(f"not a settled notification status: {status!r}")
        now = now_text()
        with self.db.write() as conn:
            conn.execute(
                "UPDATE notifications SET status = ?, last_error = ?, lease_until = NULL, "
                "next_attempt_at = COALESCE(?, next_attempt_at), "
                "delivered_at = CASE WHEN ? = 'delivered' THEN ? ELSE delivered_at END "
                "WHERE id = ? AND status = 'sending'",
                (
                    status,
                    error,
                    format_time(next_attempt_at) if next_attempt_at else None,
                    status,
                    now,
                    int(notification_id),
                ),
            )

    # -- reads for the pages --------------------------------------------------------------------------

    def list(
        self, *, subject: str | None = None, statuses: Sequence[str] | None = None, limit: int = 100
    ) -> list[dict[str, Any]]:
        """Messages newest first (optionally about one approval, or in some statuses)."""
        where: list[str] = []
        args: list[Any] = []
        if subject is not None:
            where.append("subject = ?")
            args.append(subject)
        if statuses:
            where.append(f"status IN ({', '.join('?' for _ in statuses)})")
            args += list(statuses)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self.db.conn.execute(
            f"SELECT * FROM notifications{clause} ORDER BY id DESC LIMIT ?",  # noqa: S608 - fixed text
            [*args, int(limit)],
        )
        return [_notification(r) for r in rows]


def _notification(row: Any) -> dict[str, Any]:
    data = dict(row)
    data["payload"] = loads(data["payload"], {})
    return data
