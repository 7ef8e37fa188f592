"""Telemetry sources: Prometheus query_range latency and the JSON-lines reader on a large file.

1. A 6-metric snapshot's metrics over a 1-hour window at 1 s resolution (3,600 points per
   series) through ``PrometheusSource.fetch``, against Debian's real Prometheus holding an hour
   of backfilled data for the demo-service profile's six recording-rule series: median and max
   of N runs (each run is six sequential query_range calls plus parsing).
2. ``JsonlLogSource.read`` of the last minute of a 200k-line file (1 line/s, ~40 MB): median of
   N runs, and the whole file for comparison.

    .venv/bin/python benchmarks/bench_telemetry.py          # N=20
    .venv/bin/python benchmarks/bench_telemetry.py -n 50
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from console.telemetry.config import PrometheusConfig  # noqa: E402
from console.telemetry.logs import JsonlLogSource  # noqa: E402
from console.telemetry.prometheus import PrometheusSource  # noqa: E402
from console.telemetry.times import format_ts  # noqa: E402
from livestack.processes import backfill, missing_reason, openmetrics_text, start_prometheus  # noqa: E402

RULES = (
    "service:http_requests_errors:ratio_rate5s",
    "service:http_request_duration_seconds:p95_rate5s",
    "service:http_requests:rate5s",
    "service:process_cpu_seconds:max_rate5s",
    "service:process_resident_memory_bytes:max_ratio_limit",
    "service:service_restarts:sum",
)


def bench_prometheus(runs: int, work: Path) -> None:
    for binary in ("prometheus", "promtool"):
        reason = missing_reason(binary)
        if reason:
            print(f"prometheus: skipped ({reason})")
            return
    end = int(time.time()) - 600
    start = end - 3600
    series = [
        (
            rule,
            {"service": "demo-service"},
            [(t, 0.5 + 0.4 * math.sin(t / 60 + k)) for t in range(start, end + 1)],
        )
        for k, rule in enumerate(RULES)
    ]
    began = time.perf_counter()
    backfill(openmetrics_text(series), work / "data")
    print(f"backfilled 6 series x {end - start + 1:,} points in {time.perf_counter() - began:.1f} s")
    with start_prometheus(work, {}) as prom:
        source = PrometheusSource(
            PrometheusConfig(url=prom.url, selector='service="demo-service"', scrape_interval_s=1.0)
        )
        first = source.fetch(start, end, step_s=1)
        assert len(first.metrics) == 6 and all(len(p) >= 3600 for p in first.metrics.values()), first.notes
        times = []
        for _ in range(runs):
            began = time.perf_counter()
            source.fetch(start, end, step_s=1)
            times.append(time.perf_counter() - began)
    print(
        f"prometheus: 6 metrics x 3,601 points (1 h at 1 s) through PrometheusSource.fetch: "
        f"median {statistics.median(times) * 1000:.1f} ms, max {max(times) * 1000:.1f} ms over {runs} runs"
    )


def bench_jsonl(runs: int, work: Path) -> None:
    path = work / "demo-service.log"
    t0 = 1_800_000_000
    lines = 200_000
    with path.open("w", encoding="utf-8") as fh:
        for i in range(lines):
            fh.write(
                json.dumps(
                    {"ts": format_ts(t0 + i), "level": "ERROR" if i % 97 == 0 else "INFO",
                     "message": f"GET /items/{i % 1000} 200 in {i % 250} ms", "service": "demo-service",
                     "version": "v1.2.0", "pid": 4242, "route": "/items/{id}", "status": 200,
                     "duration_ms": i % 250}
                )
                + "\n"
            )  # fmt: skip
    size = path.stat().st_size
    source = JsonlLogSource(path, max_lines=1_000_000)
    end = t0 + lines - 1
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        result = source.read(end - 59, end)
        times.append(time.perf_counter() - began)
    assert len(result.records) == 60
    began = time.perf_counter()
    whole = source.read(t0, end)
    whole_s = time.perf_counter() - began
    print(
        f"jsonl: last minute of {lines:,} lines ({size / 1e6:.0f} MB): "
        f"median {statistics.median(times) * 1000:.2f} ms over {runs} runs; "
        f"the whole file ({len(whole.records):,} records) {whole_s:.2f} s"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--runs", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        bench_prometheus(args.runs, Path(tmp) / "prom")
        bench_jsonl(args.runs, Path(tmp))


if __name__ == "__main__":
    main()
