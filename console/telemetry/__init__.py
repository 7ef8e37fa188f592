"""Telemetry sources of live mode: the services file, Prometheus, JSON-lines logs, Loki, and the
snapshot built from them.

Imports only ``console.settings``, ``console.domain`` and standard/third-party libraries (its layer
in the import-linter contract). Typical use::

    config = service_config("demo-service", settings)          # NoSourceConfigured if absent
    collected = build_snapshot(config, deployment, start, end)  # CollectedSnapshot
    source = build_source(config.metrics)                       # the service's MetricSource
    collected.snapshot, collected.notes, collected.links
"""

from console.telemetry.config import (
    JsonlLogsConfig,
    LokiLogsConfig,
    PrometheusConfig,
    ServiceConfig,
    ServicesConfig,
    Windows,
    load_services,
    service_config,
)
from console.telemetry.errors import (
    ConfigError,
    InvalidDeployment,
    LogSourceError,
    LokiError,
    NoSourceConfigured,
    PrometheusError,
    SourceError,
    TelemetryError,
)
from console.telemetry.logs import JsonlLogSource, LogsResult, LokiSource
from console.telemetry.prometheus import PrometheusSource
from console.telemetry.promql import choose_step
from console.telemetry.registry import SOURCES, build_source
from console.telemetry.snapshot import CollectedSnapshot, build_snapshot, build_snapshot_for
from console.telemetry.source import MetricSource, MetricsResult

__all__ = [
    "SOURCES",
    "CollectedSnapshot",
    "ConfigError",
    "InvalidDeployment",
    "JsonlLogSource",
    "JsonlLogsConfig",
    "LogSourceError",
    "LogsResult",
    "LokiError",
    "LokiLogsConfig",
    "LokiSource",
    "MetricSource",
    "MetricsResult",
    "NoSourceConfigured",
    "PrometheusConfig",
    "PrometheusError",
    "PrometheusSource",
    "ServiceConfig",
    "ServicesConfig",
    "SourceError",
    "TelemetryError",
    "Windows",
    "build_snapshot",
    "build_snapshot_for",
    "build_source",
    "choose_step",
    "load_services",
    "service_config",
]
