"""Whether the console's store is degraded, and what the pages' banner and the health check say.

Pure functions over what the store and the engine report (:class:`StoreCondition`): a fault of the
last write (locked, disk full) while no write has committed since, a disk nearly full, a WAL larger
than its bound, runs of the embedded engine waiting out a store fault. ``GET /api/health`` reports
``degraded`` with :func:`store_problem`'s line; every page shows :func:`degraded_banner`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

LOW_DISK_FRACTION = 0.05
LOW_DISK_BYTES = 16 * 1024 * 1024
"""The disk is nearly full below 5 % of its size or 16 MiB free, whichever is smaller."""


@dataclass(frozen=True)
class StoreCondition:
    fault_kind: str | None = None
    fault_since: float | None = None
    """Unix seconds."""
    fault_message: str = ""
    free_bytes: int | None = None
    total_bytes: int | None = None
    wal_bytes: int = 0
    wal_bound_bytes: int = 0
    retrying_runs: int = 0


def _mib(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MiB" if size >= 1024 * 1024 else f"{size / 1024:.0f} KiB"


def _clock(unix: float) -> str:
    return datetime.fromtimestamp(unix, UTC).strftime("%H:%M:%S UTC")


def store_problem(condition: StoreCondition) -> str | None:
    """One line saying why the store is degraded, or None when it is healthy."""
    problems = []
    if condition.fault_kind:
        since = f" since {_clock(condition.fault_since)}" if condition.fault_since else ""
        problems.append(f"{condition.fault_kind}{since}: writes are refused ({condition.fault_message})")
    if condition.free_bytes is not None and condition.total_bytes:
        low = min(LOW_DISK_BYTES, LOW_DISK_FRACTION * condition.total_bytes)
        if condition.free_bytes < low:
            problems.append(
                f"disk nearly full: {_mib(condition.free_bytes)} free of {_mib(condition.total_bytes)}"
            )
    if condition.wal_bound_bytes and condition.wal_bytes > 2 * condition.wal_bound_bytes:
        problems.append(f"the write-ahead log holds {_mib(condition.wal_bytes)} (checkpoints are held back)")
    if condition.retrying_runs:
        problems.append(f"{condition.retrying_runs} run(s) waiting out the fault, then retried")
    return "; ".join(problems) or None


def degraded_banner(condition: StoreCondition) -> str | None:
    """The banner every page shows while the store is degraded (None when it is not)."""
    problem = store_problem(condition)
    if problem is None:
        return None
    return (
        f"The console's store is degraded: {problem}. Runs wait and retry instead of failing; what "
        "the pages show may be behind; the API answers 503/507 with Retry-After until it recovers."
    )
