"""Errors of the telemetry sources. Every message is one line an operator can act on.

The HTTP sources (Prometheus, Loki) raise one subclass per kind of failure so that callers can
tell "fix the query" from "the server is down" without parsing text.
"""

from __future__ import annotations

from console.domain.text import one_line

MAX_MESSAGE = 400


class TelemetryError(Exception):
    """Base class: str(exc) is one clear line."""

    def __init__(self, message: str) -> None:
        super().__init__(one_line(message, MAX_MESSAGE))


class ConfigError(TelemetryError):
    """The services file is not valid. ``problems`` holds one line per problem, each naming the
    path of the offending key (``services.demo-service.prometheus.url: not a URL``)."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.problems = [one_line(p, MAX_MESSAGE) for p in problems]
        count = len(self.problems)
        head = f"{source}: " + (self.problems[0] if count == 1 else f"{count} problems")
        Exception.__init__(self, head if count == 1 else head + "\n" + "\n".join(self.problems))


class NoSourceConfigured(TelemetryError):
    """No telemetry source for that service: the loop must not invent data."""


class SourceError(TelemetryError):
    """A configured source failed (base of the per-source errors)."""


class PrometheusError(SourceError):
    pass


class PrometheusUnreachable(PrometheusError):
    """Connection refused, DNS failure, TLS failure: nothing answered."""


class PrometheusTimeout(PrometheusError):
    """No answer in time, or the server gave up on the query (HTTP 503, errorType timeout)."""


class PrometheusAuthError(PrometheusError):
    """HTTP 401/403."""


class PrometheusQueryError(PrometheusError):
    """HTTP 400/422: the PromQL is wrong or cannot run; the message carries Prometheus' reason."""


class PrometheusServerError(PrometheusError):
    """HTTP 5xx other than a query timeout."""


class PrometheusBadResponse(PrometheusError):
    """An answer that is not Prometheus' API (not JSON, wrong shape, HTTP 404 on the API path)."""


class LogSourceError(SourceError):
    """The JSON-lines file cannot be read."""


class LokiError(LogSourceError):
    pass


class LokiUnreachable(LokiError):
    pass


class LokiTimeout(LokiError):
    pass


class LokiAuthError(LokiError):
    pass


class LokiQueryError(LokiError):
    """HTTP 400: the LogQL is wrong; the message carries Loki's reason."""


class LokiServerError(LokiError):
    pass


class LokiBadResponse(LokiError):
    pass


class InvalidDeployment(TelemetryError):
    """The deployment given to snapshot building lacks a field the snapshot needs."""
