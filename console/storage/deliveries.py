"""Webhook deliveries as stored, so a retried delivery never starts a second run.

A delivery goes through :meth:`Deliveries.begin` (or :meth:`Deliveries.begin_in`, inside the
caller's transaction) before anything is started for it, and :meth:`Deliveries.finish` once it is
done:

- a new key is claimed (status ``received``) and the caller proceeds;
- a key already ``received`` by another request that is still in progress, or already finished
  (``launched``, ``attached``, ``resolved``, ``ignored``), is not claimed: the caller answers with
  what the row says (the run's id) and starts nothing;
- a key whose earlier attempt ``failed``, or stayed ``received`` longer than ``stale_after_s`` (the
  process died half-way), is claimed again (``attempts`` counts them).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from console.domain.models import format_time, now_text, parse_time
from console.storage.database import Connection, Database, dumps, loads

DELIVERY_STATUSES = ("received", "launched", "attached", "resolved", "ignored", "failed")
FINISHED_STATUSES = ("launched", "attached", "resolved", "ignored", "failed")
STALE_AFTER_S = 300.0
"""A delivery ``received`` this long ago whose request never finished may be claimed again."""


@dataclass(frozen=True)
class DeliveryClaim:
    """The outcome of :meth:`Deliveries.begin`."""

    claimed: bool
    """True: this request owns the delivery and must finish it. False: a duplicate."""
    row: dict[str, Any]
    retry: bool = False
    """Claimed again after a failed or abandoned attempt."""


class Deliveries:
    """The ``inbound_deliveries`` rows, one per (kind, key)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def begin_in(
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
            return DeliveryClaim(True, self._get_in(conn, kind, key))
        abandoned = row["status"] == "received" and parse_time(row["updated_at"]) <= moment - timedelta(
            seconds=stale_after_s
        )
        if row["status"] == "failed" or abandoned:
            conn.execute(
                "UPDATE inbound_deliveries SET status = 'received', updated_at = ?, attempts = attempts + 1, "
                "execution_id = NULL WHERE kind = ? AND key = ?",
                (stamp, kind, key),
            )
            return DeliveryClaim(True, self._get_in(conn, kind, key), retry=True)
        return DeliveryClaim(False, _delivery(row))

    def begin(self, kind: str, key: str, **options: Any) -> DeliveryClaim:
        """:meth:`begin_in` in a transaction of its own."""
        with self.db.write() as conn:
            return self.begin_in(conn, kind, key, **options)

    def finish_in(
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

    def finish(self, kind: str, key: str, **options: Any) -> bool:
        """:meth:`finish_in` in a transaction of its own."""
        with self.db.write() as conn:
            return self.finish_in(conn, kind, key, **options)

    @staticmethod
    def _get_in(conn: Connection, kind: str, key: str) -> dict[str, Any]:
        row = conn.execute(
            "SELECT * FROM inbound_deliveries WHERE kind = ? AND key = ?", (kind, key)
        ).fetchone()
        return _delivery(row)

    def get(self, kind: str, key: str) -> dict[str, Any] | None:
        row = self.db.conn.execute(
            "SELECT * FROM inbound_deliveries WHERE kind = ? AND key = ?", (kind, key)
        ).fetchone()
        return _delivery(row) if row else None

    def list(self, *, kind: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first."""
        if kind is None:
            rows = self.db.conn.execute(
                "SELECT * FROM inbound_deliveries ORDER BY received_at DESC LIMIT ?", (max(0, int(limit)),)
            )
        else:
            rows = self.db.conn.execute(
                "SELECT * FROM inbound_deliveries WHERE kind = ? ORDER BY received_at DESC LIMIT ?",
                (kind, max(0, int(limit))),
            )
        return [_delivery(r) for r in rows]


def _delivery(row: Any) -> dict[str, Any]:
    data = dict(row)
    data["detail"] = loads(data.get("detail"), {})
    return data
