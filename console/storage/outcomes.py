"""Outcome records (what the ``record`` step wrote: the decision, the plan, what ran, the measured
outcome), and the compact fields kept beside each so Learning and action effectiveness never decode
whole records."""

from __future__ import annotations

from typing import Any

from console.domain.models import now_text
from console.storage.approvals import Approvals
from console.storage.codec import pack, put_large_in
from console.storage.database import Connection, Database, dumps, loads
from console.storage.documents import Documents


class Outcomes:
    """The ``outcomes`` rows: one record per finished execution."""

    def __init__(self, db: Database, documents: Documents, approvals: Approvals) -> None:
        self.db = db
        self.documents = documents
        self.approvals = approvals

    def save_in(
        self,
        conn: Connection,
        execution_id: str,
        deployment_id: str | None,
        record: dict[str, Any],
        recorded_at: str | None = None,
    ) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO outcomes (execution_id, deployment_id, record, recorded_at, learning, "
            "effect) VALUES (?, ?, ?, ?, ?, ?)",
            (
                execution_id,
                deployment_id,
                dumps(put_large_in(conn, "outcome", pack(conn, record))),
                recorded_at or now_text(),
                dumps(learning_fields(record)),
                dumps(effect_fields(record)),
            ),
        )

    def records(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Outcome records, oldest first, with the approval part taken from the approvals table
        (the authoritative source for who decided) when the execution had one."""
        sql = (
            "SELECT o.execution_id, o.record, a.id AS approval_id, a.status AS a_status, a.comment "
            "AS a_comment "
            "FROM outcomes o LEFT JOIN approvals a ON a.execution_id = o.execution_id "
            "ORDER BY o.recorded_at, o.execution_id"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        out = []
        with self.db.read() as conn:
            for row in conn.execute(sql).fetchall():
                record = self.documents.unpack(loads(row["record"], {}), conn)
                if row["approval_id"] is not None and row["a_status"] in ("approved", "rejected", "expired"):
                    votes = self.approvals.votes(row["approval_id"], conn)
                    approval = dict(record.get("approval") or {})
                    approval["status"] = row["a_status"]
                    # who decided: the approving voters, the rejecting one, nobody for an expiry
                    approved = row["a_status"] == "approved"
                    approval["approvers"] = (
                        []
                        if row["a_status"] == "expired"
                        else [v["actor"] for v in votes if v["approved"] == approved]
                    )
                    approval["comment"] = (
                        row["a_comment"] if row["a_comment"] is not None else approval.get("comment")
                    )
                    record["approval"] = approval
                out.append(record)
        return out

    def effectiveness_rows(self) -> list[dict[str, Any]]:
        """What action effectiveness (console/loop/effectiveness.py) reads of the outcome records
        with a conclusive measured outcome, in the record's shape but only those fields, each with
        ``times``: how many records have exactly these fields. The small ``effect`` column written
        with each record makes identical ones identical text, so SQL groups them (100k records:
        about 60 ms instead of 900 ms decoding each); a record of before that column is read whole."""
        out = []
        with self.db.read() as conn:
            grouped = conn.execute(
                "SELECT effect, COUNT(*) FROM outcomes WHERE effect IS NOT NULL "
                "AND json_extract(effect, '$[1]') IN (?, ?) GROUP BY effect",
                CONCLUSIVE,
            ).fetchall()
            out.extend(effect_record(loads(effect, None), times=times) for effect, times in grouped)
            for (record,) in conn.execute("SELECT record FROM outcomes WHERE effect IS NULL"):
                fields = effect_fields(self.documents.unpack(loads(record, {}), conn))
                if fields[1] in CONCLUSIVE:
                    out.append(effect_record(fields))
        return out

    def learning_rows(self, after: int = 0) -> list[tuple[str, int, str | None, str | None]]:
        """The few fields of each outcome the Learning page needs, oldest first:
        (execution id, seq, fields as JSON text, final approval status or None).

        ``fields`` is ``[verdict, confidence, actions, approval actions, approval status, held]``
        from the small ``learning`` column written with each record (:func:`learning_fields`), or
        extracted with ``json_extract`` for rows written before that column existed; the approval
        status comes from the approvals table when a human decided (it wins over the record).
        ``seq`` is the row's rowid: ``after`` reads only rows written after it (SQLite gives a
        replaced row a new rowid, so a re-recorded execution is read again too).
        """
        with self.db.read() as conn:
            return [tuple(row) for row in conn.execute(_LEARNING_SQL, (int(after),)).fetchall()]  # type: ignore[misc]

    def provenance(self) -> tuple[int, int]:
        """(recorded outcomes, those of simulated runs): a scenario's actions are simulated and its
        outcome measured on a recorded segment, so Learning says how much of it is that."""
        row = self.db.conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(d.simulated), 0) FROM outcomes o "
            "LEFT JOIN deployments d ON d.execution_id = o.execution_id"
        ).fetchone()
        return int(row[0]), int(row[1])

    def record(self, execution_id: str) -> dict[str, Any] | None:
        """The execution's outcome record as the record task wrote it, or None."""
        row = self.db.conn.execute(
            "SELECT record FROM outcomes WHERE execution_id = ?", (execution_id,)
        ).fetchone()
        return self.documents.unpack(loads(row["record"], None)) if row else None

    def latest_execution_id(self) -> str | None:
        """The execution of the newest outcome record written, whatever its verdict."""
        row = self.db.conn.execute(  # a record written again gets a new rowid: the newest write is last
            "SELECT execution_id FROM outcomes ORDER BY rowid DESC LIMIT 1"
        ).fetchone()
        return row[0] if row else None


def effect_fields(record: dict[str, Any]) -> list[Any]:
    """The fields of an outcome record action effectiveness reads, kept compact beside it:
    ``[category, measured status, simulated, [[action, status, simulated, dry run], ...], evidence]``
    where ``evidence`` (the decision's log patterns, guards and metrics) is kept only for a record
    without its root-cause category (:func:`effect_record` gives them back in the record's shape)."""
    executed = record.get("executed") if isinstance(record.get("executed"), list) else []
    measured = record.get("measured") if isinstance(record.get("measured"), dict) else {}
    outcome = record.get("outcome") if isinstance(record.get("outcome"), dict) else {}
    decision = record.get("decision") if isinstance(record.get("decision"), dict) else {}
    category = outcome.get("category")
    return [
        category,
        measured.get("status"),
        outcome.get("simulated"),
        [
            [a.get("name"), a.get("status"), a.get("simulated"), a.get("dry_run")]
            for a in executed
            if isinstance(a, dict)
        ],
        None if category else {k: decision.get(k) for k in ("log_patterns", "guards", "metrics")},
    ]


CONCLUSIVE = ("resolved", "not_resolved")
"""Measured statuses that count for effectiveness."""


def effect_record(fields: list[Any], times: int = 1) -> dict[str, Any]:
    """The effect fields back in an outcome record's shape; ``times``: how many records they stand for."""
    category, measured, simulated, actions, evidence = fields
    return {
        "times": times,
        "executed": [
            {"name": name, "status": status, "simulated": sim, "dry_run": dry}
            for name, status, sim, dry in actions
        ],
        "measured": {"status": measured},
        "outcome": {"category": category, "simulated": simulated},
        "decision": evidence or {},
    }


def learning_fields(record: dict[str, Any]) -> list[Any]:
    """The few fields of an outcome record the Learning page reads, kept beside the record so the page
    never decodes whole records (~4 KB each): [verdict, confidence, actions, approval actions,
    approval status, held], actions as ``{"name": ...}`` like in the record."""
    decision = record.get("decision") if isinstance(record.get("decision"), dict) else {}
    plan = record.get("plan") if isinstance(record.get("plan"), dict) else {}
    approval = record.get("approval") if isinstance(record.get("approval"), dict) else {}
    outcome = record.get("outcome") if isinstance(record.get("outcome"), dict) else {}

    def names(items: Any) -> list[dict[str, str]]:
        if not isinstance(items, list):
            return []
        return [{"name": str(i["name"])} for i in items if isinstance(i, dict) and i.get("name")]

    return [
        decision.get("verdict"),
        decision.get("confidence"),
        names(decision.get("actions")),
        names(plan.get("approval")),
        approval.get("status"),
        outcome.get("held"),
    ]


_LEARNING_SQL = """
SELECT o.execution_id, o.rowid,
       COALESCE(o.learning,
                json_extract(o.record, '$.decision.verdict', '$.decision.confidence', '$.decision.actions',
                             '$.plan.approval', '$.approval.status', '$.outcome.held')) AS fields,
       CASE WHEN a.status IN ('approved', 'rejected', 'expired') THEN a.status END AS final_status
FROM outcomes o
LEFT JOIN approvals a ON a.execution_id = o.execution_id
WHERE o.rowid > ?
ORDER BY o.rowid
"""
