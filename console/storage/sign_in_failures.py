"""Failed sign-in attempts as stored, so a restart does not forgive a guesser: one row per key the
access layer counts under (a person's name, a client's address) with how many attempts failed in a
row, when the last one did, and until when the key is locked. How long a lock lasts is
:mod:`console.access.attempts`'."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from console.storage.database import Connection, Database


class SignInFailures:
    """The ``sign_in_failures`` rows."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, keys: Iterable[str], conn: Connection | None = None) -> dict[str, dict[str, Any]]:
        """``{key: {"failures", "last_at", "locked_until"}}`` for the keys that have failed (unix
        seconds)."""
        keys = list(keys)
        if not keys:
            return {}
        c = conn or self.db.conn
        marks = ", ".join("?" for _ in keys)
        rows = c.execute(
            f"SELECT key, failures, last_at, locked_until FROM sign_in_failures WHERE key IN ({marks})",  # noqa: S608
            keys,
        )
        return {row["key"]: dict(row) for row in rows}

    @staticmethod
    def set_in(conn: Connection, key: str, *, failures: int, last_at: float, locked_until: float) -> None:
        conn.execute(
            "INSERT INTO sign_in_failures (key, failures, last_at, locked_until) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(key) DO UPDATE SET failures = excluded.failures, last_at = excluded.last_at, "
            "locked_until = excluded.locked_until",
            (key, failures, last_at, locked_until),
        )

    @staticmethod
    def clear_in(conn: Connection, key: str) -> None:
        conn.execute("DELETE FROM sign_in_failures WHERE key = ?", (key,))
