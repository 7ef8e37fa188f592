"""What arrives from outside, as stored: webhook deliveries (so a retried delivery never starts a
second run) and incidents (alerts of one service and one alert name, open until every attached alert
has resolved).

A delivery goes through :meth:`InboundStore.begin_delivery` before anything is started for it, and
:meth:`InboundStore.finish_delivery` once it is done:

- a new key is claimed (status ``received``) and the caller proceeds;
- a key already ``received`` by another request that is still in progress, or already finished
  (``launched``, ``attached``, ``resolved``, ``ignored``), is not claimed: the caller answers with
  what the row says (the run's id) and starts nothing;
- a key whose earlier attempt ``failed``, or stayed ``received`` longer than ``stale_after_s`` (the
  process died half-way), is claimed again (``attempts`` counts them).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from console.domain.models import SEVERITY_ORDER, Severity, format_time, now_text, parse_time
from console.storage.database import Connection, Database, dumps, loads

DELIVERY_STATUSES = ("received", "launched", "attached", "resolved", "ignored", "failed")
FINISHED_STATUSES = ("launched", "attached", "resolved", "ignored", "failed")
STALE_AFTER_S = 300.0
"""A delivery ``received`` this long ago whose request never finished may be claimed again."""


@dataclass(frozen=True)
class DeliveryClaim:
    """The outcome of :meth:`InboundStore.begin_delivery`."""

    claimed: bool
    """True: this request owns the delivery and must finish it. False: a duplicate."""
    row: dict[str, Any]
    retry: bool = False
    """Claimed again after a failed or abandoned attempt."""


def _delivery(row: Any) -> dict[str, Any]:
    data = dict(row)
    data["detail"] = loads(data.get("detail"), {})
    return data


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


class InboundStore(Database):
    """Webhook deliveries and incidents."""

    # -- deliveries -------------------------------------------------------------------------------

    def begin_delivery_in(
        self,
        conn: Connection,
        kind: str,
        key: str,
        *,
        detail: dict[str, Any] | None = None,
        stale_after_s: float = STALE_AFTER_S,
        now: datetime | None = None,
    ) -> DeliveryClaim:
        """Claim the delivery ``(kind, key)`` inside the caller's transaction (see the module's doc)."""
        moment = now or datetime.now(UTC)
        stamp = format_time(moment)
        row = conn.execute(
            "SELECT * FROM inbound_deliveries WHERE kind = ? AND key = ?", (kind, key)
        ).fetchone()
        if row is None:
            conn.execute(
                "INSERT INTO inbound_deliveries (kind, key, received_at, updated_at, status, detail) "
                "VALUES (?, ?, ?, ?, 'received', ?)",
                (kind, key, stamp, stamp, dumps(detail or {})),
            )
            return DeliveryClaim(True, self._delivery_in(conn, kind, key))
        abandoned = row["status"] == "received" and parse_time(row["updated_at"]) <= moment - timedelta(
            seconds=stale_after_s
        )
        if row["status"] == "failed" or abandoned:
            conn.execute(
                "UPDATE inbound_deliveries SET status = 'received', updated_at = ?, attempts = attempts + 1, "
                "execution_id = NULL WHERE kind = ? AND key = ?",
                (stamp, kind, key),
            )
            return DeliveryClaim(True, self._delivery_in(conn, kind, key), retry=True)
        return DeliveryClaim(False, _delivery(row))

    def begin_delivery(self, kind: str, key: str, **options: Any) -> DeliveryClaim:
        """:meth:`begin_delivery_in` in a transaction of its own."""
        with self.write() as conn:
            return self.begin_delivery_in(conn, kind, key, **options)

    def finish_delivery_in(
        self,
        conn: Connection,
        kind: str,
        key: str,
        *,
        status: str,
        execution_id: str | None = None,
        detail: dict[str, Any] | None = None,
    ) -> bool:
        """Record how a claimed delivery ended (merging ``detail`` into what is stored). False when
        there is no such delivery."""
        if status not in FINISHED_STATUSES:
            raise ValueError(f"not a finished delivery status: {status!r}")
        row = conn.execute(
            "SELECT detail FROM inbound_deliveries WHERE kind = ? AND key = ?", (kind, key)
        ).fetchone()
        if row is None:
            return False
        merged = {**loads(row["detail"], {}), **(detail or {})}
        conn.execute(
            "UPDATE inbound_deliveries SET status = ?, execution_id = COALESCE(?, execution_id), "
            "detail = ?, updated_at = ? WHERE kind = ? AND key = ?",
            (status, execution_id, dumps(merged), now_text(), kind, key),
        )
        return True

    def finish_delivery(self, kind: str, key: str, **options: Any) -> bool:
        """:meth:`finish_delivery_in` in a transaction of its own."""
        with self.write() as conn:
            return self.finish_delivery_in(conn, kind, key, **options)

    @staticmethod
    def _delivery_in(conn: Connection, kind: str, key: str) -> dict[str, Any]:
        row = conn.execute(
            "SELECT * FROM inbound_deliveries WHERE kind = ? AND key = ?", (kind, key)
        ).fetchone()
        return _delivery(row)

    def delivery(self, kind: str, key: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT * FROM inbound_deliveries WHERE kind = ? AND key = ?", (kind, key)
        ).fetchone()
        return _delivery(row) if row else None

    def deliveries(self, *, kind: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first."""
        if kind is None:
            rows = self.conn.execute(
                "SELECT * FROM inbound_deliveries ORDER BY received_at DESC LIMIT ?", (max(0, int(limit)),)
            )
        else:
            rows = self.conn.execute(
                "SELECT * FROM inbound_deliveries WHERE kind = ? ORDER BY received_at DESC LIMIT ?",
                (kind, max(0, int(limit))),
            )
        return [_delivery(r) for r in rows]

    # -- incidents --------------------------------------------------------------------------------

    def open_or_attach_incident_in(
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
        return self._incident_in(conn, incident_id), created

    def open_or_attach_incident(self, **kwargs: Any) -> tuple[dict[str, Any], bool]:
        with self.write() as conn:
            return self.open_or_attach_incident_in(conn, **kwargs)

    @staticmethod
    def set_incident_execution_in(conn: Connection, incident_id: str, execution_id: str) -> None:
        """The run started for the incident."""
        conn.execute(
            "UPDATE incidents SET execution_id = ?, updated_at = ? WHERE id = ?",
            (execution_id, now_text(), incident_id),
        )

    def resolve_incident_alert_in(
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
        return self._incident_in(conn, row["id"])

    def resolve_incident_alert(self, **kwargs: Any) -> dict[str, Any] | None:
        with self.write() as conn:
            return self.resolve_incident_alert_in(conn, **kwargs)

    @staticmethod
    def _incident_in(conn: Connection, incident_id: str) -> dict[str, Any]:
        incident = _incident(conn.execute("SELECT * FROM incidents WHERE id = ?", (incident_id,)).fetchone())
        rows = conn.execute(
            "SELECT * FROM incident_alerts WHERE incident_id = ? ORDER BY first_seen_at, rowid",
            (incident_id,),
        )
        incident["alerts"] = [_alert(r) for r in rows]
        return incident

    def incident(self, incident_id: str) -> dict[str, Any] | None:
        """The incident with its alerts (oldest first), or None."""
        with self.read() as conn:
            row = conn.execute("SELECT id FROM incidents WHERE id = ?", (incident_id,)).fetchone()
            return self._incident_in(conn, row["id"]) if row else None

    def open_incident(self, service: str, alert_key: str) -> dict[str, Any] | None:
        with self.read() as conn:
            row = conn.execute(
                "SELECT id FROM incidents WHERE service = ? AND alert_key = ? AND status = 'open'",
                (service, alert_key),
            ).fetchone()
            return self._incident_in(conn, row["id"]) if row else None

    def incident_for_execution(self, execution_id: str) -> dict[str, Any] | None:
        with self.read() as conn:
            row = conn.execute(
                "SELECT id FROM incidents WHERE execution_id = ? ORDER BY opened_at DESC LIMIT 1",
                (execution_id,),
            ).fetchone()
            return self._incident_in(conn, row["id"]) if row else None

    def incidents(
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
        return [_incident(r) for r in self.conn.execute(sql, args)]

    # -- what an incident run is judged against ------------------------------------------------

    SUSPECT_SOURCES_EXCLUDED = ("scenario", "snapshot", "alertmanager")
    """Rows that are not a real deployment of the service: demo scenarios, snapshots given as
    evidence, and incident runs themselves."""

    def suspect_deployment(
        self, service: str, starts_at: str, lookback_s: float, *, skew_s: float = 5.0
    ) -> dict[str, Any] | None:
        """The service's latest real deployment the read model knows, deployed in
        ``[starts_at - lookback_s, starts_at + skew_s]`` and still running (not rolled back):
        ``{"id", "version", "previous_version", "deployed_at", "deployed_by", "execution_id"}``,
        or None."""
        if lookback_s <= 0:
            return None
        start = parse_time(starts_at)
        rows = self.conn.execute(
            "SELECT ref, version, previous_version, deployed_at, deployed_by, running_version, "
            "execution_id, source, scenario FROM deployments WHERE service = ? "
            "ORDER BY created_at DESC LIMIT 20",
            (service,),
        ).fetchall()
        best: tuple[datetime, dict[str, Any]] | None = None
        for row in rows:
            if row["scenario"] or (row["source"] or "") in self.SUSPECT_SOURCES_EXCLUDED:
                continue
            try:
                at = parse_time(row["deployed_at"])
            except (TypeError, ValueError):
                continue
            if not start - timedelta(seconds=lookback_s) <= at <= start + timedelta(seconds=skew_s):
                continue
            if best is None or at > best[0]:
                best = (at, dict(row))
        if best is None:
            return None
        row = best[1]
        if row["running_version"] and row["running_version"] != row["version"]:
            return None  # rolled back since: what runs now is not that deploy
        return {
            "id": row["ref"] or None,
            "version": row["version"],
            "previous_version": row["previous_version"],
            "deployed_at": format_time(best[0]),
            "deployed_by": row["deployed_by"],
            "execution_id": row["execution_id"],
        }

    @staticmethod
    def abandon_incident_in(conn: Connection, incident_id: str, reason: str) -> None:
        """An incident whose run could not be started: closed as ``failed`` (so the sender's retry
        opens a new one and starts its run), with the reason as its summary's tail."""
        conn.execute(
            "UPDATE incidents SET status = 'failed', summary = COALESCE(summary, '') || ?, "
            "updated_at = ? WHERE id = ? AND status = 'open' AND execution_id IS NULL",
            (f" [run not started: {reason[:200]}]", now_text(), incident_id),
        )
