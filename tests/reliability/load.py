"""Load generators shared by the concurrency tests and ``benchmarks/bench_concurrency.py``.

Launches and decisions run from many threads at once against one store, exactly as several
Streamlit sessions would; every exception a caller sees is collected, never swallowed.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from console.access.approvals import AlreadyDecided, ApprovalService
from console.access.auth import Identity, PermissionDenied, Role
from console.domain.executions import State
from console.engines.embedded.runner import EmbeddedEngine
from tests.waiting import patience

# Scenarios that pause for approval: HIGH risk (one approver), CRITICAL (two approvers), and one
# requested by "bob" (bob's attempts on it are self-approvals and must be refused).
PAUSING = ["memory-leak", "crash-loop", "latency-regression", "database-outage-before-deploy", "db-timeouts"]
FINISHING = ["healthy-hotfix", "performance-improvement", "transient-blip"]
IDENTITIES = [
    Identity("bob", Role.APPROVER),
    Identity("carol", Role.ADMIN),
    Identity("dave", Role.APPROVER),
    Identity("erin", Role.APPROVER),
    Identity("frank", Role.ADMIN),
]
FINAL_EVENTS = ("approval.approved", "approval.rejected", "approval.expired")
ATTEMPT_EVENTS = ("approval.approved", "approval.rejected", "approval.vote", "approval.refused")


@dataclass
class LaunchReport:
    ids: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0


def launch_parallel(
    engine: EmbeddedEngine, scenarios: list[str], *, threads: int, launched_by: str = "loadgen"
) -> LaunchReport:
    """Launch every scenario in ``scenarios`` (one execution each) from ``threads`` threads at once."""
    report = LaunchReport()
    lock = threading.Lock()
    queue = list(enumerate(scenarios))
    start = threading.Barrier(threads)

    def worker() -> None:
        start.wait()
        while True:
            with lock:
                if not queue:
                    return
                _, scenario = queue.pop()
            t0 = time.perf_counter()
            try:
                execution_id = engine.launch_scenario(scenario, launched_by)
            except Exception as exc:  # collected: the test fails on any
                with lock:
                    report.errors.append(f"{type(exc).__name__}: {exc}")
                continue
            with lock:
                report.ids.append(execution_id)
                report.latencies_s.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    pool = [threading.Thread(target=worker, name=f"launch-{i}") for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    report.elapsed_s = time.perf_counter() - t0
    return report


def wait_all(engine: EmbeddedEngine, ids: list[str], timeout: float) -> dict[str, State]:
    """Wait until every execution is PAUSED or finished; returns the states seen last."""
    deadline = time.monotonic() + patience(timeout)
    states: dict[str, State] = {}
    pending = set(ids)
    while pending and time.monotonic() < deadline:
        for execution_id in list(pending):
            state = engine.store.executions.get(execution_id, with_task_runs=False).state
            states[execution_id] = state
            if state.terminal or state == State.PAUSED:
                pending.discard(execution_id)
        if pending:
            time.sleep(0.05)
    for execution_id in pending:
        states[execution_id] = engine.store.executions.get(execution_id, with_task_runs=False).state
    return states


class Readers:
    """``threads`` threads reading what the pages read, in a loop, while the test writes.

    Use as a context manager; afterwards ``errors`` holds every exception a reader saw and
    ``latencies_s`` the time of each round of reads."""

    def __init__(self, engine: EmbeddedEngine, service: ApprovalService | None, threads: int = 4) -> None:
        self.engine, self.service, self.threads = engine, service, threads
        self.errors: list[str] = []
        self.latencies_s: list[float] = []
        self._stop = threading.Event()
        self._pool: list[threading.Thread] = []
        self._lock = threading.Lock()

    def _loop(self) -> None:
        store = self.engine.store
        while not self._stop.is_set():
            t0 = time.perf_counter()
            try:
                page = self.engine.search_executions(page=1, size=50)
                for item in page.items[:3]:
                    self.engine.get_execution(item.id)
                    self.engine.execution_logs(item.id)
                store.deployments.dashboard_kpis()
                store.deployments.list(limit=100)
                store.audit.trail(limit=200)
                if self.service is not None:
                    self.service.pending()
                    self.service.decided()
            except Exception as exc:  # collected: the test fails on any
                with self._lock:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
            with self._lock:
                self.latencies_s.append(time.perf_counter() - t0)
            time.sleep(0.005)

    def __enter__(self) -> Readers:
        self._pool = [threading.Thread(target=self._loop, name=f"reader-{i}") for i in range(self.threads)]
        for t in self._pool:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for t in self._pool:
            t.join()


@dataclass
class Attempt:
    approval_id: str
    actor: str
    approved: bool
    outcome: str  # approved / rejected / recorded / refused:<Type> / error:<Type>
    latency_s: float


def decide_storm(
    service: ApprovalService,
    approval_ids: list[str],
    *,
    threads: int,
    seed: int,
    collide_every: int = 4,
) -> tuple[list[Attempt], float]:
    """``threads`` threads decide random pending approvals until none is left.

    Every ``collide_every``-th round all threads aim at the same item after a barrier, so the same
    approval is decided by several identities at the same instant. Returns (attempts, elapsed)."""
    rng = random.Random(seed)
    lock = threading.Lock()
    attempts: list[Attempt] = []
    open_ids = set(approval_ids)
    barrier = threading.Barrier(threads)
    rounds = Counter()
    shared_target: dict[int, str] = {}
    stop = threading.Event()

    def pick(local: random.Random, round_no: int) -> str | None:
        with lock:
            if not open_ids:
                return None
            if round_no % collide_every == 0:
                if round_no not in shared_target:
                    shared_target[round_no] = local.choice(sorted(open_ids))
                return shared_target[round_no]
            return local.choice(sorted(open_ids))

    def worker(index: int) -> None:
        local = random.Random(rng.random() + index)
        round_no = 0
        while not stop.is_set():
            round_no += 1
            if round_no % collide_every == 0:
                try:
                    barrier.wait(timeout=10)
                except threading.BrokenBarrierError:
                    pass
            target = pick(local, round_no)
            if target is None:
                stop.set()
                try:
                    barrier.abort()
                except threading.BrokenBarrierError:
                    pass
                return
            who = local.choice(IDENTITIES)
            approved = local.random() < 0.7
            comment = f"{who.name} round {round_no}: {'ok' if approved else 'not now'}"
            t0 = time.perf_counter()
            try:
                result = service.vote(target, who, approved, comment)
                outcome = result.status
            except (AlreadyDecided, PermissionDenied) as exc:
                outcome = f"refused:{type(exc).__name__}"
            except Exception as exc:  # anything else is a failure the test reports
                outcome = f"error:{type(exc).__name__}: {exc}"
            latency = time.perf_counter() - t0
            with lock:
                attempts.append(Attempt(target, who.name, approved, outcome, latency))
                rounds[index] += 1
                if outcome in ("approved", "rejected"):
                    open_ids.discard(target)
                elif outcome.startswith("refused:AlreadyDecided"):
                    row = service.store.approvals.get(target)
                    if row and row["status"] != "pending":
                        open_ids.discard(target)

    t0 = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(i,), name=f"decide-{i}") for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return attempts, time.perf_counter() - t0


def check_decisions(service: ApprovalService, approval_ids: list[str], attempts: list[Attempt]) -> list[str]:
    """Every invariant of a decision storm; returns the problems found (empty when all hold)."""
    problems: list[str] = []
    store = service.store
    errors = [a for a in attempts if a.outcome.startswith("error:")]
    problems += [f"{a.approval_id} by {a.actor}: {a.outcome}" for a in errors]
    by_item: dict[str, list[Attempt]] = defaultdict(list)
    for a in attempts:
        by_item[a.approval_id].append(a)
    for approval_id in approval_ids:
        row = store.approvals.get(approval_id)
        if row is None:
            problems.append(f"{approval_id}: lost")
            continue
        mine = by_item.get(approval_id, [])
        finals = [a for a in mine if a.outcome in ("approved", "rejected")]
        if row["status"] not in ("approved", "rejected"):
            problems.append(f"{approval_id}: still {row['status']}")
        if len(finals) != 1:
            problems.append(f"{approval_id}: {len(finals)} callers were told they decided it")
        elif finals[0].outcome != row["status"]:
            problems.append(f"{approval_id}: caller told {finals[0].outcome}, stored {row['status']}")
        trail = list(reversed(store.audit.trail(subject=approval_id, limit=10_000)))
        final_events = [e for e in trail if e["event"] in FINAL_EVENTS]
        if len(final_events) != 1:
            problems.append(f"{approval_id}: {len(final_events)} final decision events in the audit trail")
        attempt_events = [e for e in trail if e["event"] in ATTEMPT_EVENTS]
        if len(attempt_events) != len(mine):
            problems.append(f"{approval_id}: {len(mine)} attempts but {len(attempt_events)} audit events")
        if Counter(e["actor"] for e in attempt_events) != Counter(a.actor for a in mine):
            problems.append(f"{approval_id}: audit actors differ from the attempts")
        votes = store.approvals.votes(approval_id)
        if len({v["actor"] for v in votes}) != len(votes):
            problems.append(f"{approval_id}: one person voted twice")
        if row["requested_by"] in {v["actor"] for v in votes}:
            problems.append(f"{approval_id}: the requester voted on their own request")
        if row["status"] == "approved":
            approvers = [v for v in votes if v["approved"]]
            if len(approvers) != row["required_approvals"]:
                problems.append(
                    f"{approval_id}: approved with {len(approvers)} approvals, "
                    f"{row['required_approvals']} required"
                )
    return problems


def summary(values: list[float]) -> dict[str, Any]:
    """median / p95 / max in milliseconds."""
    if not values:
        return {"n": 0}
    ordered = sorted(values)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return {
        "n": len(ordered),
        "median_ms": round(1000 * ordered[len(ordered) // 2], 1),
        "p95_ms": round(1000 * p95, 1),
        "max_ms": round(1000 * ordered[-1], 1),
    }
