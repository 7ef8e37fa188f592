"""Fixtures of the telemetry tests: a services file writer, local HTTP servers, and real
Prometheus processes (Debian's binary) with backfilled or scraped data."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from livestack.processes import missing_reason


def require(binary: str) -> None:
    """Skip (with the reason printed in the summary) when a binary cannot run here."""
    reason = missing_reason(binary)
    if reason:
        print(f"SKIP: {reason}")
        pytest.skip(reason)


@pytest.fixture
def services_file(tmp_path: Path) -> Callable[[str], Path]:
    def write(text: str) -> Path:
        path = tmp_path / "services.yaml"
        path.write_text(text, encoding="utf-8")
        return path

    return write


Handler = Callable[[BaseHTTPRequestHandler, str, bytes], tuple[int, dict[str, str], bytes]]


class LocalServer:
    """A loopback HTTP server answering every request through ``handler(request, method, body)``.
    ``requests_seen`` records (method, path, headers, body) for the assertions."""

    def __init__(self, handler: Handler) -> None:
        self.requests_seen: list[tuple[str, str, dict[str, str], bytes]] = []
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            def _serve(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests_seen.append((method, self.path, dict(self.headers), body))
                status, headers, payload = handler(self, method, body)
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up first (the timeout tests)

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def local_server() -> Iterator[Callable[[Handler], LocalServer]]:
    started: list[LocalServer] = []

    def start(handler: Handler) -> LocalServer:
        server = LocalServer(handler)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def json_body(doc: Any) -> bytes:
    return json.dumps(doc).encode()
