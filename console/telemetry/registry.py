"""The metric sources the services file knows: section key -> :class:`SourceKind`. A new source is
one module and one line here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import requests

from console.telemetry import prometheus
from console.telemetry.source import MetricSource, SourceKind

SOURCES: dict[str, SourceKind] = {
    prometheus.SOURCE.name: prometheus.SOURCE,
}


def build_source(
    config: Any, env: Mapping[str, str] | None = None, session: requests.Session | None = None
) -> MetricSource:
    """The source for a parsed section (``ServiceConfig.metrics``); secrets are read now."""
    return SOURCES[config.kind].build(config, env, session)
