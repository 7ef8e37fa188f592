"""Reading typed values out of a decoded services file, one problem per line naming the key's path,
and the secrets a section names (read only when a source is built). Shared by the services file
(``config.py``) and each metric source's own section (``prometheus.py``)."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from console.settings import Secret
from console.telemetry.errors import ConfigError

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SECRET_KEYS = ("token", "password", "bearer_token", "api_key", "secret")


class Checker:
    """Collects problems while reading typed values out of the decoded YAML."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def problem(self, where: str, text: str) -> None:
        self.problems.append(f"{where}: {text}")

    def mapping(self, value: Any, where: str) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.problem(where, f"must be a mapping, got {kind_of(value)}")
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
            self.problem(f"{where}.{key}", f"must be a non-empty string, got {kind_of(value)}")
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


def kind_of(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def auth_pair(check: Checker, section: dict[str, Any], where: str) -> None:
    has_user = section.get("username") is not None
    has_password = section.get("password_env") is not None
    if has_user != has_password:
        check.problem(where, "username and password_env go together (basic auth)")
    if has_user and section.get("token_env") is not None:
        check.problem(where, "give either token_env (bearer) or username + password_env (basic), not both")


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
