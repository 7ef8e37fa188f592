"""``POST /api/alerts`` (Alertmanager's webhook, payload version 4) and ``POST /api/deployments`` (a
deployment announcement: the console's shape, GitHub's ``deployment_status``, an Argo CD
notification), each handed to :class:`console.inbound.Inbound`.

Answers (JSON):

- ``202`` when a run was started (``execution_id``, and for alerts the run of each alert);
- ``200`` when nothing new was started: a retried or concurrent duplicate (with the run the first
  one started), an alert attached to its open incident, a resolved alert, a payload that announces
  nothing (a GitHub status that is not ``success``);
- ``400`` naming the field of a malformed payload (a time outside the sane range too); ``422`` when
  the service has no telemetry source configured (every alert of the delivery, for alerts); ``503``
  (``Retry-After``) when the engine or the console's configuration cannot serve now, or the caller
  has its budget of runs in progress, ``502`` when the engine refused: nothing is kept, a retry
  starts it;
- ``503`` (``Retry-After``) for a delivery some of whose alerts were **deferred** (past
  ``CONSOLE_ALERTS_PER_DELIVERY`` new alerts, or past the caller's budget): the body lists each
  alert's status; Alertmanager retries any 5xx, and the alerts already handled are duplicates then.

GitHub cannot send a bearer token: a request carrying ``X-Hub-Signature-256`` is authenticated by
that HMAC of the raw body with ``CONSOLE_GITHUB_WEBHOOK_SECRET`` instead (failures count against the
address like wrong tokens).
"""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request

from console.api.context import Context
from console.api.guard import Guard
from console.api.http import ApiError, JsonAnswer, parse_json, read_body, read_json
from console.inbound import DEFERRED, IGNORED, LAUNCHED, InboundError, Outcome
from console.payloads import PayloadError, verify_github_signature

GITHUB_SIGNATURE = "x-hub-signature-256"
GITHUB_CALLER = "github"
GITHUB_CALLER_SOURCE = "GitHub's webhook signature (authenticated)"


def _links(execution_id: str | None) -> dict[str, str] | None:
    if not execution_id:
        return None
    return {
        "execution": f"/api/executions/{execution_id}",
        "console": f"/executions?execution={execution_id}",
    }


DEFERRED_RETRY_S = "5"


def _inbound_error(exc: InboundError) -> ApiError:
    headers = {"Retry-After": str(exc.retry_after_s)} if exc.status == 503 else None
    return ApiError(exc.status, str(exc), headers=headers)


# -- alerts ------------------------------------------------------------------------------------------


def _alerts_body(outcomes: list[Outcome]) -> dict[str, Any]:
    """The answer to a delivery: each alert's outcome, the runs started (each once), how many were
    launched and how many deferred."""
    runs = list(dict.fromkeys(o.execution_id for o in outcomes if o.execution_id))
    deferred = sum(1 for o in outcomes if o.status == DEFERRED)
    return {
        "status": "partly deferred" if deferred else "accepted",
        "execution_id": runs[0] if runs else None,
        "execution_ids": runs,
        "launched": sum(1 for o in outcomes if o.status == LAUNCHED),
        "deferred": deferred,
        "alerts": [o.to_dict() for o in outcomes],
    }


def _alerts_answer(outcomes: list[Outcome]) -> JsonAnswer:
    """422 when no alert could be handled (each names a service without a telemetry source); 503
    with Retry-After when some were deferred; else 202 when a run was launched, 200 when not."""
    if all(o.status == IGNORED and o.not_configured for o in outcomes):
        reasons = list(dict.fromkeys(o.reason for o in outcomes if o.reason))
        raise ApiError(422, "; ".join(reasons)[:500] or "no alert could be handled")
    answer = _alerts_body(outcomes)
    if answer["deferred"]:  # 5xx: Alertmanager sends the delivery again (a 4xx it would drop)
        answer["error"] = f"{answer['deferred']} alert(s) deferred: send the delivery again after Retry-After"
        return JsonAnswer(answer, 503, {"Retry-After": DEFERRED_RETRY_S})
    return JsonAnswer(answer, 202 if answer["launched"] else 200)


async def post_alerts(request: Request, ctx: Context) -> JsonAnswer:
    body = await read_json(request, ctx.settings.api_max_body_bytes)
    inbound = ctx.inbound()
    token = ctx.token
    caller = token.identity.name if token is not None else "alertmanager"
    caller_source = token.caller_source if token is not None else None
    try:
        outcomes: list[Outcome] = await run_in_threadpool(
            lambda: inbound.receive_alerts(body, received_by=caller, caller_source=caller_source)
        )
    except PayloadError as exc:
        raise ApiError(400, str(exc)) from None
    except InboundError as exc:
        raise _inbound_error(exc) from None
    return _alerts_answer(outcomes)


# -- deployments ---------------------------------------------------------------------------------------


async def post_deployments(request: Request, ctx: Context, guard: Guard) -> JsonAnswer:
    """An announcement, bearer-authenticated (the endpoint's guard) or signed by GitHub."""
    settings = ctx.settings
    raw = await read_body(request, settings.api_max_body_bytes)
    if ctx.token is None:  # no bearer token was asked for: a GitHub delivery, checked here
        secret = settings.github_webhook_secret
        signature = request.headers.get(GITHUB_SIGNATURE)
        if not secret:
            raise guard.refuse(
                request,
                ApiError(
                    401,
                    "GitHub-signed deliveries are not accepted here: set CONSOLE_GITHUB_WEBHOOK_SECRET to "
                    "the webhook's secret (or send Authorization: Bearer <token>)",
                ),
            )
        if not verify_github_signature(raw, signature, secret.get()):
            raise guard.refuse(
                request,
                ApiError(401, "X-Hub-Signature-256 does not match the body signed with the webhook's secret"),
                signature,
            )
        guard.limit(GITHUB_CALLER, settings)
        announced_by, caller_source = GITHUB_CALLER, GITHUB_CALLER_SOURCE
    else:
        announced_by, caller_source = ctx.token.identity.name, ctx.token.caller_source
    body = parse_json(raw)
    inbound = ctx.inbound()
    event = request.headers.get("x-github-event")
    delivery = request.headers.get("x-github-delivery")
    try:
        outcome: Outcome = await run_in_threadpool(
            lambda: inbound.announce_payload(
                body,
                announced_by=announced_by,
                caller_source=caller_source,
                github_event=event,
                delivery_id=delivery,
            )
        )
    except PayloadError as exc:
        raise ApiError(400, str(exc)) from None
    except InboundError as exc:
        raise _inbound_error(exc) from None
    answer: dict[str, Any] = {
        "status": outcome.status,
        "execution_id": outcome.execution_id,
        "deployment": outcome.deployment,
        "links": _links(outcome.execution_id),
    }
    if outcome.reason:
        answer["reason"] = outcome.reason
    return JsonAnswer(answer, 202 if outcome.status == LAUNCHED else 200)
