"""Request latency of the HTTP API on the real server (``streamlit run server.py``, loopback).

Seeds N paused executions (the memory-leak scenario, each waiting for one approval) through the
embedded engine on a private data directory, starts the console with a token, then times N
sequential requests of each kind, first with a new connection per request, then over one
keep-alive connection: ``GET /api/health`` (the first one probes, later ones within 5 s are the
cached report), ``GET /api/approvals`` (up to 200 pending), ``GET /api/executions/{id}`` and
``POST /api/approvals/{id}/decision`` (a different approval each time: the vote, the audit row and
the engine's resume, committed before the answer).

On one keep-alive connection each request after the first waits ~40 ms for the client's delayed
ACK: Streamlit 1.67 binds the listening socket itself with ``proto`` 0, so asyncio never sets
TCP_NODELAY on accepted connections (the same cause as uvicorn issue #3149). Streamlit's own
``/_stcore/health`` shows the same 40 ms; the API's own time is the first table.

    .venv/bin/python benchmarks/bench_api.py [--requests 100]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))

TOKEN = "bench-token-0123456789abcdef"


def seed(data_dir: Path, count: int) -> list[tuple[str, str]]:
    """(approval id, execution id) of ``count`` paused executions."""
    from console.engines.embedded.runner import EmbeddedEngine
    from console.settings import Settings

    engine = EmbeddedEngine(Settings(data_dir=data_dir), synchronous=True)
    pairs = []
    for _ in range(count):
        execution = engine.run_sync(scenario="memory-leak", triggered_by="bench")
        approval = engine.store.approvals.for_execution(execution.id)
        pairs.append((approval["id"], execution.id))
    engine.close()
    engine.store.close()
    return pairs


def timed(call, count: int) -> list[float]:
    out = []
    for i in range(count):
        started = time.perf_counter()
        response = call(i)
        out.append((time.perf_counter() - started) * 1000)
        assert response.status_code in (200, 503), response.text
    return out


def row(name: str, values: list[float]) -> str:
    ordered = sorted(values)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return f"| {name} | {statistics.median(values):.1f} ms | {p95:.1f} ms | {ordered[0]:.1f} ms |"


def measure(url: str, pairs: list[tuple[str, str]], n: int, keep_alive: bool) -> dict[str, list[float]]:
    """Latencies of each kind of request; ``keep_alive``: one session, else a new connection each."""
    import requests

    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {TOKEN}"
    if not keep_alive:
        session.headers["Connection"] = "close"
    pending = session.get(f"{url}/api/approvals?limit=200").json()["count"]
    return {
        "GET /api/health": timed(lambda i: session.get(f"{url}/api/health"), n),
        f"GET /api/approvals ({pending} pending)": timed(
            lambda i: session.get(f"{url}/api/approvals?limit=200"), n
        ),
        "GET /api/executions/{id}": timed(lambda i: session.get(f"{url}/api/executions/{pairs[i][1]}"), n),
        "POST /api/approvals/{id}/decision": timed(
            lambda i: session.post(
                f"{url}/api/approvals/{pairs[i][0]}/decision",
                json={"decision": "approve", "comment": "ok"},
            ),
            n,
        ),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=100)
    args = parser.parse_args()
    from tests.browser_support import start_console_server

    n = args.requests
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        started = time.perf_counter()
        pairs = seed(workdir / "data-bench", 2 * n)
        took = time.perf_counter() - started
        print(f"seeded {len(pairs)} paused executions in {took:.1f} s", file=sys.stderr)
        server = start_console_server(
            workdir,
            "bench",
            CONSOLE_API_TOKEN=TOKEN,
            CONSOLE_API_TOKEN_ROLE="approver",
            CONSOLE_API_RATE_PER_MINUTE="100000",
            CONSOLE_API_BURST="100000",
        )
        try:
            fresh = measure(server.url, pairs[:n], n, keep_alive=False)
            kept = measure(server.url, pairs[n:], n, keep_alive=True)
        finally:
            server.stop()
    for title, results in (("a new connection per request", fresh), ("one keep-alive connection", kept)):
        print(f"\n| request (n={n}, {title}, loopback) | median | p95 | min |")
        print("|---|---|---|---|")
        for name, values in results.items():
            print(row(name, values))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
