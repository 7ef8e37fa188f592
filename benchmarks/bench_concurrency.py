"""Parallel launches and simultaneous approval decisions on the embedded engine (one SQLite store).

1. ``--launches`` scenario launches (mixed: most pause for approval) from ``--threads`` threads at
   once; measures the launch call latency, the time until every execution is PAUSED or finished,
   and checks that every execution is recorded and none failed on a database error.
2. ``--threads`` threads decide ``--approvals`` pending approvals (topped up with more launches)
   at random (approve/reject with a comment, five identities with the approver role, every third
   round all threads on the same item), until none is left; measures decision latency and
   throughput and checks that each approval got exactly one decision and a complete audit trail.
   Then every execution must finish.

    .venv/bin/python benchmarks/bench_concurrency.py                 # 200 launches, 20 threads
    .venv/bin/python benchmarks/bench_concurrency.py --launches 400 --workers 4
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from console.access.approvals import ApprovalService  # noqa: E402
from console.domain.executions import State  # noqa: E402
from console.engines.embedded.runner import EmbeddedEngine  # noqa: E402
from console.settings import Settings  # noqa: E402
from console.storage import Store  # noqa: E402
from tests.reliability.load import (  # noqa: E402
    FINISHING,
    PAUSING,
    Readers,
    check_decisions,
    decide_storm,
    launch_parallel,
    summary,
    wait_all,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--launches", type=int, default=200)
    parser.add_argument("--approvals", type=int, default=200, help="pending approvals to decide")
    parser.add_argument("--threads", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2, help="engine worker threads")
    parser.add_argument("--readers", type=int, default=4, help="threads reading like the pages meanwhile")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(data_dir=Path(tmp))
        store = Store(settings.db_path)
        engine = EmbeddedEngine(settings, store, max_workers=args.workers)
        engine.run_sync(scenario="healthy-hotfix", triggered_by="warm-up")  # imports, caches
        # 5 of 8 scenarios pause: make the mix give about 200 pending approvals for 200 launches
        mix = PAUSING * 4 + FINISHING
        scenarios = list(itertools.islice(itertools.cycle(mix), args.launches))

        print(f"== {args.launches} launches from {args.threads} threads, {args.workers} engine workers")
        service = ApprovalService(store, engine, settings)
        with Readers(engine, service, threads=args.readers) as readers:  # the pages keep reading
            report = launch_parallel(engine, scenarios, threads=args.threads, launched_by="bench")
            t0 = time.perf_counter()
            states = wait_all(engine, report.ids, timeout=1800)
            settled_s = report.elapsed_s + (time.perf_counter() - t0)
        counts = Counter(s.value for s in states.values())
        bad = [s for s in states.values() if not (s.terminal or s == State.PAUSED)]
        print(f"launch call latency: {summary(report.latencies_s)}")
        print(
            f"all launch calls returned in {report.elapsed_s:.2f} s "
            f"({len(report.ids) / report.elapsed_s:.1f} launches/s); "
            f"all PAUSED or finished after {settled_s:.2f} s ({len(report.ids) / settled_s:.1f} executions/s)"
        )
        print(
            f"states: {dict(counts)}; errors raised to callers: {len(report.errors)}; "
            f"still running: {len(bad)}"
        )
        recorded = engine.search_executions(size=1).total - 1  # minus the warm-up
        print(f"executions recorded: {recorded} of {len(report.ids)}")
        launched = len(report.ids)
        print(
            f"{args.readers} reader threads meanwhile: one round of page reads "
            f"{summary(readers.latencies_s)}; errors: {len(readers.errors)}"
        )
        reader_errors = list(readers.errors)

        missing = args.approvals - len(service.pending())
        if missing > 0:  # top up with pausing scenarios, launched in parallel too
            extra = launch_parallel(
                engine, list(itertools.islice(itertools.cycle(PAUSING), missing)), threads=args.threads
            )
            report.errors += extra.errors
            report.ids += extra.ids
            wait_all(engine, extra.ids, timeout=1800)
        pending = service.pending()
        ids = [p["id"] for p in pending]
        two = sum(p["required_approvals"] == 2 for p in pending)
        print(
            f"\n== {len(ids)} pending approvals ({two} need two approvers) decided by {args.threads} threads"
        )
        with Readers(engine, service, threads=args.readers) as readers:
            attempts, elapsed = decide_storm(
                service, ids, threads=args.threads, seed=args.seed, collide_every=3
            )
        reader_errors += readers.errors
        outcomes = Counter(a.outcome for a in attempts)
        decided = [a for a in attempts if a.outcome in ("approved", "rejected", "recorded")]
        print(f"attempts: {len(attempts)} in {elapsed:.2f} s ({len(attempts) / elapsed:.1f} attempts/s)")
        print(f"outcomes: {dict(outcomes)}")
        print(f"vote() latency, accepted votes: {summary([a.latency_s for a in decided])}")
        print(f"vote() latency, all attempts:     {summary([a.latency_s for a in attempts])}")
        problems = check_decisions(service, ids, attempts)
        print(
            f"{args.readers} reader threads meanwhile: one round of page reads {summary(readers.latencies_s)}"
        )
        print(f"invariant violations: {len(problems)}; errors seen by readers: {len(reader_errors)}")
        for error in reader_errors[:10]:
            print(f"  reader: {error}")
        for problem in problems[:20]:
            print(f"  {problem}")

        t0 = time.perf_counter()
        after = wait_all(engine, report.ids, timeout=1800)
        print(
            f"after the decisions every execution ended in {time.perf_counter() - t0:.2f} s: "
            f"{dict(Counter(s.value for s in after.values()))}"
        )
        db_errors = store.db.conn.execute(
            "SELECT COUNT(*) FROM execution_logs WHERE message LIKE '%locked%' OR message LIKE '%sqlite%' "
            "OR message LIKE '%internal error%'"
        ).fetchone()[0]
        print(f"log lines mentioning a database error: {db_errors}")
        engine.close()
        store.close()
        ok = (
            not report.errors
            and not bad
            and not problems
            and not db_errors
            and not reader_errors
            and recorded == launched
        )
        print("\nRESULT:", "OK" if ok else "FAILED")
        return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
