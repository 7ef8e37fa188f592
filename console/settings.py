"""One settings object, read from the environment and `.streamlit/secrets.toml`.

Environment variables win over the secrets file. Secret values are wrapped in :class:`Secret`
so that printing, logging or rendering a settings object never shows them.
"""

from __future__ import annotations

import ipaddress
import math
import os
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

from console.domain.redaction import mask_url

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SECRETS_PATH = PROJECT_ROOT / ".streamlit" / "secrets.toml"


class Secret:
    """A string that never shows itself in repr/str/format."""

    __slots__ = ("_value",)

    def __init__(self, value: str | None) -> None:
        self._value = value or ""

    def get(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __repr__(self) -> str:
        return "Secret('***')" if self._value else "Secret('')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class Settings:
    # storage
    data_dir: Path = PROJECT_ROOT / "data"
    mock_data_dir: Path = PROJECT_ROOT / "mock-data"
    flows_dir: Path = PROJECT_ROOT / "flows"

    # policy
    auto_approve_confidence: float = 0.80
    """LOW-risk actions at or above this confidence run without a human."""
    approval_timeout_minutes: float = 30.0
    """An approval nobody decides within this time is rejected."""
    critical_approvers: int = 2

    # Kestra
    kestra_url: str = ""
    kestra_ui_url: str = ""
    kestra_tenant: str = "main"
    kestra_namespace: str = "devops.loop"
    kestra_username: str = ""
    kestra_password: Secret = field(default_factory=lambda: Secret(""))
    kestra_token: Secret = field(default_factory=lambda: Secret(""))
    kestra_timeout_s: float = 5.0
    kestra_mirror_interval_s: float = 5.0
    """How often the console copies Kestra's executions into its read model."""
    kestra_mirror_days: float = 7.0
    """How far back the first copy of a Kestra's executions goes (then it follows new ones)."""

    # LLM (Together or any OpenAI-compatible server)
    together_api_key: Secret = field(default_factory=lambda: Secret(""))
    llm_model: str = "Qwen/Qwen2.5-7B-Instruct-Turbo"
    llm_base_url: str = ""
    llm_timeout_s: float = 20.0
    llm_max_retries: int = 1

    # live mode: where each service's telemetry sources and executor are configured (one YAML file;
    # see console/telemetry/config.py), and the windows of a live run. Seconds suit the live demo
    # (1 s scrapes); in production these are minutes (e.g. 1800 / 900 / 900).
    services_file: Path | None = None
    live_baseline_s: float = 30.0
    """Pre-deploy baseline window a live run compares against."""
    live_verify_s: float = 45.0
    """Verification window after a deploy (the latest moment a live run decides)."""
    live_post_action_s: float = 30.0
    """Window after the actions in which recovery is measured."""
    live_poll_s: float = 2.0
    """How often a live run re-fetches and re-analyses its verification window."""
    live_reconcile_s: float = 120.0
    """How long verify keeps reading a service whose action's result is unknown (a frozen deployer, a
    lost answer) before measuring; the post-action window starts once the result is known."""
    live_telemetry_grace_s: float = 120.0
    """How long a live run waits for a source that fails at the moment it must judge (the window's
    end, the post-action window) before it escalates "telemetry lost since T"."""

    # reliability of the embedded engine (console/engines/embedded): faults are waited out, then escalated
    store_busy_timeout_s: float = 5.0
    """How long one write waits for a lock another writer holds before it counts as a fault."""
    store_fault_escalate_s: float = 600.0
    """A run whose store writes keep failing (locked, disk full) retries with backoff this long,
    then escalates (a note on the deployment, a notification) instead of waiting on."""
    engine_sweep_s: float = 15.0
    """How often the engine looks for runs nobody runs (a dead process's, a worker that stopped)."""

    # fairness of what arrives (console/inbound): one caller cannot fill the engine's queue
    intake_budget: int = 20
    """Runs in progress (not paused, not ended) one caller (an API token, GitHub, the console) may
    have; past it a delivery is answered 503 with Retry-After and nothing of it is kept."""
    alerts_per_delivery: int = 50
    """Alerts of one Alertmanager delivery handled per request (Alertmanager's own max_alerts
    shape); the rest are answered 503 so Alertmanager sends them again."""

    # learning from measured outcomes (console/loop/effectiveness.py): when on, an automatic action
    # whose measured record for the root cause is poor goes to a human instead (stricter only)
    policy_use_effectiveness: bool = False

    # notifications (console/notify): approvals posted to a Slack incoming webhook and/or a generic JSON
    # webhook. Both URLs are secrets (a Slack webhook URL is its own credential; a generic one may carry
    # a token); neither is ever shown, logged or put in a message.
    public_url: str = ""
    """The console's address as people reach it (``https://console.example.com``), for deep links."""
    notify_slack_webhook_url: Secret = field(default_factory=lambda: Secret(""))
    notify_webhook_url: Secret = field(default_factory=lambda: Secret(""))
    notify_webhook_token: Secret = field(default_factory=lambda: Secret(""))
    """Sent to the generic webhook as ``Authorization: Bearer <token>`` when set."""
    notify_timeout_s: float = 5.0
    notify_max_attempts: int = 5
    """Attempts per message and channel (5xx, 429, timeouts and refused connections are retried with
    a doubling backoff; any other 4xx is final at once)."""

    # identity: the [console_auth] table of secrets.toml (mode, users with password hashes, OIDC roles)
    auth: dict[str, Any] = field(default_factory=dict)
    auth_type: str = ""
    """The TOML type of ``console_auth`` as written ("" when absent, "table" when usable): anything
    else is a broken sign-in configuration (console/access/signin.py says so, never demo mode)."""
    oidc_configured: bool = False
    """Streamlit's own [auth] table (st.login) has a client id."""
    oidc_shape: Any = None
    """Which keys Streamlit's [auth] table sets, values replaced by True/False (set or empty) so no
    secret is kept here; a provider sub-table is a nested map; a non-table [auth] is its TOML type
    name; None when there is no [auth]."""
    demo_identity: bool = False
    """CONSOLE_DEMO_IDENTITY: allow "pick any name and role" where the console acts for real
    (Kestra, a live executor, the HTTP API configured). Off by default; a red banner when on."""
    load_error: str = ""
    """Why the settings could not be read (set by the composition root on a SettingsError): the
    console then runs on defaults, and the sign-in fails closed."""

    # the HTTP API (console/api; tokens: console/access/tokens.py). No token configured = the API is
    # off except GET /api/health.
    api_token: Secret = field(default_factory=lambda: Secret(""))
    """One bearer token (``CONSOLE_API_TOKEN``); more, hashed, in ``[console_api.tokens.<name>]``."""
    api_identity: str = "api"
    """The identity ``CONSOLE_API_TOKEN`` acts as (audit trail, approvals)."""
    api_role: str = "viewer"
    """Its role: viewer by default (reads only); approver or admin lets it decide approvals."""
    api_rate_per_minute: float = 120.0
    """Requests per minute per token (token bucket), after a burst of ``api_burst``."""
    api_burst: int = 20
    api_max_body_bytes: int = 1_048_576
    """A request body larger than this is refused (413)."""
    api: Any = field(default_factory=dict)
    """The [console_api] table of secrets.toml as written (hashed tokens:
    ``[console_api.tokens.<name>]``); console/access/tokens.py validates it and fails closed."""
    trusted_proxies: str = ""
    """Comma-separated addresses or networks (``10.0.0.5, 192.168.0.0/24``) of reverse proxies
    whose ``X-Forwarded-For`` names the client. Empty: the connection's peer is the client, and a
    forwarded header from anyone is ignored (the API's failure limits and the sign-in limits count
    per client address)."""

    # sessions and sign-in attempts (console/access/sessions.py, console/access/attempts.py)
    session_secret: Secret = field(default_factory=lambda: Secret(""))
    """Signs the session cookie; unset: a random one is made once and kept in
    ``CONSOLE_DATA_DIR/session-secret`` (mode 600)."""
    session_hours: float = 12.0
    """A password sign-in lasts this long (cookie and server-side session), then asks again."""
    signin_attempts: int = 5
    """Wrong passwords allowed per user and per address before each further one locks them out,
    for a time that doubles (1 s, 2 s, 4 s ...)."""
    signin_max_lock_s: float = 900.0
    """The longest such lock-out."""

    # incoming alerts (console/payloads/alertmanager.py): which labels name the service and the
    # severity, and how severity values map to LOW/MEDIUM/HIGH/CRITICAL
    alert_service_labels: str = "service,job,app"
    """Labels tried in order for an alert's service."""
    alert_severity_label: str = "severity"
    alert_severity_map: str = ""
    """``value=SEVERITY`` pairs, comma separated, added to (or replacing) the built-in mapping."""
    alert_default_severity: str = "MEDIUM"
    """The severity of an alert without the label, or with a value the mapping does not know."""
    incident_lookback_s: float = 3600.0
    """An alert's incident run takes the service's latest deployment the console knows of, deployed
    at most this long before the alert started, as the suspect (its baseline before that deploy,
    its previous version as the rollback target); none that recent: the window is built around the
    alert's ``startsAt``."""
    github_webhook_secret: Secret = field(default_factory=lambda: Secret(""))
    """The secret of a GitHub webhook (``X-Hub-Signature-256``): GitHub cannot send a bearer token,
    so ``POST /api/deployments`` accepts its deliveries signed with this secret instead."""

    @property
    def db_path(self) -> Path:
        return self.data_dir / "console.sqlite3"

    @property
    def trusted_proxy_list(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.trusted_proxies.split(",") if p.strip())

    @property
    def api_tokens_configured(self) -> bool:
        """secrets.toml has a non-empty [console_api] table (the API's per-identity tokens)."""
        return bool(self.api)

    @property
    def backend_name(self) -> str:
        return "kestra" if self.kestra_url else "embedded"

    @property
    def notify_enabled(self) -> bool:
        return bool(self.notify_slack_webhook_url or self.notify_webhook_url)

    @property
    def llm_enabled(self) -> bool:
        return bool(self.together_api_key)

    @property
    def analyzer_name(self) -> str:
        return f"llm:{self.llm_model}" if self.llm_enabled else "rules"

    def secret_values(self) -> list[str]:
        """The values of every secret setting that is set (to mask them in text that leaves the
        console), and the parts of a secret URL that travel on their own (a webhook's path, as an
        HTTP library logs it, is its credential)."""
        values = [
            v.get() for v in (getattr(self, f.name) for f in fields(self)) if isinstance(v, Secret) and v
        ]
        parts: list[str] = []
        for value in values:
            url = _url_parts(value)
            if url is not None:
                parts += [p for p in (url.path, url.query, url.password or "") if len(p) >= 8]
        return values + parts

    def safe_dict(self) -> dict[str, Any]:
        """Settings as shown to operators: secrets masked, credentials in URLs hidden."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "auth":
                users = value.get("users")
                out["users_configured"] = len(users) if isinstance(users, dict | list) else 0
                continue
            if f.name == "api":
                tokens = value.get("tokens") if isinstance(value, dict) else None
                out["api_tokens_configured"] = len(tokens) if isinstance(tokens, dict) else 0
                continue
            if f.name in ("auth_type", "oidc_shape", "load_error"):
                continue  # shown by the sign-in status, not as raw values
            if isinstance(value, Secret):
                out[f.name] = "set" if value else "not set"
            elif isinstance(value, Path):
                out[f.name] = str(value)
            elif isinstance(value, str) and (f.name.endswith("_url") or "://" in value):
                out[f.name] = mask_url(value)
            else:
                out[f.name] = value
        return out


def number(text: str) -> float:
    """A finite float: ``nan`` and ``inf`` parse as floats but would slip past every bound below
    (``nan <= 0`` is false), so they are refused here."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def flag(text: str) -> bool:
    """An on/off setting: 1/true/yes/on or 0/false/no/off (any case)."""
    value = str(text).strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(text)


# environment variable -> (field, converter)
_ENV: dict[str, tuple[str, Any]] = {
    "CONSOLE_DATA_DIR": ("data_dir", Path),
    "CONSOLE_MOCK_DATA_DIR": ("mock_data_dir", Path),
    "CONSOLE_FLOWS_DIR": ("flows_dir", Path),
    "AUTO_APPROVE_CONFIDENCE": ("auto_approve_confidence", number),
    "APPROVAL_TIMEOUT_MINUTES": ("approval_timeout_minutes", number),
    "KESTRA_URL": ("kestra_url", str),
    "KESTRA_UI_URL": ("kestra_ui_url", str),
    "KESTRA_TENANT": ("kestra_tenant", str),
    "KESTRA_NAMESPACE": ("kestra_namespace", str),
    "KESTRA_USERNAME": ("kestra_username", str),
    "KESTRA_PASSWORD": ("kestra_password", Secret),
    "KESTRA_TOKEN": ("kestra_token", Secret),
    "KESTRA_TIMEOUT_S": ("kestra_timeout_s", number),
    "KESTRA_MIRROR_INTERVAL_S": ("kestra_mirror_interval_s", number),
    "KESTRA_MIRROR_DAYS": ("kestra_mirror_days", number),
    "TOGETHER_API_KEY": ("together_api_key", Secret),
    "LLM_MODEL": ("llm_model", str),
    "LLM_BASE_URL": ("llm_base_url", str),
    "LLM_TIMEOUT_S": ("llm_timeout_s", number),
    "LLM_MAX_RETRIES": ("llm_max_retries", int),
    "CONSOLE_SERVICES_FILE": ("services_file", Path),
    "LIVE_BASELINE_S": ("live_baseline_s", number),
    "LIVE_VERIFY_S": ("live_verify_s", number),
    "LIVE_POST_ACTION_S": ("live_post_action_s", number),
    "CONSOLE_PUBLIC_URL": ("public_url", str),
    "NOTIFY_SLACK_WEBHOOK_URL": ("notify_slack_webhook_url", Secret),
    "NOTIFY_WEBHOOK_URL": ("notify_webhook_url", Secret),
    "NOTIFY_WEBHOOK_TOKEN": ("notify_webhook_token", Secret),
    "NOTIFY_TIMEOUT_S": ("notify_timeout_s", number),
    "NOTIFY_MAX_ATTEMPTS": ("notify_max_attempts", int),
    "CONSOLE_API_TOKEN": ("api_token", Secret),
    "CONSOLE_API_TOKEN_NAME": ("api_identity", str),
    "CONSOLE_API_TOKEN_ROLE": ("api_role", str),
    "CONSOLE_API_RATE_PER_MINUTE": ("api_rate_per_minute", number),
    "CONSOLE_API_BURST": ("api_burst", int),
    "CONSOLE_API_MAX_BODY_BYTES": ("api_max_body_bytes", int),
    "CONSOLE_ALERT_SERVICE_LABELS": ("alert_service_labels", str),
    "CONSOLE_ALERT_SEVERITY_LABEL": ("alert_severity_label", str),
    "CONSOLE_ALERT_SEVERITY_MAP": ("alert_severity_map", str),
    "CONSOLE_ALERT_DEFAULT_SEVERITY": ("alert_default_severity", str),
    "CONSOLE_INCIDENT_LOOKBACK_S": ("incident_lookback_s", number),
    "CONSOLE_GITHUB_WEBHOOK_SECRET": ("github_webhook_secret", Secret),
    "CONSOLE_TRUSTED_PROXIES": ("trusted_proxies", str),
    "CONSOLE_SESSION_SECRET": ("session_secret", Secret),
    "CONSOLE_SESSION_HOURS": ("session_hours", number),
    "CONSOLE_SIGNIN_ATTEMPTS": ("signin_attempts", int),
    "CONSOLE_SIGNIN_MAX_LOCK_S": ("signin_max_lock_s", number),
    "CONSOLE_DEMO_IDENTITY": ("demo_identity", flag),
    "LIVE_POLL_S": ("live_poll_s", number),
    "LIVE_TELEMETRY_GRACE_S": ("live_telemetry_grace_s", number),
    "CONSOLE_STORE_BUSY_TIMEOUT_S": ("store_busy_timeout_s", number),
    "CONSOLE_STORE_FAULT_ESCALATE_S": ("store_fault_escalate_s", number),
    "CONSOLE_ENGINE_SWEEP_S": ("engine_sweep_s", number),
    "CONSOLE_INTAKE_BUDGET": ("intake_budget", int),
    "CONSOLE_ALERTS_PER_DELIVERY": ("alerts_per_delivery", int),
    "LIVE_RECONCILE_S": ("live_reconcile_s", number),
    "POLICY_USE_EFFECTIVENESS": ("policy_use_effectiveness", flag),
}


class SettingsError(ValueError):
    pass


def _read_secrets(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"{path.name} could not be read: {exc}") from None


def _toml_type(value: Any) -> str:
    if isinstance(value, dict):
        return "table"
    if isinstance(value, list):
        return "array of tables" if value and all(isinstance(v, dict) for v in value) else "array"
    return {bool: "boolean", int: "integer", float: "float", str: "string"}.get(type(value), "value")


def _shape(value: Any) -> Any:
    """A table's keys with each value replaced by whether it is set (sub-tables recursively): what
    validation needs, without keeping a secret."""
    if not isinstance(value, dict):
        return _toml_type(value)
    return {str(k): _shape(v) if isinstance(v, dict) else bool(v) for k, v in value.items()}


def load_settings(env: dict[str, str] | None = None, secrets_path: Path | None = None) -> Settings:
    """Build settings: defaults, then top-level keys of secrets.toml, then the environment.

    secrets.toml uses the same names as the environment (e.g. ``TOGETHER_API_KEY = "..."``), a
    ``[console_auth]`` table for the console's users and roles, and Streamlit's own ``[auth]`` table
    when OIDC login (``st.login``) is configured.
    """
    env = dict(os.environ if env is None else env)
    secrets = _read_secrets(secrets_path or Path(env.get("CONSOLE_SECRETS", DEFAULT_SECRETS_PATH)))
    settings = Settings(**_named_values(env, secrets), **_table_values(secrets))
    _check_bounds(settings, _POLICY_BOUNDS)
    _check_notify(settings)
    _check_bounds(settings, _RUNTIME_BOUNDS)
    _check_identity(settings)
    return settings


def _named_values(env: dict[str, str], secrets: dict[str, Any]) -> dict[str, Any]:
    """The fields set by name (:data:`_ENV`), the environment first, converted."""
    values: dict[str, Any] = {}
    for name, (attr, convert) in _ENV.items():
        raw = _raw_value(name, env, secrets)
        if raw is None:
            continue
        try:
            values[attr] = convert(str(raw)) if convert is not str else str(raw).strip()
        except ValueError:
            kind = "1/true/yes/on or 0/false/no/off" if convert is flag else f"a {convert.__name__}"
            raise SettingsError(f"{name} must be {kind}, got {raw!r}") from None
    return values


def _raw_value(name: str, env: dict[str, str], secrets: dict[str, Any]) -> Any:
    """The environment's value, else the secrets file's; None when neither sets it (empty is unset)."""
    for source in (env, secrets):
        raw = source.get(name)
        if raw is not None and raw != "":
            return raw
    return None


def _table_values(secrets: dict[str, Any]) -> dict[str, Any]:
    """The fields from the secrets file's tables: the console's users, its API tokens, Streamlit's OIDC."""
    values: dict[str, Any] = {}
    auth = secrets.get("console_auth")
    if auth is not None:
        values["auth_type"] = _toml_type(auth)
        if isinstance(auth, dict):
            values["auth"] = auth
    api = secrets.get("console_api")
    if api is not None:
        values["api"] = api  # kept as written, even malformed: console/access/tokens.py reports it
    streamlit_auth = secrets.get("auth")
    if streamlit_auth is not None:
        values["oidc_shape"] = _shape(streamlit_auth)
    if isinstance(streamlit_auth, dict):
        providers = [v for v in streamlit_auth.values() if isinstance(v, dict)]
        values["oidc_configured"] = bool(
            streamlit_auth.get("client_id") or any(p.get("client_id") for p in providers)
        )
    return values


Bounds = tuple[tuple[Callable[[Settings], bool], str], ...]
"""(is out of bounds, the message), checked in order: the first that holds is the error."""

_POLICY_BOUNDS: Bounds = (
    (
        lambda s: not 0.0 <= s.auto_approve_confidence <= 1.0,
        "AUTO_APPROVE_CONFIDENCE must be between 0 and 1",
    ),
    (lambda s: s.approval_timeout_minutes <= 0, "APPROVAL_TIMEOUT_MINUTES must be positive"),
)
_RUNTIME_BOUNDS: Bounds = (
    (
        lambda s: not s.api_rate_per_minute > 0 or s.api_burst < 1,
        "CONSOLE_API_RATE_PER_MINUTE must be positive and CONSOLE_API_BURST at least 1",
    ),
    (lambda s: s.api_max_body_bytes < 1024, "CONSOLE_API_MAX_BODY_BYTES must be at least 1024"),
    (lambda s: s.live_poll_s <= 0, "LIVE_POLL_S must be positive"),
    (lambda s: s.live_reconcile_s < 0, "LIVE_RECONCILE_S must be zero or more"),
    (lambda s: s.incident_lookback_s < 0, "CONSOLE_INCIDENT_LOOKBACK_S must be 0 or more (seconds)"),
    (lambda s: s.live_telemetry_grace_s < 0, "LIVE_TELEMETRY_GRACE_S must be 0 or more (seconds)"),
    (lambda s: s.store_fault_escalate_s <= 0, "CONSOLE_STORE_FAULT_ESCALATE_S must be positive (seconds)"),
    (
        lambda s: s.store_busy_timeout_s <= 0 or s.engine_sweep_s <= 0,
        "CONSOLE_STORE_BUSY_TIMEOUT_S and CONSOLE_ENGINE_SWEEP_S must be positive",
    ),
    (
        lambda s: s.intake_budget < 1 or s.alerts_per_delivery < 1,
        "CONSOLE_INTAKE_BUDGET and CONSOLE_ALERTS_PER_DELIVERY must be at least 1",
    ),
)


def _check_bounds(settings: Settings, bounds: Bounds) -> None:
    for out_of_bounds, message in bounds:
        if out_of_bounds(settings):
            raise SettingsError(message)


def _check_identity(settings: Settings) -> None:
    for entry in settings.trusted_proxy_list:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            raise SettingsError(
                f"CONSOLE_TRUSTED_PROXIES: {entry[:60]!r} is not an IP address or network (e.g. 10.0.0.5, "
                "10.0.0.0/8)"
            ) from None
    if not settings.session_hours > 0:
        raise SettingsError("CONSOLE_SESSION_HOURS must be positive")
    if settings.signin_attempts < 1 or not settings.signin_max_lock_s >= 1:
        raise SettingsError(
            "CONSOLE_SIGNIN_ATTEMPTS must be at least 1 and CONSOLE_SIGNIN_MAX_LOCK_S at least 1"
        )


def _url_parts(url: str) -> SplitResult | None:
    """The parts of an http(s) URL with a host; None for anything else."""
    try:
        parts = urlsplit(url.strip())
        ok = parts.scheme in ("http", "https") and bool(parts.hostname)
        parts.port  # noqa: B018 - raises ValueError on a port out of range
    except ValueError:
        return None
    return parts if ok else None


def _check_notify(settings: Settings) -> None:
    """The public URL is shown in messages: an http(s) address without credentials. The webhook
    URLs are checked without ever quoting them (they are secrets)."""
    if settings.public_url:
        parts = _url_parts(settings.public_url)
        if parts is None:
            raise SettingsError("CONSOLE_PUBLIC_URL must be an http:// or https:// address")
        if parts.username or parts.password:
            raise SettingsError("CONSOLE_PUBLIC_URL must not carry credentials (it goes into messages)")
    for name, secret in (
        ("NOTIFY_SLACK_WEBHOOK_URL", settings.notify_slack_webhook_url),
        ("NOTIFY_WEBHOOK_URL", settings.notify_webhook_url),
    ):
        if secret and _url_parts(secret.get()) is None:
            raise SettingsError(f"{name} must be an http:// or https:// URL (value not shown)")
    if settings.notify_timeout_s <= 0:
        raise SettingsError("NOTIFY_TIMEOUT_S must be positive")
    if not 1 <= settings.notify_max_attempts <= 20:
        raise SettingsError("NOTIFY_MAX_ATTEMPTS must be between 1 and 20")
