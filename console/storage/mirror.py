"""The Kestra mirror's state as stored: its start-date cursor and the outcome of each sync attempt per
source, and the fingerprint each mirrored execution had when last copied (what it can skip). The
mirror itself is :mod:`console.engines.kestra.mirror`."""

from __future__ import annotations

from typing import Any

from console.domain.models import now_text
from console.storage.database import Connection, Database


class Mirror:
    """``mirror_state`` and ``mirrored_executions``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def state(self, source: str) -> dict[str, Any]:
        row = self.db.conn.execute("SELECT * FROM mirror_state WHERE source = ?", (source,)).fetchone()
        return dict(row) if row else {"source": source, "cursor": None, "last_attempt": None,
                                      "last_success": None, "last_error": None}  # fmt: skip

    def save_state(
        self, source: str, *, cursor: str | None = None, success: bool, error: str | None = None
    ) -> None:
        """Record a sync attempt (and move the cursor when given)."""
        now = now_text()
        with self.db.write() as conn:
            conn.execute(
                "INSERT INTO mirror_state (source, cursor, last_attempt, last_success, last_error) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (source) DO UPDATE SET "
                "cursor = COALESCE(excluded.cursor, mirror_state.cursor), "
                "last_attempt = excluded.last_attempt, "
                "last_success = COALESCE(excluded.last_success, mirror_state.last_success), "
                "last_error = excluded.last_error",
                (source, cursor, now, now if success else None, error),
            )

    def fingerprints(self, execution_ids: list[str]) -> dict[str, str]:
        """The fingerprint each of these executions had when it was last mirrored."""
        if not execution_ids:
            return {}
        marks = ",".join("?" * len(execution_ids))
        rows = self.db.conn.execute(
            f"SELECT execution_id, fingerprint FROM mirrored_executions WHERE execution_id IN ({marks})",  # noqa: S608
            execution_ids,
        )
        return {r[0]: r[1] for r in rows}

    def open_ids(self, terminal: tuple[str, ...], limit: int = 200) -> list[str]:
        """Mirrored executions not finished when last seen (to look at again), oldest first."""
        marks = ",".join("?" * len(terminal))
        rows = self.db.conn.execute(
            f"SELECT execution_id FROM mirrored_executions WHERE gone = 0 AND state NOT IN ({marks}) "  # noqa: S608
            "ORDER BY start_date LIMIT ?",
            (*terminal, limit),
        )
        return [r[0] for r in rows]

    @staticmethod
    def mark_in(
        conn: Connection,
        execution_id: str,
        *,
        flow_id: str,
        state: str,
        fingerprint: str,
        start_date: str | None,
        gone: bool = False,
    ) -> None:
        conn.execute(
            "INSERT INTO mirrored_executions (execution_id, flow_id, state, fingerprint, start_date, "
            "synced_at, gone) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (execution_id) DO UPDATE SET "
            "state = excluded.state, fingerprint = excluded.fingerprint, synced_at = excluded.synced_at, "
            "gone = excluded.gone",
            (execution_id, flow_id, state, fingerprint, start_date, now_text(), int(gone)),
        )
