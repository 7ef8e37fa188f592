"""The read models an execution fills as it runs: its deployment row, the metric points of its
snapshot, its outcome record.

Written from what the loop's tasks return (their outputs), inside the engine's transaction for the
same step, so a page never sees a task finished without its read-model change. Nothing here knows
how the engine runs; any engine whose task outputs have the steps' shapes can drive it.
"""

from __future__ import annotations

from typing import Any

from console.domain.models import parse_time
from console.domain.vocabulary import TIMEOUT_ACTOR, DeploymentStatus
from console.storage import Connection, Store, now_text


class Projection:
    """Read-model writes for one store, one method per event of an execution."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def launched(
        self,
        conn: Connection,
        execution_id: str,
        snapshot: dict[str, Any],
        *,
        scenario: str | None,
        triggered_by: str,
        at: str,
    ) -> None:
        """A deployment row for the new execution, ``analyzing``."""
        dep = snapshot.get("deployment") or {}
        self.store.insert_deployment_in(
            conn,
            deployment_id=f"{dep.get('id') or 'deployment'}-{execution_id[:8]}",
            ref=str(dep.get("id") or ""),
            service=str(dep.get("service") or "unknown"),
            version=str(dep.get("version") or "unknown"),
            previous_version=dep.get("previous_version"),
            environment=dep.get("environment") or "production",
            deployed_at=dep.get("deployed_at") or at,
            deployed_by=dep.get("deployed_by") or triggered_by,
            execution_id=execution_id,
            scenario=scenario,
            status=DeploymentStatus.ANALYZING,
        )

    def task_finished(
        self, conn: Connection, execution_id: str, task_id: str, outputs: dict[str, Any]
    ) -> None:
        """What a finished step changes in the read models (``outputs`` as the step returned them)."""
        if task_id == "collect":
            snapshot = outputs["snapshot"]
            dep = snapshot["deployment"]
            self.store.update_deployment_in(conn, execution_id, deployed_at=dep["deployed_at"])
            points = {
                name: [(parse_time(ts).timestamp(), value) for ts, value in series]
                for name, series in snapshot["metrics"].items()
            }
            self.store.add_metric_points_in(
                conn, dep["service"], self._deployment_id(conn, execution_id), points
            )
        elif task_id in ("analyze", "summarize"):
            d = outputs["decision"]
            self.store.update_deployment_in(
                conn,
                execution_id,
                verdict=d["verdict"],
                severity=d["severity"],
                confidence=d["confidence"],
                analyzer=d.get("analyzer"),
                summary=d.get("summary"),
            )
        elif task_id == "decide":
            plan = outputs["plan"]
            if not plan.get("needs_approval"):
                self.store.update_deployment_in(
                    conn,
                    execution_id,
                    approval="auto" if plan.get("auto") else "not_required",
                    decided_at=now_text(),
                )
        elif task_id == "execute":
            self.store.update_deployment_in(conn, execution_id, status=outputs["deployment_status"])
        elif task_id == "record":
            self.store.save_outcome_in(
                conn, execution_id, self._deployment_id(conn, execution_id), outputs["outcome"]
            )

    def paused(self, conn: Connection, execution_id: str) -> None:
        self.store.update_deployment_in(
            conn, execution_id, status=DeploymentStatus.AWAITING_APPROVAL, approval="pending"
        )

    def resumed(self, conn: Connection, execution_id: str, *, approved: bool, approver: str) -> None:
        outcome = "expired" if approver == TIMEOUT_ACTOR else "approved" if approved else "rejected"
        self.store.update_deployment_in(conn, execution_id, approval=outcome, decided_at=now_text())

    def failed(self, conn: Connection, execution_id: str) -> None:
        self.store.update_deployment_in(conn, execution_id, status=DeploymentStatus.FAILED)

    def killed(self, conn: Connection, execution_id: str) -> None:
        self.store.update_deployment_in(conn, execution_id, status=DeploymentStatus.CANCELLED)

    def _deployment_id(self, conn: Connection, execution_id: str) -> str | None:
        ref = self.store.deployment_ref_in(conn, execution_id)
        return ref[0] if ref else None
