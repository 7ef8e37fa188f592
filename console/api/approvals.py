"""``GET /api/approvals`` and ``POST /api/approvals/{id}/decision``: the Approvals page's list and
decision, for chat-ops buttons and scripts, through the same :class:`ApprovalService` (roles, no
self-review, two approvers for CRITICAL, expiry, a rejection needs a comment, the audit trail).

The acting identity is the token's own, or, for a token that acts for users, the configured person
the body names (:func:`console.access.tokens.acting_identity`); never a role from the request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from console.access.approvals import FINAL, MAX_COMMENT, AlreadyDecided, ApprovalNotFound, NoRollbackTarget
from console.access.auth import InvalidIdentity, PermissionDenied
from console.access.tokens import acting_identity
from console.api.context import Context
from console.api.http import ApiError, JsonAnswer, finite, read_json
from console.loop.revisions import TargetRefused

ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
STATUS_FILTERS: dict[str, list[str] | None] = {
    "pending": ["pending"],
    "approved": ["approved"],
    "rejected": ["rejected"],
    "expired": ["expired"],
    "cancelled": ["cancelled"],
    "superseded": ["superseded"],
    "decided": list(FINAL),
    "all": None,
}
DEFAULT_LIMIT, MAX_LIMIT = 50, 200
DECISION_FIELDS = ("decision", "comment", "actor", "rollback_to")


def query(request: Request, allowed: dict[str, str]) -> dict[str, str]:
    """The query parameters, each at most once and each known; ``allowed`` maps name -> default."""
    values = dict(allowed)
    seen: set[str] = set()
    for key, value in request.query_params.multi_items():
        if key not in allowed:
            raise ApiError(400, f"{key[:60]}: unknown query parameter (allowed: {', '.join(allowed)})")
        if key in seen:
            raise ApiError(400, f"{key}: given more than once")
        seen.add(key)
        values[key] = value
    return values


def approval_json(approval: dict[str, Any]) -> dict[str, Any]:
    """An approval as the API shows it: the request, its votes and where it stands."""
    decision = approval.get("decision") or {}
    return {
        "id": approval["id"],
        "execution_id": approval["execution_id"],
        "deployment_id": approval.get("deployment_id"),
        "service": approval.get("service"),
        "status": approval["status"],
        "risk": approval.get("risk"),
        "required_approvals": approval.get("required_approvals"),
        "requested_by": approval.get("requested_by"),
        "requested_at": approval.get("requested_at"),
        "expires_at": approval.get("expires_at"),
        "decided_by": approval.get("decided_by"),
        "decided_at": approval.get("decided_at"),
        "comment": approval.get("comment"),
        "resume_state": approval.get("resume_state"),
        "actions": [
            {"name": a.get("name"), "risk": a.get("risk"), "reason": a.get("reason")}
            for a in approval.get("actions") or []
            if isinstance(a, dict)
        ],
        "decision": {
            "verdict": approval.get("verdict") or decision.get("verdict"),
            "severity": approval.get("severity") or decision.get("severity"),
            "confidence": finite(approval.get("confidence", decision.get("confidence"))),
            "summary": decision.get("summary"),
        },
        "votes": [
            {"actor": v["actor"], "approved": v["approved"], "comment": v.get("comment"), "at": v["at"]}
            for v in approval.get("votes") or []
        ],
        "links": {
            "execution": f"/api/executions/{approval['execution_id']}",
            "console": f"/executions?execution={approval['execution_id']}",
        },
    }


async def list_approvals(request: Request, ctx: Context) -> JsonAnswer:
    params = query(request, {"status": "pending", "limit": str(DEFAULT_LIMIT)})
    status = params["status"].strip().lower()
    if status not in STATUS_FILTERS:
        raise ApiError(400, f"status: must be one of {', '.join(STATUS_FILTERS)}")
    try:
        limit = int(params["limit"])
    except ValueError:
        raise ApiError(400, f"limit: must be a whole number from 1 to {MAX_LIMIT}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, f"limit: must be a whole number from 1 to {MAX_LIMIT}")
    service = ctx.approval_service()

    def read() -> tuple[list[dict[str, Any]], str | None]:
        if status == "pending":
            items = service.pending()[:limit]
            return items, service.sync_error
        items = service.store.approvals.list(statuses=STATUS_FILTERS[status], limit=limit)
        for item in items:
            item["votes"] = service.store.approvals.votes(item["id"])
        return items, None

    items, warning = await run_in_threadpool(read)
    body: dict[str, Any] = {
        "status": status,
        "count": len(items),
        "approvals": [approval_json(a) for a in items],
    }
    if warning:
        body["warning"] = (
            f"the engine's paused executions could not be read, the list may be incomplete: {warning}"
        )
    return JsonAnswer(body)


@dataclass(frozen=True)
class DecisionBody:
    """A decision as the API takes it: ``rollback_to`` is another known-good version the approver
    picks for the plan's rollback (checked against the revision history when the vote counts)."""

    approve: bool
    comment: str
    actor: str | None = None
    rollback_to: str | None = None


def parse_decision(body: Any) -> DecisionBody:
    """The decision in a request body; :class:`ApiError` 400 naming the field."""
    if not isinstance(body, dict):
        raise ApiError(
            400, "body: must be a JSON object with decision, comment and optionally actor and rollback_to"
        )
    for key in body:
        if key not in DECISION_FIELDS:
            raise ApiError(400, f"{key[:60]}: unknown field (allowed: {', '.join(DECISION_FIELDS)})")
    decision = body.get("decision")
    if decision is None:
        raise ApiError(400, 'decision: missing ("approve" or "reject")')
    if decision not in ("approve", "reject"):
        raise ApiError(400, 'decision: must be "approve" or "reject"')
    comment = body.get("comment")
    if comment is None:
        comment = ""
    if not isinstance(comment, str):
        raise ApiError(400, "comment: must be a string")
    comment = comment.strip()
    if len(comment) > MAX_COMMENT:
        raise ApiError(400, f"comment: too long ({len(comment)} characters; at most {MAX_COMMENT})")
    if decision == "reject" and not comment:
        raise ApiError(400, "comment: a rejection needs a comment saying why")
    actor = body.get("actor")
    if actor is not None and not isinstance(actor, str):
        raise ApiError(400, "actor: must be a string (the person's name)")
    rollback_to = body.get("rollback_to")
    if rollback_to is not None:
        if not isinstance(rollback_to, str) or not rollback_to.strip():
            raise ApiError(400, "rollback_to: must be a version (a non-empty string)")
        if decision != "approve":
            raise ApiError(400, "rollback_to: only an approval picks a rollback target")
    return DecisionBody(decision == "approve", comment, actor, rollback_to.strip() if rollback_to else None)


async def post_decision(request: Request, ctx: Context) -> JsonAnswer:
    approval_id = request.path_params["approval_id"]
    if not ID.match(approval_id):
        raise ApiError(404, "approval not found")
    body = await read_json(request, ctx.settings.api_max_body_bytes)
    asked = parse_decision(body)
    assert ctx.token is not None
    try:
        identity = acting_identity(ctx.token, asked.actor, ctx.settings)
    except InvalidIdentity as exc:
        text = str(exc)
        raise ApiError(400, text if text.startswith("actor:") else f"actor: {text}") from None
    except PermissionDenied as exc:
        raise ApiError(403, str(exc)) from None
    service = ctx.approval_service()
    try:
        result = await run_in_threadpool(
            service.vote, approval_id, identity, asked.approve, asked.comment, asked.rollback_to
        )
    except PermissionDenied as exc:
        raise ApiError(403, str(exc)) from None
    except ApprovalNotFound:
        raise ApiError(404, f"approval {approval_id} not found") from None
    except AlreadyDecided as exc:  # also Superseded: closed because the service moved on
        current = await run_in_threadpool(_current, service, approval_id)
        raise ApiError(409, str(exc), extra={"approval": current}) from None
    except NoRollbackTarget as exc:
        raise ApiError(409, str(exc)) from None
    except TargetRefused as exc:
        raise ApiError(400, f"rollback_to: {exc}") from None
    except ValueError as exc:
        raise ApiError(400, f"comment: {exc}") from None
    approval = await run_in_threadpool(service.get, approval_id)
    return JsonAnswer(
        {
            "status": result.status,
            "message": result.message,
            "resumed": result.resumed,
            "actor": identity.name,
            "role": identity.role.value,
            "approval": approval_json(approval),
        }
    )


def _current(service: Any, approval_id: str) -> dict[str, Any] | None:
    """Who decided and when, for a 409 (None if it cannot be read)."""
    try:
        approval = service.get(approval_id)
    except Exception:
        return None
    return {
        "id": approval["id"],
        "status": approval["status"],
        "decided_by": approval.get("decided_by"),
        "decided_at": approval.get("decided_at"),
        "votes": [{"actor": v["actor"], "approved": v["approved"], "at": v["at"]} for v in approval["votes"]],
    }
