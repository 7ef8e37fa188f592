"""The demo service's figures: deploy and rollback times, requests lost in rolling deploys, and how
long the leaky version takes to reach 90 % of its memory limit. Real processes on loopback.

    .venv/bin/python benchmarks/bench_demo_service.py                 # 10 deploys at 20 req/s, 3 leaks
    .venv/bin/python benchmarks/bench_demo_service.py --deploys 30 --rps 100 --leaks 1

"Deploy time" is from sending POST /deploy to the first answer of the new version on the service
port (a poller asks ``GET /`` every 10 ms); the POST itself returns once the old instance has also
drained and stopped, which is the second figure.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from demo_service.load import LoadGenerator  # noqa: E402
from demo_service.testing import DemoStack, start_demo_stack  # noqa: E402

MB = 1024 * 1024
HEALTHY = ("v1.0.1", "v1.1.0-fast", "v1.0.0")


def served_version(url: str) -> str | None:
    try:
        return requests.get(url + "/", timeout=2).json()["version"]
    except (requests.RequestException, ValueError, KeyError):
        return None


def timed_switch(stack: DemoStack, action: str, version: str) -> tuple[float, float]:
    """(ms to the new version's first answer, ms for the API call to return)."""
    result: dict[str, float] = {}

    def call() -> None:
        began = time.monotonic()
        if action == "deploy":
            stack.deploy(version, by="bench")
        else:
            stack.rollback(by="bench", to=version)
        result["api"] = (time.monotonic() - began) * 1000

    began = time.monotonic()
    thread = threading.Thread(target=call)
    thread.start()
    while served_version(stack.service_url) != version:
        if time.monotonic() - began > 30:
            raise SystemExit(f"{version} was not serving after 30 s")
        time.sleep(0.01)
    serving = (time.monotonic() - began) * 1000
    thread.join(timeout=60)
    return serving, result["api"]


def describe(values: list[float], unit: str = "ms") -> str:
    digits = 1 if unit == "s" else 0
    median, worst = statistics.median(values), max(values)
    return f"median {median:.{digits}f} {unit}, max {worst:.{digits}f} {unit} (n={len(values)})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deploys", type=int, default=10)
    parser.add_argument("--rps", type=float, default=20.0)
    parser.add_argument("--leaks", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-demo-") as tmp:
        stack = start_demo_stack(Path(tmp) / "rolling")
        try:
            serving_ms, api_ms = [], []
            with LoadGenerator(stack.service_url, rps=args.rps, workers=8) as load:
                time.sleep(1)
                for n in range(args.deploys):
                    serving, api = timed_switch(stack, "deploy", HEALTHY[n % len(HEALTHY)])
                    serving_ms.append(serving)
                    api_ms.append(api)
                    time.sleep(0.5)
                time.sleep(0.5)
            stats = load.stats
        finally:
            stack.stop()
        lost = stats.failed + stats.server_errors
        print(f"deploy: request -> new version serving   {describe(serving_ms)}")
        print(f"deploy: request -> API answer (old gone)  {describe(api_ms)}")
        print(
            f"rolling deploys under load: {args.deploys} deploys at {args.rps:g} req/s, "
            f"{stats.sent} requests, lost {lost} (no answer {stats.failed}, 5xx {stats.server_errors})"
        )

        leak_s, rollback_ms = [], []
        for n in range(args.leaks):
            stack = start_demo_stack(Path(tmp) / f"leak-{n}", load_rps=20)
            try:
                time.sleep(1)
                stack.deploy("v1.2.0-leak", by="bench")
                began = time.monotonic()
                while (stack.metric("process_resident_memory_bytes") or 0) < 0.9 * 256 * MB:
                    if time.monotonic() - began > 60:
                        raise SystemExit("the leak did not reach 90 % in 60 s")
                    time.sleep(0.1)
                leak_s.append(time.monotonic() - began)
                serving, _ = timed_switch(stack, "rollback", "v1.0.0")
                rollback_ms.append(serving)
            finally:
                stack.stop()
        if leak_s:
            print(f"rollback: request -> previous version serving {describe(rollback_ms)}")
            print(f"leak: deploy answered -> RSS at 90 % of 256 MB under 20 req/s {describe(leak_s, 's')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
