"""The loop on a service this project did not write: ``livestack/unseen/`` (prometheus_client's default
names only, five handlers, 20 req/s), scraped every second by Debian's Prometheus, configured with
``profile: auto``, a selector and a memory limit, and judged by the loop's own collect/analyze
steps (the early decision included) on real processes.

    .venv/bin/python benchmarks/bench_unseen.py                 # 9 behaviours x 3 deploys, 3 lanes
    .venv/bin/python benchmarks/bench_unseen.py --deploys 1     # one deploy of each behaviour
    .venv/bin/python benchmarks/bench_unseen.py --only errors-one,leak

Each deploy: the healthy v1 runs a whole baseline (30 s), the behaviour's version is deployed (its
process replaces v1's), the loop watches the verification window (45 s; it may decide earlier),
then v1 comes back. Printed: per behaviour the verdicts and when they were taken, then accuracy,
false rollbacks (a healthy deploy rolled back), missed faults (a fault not rolled back) and the
real scrapes from fault onset (the deploy: every fault starts with its version) to the decision.
The goal: >= 95 % right, 0 false rollbacks, clear faults decided in <= 15 scrapes (median).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from livestack.processes import missing_reason  # noqa: E402
from livestack.unseen.lane import UnseenLane  # noqa: E402


@dataclass(frozen=True)
class Behaviour:
    name: str
    version: str
    spec: dict[str, Any]
    expected: str
    clear: bool = False
    """A clear fault: decided early is the goal (<= 15 scrapes)."""


BEHAVIOURS = (
    Behaviour("same-version", "v1", {}, "CONTINUE"),
    Behaviour("faster", "v1.1-fast", {"latency_factor": 0.7}, "CONTINUE"),
    Behaviour("heavier-but-fine", "v1.2-cache", {"latency_factor": 1.1, "ballast_mb": 24}, "CONTINUE"),
    Behaviour("one-stray-error", "v1.3", {"error_at_s": 8}, "CONTINUE"),
    Behaviour("errors-one-handler", "v2-cart", {"errors": {"/api/cart": 0.25}}, "ROLLBACK", clear=True),
    Behaviour("slow-one-handler", "v2-search", {"extra_ms": {"/api/search": 300}}, "ROLLBACK", clear=True),
    Behaviour("slow-everywhere", "v2-slow", {"extra_ms": {"*": 150}}, "ROLLBACK", clear=True),
    Behaviour("slow-leak", "v2-leak", {"leak_mb_per_s": 1.5}, "ROLLBACK"),
    Behaviour("gradual-errors", "v2-ramp", {"errors_ramp": [0.2, 45]}, "ROLLBACK"),
)


def run_lane(workdir: Path, jobs: list[Behaviour], log: list[str]) -> list[dict[str, Any]]:
    lane = UnseenLane.start(workdir, baseline_s=30, verify_s=45)
    rows = []
    try:
        for behaviour in jobs:
            lane.wait_steady(timeout=180)
            record = lane.deploy(behaviour.version, behaviour.spec)
            began = time.monotonic()
            out = lane.judge(record)
            took = time.monotonic() - began
            verification = out["collect"]["verification"] or {}
            decision = out["decision"]
            row = {
                "behaviour": behaviour.name,
                "expected": behaviour.expected,
                "clear": behaviour.clear,
                "verdict": decision["verdict"],
                "rule": decision.get("rule"),
                "ended": verification.get("ended"),
                "scrapes": verification.get("samples_after"),
                "seconds": took,
            }
            rows.append(row)
            log.append(
                f"{behaviour.name:20s} {row['verdict']:8s} ({row['rule']}, {row['ended']}, "
                f"{row['scrapes']} real scrapes, {took:.0f} s)"
            )
            lane.deploy("v1", {})
    finally:
        lane.stop()
    return rows


def report(rows: list[dict[str, Any]], elapsed: float) -> tuple[list[str], bool]:
    right = [r for r in rows if r["verdict"] == r["expected"]]
    healthy = [r for r in rows if r["expected"] == "CONTINUE"]
    faults = [r for r in rows if r["expected"] == "ROLLBACK"]
    false_rollbacks = [r for r in healthy if r["verdict"] == "ROLLBACK"]
    missed = [r for r in faults if r["verdict"] != "ROLLBACK"]
    clear = [
        r["scrapes"] for r in faults if r["clear"] and r["verdict"] == "ROLLBACK" and r["scrapes"] is not None
    ]
    every = [r["scrapes"] for r in faults if r["verdict"] == "ROLLBACK" and r["scrapes"] is not None]
    accuracy = len(right) / len(rows) if rows else 0.0
    lines = [
        "",
        f"unseen service, {len(rows)} deploys ({len(healthy)} healthy, {len(faults)} faulty) "
        f"in {elapsed:.0f} s",
        f"  right: {len(right)}/{len(rows)} ({accuracy:.1%})",
        f"  false rollbacks: {len(false_rollbacks)}/{len(healthy)}"
        + (f" ({', '.join(r['behaviour'] for r in false_rollbacks)})" if false_rollbacks else ""),
        f"  missed faults: {len(missed)}/{len(faults)}"
        + (f" ({', '.join(r['behaviour'] + ' ' + r['verdict'] for r in missed)})" if missed else ""),
        "  real scrapes from fault onset to decision, clear faults: "
        + (f"median {statistics.median(clear):.0f}, max {max(clear)}" if clear else "n/a"),
        "  real scrapes from fault onset to decision, every fault rolled back: "
        + (f"median {statistics.median(every):.0f}, max {max(every)}" if every else "n/a"),
    ]
    by: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        by.setdefault(r["behaviour"], []).append(r)
    for name, group in by.items():
        verdicts = ", ".join(f"{r['verdict']}@{r['scrapes']}" for r in group)
        lines.append(f"    {name:20s} expected {group[0]['expected']:8s} got {verdicts}")
    met = accuracy >= 0.95 and not false_rollbacks and (not clear or statistics.median(clear) <= 15)
    return lines, met


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deploys", type=int, default=3, help="deploys of each behaviour (default 3)")
    parser.add_argument("--lanes", type=int, default=3, help="services judged side by side (default 3)")
    parser.add_argument("--only", default="", help="comma-separated behaviour names")
    args = parser.parse_args(argv)
    reason = missing_reason("prometheus")
    if reason:
        print(f"cannot run: {reason}")
        return 2
    chosen = [b for b in BEHAVIOURS if not args.only or b.name in args.only.split(",")]
    jobs = [b for _ in range(args.deploys) for b in chosen]
    lanes = max(1, min(args.lanes, len(jobs)))
    shares = [jobs[i::lanes] for i in range(lanes)]
    log: list[str] = []
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-unseen-") as tmp, ThreadPoolExecutor(lanes) as pool:
        futures = [
            pool.submit(run_lane, Path(tmp) / f"lane{i}", share, log) for i, share in enumerate(shares)
        ]
        rows = [row for future in futures for row in future.result()]
    for line in log:
        print(line)
    lines, met = report(rows, time.monotonic() - started)
    for line in lines:
        print(line)
    goal = "met" if met else "NOT met"
    print(f"  goal (>= 95 % right, 0 false rollbacks, clear faults <= 15 scrapes median): {goal}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
