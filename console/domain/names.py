"""People's names as the console stores and compares them.

One canonical form for every name that decides or requests something, whatever typed it (the
pages, the command line, the HTTP API, a Kestra input): Unicode NFKC (so a full-width ``ｂｏｂ`` is
``bob``), trimmed, inner whitespace collapsed to one space. Names compare case-insensitively and
after confusable folding (:func:`same_person`: Unicode TR39 skeletons, from the
``confusable-homoglyphs`` package's copy of Unicode's ``confusables.txt``), so ``Bob``, ``bob ``
and a Cyrillic ``bоb`` are one person.

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
from functools import lru_cache

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
    at most :data:`MAX_NAME` characters; one script (or Latin with Han and Japanese kana, Bopomofo
    or Hangul, as TR39's "highly restrictive" level allows: a Cyrillic ``о`` inside a Latin name
    is refused); never ``system:...`` unless ``allow_system`` (the console acting itself)."""
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
    mixed = mixed_scripts(text)
    if mixed:
        raise InvalidName(f"a name cannot mix scripts ({mixed}): write it in one script")
    return text


_NEUTRAL_SCRIPTS = frozenset({"COMMON", "INHERITED"})
_SCRIPT_SETS = (
    frozenset({"LATIN", "HAN", "HIRAGANA", "KATAKANA"}),
    frozenset({"LATIN", "HAN", "BOPOMOFO"}),
    frozenset({"LATIN", "HAN", "HANGUL"}),
)
"""Script combinations a single name may use (UTS #39's "highly restrictive" level)."""


def mixed_scripts(text: str) -> str:
    """The scripts ``text`` mixes, in words (``Latin and Cyrillic``), or "" when it keeps to one
    script (digits, spaces and punctuation belong to none) or to an allowed combination."""
    from confusable_homoglyphs.categories import unique_aliases

    scripts = set(unique_aliases(text)) - _NEUTRAL_SCRIPTS
    if len(scripts) <= 1 or any(scripts <= allowed for allowed in _SCRIPT_SETS):
        return ""
    words = sorted(s.replace("_", " ").title() for s in scripts)
    return ", ".join(words[:-1]) + " and " + words[-1]


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


_MARKS = "\u200e\u200f"
"""The data wraps right-to-left characters in direction marks; they are not part of a glyph."""


@lru_cache(maxsize=1)
def _prototypes() -> dict[str, str]:
    """Each confusable character -> its prototype (UTS #39 ``confusables.txt``), read from the
    ``confusable-homoglyphs`` package, which keeps each source-prototype pair in both directions.
    A prototype is never a source, so every group is a star: the prototype is the string with
    several neighbours, or the multi-character one; in a group of two single characters either
    stands for both (the same one for both, which is all a comparison needs)."""
    from confusable_homoglyphs.confusables import confusables_data

    graph: dict[str, set[str]] = {}
    for key, entries in confusables_data.items():
        node = key.strip(_MARKS)
        for entry in entries:
            other = str(entry.get("c", "")).strip(_MARKS)
            if node and other and other != node:
                graph.setdefault(node, set()).add(other)
    mapping: dict[str, str] = {}
    for node, neighbours in graph.items():
        if len(node) != 1 or len(neighbours) != 1:
            continue  # a multi-character string or a hub: a prototype
        (other,) = neighbours
        if len(other) > 1 or len(graph.get(other, ())) > 1 or other < node:
            mapping[node] = other
    return mapping


@lru_cache(maxsize=8192)
def skeleton(text: str) -> str:
    """The UTS #39 skeleton of ``text``: NFD, each character replaced by its prototype, NFD
    again. Two strings that look alike (``bоb`` with a Cyrillic ``о``, ``paypal`` with a Greek
    ``α``...) have the same skeleton."""
    prototypes = _prototypes()
    out = []
    for ch in unicodedata.normalize("NFD", text):
        target = prototypes.get(ch, ch)
        if target != ch:  # a multi-character prototype's own characters, as the same map has them
            target = "".join(prototypes.get(c, c) for c in target)
        out.append(target)
    return unicodedata.normalize("NFD", "".join(out))


def name_key(name: str) -> str:
    """What names are compared by: the canonical form, case-folded (NFKC again after folding, as
    Unicode's caseless matching does), then reduced to its confusable skeleton."""
    folded = unicodedata.normalize("NFKC", requester_name(name, fallback="").casefold())
    return skeleton(folded).casefold() if folded else ""


def _keys(name: str) -> set[str]:
    """:func:`name_key`, and the skeleton of the name as written (case kept: a capital ``I`` looks
    like an ``l``, a small ``i`` does not), case-folded."""
    primary = name_key(name)
    if not primary:
        return set()
    return {primary, skeleton(requester_name(name, fallback="")).casefold()}


def same_person(a: str, b: str) -> bool:
    """Whether two stored names are the same person: equal in canonical form ignoring case, or
    looking alike (TR39 confusables: ``bоb`` with a Cyrillic ``о`` is ``bob``). Never true for
    an empty name."""
    return bool(_keys(a) & _keys(b))


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
