"""Incidents as stored: the alerts of one service and one alert name, open until every attached
alert has resolved, and the run started for each."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from typing import Any

from console.domain.models import SEVERITY_ORDER, Severity, format_time, now_text
from console.storage.database import Connection, Database, dumps, loads


class Incidents:
    """The ``incidents`` rows and their ``incident_alerts``."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def open_or_attach_in(
        self,
        conn: Connection,
        *,
        service: str,
        alert_key: str,
        fingerprint: str,
        starts_at: str,
        severity: Severity | str,
        labels: dict[str, str] | None = None,
        annotations: dict[str, str] | None = None,
        summary: str | None = None,
        now: datetime | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Attach a firing alert to the open incident of ``(service, alert_key)``, opening one when
        there is none. Returns (the incident, True when it was opened now). The incident keeps the
        highest severity of its alerts; the same alert attached twice is one alert."""
        stamp = format_time(now or datetime.now(UTC))
        level = Severity(severity).value
        row = conn.execute(
            "SELECT * FROM incidents WHERE service = ? AND alert_key = ? AND status = 'open'",
            (service, alert_key),
        ).fetchone()
        created = row is None
        if created:
            incident_id = "inc-" + secrets.token_hex(6)
            conn.execute(
                "INSERT INTO incidents (id, service, alert_key, status, severity, summary, opened_at, "
                "updated_at) VALUES (?, ?, ?, 'open', ?, ?, ?, ?)",
                (incident_id, service, alert_key, level, summary, stamp, stamp),
            )
        else:
            incident_id = row["id"]
            conn.execute(
                "UPDATE incidents SET severity = ?, updated_at = ? WHERE id = ?",
                (_higher(row["severity"], level), stamp, incident_id),
            )
        conn.execute(
            "INSERT INTO incident_alerts (incident_id, fingerprint, starts_at, status, labels, "
            "annotations, first_seen_at, last_seen_at) VALUES (?, ?, ?, 'firing', ?, ?, ?, ?) "
            "ON CONFLICT (incident_id, fingerprint, starts_at) "
            "DO UPDATE SET last_seen_at = excluded.last_seen_at",
            (
                incident_id,
                fingerprint,
                starts_at,
                dumps(labels or {}),
                dumps(annotations or {}),
                stamp,
                stamp,
            ),
        )
        return self._get_in(conn, incident_id), created

    def open_or_attach(self, **kwargs: Any) -> tuple[dict[str, Any], bool]:
        with self.db.write() as conn:
            return self.open_or_attach_in(conn, **kwargs)

    @staticmethod
    def set_execution_in(conn: Connection, incident_id: str, execution_id: str) -> None:
        """The run started for the incident."""
        conn.execute(
            "UPDATE incidents SET execution_id = ?, updated_at = ? WHERE id = ?",
            (execution_id, now_text(), incident_id),
        )

    def resolve_alert_in(
        self,
        conn: Connection,
        *,
        service: str,
        alert_key: str,
        fingerprint: str,
        starts_at: str,
        ends_at: str | None = None,
        now: datetime | None = None,
    ) -> dict[str, Any] | None:
        """An alert resolved: mark it so in the open incident of ``(service, alert_key)``; when none
        of its alerts fires any more, the incident is resolved. Returns the incident as it is now,
        or None when no open incident holds that alert."""
        stamp = format_time(now or datetime.now(UTC))
        row = conn.execute(
            "SELECT id FROM incidents WHERE service = ? AND alert_key = ? AND status = 'open'",
            (service, alert_key),
        ).fetchone()
        if row is None:
            return None
        changed = conn.execute(
            "UPDATE incident_alerts SET status = 'resolved', ends_at = ?, last_seen_at = ? "
            "WHERE incident_id = ? AND fingerprint = ? AND starts_at = ?",
            (ends_at or stamp, stamp, row["id"], fingerprint, starts_at),
        ).rowcount
        if not changed:
            return None
        firing = conn.execute(
            "SELECT count(*) FROM incident_alerts WHERE incident_id = ? AND status = 'firing'", (row["id"],)
        ).fetchone()[0]
        if firing == 0:
            conn.execute(
                "UPDATE incidents SET status = 'resolved', resolved_at = ?, updated_at = ? WHERE id = ?",
                (stamp, stamp, row["id"]),
            )
        else:
            conn.execute("UPDATE incidents SET updated_at = ? WHERE id = ?", (stamp, row["id"]))
        return self._get_in(conn, row["id"])

    def resolve_alert(self, **kwargs: Any) -> dict[str, Any] | None:
        with self.db.write() as conn:
            return self.resolve_alert_in(conn, **kwargs)

    @staticmethod
    def _get_in(conn: Connection, incident_id: str) -> dict[str, Any]:
        incident = _incident(conn.execute("SELECT * FROM incidents WHERE id = ?", (incident_id,)).fetchone())
        rows = conn.execute(
            "SELECT * FROM incident_alerts WHERE incident_id = ? ORDER BY first_seen_at, rowid",
            (incident_id,),
        )
        incident["alerts"] = [_alert(r) for r in rows]
        return incident

    def get(self, incident_id: str) -> dict[str, Any] | None:
        """The incident with its alerts (oldest first), or None."""
        with self.db.read() as conn:
            row = conn.execute("SELECT id FROM incidents WHERE id = ?", (incident_id,)).fetchone()
            return self._get_in(conn, row["id"]) if row else None

    def find_open(self, service: str, alert_key: str) -> dict[str, Any] | None:
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT id FROM incidents WHERE service = ? AND alert_key = ? AND status = 'open'",
                (service, alert_key),
            ).fetchone()
            return self._get_in(conn, row["id"]) if row else None

    def for_execution(self, execution_id: str) -> dict[str, Any] | None:
        with self.db.read() as conn:
            row = conn.execute(
                "SELECT id FROM incidents WHERE execution_id = ? ORDER BY opened_at DESC LIMIT 1",
                (execution_id,),
            ).fetchone()
            return self._get_in(conn, row["id"]) if row else None

    def list(
        self, *, status: str | None = None, service: str | None = None, limit: int = 50
    ) -> list[dict[str, Any]]:
        """Incidents newest first (without their alerts), optionally of one status and service."""
        sql = "SELECT * FROM incidents"
        clauses: list[str] = []
        args: list[Any] = []
        if status is not None:
            clauses.append("status = ?")
            args.append(status)
        if service is not None:
            clauses.append("service = ?")
            args.append(service)
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY opened_at DESC LIMIT ?"
        args.append(max(0, int(limit)))
        return [_incident(r) for r in self.db.conn.execute(sql, args)]

    @staticmethod
    def abandon_in(conn: Connection, incident_id: str, reason: str) -> None:
        """An incident whose run could not be started: closed as ``failed`` (so the sender's retry
        opens a new one and starts its run), with the reason as its summary's tail."""
        conn.execute(
            "UPDATE incidents SET status = 'failed', summary = COALESCE(summary, '') || ?, "
            "updated_at = ? WHERE id = ? AND status = 'open' AND execution_id IS NULL",
            (f" [run not started: {reason[:200]}]", now_text(), incident_id),
        )


def _incident(row: Any) -> dict[str, Any]:
    return dict(row)


def _alert(row: Any) -> dict[str, Any]:
    data = dict(row)
    data["labels"] = loads(data.get("labels"), {})
    data["annotations"] = loads(data.get("annotations"), {})
    return data


def _higher(a: str, b: str) -> str:
    order = [s.value for s in SEVERITY_ORDER]
    return a if order.index(a) >= order.index(b) else b
