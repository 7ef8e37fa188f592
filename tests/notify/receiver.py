"""A local webhook receiver for the notification tests: an ``http.server`` on 127.0.0.1 that records
every POST (path, headers, JSON body) and answers with programmed statuses (200 by default)."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.waiting import wait_until


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    raw: bytes
    at: float

    @property
    def body(self) -> Any:
        return json.loads(self.raw.decode("utf-8"))


class Receiver:
    """``Receiver().then(500, 200)``: the next answers, in order; 200 after them. ``hold=True``
    keeps every answer until the receiver closes (a receiver that never answers in time)."""

    def __init__(self, default: int = 200, *, hold: bool = False) -> None:
        self.default = default
        self.hold = hold
        self.received: list[Received] = []
        self.answered = 0
        self._answers: deque[tuple[int, dict[str, str]]] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    def __enter__(self) -> Receiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def then(self, *codes: int, headers: dict[str, str] | None = None) -> Receiver:
        with self._lock:
            self._answers.extend((code, dict(headers or {})) for code in codes)
        return self

    def bodies(self, path: str | None = None) -> list[Any]:
        return [r.body for r in self.received if path is None or r.path == path]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        """The requests received, once there are ``count`` of them (the test fails otherwise)."""
        wait_until(lambda: len(self.received) >= count, timeout, step=0.02, what=f"{count} request(s)")
        return list(self.received)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.received.append(
                        Received(
                            self.path, {k.lower(): v for k, v in self.headers.items()}, raw, time.monotonic()
                        )
                    )
                    code, headers = (
                        receiver._answers.popleft() if receiver._answers else (receiver.default, {})
                    )
                if receiver.hold:
                    receiver._stop.wait()
                body = b"ok" if code < 400 else f"answer {code}".encode()  # Slack answers in plain text
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", str(len(body)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass
                with receiver._lock:
                    receiver.answered += 1

        return Handler


def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/hook"
