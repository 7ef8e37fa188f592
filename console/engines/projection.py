"""The read model an execution fills, the same for both engines.

Each finished task of the loop changes the read models in a known way (the deployment row, the
documents its decision saw, its actions, its outcome record). The embedded engine applies those
changes as its tasks finish, inside the same transaction; the Kestra mirror
(:mod:`console.engines.kestra.mirror`) folds a whole execution it read from Kestra through the
same functions. Every change is idempotent (projecting an execution twice changes nothing), so the
mirror can re-read an execution whenever it changed. Nothing here knows how an engine runs: any
engine whose task outputs have the steps' shapes (docs/ARCHITECTURE.md) can drive it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from console.domain.actions import ROLLBACK, changes_service
from console.domain.executions import Execution, State, TaskRun
from console.domain.models import format_time, now_text
from console.domain.vocabulary import (
    APPROVAL_TASK,
    LOOP_TASKS,
    SUPERSEDED_ACTOR,
    TIMEOUT_ACTOR,
    DeploymentStatus,
)
from console.loop import revisions
from console.loop.verification import TELEMETRY_LOST
from console.storage import Connection, Store
from console.storage.codec import put_document_in

ESCALATED_EVENT = "deployment.escalated"
"""The audit event of a run that escalates without a human's decision (telemetry lost, the store
refusing writes); the notifications follow it."""


def deployment_row_id(deployment: dict[str, Any], execution_id: str) -> str:
    """The read model's id of a run's deployment: the announced id, made unique per run."""
    return f"{deployment.get('id') or 'deployment'}-{execution_id[:8]}"


class Projection:
    """Read-model writes for one store, one method per event of an execution."""

    def __init__(self, store: Store, engine: str) -> None:
        self.store = store
        self.engine = engine

    # -- events -----------------------------------------------------------------------------------------

    def launched(
        self,
        conn: Connection,
        execution_id: str,
        *,
        deployment: dict[str, Any],
        scenario: dict[str, Any] | None,
        triggered_by: str,
        source: str,
        at: str,
    ) -> None:
        """The run's deployment row, ``analyzing`` (kept as it is when it exists)."""
        self.store.deployments.insert_in(
            conn,
            deployment_id=deployment_row_id(deployment, execution_id),
            ref=str(deployment.get("id") or ""),
            service=str(deployment.get("service") or "unknown"),
            version=str(deployment.get("version") or "unknown"),
            previous_version=deployment.get("previous_version"),
            environment=deployment.get("environment") or "production",
            deployed_at=deployment.get("deployed_at") or at,
            deployed_by=deployment.get("deployed_by") or triggered_by,
            execution_id=execution_id,
            scenario=(scenario or {}).get("id"),
            status=DeploymentStatus.ANALYZING,
            engine=self.engine,
            source=source,
            expected_verdict=(scenario or {}).get("expected_verdict"),
            created_at=at,
        )

    def task_finished(
        self, conn: Connection, execution_id: str, task_id: str, outputs: dict[str, Any], *, at: str
    ) -> None:
        """What a finished step changes (``outputs`` as the step returned them; ``at`` when it ended)."""
        if task_id == "collect":
            self._collected(conn, execution_id, outputs["snapshot"])
            self._history_from_collect(conn, execution_id, outputs, at)
            watched = outputs.get("verification")
            if isinstance(watched, dict) and watched.get("ended") == TELEMETRY_LOST:
                self.escalated(conn, execution_id, str(watched.get("reason") or TELEMETRY_LOST))
        elif task_id in ("analyze", "summarize"):
            decision = outputs["decision"]
            self.store.deployments.update_in(
                conn,
                execution_id,
                verdict=decision["verdict"],
                severity=decision["severity"],
                confidence=decision["confidence"],
                analyzer=decision.get("analyzer"),
                decision_ref=put_document_in(conn, "decision", decision),
            )
        elif task_id == "decide":
            plan = outputs["plan"]
            if not plan.get("needs_approval"):
                self.store.deployments.update_in(
                    conn, execution_id, approval="auto" if plan.get("auto") else "not_required", decided_at=at
                )
        elif task_id == "execute":
            self._executed(conn, execution_id, outputs)
        elif task_id == "verify":
            measured = outputs.get("measured") or {}
            values: dict[str, Any] = {"measured_status": measured.get("status")}
            if isinstance(measured.get("actions"), list):  # verify reconciled an unknown result
                settled = [a for a in measured["actions"] if isinstance(a, dict)]
                self.store.actions.update_in(conn, execution_id, [_action_row(a) for a in settled])
                values.update(self._running(conn, execution_id, measured.get("deployment_status"), settled))
            if measured.get("deployment_status"):
                values["status"] = measured["deployment_status"]
            self.store.deployments.update_in(conn, execution_id, **values)
        elif task_id == "record":
            self._recorded(conn, execution_id, outputs["outcome"], at)
            if not self._scenario(conn, execution_id):
                self.store.revisions.add_in(conn, revisions.events_from_record(outputs["outcome"], at=at))

    def paused(self, conn: Connection, execution_id: str) -> None:
        self.store.deployments.update_in(
            conn, execution_id, status=DeploymentStatus.AWAITING_APPROVAL, approval="pending"
        )

    def resumed(self, conn: Connection, execution_id: str, *, approved: bool, approver: str, at: str) -> None:
        outcome = "expired" if approver == TIMEOUT_ACTOR else "approved" if approved else "rejected"
        if approver == SUPERSEDED_ACTOR:
            outcome = "superseded"
        self.store.deployments.update_in(conn, execution_id, approval=outcome, decided_at=at)

    def failed(self, conn: Connection, execution_id: str) -> None:
        self.store.deployments.update_in(conn, execution_id, status=DeploymentStatus.FAILED)

    def escalated(self, conn: Connection, execution_id: str, reason: str) -> None:
        """The run could not reach a decision and says so: the deployment is escalated with the
        reason, and an audit row (``deployment.escalated``) that the notifications announce. Once
        per execution (a mirror may fold it again)."""
        self.store.deployments.update_in(conn, execution_id, status=DeploymentStatus.ESCALATED, note=reason)
        if not self.store.audit.has_in(conn, execution_id, ESCALATED_EVENT):
            ref = self.store.deployments.ref_in(conn, execution_id)
            versions = self.store.deployments.versions_in(conn, execution_id)
            detail = {
                "reason": reason,
                "service": ref[1] if ref else None,
                "version": versions[0] if versions else None,
            }
            self.store.audit.record_in(conn, "system:loop", ESCALATED_EVENT, execution_id, detail)

    def killed(self, conn: Connection, execution_id: str, note: str | None = None) -> None:
        values: dict[str, Any] = {"status": DeploymentStatus.CANCELLED}
        if note:
            values["note"] = note
        self.store.deployments.update_in(conn, execution_id, **values)

    # -- a whole execution (the Kestra mirror) ----------------------------------------------------------

    def project_execution(
        self,
        conn: Connection,
        execution: Execution,
        *,
        deployment: dict[str, Any],
        scenario: dict[str, Any] | None,
        triggered_by: str,
        source: str,
    ) -> None:
        """Fold an execution read from an engine into the read model: its deployment row, each
        finished step in order, a pause, its end. Task run values are read from the top of each
        task run's outputs (where the Kestra backend flattens them)."""
        started = execution.start
        at = format_time(started) if started else None
        self.launched(
            conn,
            execution.id,
            deployment=deployment,
            scenario=scenario,
            triggered_by=triggered_by,
            source=source,
            at=at or deployment.get("deployed_at") or "",
        )
        for task_id, run in _finished_steps(execution):
            self.task_finished(conn, execution.id, task_id, run.outputs or {}, at=_ended_at(run, started, at))
        pause = execution.task_run(APPROVAL_TASK)
        if pause is not None and pause.state == State.SUCCESS and "approved" in (pause.outputs or {}):
            self.resumed(
                conn,
                execution.id,
                approved=pause.outputs.get("approved") in (True, "true", "True"),
                approver=str(pause.outputs.get("approver") or ""),
                at=_ended_at(pause, started, at),
            )
        self._project_end(conn, execution, pause)

    def _project_end(self, conn: Connection, execution: Execution, pause: TaskRun | None) -> None:
        """Paused on the approval, failed, or killed/cancelled (a success ends with its record step)."""
        if execution.state == State.PAUSED and pause is not None and pause.state == State.PAUSED:
            self.paused(conn, execution.id)
        elif execution.state == State.FAILED:
            self.failed(conn, execution.id)
        elif execution.state in (State.KILLED, State.CANCELLED):
            note = (
                "cancelled by Kestra (the approval pause ran out)"
                if execution.state == State.CANCELLED
                else "killed in Kestra"
            )
            self.killed(conn, execution.id, note)

    # -- parts ----------------------------------------------------------------------------------------

    def _collected(self, conn: Connection, execution_id: str, snapshot: dict[str, Any]) -> None:
        dep = snapshot.get("deployment") or {}
        values: dict[str, Any] = {"snapshot_ref": put_document_in(conn, "snapshot", snapshot)}
        for name in ("deployed_at", "deployed_by", "previous_version", "environment"):
            if dep.get(name):
                values[name] = dep[name]
        self.store.deployments.update_in(conn, execution_id, **values)

    def _executed(self, conn: Connection, execution_id: str, outputs: dict[str, Any]) -> None:
        executed = [a for a in outputs.get("executed") or [] if isinstance(a, dict)]
        skipped = [a for a in outputs.get("skipped") or [] if isinstance(a, dict)]
        rows = [_action_row(a) for a in executed] + [_skipped_row(a) for a in skipped]
        self.store.actions.replace_in(conn, execution_id, rows)
        status = outputs.get("deployment_status")
        simulated = bool(outputs.get("simulated")) or any(row["simulated"] for row in rows)
        values: dict[str, Any] = {
            "simulated": simulated,
            **self._running(conn, execution_id, status, executed),
        }
        if status:
            values["status"] = status
        self.store.deployments.update_in(conn, execution_id, **values)
        superseded = outputs.get("superseded")
        if isinstance(superseded, dict) and superseded.get("by") == "precondition":
            # approved, then found superseded right before it ran: the approval says so, for both engines
            self.store.approvals.supersede_in(
                conn, execution_id, str(superseded.get("reason") or ""), at=now_text()
            )

    def _running(
        self, conn: Connection, execution_id: str, status: str | None, executed: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """The version running after the actions: a rollback's target once it is rolled back."""
        versions = self.store.deployments.versions_in(conn, execution_id)
        if versions is None:
            return {}
        version, previous = versions
        if status != DeploymentStatus.ROLLED_BACK.value:
            return {"running_version": version}
        rollback = next((a for a in executed if a.get("name") == ROLLBACK and a.get("status") == "done"), {})
        target = (rollback.get("params") or {}).get("to_version") if isinstance(rollback, dict) else None
        return {"running_version": target or previous or version}

    def _scenario(self, conn: Connection, execution_id: str) -> bool:
        """Whether the run is a scenario or a snapshot given as evidence (no revision history)."""
        source = self.store.deployments.source_in(conn, execution_id)
        return source is None or source[0] in ("scenario", "snapshot") or bool(source[1])

    def _history_from_collect(
        self, conn: Connection, execution_id: str, outputs: dict[str, Any], at: str
    ) -> None:
        verification = outputs.get("verification")
        if not isinstance(verification, dict) or self._scenario(conn, execution_id):
            return
        deployment = (outputs.get("snapshot") or {}).get("deployment") or {}
        events = revisions.events_from_collect(deployment, verification, execution_id=execution_id, at=at)
        self.store.revisions.add_in(conn, events)

    def _recorded(self, conn: Connection, execution_id: str, record: dict[str, Any], at: str) -> None:
        ref = self.store.deployments.ref_in(conn, execution_id)
        self.store.outcomes.save_in(conn, execution_id, ref[0] if ref else None, record, recorded_at=at)
        values: dict[str, Any] = {}
        expected = record.get("expected")
        if isinstance(expected, dict) and expected.get("matches") is not None:
            values["expected_match"] = bool(expected["matches"])
        measured = record.get("measured")
        if isinstance(measured, dict) and measured.get("status"):
            values["measured_status"] = measured["status"]
        if values:
            self.store.deployments.update_in(conn, execution_id, **values)


def _finished_steps(execution: Execution) -> Iterator[tuple[str, TaskRun]]:
    """The loop's steps (not the approval) that succeeded with the outputs their projection reads,
    in the loop's order."""
    for task_id in LOOP_TASKS:
        run = execution.task_run(task_id)
        if run is None or task_id == APPROVAL_TASK or run.state != State.SUCCESS:
            continue
        if _has_step_outputs(task_id, run.outputs or {}):
            yield task_id, run


def _ended_at(run: TaskRun, started: datetime | None, at: str | None) -> str:
    """When a task run ended (else when the execution started; else ``at``, else nothing)."""
    ended = run.end or started
    return format_time(ended) if ended else at or ""


def _has_step_outputs(task_id: str, outputs: dict[str, Any]) -> bool:
    """Whether a task run's outputs carry what :meth:`Projection.task_finished` reads (a finished
    Kestra task whose outputs were not fetched has none)."""
    needed = {
        "collect": "snapshot",
        "analyze": "decision",
        "summarize": "decision",
        "decide": "plan",
        "execute": "executed",
        "verify": "measured",
        "record": "outcome",
    }.get(task_id)
    return needed is not None and isinstance(outputs.get(needed), dict | list)


def _action_row(action: dict[str, Any]) -> dict[str, Any]:
    """One executed action as the actions table keeps it (an executor's result, or a result of
    the simulator that predates the executors: ``status: "simulated"`` with an ``effect``)."""
    status = str(action.get("status") or "?")
    simulated = bool(action.get("simulated")) or status == "simulated"
    if status == "simulated":
        status = "done"
    label = action.get("label")
    if not label and action.get("effect"):
        label = f"{action['effect']} (simulated)" if simulated else str(action["effect"])
    return {
        "name": action.get("name"),
        "risk": action.get("risk"),
        "mode": action.get("mode") or "auto",
        "status": status,
        "simulated": simulated,
        "changed": status == "done"
        and not simulated
        and not action.get("dry_run")
        and changes_service(action.get("name")),
        "executor": action.get("executor") or ("simulated" if simulated else None),
        "label": label,
        "detail": action.get("detail"),
        "started_at": action.get("started_at"),
        "finished_at": action.get("finished_at"),
        "result": {k: action[k] for k in _RESULT_EXTRAS if action.get(k)},
    }


_RESULT_EXTRAS = ("params", "commands", "evidence", "dry_run")
"""What of an executed action the actions table keeps besides its columns, when it says something
(the whole result is in the execution's outputs; the reason is the plan's)."""


def _skipped_row(action: dict[str, Any]) -> dict[str, Any]:
    reason = str(action.get("skipped") or "not approved")
    return {
        "name": action.get("name"),
        "risk": action.get("risk"),
        "mode": "approval",
        "status": "skipped",
        "simulated": False,
        "changed": False,
        "executor": None,
        "label": f"not run: {reason}",
        "detail": reason,
        "started_at": None,
        "finished_at": None,
        "result": {k: action[k] for k in ("reason", "params") if action.get(k)},
    }
