"""The SQLite file: one connection per thread, write and read transactions, the JSON codec.

One file at ``settings.db_path``. WAL mode so readers never block the writer; one connection per
thread; every write runs in ``BEGIN IMMEDIATE`` (the write lock is taken up front, so a transaction
never fails half-way with "database is locked") and taking that lock is retried a bounded number of
times. Opening a file brings its schema up to date (:mod:`console.storage.migrations`).

Faults that pass are :class:`StoreFault` with a one-line message for operators, so callers can wait
them out instead of failing: :class:`StoreBusy` (the database stayed locked by another writer) and
:class:`StoreFull` (the disk is full or failing: SQLITE_FULL, SQLITE_IOERR). The last fault and when
it began stay readable (:meth:`Database.fault`) until a write commits again: the health check and
the pages' banner say so. The WAL is kept small: SQLite checkpoints it every
:data:`WAL_AUTOCHECKPOINT_PAGES` pages so it is reused from its start, ``journal_size_limit``
truncates it when it is reset, and :meth:`Database.checkpoint` (called periodically, and by a commit
that finds it over :data:`WAL_MAX_BYTES`) truncates it outright when no reader holds it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from console.storage import migrations

BUSY_TIMEOUT_MS = 5000
LOCK_RETRIES = 5
WAL_MAX_BYTES = 4 * 1024 * 1024
"""The bound of the WAL: a commit that finds it larger checkpoints it (TRUNCATE) at once."""
WAL_AUTOCHECKPOINT_PAGES = 64
"""SQLite checkpoints (PASSIVE) after a commit leaves this many pages (256 KiB) in the WAL, so the
WAL is reused from its start instead of growing (the default, 1,000 pages, let a burst of writes
fill a small disk before the first checkpoint)."""
WAL_SIZE_LIMIT = 1024 * 1024
"""``journal_size_limit``: a WAL larger than this is truncated to it when it is reset."""
WAL_CHECKPOINT_FLOOR = 256 * 1024
"""Periodic upkeep (:meth:`Database.maintain`) truncates a WAL larger than this."""
WAL_CHECK_EVERY = 16
"""A commit looks at the WAL's size once every this many commits."""

Connection = sqlite3.Connection
"""A connection inside a transaction of :meth:`Database.write` (for the ``*_in`` methods)."""


class StoreFault(RuntimeError):
    """A fault of the store that passes (a lock, a full or failing disk): nothing was written, a
    later attempt may succeed. The message is one line fit for operators."""

    kind = "fault"
    retry_after_s = 5


class StoreBusy(StoreFault):
    """The database stayed locked by another writer."""

    kind = "busy"
    retry_after_s = 2


class StoreFull(StoreFault):
    """The disk is full or failing (SQLITE_FULL, SQLITE_IOERR): writes are refused until it recovers."""

    kind = "disk full"
    retry_after_s = 30


@dataclass(frozen=True)
class FaultState:
    """The store's current fault: what, since when (Unix seconds), the operator's line."""

    kind: str
    since: float
    message: str


BUSY_MESSAGE = "the console database is busy; please try again in a moment"


def classify(exc: BaseException) -> StoreFault | None:
    """The passing fault an sqlite error is, or None (a bug, a constraint: not to be retried)."""
    if isinstance(exc, StoreFault):
        return exc
    if not isinstance(exc, sqlite3.OperationalError | sqlite3.DatabaseError):
        return None
    text = str(exc).lower()
    if "database is locked" in text or "database table is locked" in text or "busy" in text:
        return StoreBusy(BUSY_MESSAGE)
    if "disk is full" in text or "disk i/o error" in text or "no space left" in text:
        return StoreFull(f"the console database cannot write: {' '.join(str(exc).split())} (disk full?)")
    return None


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), default=str)


def loads(text: str | None, default: Any = None) -> Any:
    if text is None or text == "":
        return default
    return json.loads(text)


class Database:
    """Thread-safe access to the console's SQLite file, shared by every repository of the store."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.busy_timeout_ms = busy_timeout_ms
        self._local = threading.local()
        self._all: list[tuple[threading.Thread, sqlite3.Connection]] = []
        self._all_lock = threading.Lock()
        self._fault: FaultState | None = None
        self._commits = 0
        self.schema_version = migrations.migrate(self._connect(), self.write)

    def open_connections(self) -> int:
        with self._all_lock:
            return len(self._all)

    def _connect(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            busy_ms = BUSY_TIMEOUT_MS if self.busy_timeout_ms is None else self.busy_timeout_ms
            conn = sqlite3.connect(
                self.path, timeout=busy_ms / 1000, isolation_level=None, check_same_thread=False
            )
            conn.row_factory = sqlite3.Row
            conn.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute(f"PRAGMA wal_autocheckpoint={WAL_AUTOCHECKPOINT_PAGES}")
            conn.execute(f"PRAGMA journal_size_limit={WAL_SIZE_LIMIT}")
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
        """A write transaction: BEGIN IMMEDIATE (retried while locked), COMMIT, or ROLLBACK on error.
        A lock that stays, or a disk that refuses the write, is a :class:`StoreFault`."""
        conn = self._connect()
        for attempt in range(LOCK_RETRIES):
            try:
                conn.execute("BEGIN IMMEDIATE")
                break
            except sqlite3.OperationalError as exc:
                fault = classify(exc)
                if fault is None:
                    raise
                if not isinstance(fault, StoreBusy) or attempt == LOCK_RETRIES - 1:
                    raise self._faulted(fault) from None
                time.sleep(0.05 * (2**attempt))
        try:
            yield conn
        except BaseException as exc:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            fault = classify(exc) if isinstance(exc, sqlite3.Error) else None
            if fault is not None:
                raise self._faulted(fault) from None
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            with suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            fault = classify(exc)
            if fault is None:
                raise
            raise self._faulted(fault) from None
        self._fault = None
        self._commits += 1
        if self._commits % WAL_CHECK_EVERY == 0 and self.wal_bytes() > WAL_MAX_BYTES:
            self.checkpoint()

    def _faulted(self, fault: StoreFault) -> StoreFault:
        """Remember the fault (kept until a write commits again) and return it to raise. After a
        full or failing disk this thread's connection is dropped: SQLite may keep such a connection
        in its error state, failing every later write even once the disk has room again."""
        if isinstance(fault, StoreFull):
            self._drop_connection()
        current = self._fault
        since = current.since if current is not None and current.kind == fault.kind else time.time()
        self._fault = FaultState(fault.kind, since, str(fault))
        return fault

    def _drop_connection(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            return
        self._local.conn = None
        with self._all_lock:
            self._all = [(thread, other) for thread, other in self._all if other is not conn]
        with suppress(sqlite3.Error):
            conn.close()

    def fault(self) -> FaultState | None:
        """The fault the last write met, while no write has committed since (None when healthy)."""
        return self._fault

    def wal_bytes(self) -> int:
        """The size of the write-ahead log (0 when there is none)."""
        try:
            return (self.path.parent / (self.path.name + "-wal")).stat().st_size
        except OSError:
            return 0

    def data_bytes(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def maintain(self) -> None:
        """Periodic upkeep: truncate the WAL once it holds more than a little (a busy reader may
        keep it from completing: the next call tries again)."""
        if self.wal_bytes() > WAL_CHECKPOINT_FLOOR:
            self.checkpoint()

    def checkpoint(self) -> bool:
        """Copy the WAL into the file and truncate it (``wal_checkpoint(TRUNCATE)``); False when a
        reader kept it from completing or the store refused (it is tried again later)."""
        try:
            row = self._connect().execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error:
            return False
        return row is not None and int(row[0]) == 0

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
