"""LogHub grouping accuracy of the production drain3 miner, and log-mining throughput.

Usage: .venv/bin/python benchmarks/bench_loghub.py [--loghub DIR] [--lines N]

Part 1 prints grouping accuracy and time per LogHub 2k system next to logparser's published Drain
figure, and the mean over the 16 systems (target >= 0.85).
Part 2 times ``mine_log_patterns`` (masking + drain3 + before/after counts) on N lines (200k by
default) of two kinds: synthetic service logs where every line is distinct (request ids, trace ids,
latencies, IPs: the worst case for deduplication), and the 16 LogHub samples repeated with
timestamps. It also times drain3's own masker on the distinct lines for comparison.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

from benchmarks.loghub import (  # noqa: E402
    PUBLISHED_DRAIN,
    SYSTEMS,
    load_system,
    timed_grouping_accuracy,
)
from console.analysis.logs import LogMiner, MinerParams, mine_log_patterns  # noqa: E402
from console.domain.models import LogRecord  # noqa: E402

DEFAULT_LOGHUB = PROJECT_ROOT.parent / "shared" / "data" / "loghub"
DEPLOYED_AT = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def synthetic_service_logs(n: int, seed: int = 7) -> list[LogRecord]:
    """n lines over 40 minutes (deploy at minute 30), nearly all distinct."""
    rng = random.Random(seed)
    start = DEPLOYED_AT - timedelta(minutes=30)
    step = 40 * 60 / n
    logs = []
    for i in range(n):
        ts = start + timedelta(seconds=i * step)
        after = ts >= DEPLOYED_AT
        r = rng.random()
        if r < 0.45:
            msg = (
                f"GET /api/v1/orders/{rng.randint(1, 99999)} {rng.choice((200, 200, 201, 404))} "
                f"{rng.randint(1, 900)}ms trace={rng.getrandbits(64):016x}"
            )
            logs.append(LogRecord(ts, "INFO", msg, "api"))
        elif r < 0.6:
            ip = f"10.0.{rng.randint(0, 255)}.{rng.randint(0, 255)}"
            msg = f"user {rng.randint(1, 5000)} logged in from {ip}"
            logs.append(LogRecord(ts, "INFO", msg, "auth"))
        elif r < 0.75:
            msg = f"cache hit ratio {rng.random():.3f} for key session:{rng.randint(1, 10**6)}"
            logs.append(LogRecord(ts, "DEBUG", msg, "cache"))
        elif r < 0.85:
            msg = (
                f"{datetime.now(UTC).isoformat()} job {rng.getrandbits(128):032x} finished "
                f"in {rng.random() * 10:.2f}s, {rng.randint(1, 5000)} rows"
            )
            logs.append(LogRecord(ts, "INFO", msg, "worker"))
        elif r < 0.95:
            request = uuid.UUID(int=rng.getrandbits(128))
            msg = f"request {request} retried {rng.randint(1, 3)} times on /var/lib/app/q{i % 7}"
            logs.append(LogRecord(ts, "WARN", msg, "api"))
        elif after:
            msg = (
                "HikariPool-1 - Connection is not available, request timed out after "
                f"{rng.randint(30000, 30100)}ms."
            )
            logs.append(LogRecord(ts, "ERROR", msg, "db"))
        else:
            msg = f"slow query took {rng.randint(1, 900)} ms id={rng.randint(1, 10**6)}"
            logs.append(LogRecord(ts, "WARN", msg, "db"))
    return logs


def loghub_logs(loghub: Path, n: int) -> list[LogRecord]:
    contents: list[str] = []
    for system in SYSTEMS:
        contents.extend(load_system(loghub, system)[0])
    start = DEPLOYED_AT - timedelta(minutes=30)
    step = 40 * 60 / n
    return [
        LogRecord(start + timedelta(seconds=i * step), "INFO", contents[i % len(contents)]) for i in range(n)
    ]


def time_mining(label: str, logs: list[LogRecord]) -> None:
    distinct = len({r.message for r in logs})
    start = time.perf_counter()
    cpu = time.process_time()
    patterns = mine_log_patterns(logs, DEPLOYED_AT, limit=10_000)
    wall = time.perf_counter() - start
    cpu = time.process_time() - cpu
    print(
        f"{label:34s} lines={len(logs):>7d} distinct={distinct:>7d} templates={len(patterns):>5d} "
        f"wall={wall:6.3f}s cpu={cpu:6.3f}s  ({len(logs) / wall / 1000:.0f}k lines/s)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loghub", type=Path, default=DEFAULT_LOGHUB)
    parser.add_argument("--lines", type=int, default=200_000)
    args = parser.parse_args()
    if not args.loghub.is_dir():
        print(f"LogHub data not found at {args.loghub}", file=sys.stderr)
        return 2

    print("LogHub 2k grouping accuracy (production miner, logparser's Drain preprocessing per system)")
    print("('untuned' = production defaults MinerParams() on every system, for reference)")
    print(f"{'system':12s} {'ours':>7s} {'Drain':>7s} {'diff':>7s} {'time':>8s} {'untuned':>8s}")
    rows = timed_grouping_accuracy(args.loghub)
    untuned = timed_grouping_accuracy(args.loghub, MinerParams())
    for (system, accuracy, seconds), (_, plain, _) in zip(rows, untuned, strict=True):
        published = PUBLISHED_DRAIN[system]
        print(
            f"{system:12s} {accuracy:7.4f} {published:7.4f} {accuracy - published:+7.4f} "
            f"{seconds:7.3f}s {plain:8.4f}"
        )
    mean = sum(a for _, a, _ in rows) / len(rows)
    published_mean = sum(PUBLISHED_DRAIN.values()) / len(PUBLISHED_DRAIN)
    total = sum(s for _, _, s in rows)
    plain_mean = sum(a for _, a, _ in untuned) / len(untuned)
    print(
        f"{'mean':12s} {mean:7.4f} {published_mean:7.4f} {mean - published_mean:+7.4f} "
        f"{total:7.3f}s {plain_mean:8.4f}"
    )
    print(f"target mean >= 0.85: {'met' if mean >= 0.85 else 'NOT met'}")

    print()
    print(f"mine_log_patterns throughput ({args.lines} lines)")
    synthetic = synthetic_service_logs(args.lines)
    time_mining("synthetic service logs (distinct)", synthetic)
    time_mining("LogHub 2k x16 systems, repeated", loghub_logs(args.loghub, args.lines))

    messages = [r.message for r in synthetic]
    miner = LogMiner()
    start = time.perf_counter()
    miner.mask_all(messages)
    fast = time.perf_counter() - start
    start = time.perf_counter()
    for message in messages:
        miner.mask(message)
    reference = time.perf_counter() - start
    print(f"masking only, synthetic: mask_all={fast:.3f}s  drain3 LogMasker per line={reference:.3f}s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
