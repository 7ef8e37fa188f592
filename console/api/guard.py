"""Who is calling: the bearer token checked against the configured tokens
(:mod:`console.access.tokens`), and how often they may call (token buckets).

- No token configured: 403, saying how to turn the API on (reads are off too).
- A token configuration that cannot be read: 503, nobody gets in (fail closed); the problems are in
  the server log, never in the answer.
- No or a wrong token: 401 with ``WWW-Authenticate: Bearer``. Failed attempts are limited per
  client address (a guesser gets 429 before the token is even compared).
- Each token has its own bucket (``CONSOLE_API_RATE_PER_MINUTE`` / ``CONSOLE_API_BURST``, or the
  token's ``rate_per_minute`` / ``burst``): 429 with ``Retry-After`` when it is empty.

The token's value is never logged and never put in an answer.
"""

from __future__ import annotations

import logging
import threading

from starlette.requests import Request

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

    def _client(self, request: Request) -> str:
        return f"ip:{request.client.host if request.client else 'unknown'}"

    def check_failures(self, request: Request) -> None:
        """429 when this address has failed too often lately (before any secret is compared)."""
        wait = self._failures.peek(self._client(request))
        if wait:
            raise ApiError(
                429,
                "too many requests with a missing or wrong token from this address; wait and retry",
                headers={"Retry-After": retry_after(wait)},
            )

    def failed(self, request: Request) -> None:
        """Count one failed authentication of this address."""
        self._failures.take(self._client(request))

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
        client = f"ip:{request.client.host if request.client else 'unknown'}"
        wait = self._failures.peek(client)
        if wait:
            raise ApiError(
                429,
                "too many requests with a missing or wrong token from this address; wait and retry",
                headers={"Retry-After": retry_after(wait)},
            )
        header = request.headers.get("authorization")
        scheme, _, presented = (header or "").strip().partition(" ")
        if not header:
            self._failures.take(client)
            raise ApiError(
                401,
                "this endpoint needs Authorization: Bearer <token>",
                headers={"WWW-Authenticate": CHALLENGE},
            )
        if scheme.lower() != "bearer" or not presented.strip():
            self._failures.take(client)
            raise ApiError(
                401,
                "the Authorization header must be: Bearer <token>",
                headers={"WWW-Authenticate": f'{CHALLENGE}, error="invalid_request"'},
            )
        token = registry.verify(presented.strip())
        if token is None:
            self._failures.take(client)
            raise ApiError(
                401, "invalid token", headers={"WWW-Authenticate": f'{CHALLENGE}, error="invalid_token"'}
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
