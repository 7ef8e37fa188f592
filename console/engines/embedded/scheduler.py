"""The embedded engine's scheduler: due runs to the workers, by priority, fairly; faults waited out.

A run that waits holds no worker: it is a row of the store's run queue (:mod:`console.storage.queue`)
with its wake-up time and priority. One scheduler thread takes the due rows **by priority, then by
wake-up time**, and among rows of the same priority prefers the caller (``source``) with the fewest
units running, so one caller's backlog cannot hold a worker pool; it claims each row (the row goes,
the run gets this engine's owner token) and hands it to the pool as one **unit**: the run's tasks up
to its next wait, pause or end (a look at a window is a unit; so is analyze → … → approval).

Priorities (:func:`run_priority`, lower first): CRITICAL and HIGH incidents, a look that may decide
(the judge already says ROLLBACK, the window's end) and a run resumed by a decision go first; then
deployments, MEDIUM incidents and scenarios; LOW incidents last.

A unit that meets a store fault (:class:`~console.storage.StoreFault`: locked, disk full) is not
failed: the run stays this engine's and the unit is tried again after a backoff that doubles to
:data:`MAX_BACKOFF_S`; once the faults have lasted ``store_fault_escalate_s`` the next attempt
escalates the run instead (the engine's :meth:`escalate_fault`). Every ``engine_sweep_s`` the
scheduler sweeps: runs a dead process left, and runs this engine holds that no unit runs (a worker
that stopped), are queued again; and the WAL is checkpointed when it has grown.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol

from console.domain.models import Severity
from console.storage import Store, StoreFault

log = logging.getLogger(__name__)

TICK_S = 1.0
"""The longest the scheduler sleeps without looking at the queue (other processes may add to it)."""
FIRST_BACKOFF_S = 0.5
MAX_BACKOFF_S = 30.0

URGENT, NORMAL, LOW = 0, 1, 2


def run_priority(launch: dict[str, Any], *, urgent: bool = False) -> int:
    """The queue priority of a run (lower runs first): from the incident's severity, or a
    deployment's; ``urgent`` (a look that may decide, a run resumed by a decision) moves it one up."""
    incident = launch.get("incident") if isinstance(launch, dict) else None
    severity = str(incident.get("severity") or "").upper() if isinstance(incident, dict) else ""
    if severity in (Severity.CRITICAL.value, Severity.HIGH.value):
        base = URGENT
    elif severity == Severity.LOW.value:
        base = LOW
    else:
        base = NORMAL
    return max(URGENT, base - 1) if urgent else base


class Schedulable(Protocol):
    """What the scheduler needs of the engine."""

    owner: str
    store: Store

    def run_unit(self, execution_id: str) -> None:
        """Run the execution's tasks up to its next wait, pause or end (raises StoreFault)."""
        ...

    def escalate_fault(self, execution_id: str, since: float, fault: StoreFault) -> None:
        """Give up on a run whose store writes kept failing: escalate it (raises StoreFault)."""
        ...

    def sweep(self, busy: set[str]) -> None:
        """Queue again what nobody runs (``busy``: the runs with a unit running or retrying)."""
        ...


@dataclass
class _Retry:
    due: float
    attempt: int
    since: float
    fault: StoreFault


@dataclass
class SchedulerStats:
    running: int
    retrying: int
    fault: str | None
    units: int = 0
    faults: int = 0
    escalated: int = 0


class Scheduler:
    def __init__(
        self,
        engine: Schedulable,
        workers: int,
        *,
        sweep_s: float,
        escalate_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.engine = engine
        self.store = engine.store
        self.workers = max(1, int(workers))
        self.sweep_s = sweep_s
        self.escalate_s = escalate_s
        self.clock = clock
        self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="loop")
        self._lock = threading.Lock()
        self._running: dict[str, str] = {}  # execution id -> source
        self._retries: dict[str, _Retry] = {}
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._claim_backoff_until = 0.0
        self._next_sweep = 0.0
        self._stalled = False  # the last round left due runs it could not take (workers busy)
        self.stats = SchedulerStats(0, 0, None)

    # -- life ------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="loop-scheduler", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Look at the queue now (something was queued or ended)."""
        self._wake.set()

    def stop(self, wait: bool = True) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None and wait:
            self._thread.join(timeout=10)
        self._pool.shutdown(wait=wait)

    def busy(self) -> set[str]:
        """Runs with a unit running or waiting to retry after a fault."""
        with self._lock:
            return set(self._running) | set(self._retries)

    def snapshot(self) -> SchedulerStats:
        with self._lock:
            self.stats.running = len(self._running)
            self.stats.retrying = len(self._retries)
            faults = [r.fault for r in self._retries.values()]
        self.stats.fault = str(faults[0]) if faults else None
        return self.stats

    # -- the loop --------------------------------------------------------------------------------------

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.clear()
            try:
                self._round()
            except Exception:  # the scheduler never dies of one bad round
                log.exception("scheduler round failed")
            self._wake.wait(self._sleep_s())

    def _sleep_s(self) -> float:
        """Until the next wake-up, retry or sweep; a unit that ends, or anything queued by this
        process, wakes it earlier (so it never spins while every worker is busy)."""
        now = self.clock()
        until = [now + TICK_S, self._next_sweep]
        with self._lock:
            until += [r.due for r in self._retries.values()]
        if not self._stalled:
            try:
                wake = self.store.queue.next_wake()
            except Exception:
                wake = None
            if wake is not None:
                until.append(max(wake, self._claim_backoff_until))
        return max(0.01, min(until) - now)

    def _round(self) -> None:
        now = self.clock()
        if now >= self._next_sweep:
            self._next_sweep = now + self.sweep_s
            self._sweep(now)
        self._dispatch_retries(now)
        free = self.workers - self._occupied()
        self._stalled = free <= 0
        if free <= 0 or now < self._claim_backoff_until:
            return
        try:
            due = self.store.queue.due_runs(now, limit=max(64, free * 8))
        except Exception as exc:
            log.warning("scheduler: the queue cannot be read now: %s", exc)
            return
        with self._lock:
            load = Counter(self._running.values())
            taken = set(self._running) | set(self._retries)
        # best priority first; then the caller with the fewest units running; then the earliest
        left = [e for e in due if e.execution_id not in taken]
        self._stalled = len(left) > free
        for entry in sorted(left, key=lambda e: (e.priority, load[e.source], e.due_at)):
            if free <= 0:
                break
            try:
                with self.store.db.write() as conn:
                    claimed = self.store.queue.claim_in(
                        conn, entry.execution_id, owner=self.engine.owner, now=now
                    )
            except StoreFault as exc:
                log.warning("scheduler: cannot claim due runs now (%s); backing off", exc)
                self._claim_backoff_until = now + FIRST_BACKOFF_S * 4
                return
            if claimed:
                self._submit(entry.execution_id, entry.source)
                load[entry.source] += 1
                free -= 1

    def _occupied(self) -> int:
        with self._lock:
            return len(self._running)

    def _dispatch_retries(self, now: float) -> None:
        with self._lock:
            ready = sorted((r.due, eid) for eid, r in self._retries.items() if r.due <= now)
        for _, execution_id in ready:
            if self._occupied() >= self.workers:
                return
            with self._lock:
                retry = self._retries.get(execution_id)
                if retry is None or execution_id in self._running:
                    continue
                self._running[execution_id] = "retry"
            escalate = now - retry.since >= self.escalate_s
            self._pool.submit(self._unit, execution_id, retry, escalate)

    def _submit(self, execution_id: str, source: str) -> None:
        with self._lock:
            self._running[execution_id] = source
        self._pool.submit(self._unit, execution_id, None, False)

    def _unit(self, execution_id: str, retry: _Retry | None, escalate: bool) -> None:
        try:
            if escalate and retry is not None:
                self.engine.escalate_fault(execution_id, retry.since, retry.fault)
                self.stats.escalated += 1
            else:
                self.engine.run_unit(execution_id)
            self.stats.units += 1
            with self._lock:
                self._retries.pop(execution_id, None)
        except StoreFault as fault:
            now = self.clock()
            self.stats.faults += 1
            attempt = retry.attempt + 1 if retry is not None else 1
            since = retry.since if retry is not None else now
            delay = min(MAX_BACKOFF_S, FIRST_BACKOFF_S * 2 ** (attempt - 1))
            log.warning(
                "run %s: %s; trying again in %.1f s (attempt %d)", execution_id, fault, delay, attempt
            )
            with self._lock:
                self._retries[execution_id] = _Retry(now + delay, attempt, since, fault)
        except Exception:  # run_unit ends the run FAILED itself; this is a last resort
            log.exception("run %s: unit failed", execution_id)
        finally:
            with self._lock:
                self._running.pop(execution_id, None)
            self._wake.set()

    def _sweep(self, now: float) -> None:
        chores = (("sweep", lambda: self.engine.sweep(self.busy())), ("WAL upkeep", self.store.db.maintain))
        for what, step in chores:
            try:
                step()
            except StoreFault as exc:
                log.warning("scheduler: %s skipped: %s", what, exc)
            except Exception:
                log.exception("scheduler: %s failed", what)
