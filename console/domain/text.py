"""Text as it leaves the console: no bidi or zero-width controls, and, for a line, one line.

A right-to-left override (U+202E) in a comment makes ``approve`` read as ``evorppa`` in a
notification; a zero-width space makes two names that look the same differ. Nothing a person typed
or a log carried may reorder or hide text wherever the console writes it out (notifications,
postmortems, exports, API answers, one-line errors): :func:`strip_invisible` drops those controls,
and :func:`one_line` (which every one-line message of the console goes through) drops them too.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

BIDI_CONTROLS = "\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c"
"""Embeddings, overrides and isolates, the left-to-right, right-to-left and Arabic letter marks."""
ZERO_WIDTH = "\u200b-\u200d\u2060-\u2064\u180e\ufeff"
"""Zero-width space, (non-)joiners, word joiner, invisible operators, Mongolian vowel separator,
byte order mark."""
_INVISIBLE = re.compile(f"[{BIDI_CONTROLS}{ZERO_WIDTH}]")
DEFAULT_LIMIT = 300


def strip_invisible(text: str) -> str:
    """``text`` without bidi and zero-width controls (line breaks and everything else kept)."""
    return _INVISIBLE.sub("", text)


def one_line(text: object, limit: int = DEFAULT_LIMIT) -> str:
    """``text`` on one line: bidi and zero-width controls dropped, other control characters and
    line breaks turned into spaces, whitespace runs collapsed, cut to ``limit`` characters with an
    ellipsis. An exception with no message gives its type's name."""
    raw = str(text)
    if not raw.strip() and isinstance(text, BaseException):
        raw = type(text).__name__
    visible = strip_invisible(raw)
    flat = " ".join("".join(c if c.isprintable() else " " for c in visible).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def kind_of(value: Any, *, json: bool = False) -> str:
    """What a decoded value is, in words, for a message that must not repeat the value itself:
    YAML's words (``a mapping``, ``a list``, ``nothing``), or with ``json`` JSON's (``an object``,
    ``an array``, ``null``)."""
    if value is None:
        return "null" if json else "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string" if value.strip() else "an empty string"
    if isinstance(value, Mapping):
        return "an object" if json else "a mapping"
    if isinstance(value, list | tuple):
        return "an array" if json else "a list"
    return type(value).__name__


__all__ = ["BIDI_CONTROLS", "ZERO_WIDTH", "kind_of", "one_line", "strip_invisible"]
