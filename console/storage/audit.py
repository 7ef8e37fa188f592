"""The audit trail: append-only (triggers refuse UPDATE and DELETE on every connection)."""

from __future__ import annotations

from typing import Any

from console.domain.models import now_text
from console.storage.database import Connection, dumps, loads
from console.storage.documents import DocumentStore


class AuditStore(DocumentStore):
    """Who did what, when: launches, approval requests, votes, refusals, kills, recoveries."""

    @staticmethod
    def audit_in(
        conn: Connection, actor: str, event: str, subject: str | None, detail: dict[str, Any]
    ) -> None:
        conn.execute(
            "INSERT INTO audit (at, actor, event, subject, detail) VALUES (?, ?, ?, ?, ?)",
            (now_text(), actor, event, subject, dumps(detail)),
        )

    @staticmethod
    def audited_in(conn: Connection, subject: str, event: str) -> bool:
        """Whether the trail already has ``event`` about ``subject`` (for events written once)."""
        row = conn.execute(
            "SELECT 1 FROM audit WHERE subject = ? AND event = ? LIMIT 1", (subject, event)
        ).fetchone()
        return row is not None

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
