"""Reading the ``executor`` section of the services config: one clear line per problem.

Every executor's ``from_config`` reads its keys through a :class:`ConfigReader`, which collects the
problems (unknown keys, missing or mistyped values) instead of stopping at the first, and raises one
:class:`ExecutorConfigError` listing them all.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from console.executors.base import mask_url

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ExecutorConfigError(ValueError):
    """The executor section is not usable. ``problems`` holds one line per problem; ``str`` joins them."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(self.problems))


class ConfigReader:
    """Typed reads of one executor section that record a problem instead of raising."""

    def __init__(self, config: Mapping[str, Any], where: str, kind: str, keys: Iterable[str]) -> None:
        self.config = config
        self.where = where
        self.kind = kind
        self.problems: list[str] = []
        known = {"type", *keys}
        for key in config:
            if key not in known:
                self.problems.append(
                    f"{where}.{key}: unknown key for type {kind} (known: {', '.join(sorted(known))})"
                )

    def _problem(self, key: str, text: str) -> None:
        self.problems.append(f"{self.where}.{key}: {text}")

    def _missing(self, key: str) -> bool:
        return self.config.get(key) is None or self.config.get(key) == ""

    def string(self, key: str, *, required: bool = False, default: str | None = None) -> str | None:
        if self._missing(key):
            if required:
                self._problem(key, f"required for type {self.kind}")
            return default
        value = self.config[key]
        if not isinstance(value, str | int) or isinstance(value, bool):
            self._problem(key, f"must be a string, got {type(value).__name__}")
            return default
        return str(value).strip()

    def name(self, key: str, pattern: re.Pattern[str], what: str, *, required: bool = False) -> str | None:
        """A string matching ``pattern`` (a Kubernetes name, ...)."""
        value = self.string(key, required=required)
        if value is not None and not pattern.match(value):
            self._problem(key, f"must be {what}, got {value!r}")
            return None
        return value

    def url(self, key: str, *, required: bool = True) -> str | None:
        value = self.string(key, required=required)
        if value is None:
            return None
        try:
            parts = urlsplit(value)
            ok = parts.scheme in ("http", "https") and bool(parts.hostname)
            parts.port  # noqa: B018 -- a bad port raises ValueError here
        except ValueError:
            ok = False
        if not ok:
            self._problem(key, f"must be an http(s) URL with a host, got {mask_url(value)!r}")
            return None
        return value.rstrip("/")

    def env_name(self, key: str, *, default: str | None = None) -> str | None:
        """The NAME of an environment variable holding a secret; the value itself is never echoed."""
        if self._missing(key):
            return default
        value = self.config[key]
        if not isinstance(value, str) or not ENV_NAME.match(value.strip()):
            self._problem(
                key,
                "must be the name of an environment variable (letters, digits, _), never the secret itself",
            )
            return default
        return value.strip()

    def number(self, key: str, default: float, *, maximum: float, zero_ok: bool = False) -> float:
        """A number > 0 (>= 0 when ``zero_ok``) and <= ``maximum``."""
        if self._missing(key):
            return default
        value = self.config[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            self._problem(key, f"must be a number, got {value!r}")
            return default
        if value < 0 or (value == 0 and not zero_ok) or value > maximum:
            low = "from 0" if zero_ok else "above 0"
            self._problem(key, f"must be a number {low} to {maximum:g}, got {value!r}")
            return default
        return float(value)

    def integer(self, key: str, default: int, *, minimum: int, maximum: int) -> int:
        if self._missing(key):
            return default
        value = self.config[key]
        if isinstance(value, bool) or not isinstance(value, int) or not minimum <= value <= maximum:
            self._problem(key, f"must be a whole number from {minimum} to {maximum}, got {value!r}")
            return default
        return value

    def choice(self, key: str, options: tuple[str, ...], default: str) -> str:
        if self._missing(key):
            return default
        value = self.config[key]
        if not isinstance(value, str) or value.strip() not in options:
            self._problem(key, f"must be one of {', '.join(options)}, got {value!r}")
            return default
        return value.strip()

    def finish(self) -> None:
        if self.problems:
            raise ExecutorConfigError(self.problems)
