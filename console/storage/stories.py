"""What the story of one execution is told from: its deployment row, its outcome record, its approval
and votes, and its audit rows (the timeline and the postmortem in :mod:`console.loop` read these)."""

from __future__ import annotations

from typing import Any

from console.domain.models import Verdict
from console.storage.approvals import Approvals
from console.storage.audit import Audit
from console.storage.database import Database, loads
from console.storage.documents import Documents

INCIDENT_VERDICTS = (Verdict.ROLLBACK.value, Verdict.ESCALATE.value)
"""The verdicts that make a finished run an incident (a CONTINUE is not one)."""


class Stories:
    """Reads of an execution's story (several tables, one snapshot)."""

    def __init__(self, db: Database, documents: Documents, approvals: Approvals, audit: Audit) -> None:
        self.db = db
        self.documents = documents
        self.approvals = approvals
        self.audit = audit

    def incident_material(self, execution_id: str) -> dict[str, Any]:
        """``deployment`` (row or None), ``record`` (the outcome record or None while the run has not
        finished), ``approval`` (the latest approval row or None), ``votes`` (oldest first) and
        ``audit`` (the rows about the execution and its approvals, oldest first), in one snapshot."""
        with self.db.read() as conn:
            deployment = conn.execute(
                "SELECT * FROM deployments WHERE execution_id = ?", (execution_id,)
            ).fetchone()
            outcome = conn.execute(
                "SELECT record FROM outcomes WHERE execution_id = ?", (execution_id,)
            ).fetchone()
            approval_ids = [
                r[0]
                for r in conn.execute(
                    "SELECT id FROM approvals WHERE execution_id = ? ORDER BY requested_at", (execution_id,)
                )
            ]
            approval = self.approvals.get(approval_ids[-1], conn) if approval_ids else None
            votes = self.approvals.votes(approval_ids[-1], conn) if approval_ids else []
            audit = self.audit.about_in(conn, [execution_id, *approval_ids])
        return {
            "deployment": dict(deployment) if deployment else None,
            "record": self.documents.unpack(loads(outcome["record"], None)) if outcome else None,
            "approval": approval,
            "votes": votes,
            "audit": audit,
        }

    def latest_incident_execution_id(self) -> str | None:
        """The execution of the newest finished incident (ROLLBACK or ESCALATE with an outcome record):
        the newest such deployment, through the (verdict, created_at) index; records without a
        deployment row (an engine that wrote none) are looked at only when there is no such
        deployment. None when there is no incident."""
        marks = ", ".join("?" for _ in INCIDENT_VERDICTS)
        row = self.db.conn.execute(
            "SELECT d.execution_id FROM deployments d "  # noqa: S608 - placeholders only
            "JOIN outcomes o ON o.execution_id = d.execution_id "
            f"WHERE d.verdict IN ({marks}) ORDER BY d.created_at DESC LIMIT 1",
            INCIDENT_VERDICTS,
        ).fetchone()
        if row is None:
            # the ids come from the primary key's index: a record's own columns (4 KB each, read past
            # on the way to recorded_at) are read only for the few without a deployment row
            row = self.db.conn.execute(
                "SELECT o.execution_id FROM outcomes o WHERE o.execution_id IN ("  # noqa: S608
                "SELECT x.execution_id FROM outcomes x "
                "WHERE NOT EXISTS (SELECT 1 FROM deployments d WHERE d.execution_id = x.execution_id)) "
                "AND COALESCE(json_extract(o.learning, '$[0]'), "
                f"json_extract(o.record, '$.decision.verdict')) IN ({marks}) "
                "ORDER BY o.recorded_at DESC, o.rowid DESC LIMIT 1",
                INCIDENT_VERDICTS,
            ).fetchone()
        return row[0] if row else None
