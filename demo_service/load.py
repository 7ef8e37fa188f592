"""Steady, bounded load for the demo service: ``python -m demo_service.load --target URL``.

A ticker thread schedules ``rps`` requests a second into a queue as long as the worker pool;
a tick that finds the queue full is skipped (counted), so a slow or dead service never builds an
unbounded backlog. Every request has a timeout. 16 workers keep 20 req/s even when each request
takes 400 ms (the latency regression), so a slow version does not also look like a traffic drop.
One summary line on exit (also on Ctrl-C).
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import http.client
import queue
import random
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# (route, weight): mostly browsing, some checkouts.
ROUTES = (("/api/items", 0.8), ("/api/checkout", 0.2))
LATENCY_SAMPLES = 20_000  # the summary's percentiles come from the last this-many requests


@dataclass
class LoadStats:
    started: float = field(default_factory=time.monotonic)
    stopped: float | None = None
    statuses: collections.Counter[int] = field(default_factory=collections.Counter)
    failures: collections.Counter[str] = field(default_factory=collections.Counter)  # no HTTP answer
    skipped: int = 0
    latencies_ms: collections.deque[float] = field(
        default_factory=lambda: collections.deque(maxlen=LATENCY_SAMPLES)
    )

    @property
    def sent(self) -> int:
        return sum(self.statuses.values()) + sum(self.failures.values())

    @property
    def server_errors(self) -> int:
        return sum(count for status, count in self.statuses.items() if status >= 500)

    @property
    def failed(self) -> int:
        """Requests that got no HTTP answer at all (refused, reset, timed out)."""
        return sum(self.failures.values())

    @property
    def elapsed(self) -> float:
        return (self.stopped or time.monotonic()) - self.started

    def percentile_ms(self, fraction: float) -> float | None:
        if not self.latencies_ms:
            return None
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]

    def summary(self, target: str = "") -> str:
        elapsed = max(self.elapsed, 1e-9)
        statuses = " ".join(f"{status}={count}" for status, count in sorted(self.statuses.items())) or "none"
        failures = ", ".join(f"{name} {count}" for name, count in sorted(self.failures.items()))
        p50, p95 = self.percentile_ms(0.50), self.percentile_ms(0.95)
        latency = (
            f"p50 {p50:.0f} ms, p95 {p95:.0f} ms" if p50 is not None and p95 is not None else "no answers"
        )
        return (
            f"load{' on ' + target if target else ''}: {self.sent} requests in {elapsed:.1f} s "
            f"({self.sent / elapsed:.1f} req/s); status {statuses}; "
            f"no answer {self.failed}{' (' + failures + ')' if failures else ''}; "
            f"skipped {self.skipped}; latency {latency}"
        )


class LoadGenerator:
    """``rps`` requests a second to ``target`` from ``workers`` threads until ``stop()``."""

    def __init__(
        self,
        target: str,
        rps: float = 20.0,
        workers: int = 16,
        timeout: float = 5.0,
        routes: tuple[tuple[str, float], ...] = ROUTES,
    ) -> None:
        if not 0 < rps <= 1000:
            raise ValueError(f"rps must be between 0 and 1000 (got {rps})")
        if not 1 <= workers <= 64:
            raise ValueError(f"workers must be between 1 and 64 (got {workers})")
        self.target = target.rstrip("/")
        self.rps = rps
        self.workers = workers
        self.timeout = timeout
        self.paths = [route for route, _ in routes]
        self.weights = [weight for _, weight in routes]
        self.stats = LoadStats()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ticks: queue.Queue[str | None] = queue.Queue(maxsize=workers)
        self._threads: list[threading.Thread] = []

    def __enter__(self) -> LoadGenerator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> LoadGenerator:
        self.stats = LoadStats()
        self._threads = [threading.Thread(target=self._tick, name="load-ticker", daemon=True)]
        self._threads += [
            threading.Thread(target=self._work, name=f"load-{n}", daemon=True) for n in range(self.workers)
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> LoadStats:
        self._stop.set()
        ticker, workers = self._threads[:1], self._threads[1:]
        for thread in ticker:
            thread.join(timeout=self.timeout + 1)
        with contextlib.suppress(queue.Empty):  # what was not sent yet will not be
            while True:
                self._ticks.get_nowait()
        for _ in workers:  # one "stop" each: a waiting worker wakes only for work or this
            self._ticks.put_nowait(None)
        for thread in workers:
            thread.join(timeout=self.timeout + 1)
        with self._lock:
            if self.stats.stopped is None:
                self.stats.stopped = time.monotonic()
        return self.stats

    def _tick(self) -> None:
        rng = random.Random()
        begun = time.monotonic()
        n = 0
        while not self._stop.is_set():
            n += 1
            # Absolute schedule: a late tick does not shift every later one.
            delay = begun + n / self.rps - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                return
            path = rng.choices(self.paths, self.weights)[0]
            try:
                self._ticks.put_nowait(path)
            except queue.Full:
                with self._lock:
                    self.stats.skipped += 1

    def _work(self) -> None:
        # http.client on one kept-alive connection per worker: a GET costs the generator a quarter of
        # the CPU it costs through requests, which would otherwise be most of a demo stack's CPU
        target = urlsplit(self.target)
        connect = http.client.HTTPSConnection if target.scheme == "https" else http.client.HTTPConnection
        conn = connect(target.hostname or "127.0.0.1", target.port, timeout=self.timeout)
        while True:
            path = self._ticks.get()
            if path is None or self._stop.is_set():
                break
            started = time.perf_counter()
            try:
                conn.request("GET", target.path + path)
                response = conn.getresponse()
                response.read()
            except (OSError, http.client.HTTPException) as exc:
                conn.close()  # the next request connects again
                with self._lock:
                    self.stats.failures[type(exc).__name__] += 1
                continue
            elapsed_ms = (time.perf_counter() - started) * 1000
            with self._lock:
                self.stats.statuses[response.status] += 1
                self.stats.latencies_ms.append(elapsed_ms)
        conn.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo_service.load", description=__doc__.split("\n")[0])
    parser.add_argument("--target", required=True, help="service base URL, e.g. http://127.0.0.1:8701")
    parser.add_argument("--rps", type=float, default=20.0, help="requests per second (default 20)")
    parser.add_argument("--duration", type=float, help="seconds to run (default: until SIGTERM/Ctrl-C)")
    parser.add_argument("--workers", type=int, default=16, help="worker threads (default 16)")
    parser.add_argument("--timeout", type=float, default=5.0, help="per-request timeout in seconds")
    args = parser.parse_args(argv)
    if args.duration is not None and args.duration <= 0:
        print("demo load: --duration must be positive", file=sys.stderr)
        return 2
    try:
        generator = LoadGenerator(args.target, args.rps, args.workers, args.timeout)
    except ValueError as exc:
        print(f"demo load: {exc}", file=sys.stderr)
        return 2
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    generator.start()
    deadline = None if args.duration is None else time.monotonic() + args.duration
    while not done.wait(0.2):
        if deadline is not None and time.monotonic() >= deadline:
            break
    stats = generator.stop()
    print(stats.summary(generator.target), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
