"""The SQLite file: one connection per thread, write and read transactions, the JSON codec.

One file at ``settings.db_path``. WAL mode so readers never block the writer; one connection per
thread; every write runs in ``BEGIN IMMEDIATE`` (the write lock is taken up front, so a transaction
never fails half-way with "database is locked") and taking that lock is retried a bounded number of
times. If the database stays locked, :class:`StoreBusy` carries a one-line message for operators.
Opening a file brings its schema up to date (:mod:`console.storage.migrations`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from console.domain.models import format_time
from console.storage import migrations

BUSY_TIMEOUT_MS = 5000
LOCK_RETRIES = 5

Connection = sqlite3.Connection
"""A connection inside a transaction of :meth:`Database.write` (for the ``*_in`` methods)."""


class StoreBusy(RuntimeError):
    """The database stayed locked by another writer; the message is fit for operators."""


def now_text() -> str:
    return format_time(datetime.now(UTC))


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def loads(text: str | None, default: Any = None) -> Any:
    if text is None or text == "":
        return default
    return json.loads(text)


class Database:
    """Thread-safe access to the console's SQLite file (the base of every part of the store)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._all_lock = threading.Lock()
        self.schema_version = migrations.migrate(self._connect(), self.write)

    def open_connections(self) -> int:
        with self._all_lock:
            return len(self._all)

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(
                self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
            )
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            self._local.conn = conn
            with self._all_lock:
                # threads come and go (Streamlit runs each script run in a fresh thread): close the
                # connections of threads that have ended so they do not pile up
                alive = []
                for thread, other in self._all:
                    if thread.is_alive():
                        alive.append((thread, other))
                    else:
                        with suppress(sqlite3.Error):
                            other.close()
                alive.append((threading.current_thread(), conn))
                self._all = alive
        return conn

    @property
    def conn(self) -> sqlite3.Connection:
        """This thread's connection, in autocommit mode (each read is its own snapshot)."""
        return self._connect()

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction: BEGIN IMMEDIATE (retried while locked), COMMIT, or ROLLBACK on error."""
        conn = self._connect()
        for attempt in range(LOCK_RETRIES):
            try:
                conn.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) and "busy" not in str(exc):
                    raise
                if attempt == LOCK_RETRIES - 1:
                    raise StoreBusy("the console database is busy; please try again in a moment") from None
                time.sleep(0.05 * (2**attempt))
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        else:
            conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A consistent read snapshot over several statements."""
        conn = self._connect()
        if conn.in_transaction:  # already inside this thread's write: it is consistent already
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def ping(self) -> None:
        """Raise if the file cannot be read (the API's health check)."""
        self.conn.execute("SELECT 1").fetchone()

    def close(self) -> None:
        with self._all_lock:
            for _, conn in self._all:
                with suppress(sqlite3.Error):
                    conn.close()
            self._all.clear()
        self._local = threading.local()
