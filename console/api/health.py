"""``GET /api/health``: can the console serve, and how are the parts it talks to.

Each part is ``{"status": "up" | "degraded" | "down" | "not configured", "reason": "one line"}``:

- ``store`` (SQLite) and ``engine`` (embedded or Kestra): the answer is 200 when both are up, 503
  otherwise (a load balancer takes the console out). A store that reads but refuses writes (locked,
  disk full), a disk nearly full, or runs waiting out such a fault, is ``degraded`` with the reason
  (:func:`console.presentation.health.store_problem`); the answer is then 200 with the overall
  ``status: "degraded"``: reads are served, writes answer 503/507 with Retry-After;
- ``kestra`` when ``KESTRA_URL`` is set (then it is the engine), ``prometheus`` for every server the
  services file names (``GET /-/ready``, with the source's credentials), ``llm`` when
  ``TOGETHER_API_KEY`` is set (``GET /v1/models``): reported, never the reason for a 503;
- ``api``: whether tokens are configured.

No authentication (load balancers and Alertmanager's own checks call it), so reasons name parts and
services, never URLs, credentials or paths. Probes run in parallel with short timeouts and the
report is cached for a few seconds (the LLM's probe for a minute), so calling it often costs nothing
and cannot be turned against Prometheus, Kestra or the LLM.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import requests

from console.domain.models import format_time
from console.loop.narrative import LLMFailure, normalize_base_url
from console.presentation.health import store_problem
from console.runtime import Services
from console.telemetry import build_source
from console.telemetry.config import load_services
from console.telemetry.errors import TelemetryError

UP, DOWN, NOT_CONFIGURED, DEGRADED = "up", "down", "not configured", "degraded"
CACHE_S = 5.0
LLM_CACHE_S = 60.0
"""The LLM is a paid service on the internet: its probe is repeated at most once a minute."""
PROBE_TIMEOUT_S = 3.0
TOGETHER_URL = "https://api.together.xyz"


@dataclass(frozen=True)
class Check:
    status: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"status": self.status, "reason": self.reason}


def _line(text: object, limit: int = 200) -> str:
    flat = " ".join(str(text).split())
    return flat[:limit] if flat else "no detail"


def _http_reason(exc: requests.RequestException, timeout_s: float) -> str:
    if isinstance(exc, requests.Timeout):
        return f"no answer within {timeout_s:g} s"
    if isinstance(exc, requests.ConnectionError):
        return "unreachable (connection refused or no route)"
    return f"request failed ({type(exc).__name__})"


def check_store(services: Services) -> Check:
    if services.store is None:
        return Check(DOWN, _line(services.error or "the store did not open"))
    try:
        services.store.db.ping()
    except Exception as exc:
        return Check(DOWN, f"cannot read the database ({type(exc).__name__})")
    condition = services.store_condition()
    problem = store_problem(condition) if condition is not None else None
    if problem is not None:
        return Check(DEGRADED, _line(problem, 300))
    return Check(UP, f"SQLite, schema version {services.store.db.schema_version}")


def check_engine(services: Services) -> Check:
    if services.backend is None:
        return Check(DOWN, _line(services.error or "the engine did not start"))
    try:
        health = services.backend.health()
    except Exception as exc:
        return Check(DOWN, f"{services.backend.name}: health check failed ({type(exc).__name__})")
    if not health.ok:
        return Check(DOWN, f"{services.backend.name}: {_line(health.message)}")
    if services.backend.name == "kestra":
        return Check(UP, f"kestra {health.version or ''}".strip())
    return Check(UP, _line(health.message or services.backend.name))


def probe_prometheus(config: Any, timeout_s: float = PROBE_TIMEOUT_S) -> str | None:
    """None when the metric source answers ready, else why not (one line, no URL)."""
    try:
        return build_source(config).probe(timeout_s)
    except TelemetryError as exc:
        return _line(exc)


def check_prometheus(services: Services, timeout_s: float = PROBE_TIMEOUT_S) -> Check:
    settings = services.settings
    if settings.services_file is None:
        return Check(NOT_CONFIGURED, "CONSOLE_SERVICES_FILE is not set")
    try:
        config = load_services(settings.services_file, settings)
    except TelemetryError as exc:
        return Check(DOWN, f"services file: {_line(exc, 160)}")
    servers: dict[str, tuple[Any, list[str]]] = {}
    for name, service in sorted(config.services.items()):
        if service.metrics is not None:
            servers.setdefault(service.metrics.url, (service.metrics, []))[1].append(name)
    if not servers:
        return Check(NOT_CONFIGURED, "no service of the services file has a prometheus section")
    with ThreadPoolExecutor(max_workers=min(4, len(servers))) as pool:
        reasons = list(pool.map(lambda item: probe_prometheus(item[0], timeout_s), servers.values()))
    down = [
        f"{', '.join(names)}: {reason}"
        for (_, names), reason in zip(servers.values(), reasons, strict=True)
        if reason is not None
    ]
    if down:
        return Check(DOWN, _line(f"{len(down)} of {len(servers)} down: " + "; ".join(down), 300))
    return Check(UP, f"{len(servers)} server(s) ready")


def check_llm(services: Services, timeout_s: float = PROBE_TIMEOUT_S) -> Check:
    settings = services.settings
    if not settings.llm_enabled:
        return Check(NOT_CONFIGURED, "TOGETHER_API_KEY is not set: the rules write the narrative")
    try:
        base = normalize_base_url(settings.llm_base_url) or TOGETHER_URL
    except LLMFailure as exc:
        return Check(DOWN, _line(exc.reason))
    timeout = min(settings.llm_timeout_s, timeout_s)
    try:
        response = requests.get(
            f"{base}/v1/models",
            headers={"Authorization": f"Bearer {settings.together_api_key.get()}"},
            timeout=timeout,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        return Check(DOWN, _http_reason(exc, timeout))
    code = response.status_code
    if code in (401, 403):
        return Check(DOWN, f"the API key was refused (HTTP {code}): check TOGETHER_API_KEY")
    if code >= 500:
        return Check(DOWN, f"server error (HTTP {code})")
    if code == 200:
        return Check(UP, f"model {settings.llm_model}")
    return Check(UP, f"reachable (HTTP {code} on /v1/models)")


class HealthChecker:
    """The health report, refreshed at most every ``cache_s`` (one refresh at a time)."""

    def __init__(
        self,
        *,
        cache_s: float = CACHE_S,
        llm_cache_s: float = LLM_CACHE_S,
        timeout_s: float = PROBE_TIMEOUT_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cache_s = cache_s
        self.llm_cache_s = llm_cache_s
        self.timeout_s = timeout_s
        self._clock = clock
        self._cached: tuple[float, int, Services, dict[str, Any]] | None = None
        self._llm: tuple[float, Services, Check] | None = None
        self._lock = threading.Lock()

    def report(self, services: Services, api: tuple[str, str]) -> tuple[int, dict[str, Any]]:
        """(HTTP status, body) for ``GET /api/health``; ``api`` is the API's own (status, reason)."""
        with self._lock:
            now = self._clock()
            cached = self._cached
            if cached is not None and cached[2] is services and now - cached[0] < self.cache_s:
                code, body = cached[1], cached[3]
            else:
                code, body = self._measure(services)
                self._cached = (now, code, services, body)
        return code, {**body, "checks": {**body["checks"], "api": {"status": api[0], "reason": api[1]}}}

    def _llm_check(self, services: Services, timeout: float) -> Check:
        now = self._clock()
        if self._llm is not None and self._llm[1] is services and now - self._llm[0] < self.llm_cache_s:
            return self._llm[2]
        check = check_llm(services, timeout)
        self._llm = (now, services, check)
        return check

    def _measure(self, services: Services) -> tuple[int, dict[str, Any]]:
        timeout = self.timeout_s
        with ThreadPoolExecutor(max_workers=4) as pool:
            store = pool.submit(check_store, services)
            engine = pool.submit(check_engine, services)
            prometheus = pool.submit(check_prometheus, services, timeout)
            llm = pool.submit(self._llm_check, services, timeout)
            checks = {"store": store.result(), "engine": engine.result()}
            checks["kestra"] = (
                checks["engine"]
                if services.settings.kestra_url
                else Check(NOT_CONFIGURED, "KESTRA_URL is not set: the embedded engine runs the loop")
            )
            checks["prometheus"] = prometheus.result()
            checks["llm"] = llm.result()
        serving = checks["store"].status in (UP, DEGRADED) and checks["engine"].status == UP
        degraded = checks["store"].status == DEGRADED
        body = {
            "status": (DEGRADED if degraded else UP) if serving else DOWN,
            "engine": services.settings.backend_name,
            "checked_at": format_time(datetime.now(UTC)),
            "checks": {name: check.to_dict() for name, check in checks.items()},
        }
        return (200 if serving else 503), body
