"""How much time the LLM step adds, and how long its fallback can take at worst.

Runs the real ``together`` client over HTTP against the local fake chat-completions server
(tests/llm/fake_llm.py), so the figures are the console's own overhead (prompt building, SDK,
HTTP on loopback, validation, guardrails), not a model's generation time.

    .venv/bin/python benchmarks/bench_llm.py            # N=200, fallback budget 2 s
    .venv/bin/python benchmarks/bench_llm.py -n 500 --timeout 20
"""

from __future__ import annotations

import argparse
import logging
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from console.domain.models import (  # noqa: E402
    Classification,
    Decision,
    Deployment,
    Direction,
    LogPattern,
    LogRecord,
    MetricResult,
    RecommendedAction,
    Risk,
    Severity,
    Snapshot,
    Verdict,
)
from console.loop.narrative import build_messages, summarize  # noqa: E402
from console.settings import Secret, Settings  # noqa: E402
from tests.llm.fake_llm import FakeLLM, closed_port, slow, status, trickle  # noqa: E402

KEY = "bench-key"
T0 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def make_inputs(log_lines: int, patterns: int) -> tuple[Snapshot, Decision]:
    logs = [
        LogRecord(
            T0 + timedelta(seconds=i), "ERROR" if i % 50 == 0 else "INFO", f"request {i} took {i % 97} ms"
        )
        for i in range(log_lines)
    ]
    times = [T0.timestamp() + 60 * k for k in range(-30, 30)]
    snapshot = Snapshot(
        Deployment("dep-1", "checkout", "v2", T0, "v1"),
        {f"metric_{m}": (times, [float(k % 7) for k in range(60)]) for m in range(8)},
        logs,
    )
    decision = Decision(
        verdict=Verdict.ROLLBACK,
        severity=Severity.HIGH,
        confidence=0.9,
        summary="error_rate up",
        root_cause="db timeouts",
        actions=[RecommendedAction("rollback_deployment", Risk.HIGH, "guard")],
        metrics=[
            MetricResult(f"metric_{m}", Classification.HIGH, Direction.INCREASE, 1.0, 3.0, 0.001, 0.8, "up")
            for m in range(8)
        ],
        log_patterns=[
            LogPattern(
                f"template {p} <*> failed after <*> ms", "ERROR", p, p * 3, "surging", "database", "ex"
            )
            for p in range(patterns)
        ],
        analyzer="rules",
        rules_verdict=Verdict.ROLLBACK,
        guards=["error_rate>=0.2"],
    )
    return snapshot, decision


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def timed(fn) -> tuple[object, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def cold_start() -> float:
    """First summarize() in a fresh process, SDK import included (what a Kestra task pays)."""
    code = (
        f"import sys,time; sys.path.insert(0, {str(ROOT)!r})\n"
        "from benchmarks.bench_llm import make_inputs, KEY\n"
        "from tests.llm.fake_llm import FakeLLM\n"
        "from console.settings import Settings, Secret\n"
        "snap, dec = make_inputs(2000, 20)\n"
        "with FakeLLM(api_key=KEY) as f:\n"
        "    s = Settings(together_api_key=Secret(KEY), llm_base_url=f.url)\n"
        "    from console.loop.narrative import summarize\n"
        "    t = time.perf_counter(); out = summarize(snap, dec, s); e = time.perf_counter() - t\n"
        "    assert out.analyzer.startswith('llm:'), out.notes\n"
        "    print(e)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return float(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=200, help="successful calls to time")
    parser.add_argument("--timeout", type=float, default=2.0, help="LLM budget for the fallback runs (s)")
    parser.add_argument("--log-lines", type=int, default=20000)
    parser.add_argument("--patterns", type=int, default=40)
    args = parser.parse_args()
    logging.getLogger("console.loop.narrative").setLevel(logging.ERROR)  # the notes are printed below

    snapshot, decision = make_inputs(args.log_lines, args.patterns)
    print(f"inputs: {args.log_lines} log lines, {args.patterns} log patterns, 8 metrics")

    builds = [timed(lambda: build_messages(snapshot, decision))[1] for _ in range(50)]
    size = sum(len(m["content"]) for m in build_messages(snapshot, decision))
    print(f"prompt build        median {ms(statistics.median(builds))}  p95 {ms(pct(builds, 0.95))}", end="")
    print(f"  ({size} chars)")

    with FakeLLM(api_key=KEY) as fake:
        settings = Settings(
            together_api_key=Secret(KEY), llm_base_url=fake.url, llm_timeout_s=args.timeout, llm_max_retries=1
        )
        out = summarize(snapshot, decision, settings)  # warm the SDK's lazy imports
        assert out.analyzer.startswith("llm:"), out.notes
        times = []
        for _ in range(args.n):
            out, elapsed = timed(lambda: summarize(snapshot, decision, settings))
            assert out.analyzer.startswith("llm:"), out.notes
            times.append(elapsed)
        print(
            f"summarize (success) median {ms(statistics.median(times))}  p95 {ms(pct(times, 0.95))}"
            f"  max {ms(max(times))}  over N={args.n}"
        )
        colds = [cold_start() for _ in range(3)]
        print(
            f"cold start (fresh process: SDK import + client + first call) "
            f"min {ms(min(colds))}  median {ms(statistics.median(colds))}  over 3"
        )

        print(f"\nfallback worst cases (budget llm_timeout_s={args.timeout:g} s):")

        def fallback(label: str, s: Settings, *behaviours, default=None) -> None:
            fake.reset(default=default)
            fake.then(*behaviours)
            out, elapsed = timed(lambda: summarize(snapshot, decision, s))
            assert out.analyzer == "rules", label
            print(f"  {label:<44} {ms(elapsed)}  requests={len(fake.requests):<2} note: {out.notes[-1]}")
            fake.reset(default=None)

        from tests.llm.fake_llm import valid

        ok = valid()
        fallback("slow server (beyond the budget)", settings, default=slow(args.timeout * 5))
        fallback("trickling server (1 byte / 100 ms)", settings, default=trickle(0.1))
        refused = replace(settings, llm_base_url=f"http://127.0.0.1:{closed_port()}")
        fallback("connection refused, max_retries=1", refused, default=ok)
        fallback("connection refused, max_retries=3", replace(refused, llm_max_retries=3), default=ok)
        fallback("429 storm, Retry-After 1 s, max_retries=1", settings, default=status(429, 1))
        fallback(
            "429 storm, Retry-After 0.5 s, max_retries=3",
            replace(settings, llm_max_retries=3),
            default=status(429, 0.5),
        )
        fallback(
            "429 storm, no Retry-After, max_retries=3",
            replace(settings, llm_max_retries=3),
            default=status(429),
        )
        fallback("429 with Retry-After 60 s (beyond budget)", settings, default=status(429, 60))
        fallback("503 storm, max_retries=3", replace(settings, llm_max_retries=3), default=status(503))
        fallback("401 bad key", replace(settings, together_api_key=Secret("wrong")), default=ok)


if __name__ == "__main__":
    main()
