"""The audit trail: append-only (triggers refuse UPDATE and DELETE on every connection)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from console.domain.models import now_text
from console.storage.database import Connection, Database, dumps, loads


class Audit:
    """Who did what, when: launches, approval requests, votes, refusals, kills, recoveries."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def record_in(
        conn: Connection, actor: str, event: str, subject: str | None, detail: dict[str, Any]
    ) -> None:
        conn.execute(
            "INSERT INTO audit (at, actor, event, subject, detail) VALUES (?, ?, ?, ?, ?)",
            (now_text(), actor, event, subject, dumps(detail)),
        )

    def record(self, actor: str, event: str, subject: str | None, detail: dict[str, Any]) -> None:
        with self.db.write() as conn:
            self.record_in(conn, actor, event, subject, detail)

    @staticmethod
    def has_in(conn: Connection, subject: str, event: str) -> bool:
        """Whether the trail already has ``event`` about ``subject`` (for events written once)."""
        row = conn.execute(
            "SELECT 1 FROM audit WHERE subject = ? AND event = ? LIMIT 1", (subject, event)
        ).fetchone()
        return row is not None

    def trail(self, *, subject: str | None = None, limit: int = 200, offset: int = 0) -> list[dict[str, Any]]:
        """Audit rows, newest first."""
        sql = "SELECT seq, at, actor, event, subject, detail FROM audit"
        args: list[Any] = []
        if subject is not None:
            sql += " WHERE subject = ?"
            args.append(subject)
        sql += " ORDER BY seq DESC LIMIT ? OFFSET ?"
        args += [limit, offset]
        return [_row(row) for row in self.db.conn.execute(sql, args)]

    def after(self, seq: int, events: Sequence[str], limit: int = 100) -> tuple[list[dict[str, Any]], int]:
        """Audit rows after ``seq`` whose event is one of ``events``, oldest first, and how far the
        trail was read: the last row returned when ``limit`` cut the list, else the trail's end (read
        in the same snapshot, so no matching row can hide below it). A cursor moved there never reads
        the other events again (the notifications outbox follows the trail this way)."""
        marks = ", ".join("?" for _ in events)
        with self.db.read() as conn:
            rows = conn.execute(
                f"SELECT seq, at, actor, event, subject, detail FROM audit "  # noqa: S608 - placeholders only
                f"WHERE seq > ? AND event IN ({marks}) ORDER BY seq LIMIT ?",
                (int(seq), *events, int(limit)),
            ).fetchall()
            if len(rows) >= limit:
                read_to = int(rows[-1]["seq"])
            else:
                read_to = max(
                    int(seq), int(conn.execute("SELECT COALESCE(MAX(seq), 0) FROM audit").fetchone()[0])
                )
        return [_row(r) for r in rows], read_to

    @staticmethod
    def about_in(conn: Connection, subjects: Sequence[str]) -> list[dict[str, Any]]:
        """The rows about any of ``subjects``, oldest first (an execution's story)."""
        if not subjects:
            return []
        rows = conn.execute(
            "SELECT seq, at, actor, event, subject, detail FROM audit "  # noqa: S608 - placeholders only
            f"WHERE subject IN ({', '.join('?' for _ in subjects)}) ORDER BY seq",
            list(subjects),
        ).fetchall()
        return [_row(r) for r in rows]


def _row(row: Any) -> dict[str, Any]:
    return {**dict(row), "detail": loads(row["detail"], {})}
