"""Local HTTP servers for the executor tests (loopback, free port from the OS, stopped after use).

- :class:`FakeDeployer` follows the deployer API of CONTRACTS.md ("The demo service") exactly:
  the paths, the bearer token compared in constant time, the JSON shapes, the error codes. It keeps
  versions in memory instead of running processes (the real deployer is another branch's work), and
  has fault switches a test turns on (an error answer, a rollback that changes nothing, a slow
  answer, an instance that never gets ready).
- :func:`serve` runs any ``handler(Request) -> Reply`` (the webhook receiver).
"""

from __future__ import annotations

import hmac
import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

SERVICE = "demo-service"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body or b"null")


@dataclass
class Reply:
    status: int
    body: Any = None
    """A dict/list is sent as JSON, a str as text."""
    delay_s: float = 0.0


class _Server(ThreadingHTTPServer):
    daemon_threads = True


@contextmanager
def serve(handler: Callable[[Request], Reply]) -> Iterator[str]:
    """Run ``handler`` behind an HTTP server on 127.0.0.1; yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def _handle(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            request = Request(
                self.command,
                parts.path,
                parse_qs(parts.query),
                {k.lower(): v for k, v in self.headers.items()},
                self.rfile.read(length) if length else b"",
            )
            reply = handler(request)
            if reply.delay_s:
                time.sleep(reply.delay_s)
            if reply.body is None:
                payload, ctype = b"", "application/json"
            elif isinstance(reply.body, str):
                payload, ctype = reply.body.encode(), "text/plain; charset=utf-8"
            else:
                payload, ctype = json.dumps(reply.body).encode(), "application/json"
            try:
                self.send_response(reply.status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (a timeout test)

        do_GET = do_POST = _handle

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


VERSIONS = {
    "v1.0.0": {"description": "first release", "behaviour": {}},
    "v1.1.0": {"description": "healthy", "behaviour": {}},
    "v1.2.0": {"description": "faster", "behaviour": {"latency_ms": -5}},
    "v1.2.0-leak": {"description": "leaks memory", "behaviour": {"leak_mb_per_s": 5}},
}


@dataclass
class FakeDeployer:
    """The deployer API of CONTRACTS.md over in-memory state. ``url`` and ``token`` are all a test
    needs to talk to it; the fault switches below stand in for what a real deployer does when an
    instance will not start, hangs or lies."""

    token: str
    version: str = "v1.1.0"
    previous_version: str | None = "v1.0.0"
    url: str = ""
    ready: bool = True
    deploying: bool = False
    restarts: int = 0
    records: list[dict[str, Any]] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    deployment_id: str | None = None
    switched_at: str | None = None
    started_at: str = field(default_factory=lambda: now())
    # fault switches
    error: tuple[int, str] | None = None
    """Answer every POST /rollback and /restart with this status and error line."""
    ignore_changes: bool = False
    """Answer 200 with a deployment record but keep running the same version."""
    never_ready: bool = False
    """After a change the new instance never reports ready."""
    answer_delay_s: float = 0.0
    """Sleep this long before answering a POST."""
    status_lag_polls: int = 0
    """The first N GET /status after a change still show the old version (the switch is slow)."""
    _lag: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    # -- the API -------------------------------------------------------------------------------------

    def handle(self, req: Request) -> Reply:
        with self._lock:
            self.requests.append(req)
        if req.method == "GET" and req.path == "/health":
            return Reply(200, {"ok": True, "service": SERVICE, "version": self.version})
        auth = req.headers.get("authorization", "")
        given = auth[7:] if auth.startswith("Bearer ") else ""
        if not hmac.compare_digest(given.encode(), self.token.encode()):
            return Reply(401, {"error": "missing or wrong bearer token"})
        route = (req.method, req.path)
        if route == ("GET", "/status"):
            return Reply(200, self._status())
        if route == ("GET", "/versions"):
            return Reply(200, {"versions": [{"version": v, **d} for v, d in VERSIONS.items()]})
        if route == ("GET", "/deployments"):
            try:
                limit = int(req.query.get("limit", ["20"])[0])
            except ValueError:
                return Reply(400, {"error": "limit must be a whole number"})
            return Reply(200, {"deployments": list(reversed(self.records))[:limit]})
        if req.method == "POST" and req.path in ("/deploy", "/rollback", "/restart"):
            try:
                body = req.json()
            except ValueError:
                return Reply(400, {"error": "body is not JSON"})
            if not isinstance(body, dict):
                return Reply(400, {"error": "body must be a JSON object"})
            key = req.headers.get("idempotency-key")
            if key:
                earlier = next((r for r in self.records if r.get("idempotency_key") == key), None)
                if earlier is not None:  # the same call again: the first one's answer, nothing done
                    return Reply(200, {"deployment": earlier, "replayed": True}, delay_s=self.answer_delay_s)
            return self._change(req.path[1:], body, key)
        return Reply(404, {"error": f"no route {req.method} {req.path}"})

    def _status(self) -> dict[str, Any]:
        with self._lock:
            shown = self._lag.pop(0) if self._lag else self.version
        return {
            "service": SERVICE,
            "version": shown,
            "previous_version": self.previous_version,
            "behaviour": VERSIONS.get(shown, {}).get("behaviour", {}),
            "pid": 4242,
            "started_at": self.started_at,
            "ready": self.ready,
            "restarts": self.restarts,
            "deploying": self.deploying,
            "deployment_id": self.deployment_id,
            "switched_at": self.switched_at,
        }

    def _change(self, kind: str, body: dict[str, Any], key: str | None = None) -> Reply:
        expected = body.get("expected_version")
        if expected is not None and expected != self.version:
            current = {
                "version": self.version,
                "deployment_id": self.deployment_id,
                "switched_at": self.switched_at,
            }
            error = f"the service runs {self.version}, not {expected} (expected_version): nothing was done"
            return Reply(409, {"error": error, "current": current})
        by = body.get("by")
        if not isinstance(by, str) or not by:
            return Reply(400, {"error": "'by' is required (a non-empty string)"})
        if kind == "deploy":
            target = body.get("version")
            if not isinstance(target, str):
                return Reply(400, {"error": "'version' is required (a string)"})
        elif kind == "rollback":
            target = body.get("to") or self.previous_version
            if target is not None and not isinstance(target, str):
                return Reply(400, {"error": "'to' must be a string"})
            if target is None:
                return Reply(404, {"error": "no previous version to roll back to"})
        else:
            target = self.version
        if target not in VERSIONS:
            return Reply(404, {"error": f"unknown version {target!r}"})
        if self.deploying:
            return Reply(409, {"error": "a deploy is already in progress"})
        if self.error is not None and kind != "deploy":
            status, line = self.error
            return Reply(status, {"error": line}, delay_s=self.answer_delay_s)
        old = self.version
        record_id = f"dep-{uuid.uuid4().hex[:8]}"
        if not self.ignore_changes or kind == "deploy":
            if kind != "restart":
                self.previous_version, self.version = old, target
                self.deployment_id, self.switched_at = record_id, now()
            self.started_at = now()
            self.ready = not self.never_ready
            if self.status_lag_polls:
                self._lag = [old] * self.status_lag_polls
        record = {
            "id": record_id,
            "service": SERVICE,
            "version": target,
            "previous_version": old,
            "by": by,
            "at": now(),
            "kind": kind,
            "behaviour": VERSIONS[target]["behaviour"],
            "idempotency_key": key,
        }
        self.records.append(record)
        return Reply(200, {"deployment": record, "replayed": False}, delay_s=self.answer_delay_s)

    def deploy(self, version: str, by: str = "alice") -> dict[str, Any]:
        """Deploy ``version`` through the API, as a person would (its record)."""
        import requests

        answer = requests.post(
            f"{self.url}/deploy",
            json={"version": version, "by": by},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=5,
        )
        assert answer.status_code == 200, answer.text
        return answer.json()["deployment"]

    def posts(self, path: str) -> list[dict[str, Any]]:
        """Bodies of the POSTs to ``path`` received so far."""
        return [r.json() for r in self.requests if r.method == "POST" and r.path == path]


@contextmanager
def run_deployer(token: str, **state: Any) -> Iterator[FakeDeployer]:
    deployer = FakeDeployer(token=token, **state)
    with serve(deployer.handle) as url:
        deployer.url = url
        yield deployer


def closed_port_url() -> str:
    """A loopback URL nothing listens on (the OS gave the port, then it was closed)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
