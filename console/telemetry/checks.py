"""What the telemetry sections of the services file add to the one reader of that file
(:class:`~console.domain.config_reader.ConfigReader`): bearer token or basic auth, not both, and the
secrets a section names, read only when a source is built. Shared by the services file
(``config.py``) and each metric source's own section (``prometheus.py``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from console.domain.config_reader import ConfigReader
from console.settings import Secret
from console.telemetry.errors import ConfigError


def auth_pair(check: ConfigReader, section: Mapping[str, Any], where: str) -> None:
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
