"""The metric-source interface: what the loop needs from wherever a service's metrics live.

A source fetches a window of canonical metrics with the real samples behind each point (and, when
it can, the counts behind them: :mod:`console.domain.evidence`), links a metric to its graph,
probes its server, and chooses the step of a window. Prometheus is one implementation
(``prometheus.py``); another source is one module that defines its config section, its
:class:`MetricSource` and a :class:`SourceKind`, plus one line in ``registry.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import requests

from console.domain.config_reader import ConfigReader
from console.domain.evidence import Evidence
from console.telemetry.times import Instant


@dataclass(frozen=True)
class MetricsResult:
    """One window of one service's metrics."""

    metrics: dict[str, list[tuple[float, float]]]
    """Canonical name -> (Unix seconds, value), only points backed by a real sample; a metric
    without data is absent."""
    notes: list[str]
    queries: dict[str, str]
    """What was read, per metric (the PromQL sent, or the raw series counted)."""
    links: dict[str, str]
    """Graph link per metric, over the same window."""
    step_s: float
    samples: dict[str, int] = field(default_factory=dict)
    """Real samples behind each metric in the window."""
    evidence: Evidence | None = None
    """The counts behind the metrics, when the source has them."""


class MetricSourceConfig(Protocol):
    """A metric source's section of the services file, as parsed."""

    kind: str
    url: str
    scrape_interval_s: float
    where: str


class MetricSource(Protocol):
    kind: str

    def fetch(
        self,
        start: Instant,
        end: Instant,
        *,
        step_s: float | None = None,
        metrics: Sequence[str] | None = None,
    ) -> MetricsResult:
        """The window's metrics with their sample counts; a failure raises a ``SourceError``."""
        ...

    def graph_link(self, metric: str, start: Instant, end: Instant) -> str | None:
        """A link to the metric's graph in the source's own UI, or None."""
        ...

    def probe(self, timeout_s: float = 3.0) -> str | None:
        """None when the server is ready, else why not (one line, no URL or secret)."""
        ...

    def step(self, window_s: float) -> float:
        """The step of a window's queries (one for every query of a run, so points line up)."""
        ...


@dataclass(frozen=True)
class SourceKind:
    """One kind of metric source: its section key in the services file, how that section is read
    (problems go to the checker; None when there are any) and how a source is built from it."""

    name: str
    parse: Callable[[ConfigReader, Any, str, Path], Any | None]
    build: Callable[[Any, Mapping[str, str] | None, requests.Session | None], MetricSource]
