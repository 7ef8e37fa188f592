"""``GET /api/executions/{id}``: where a run stands — its state, its place in the engine's queue
(``queue``: "queued" with how many runs go first, or "waiting" until a moment; the deployment's
``progress`` says it in words), the decision (verdict, severity,
confidence, summary), the plan, the approval, the deployment's status and the recorded outcome —
on either engine, read through the same parts as the Executions page. An incident run
(``incident-handler``, ``kind: "incident"``) also says its incident (open or resolved, its alerts)
and how the alert's severity routed the plan (``routing``)."""

from __future__ import annotations

import time
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from console.api.approvals import ID, approval_json
from console.api.context import Context
from console.api.http import ApiError, JsonAnswer, finite
from console.domain.executions import Execution
from console.domain.models import format_time
from console.engines.backend import INCIDENT_FLOW_ID, BackendError, BackendUnavailable
from console.presentation.queue import queue_state, run_progress
from console.presentation.tables import execution_decision, task_output

MEASURED_KEYS = ("status", "reason", "source", "simulated", "window", "measured_at")


def _deployment_json(
    row: dict[str, Any] | None, execute: dict[str, Any], position: dict[str, Any] | None
) -> dict[str, Any] | None:
    if row is None and not execute:
        return None
    row = row or {}
    status = row.get("status") or execute.get("deployment_status")
    return {
        "id": row.get("id"),
        "service": row.get("service"),
        "version": row.get("version"),
        "previous_version": row.get("previous_version"),
        "environment": row.get("environment"),
        "deployed_at": row.get("deployed_at"),
        "deployed_by": row.get("deployed_by"),
        "status": status,
        "progress": run_progress(status, position),
        "simulated": execute.get("simulated"),
    }


def _executed(items: Any) -> list[dict[str, Any]]:
    out = []
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            out.append(
                {
                    key: item.get(key)
                    for key in ("name", "risk", "mode", "status", "simulated", "detail")
                    if key in item
                }
            )
    return out


def _outcome_json(record: Any) -> dict[str, Any] | None:
    if not isinstance(record, dict):
        return None
    approval = record.get("approval") if isinstance(record.get("approval"), dict) else {}
    measured = record.get("measured")
    if isinstance(measured, dict) and isinstance(measured.get("measured"), dict):
        measured = measured["measured"]
    return {
        "outcome": record.get("outcome"),
        "approval": {"status": approval.get("status"), "approvers": approval.get("approvers")},
        "executed": _executed(record.get("executed")),
        "measured": {key: measured.get(key) for key in MEASURED_KEYS} if isinstance(measured, dict) else None,
        "expected": record.get("expected") if "expected" in record else record.get("scenario"),
    }


def _incident_json(incident: dict[str, Any] | None, execution: Execution) -> dict[str, Any] | None:
    """The incident an incident-handler run is about: where it stands (open / resolved) and its
    alerts; for a run started outside the console (Kestra's webhook) what its collect step saw."""
    if incident is None:
        found = task_output(execution, "collect", "incident")
        if execution.flow_id != INCIDENT_FLOW_ID or not isinstance(found, dict):
            return None
        return {
            "id": found.get("id"),
            "status": None,
            "service": found.get("service"),
            "severity": found.get("severity"),
            "alertname": found.get("alertname"),
            "starts_at": found.get("starts_at"),
        }
    return {
        "id": incident["id"],
        "status": incident["status"],
        "service": incident["service"],
        "severity": incident["severity"],
        "alertname": incident["alert_key"],
        "summary": incident.get("summary"),
        "opened_at": incident["opened_at"],
        "resolved_at": incident.get("resolved_at"),
        "alerts": [
            {
                "fingerprint": a["fingerprint"],
                "status": a["status"],
                "starts_at": a["starts_at"],
                "ends_at": a.get("ends_at"),
            }
            for a in incident.get("alerts") or []
        ],
    }


def execution_json(
    execution: Execution,
    *,
    approval: dict[str, Any] | None,
    deployment: dict[str, Any] | None,
    engine_link: str | None = None,
    incident: dict[str, Any] | None = None,
    position: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The run as the API shows it (pure: the reads happen in the handler); ``position`` is its
    place in the embedded engine's queue (``Store.queue.positions``), if it is queued."""
    decision = execution_decision(execution)
    execute = task_output(execution, "execute", "executed") is not None
    execute_out: dict[str, Any] = {}
    if execute:
        execute_out = {
            "deployment_status": task_output(execution, "execute", "deployment_status"),
            "simulated": task_output(execution, "execute", "simulated"),
        }
    plan = task_output(execution, "decide", "plan")
    labels = dict(execution.labels)
    return {
        "id": execution.id,
        "flow": f"{execution.namespace}.{execution.flow_id}",
        "kind": "incident" if execution.flow_id == INCIDENT_FLOW_ID else "deployment",
        "state": execution.state.value,
        "queue": queue_state(position),
        "started_at": format_time(execution.start) if execution.start else None,
        "ended_at": format_time(execution.end) if execution.end else None,
        "duration_s": finite(execution.duration_s),
        "triggered_by": labels.get("triggered_by") or execution.inputs.get("triggered_by"),
        "labels": labels,
        "tasks": [{"task": run.task_id, "state": run.state.value} for run in execution.task_runs],
        "decision": {
            "verdict": decision.verdict.value,
            "severity": decision.severity.value,
            "confidence": finite(decision.confidence),
            "summary": decision.summary,
            "analyzer": decision.analyzer,
            "actions": [{"name": a.name, "risk": a.risk.value, "reason": a.reason} for a in decision.actions],
        }
        if decision is not None
        else None,
        "plan": plan if isinstance(plan, dict) else None,
        "approval": approval_json(approval) if approval is not None else None,
        "deployment": _deployment_json(deployment, execute_out, position),
        "incident": _incident_json(incident, execution),
        "routing": task_output(execution, "decide", "routing"),
        "outcome": _outcome_json(task_output(execution, "record", "outcome")),
        "links": {"console": f"/executions?execution={execution.id}", "engine": engine_link},
    }


async def get_execution(request: Request, ctx: Context) -> JsonAnswer:
    execution_id = request.path_params["execution_id"]
    if not ID.match(execution_id):
        raise ApiError(404, "execution not found")
    backend = ctx.backend()
    store = ctx.store()
    service = ctx.approval_service()

    def read() -> dict[str, Any]:
        try:
            execution = backend.get_execution(execution_id)
        except BackendUnavailable as exc:
            raise ApiError(503, f"engine unreachable: {exc}", headers={"Retry-After": "5"}) from None
        except BackendError as exc:
            if str(exc).endswith("not found"):
                raise ApiError(404, f"execution {execution_id} not found") from None
            raise ApiError(502, f"engine: {exc}") from None
        return execution_json(
            execution,
            approval=service.for_execution(execution_id),
            deployment=store.deployments.for_execution(execution_id),
            engine_link=backend.ui_link(execution_id),
            incident=store.incidents.for_execution(execution_id),
            position=store.queue.positions([execution_id], time.time()).get(execution_id),
        )

    return JsonAnswer(await run_in_threadpool(read))
