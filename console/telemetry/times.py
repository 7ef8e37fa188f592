"""Time values the sources accept and the one format they emit (RFC 3339 UTC with a trailing Z)."""

from __future__ import annotations

from datetime import UTC, datetime

Instant = datetime | float | int | str
"""A moment: an aware datetime (naive = UTC), Unix seconds, or an RFC 3339 / ISO-8601 text."""


def to_epoch(value: Instant) -> float:
    if isinstance(value, bool):
        raise TypeError("a boolean is not a time")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        value = parse_rfc3339(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.timestamp()


def parse_rfc3339(text: str) -> datetime:
    """ISO-8601 / RFC 3339 (``Z`` or an offset; naive = UTC). Raises ValueError."""
    parsed = datetime.fromisoformat(text.strip())
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def format_ts(epoch: float) -> str:
    """``2026-11-29T17:00:00Z``, or with milliseconds when the moment has them."""
    moment = datetime.fromtimestamp(round(epoch, 3), UTC)
    if moment.microsecond:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
