"""The services file (setting ``CONSOLE_SERVICES_FILE``): where each service's telemetry comes from
and which executor acts on it.

```yaml
services:
  demo-service:
    environment: live-demo
    windows: {baseline_s: 20, verify_s: 30, post_action_s: 20}   # optional, else the settings
    prometheus:
      url: http://127.0.0.1:9090
      profile: demo-service          # console/telemetry/promql.yaml
      selector: 'service="demo-service"'
      http_selector: '...'           # optional: matchers of the HTTP metrics (kubernetes profile)
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

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml

from console.settings import Secret, Settings
from console.telemetry.errors import ConfigError, NoSourceConfigured
from console.telemetry.promql import load_profiles, normalize_selector, profile_names

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SERVICE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
SECRET_KEYS = ("token", "password", "bearer_token", "api_key", "secret")
DEFAULT_MAX_LOG_LINES = 10_000


@dataclass(frozen=True)
class Windows:
    baseline_s: float
    verify_s: float
    post_action_s: float


@dataclass(frozen=True)
class PrometheusConfig:
    url: str
    profile: str = "demo-service"
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
    where: str = "prometheus"
    """Path of this section in the file, for error messages."""


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
    prometheus: PrometheusConfig | None = None
    logs: LogsConfig | None = None
    executor: dict[str, Any] | None = None
    """Raw: validated by the executor that reads it."""

    @property
    def has_telemetry(self) -> bool:
        return self.prometheus is not None or self.logs is not None


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


class _Checker:
    """Collects problems while reading typed values out of the decoded YAML."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, where: str, text: str) -> None:
        self.problems.append(f"{where}: {text}")

    def mapping(self, value: Any, where: str) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.problem(where, f"must be a mapping, got {_kind(value)}")
            return None
        return value

    def keys(self, section: dict[str, Any], where: str, allowed: tuple[str, ...]) -> None:
        for key in section:
            if key in SECRET_KEYS:
                self.problem(
                    f"{where}.{key}",
                    "secrets are never written in this file: put it in an environment variable "
                    "and give that variable's name (token_env / password_env)",
                )
            elif key not in allowed:
                self.problem(f"{where}.{key}", f"unknown key (allowed: {', '.join(allowed)})")

    def string(self, section: dict[str, Any], key: str, where: str, *, required: bool = False) -> str | None:
        value = section.get(key)
        if value is None:
            if required:
                self.problem(f"{where}.{key}", "missing")
            return None
        if not isinstance(value, str) or not value.strip():
            self.problem(f"{where}.{key}", f"must be a non-empty string, got {_kind(value)}")
            return None
        return value.strip()

    def url(self, section: dict[str, Any], key: str, where: str) -> str | None:
        value = self.string(section, key, where, required=True)
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.problem(f"{where}.{key}", "not a URL (expected http://host:port or https://...)")
            return None
        if parts.username or parts.password:
            self.problem(
                f"{where}.{key}",
                "credentials in the URL are not allowed: use token_env or username + password_env",
            )
            return None
        return value.rstrip("/")

    def env_name(self, section: dict[str, Any], key: str, where: str) -> str | None:
        value = section.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not ENV_NAME.match(value):
            # never echo the value: someone may have pasted the secret itself here
            self.problem(
                f"{where}.{key}",
                "not an environment variable name (letters, digits, _): the file names the "
                "variable that holds the secret, never the secret",
            )
            return None
        return value

    def number(
        self, section: dict[str, Any], key: str, where: str, default: float, *, integer: bool = False
    ) -> float:
        value = section.get(key)
        if value is None:
            return default
        ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
        if isinstance(value, bool) or not ok_type or not value > 0 or value != value:
            kind = "a positive whole number" if integer else "a positive number"
            self.problem(f"{where}.{key}", f"must be {kind}, got {value!r}")
            return default
        return value

    def path(
        self, section: dict[str, Any], key: str, where: str, base: Path, *, required: bool
    ) -> Path | None:
        value = self.string(section, key, where, required=required)
        if value is None:
            return None
        path = Path(value).expanduser()
        return path if path.is_absolute() else base / path


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


PROMETHEUS_KEYS = (
    "url",
    "profile",
    "selector",
    "http_selector",
    "queries",
    "metrics",
    "scrape_interval_s",
    "timeout_s",
    "token_env",
    "username",
    "password_env",
    "ca_file",
)
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
SERVICE_KEYS = ("environment", "windows", "prometheus", "logs", "executor")


def _auth_pair(check: _Checker, section: dict[str, Any], where: str) -> None:
    has_user = section.get("username") is not None
    has_password = section.get("password_env") is not None
    if has_user != has_password:
        check.problem(where, "username and password_env go together (basic auth)")
    if has_user and section.get("token_env") is not None:
        check.problem(where, "give either token_env (bearer) or username + password_env (basic), not both")


def _prometheus(check: _Checker, raw: Any, where: str, base: Path) -> PrometheusConfig | None:
    section = check.mapping(raw, where)
    if section is None:
        return None
    before = len(check.problems)
    check.keys(section, where, PROMETHEUS_KEYS)
    url = check.url(section, "url", where)
    known = profile_names()
    profile = check.string(section, "profile", where) or "demo-service"
    if profile not in known:
        check.problem(f"{where}.profile", f"unknown profile {profile!r} (known: {', '.join(known)})")
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
    queries: dict[str, str | None] = {}
    raw_queries = section.get("queries")
    if raw_queries is not None and check.mapping(raw_queries, f"{where}.queries") is not None:
        for metric, expr in raw_queries.items():
            if not isinstance(metric, str) or not metric:
                check.problem(f"{where}.queries", f"metric names must be strings, got {metric!r}")
            elif expr is not None and (not isinstance(expr, str) or not expr.strip()):
                check.problem(f"{where}.queries.{metric}", "must be a PromQL string, or null to drop it")
            else:
                queries[metric] = " ".join(expr.split()) if expr is not None else None
    metrics: tuple[str, ...] | None = None
    raw_metrics = section.get("metrics")
    if raw_metrics is not None:
        if not isinstance(raw_metrics, list) or not all(isinstance(m, str) and m for m in raw_metrics):
            check.problem(f"{where}.metrics", "must be a list of metric names")
        else:
            metrics = tuple(raw_metrics)
            if profile in known:
                defined = {m for m in load_profiles()[profile].metrics if queries.get(m, "") is not None}
                defined |= {m for m, q in queries.items() if q is not None}
                for name in metrics:
                    if name not in defined:
                        check.problem(
                            f"{where}.metrics",
                            f"{name!r} has no query (profile {profile} defines {', '.join(sorted(defined))}; "
                            "add it under queries)",
                        )
    scrape = check.number(section, "scrape_interval_s", where, 15.0)
    timeout = check.number(section, "timeout_s", where, 10.0)
    token_env = check.env_name(section, "token_env", where)
    username = check.string(section, "username", where)
    password_env = check.env_name(section, "password_env", where)
    _auth_pair(check, section, where)
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
        where=where,
    )


def _logs(check: _Checker, raw: Any, where: str, base: Path) -> LogsConfig | None:
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
        _auth_pair(check, section, where)
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


def _windows(check: _Checker, raw: Any, where: str, defaults: Windows) -> Windows:
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


def parse_services(
    doc: Any, *, base_dir: Path, defaults: Windows, source: str = "services file"
) -> dict[str, ServiceConfig]:
    """Validate a decoded services document; raise :class:`ConfigError` listing every problem."""
    check = _Checker()
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
        prometheus = (
            _prometheus(check, section["prometheus"], f"{where}.prometheus", base_dir)
            if section.get("prometheus") is not None
            else None
        )
        logs = (
            _logs(check, section["logs"], f"{where}.logs", base_dir)
            if section.get("logs") is not None
            else None
        )
        executor = None
        if section.get("executor") is not None:
            executor = check.mapping(section["executor"], f"{where}.executor")
        if len(check.problems) == before:
            services[name] = ServiceConfig(
                name=name,
                environment=environment,
                windows=windows,
                prometheus=prometheus,
                logs=logs,
                executor=dict(executor) if executor is not None else None,
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
        doc = yaml.safe_load(text)
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


def resolve_secret(env_name: str | None, where: str, env: Mapping[str, str] | None = None) -> Secret | None:
    """The value of the environment variable a config names (``token_env``/``password_env``).

    Read only when a source is built; a named variable that is unset is a clear error rather than
    an unauthenticated request that fails later with a vaguer 401."""
    if env_name is None:
        return None
    value = (os.environ if env is None else env).get(env_name, "")
    if not value:
        raise ConfigError(
            where, [f"the environment variable {env_name} is not set (it should hold the secret)"]
        )
    return Secret(value)
