"""Password sessions as stored, behind the session cookie (so signing out ends a session for good):
one row per password sign-in with its random id (the cookie carries it signed with a secret that is
not in the database), who and with what role, when it expires, the SHA-256 of the one-time ticket
the browser exchanges for the cookie, and when it was revoked. What a session must match is
:mod:`console.access.sessions`'."""

from __future__ import annotations

from typing import Any

from console.storage.database import Connection, Database


class Sessions:
    """The ``sessions`` rows."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def create_in(
        conn: Connection,
        *,
        session_id: str,
        name: str,
        role: str,
        source: str,
        created_at: str,
        expires_at: float,
        ticket_hash: str,
        ticket_expires_at: float,
    ) -> None:
        conn.execute(
            "INSERT INTO sessions (id, name, role, source, created_at, expires_at, ticket_hash, "
            "ticket_expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (session_id, name, role, source, created_at, expires_at, ticket_hash, ticket_expires_at),
        )

    @staticmethod
    def redeem_ticket_in(conn: Connection, ticket_hash: str, now: float) -> dict[str, Any] | None:
        """The session of an unused, unexpired ticket of a live session, the ticket used up; else None."""
        row = conn.execute(
            "SELECT id, name, role, source, expires_at, ticket_expires_at, revoked_at FROM sessions "
            "WHERE ticket_hash = ?",
            (ticket_hash,),
        ).fetchone()
        if row is None:
            return None
        conn.execute("UPDATE sessions SET ticket_hash = NULL WHERE id = ?", (row["id"],))
        if row["revoked_at"] or row["ticket_expires_at"] < now or row["expires_at"] < now:
            return None
        return dict(row)

    def ticket_pending(self, ticket_hash: str) -> bool:
        """Whether the ticket has not been exchanged for its cookie yet."""
        row = self.db.conn.execute("SELECT 1 FROM sessions WHERE ticket_hash = ?", (ticket_hash,)).fetchone()
        return row is not None

    def get(self, session_id: str) -> dict[str, Any] | None:
        row = self.db.conn.execute(
            "SELECT id, name, role, source, created_at, expires_at, revoked_at FROM sessions WHERE id = ?",
            (session_id,),
        ).fetchone()
        return dict(row) if row else None

    @staticmethod
    def revoke_in(conn: Connection, session_id: str, at: str) -> bool:
        changed = conn.execute(
            "UPDATE sessions SET revoked_at = ?, ticket_hash = NULL WHERE id = ? AND revoked_at IS NULL",
            (at, session_id),
        ).rowcount
        return changed > 0

    @staticmethod
    def forget_expired_in(conn: Connection, before: float) -> int:
        """Drop sessions that expired before ``before`` (their cookies are refused anyway)."""
        return conn.execute("DELETE FROM sessions WHERE expires_at < ?", (before,)).rowcount
