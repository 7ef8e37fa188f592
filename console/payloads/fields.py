"""Typed reads out of decoded JSON, each failure a :class:`PayloadError` naming the field's path."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from console.domain.models import format_time
from console.domain.text import kind_of
from console.payloads.errors import PayloadError

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2})$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_TEXT = 200
"""Longest name-like value (service, version, environment, person) the console stores."""
MAX_LABEL_VALUE = 4096
MAX_LABELS = 256


def single_line(value: str) -> bool:
    """No control characters or line breaks."""
    return not _CONTROL.search(value)


def path(where: str, key: str | int) -> str:
    if isinstance(key, int):
        return f"{where}[{key}]"
    return f"{where}.{key}" if where else key


def mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PayloadError(where or "(body)", f"must be a JSON object, got {kind_of(value, json=True)}")
    return value


def text(
    doc: Mapping[str, Any],
    key: str,
    where: str = "",
    *,
    required: bool = True,
    max_len: int = MAX_TEXT,
    allow_empty: bool = False,
    single_line: bool = True,
) -> str | None:
    """A string field, stripped. Missing or null is None unless ``required``."""
    at = path(where, key)
    value = doc.get(key)
    if value is None:
        if required:
            raise PayloadError(at, "missing")
        return None
    if not isinstance(value, str):
        raise PayloadError(at, f"must be a string, got {kind_of(value, json=True)}")
    value = value.strip()
    if not value and not allow_empty:
        if required:
            raise PayloadError(at, "must not be empty")
        return None
    if len(value) > max_len:
        raise PayloadError(at, f"too long ({len(value)} characters; at most {max_len})")
    if single_line and _CONTROL.search(value):
        raise PayloadError(at, "must not contain control characters or line breaks")
    return value


def labels(doc: Mapping[str, Any], key: str, where: str = "", *, required: bool = False) -> dict[str, str]:
    """An object of string values (Prometheus labels, annotations); missing is ``{}``."""
    at = path(where, key)
    value = doc.get(key)
    if value is None:
        if required:
            raise PayloadError(at, "missing")
        return {}
    if not isinstance(value, Mapping):
        raise PayloadError(at, f"must be an object of strings, got {kind_of(value, json=True)}")
    if len(value) > MAX_LABELS:
        raise PayloadError(at, f"too many entries ({len(value)}; at most {MAX_LABELS})")
    out: dict[str, str] = {}
    for name, item in value.items():
        if not isinstance(item, str):
            raise PayloadError(path(at, str(name)), f"must be a string, got {kind_of(item, json=True)}")
        if len(item) > MAX_LABEL_VALUE:
            raise PayloadError(path(at, str(name)), f"too long (at most {MAX_LABEL_VALUE} characters)")
        out[str(name)] = item
    return out


def timestamp(doc: Mapping[str, Any], key: str, where: str = "", *, required: bool = True) -> datetime | None:
    """An RFC 3339 time (``Z`` or an offset; up to nanoseconds, kept to microseconds), in UTC."""
    at = path(where, key)
    value = text(doc, key, where, required=required, max_len=64)
    if value is None:
        return None
    if not RFC3339.match(value):
        raise PayloadError(at, "not an RFC 3339 time (e.g. 2026-11-29T17:00:00Z)")
    try:
        return datetime.fromisoformat(value.upper()).astimezone(UTC)
    except (ValueError, OverflowError):
        raise PayloadError(at, "not a valid date and time") from None


MAX_FUTURE = timedelta(minutes=5)
"""A time this far ahead of the console's clock is refused (clock skew allowed)."""
MAX_PAST = timedelta(days=400)
"""A time further back than this is refused: no deployment or alert the loop could judge is that
old, and the loop's windows are built around it (Go's zero time, year 1, broke them)."""


def sane_time(moment: datetime, at: str, now: datetime, *, future: timedelta = MAX_FUTURE) -> None:
    """:class:`PayloadError` naming ``at`` unless ``moment`` lies within
    ``[now - MAX_PAST, now + future]``."""
    if moment > now + future:
        raise PayloadError(at, "is in the future")
    if moment < now - MAX_PAST:
        raise PayloadError(at, f"is more than {MAX_PAST.days} days before now ({format_time(now)})")


def one_of(doc: Mapping[str, Any], key: str, allowed: tuple[str, ...], where: str = "") -> str:
    value = text(doc, key, where, max_len=64)
    assert value is not None
    if value not in allowed:
        raise PayloadError(path(where, key), f"must be one of {', '.join(allowed)}")
    return value
