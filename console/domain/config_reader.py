"""Reading typed values out of a decoded configuration file (the services file: each service's
telemetry sources and its executor section), one problem per line naming the key's path.

A :class:`ConfigReader` collects every problem of a document instead of stopping at the first; the
caller raises its own error listing them (``console.telemetry.errors.ConfigError`` for the services
file, ``console.executors.base.ExecutorConfigError`` for an executor section). A value is never
echoed where it may be a secret: a URL is shown through :func:`~console.domain.redaction.mask_url`,
an environment variable's "name" that is not one is not shown at all. :func:`load_yaml` decodes a
YAML document (the services file, flows, profiles) the one way the console does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from console.domain.redaction import mask_url
from console.domain.text import kind_of

ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
SECRET_KEYS = ("token", "password", "bearer_token", "api_key", "secret")
"""Keys that would hold a secret itself: refused, the file names environment variables instead."""
URL_EXAMPLE = "http://host:port or https://..."


def load_yaml(text: str) -> Any:
    """What ``yaml.safe_load`` gives, through libyaml when PyYAML has it (the flows parse about nine
    times faster: they are linted on every check); the same documents, the same ``yaml.YAMLError``
    with its line when the text is not YAML."""
    if yaml.__with_libyaml__:
        return yaml.load(text, Loader=yaml.CSafeLoader)
    return yaml.safe_load(text)


class ConfigReader:
    """Collects problems while reading typed values out of a decoded document. Each read takes the
    section (a mapping), the key and the section's path (``services.shop-api.prometheus``); a
    problem is recorded as ``<path>.<key>: <what is wrong>`` and the read returns its default."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self.kinds: dict[str, str] = {}
        """The type of each typed section (its path -> ``kubectl``), named when a key is missing."""

    def problem(self, where: str, text: str) -> None:
        self.problems.append(f"{where}: {text}")

    def missing(self, where: str, key: str, options: tuple[str, ...] = ()) -> None:
        kind = self.kinds.get(where)
        why = f"one of {', '.join(options)}" if options else f"required for type {kind}" if kind else ""
        self.problem(f"{where}.{key}", f"missing ({why})" if why else "missing")

    def mapping(self, value: Any, where: str) -> Mapping[str, Any] | None:
        if not isinstance(value, Mapping):
            self.problem(where, f"must be a mapping, got {kind_of(value)}")
            return None
        return value

    def keys(
        self, section: Mapping[str, Any], where: str, allowed: tuple[str, ...], *, kind: str | None = None
    ) -> None:
        """A problem for each key not in ``allowed`` (``kind``: the section's type, named in this
        message and when one of its keys is missing), and for each key that would hold a secret."""
        if kind:
            self.kinds[where] = kind
        for key in section:
            if key in SECRET_KEYS:
                self.problem(
                    f"{where}.{key}",
                    "secrets are never written in this file: put it in an environment variable "
                    "and give that variable's name (token_env / password_env)",
                )
            elif key not in allowed:
                of = f" for type {kind}" if kind else ""
                self.problem(f"{where}.{key}", f"unknown key{of} (allowed: {', '.join(allowed)})")

    def string(
        self,
        section: Mapping[str, Any],
        key: str,
        where: str,
        *,
        required: bool = False,
        default: str | None = None,
    ) -> str | None:
        """A non-empty string, stripped; absent (or null) is ``default``, or "missing" if required."""
        value = section.get(key)
        if value is None:
            if required:
                self.missing(where, key)
            return default
        if not isinstance(value, str) or not value.strip():
            self.problem(f"{where}.{key}", f"must be a non-empty string, got {kind_of(value)}")
            return default
        return value.strip()

    def name(
        self,
        section: Mapping[str, Any],
        key: str,
        where: str,
        pattern: re.Pattern[str],
        what: str,
        *,
        required: bool = False,
    ) -> str | None:
        """A string matching ``pattern``; ``what`` says what it must be (``a Kubernetes namespace name``)."""
        value = self.string(section, key, where, required=required)
        if value is not None and not pattern.match(value):
            self.problem(f"{where}.{key}", f"must be {what}, got {value!r}")
            return None
        return value

    def choice(
        self,
        section: Mapping[str, Any],
        key: str,
        where: str,
        options: tuple[str, ...],
        default: str | None,
        *,
        required: bool = False,
    ) -> str | None:
        value = section.get(key)
        if value is None or value == "":
            if required:
                self.missing(where, key, options)
            return default
        if not isinstance(value, str) or value.strip() not in options:
            self.problem(f"{where}.{key}", f"must be one of {', '.join(options)}, got {value!r}")
            return default
        return value.strip()

    def url(self, section: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str | None:
        """An http(s) URL with a host and no credentials (the file names the environment variables
        that hold them); the trailing ``/`` dropped."""
        value = self.string(section, key, where, required=required)
        if value is None:
            return None
        at = f"{where}.{key}"
        try:
            parts = urlsplit(value)
            parts.port  # noqa: B018 - raises ValueError for a malformed port
        except ValueError:
            self.problem(at, f"not a valid URL (expected {URL_EXAMPLE})")
            return None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            self.problem(at, f"must be an http(s) URL with a host ({URL_EXAMPLE}), got {mask_url(value)!r}")
            return None
        if parts.username or parts.password:
            self.problem(
                at,
                "credentials in the URL are not allowed: put the secret in an environment variable "
                "and give that variable's name (token_env / password_env)",
            )
            return None
        return value.rstrip("/")

    def env_name(
        self, section: Mapping[str, Any], key: str, where: str, *, default: str | None = None
    ) -> str | None:
        """The NAME of an environment variable holding a secret; a value that is not one is never
        echoed (someone may have pasted the secret itself)."""
        value = section.get(key)
        if value is None or value == "":
            return default
        if not isinstance(value, str) or not ENV_NAME.match(value.strip()):
            self.problem(
                f"{where}.{key}",
                "must be the name of an environment variable (letters, digits, _), never the secret itself",
            )
            return default
        return value.strip()

    def number(
        self,
        section: Mapping[str, Any],
        key: str,
        where: str,
        default: float,
        *,
        integer: bool = False,
        zero_ok: bool = False,
        maximum: float | None = None,
    ) -> float:
        """A number above 0 (from 0 when ``zero_ok``), at most ``maximum`` when given; a whole
        number when ``integer``. Absent (or null) is ``default``."""
        value = section.get(key)
        if value is None:
            return default
        ok_type = isinstance(value, int) if integer else isinstance(value, int | float)
        if (
            isinstance(value, bool)
            or not ok_type
            or value != value  # NaN
            or not (value >= 0 if zero_ok else value > 0)
            or (maximum is not None and value > maximum)
        ):
            self.problem(
                f"{where}.{key}", f"must be {_number_range(integer, zero_ok, maximum)}, got {value!r}"
            )
            return default
        return value

    def path(
        self, section: Mapping[str, Any], key: str, where: str, base: Path, *, required: bool
    ) -> Path | None:
        """A file's path; a relative one is relative to ``base`` (the file's own directory)."""
        value = self.string(section, key, where, required=required)
        if value is None:
            return None
        path = Path(value).expanduser()
        return path if path.is_absolute() else base / path


def _number_range(integer: bool, zero_ok: bool, maximum: float | None) -> str:
    noun = "whole number" if integer else "number"
    if maximum is None:
        return f"a {noun} from 0" if zero_ok else f"a positive {noun}"
    if zero_ok or integer:
        return f"a {noun} from {0 if zero_ok else 1} to {maximum:g}"
    return f"a number above 0, at most {maximum:g}"


__all__ = ["ENV_NAME", "SECRET_KEYS", "ConfigReader"]
