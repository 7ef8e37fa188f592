"""Prometheus source: the canonical metrics of one service over a window, through ``query_range``.

Choices, each visible in the result's notes rather than hidden:
- a value Prometheus sends as ``"NaN"``, ``"+Inf"`` or ``"-Inf"`` is dropped and counted (NaN is
  usually 0/0: no requests in the rate window);
- a query that returns several series is refused for that metric (the source cannot know
  whether to sum or average them): the PromQL must aggregate to one series;
- an empty result means the metric is absent in that window, not an error;
- every HTTP or transport failure raises a :class:`PrometheusError` subclass with one line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import requests

from console.settings import Secret
from console.telemetry._http import ErrorKinds, HttpClient, body_excerpt, display_url
from console.telemetry.config import PrometheusConfig, resolve_secret
from console.telemetry.errors import (
    ConfigError,
    PrometheusAuthError,
    PrometheusBadResponse,
    PrometheusError,
    PrometheusQueryError,
    PrometheusServerError,
    PrometheusTimeout,
    PrometheusUnreachable,
    one_line,
)
from console.telemetry.promql import choose_step, format_duration, load_profiles, rate_range, render
from console.telemetry.times import Instant, to_epoch

KINDS = ErrorKinds(
    unreachable=PrometheusUnreachable,
    timeout=PrometheusTimeout,
    auth=PrometheusAuthError,
    query=PrometheusQueryError,
    server=PrometheusServerError,
    bad_response=PrometheusBadResponse,
)
NON_FINITE = {"NaN": "NaN", "+Inf": "+Inf", "-Inf": "-Inf", "Inf": "+Inf"}


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    points: list[tuple[float, float]]
    """(Unix seconds, value), finite values only, in time order."""


@dataclass(frozen=True)
class RangeResult:
    series: list[Series]
    dropped: dict[str, int] = field(default_factory=dict)
    """How many values were dropped, by kind: ``{"NaN": 3, "+Inf": 1}``."""
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MetricsResult:
    metrics: dict[str, list[tuple[float, float]]]
    """Canonical name -> (Unix seconds, value) points; a metric without data is absent."""
    notes: list[str]
    queries: dict[str, str]
    """The PromQL actually sent, per metric."""
    links: dict[str, str]
    """Prometheus graph link per metric, over the same window."""
    step_s: float


def parse_matrix(data: Any) -> RangeResult:
    """The ``data`` of a ``query_range`` answer. Raises ValueError on a shape that is not a matrix."""
    if (
        not isinstance(data, dict)
        or data.get("resultType") != "matrix"
        or not isinstance(data.get("result"), list)
    ):
        kind = data.get("resultType") if isinstance(data, dict) else type(data).__name__
        raise ValueError(f"expected a matrix result, got {kind!r}")
    dropped: dict[str, int] = {}
    series: list[Series] = []
    for item in data["result"]:
        labels = item.get("metric") or {}
        points: list[tuple[float, float]] = []
        for stamp, raw in item.get("values") or ():
            value = float(raw)  # "NaN", "+Inf", "-Inf" parse; anything else raises ValueError
            if math.isfinite(value):
                points.append((float(stamp), value))
            else:
                kind = "NaN" if math.isnan(value) else ("+Inf" if value > 0 else "-Inf")
                dropped[kind] = dropped.get(kind, 0) + 1
        series.append(Series(dict(labels), points))
    return RangeResult(series, dropped)


def _labels_text(labels: Mapping[str, str]) -> str:
    return "{" + ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__") + "}"


class PrometheusSource:
    """One Prometheus server and the PromQL of one service (profile + overrides)."""

    max_parallel = 4
    """Queries of one :meth:`fetch` in flight at once."""

    def __init__(
        self,
        config: PrometheusConfig,
        *,
        token: Secret | None = None,
        password: Secret | None = None,
        session: requests.Session | None = None,
    ) -> None:
        self.config = config
        basic = (config.username, password or Secret("")) if config.username else None
        self._client = HttpClient(
            "Prometheus",
            config.url,
            KINDS,
            timeout_s=config.timeout_s,
            bearer=token,
            basic=basic,
            ca_file=str(config.ca_file) if config.ca_file else None,
            session=session,
        )

    @classmethod
    def from_config(
        cls,
        config: PrometheusConfig,
        env: Mapping[str, str] | None = None,
        session: requests.Session | None = None,
    ) -> PrometheusSource:
        """Build the source, reading ``token_env`` / ``password_env`` from the environment now."""
        token = resolve_secret(config.token_env, f"{config.where}.token_env", env)
        password = resolve_secret(config.password_env, f"{config.where}.password_env", env)
        return cls(config, token=token, password=password, session=session)

    def __repr__(self) -> str:
        return f"PrometheusSource({self._client!r}, profile={self.config.profile!r})"

    # -- PromQL ---------------------------------------------------------------------------------

    def templates(self) -> dict[str, str]:
        """Metric -> PromQL template: the profile, the overrides on top, restricted to ``metrics``."""
        profiles = load_profiles()
        if self.config.profile not in profiles:
            raise ConfigError(
                f"{self.config.where}.profile",
                [f"unknown profile {self.config.profile!r} (known: {', '.join(profiles)})"],
            )
        merged: dict[str, str | None] = dict(profiles[self.config.profile].metrics)
        merged.update(self.config.queries)
        wanted = self.config.metrics
        return {
            name: expr
            for name, expr in merged.items()
            if expr is not None and (wanted is None or name in wanted)
        }

    def queries(self, step_s: float) -> dict[str, str]:
        """Metric -> the PromQL sent for a query at ``step_s``."""
        range_s = rate_range(step_s, self.config.scrape_interval_s)
        return {
            name: render(
                template,
                selector=self.config.selector,
                http_selector=self.config.http_selector,
                range_s=range_s,
                step_s=step_s,
            )
            for name, template in self.templates().items()
        }

    def graph_url(self, promql: str, start: Instant, end: Instant, step_s: float | None = None) -> str:
        """The Prometheus UI's graph of ``promql`` over the window."""
        start_s, end_s = to_epoch(start), to_epoch(end)
        params = {
            "g0.expr": promql,
            "g0.tab": "0",
            "g0.range_input": format_duration(max(1.0, math.ceil(end_s - start_s))),
            "g0.end_input": datetime.fromtimestamp(end_s, UTC).strftime("%Y-%m-%d %H:%M:%S"),
        }
        if step_s:
            params["g0.step_input"] = f"{step_s:g}"
        return f"{display_url(self.config.url)}/graph?{urlencode(params)}"

    # -- HTTP -----------------------------------------------------------------------------------

    def query_range(
        self, promql: str, start: Instant, end: Instant, step_s: float, *, metric: str | None = None
    ) -> RangeResult:
        """One ``/api/v1/query_range`` call (POST, form-encoded). ``metric`` names the query in
        error messages."""
        what = f" for {metric}" if metric else ""
        response = self._client.send(
            "POST",
            "/api/v1/query_range",
            data={
                "query": promql,
                "start": f"{to_epoch(start):.3f}",
                "end": f"{to_epoch(end):.3f}",
                "step": f"{step_s:g}",
            },
        )
        status = response.status_code
        where = self._client.where
        if status == 404:
            raise PrometheusBadResponse(
                f"{where} has no query API at /api/v1/query_range (HTTP 404): check the URL "
                "(the server's address, with its path prefix if it has one)"
            )
        if status >= 400 and status not in (400, 422) and status < 500:
            raise PrometheusError(
                f"{where} answered HTTP {status} {response.reason}: {body_excerpt(response)}"
            )
        if status >= 500:
            body = _error_body(response)
            if body is None:
                raise PrometheusServerError(
                    f"{where} failed (HTTP {status} {response.reason}): {body_excerpt(response)}"
                )
            kind, reason = body
            if status == 503 and kind in ("timeout", "canceled"):
                raise PrometheusTimeout(f"{where} gave up on the query{what} (HTTP 503 {kind}): {reason}")
            raise PrometheusServerError(f"{where} failed on the query{what} (HTTP {status} {kind}): {reason}")
        doc = self._client.json(response)
        if status in (400, 422):
            kind, reason = _error_fields(doc)
            raise PrometheusQueryError(
                f"Prometheus rejected the query{what} (HTTP {status} {kind}): {reason} "
                f"— query: {one_line(promql, 160)}"
            )
        if not isinstance(doc, dict) or doc.get("status") != "success":
            kind, reason = _error_fields(doc)
            raise PrometheusBadResponse(f"{where} answered HTTP {status} without success ({kind}: {reason})")
        try:
            result = parse_matrix(doc.get("data"))
        except (ValueError, TypeError, AttributeError) as exc:
            raise PrometheusBadResponse(
                f"{where} answered a query_range{what} in an unexpected shape: {one_line(exc, 160)}"
            ) from None
        warnings = [one_line(w, 200) for w in doc.get("warnings") or () if isinstance(w, str)]
        return RangeResult(result.series, result.dropped, warnings)

    # -- the snapshot's metrics -----------------------------------------------------------------

    def fetch(
        self,
        start: Instant,
        end: Instant,
        *,
        step_s: float | None = None,
        metrics: Sequence[str] | None = None,
    ) -> MetricsResult:
        """Every configured metric over [start, end]. ``step_s`` None chooses it from the window
        (see :func:`~console.telemetry.promql.choose_step`); a step over the point limit is raised."""
        start_s, end_s = to_epoch(start), to_epoch(end)
        choice = choose_step(end_s - start_s, self.config.scrape_interval_s, requested_s=step_s)
        notes = [f"metrics: {choice.note}"] if choice.note else []
        queries = self.queries(choice.step_s)
        if metrics is not None:
            queries = {name: q for name, q in queries.items() if name in metrics}
        out: dict[str, list[tuple[float, float]]] = {}
        links = {
            name: self.graph_url(promql, start_s, end_s, choice.step_s) for name, promql in queries.items()
        }
        # the queries run side by side (the time is Prometheus' own: ~11 ms each for 3,600 points);
        # results are read in metric order, so the first failing metric is the one reported
        with ThreadPoolExecutor(max_workers=max(1, min(self.max_parallel, len(queries)))) as pool:
            futures = {
                name: pool.submit(self.query_range, promql, start_s, end_s, choice.step_s, metric=name)
                for name, promql in queries.items()
            }
            results = {name: future.result() for name, future in futures.items()}
        for name, result in results.items():
            notes.extend(f"{name}: Prometheus warned: {w}" for w in result.warnings)
            if result.dropped:
                counts = ", ".join(f"{n} {kind}" for kind, n in sorted(result.dropped.items()))
                total = sum(result.dropped.values())
                hint = "; NaN is 0/0, e.g. no requests in the rate window" if "NaN" in result.dropped else ""
                notes.append(
                    f"{name}: dropped {total} non-numeric point{'s' if total != 1 else ''} ({counts}{hint})"
                )
            if len(result.series) > 1:
                shown = "; ".join(_labels_text(s.labels) for s in result.series[:3])
                more = f" and {len(result.series) - 3} more" if len(result.series) > 3 else ""
                notes.append(
                    f"{name}: left out: the query returned {len(result.series)} series ({shown}{more}); "
                    "aggregate it to one (sum/max/avg) or narrow the selector"
                )
                continue
            points = result.series[0].points if result.series else []
            if not points:
                notes.append(f"no data for {name} in that window")
                continue
            out[name] = points
        return MetricsResult(out, notes, queries, links, choice.step_s)


def _error_fields(doc: Any) -> tuple[str, str]:
    if isinstance(doc, dict):
        return str(doc.get("errorType") or "error"), one_line(doc.get("error") or "no reason given", 240)
    return "error", "no reason given"


def _error_body(response: requests.Response) -> tuple[str, str] | None:
    """(errorType, error) of a JSON error answer; None when the body is not Prometheus' JSON
    (a proxy's HTML page, for example)."""
    try:
        doc = response.json()
    except ValueError:
        return None
    if not isinstance(doc, dict) or "error" not in doc:
        return None
    return _error_fields(doc)
