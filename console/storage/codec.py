"""How large JSON documents are stored: canonical JSON, keyed by its hash, zlib-compressed, and
referenced as ``{"$doc": "<key>"}`` (see :mod:`console.storage.documents`). Depends on nothing
else in the package, so the migrations can use it too.

Decisions and outcome records are a few KB of JSON whose words are always the same (the
analyzer's keys, its sentences, the actions' names): compressed with a zlib preset dictionary of
such documents they take about a third of what plain zlib needs (1.2 KB -> 0.45 KB for a
decision). Each document records which dictionary it used (0 = none); a dictionary in
``dictionaries/`` is frozen once committed (``scripts/build_document_dictionary.py`` makes the
next one, which gets the next number and becomes :data:`DICTIONARY`)."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import zlib
from functools import cache
from pathlib import Path
from typing import Any

REF = "$doc"
DOCUMENT_KEYS = frozenset({"decision", "snapshot", "measured", "outcome", "plan", "executed"})
"""Keys whose values (objects, or lists such as the actions a run executed) are stored as
documents when they are large."""
MIN_DOCUMENT_BYTES = 256
"""Smaller objects stay inline: a reference and a row would cost more than they save."""
DICTIONARIES = Path(__file__).parent / "dictionaries"
DICTIONARY = 1
"""The preset dictionary new documents are compressed with."""


@cache
def dictionary(version: int) -> bytes:
    return (DICTIONARIES / f"documents-{version}.zdict").read_bytes()


def compress(body: bytes, version: int | None = None) -> tuple[int, bytes]:
    """(dictionary version, compressed bytes); ``version`` 0 compresses without a dictionary."""
    version = DICTIONARY if version is None else version
    if not version:
        return 0, zlib.compress(body, 6)
    packer = zlib.compressobj(6, zdict=dictionary(version))
    return version, packer.compress(body) + packer.flush()


def decode(body: bytes, version: int = 0) -> Any:
    if not version:
        return json.loads(zlib.decompress(body))
    unpacker = zlib.decompressobj(zdict=dictionary(version))
    return json.loads(unpacker.decompress(body) + unpacker.flush())


def canonical(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str).encode()


def document_key(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:32]


def is_ref(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(REF), str)


def put_document_in(conn: sqlite3.Connection, kind: str, value: Any) -> str:
    """Store ``value`` once (idempotent) and return its key."""
    body = canonical(value)
    key = document_key(body)
    if conn.execute("SELECT 1 FROM documents WHERE key = ?", (key,)).fetchone() is None:
        version, packed = compress(body)
        conn.execute(
            "INSERT INTO documents (key, kind, size, dictionary, body) VALUES (?, ?, ?, ?, ?)",
            (key, kind, len(body), version, packed),
        )
    return key


def put_large_in(conn: sqlite3.Connection, kind: str, value: Any) -> Any:
    """``value`` itself when small, else a reference to it stored as a document of ``kind``."""
    if isinstance(value, dict | list) and not is_ref(value):
        body = canonical(value)
        if len(body) >= MIN_DOCUMENT_BYTES:
            return {REF: put_document_in(conn, kind, value)}
    return value


def pack(conn: sqlite3.Connection, value: Any) -> Any:
    """``value`` with every large object under a :data:`DOCUMENT_KEYS` key, at any depth, stored
    as a document and replaced by its reference."""
    if isinstance(value, list):
        return [pack(conn, item) for item in value]
    if not isinstance(value, dict) or is_ref(value):
        return value
    out: dict[str, Any] = {}
    for key, item in value.items():
        item = pack(conn, item)
        out[key] = put_large_in(conn, key, item) if key in DOCUMENT_KEYS else item
    return out
