"""A stand-in Prometheus for the inbound tests: answers ``/api/v1/query_range`` with one series per
query, its values a function of time; the raw samples of a recording rule (a range vector at an
instant, ``/api/v1/query``, one sample a second: what the source counts as real samples); the metric
names of the selector (the recording rules only: no raw counters, so the runs are judged on points);
and ``/-/ready``. An incident run or a deployment run collects a window without a real Prometheus
(the live tests use Debian's binary)."""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

from livestack.processes import duration_seconds

Profile = Callable[[float], dict[str, float]]
"""Unix seconds -> the canonical metrics' values at that moment."""

RULES = {
    "service:http_requests_errors:ratio_rate5s": "error_rate",
    "service:http_request_duration_seconds:p95_rate5s": "latency_p95_ms",
    "service:http_requests:rate5s": "requests_per_second",
    "service:process_cpu_seconds:max_rate5s": "cpu_utilization",
    "service:process_resident_memory_bytes:max_ratio_limit": "memory_utilization",
    "service:service_restarts:sum": "pod_restarts",
}


def healthy(_: float) -> dict[str, float]:
    return {
        "error_rate": 0.0,
        "latency_p95_ms": 48.0,
        "requests_per_second": 20.0,
        "cpu_utilization": 0.02,
        "memory_utilization": 0.3,
        "pod_restarts": 0.0,
    }


def leak_from(onset: float, *, until: Callable[[], float | None] = lambda: None) -> Profile:
    """Healthy before ``onset``; then memory at 95 % of its limit and most requests failing, until
    the moment ``until()`` returns (a rollback), healthy again after it."""

    def profile(t: float) -> dict[str, float]:
        values = healthy(t)
        # a little noise so the rank tests see distributions, not constants
        values["latency_p95_ms"] += 0.5 * math.sin(t * 1.7)
        values["requests_per_second"] += 0.2 * math.sin(t * 0.9)
        stop = until()
        if t >= onset and (stop is None or t < stop):
            values.update(error_rate=0.8 + 0.01 * math.sin(t), memory_utilization=0.95)
        return values

    return profile


class PrometheusStub:
    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        self.queries = 0
        self.failing = False
        """While True every query is answered 503 (Prometheus down for the tests of faults)."""
        self.gate = threading.Event()
        self.gate.set()
        """Cleared, every query waits until it is set again (a look caught mid-fetch)."""
        self.held = 0
        """Queries waiting at the gate now."""
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self, status: int, doc: Any) -> None:
                data = json.dumps(doc).encode() if not isinstance(doc, bytes) else doc
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _serve(self, body: bytes) -> None:
                parts = urlsplit(self.path)
                if parts.path == "/-/ready":
                    return self._answer(200, b"Prometheus Server is Ready.\n")
                if parts.path == "/api/v1/label/__name__/values":
                    return self._answer(200, {"status": "success", "data": sorted(RULES)})
                if parts.path not in ("/api/v1/query_range", "/api/v1/query"):
                    return self._answer(404, {"status": "error", "error": "not here"})
                if not outer.gate.is_set():
                    outer.held += 1
                    outer.gate.wait()
                    outer.held -= 1
                if outer.failing:
                    return self._answer(503, {"status": "error", "errorType": "unavailable", "error": "down"})
                params = {k: v[0] for k, v in parse_qs(parts.query).items()}
                params.update({k: v[0] for k, v in parse_qs(body.decode()).items()})
                outer.queries += 1
                if parts.path == "/api/v1/query":
                    return self._answer(200, outer.samples(params))
                self._answer(200, outer.matrix(params))

            def do_GET(self) -> None:
                self._serve(b"")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self._serve(self.rfile.read(length) if length else b"")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        serve = self.server.serve_forever
        threading.Thread(target=serve, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def matrix(self, params: dict[str, str]) -> dict[str, Any]:
        query = params.get("query", "")
        metric = next((name for rule, name in RULES.items() if rule in query), None)
        start, end, step = float(params["start"]), float(params["end"]), float(params["step"])
        values = []
        t = start
        while metric is not None and t <= end + 1e-9:
            value = self.profile(t)[metric]
            if metric == "latency_p95_ms" and not query.strip().startswith("1000"):
                value /= 1000.0  # the bare rule is in seconds
            values.append([round(t, 3), repr(float(value))])
            t += step
        result = [{"metric": {"service": "demo-service"}, "values": values}] if values else []
        return {"status": "success", "data": {"resultType": "matrix", "result": result}}

    def samples(self, params: dict[str, str]) -> dict[str, Any]:
        """A range vector ``rule{...}[Ns]`` at ``time``: one raw sample a second."""
        query = params.get("query", "")
        metric = next((name for rule, name in RULES.items() if query.startswith(rule)), None)
        result = []
        if metric is not None and query.endswith("]"):
            end = float(params["time"])
            span = duration_seconds(query[query.rindex("[") + 1 : -1])
            values = [[round(t, 3), repr(float(self.profile(t)[metric]))] for t in _seconds(end - span, end)]
            result = [{"metric": {"service": "demo-service"}, "values": values}]
        return {"status": "success", "data": {"resultType": "matrix", "result": result}}

    def stop(self) -> None:
        self.gate.set()
        self.server.shutdown()
        self.server.server_close()


def _seconds(start: float, end: float) -> list[float]:
    """Whole seconds in (start, end]."""
    first = math.floor(start) + 1
    return [float(t) for t in range(first, math.floor(end) + 1)]


def services_yaml(
    path: Path, prometheus_url: str, *, executor: str = "", service: str = "demo-service"
) -> Path:
    """A services file naming ``service`` with the stub as its Prometheus and short windows."""
    path.write_text(
        "services:\n"
        f"  {service}:\n"
        "    environment: live-demo\n"
        "    windows: {baseline_s: 20, verify_s: 10, post_action_s: 0.2}\n"
        f"    prometheus: {{url: '{prometheus_url}', profile: demo-service, "
        f"selector: 'service=\"{service}\"', scrape_interval_s: 1}}\n" + executor,
        encoding="utf-8",
    )
    return path
