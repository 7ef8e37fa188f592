"""Who is signed in, as stored: failed sign-in attempts (so a restart does not forgive a guesser)
and the password sessions behind the session cookie (so signing out ends a session for good).

``sign_in_failures`` holds one row per key the access layer counts under (a person's name, a
client's address): how many attempts failed in a row, when the last one did, and until when the
key is locked. ``sessions`` holds one row per password sign-in: its random id (the cookie carries it
signed with a secret that is not in the database), who and with what role, when it expires, the
SHA-256 of the one-time ticket the browser exchanges for the cookie, and when it was revoked.
The rules (how long a lock lasts, what a session must match) are :mod:`console.access.attempts`'
and :mod:`console.access.sessions`'.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from console.storage.database import Connection, Database


class IdentityStore(Database):
    """Sign-in failures and sessions."""

    # -- failed sign-ins --------------------------------------------------------------------------

    def sign_in_failures(
        self, keys: Iterable[str], conn: Connection | None = None
    ) -> dict[str, dict[str, Any]]:
        """``{key: {"failures", "last_at", "locked_until"}}`` for the keys that have failed (unix
        seconds)."""
        keys = list(keys)
        if not keys:
            return {}
        c = conn or self.conn
        marks = ", ".join("?" for _ in keys)
        rows = c.execute(
            f"SELECT key, failures, last_at, locked_until FROM sign_in_failures WHERE key IN ({marks})",  # noqa: S608
            keys,
        )
        return {row["key"]: dict(row) for row in rows}

    @staticmethod
    def set_sign_in_failure_in(
        conn: Connection, key: str, *, failures: int, last_at: float, locked_until: float
    ) -> None:
        conn.execute(
            "INSERT INTO sign_in_failures (key, failures, last_at, locked_until) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET failures = excluded.failures, last_at = excluded.last_at, "
            "locked_until = excluded.locked_until",
            (key, failures, last_at, locked_until),
        )

    @staticmethod
    def clear_sign_in_failures_in(conn: Connection, key: str) -> None:
        conn.execute("DELETE FROM sign_in_failures WHERE key = ?", (key,))

    # -- sessions ---------------------------------------------------------------------------------

    @staticmethod
    def create_session_in(
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
        row = self.conn.execute("SELECT 1 FROM sessions WHERE ticket_hash = ?", (ticket_hash,)).fetchone()
        return row is not None

    def session_row(self, session_id: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT id, name, role, source, created_at, expires_at, revoked_at FROM sessions WHERE id = ?",
            (session_id,),
        ).fetchone()
        return dict(row) if row else None

    @staticmethod
    def revoke_session_in(conn: Connection, session_id: str, at: str) -> bool:
        changed = conn.execute(
            "UPDATE sessions SET revoked_at = ?, ticket_hash = NULL WHERE id = ? AND revoked_at IS NULL",
            (at, session_id),
        ).rowcount
        return changed > 0

    @staticmethod
    def forget_expired_sessions_in(conn: Connection, before: float) -> int:
        """Drop sessions that expired before ``before`` (their cookies are refused anyway)."""
        return conn.execute("DELETE FROM sessions WHERE expires_at < ?", (before,)).rowcount
