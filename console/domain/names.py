"""People's names as the console stores and compares them.

One canonical form for every name that decides or requests something, whatever typed it (the
pages, the command line, the HTTP API, a Kestra input): Unicode NFKC (so a full-width ``ｂｏｂ`` is
``bob``), trimmed, inner whitespace collapsed to one space. Names compare case-insensitively
(:func:`name_key`), so ``Bob`` and ``bob `` are one person.

:func:`canonical_name` is strict (a person about to act: it refuses control and invisible
characters, empty and over-long names and the reserved ``system:`` prefix);
:func:`requester_name` never refuses (a request must be stored whatever its source typed) but
stores the same canonical form, so the no-self-review rule compares like with like.

The access layer (:func:`console.access.auth.validate_name`) is the entry point for identities; the
rules live here, below storage, because the store normalises ``requested_by`` itself.
"""

from __future__ import annotations

import re
import unicodedata

MAX_NAME = 64
"""Longest name a person may act under."""
MAX_REQUESTER = 200
"""Longest requester stored (longer ones are cut: nobody can act under such a name anyway)."""
SYSTEM_PREFIX = "system:"
"""Names the console itself uses (``system:timeout``); nobody else may act under them."""

# control, format (zero-width, bidi overrides), surrogate, private-use, unassigned, line/paragraph
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_ALLOWED_PUNCTUATION = frozenset(" ._@+-'")


class InvalidName(ValueError):
    """The name cannot be used; the message says why, in one line."""


def _forbidden(ch: str) -> bool:
    return unicodedata.category(ch) in _FORBIDDEN_CATEGORIES


def _collapse(text: str) -> str:
    return " ".join(text.split())


def canonical_name(raw: object, *, allow_system: bool = False) -> str:
    """The canonical form of a person's name, or :class:`InvalidName` saying what is wrong.

    Letters and digits of any script, spaces and ``. _ @ + - '``; starting with a letter or digit;
    at most :data:`MAX_NAME` characters; never ``system:...`` unless ``allow_system`` (the console
    acting itself)."""
    if not isinstance(raw, str):
        raise InvalidName("a name must be text")
    text = unicodedata.normalize("NFKC", raw).strip()
    if any(_forbidden(ch) for ch in text):
        raise InvalidName("a name cannot contain control or invisible characters")
    text = _collapse(text)
    if not text:
        raise InvalidName("a name cannot be empty")
    if len(text) > MAX_NAME:
        raise InvalidName(f"a name is at most {MAX_NAME} characters (this one has {len(text)})")
    if is_system_name(text) and not allow_system:
        raise InvalidName(f"names starting with {SYSTEM_PREFIX!r} are reserved for the console itself")
    if allow_system and is_system_name(text):
        return text
    if not text[0].isalnum() or any(not (ch.isalnum() or ch in _ALLOWED_PUNCTUATION) for ch in text):
        raise InvalidName(
            f"a name is 1-{MAX_NAME} letters, digits, spaces or . _ @ + - ' and starts with a letter or digit"
        )
    return text


def is_system_name(name: str) -> bool:
    """``system:...`` in any case and spacing (``System : timeout`` too)."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", name)).casefold().startswith(SYSTEM_PREFIX)


def requester_name(raw: object, *, fallback: str = "unknown") -> str:
    """The canonical form of who requested something, never refusing: invisible characters are
    dropped, other control characters become spaces, the result is cut at
    :data:`MAX_REQUESTER`; ``fallback`` when nothing is left."""
    text = unicodedata.normalize("NFKC", "" if raw is None else str(raw))
    kept = []
    for ch in text:
        if ch.isspace():
            kept.append(" ")
        elif not _forbidden(ch):
            kept.append(ch)
        elif unicodedata.category(ch) == "Cc":
            kept.append(" ")
    cleaned = _collapse("".join(kept))[:MAX_REQUESTER].strip()
    return cleaned or fallback


def name_key(name: str) -> str:
    """What two names are compared by: the canonical form, case-folded (NFKC again after folding,
    as Unicode's caseless matching does)."""
    return unicodedata.normalize("NFKC", requester_name(name, fallback="").casefold())


def same_person(a: str, b: str) -> bool:
    """Whether two stored names are the same person (never true for an empty name)."""
    key = name_key(a)
    return bool(key) and key == name_key(b)


class RequesterSource:
    """Where an approval's ``requested_by`` came from (stored in ``approvals.requested_by_source``;
    the Approvals page says it in words). "(unverified)" marks a name typed by whoever launched."""

    CONSOLE_SIGN_IN = "console sign-in"
    CONSOLE_DEMO = "console demo identity (unverified)"
    KESTRA_INPUT = "kestra input (unverified)"
    CLI = "cli --as (unverified)"
    SCENARIO = "scenario file"
    LAUNCHER = "launcher (unverified)"
    LABEL = "requested_by_source"
    """The launch label a console-side launcher sets to say which of these it is (embedded engine)."""
