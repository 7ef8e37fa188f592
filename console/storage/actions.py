"""The actions of a run as they ran (or why they were skipped), in order: written by the projection
when ``execute`` finishes and again when ``verify`` settles an unknown result; read by the pages (a
deployment's actions, the markers of the Live section's charts)."""

from __future__ import annotations

from typing import Any

from console.storage.database import Connection, Database, dumps, loads


class Actions:
    """The ``actions`` rows of each execution."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def replace_in(conn: Connection, execution_id: str, actions: list[dict[str, Any]]) -> None:
        """The execution's actions as they ran (or were skipped), in order, replacing any earlier
        projection of them. Each item: name, risk, mode, status, simulated, changed, executor,
        label, detail, started_at, finished_at, and the whole result."""
        conn.execute("DELETE FROM actions WHERE execution_id = ?", (execution_id,))
        conn.executemany(
            "INSERT INTO actions (execution_id, seq, name, risk, mode, status, simulated, changed, executor, "
            "label, detail, started_at, finished_at, result) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    execution_id,
                    seq,
                    str(a.get("name") or "?"),
                    a.get("risk"),
                    str(a.get("mode") or "?"),
                    str(a.get("status") or "?"),
                    int(bool(a.get("simulated"))),
                    int(bool(a.get("changed"))),
                    a.get("executor"),
                    a.get("label"),
                    a.get("detail"),
                    a.get("started_at"),
                    a.get("finished_at"),
                    dumps(a.get("result") or {}),
                )
                for seq, a in enumerate(actions)
            ],
        )

    @staticmethod
    def update_in(conn: Connection, execution_id: str, actions: list[dict[str, Any]]) -> None:
        """The first ``len(actions)`` actions of the execution (those that ran, in order) as they were
        settled later (verify reconciled an unknown result); skipped ones after them stay."""
        conn.executemany(
            "UPDATE actions SET status = ?, changed = ?, label = ?, detail = ?, finished_at = ?, result = ? "
            "WHERE execution_id = ? AND seq = ?",
            [
                (
                    str(a.get("status") or "?"),
                    int(bool(a.get("changed"))),
                    a.get("label"),
                    a.get("detail"),
                    a.get("finished_at"),
                    dumps(a.get("result") or {}),
                    execution_id,
                    seq,
                )
                for seq, a in enumerate(actions)
            ],
        )

    def for_execution(self, execution_id: str) -> list[dict[str, Any]]:
        """The execution's actions in order: as they ran, or why they were skipped."""
        rows = self.db.conn.execute(
            "SELECT * FROM actions WHERE execution_id = ? ORDER BY seq", (execution_id,)
        ).fetchall()
        return [
            {**dict(r), "simulated": bool(r["simulated"]), "changed": bool(r["changed"]),
             "result": loads(r["result"], {})}
            for r in rows
        ]  # fmt: skip

    def on_service(self, service: str, *, since: str, launched_since: str) -> list[dict[str, Any]]:
        """The actions of ``service``'s runs that started at or after ``since`` (RFC 3339), oldest
        first, each with its run's execution id, version and previous version. Only runs created at
        or after ``launched_since`` are looked at (an action follows its run's launch: give a margin
        as long as an approval may wait)."""
        rows = self.db.conn.execute(
            "SELECT a.execution_id, a.seq, a.name, a.mode, a.status, a.simulated, a.changed, a.executor, "
            "a.label, a.detail, a.started_at, a.finished_at, d.version, d.previous_version "
            "FROM deployments d JOIN actions a ON a.execution_id = d.execution_id "
            "WHERE d.service = ? AND d.created_at >= ? AND a.started_at >= ? "
            "ORDER BY a.started_at, a.seq",
            (service, launched_since, since),
        ).fetchall()
        return [{**dict(r), "simulated": bool(r["simulated"]), "changed": bool(r["changed"])} for r in rows]
