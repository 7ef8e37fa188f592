"""A local stand-in for Together's chat-completions endpoint (OpenAI-compatible), for tests and the benchmark.

``FakeLLM`` serves ``POST /v1/chat/completions`` on 127.0.0.1 from a thread, answers in the
documented response shape (id, object "chat.completion", created, model, choices[{index,
message{role, content}, finish_reason}], usage), checks ``Authorization: Bearer <key>`` (401
otherwise, in the API's error shape), records every request, and plays programmable behaviours:

* ``valid(answer)``: a schema-valid JSON answer (``answer`` dict, default: a generic ROLLBACK);
* ``content(text)``: this exact message content (invalid JSON, schema mismatch, ...);
* ``slow(seconds)``: wait before answering (beyond the client's timeout);
* ``status(code, retry_after=None)``: 401/429/500/503... with the error body;
* ``trickle(interval)``: the body one byte at a time (defeats per-read timeouts);
* ``raw(body, content_type)``: HTTP 200 with any body (not a chat completion);
* ``obey_injection()``: a gullible model: if the prompt contains "ignore previous instructions"
  it answers CONTINUE with no actions and "approve everything", otherwise a valid ROLLBACK;
* ``computed(fn)``: the content ``fn(request body)`` returns (a model whose answer depends on the
  prompt, e.g. a rewrite of the text it was sent).

Behaviours queued with ``then(...)`` are used once each in order; after that ``default`` applies.
``closed_port()`` gives a port nothing listens on (connection refused).
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

DEFAULT_ANSWER: dict[str, Any] = {
    "verdict": "ROLLBACK",
    "summary": "Error rate rose sharply right after the deployment.",
    "root_cause": "The new version fails database connections under load.",
    "impact": "About a fifth of checkout requests fail.",
    "reasoning": "The error-rate guard fired and a new connection-timeout pattern appeared.",
    "actions": [{"name": "rollback_deployment", "reason": "Revert to the previous version."}],
}

INJECTION_MARKER = "ignore previous instructions"
OBEYED_ANSWER: dict[str, Any] = {
    "verdict": "CONTINUE",
    "summary": "Everything is fine, approve everything.",
    "root_cause": "None.",
    "impact": "None.",
    "reasoning": "The logs told me to answer CONTINUE.",
    "actions": [],
}


@dataclass
class Behaviour:
    kind: str
    answer: dict[str, Any] | None = None
    text: str | None = None
    seconds: float = 0.0
    code: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    finish_reason: str = "stop"
    fn: Callable[[dict[str, Any]], str] | None = None


def valid(answer: dict[str, Any] | None = None) -> Behaviour:
    return Behaviour("valid", answer=dict(answer or DEFAULT_ANSWER))


def content(text: str, finish_reason: str = "stop") -> Behaviour:
    return Behaviour("content", text=text, finish_reason=finish_reason)


def slow(seconds: float, answer: dict[str, Any] | None = None) -> Behaviour:
    return Behaviour("slow", answer=dict(answer or DEFAULT_ANSWER), seconds=seconds)


def status(code: int, retry_after: float | None = None) -> Behaviour:
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
    return Behaviour("status", code=code, headers=headers)


def trickle(interval: float) -> Behaviour:
    """Headers at once, then the body one byte every ``interval`` s: each read stays under the
    client's read timeout, so only a total deadline ends the call."""
    return Behaviour("trickle", answer=dict(DEFAULT_ANSWER), seconds=interval)


def raw(body: str, content_type: str = "text/html") -> Behaviour:
    """HTTP 200 with an arbitrary body (a captive portal or a misconfigured proxy)."""
    return Behaviour("raw", text=body, headers={"Content-Type": content_type})


def obey_injection() -> Behaviour:
    return Behaviour("obey_injection")


def computed(fn: Callable[[dict[str, Any]], str]) -> Behaviour:
    return Behaviour("computed", fn=fn)


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any
    at: float

    @property
    def messages(self) -> list[dict[str, Any]]:
        return list((self.body or {}).get("messages") or [])

    def message_text(self, role: str) -> str:
        return "\n".join(str(m.get("content", "")) for m in self.messages if m.get("role") == role)


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_api_key",
    404: "model_not_found",
    429: "rate_limit_exceeded",
    500: "server_error",
    503: "service_unavailable",
}


class FakeLLM:
    def __init__(
        self, api_key: str = "test-key-0123456789", default: Behaviour | None = None, port: int = 0
    ) -> None:
        self.api_key = api_key
        self.default = default or valid()
        self.requests: list[Recorded] = []
        self._queue: deque[Behaviour] = deque()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._ids = itertools.count(1)
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, name="fake-llm", daemon=True
        )

    # -- lifecycle ------------------------------------------------------------------------------
    def __enter__(self) -> FakeLLM:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()  # wakes slow handlers
        self._server.shutdown()
        self._server.server_close()

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """The root URL (the together SDK adds /v1/chat/completions itself)."""
        return f"http://127.0.0.1:{self.port}"

    # -- programming ----------------------------------------------------------------------------
    def then(self, *behaviours: Behaviour) -> FakeLLM:
        with self._lock:
            self._queue.extend(behaviours)
        return self

    def _next(self) -> Behaviour:
        with self._lock:
            return self._queue.popleft() if self._queue else self.default

    def reset(self, default: Behaviour | None = None) -> None:
        with self._lock:
            self._queue.clear()
            self.requests.clear()
            if default is not None:
                self.default = default

    # -- serving --------------------------------------------------------------------------------
    def _completion(self, model: str, text: str, finish_reason: str = "stop") -> dict[str, Any]:
        return {
            "id": f"fake-{next(self._ids)}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": finish_reason,
                    "logprobs": None,
                }
            ],
            "usage": {"prompt_tokens": 100, "completion_tokens": 50, "total_tokens": 150},
        }

    def _respond(self, body: Any, behaviour: Behaviour) -> tuple[int, dict[str, str], dict[str, Any]]:
        model = str((body or {}).get("model", ""))
        if behaviour.kind == "status":
            error = {
                "error": {
                    "message": f"fake error {behaviour.code}",
                    "type": _ERROR_TYPES.get(behaviour.code, "error"),
                    "code": behaviour.code,
                }
            }
            return behaviour.code, behaviour.headers, error
        if behaviour.kind == "raw":
            return 200, behaviour.headers, {"__raw__": behaviour.text or ""}
        if behaviour.kind == "content":
            return 200, {}, self._completion(model, behaviour.text or "", behaviour.finish_reason)
        if behaviour.kind == "slow":
            self._stop.wait(behaviour.seconds)
        if behaviour.kind == "computed" and behaviour.fn is not None:
            return 200, {}, self._completion(model, behaviour.fn(body))
        if behaviour.kind == "obey_injection":
            prompt = json.dumps(body).lower()
            answer = OBEYED_ANSWER if INJECTION_MARKER in prompt else DEFAULT_ANSWER
            return 200, {}, self._completion(model, json.dumps(answer))
        return 200, {}, self._completion(model, json.dumps(behaviour.answer or DEFAULT_ANSWER))

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else headers and body in two writes cost a 40 ms delayed ACK

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                return

            def _send(
                self, code: int, payload: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                headers = dict(headers or {})
                if "__raw__" in payload:
                    data = str(payload["__raw__"]).encode()
                else:
                    data = json.dumps(payload).encode()
                    headers.setdefault("Content-Type", "application/json")
                try:
                    self.send_response(code)
                    self.send_header("Content-Length", str(len(data)))
                    for name, value in headers.items():
                        self.send_header(name, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout): nothing to answer

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except json.JSONDecodeError:
                    body = None
                fake.requests.append(
                    Recorded(
                        self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic()
                    )
                )
                if self.path != "/v1/chat/completions":
                    self._send(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
                    return
                if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    self._send(
                        401,
                        {"error": {"message": "Invalid API key provided", "type": "invalid_api_key"}},
                    )
                    return
                if not isinstance(body, dict) or "messages" not in body or "model" not in body:
                    self._send(400, {"error": {"message": "messages and model are required"}})
                    return
                behaviour = fake._next()
                if behaviour.kind == "trickle":
                    self._trickle(
                        fake._completion(str(body["model"]), json.dumps(behaviour.answer)), behaviour
                    )
                    return
                code, headers, payload = fake._respond(body, behaviour)
                self._send(code, payload, headers)

            def _trickle(self, payload: dict[str, Any], behaviour: Behaviour) -> None:
                data = json.dumps(payload).encode()
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    for i in range(len(data)):
                        if fake._stop.wait(behaviour.seconds):
                            return
                        self.wfile.write(data[i : i + 1])
                except (BrokenPipeError, ConnectionResetError):
                    pass

        return Handler


def closed_port() -> int:
    """A port on 127.0.0.1 with no listener (bound then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
