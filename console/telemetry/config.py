"""The services file (setting ``CONSOLE_SERVICES_FILE``): where each service's telemetry comes from
and which executor acts on it. A new service needs a URL, a selector and, at most, a limit:

```yaml
services:
  shop-api:
    prometheus: {url: http://127.0.0.1:9090, profile: auto, selector: 'job="shop-api"'}
    # memory_limit_bytes: 536870912   # when the metrics carry no memory limit
```

Every key:

```yaml
services:
  demo-service:
    environment: live-demo
    windows: {baseline_s: 20, verify_s: 30, post_action_s: 20}   # optional, else the settings
    objectives: {error_ratio: 0.01, latency_p95_ms: 300}         # optional: the service's targets
    trend_horizon_s: 3600            # optional: a climb that reaches its limit sooner rolls back
    prometheus:                      # the metric source (console/telemetry/registry.py)
      url: http://127.0.0.1:9090
      profile: demo-service          # or auto (console/telemetry/promql.yaml)
      selector: 'service="demo-service"'
      http_selector: '...'           # optional: matchers of the HTTP metrics (kubernetes profile)
      memory_limit_bytes: 268435456  # optional: the limit where the metrics carry none
      dimension_label: handler       # optional: the per-route label (else found among the usual)
      status_label: code             # optional: the status label (else found among the usual)
      queries: {}                    # optional per-metric PromQL; null drops a metric
      metrics: [error_rate, ...]     # optional: only these
      scrape_interval_s: 1           # optional, default 15: the finest useful step
      timeout_s: 10
      token_env: PROM_TOKEN          # optional bearer token, read from this environment variable
      username: ..., password_env: ...   # or basic auth
      ca_file: /path/ca.pem          # optional
    logs:
      type: jsonl                    # or loki
      path: /path/to/demo-service.log   # relative paths are relative to this file
      max_lines: 10000
      # loki: url, query (LogQL), tenant, token_env | username + password_env, timeout_s,
      #       page_size, max_lines, ca_file
    executor: {type: demo-service, ...}  # kept as a raw mapping (console/executors validates it)
```

Validation reports every problem at once, one line each, naming the key's path. Secrets are
never in the file, only the names of the environment variables that hold them; they are read
when a source is built (:func:`resolve_secret`), so no config object ever holds one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from console.domain.config_reader import ConfigReader, load_yaml
from console.domain.evidence import Objectives
from console.settings import Settings
from console.telemetry.checks import auth_pair, resolve_secret
from console.telemetry.errors import ConfigError, NoSourceConfigured
from console.telemetry.prometheus import PrometheusConfig
from console.telemetry.registry import SOURCES

__all__ = [
    "JsonlLogsConfig",
    "LogsConfig",
    "LokiLogsConfig",
    "PrometheusConfig",
    "ServiceConfig",
    "ServicesConfig",
    "Windows",
    "load_services",
    "parse_services",
    "resolve_secret",
    "service_config",
]

SERVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
DEFAULT_MAX_LOG_LINES = 10_000
DEFAULT_TREND_HORIZON_S = 3600.0
"""A resource climbing to its limit within this horizon rolls back (services file: trend_horizon_s)."""


@dataclass(frozen=True)
class Windows:
    baseline_s: float
    verify_s: float
    post_action_s: float


@dataclass(frozen=True)
class JsonlLogsConfig:
    path: Path
    max_lines: int = DEFAULT_MAX_LOG_LINES
    source: str | None = None
    type: Literal["jsonl"] = "jsonl"


@dataclass(frozen=True)
class LokiLogsConfig:
    url: str
    query: str
    tenant: str | None = None
    token_env: str | None = None
    username: str | None = None
    password_env: str | None = None
    timeout_s: float = 10.0
    page_size: int = 1000
    max_lines: int = DEFAULT_MAX_LOG_LINES
    ca_file: Path | None = None
    source: str | None = None
    where: str = "logs"
    type: Literal["loki"] = "loki"


LogsConfig = JsonlLogsConfig | LokiLogsConfig


@dataclass(frozen=True)
class ServiceConfig:
    name: str
    environment: str
    windows: Windows
    """The file's windows, each missing one taken from the settings."""
    metrics: Any | None = None
    """The metric source's section as parsed (its ``kind`` names it in ``registry.SOURCES``); read
    it through :func:`console.telemetry.registry.build_source`."""
    logs: LogsConfig | None = None
    executor: dict[str, Any] | None = None
    """Raw: validated by the executor that reads it."""
    objectives: Objectives = field(default_factory=Objectives)
    trend_horizon_s: float = DEFAULT_TREND_HORIZON_S

    @property
    def has_telemetry(self) -> bool:
        return self.metrics is not None or self.logs is not None

    @property
    def prometheus(self) -> PrometheusConfig | None:
        """The metric source's section when it is Prometheus (for readers that only know that one)."""
        return self.metrics if isinstance(self.metrics, PrometheusConfig) else None


@dataclass(frozen=True)
class ServicesConfig:
    path: Path
    services: Mapping[str, ServiceConfig]

    def service(self, name: str) -> ServiceConfig:
        config = self.services.get(name)
        if config is None:
            listed = ", ".join(sorted(self.services)) or "none"
            raise NoSourceConfigured(
                f"no telemetry source configured for service {name!r}; add it to "
                f"CONSOLE_SERVICES_FILE ({self.path} lists: {listed})"
            )
        return config


def default_windows(settings: Settings) -> Windows:
    return Windows(settings.live_baseline_s, settings.live_verify_s, settings.live_post_action_s)


JSONL_KEYS = ("type", "path", "max_lines", "source")
LOKI_KEYS = (
    "type",
    "url",
    "query",
    "tenant",
    "token_env",
    "username",
    "password_env",
    "timeout_s",
    "page_size",
    "max_lines",
    "ca_file",
    "source",
)
SERVICE_KEYS = ("environment", "windows", "objectives", "trend_horizon_s", "logs", "executor", *SOURCES)


def _logs(check: ConfigReader, raw: Any, where: str, base: Path) -> LogsConfig | None:
    section = check.mapping(raw, where)
    if section is None:
        return None
    before = len(check.problems)
    kind = section.get("type")
    max_lines = int(check.number(section, "max_lines", where, DEFAULT_MAX_LOG_LINES, integer=True))
    source = check.string(section, "source", where)
    if kind == "jsonl":
        check.keys(section, where, JSONL_KEYS)
        path = check.path(section, "path", where, base, required=True)
        if path is None or len(check.problems) > before:
            return None
        return JsonlLogsConfig(path=path, max_lines=max_lines, source=source)
    if kind == "loki":
        check.keys(section, where, LOKI_KEYS)
        url = check.url(section, "url", where)
        query = check.string(section, "query", where, required=True)
        tenant = check.string(section, "tenant", where)
        token_env = check.env_name(section, "token_env", where)
        username = check.string(section, "username", where)
        password_env = check.env_name(section, "password_env", where)
        auth_pair(check, section, where)
        timeout = check.number(section, "timeout_s", where, 10.0)
        page_size = int(check.number(section, "page_size", where, 1000, integer=True))
        ca_file = check.path(section, "ca_file", where, base, required=False)
        if url is None or query is None or len(check.problems) > before:
            return None
        return LokiLogsConfig(
            url=url,
            query=query,
            tenant=tenant,
            token_env=token_env,
            username=username,
            password_env=password_env,
            timeout_s=float(timeout),
            page_size=page_size,
            max_lines=max_lines,
            ca_file=ca_file,
            source=source,
            where=where,
        )
    check.problem(f"{where}.type", f"must be jsonl or loki, got {kind!r}")
    return None


def _windows(check: ConfigReader, raw: Any, where: str, defaults: Windows) -> Windows:
    if raw is None:
        return defaults
    section = check.mapping(raw, where)
    if section is None:
        return defaults
    check.keys(section, where, ("baseline_s", "verify_s", "post_action_s"))
    return Windows(
        baseline_s=float(check.number(section, "baseline_s", where, defaults.baseline_s)),
        verify_s=float(check.number(section, "verify_s", where, defaults.verify_s)),
        post_action_s=float(check.number(section, "post_action_s", where, defaults.post_action_s)),
    )


def _metric_source(check: ConfigReader, section: dict[str, Any], where: str, base: Path) -> Any | None:
    """The one metric-source section a service has (``prometheus``, or another registered kind)."""
    present = [key for key in SOURCES if section.get(key) is not None]
    if len(present) > 1:
        check.problem(where, f"give one metric source, not {' and '.join(present)}")
        return None
    if not present:
        return None
    key = present[0]
    return SOURCES[key].parse(check, section[key], f"{where}.{key}", base)


def _objectives(check: ConfigReader, raw: Any, where: str) -> Objectives:
    if raw is None:
        return Objectives()
    section = check.mapping(raw, where)
    if section is None:
        return Objectives()
    check.keys(section, where, ("error_ratio", "latency_p95_ms"))
    ratio = check.number(section, "error_ratio", where, 0.0) if "error_ratio" in section else None
    if ratio is not None and ratio >= 1:
        check.problem(f"{where}.error_ratio", f"a fraction of the requests below 1, got {ratio!r}")
    latency = check.number(section, "latency_p95_ms", where, 0.0) if "latency_p95_ms" in section else None
    return Objectives(error_ratio=ratio or None, latency_p95_ms=latency or None)


def parse_services(
    doc: Any, *, base_dir: Path, defaults: Windows, source: str = "services file"
) -> dict[str, ServiceConfig]:
    """Validate a decoded services document; raise :class:`ConfigError` listing every problem."""
    check = ConfigReader()
    top = check.mapping(doc, "(document)")
    services_raw: dict[str, Any] = {}
    if top is not None:
        check.keys(top, "(document)", ("services",))
        if "services" not in top:
            check.problem("services", "missing")
        else:
            services_raw = check.mapping(top["services"], "services") or {}
    services: dict[str, ServiceConfig] = {}
    for name, raw in services_raw.items():
        where = f"services.{name}"
        if not isinstance(name, str) or not SERVICE_NAME.match(name):
            check.problem(f"services.{name!r}", "a service name is letters, digits, '.', '_' or '-'")
            continue
        section = check.mapping(raw, where)
        if section is None:
            continue
        before = len(check.problems)
        check.keys(section, where, SERVICE_KEYS)
        environment = check.string(section, "environment", where) or "production"
        windows = _windows(check, section.get("windows"), f"{where}.windows", defaults)
        metrics = _metric_source(check, section, where, base_dir)
        logs = (
            _logs(check, section["logs"], f"{where}.logs", base_dir)
            if section.get("logs") is not None
            else None
        )
        executor = None
        if section.get("executor") is not None:
            executor = check.mapping(section["executor"], f"{where}.executor")
        objectives = _objectives(check, section.get("objectives"), f"{where}.objectives")
        horizon = check.number(section, "trend_horizon_s", where, DEFAULT_TREND_HORIZON_S)
        if len(check.problems) == before:
            services[name] = ServiceConfig(
                name=name,
                environment=environment,
                windows=windows,
                metrics=metrics,
                logs=logs,
                executor=dict(executor) if executor is not None else None,
                objectives=objectives,
                trend_horizon_s=float(horizon),
            )
    if check.problems:
        raise ConfigError(source, check.problems)
    return services


_PARSED: dict[tuple[str, int, int, Windows], ServicesConfig] = {}
"""Files read already, by path, modification time, size and default windows: every look of every
watched window reads its service's configuration, and parsing the YAML each time cost as much as
the look's analysis."""


def load_services(path: Path, settings: Settings | None = None) -> ServicesConfig:
    """Read and validate the services file (once per version of the file). A missing file is
    :class:`NoSourceConfigured` (nothing is configured), a bad one :class:`ConfigError`."""
    defaults = default_windows(settings or Settings())
    try:
        stat = path.stat()
    except OSError:
        key = None
    else:
        key = (str(path), stat.st_mtime_ns, stat.st_size, defaults)
        if key in _PARSED:
            return _PARSED[key]
    config = _read_services(path, defaults)
    if key is not None:
        if len(_PARSED) >= 32:
            _PARSED.clear()
        _PARSED[key] = config
    return config


def _read_services(path: Path, defaults: Windows) -> ServicesConfig:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NoSourceConfigured(
            f"no telemetry sources configured: CONSOLE_SERVICES_FILE ({path}) does not exist"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [f"cannot be read: {type(exc).__name__}: {exc}"]) from None
    try:
        doc = load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        reason = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(str(path), [f"not valid YAML{at}: {reason}"]) from None
    services = parse_services(doc, base_dir=path.parent, defaults=defaults, source=str(path))
    return ServicesConfig(path=path, services=services)


def service_config(name: str, settings: Settings) -> ServiceConfig:
    """The configuration of one service, or :class:`NoSourceConfigured` saying where to add it.

    A service listed without any telemetry source (only an executor) is also "no source"."""
    if settings.services_file is None:
        raise NoSourceConfigured(
            f"no telemetry source configured for service {name!r}; add it to CONSOLE_SERVICES_FILE "
            "(the setting is not set: point it at a services YAML file)"
        )
    try:
        config = load_services(settings.services_file, settings).service(name)
    except NoSourceConfigured:
        if settings.services_file.exists():
            raise
        raise NoSourceConfigured(
            f"no telemetry source configured for service {name!r}; add it to CONSOLE_SERVICES_FILE "
            f"({settings.services_file} does not exist)"
        ) from None
    if not config.has_telemetry:
        raise NoSourceConfigured(
            f"no telemetry source configured for service {name!r}; add a prometheus or logs section "
            f"to it in CONSOLE_SERVICES_FILE ({settings.services_file})"
        )
    return config
