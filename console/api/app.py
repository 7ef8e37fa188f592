"""The API as a Starlette application mounted at ``/api`` beside the pages (``server.py``).

Every endpoint but ``GET /api/health`` goes through the :class:`~console.api.guard.Guard` (token,
rate limit). Every answer is JSON, errors included: unknown paths (404), wrong methods (405), a
busy store (503 with ``Retry-After``) or a full or failing disk (507 with ``Retry-After``: either
way the request either committed or did nothing) and anything unexpected (500, one line; the
traceback goes to the server log only). One log line per request
names the method, the path, the status, the token's name and the time; never a header, a query
string or a body.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Awaitable, Callable

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount, Route

from console.api.approvals import list_approvals, post_decision
from console.api.context import Context
from console.api.executions import get_execution
from console.api.guard import Guard
from console.api.health import HealthChecker
from console.api.http import ApiError, JsonAnswer, error_answer
from console.api.inbound import GITHUB_CALLER, GITHUB_SIGNATURE, post_alerts, post_deployments
from console.runtime import Services, shared_services
from console.storage import StoreFault, StoreFull

log = logging.getLogger("console.api")

PREFIX = "/api"
Handler = Callable[[Request, Context], Awaitable[Response]]
_UNSAFE = re.compile(r"[^\x21-\x7e]")


def _log_path(path: str) -> str:
    return _UNSAFE.sub("?", path)[:200]


class Api:
    """The endpoints, with the parts they share (services, guard, health cache)."""

    def __init__(
        self,
        services: Callable[[], Services] = shared_services,
        *,
        guard: Guard | None = None,
        health: HealthChecker | None = None,
    ) -> None:
        self.services = services
        self.guard = guard or Guard()
        self.health_checker = health or HealthChecker()

    def endpoint(
        self, handler: Handler, *, auth: bool = True, github: bool = False
    ) -> Callable[[Request], Awaitable[Response]]:
        """``handler`` behind the guard (``auth``); with ``github``, a request signed by GitHub
        (``X-Hub-Signature-256``) skips the bearer check: the handler verifies the signature."""

        async def run(request: Request) -> Response:
            started = time.perf_counter()
            who = "-"
            try:
                services = await run_in_threadpool(self.services)
                signed = github and GITHUB_SIGNATURE in request.headers
                token = self.guard.authenticate(request, services.settings) if auth and not signed else None
                who = token.name if token is not None else GITHUB_CALLER if signed else "-"
                response = await handler(request, Context(services, token))
            except ApiError as exc:
                response = error_answer(exc)
            except StoreFault as exc:
                status = 507 if isinstance(exc, StoreFull) else 503
                retry = {"Retry-After": str(exc.retry_after_s)}
                response = error_answer(ApiError(status, str(exc), headers=retry, extra={"fault": exc.kind}))
            except Exception as exc:
                log.exception("API %s %s failed", request.method, _log_path(request.url.path))
                response = error_answer(
                    ApiError(500, f"internal error ({type(exc).__name__}); the server log has the details")
                )
            log.info(
                "API %s %s -> %d (token %s, %.0f ms)",
                request.method,
                _log_path(request.url.path),
                response.status_code,
                who,
                (time.perf_counter() - started) * 1000,
            )
            return response

        return run

    async def health(self, request: Request, ctx: Context) -> Response:
        api_status = self.guard.status(ctx.settings)
        code, body = await run_in_threadpool(self.health_checker.report, ctx.services, api_status)
        return JsonAnswer(body, code)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/health", self.endpoint(self.health, auth=False), methods=["GET"]),
            Route("/approvals", self.endpoint(list_approvals), methods=["GET"]),
            Route("/approvals/{approval_id}/decision", self.endpoint(post_decision), methods=["POST"]),
            Route("/executions/{execution_id}", self.endpoint(get_execution), methods=["GET"]),
            Route("/alerts", self.endpoint(post_alerts), methods=["POST"]),
            Route("/deployments", self.endpoint(self.deployments, github=True), methods=["POST"]),
        ]

    async def deployments(self, request: Request, ctx: Context) -> Response:
        return await post_deployments(request, ctx, self.guard)

    def app(self) -> Starlette:
        return Starlette(routes=self.routes(), exception_handlers={HTTPException: _http_error})


async def _http_error(request: Request, exc: Exception) -> Response:
    """Starlette's own 404 (no such endpoint) and 405 (wrong method), as JSON."""
    assert isinstance(exc, HTTPException)
    message = {404: "no such endpoint", 405: "method not allowed here"}.get(exc.status_code, exc.detail)
    log.info("API %s %s -> %d", request.method, _log_path(request.url.path), exc.status_code)
    return error_answer(ApiError(exc.status_code, str(message), headers=dict(exc.headers or {})))


def create_api(services: Callable[[], Services] = shared_services, **parts: object) -> Starlette:
    """The API application (paths without the ``/api`` prefix)."""
    return Api(services, **parts).app()  # type: ignore[arg-type]


async def _api_root(request: Request) -> Response:
    """``/api`` itself (without a slash would otherwise fall through to the pages' HTML)."""
    return error_answer(ApiError(404, "no such endpoint; the endpoints are under /api/ (see /api/health)"))


def api_routes(services: Callable[[], Services] = shared_services, **parts: object) -> list[BaseRoute]:
    """The routes ``server.py`` gives ``st.App``: the API mounted at ``/api``."""
    return [Route(PREFIX, _api_root), Mount(PREFIX, app=create_api(services, **parts))]
