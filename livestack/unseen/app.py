"""The unseen service: five handlers, each with its own latency and error behaviour.

    python -m livestack.unseen.app --port 8801 --version v1 --behaviour '{"errors": {"/api/cart": 0.25}}'

Behaviour (JSON, every key optional):

- ``latency_ms``: base latency of every handler (default 40; log-normal, sigma 0.25);
- ``latency_factor``: multiplies every handler's base latency (a faster version: 0.7);
- ``extra_ms``: ``{handler: ms}`` added to one handler (``"*"``: every handler);
- ``errors``: ``{handler: ratio}`` of requests answered 500 (``"*"``: every handler);
- ``errors_ramp``: ``[ratio, seconds]``: every handler's error ratio rises linearly from 0 after start
  to ``ratio`` at ``seconds``, then stays;
- ``leak_mb_per_s``: memory allocated, touched and kept every second;
- ``ballast_mb``: memory allocated once at start (a heavier but healthy version);
- ``error_at_s``: one 500 on ``/api/items`` this many seconds after start.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram, generate_latest

HANDLERS = ("/api/items", "/api/cart", "/api/checkout", "/api/search", "/api/user")
REQUESTS = Counter("http_requests", "HTTP requests served", ["handler", "code", "method"])
DURATION = Histogram("http_request_duration_seconds", "Time to serve an HTTP request", ["handler"])
MB = 1024 * 1024


class Service:
    def __init__(self, version: str, behaviour: dict[str, Any]) -> None:
        self.version = version
        self.behaviour = behaviour
        self.started = time.monotonic()
        self.kept: list[bytearray] = []
        self.lock = threading.Lock()
        self.single_error_done = False
        self.rng = random.Random()
        if behaviour.get("ballast_mb"):
            self.kept.append(self._touched(int(behaviour["ballast_mb"] * MB)))
        if behaviour.get("leak_mb_per_s"):
            threading.Thread(target=self._leak, daemon=True).start()

    @staticmethod
    def _touched(size: int) -> bytearray:
        block = bytearray(size)
        for i in range(0, size, 4096):  # touch every page: resident, not just reserved
            block[i] = 1
        return block

    def _leak(self) -> None:
        step = float(self.behaviour["leak_mb_per_s"]) * MB / 10
        while True:
            time.sleep(0.1)
            with self.lock:
                self.kept.append(self._touched(int(step)))

    def _pick(self, table: dict[str, float] | None, handler: str) -> float:
        table = table or {}
        return float(table.get(handler, table.get("*", 0.0)))

    def latency_s(self, handler: str) -> float:
        base = float(self.behaviour.get("latency_ms", 40.0)) * float(
            self.behaviour.get("latency_factor", 1.0)
        )
        median = base + self._pick(self.behaviour.get("extra_ms"), handler)
        return math.exp(self.rng.gauss(math.log(median / 1000.0), 0.25))

    def fails(self, handler: str) -> bool:
        ratio = self._pick(self.behaviour.get("errors"), handler)
        ramp = self.behaviour.get("errors_ramp")
        elapsed = time.monotonic() - self.started
        if ramp:
            ratio = max(ratio, float(ramp[0]) * min(1.0, elapsed / float(ramp[1])))
        at = self.behaviour.get("error_at_s")
        if at is not None and handler == HANDLERS[0] and elapsed >= float(at):
            with self.lock:
                if not self.single_error_done:
                    self.single_error_done = True
                    return True
        return self.rng.random() < ratio


def make_handler(service: Service) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, code: int, body: bytes, content_type: str = "application/json") -> None:
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            path = self.path.split("?")[0]
            if path == "/metrics":
                self._send(200, generate_latest(), CONTENT_TYPE_LATEST)
                return
            if path == "/":
                self._send(200, json.dumps({"version": service.version}).encode())
                return
            if path not in HANDLERS:
                self._send(404, b'{"error": "not found"}')
                return
            began = time.perf_counter()
            time.sleep(service.latency_s(path))
            code = 500 if service.fails(path) else 200
            body = b'{"error": "internal"}' if code == 500 else b'{"ok": true}'
            self._send(code, body)
            DURATION.labels(path).observe(time.perf_counter() - began)
            REQUESTS.labels(path, str(code), "get").inc()

        def log_message(self, *args: Any) -> None:
            pass

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the unseen service")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--version", default="v1")
    parser.add_argument("--behaviour", default="{}", help="JSON, see the module docstring")
    args = parser.parse_args(argv)
    service = Service(args.version, json.loads(args.behaviour))
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(service))
    server.daemon_threads = True
    server.serve_forever(poll_interval=0.1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
