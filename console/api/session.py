"""``/auth/session``: where the browser turns a password sign-in into the session cookie, and where
signing out clears it (:mod:`console.access.sessions` has the rules). Beside the pages on the same
server (``server.py``), outside ``/api/``: a browser calls it, not a token holder.

- ``POST /auth/session`` with ``{"ticket": "..."}`` (the one-time ticket the sign-in form handed
  the page): 204 and ``Set-Cookie: console_session=...; HttpOnly; SameSite=Lax; Path=/;
  Max-Age=...`` (``Secure`` over https); 401 when the ticket is unknown, used or expired; 400 for
  a body that is not that.
- ``DELETE /auth/session``: the cookie's session is revoked in the store, the cookie cleared; 204.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from console.access.sessions import COOKIE_NAME, Sessions
from console.api.http import ApiError, error_answer, read_json
from console.runtime import Services, shared_services

PATH = "/auth/session"
MAX_BODY = 4096


def _secure(request: Request, services: Services) -> bool:
    return request.url.scheme == "https" or services.settings.public_url.startswith("https://")


def _sessions(services: Services) -> Sessions:
    if services.sessions is None:
        raise ApiError(503, f"sessions unavailable: {services.error or 'the store did not start'}")
    return services.sessions


def session_routes(services: Callable[[], Services] = shared_services) -> list[BaseRoute]:
    async def endpoint(request: Request) -> Response:
        try:
            parts = await run_in_threadpool(services)
            sessions = _sessions(parts)
            if request.method == "DELETE":
                await run_in_threadpool(sessions.end, cookie=request.cookies.get(COOKIE_NAME))
                response = Response(status_code=204)
                response.delete_cookie(COOKIE_NAME, path="/", httponly=True, samesite="lax")
                return response
            body = await read_json(request, MAX_BODY)
            ticket = body.get("ticket") if isinstance(body, dict) else None
            if not isinstance(ticket, str) or not ticket:
                raise ApiError(400, 'ticket: missing (send {"ticket": "..."})')
            cookie = await run_in_threadpool(sessions.redeem, ticket)
            if cookie is None:
                raise ApiError(401, "this sign-in hand-off is unknown, used or expired: sign in again")
            response = Response(status_code=204)
            response.set_cookie(
                COOKIE_NAME,
                cookie,
                max_age=sessions.max_age_s,
                path="/",
                httponly=True,
                samesite="lax",
                secure=_secure(request, parts),
            )
            return response
        except ApiError as exc:
            return error_answer(exc)

    return [Route(PATH, endpoint, methods=["POST", "DELETE"])]
