"""The Prometheus metric source: its section of the services file and one :class:`MetricSource`.

What one :meth:`PrometheusSource.fetch` reads over a window:

1. the metric names the selector has (``/api/v1/label/__name__/values``): ``profile: auto`` picks its
   profile from them (``promql.yaml``, ``detect``) and says which and why; any profile picks the
   first name of each family the target has;
2. the raw samples of the profile's families (requests, latency buckets, memory, cpu, restarts) and
   of ``up``, each as a range vector at the window's end: every real sample with its own timestamp,
   never a look-back copy, turned into counts (:mod:`console.telemetry.counts`);
3. the profile's PromQL metrics with ``query_range``, and the raw samples of the series behind each
   (its ``samples`` selector): a point with no real sample since the previous point is a copy
   Prometheus made from its 5-minute look-back, and is dropped. Metrics without PromQL are computed
   from the counts, one point per step bin that holds a real scrape.

Bad input is one note each, never a silent verdict: NaN/Inf samples dropped and counted, a query
that returns several series left out, counter resets counted from zero, a histogram without ``le``,
a selector that matches nothing. Every HTTP or transport failure raises a :class:`PrometheusError`
subclass with one line.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import requests

from console.domain.config_reader import ConfigReader
from console.domain.evidence import Evidence, GaugeSeries
from console.domain.text import one_line
from console.settings import Secret
from console.telemetry import counts
from console.telemetry._http import ErrorKinds, HttpClient, body_excerpt, display_url
from console.telemetry.checks import auth_pair, resolve_secret
from console.telemetry.errors import (
    ConfigError,
    PrometheusAuthError,
    PrometheusBadResponse,
    PrometheusError,
    PrometheusQueryError,
    PrometheusServerError,
    PrometheusTimeout,
    PrometheusUnreachable,
)
from console.telemetry.promql import (
    Family,
    Profile,
    choose_step,
    detect_profile,
    format_duration,
    load_profiles,
    normalize_selector,
    profile_names,
    rate_range,
    render,
    sample_selector,
)
from console.telemetry.source import MetricsResult, SourceKind
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
AUTO = "auto"
DEFAULT_PROFILE = "demo-service"
DERIVED = {
    "requests": ("error_rate", "requests_per_second"),
    "latency": ("latency_p95_ms",),
    "memory": ("memory_utilization",),
    "cpu": ("cpu_utilization",),
    "restarts": ("pod_restarts",),
}
"""Canonical metrics computed from each family's counts (when the profile has no PromQL for them)."""
CANONICAL = ("error_rate", "latency_p95_ms", "requests_per_second", "cpu_utilization",
             "memory_utilization", "pod_restarts")  # fmt: skip


# -- the services file's section ------------------------------------------------------------------------


@dataclass(frozen=True)
class PrometheusConfig:
    url: str
    profile: str = DEFAULT_PROFILE
    """A profile of ``promql.yaml``, or ``auto``."""
    selector: str = ""
    http_selector: str | None = None
    queries: Mapping[str, str | None] = field(default_factory=dict)
    metrics: tuple[str, ...] | None = None
    scrape_interval_s: float = 15.0
    timeout_s: float = 10.0
    token_env: str | None = None
    username: str | None = None
    password_env: str | None = None
    ca_file: Path | None = None
    memory_limit_bytes: float | None = None
    """The memory limit where the metrics carry none (a process's RSS has no limit of its own)."""
    dimension_label: str | None = None
    """The per-route label; found among the usual names when unset."""
    status_label: str | None = None
    """The HTTP status label; found among the usual names when unset."""
    where: str = "prometheus"
    """Path of this section in the file, for error messages."""
    kind: str = "prometheus"


KEYS = (
    "url", "profile", "selector", "http_selector", "queries", "metrics", "scrape_interval_s",
    "timeout_s", "token_env", "username", "password_env", "ca_file", "memory_limit_bytes",
    "dimension_label", "status_label",
)  # fmt: skip


def profile_metrics(profile: Profile) -> set[str]:
    """The canonical metrics a profile gives: its PromQL ones and those computed from its families."""
    names = set(profile.metrics)
    for kind in profile.families:
        names.update(DERIVED.get(kind, ()))
    return names


def _label(check: ConfigReader, section: dict[str, Any], key: str, where: str) -> str | None:
    value = check.string(section, key, where)
    if value is not None and not value.replace("_", "a").isalnum():
        check.problem(f"{where}.{key}", f"{value!r} is not a Prometheus label name")
        return None
    return value


def _queries(check: ConfigReader, raw: Any, where: str) -> dict[str, str | None]:
    queries: dict[str, str | None] = {}
    if raw is None or check.mapping(raw, f"{where}.queries") is None:
        return queries
    for metric, expr in raw.items():
        if not isinstance(metric, str) or not metric:
            check.problem(f"{where}.queries", f"metric names must be strings, got {metric!r}")
        elif expr is not None and (not isinstance(expr, str) or not expr.strip()):
            check.problem(f"{where}.queries.{metric}", "must be a PromQL string, or null to drop it")
        else:
            queries[metric] = " ".join(expr.split()) if expr is not None else None
    return queries


def _metrics(
    check: ConfigReader, raw: Any, where: str, profile: str, queries: Mapping[str, str | None]
) -> tuple[str, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, list) or not all(isinstance(m, str) and m for m in raw):
        check.problem(f"{where}.metrics", "must be a list of metric names")
        return None
    profiles = load_profiles()
    if profile in profiles:
        defined = {m for m in profile_metrics(profiles[profile]) if queries.get(m, "") is not None}
        defined |= {m for m, q in queries.items() if q is not None}
        for name in raw:
            if name not in defined:
                check.problem(
                    f"{where}.metrics",
                    f"{name!r} has no query (profile {profile} defines {', '.join(sorted(defined))}; "
                    "add it under queries)",
                )
    return tuple(raw)


def parse_section(check: ConfigReader, raw: Any, where: str, base: Path) -> PrometheusConfig | None:
    """The ``prometheus`` section of a service; problems go to ``check`` (None when any)."""
    section = check.mapping(raw, where)
    if section is None:
        return None
    before = len(check.problems)
    check.keys(section, where, KEYS)
    url = check.url(section, "url", where)
    known = profile_names()
    profile = check.string(section, "profile", where) or DEFAULT_PROFILE
    if profile != AUTO and profile not in known:
        check.problem(f"{where}.profile", f"unknown profile {profile!r} (known: auto, {', '.join(known)})")
    selectors: dict[str, str | None] = {}
    for key in ("selector", "http_selector"):
        value = section.get(key)
        if value is None or (key == "selector" and value == ""):
            selectors[key] = None
        elif not isinstance(value, str) or "\n" in value:
            check.problem(f"{where}.{key}", 'must be label matchers on one line, e.g. service="demo-service"')
            selectors[key] = None
        else:
            selectors[key] = normalize_selector(value)
    if profile == AUTO and not selectors["selector"]:
        check.problem(f"{where}.selector", 'profile auto needs a selector (e.g. job="shop-api")')
    queries = _queries(check, section.get("queries"), where)
    metrics = _metrics(check, section.get("metrics"), where, profile, queries)
    scrape = check.number(section, "scrape_interval_s", where, 15.0)
    timeout = check.number(section, "timeout_s", where, 10.0)
    limit = section.get("memory_limit_bytes")
    limit_value = check.number(section, "memory_limit_bytes", where, 0.0) if limit is not None else None
    dimension_label = _label(check, section, "dimension_label", where)
    status_label = _label(check, section, "status_label", where)
    token_env = check.env_name(section, "token_env", where)
    username = check.string(section, "username", where)
    password_env = check.env_name(section, "password_env", where)
    auth_pair(check, section, where)
    ca_file = check.path(section, "ca_file", where, base, required=False)
    if url is None or len(check.problems) > before:
        return None
    return PrometheusConfig(
        url=url,
        profile=profile,
        selector=selectors["selector"] or "",
        http_selector=selectors["http_selector"],
        queries=queries,
        metrics=metrics,
        scrape_interval_s=float(scrape),
        timeout_s=float(timeout),
        token_env=token_env,
        username=username,
        password_env=password_env,
        ca_file=ca_file,
        memory_limit_bytes=float(limit_value) if limit_value else None,
        dimension_label=dimension_label,
        status_label=status_label,
        where=where,
    )


# -- answers ------------------------------------------------------------------------------------------


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


def parse_matrix(data: Any) -> RangeResult:
    """The ``data`` of a ``query_range`` answer (or of an instant query of a range vector). Raises
    ValueError on a shape that is not a matrix."""
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


def _dropped_note(name: str, dropped: Mapping[str, int]) -> str:
    shown = ", ".join(f"{n} {kind}" for kind, n in sorted(dropped.items()))
    total = sum(dropped.values())
    hint = "; NaN is 0/0, e.g. no requests in the rate window" if "NaN" in dropped else ""
    return f"{name}: dropped {total} non-numeric point{'s' if total != 1 else ''} ({shown}{hint})"


def backed(
    points: Sequence[tuple[float, float]], samples: Sequence[float], step_s: float
) -> list[tuple[float, float]]:
    """The points that rest on a real sample: one in ``(t - step, t]``. Where Prometheus had no new
    sample it repeats the last one for up to 5 minutes (its look-back): such a point is a copy."""
    stamps = sorted(samples)
    out = []
    j = 0
    for t, v in points:
        while j < len(stamps) and stamps[j] <= t - step_s + 1e-6:
            j += 1
        if j < len(stamps) and stamps[j] <= t + 1e-6:
            out.append((t, v))
    return out


@dataclass
class _Plan:
    """What one fetch asks for."""

    profile: Profile
    reason: str | None
    families: dict[str, tuple[str, str]] = field(default_factory=dict)
    """kind -> (metric name, unit)."""
    names: set[str] | None = None


@dataclass(frozen=True)
class _Answers:
    """What one fetch read."""

    ranges: dict[str, RangeResult]
    """Metric -> its query_range answer."""
    clocks: dict[str, str | None]
    """Metric -> the selector whose raw samples are its real samples (None: the scrapes')."""
    samples: dict[str, RangeResult]
    """Clock selector -> its raw samples."""
    families: dict[str, RangeResult]
    """Family kind (and ``memory_limit``, ``up``) -> its raw samples."""

    def sample_times(
        self, name: str, points: Sequence[tuple[float, float]], scrapes: Sequence[float], notes: list[str]
    ) -> list[float]:
        """When a metric's real samples were taken: its clock's samples, else the scrapes, else
        (nothing to count them on, said in a note) its own points."""
        clock = self.clocks[name]
        if clock:
            return [t for s in self.samples[clock].series for t, _ in s.points]
        if scrapes:
            return list(scrapes)
        notes.append(f"{name}: no series to count its real samples on: its points are kept as they are")
        return [t for t, _ in points]


class PrometheusSource:
    """One Prometheus server and one service's selector and profile (see the module docstring)."""

    kind = "prometheus"
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

    # -- the interface's small parts -----------------------------------------------------------------

    def step(self, window_s: float) -> float:
        """The step of a window's queries: about 300 points, never finer than the scrape interval."""
        return choose_step(max(window_s, 1.0), self.config.scrape_interval_s).step_s

    def probe(self, timeout_s: float = 3.0) -> str | None:
        """None when ``/-/ready`` answers 200, else why not (one line, no URL)."""
        try:
            response = self._client.send("GET", "/-/ready", timeout_s=min(self.config.timeout_s, timeout_s))
        except PrometheusAuthError as exc:
            code = "401" if "401" in str(exc) else "403"
            return f"credentials refused (HTTP {code})"
        except PrometheusTimeout:
            return f"no answer within {min(self.config.timeout_s, timeout_s):g} s"
        except PrometheusUnreachable:
            return "unreachable (connection refused or no route)"
        if response.status_code == 200:
            return None
        return f"not ready (HTTP {response.status_code})"

    def graph_link(self, metric: str, start: Instant, end: Instant) -> str | None:
        """The Prometheus UI's graph of ``metric`` over the window (None when it has no PromQL)."""
        step = self.step(to_epoch(end) - to_epoch(start))
        profile = self._profile_for_links()
        promql = self.queries(step, profile).get(metric) or _link_promql(metric, profile, self.config, step)
        return self.graph_url(promql, start, end, step) if promql else None

    def _profile_for_links(self) -> Profile:
        profiles = load_profiles()
        return profiles.get(self.config.profile) or profiles["client"]

    # -- PromQL ---------------------------------------------------------------------------------

    def templates(self, profile: Profile | None = None) -> dict[str, str]:
        """Metric -> PromQL template: the profile, the overrides on top, restricted to ``metrics``."""
        if profile is None:
            profiles = load_profiles()
            if self.config.profile not in profiles:
                raise ConfigError(
                    f"{self.config.where}.profile",
                    [f"profile {self.config.profile!r} is resolved when metrics are fetched"],
                )
            profile = profiles[self.config.profile]
        merged: dict[str, str | None] = dict(profile.metrics)
        merged.update(self.config.queries)
        wanted = self.config.metrics
        return {
            name: expr
            for name, expr in merged.items()
            if expr is not None and (wanted is None or name in wanted)
        }

    def _render(self, template: str, step_s: float) -> str:
        return render(
            template,
            selector=self.config.selector,
            http_selector=self.config.http_selector,
            range_s=rate_range(step_s, self.config.scrape_interval_s),
            step_s=step_s,
        )

    def queries(self, step_s: float, profile: Profile | None = None) -> dict[str, str]:
        """Metric -> the PromQL sent for a query at ``step_s``."""
        return {name: self._render(t, step_s) for name, t in self.templates(profile).items()}

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

    def _answer(self, response: requests.Response, what: str, promql: str) -> Any:
        """The ``data`` of a query answer, or the one-line error it deserves."""
        status = response.status_code
        where = self._client.where
        if status == 404:
            raise PrometheusBadResponse(
                f"{where} has no query API at {response.request.path_url.split('?')[0]} (HTTP 404): check "
                "the URL (the server's address, with its path prefix if it has one)"
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
        return doc

    def _matrix(self, doc: Any, what: str, kind: str) -> RangeResult:
        try:
            result = parse_matrix(doc.get("data"))
        except (ValueError, TypeError, AttributeError) as exc:
            raise PrometheusBadResponse(
                f"{self._client.where} answered a {kind}{what} in an unexpected shape: {one_line(exc, 160)}"
            ) from None
        warnings = [one_line(w, 200) for w in doc.get("warnings") or () if isinstance(w, str)]
        return RangeResult(result.series, result.dropped, warnings)

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
        return self._matrix(self._answer(response, what, promql), what, "query_range")

    def raw_samples(self, selector: str, start: Instant, end: Instant, *, what: str = "") -> RangeResult:
        """Every real sample of ``selector`` in ``(start, end]``: an instant query of a range vector
        at ``end`` (Prometheus answers the samples themselves, with their own timestamps)."""
        start_s, end_s = to_epoch(start), to_epoch(end)
        promql = f"{selector}[{format_duration(max(end_s - start_s, 0.001))}]"
        response = self._client.send("POST", "/api/v1/query", data={"query": promql, "time": f"{end_s:.3f}"})
        label = f" for {what}" if what else ""
        return self._matrix(self._answer(response, label, promql), label, "range vector query")

    def metric_names(self, start: Instant, end: Instant) -> set[str] | None:
        """The metric names the selector has over the window (None without a selector)."""
        selector = self.config.selector
        if not selector:
            return None
        response = self._client.send(
            "GET",
            "/api/v1/label/__name__/values",
            params={
                "match[]": "{" + selector + "}",
                "start": f"{to_epoch(start):.3f}",
                "end": f"{to_epoch(end):.3f}",
            },
        )
        doc = self._answer(response, " for the metric names", "{" + selector + "}")
        data = doc.get("data")
        if not isinstance(data, list):
            raise PrometheusBadResponse(
                f"{self._client.where} answered the metric names in an unexpected shape"
            )
        return {str(n) for n in data}

    # -- the window -----------------------------------------------------------------------------

    def _plan(self, start_s: float, end_s: float, notes: list[str]) -> _Plan | None:
        profiles = load_profiles()
        names: set[str] | None = None
        if self.config.profile == AUTO:
            names = self.metric_names(start_s, end_s) or set()
            profile, reason = detect_profile(names)
            if profile is None:
                notes.append(reason)
                return None
            notes.append(reason)
        else:
            profile, reason = profiles[self.config.profile], None
            if profile.families and self.config.selector:
                try:
                    names = self.metric_names(start_s, end_s)
                except PrometheusError:
                    names = None  # the families' first names are tried then
        plan = _Plan(profile, reason, names=names)
        wanted = self.config.metrics
        for kind, family in profile.families.items():
            if wanted is not None and not set(DERIVED.get(kind, ())) & set(wanted):
                continue  # the services file restricts the metrics: no counts for the others
            chosen = _choose(family, kind, names)
            if chosen is not None:
                plan.families[kind] = chosen
        return plan

    def _family_selector(self, family: Family, metric: str) -> str:
        base = (
            self.config.http_selector
            if family.selector == "http" and self.config.http_selector
            else self.config.selector
        )
        matchers = ",".join(m for m in (family.match, base) if m)
        return f"{metric}{{{matchers}}}" if matchers else metric

    def fetch(
        self,
        start: Instant,
        end: Instant,
        *,
        step_s: float | None = None,
        metrics: Sequence[str] | None = None,
    ) -> MetricsResult:
        """Every configured metric over [start, end], real samples only, with the counts behind
        them (see the module docstring). ``step_s`` None chooses it from the window."""
        start_s, end_s = to_epoch(start), to_epoch(end)
        choice = choose_step(end_s - start_s, self.config.scrape_interval_s, requested_s=step_s)
        window = counts.StepWindow(start_s, end_s, choice.step_s)
        notes = [f"metrics: {choice.note}"] if choice.note else []
        plan = self._plan(start_s, end_s, notes)
        if plan is None:
            return MetricsResult({}, notes, {}, {}, window.step, {}, None)
        wanted = set(metrics) if metrics is not None else None
        promql = {
            name: q
            for name, q in self.queries(window.step, plan.profile).items()
            if wanted is None or name in wanted
        }
        answers = self._read(plan, promql, window)
        evidence, derived = self._evidence(plan, answers.families, start_s, end_s, window.step, notes)
        out = self._real_points(answers, _scrape_times(evidence), window.step, notes)
        queries = dict(promql)
        for name, points in derived.items():
            if name not in out and name not in promql and self._computed_metric_wanted(name, wanted):
                out[name] = points
                queries[name] = _derived_query(name, plan, self)
        counted = {name: len(points) for name, points in out.items()}
        links = self._links(out, promql, queries, plan, window)
        return MetricsResult(out, notes, queries, links, window.step, counted, evidence)

    def _read(self, plan: _Plan, promql: Mapping[str, str], window: counts.StepWindow) -> _Answers:
        """Every query of one window, at most :attr:`max_parallel` in flight: the PromQL metrics,
        the raw samples behind each, the families' raw samples."""
        start_s, end_s, step = window.start, window.end, window.step
        clocks = {name: self._clock(name, q, plan.profile) for name, q in promql.items()}
        with ThreadPoolExecutor(max_workers=self.max_parallel) as pool:
            ranges = {
                name: pool.submit(self.query_range, q, start_s, end_s, step, metric=name)
                for name, q in promql.items()
            }
            samples = {
                sel: pool.submit(self.raw_samples, sel, start_s, end_s, what=f"the samples of {name}")
                for name, sel in clocks.items()
                if sel is not None
            }
            raws = self._submit_families(pool, plan, start_s, end_s)
            return _Answers(
                ranges={name: f.result() for name, f in ranges.items()},
                clocks=clocks,
                samples={sel: f.result() for sel, f in samples.items()},
                families={key: f.result() for key, f in raws.items()},
            )

    def _real_points(
        self, answers: _Answers, scrapes: Sequence[float], step: float, notes: list[str]
    ) -> dict[str, list[tuple[float, float]]]:
        """Each PromQL metric's points that rest on a real sample (see :func:`backed`)."""
        out: dict[str, list[tuple[float, float]]] = {}
        for name, result in answers.ranges.items():
            points = self._points(name, result, notes)
            if points is None:
                continue
            real = backed(points, answers.sample_times(name, points, scrapes, notes), step)
            if len(real) < len(points):
                notes.append(
                    f"{name}: {len(points) - len(real)} of {len(points)} points had no real sample behind "
                    "them (Prometheus' look-back copies): left out"
                )
            if not real:
                notes.append(f"no data for {name} in that window")
                continue
            out[name] = real
        return out

    def _computed_metric_wanted(self, name: str, wanted: set[str] | None) -> bool:
        """Whether a metric computed from the counts is asked for: by the caller, by the services
        file's ``metrics``, and not dropped (``null``) under its ``queries``."""
        if wanted is not None and name not in wanted:
            return False
        if self.config.metrics is not None and name not in self.config.metrics:
            return False
        return self.config.queries.get(name, "") is not None

    def _links(
        self,
        out: Mapping[str, list[tuple[float, float]]],
        promql: Mapping[str, str],
        queries: Mapping[str, str],
        plan: _Plan,
        window: counts.StepWindow,
    ) -> dict[str, str]:
        """A graph link per metric with points (a computed one drawn by an equivalent PromQL where
        there is one), then per PromQL metric without points."""
        start_s, end_s, step = window.start, window.end, window.step
        links = {}
        for name in out:
            shown = promql.get(name) or _link_promql(name, plan.profile, self.config, step, plan)
            links[name] = self.graph_url(shown or queries[name], start_s, end_s, step)
        for name in promql:
            links.setdefault(name, self.graph_url(promql[name], start_s, end_s, step))
        return links

    def _clock(self, name: str, promql: str, profile: Profile) -> str | None:
        template = profile.samples.get(name)
        if template and name not in self.config.queries:
            return self._render(template, 1.0)
        return sample_selector(promql)

    def _submit_families(
        self, pool: ThreadPoolExecutor, plan: _Plan, start_s: float, end_s: float
    ) -> dict[str, Future[RangeResult]]:
        jobs: dict[str, Future[RangeResult]] = {}
        for kind, (metric, _) in plan.families.items():
            family = plan.profile.families[kind]
            series = f"{metric}_bucket" if kind == "latency" else metric
            jobs[kind] = pool.submit(
                self.raw_samples,
                self._family_selector(family, series),
                start_s,
                end_s,
                what=f"{kind} ({series})",
            )
            if kind == "memory" and family.limit is not None:
                limit_metric = family.limit.candidates[0].metric
                jobs["memory_limit"] = pool.submit(
                    self.raw_samples, self._family_selector(family.limit, limit_metric), start_s, end_s,
                    what=f"the memory limit ({limit_metric})",
                )  # fmt: skip
        if self.config.selector and plan.families:
            jobs["up"] = pool.submit(
                self.raw_samples, f"up{{{self.config.selector}}}", start_s, end_s, what="up"
            )
        return jobs

    def _points(self, name: str, result: RangeResult, notes: list[str]) -> list[tuple[float, float]] | None:
        notes.extend(f"{name}: Prometheus warned: {w}" for w in result.warnings)
        if result.dropped:
            notes.append(_dropped_note(name, result.dropped))
        if len(result.series) > 1:
            shown = "; ".join(_labels_text(s.labels) for s in result.series[:3])
            more = f" and {len(result.series) - 3} more" if len(result.series) > 3 else ""
            notes.append(
                f"{name}: left out: the query returned {len(result.series)} series ({shown}{more}); "
                "aggregate it to one (sum/max/avg) or narrow the selector"
            )
            return None
        points = result.series[0].points if result.series else []
        if not points:
            notes.append(f"no data for {name} in that window")
            return None
        return points

    def _evidence(
        self,
        plan: _Plan,
        raw: Mapping[str, RangeResult],
        start_s: float,
        end_s: float,
        step: float,
        notes: list[str],
    ) -> tuple[Evidence | None, dict[str, list[tuple[float, float]]]]:
        if not plan.families:
            return None, {}
        return build_evidence(plan, raw, self.config, start_s, end_s, step, notes)


def _choose(family: Family, kind: str, names: set[str] | None) -> tuple[str, str] | None:
    """The first candidate name the target has (the first one when the names are unknown)."""
    for candidate in family.candidates:
        wanted = f"{candidate.metric}_bucket" if kind == "latency" else candidate.metric
        if names is None or wanted in names:
            return candidate.metric, candidate.unit
    return None


def _raws(result: RangeResult | None) -> list[counts.Raw]:
    return [counts.Raw(s.labels, s.points) for s in (result.series if result else [])]


def build_evidence(
    plan: _Plan,
    raw: Mapping[str, RangeResult],
    config: PrometheusConfig,
    start_s: float,
    end_s: float,
    step: float,
    notes: list[str],
) -> tuple[Evidence, dict[str, list[tuple[float, float]]]]:
    """The counts of a window from the families' raw samples, and the canonical metrics computed
    from them."""
    log = counts.Notes()
    scrape = config.scrape_interval_s
    for key, result in raw.items():
        if result.dropped:
            log.add(_dropped_note(f"{key} samples", result.dropped))
    req_raw, lat_raw = _raws(raw.get("requests")), _raws(raw.get("latency"))
    dimension = counts.pick_label(req_raw or lat_raw, counts.DIMENSION_LABELS, config.dimension_label)
    status = _status_label(req_raw, config)
    _note_what_is_missing(plan, raw, log, no_status=bool(req_raw) and status is None)
    requests_ = counts.request_counts(
        req_raw, dimension_label=dimension, status_label=status, scrape_interval_s=scrape, notes=log,
        what="requests",
    )  # fmt: skip
    unit = plan.families.get("latency", ("", "s"))[1]
    latency = counts.latency_counts(
        lat_raw, dimension_label=dimension, unit=unit, scrape_interval_s=scrape, notes=log, what="latency"
    )
    gauges = _memory_gauges(plan, raw, config, log)
    cpu_family = plan.profile.families.get("cpu")
    cpu = counts.cpu_rates(_raws(raw.get("cpu")), cpu_family.group_by if cpu_family else ("instance",))
    restart_family = plan.profile.families.get("restarts")
    restarts = counts.restart_times(
        _raws(raw.get("restarts")), restart_family.counter if restart_family else "counter"
    )
    up, down = counts.scrape_times(_raws(raw.get("up")))
    scrapes = up or tuple(sorted({t for s in requests_ for t in s.times}))
    derived = counts.derived_points(
        requests=requests_, latency=latency, gauges_=gauges, cpu=cpu,
        restarts=restarts if "restarts" in plan.families else None,
        scrapes=scrapes, start=start_s, end=end_s, step=step,
    )  # fmt: skip
    notes.extend(log.lines)
    evidence = Evidence(
        source="prometheus",
        profile=plan.profile.name,
        profile_reason=plan.reason,
        scrape_interval_s=scrape,
        dimension_label=dimension,
        status_label=status,
        requests=requests_,
        latency=latency,
        gauges=gauges,
        scrapes_up=up,
        scrapes_down=down,
        restarts=tuple(restarts),
        notes=tuple(log.lines),
    )
    return evidence, derived


def _status_label(req_raw: Sequence[counts.Raw], config: PrometheusConfig) -> str | None:
    """The requests' status label; Micrometer's ``outcome`` gives way to ``status`` where the
    series carry both (``status`` holds the code)."""
    status = counts.pick_label(req_raw, counts.STATUS_LABELS, config.status_label)
    if status == "outcome" and any("status" in s.labels for s in req_raw):
        return "status"
    return status


def _note_what_is_missing(
    plan: _Plan, raw: Mapping[str, RangeResult], log: counts.Notes, *, no_status: bool
) -> None:
    """Notes for the families the selector matches nothing of, those the target exports none of
    the profile's names for, and requests without a status label."""
    for kind, (metric, _) in plan.families.items():
        if kind in raw and not raw[kind].series:
            log.add(f"{kind}: the selector matches no {metric} series in that window")
    missing = [k for k in ("requests", "latency") if k in plan.profile.families and k not in plan.families]
    if missing and plan.names is not None:
        log.add(f"{' and '.join(missing)}: the target exports none of the profile's names for it")
    if no_status:
        log.add("requests: no status label (code, status, ...): errors cannot be counted; set status_label")


def _memory_gauges(
    plan: _Plan, raw: Mapping[str, RangeResult], config: PrometheusConfig, log: counts.Notes
) -> tuple[GaugeSeries, ...]:
    """The memory gauges with their limits (none when the plan reads no memory)."""
    memory = plan.profile.families.get("memory")
    if "memory" not in plan.families or memory is None:
        return ()
    gauges = counts.gauges(
        _raws(raw.get("memory")),
        name="memory",
        group_by=memory.group_by,
        limits=_raws(raw.get("memory_limit")),
        configured_limit=config.memory_limit_bytes,
        limit_metric=memory.limit.candidates[0].metric if memory.limit else None,
    )
    if gauges and all(g.limit is None for g in gauges):
        log.add("memory: no limit known: set prometheus.memory_limit_bytes to judge a climb against it")
    return gauges


def _scrape_times(evidence: Evidence | None) -> tuple[float, ...]:
    if evidence is None:
        return ()
    return evidence.scrapes_up or tuple(sorted({t for s in evidence.requests for t in s.times}))


def _link_promql(
    metric: str, profile: Profile, config: PrometheusConfig, step: float, plan: _Plan | None = None
) -> str | None:
    """A PromQL that draws a metric computed from counts (for its graph link)."""
    families = plan.families if plan is not None else {k: (f.candidates[0].metric, f.candidates[0].unit)
                                                       for k, f in profile.families.items()}  # fmt: skip
    sel = config.selector
    rng = format_duration(rate_range(step, config.scrape_interval_s))

    def series(name: str, extra: str = "") -> str:
        matchers = ",".join(m for m in (extra, sel) if m)
        return f"{name}{{{matchers}}}" if matchers else name

    if metric in ("error_rate", "requests_per_second") and "requests" in families:
        name = families["requests"][0]
        total = f"sum(rate({series(name)}[{rng}]))"
        if metric == "requests_per_second":
            return total
        five = (config.status_label or "code") + '=~"5.."'
        errors = f"sum(rate({series(name, five)}[{rng}]))"
        return f"({errors} or vector(0)) / {total}"
    if metric == "latency_p95_ms" and "latency" in families:
        name, unit = families["latency"]
        scale = "" if unit == "ms" else "1000 * "
        return f"{scale}histogram_quantile(0.95, sum by (le) (rate({series(name + '_bucket')}[{rng}])))"
    if metric == "memory_utilization" and "memory" in families and config.memory_limit_bytes:
        return f"max({series(families['memory'][0])}) / {config.memory_limit_bytes:g}"
    if metric == "cpu_utilization" and "cpu" in families:
        return f"max(rate({series(families['cpu'][0])}[{rng}]))"
    if metric == "pod_restarts" and "restarts" in families:
        return f"changes({series(families['restarts'][0])}[{format_duration(step)}])"
    return None


def _derived_query(name: str, plan: _Plan, source: PrometheusSource) -> str:
    """What a computed metric was read from (its family's raw series), for the run's record."""
    family_of = {m: k for k, ms in DERIVED.items() for m in ms}
    kind = family_of.get(name, "")
    if kind not in plan.families:
        return name
    metric = plan.families[kind][0]
    series = f"{metric}_bucket" if kind == "latency" else metric
    return f"counted per real scrape from {source._family_selector(plan.profile.families[kind], series)}"


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


def build(
    config: PrometheusConfig, env: Mapping[str, str] | None, session: requests.Session | None
) -> PrometheusSource:
    return PrometheusSource.from_config(config, env, session)


SOURCE = SourceKind(name="prometheus", parse=parse_section, build=build)
"""The registry's entry (``console/telemetry/registry.py``)."""
