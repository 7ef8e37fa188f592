"""The revision history as stored: one row per revision event (``console/loop/revisions.py`` says
what the events are and what follows from them). Written by the read model's projection as a
watched deployment's run goes (both engines) and by an operator's audited mark; a re-projected
execution writes nothing twice (``key`` is unique)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from console.storage.database import Connection, Database

_COLUMNS: tuple[str, ...] = (
    "key",
    "service",
    "version",
    "kind",
    "at",
    "reason",
    "source",
    "execution_id",
    "actor",
    "window_start",
    "window_end",
)
_INSERT = (
    "INSERT OR IGNORE INTO revision_events (key, service, version, kind, at, reason, source, execution_id, "
    "actor, window_start, window_end) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_SELECT = (
    "SELECT key, service, version, kind, at, reason, source, execution_id, actor, window_start, window_end "
    "FROM revision_events WHERE service = ? ORDER BY at, seq"
)


class Revisions:
    """Revision events per service."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def add_in(conn: Connection, events: Iterable[Mapping[str, Any]]) -> int:
        """Store the events not stored yet (by ``key``); how many were new."""
        added = 0
        for ev in events:
            cursor = conn.execute(_INSERT, tuple(ev.get(column) for column in _COLUMNS))
            added += cursor.rowcount
        return added

    def events(self, service: str, conn: Connection | None = None) -> list[dict[str, Any]]:
        """A service's events, oldest first."""
        rows = (conn or self.db.conn).execute(_SELECT, (service,))
        return [dict(row) for row in rows]

    def services(self) -> list[str]:
        """The services with a revision history, by name."""
        rows = self.db.conn.execute("SELECT DISTINCT service FROM revision_events ORDER BY service")
        return [row[0] for row in rows]
