"""Who is calling: the bearer token checked against the configured tokens
(:mod:`console.access.tokens`), and how often they may call (token buckets).

- No token configured: 403, saying how to turn the API on (reads are off too).
- A token configuration that cannot be read: 503, nobody gets in (fail closed); the problems are in
  the server log, never in the answer.
- No or a wrong token: 401 with ``WWW-Authenticate: Bearer``. The credential is checked first and
  only failures are counted, per client address and per presented credential: once either has
  failed too often the failures get 429 instead of 401, while a valid token from the same address
  goes through (someone else's guessing never locks a valid caller out).
- Each token has its own bucket (``CONSOLE_API_RATE_PER_MINUTE`` / ``CONSOLE_API_BURST``, or the
  token's ``rate_per_minute`` / ``burst``): 429 with ``Retry-After`` when it is empty.

The client's address is the connection's peer; ``X-Forwarded-For`` is honoured only when that peer
is one of ``CONSOLE_TRUSTED_PROXIES`` (:func:`trusted_proxy_headers`, which ``server.py`` puts in
front of the whole server, pages included). The token's value is never logged and never put in an
answer.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from typing import Any

from starlette.requests import Request
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from console.access.tokens import HOW_TO_ENABLE, ApiToken, TokenRegistry, load_tokens
from console.api.http import ApiError
from console.api.ratelimit import RateLimiter, retry_after
from console.settings import Settings

log = logging.getLogger("console.api")

FAILURES_PER_MINUTE = 10.0
FAILURE_BURST = 10
OFF_MESSAGE = (
    "the HTTP API is off: no token is configured, so every endpoint but GET /api/health refuses "
    "reads and writes; to turn it on, " + HOW_TO_ENABLE
)
BROKEN_MESSAGE = (
    "the HTTP API is off: its token configuration cannot be used (the server log says which key); "
    "no token is accepted until it is fixed"
)
CHALLENGE = 'Bearer realm="devops-loop-console"'
THROTTLED = "too many failed authentications from this address or with this credential; wait and retry"


def trusted_proxy_headers(app: Any, settings: Settings) -> Any:
    """``app`` behind uvicorn's ``X-Forwarded-For`` handling, trusting only the peers listed in
    ``CONSOLE_TRUSTED_PROXIES`` (none by default: the peer is the client). The ``Forwarded``
    header is never read."""
    return ProxyHeadersMiddleware(app, trusted_hosts=list(settings.trusted_proxy_list))


def client_address(request: Request) -> str:
    """The client's address as the proxy handling left it (see :func:`trusted_proxy_headers`)."""
    return request.client.host if request.client else "unknown"


def _credential_key(presented: str) -> str:
    """What a presented credential's failures are counted under (a digest, never the value)."""
    return "credential:" + hashlib.sha256(presented.encode("utf-8", "replace")).hexdigest()[:32]


class Guard:
    """Authentication and rate limits for one API app (one per process in production)."""

    def __init__(
        self,
        *,
        failures_per_minute: float = FAILURES_PER_MINUTE,
        failure_burst: int = FAILURE_BURST,
    ) -> None:
        self._failures = RateLimiter(failures_per_minute / 60.0, failure_burst)
        self._limiter: RateLimiter | None = None
        self._cached: tuple[Settings, TokenRegistry] | None = None
        self._lock = threading.Lock()

    def registry(self, settings: Settings) -> TokenRegistry:
        """The tokens of these settings, read once (and their problems logged once)."""
        with self._lock:
            if self._cached is not None and self._cached[0] is settings:
                return self._cached[1]
            registry = load_tokens(settings)
            for problem in registry.problems:
                log.error("API token configuration: %s", problem)
            for warning in registry.warnings:
                log.warning("%s", warning)
            self._cached = (settings, registry)
            self._limiter = RateLimiter(settings.api_rate_per_minute / 60.0, settings.api_burst)
            return registry

    def status(self, settings: Settings) -> tuple[str, str]:
        """(status, reason) of the API itself, for the health check."""
        registry = self.registry(settings)
        if registry.problems:
            return "down", "token configuration invalid (see the server log); every request is refused"
        if not registry.tokens:
            return "not configured", "no token configured: only GET /api/health answers"
        return "up", f"{len(registry.tokens)} token(s) configured"

    def refuse(self, request: Request, error: ApiError, credential: str | None = None) -> ApiError:
        """A failed authentication: counted against the client's address and the presented
        ``credential``; the error to answer is ``error``, or 429 once either has failed too often."""
        keys = ["address:" + client_address(request)]
        if credential:
            keys.append(_credential_key(credential))
        wait = max(self._failures.take(key) for key in keys)
        if wait:
            return ApiError(429, THROTTLED, headers={"Retry-After": retry_after(wait)})
        return error

    def limit(self, name: str, settings: Settings) -> None:
        """The rate limit of a caller that is not a token (a signed webhook): 429 when exhausted."""
        self.registry(settings)
        assert self._limiter is not None
        wait = self._limiter.take(f"caller:{name}")
        if wait:
            raise ApiError(
                429,
                f"rate limit of {name} reached; retry after the given seconds",
                headers={"Retry-After": retry_after(wait)},
            )

    def authenticate(self, request: Request, settings: Settings) -> ApiToken:
        """The caller's token, within its rate limit; else an :class:`ApiError` to answer."""
        registry = self.registry(settings)
        if registry.problems:
            raise ApiError(503, BROKEN_MESSAGE)
        if not registry.tokens:
            raise ApiError(403, OFF_MESSAGE)
        header = request.headers.get("authorization")
        scheme, _, presented = (header or "").strip().partition(" ")
        presented = presented.strip()
        if not header:
            raise self.refuse(
                request,
                ApiError(
                    401,
                    "this endpoint needs Authorization: Bearer <token>",
                    headers={"WWW-Authenticate": CHALLENGE},
                ),
            )
        if scheme.lower() != "bearer" or not presented:
            raise self.refuse(
                request,
                ApiError(
                    401,
                    "the Authorization header must be: Bearer <token>",
                    headers={"WWW-Authenticate": f'{CHALLENGE}, error="invalid_request"'},
                ),
                header.strip(),
            )
        token = registry.verify(presented)
        if token is None:
            raise self.refuse(
                request,
                ApiError(
                    401, "invalid token", headers={"WWW-Authenticate": f'{CHALLENGE}, error="invalid_token"'}
                ),
                presented,
            )
        assert self._limiter is not None
        rate = token.rate_per_minute / 60.0 if token.rate_per_minute else None
        wait = self._limiter.take(f"token:{token.name}", rate_per_s=rate, burst=token.burst)
        if wait:
            raise ApiError(
                429,
                f"rate limit of token {token.name} reached; retry after the given seconds",
                headers={"Retry-After": retry_after(wait)},
            )
        return token
