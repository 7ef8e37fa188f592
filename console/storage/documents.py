"""Large JSON documents stored once, compressed, and referenced.

A deployment's snapshot (tens of KB of metric points and log lines) and a decision (a few KB of
evidence) used to be copied into several task outputs, the approval row and the outcome record:
about 33 KB per execution besides the snapshot itself. Here each document is kept once, keyed by
the hash of its canonical JSON (identical documents share one row: the rules decision that the
``summarize`` step passes on unchanged, the decision an approval and an outcome record carry),
zlib-compressed, and the places that held a copy hold a reference ``{"$doc": "<key>"}`` instead.

:func:`console.storage.codec.pack` replaces the large documents under ``DOCUMENT_KEYS``
by references as a value is written; :meth:`Documents.unpack` puts them back as it is read, so
callers always see whole documents. Decoded documents are kept in a small per-process cache: they
never change.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

from console.storage.codec import decode, is_ref
from console.storage.database import Connection, Database

CACHE_SIZE = 256


class DocumentMissing(LookupError):
    """A reference points at no document (the file was edited by hand or truncated)."""


class Documents:
    """Reads of the documents table, with a small cache of decoded documents."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._cache: OrderedDict[str, Any] = OrderedDict()
        self._cache_lock = threading.Lock()

    def get(self, key: str, conn: Connection | None = None) -> Any:
        cache = self._cache
        with self._cache_lock:
            if key in cache:
                cache.move_to_end(key)
                return _copy(cache[key])
        row = (
            (conn or self.db.conn)
            .execute("SELECT dictionary, body FROM documents WHERE key = ?", (key,))
            .fetchone()
        )
        if row is None:
            raise DocumentMissing(f"stored document {key} is missing")
        value = decode(row["body"], row["dictionary"])
        with self._cache_lock:
            cache[key] = value
            while len(cache) > CACHE_SIZE:
                cache.popitem(last=False)
        return _copy(value)

    def unpack(self, value: Any, conn: Connection | None = None) -> Any:
        """``value`` with every reference replaced by its document (recursively)."""
        if isinstance(value, list):
            return [self.unpack(item, conn) for item in value]
        if not isinstance(value, dict):
            return value
        if is_ref(value):
            return self.unpack(self.get(value["$doc"], conn), conn)
        return {key: self.unpack(item, conn) for key, item in value.items()}

    def stored_bytes(self, kind: str | None = None) -> tuple[int, int]:
        """(count, compressed bytes) of the stored documents, of one kind or all."""
        sql = "SELECT COUNT(*), COALESCE(SUM(LENGTH(body)), 0) FROM documents"
        args: tuple[Any, ...] = ()
        if kind is not None:
            sql += " WHERE kind = ?"
            args = (kind,)
        count, size = self.db.conn.execute(sql, args).fetchone()
        return int(count), int(size)


def _copy(value: Any) -> Any:
    """A private copy (callers may change what they get)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value
