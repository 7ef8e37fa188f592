"""The demo service's deployer: ``python -m demo_service.deployer``.

A supervisor (see supervisor.py) plus an authenticated JSON API to deploy, roll back and restart
the service, list versions and deployments. Every endpoint but ``GET /health`` and ``GET /metrics``
needs ``Authorization: Bearer <DEMO_DEPLOYER_TOKEN>``.
"""

from __future__ import annotations

import argparse
import fcntl
import hmac
import json
import os
import signal
import socket
import sys
import threading
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

from prometheus_client import CollectorRegistry, Counter, disable_created_metrics
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from demo_service import SERVICE_NAME
from demo_service.behaviour import (
    VERSIONS_FILE,
    Behaviour,
    BehaviourError,
    VersionSpec,
    check_version_name,
    load_versions,
    parse_behaviour,
)
from demo_service.history import KINDS, DeploymentHistory, HistoryError, ServiceState
from demo_service.jsonlog import JsonLog
from demo_service.notify import Announcer
from demo_service.supervisor import DeployError, Supervisor

TOKEN_ENV = "DEMO_DEPLOYER_TOKEN"  # noqa: S105 - the name of the variable, not a token
MAX_BODY = 64 * 1024
MAX_LIMIT = 1000


class ApiError(Exception):
    def __init__(self, status: int, message: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.extra = dict(extra or {})


# ---- request bodies (pure; unit-tested) -----------------------------------------------------------


def parse_body(raw: bytes) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ApiError(400, "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


def _check_fields(body: dict[str, Any], allowed: tuple[str, ...]) -> None:
    for key in body:
        if key not in allowed:
            raise ApiError(400, f"unknown field {key!r} (allowed: {', '.join(allowed)})")


def _text(body: dict[str, Any], key: str, *, required: bool, limit: int) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise ApiError(400, f"field {key!r} is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, f"field {key!r} must be a non-empty string")
    if len(value) > limit or any(ord(ch) < 32 for ch in value):
        raise ApiError(400, f"field {key!r} must be one line of at most {limit} characters")
    return value.strip()


@dataclass(frozen=True)
class SwitchRequest:
    kind: str
    by: str
    reason: str | None = None
    version: str | None = None
    behaviour: Behaviour | None = None
    expected_version: str | None = None
    """Act only while this version runs (compare-and-swap); 409 otherwise."""
    key: str | None = None
    """The request's ``Idempotency-Key``: a second request with it gets the first one's answer."""


IDEMPOTENCY_HEADER = "Idempotency-Key"
MAX_KEY = 200


def parse_key(header: str | None) -> str | None:
    """An ``Idempotency-Key`` header: None when absent; 400 unless 1..200 printable characters."""
    if header is None:
        return None
    key = header.strip()
    if not key or len(key) > MAX_KEY or any(ord(ch) < 33 or ord(ch) > 126 for ch in key):
        raise ApiError(400, f"{IDEMPOTENCY_HEADER} must be 1 to {MAX_KEY} printable characters, no spaces")
    return key


def _expected(body: dict[str, Any]) -> str | None:
    if body.get("expected_version") is None:
        return None
    try:
        return check_version_name(body["expected_version"], where="field 'expected_version'")
    except BehaviourError as exc:
        raise ApiError(400, str(exc)) from None


def parse_deploy(
    body: dict[str, Any], versions: dict[str, VersionSpec], recorded: Behaviour | None = None
) -> SwitchRequest:
    """``recorded``: the behaviour the named version last ran with (for ad-hoc versions)."""
    _check_fields(body, ("version", "by", "behaviour", "reason"))
    if "version" not in body:
        raise ApiError(400, "field 'version' is required")
    try:
        version = check_version_name(body["version"], where="field 'version'")
    except BehaviourError as exc:
        raise ApiError(400, str(exc)) from None
    by = _text(body, "by", required=True, limit=100)
    reason = _text(body, "reason", required=False, limit=500)
    known = versions[version].behaviour if version in versions else recorded
    if "behaviour" in body:
        try:
            behaviour = parse_behaviour(body["behaviour"], base=known)
        except BehaviourError as exc:
            raise ApiError(400, str(exc)) from None
    elif known is None:
        raise ApiError(
            404, f"unknown version {version!r} (known: {', '.join(versions)}; or give a behaviour)"
        )
    else:
        behaviour = known
    assert by is not None
    return SwitchRequest("deploy", by, reason, version, behaviour)


def parse_rollback(body: dict[str, Any]) -> SwitchRequest:
    _check_fields(body, ("by", "to", "reason", "expected_version"))
    by = _text(body, "by", required=True, limit=100)
    reason = _text(body, "reason", required=False, limit=500)
    to = None
    if body.get("to") is not None:
        try:
            to = check_version_name(body["to"], where="field 'to'")
        except BehaviourError as exc:
            raise ApiError(400, str(exc)) from None
    assert by is not None
    return SwitchRequest("rollback", by, reason, to, expected_version=_expected(body))


def parse_restart(body: dict[str, Any]) -> SwitchRequest:
    _check_fields(body, ("by", "reason", "expected_version"))
    by = _text(body, "by", required=True, limit=100)
    assert by is not None
    reason = _text(body, "reason", required=False, limit=500)
    return SwitchRequest("restart", by, reason, expected_version=_expected(body))


def parse_limit(query: str, default: int = 50) -> int:
    values = parse_qs(query).get("limit")
    if not values:
        return default
    try:
        limit = int(values[-1])
    except ValueError:
        raise ApiError(400, f"limit must be an integer between 1 and {MAX_LIMIT}") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise ApiError(400, f"limit must be an integer between 1 and {MAX_LIMIT}")
    return limit


def token_matches(header: str | None, token: str) -> bool:
    """Constant-time check of an ``Authorization: Bearer`` header."""
    if not header or not header.startswith("Bearer "):
        return False
    return hmac.compare_digest(header[len("Bearer ") :].strip().encode(), token.encode())


# ---- HTTP ---------------------------------------------------------------------------------------


class Deployer:
    """What the API handlers need: the supervisor, the history, the versions, the token, metrics."""

    def __init__(
        self,
        supervisor: Supervisor,
        history: DeploymentHistory,
        versions: dict[str, VersionSpec],
        token: str,
        registry: CollectorRegistry,
    ) -> None:
        self.supervisor = supervisor
        self.history = history
        self.versions = versions
        self.token = token
        self.registry = registry
        self.wait_s = supervisor.ready_timeout + supervisor.drain_timeout + 15

    def switch(self, request: SwitchRequest) -> dict[str, Any]:
        """``{"deployment": record, "replayed": bool}`` once the switch is done; ``replayed`` when the
        request's idempotency key was seen before (nothing was done again: this is the first one's)."""
        try:
            future, replayed = self.supervisor.submit(
                request.kind,
                request.by,
                request.reason,
                request.version,
                request.behaviour,
                expected_version=request.expected_version,
                key=request.key,
            )
            return {"deployment": future.result(timeout=self.wait_s), "replayed": replayed}
        except DeployError as exc:
            raise ApiError(exc.status, exc.message, exc.extra) from None
        except FutureTimeout:
            raise ApiError(503, f"the {request.kind} did not finish within {self.wait_s:g} s") from None


class ApiServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 64


class ApiHandler(BaseHTTPRequestHandler):
    deployer: ClassVar[Deployer]
    server_version = "demo-deployer"
    sys_version = ""
    timeout = 30

    def log_message(self, format: str, *args: Any) -> None:
        """No access log on stderr (the deployer's events go to the JSON log)."""

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Bearer realm="demo-deployer"')
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        self._send(status, json.dumps(payload).encode())

    def _read_raw(self) -> bytes:
        """Read the whole body first, so every answer (even 401) reaches the client cleanly."""
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise ApiError(400, "Content-Length must be an integer") from None
        if length < 0 or length > MAX_BODY:
            raise ApiError(400, f"the body must be at most {MAX_BODY} bytes")
        return self.rfile.read(length) if length else b""

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def _dispatch(self) -> None:
        deployer = self.deployer
        parts = urlsplit(self.path)
        route = (self.command, parts.path.rstrip("/") or "/")
        try:
            raw = self._read_raw() if self.command == "POST" else b""
            if route == ("GET", "/health"):
                status = deployer.supervisor.status()
                self._json(
                    200,
                    {
                        "ok": True,
                        "service": SERVICE_NAME,
                        "version": status["version"],
                        "ready": status["ready"],
                    },
                )
                return
            if route == ("GET", "/metrics"):
                self._send(200, generate_latest(deployer.registry), CONTENT_TYPE_LATEST)
                return
            if not token_matches(self.headers.get("Authorization"), deployer.token):
                raise ApiError(401, "missing or wrong bearer token")
            self._json(200, self._authorised(route, parts.query, raw))
        except ApiError as exc:
            self._json(exc.status, {"error": exc.message, **exc.extra})
        except Exception as exc:  # one line, never a traceback
            self._json(500, {"error": f"internal error: {type(exc).__name__}"})

    def _authorised(self, route: tuple[str, str], query: str, raw: bytes) -> dict[str, Any]:
        deployer = self.deployer
        if route == ("GET", "/status"):
            return deployer.supervisor.status()
        if route == ("GET", "/versions"):
            return {"versions": [spec.to_dict() for spec in deployer.versions.values()]}
        if route == ("GET", "/deployments"):
            return {"deployments": deployer.history.newest_first(parse_limit(query))}
        key = parse_key(self.headers.get(IDEMPOTENCY_HEADER)) if route[0] == "POST" else None
        if route == ("POST", "/deploy"):
            body = parse_body(raw)
            version = body.get("version")
            recorded = deployer.history.behaviour_of(version) if isinstance(version, str) else None
            return deployer.switch(replace(parse_deploy(body, deployer.versions, recorded), key=key))
        if route == ("POST", "/rollback"):
            return deployer.switch(replace(parse_rollback(parse_body(raw)), key=key))
        if route == ("POST", "/restart"):
            return deployer.switch(replace(parse_restart(parse_body(raw)), key=key))
        known_paths = {"/status", "/versions", "/deployments", "/deploy", "/rollback", "/restart"}
        if route[1] in known_paths:
            raise ApiError(405, f"{route[0]} is not allowed on {route[1]}")
        raise ApiError(404, f"no endpoint {route[1]}")


# ---- process ------------------------------------------------------------------------------------


def _fail(message: str) -> int:
    print(f"demo deployer: {message}", file=sys.stderr)
    return 2


def _lock_state_dir(state_dir: Path) -> int:
    fd = os.open(state_dir / ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        raise
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n".encode())
    return fd


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(256)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)  # shared by the instances; see app.make_server
    return sock


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m demo_service.deployer", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1", help="address of the API and the service (loopback)")
    parser.add_argument("--port", type=int, required=True, help="deployer API port")
    parser.add_argument("--service-port", type=int, required=True, help="port the service instances serve")
    parser.add_argument(
        "--log-file", required=True, help="JSON-lines log shared by the deployer and instances"
    )
    parser.add_argument("--state-dir", required=True, help="deployment history and instance stderr")
    parser.add_argument("--initial-version", default="v1.0.0", help="version to run when no history exists")
    parser.add_argument("--versions-file", default=str(VERSIONS_FILE))
    parser.add_argument(
        "--notify-url", action="append", default=[], help="announce each deploy here (repeat)"
    )
    parser.add_argument("--notify-token-env", help="environment variable holding the notify bearer token")
    parser.add_argument("--environment", default="live-demo", help="environment named in announcements")
    parser.add_argument(
        "--ready-timeout", type=float, default=15.0, help="seconds for a new instance to be ready"
    )
    parser.add_argument(
        "--drain-timeout", type=float, default=10.0, help="seconds for an old instance to drain"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    disable_created_metrics()  # no *_created series: fewer series for Prometheus to hold
    token = os.environ.get(TOKEN_ENV, "").strip()
    if not token:
        return _fail(f"{TOKEN_ENV} is not set; refusing to start an unauthenticated deployer")
    notify_token = None
    if args.notify_token_env:
        notify_token = os.environ.get(args.notify_token_env, "").strip()
        if not notify_token:
            return _fail(f"--notify-token-env names {args.notify_token_env}, which is not set")
    for url in args.notify_url:
        if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
            return _fail("--notify-url must be an http(s) URL")
    try:
        versions = load_versions(args.versions_file)
        if args.initial_version not in versions:
            raise BehaviourError(
                f"--initial-version {args.initial_version!r} is not in {Path(args.versions_file).name}"
            )
    except BehaviourError as exc:
        return _fail(str(exc))

    state_dir = Path(args.state_dir)
    try:
        state_dir.mkdir(parents=True, exist_ok=True)
        lock_fd = _lock_state_dir(state_dir)
    except OSError:
        return _fail(f"state directory {state_dir} is in use by another deployer (or not writable)")
    try:
        history = DeploymentHistory(state_dir / "deployments.jsonl")
        initial = ServiceState(args.initial_version, versions[args.initial_version].behaviour)
        state = history.replay(initial)
    except (HistoryError, BehaviourError) as exc:
        return _fail(str(exc))
    try:
        service_socket = _listen(args.host, args.service_port)
    except OSError as exc:
        return _fail(
            f"cannot listen on {args.host}:{args.service_port} for the service: {exc.strerror or exc}"
        )
    try:
        api = ApiServer((args.host, args.port), ApiHandler)
    except OSError as exc:
        service_socket.close()
        return _fail(f"cannot listen on {args.host}:{args.port} for the API: {exc.strerror or exc}")

    try:
        log = JsonLog(args.log_file, state.version, source="deployer")
    except OSError as exc:
        api.server_close()
        service_socket.close()
        return _fail(f"cannot open the log file {args.log_file}: {exc.strerror or exc}")
    for line in history.skipped:
        log.warn(line)
    registry = CollectorRegistry(auto_describe=True)
    restarts = Counter(
        "service_restarts", "Unexpected instance exits the deployer restarted", ["service"], registry=registry
    )
    deployments = Counter(
        "service_deployments", "Deploys, rollbacks and restarts done", ["service", "kind"], registry=registry
    )
    restarts.labels(SERVICE_NAME)
    for kind in KINDS:
        deployments.labels(SERVICE_NAME, kind)

    def log_event(level: str, message: str) -> None:
        log.log(level, message, version=supervisor.state.version)

    announcer = Announcer(args.notify_url, notify_token, args.environment, log_event)

    def on_deployed(record: dict[str, Any]) -> None:
        if record["kind"] == "deploy":
            announcer.announce(record)

    child_env = {k: v for k, v in os.environ.items() if k not in (TOKEN_ENV, args.notify_token_env)}
    child_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH")) if p
    )
    supervisor = Supervisor(
        listen_socket=service_socket,
        log_file=Path(args.log_file),
        state_dir=state_dir,
        history=history,
        state=state,
        versions=versions,
        log=log,
        restarts_total=restarts,
        deployments_total=deployments,
        on_deployed=on_deployed,
        child_env=child_env,
        ready_timeout=args.ready_timeout,
        drain_timeout=args.drain_timeout,
    )
    ApiHandler.deployer = Deployer(supervisor, history, versions, token, registry)

    stop = threading.Event()
    why: list[str] = []

    def request_stop(signum: int, _frame: Any) -> None:
        why.append(signal.Signals(signum).name)
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)

    restored = f" (restored from {len(history.records)} deployments)" if history.records else ""
    log.info(f"deployer starting {SERVICE_NAME} {state.version}{restored}", version=state.version)
    supervisor.start()
    api_thread = threading.Thread(target=api.serve_forever, kwargs={"poll_interval": 0.1}, name="api")
    api_thread.start()
    print(
        f"demo deployer: API http://{args.host}:{api.server_address[1]}, service "
        f"http://{args.host}:{args.service_port}, {state.version}",
        flush=True,
    )
    while not stop.wait(0.5):
        pass
    log.info(
        f"deployer stopping ({why[0] if why else 'stop'}): stopping the instances", version=state.version
    )
    api.shutdown()
    api.server_close()
    supervisor.stop()
    announcer.stop()
    service_socket.close()
    log.info("deployer stopped", version=supervisor.state.version)
    log.close()
    os.close(lock_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
