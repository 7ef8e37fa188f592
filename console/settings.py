"""One settings object, read from the environment and `.streamlit/secrets.toml`.

Environment variables win over the secrets file. Secret values are wrapped in :class:`Secret`
so that printing, logging or rendering a settings object never shows them.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

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

    # learning from measured outcomes (console/loop/effectiveness.py): when on, an automatic action
    # whose measured record for the root cause is poor goes to a human instead (stricter only)
    policy_use_effectiveness: bool = False

    # identity: the [console_auth] table of secrets.toml (mode, users with password hashes, OIDC roles)
    auth: dict[str, Any] = field(default_factory=dict)
    oidc_configured: bool = False
    """Streamlit's own [auth] table (st.login) has a client id."""

    @property
    def db_path(self) -> Path:
        return self.data_dir / "console.sqlite3"

    @property
    def backend_name(self) -> str:
        return "kestra" if self.kestra_url else "embedded"

    @property
    def llm_enabled(self) -> bool:
        return bool(self.together_api_key)

    @property
    def analyzer_name(self) -> str:
        return f"llm:{self.llm_model}" if self.llm_enabled else "rules"

    def safe_dict(self) -> dict[str, Any]:
        """Settings as shown to operators: secrets masked."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "auth":
                out["users_configured"] = len(value.get("users") or {})
                continue
            if isinstance(value, Secret):
                out[f.name] = "set" if value else "not set"
            else:
                out[f.name] = str(value) if isinstance(value, Path) else value
        return out


# environment variable -> (field, converter)
_ENV: dict[str, tuple[str, Any]] = {
    "CONSOLE_DATA_DIR": ("data_dir", Path),
    "CONSOLE_MOCK_DATA_DIR": ("mock_data_dir", Path),
    "CONSOLE_FLOWS_DIR": ("flows_dir", Path),
    "AUTO_APPROVE_CONFIDENCE": ("auto_approve_confidence", float),
    "APPROVAL_TIMEOUT_MINUTES": ("approval_timeout_minutes", float),
    "KESTRA_URL": ("kestra_url", str),
    "KESTRA_UI_URL": ("kestra_ui_url", str),
    "KESTRA_TENANT": ("kestra_tenant", str),
    "KESTRA_NAMESPACE": ("kestra_namespace", str),
    "KESTRA_USERNAME": ("kestra_username", str),
    "KESTRA_PASSWORD": ("kestra_password", Secret),
    "KESTRA_TOKEN": ("kestra_token", Secret),
    "KESTRA_TIMEOUT_S": ("kestra_timeout_s", float),
    "TOGETHER_API_KEY": ("together_api_key", Secret),
    "LLM_MODEL": ("llm_model", str),
    "LLM_BASE_URL": ("llm_base_url", str),
    "LLM_TIMEOUT_S": ("llm_timeout_s", float),
    "LLM_MAX_RETRIES": ("llm_max_retries", int),
    "CONSOLE_SERVICES_FILE": ("services_file", Path),
    "LIVE_BASELINE_S": ("live_baseline_s", float),
    "LIVE_VERIFY_S": ("live_verify_s", float),
    "LIVE_POST_ACTION_S": ("live_post_action_s", float),
    "LIVE_POLL_S": ("live_poll_s", float),
    "POLICY_USE_EFFECTIVENESS": ("policy_use_effectiveness", "bool"),
}

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


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


def load_settings(env: dict[str, str] | None = None, secrets_path: Path | None = None) -> Settings:
    """Build settings: defaults, then top-level keys of secrets.toml, then the environment.

    secrets.toml uses the same names as the environment (e.g. ``TOGETHER_API_KEY = "..."``), a
    ``[console_auth]`` table for the console's users and roles, and Streamlit's own ``[auth]`` table
    when OIDC login (``st.login``) is configured.
    """
    env = dict(os.environ if env is None else env)
    secrets = _read_secrets(secrets_path or Path(env.get("CONSOLE_SECRETS", DEFAULT_SECRETS_PATH)))
    values: dict[str, Any] = {}
    for name, (attr, convert) in _ENV.items():
        raw = env.get(name)
        if raw is None or raw == "":
            raw = secrets.get(name)
        if raw is None or raw == "":
            continue
        if convert == "bool":
            text = str(raw).strip().lower()
            if text not in _TRUE | _FALSE:
                raise SettingsError(f"{name} must be true or false, got {raw!r}")
            values[attr] = text in _TRUE
            continue
        try:
            values[attr] = convert(str(raw)) if convert is not str else str(raw).strip()
        except ValueError:
            raise SettingsError(f"{name} must be a {convert.__name__}, got {raw!r}") from None
    auth = secrets.get("console_auth")
    if isinstance(auth, dict):
        values["auth"] = auth
    streamlit_auth = secrets.get("auth")
    if isinstance(streamlit_auth, dict):
        providers = [v for v in streamlit_auth.values() if isinstance(v, dict)]
        values["oidc_configured"] = bool(
            streamlit_auth.get("client_id") or any(p.get("client_id") for p in providers)
        )
    settings = Settings(**values)
    if not 0.0 <= settings.auto_approve_confidence <= 1.0:
        raise SettingsError("AUTO_APPROVE_CONFIDENCE must be between 0 and 1")
    if settings.approval_timeout_minutes <= 0:
        raise SettingsError("APPROVAL_TIMEOUT_MINUTES must be positive")
    if settings.live_poll_s <= 0:
        raise SettingsError("LIVE_POLL_S must be positive")
    return settings
