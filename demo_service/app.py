"""One instance of the demo service: ``python -m demo_service.app``.

Serves ``GET /api/items`` and ``GET /api/checkout`` with the faults of its behaviour, ``/metrics``
(prometheus-client, the real process), ``/healthz``, and writes JSON-lines logs. The deployer starts
it with an inherited listening socket (``--listen-fd``) shared by the old and the new instance
during a rolling deploy; by hand it binds ``--port`` itself.

Faults: the memory leak really allocates and touches memory (RSS grows); injected errors, latency
and the crash are decided by the behaviour, and their log lines carry ``"fault": <behaviour key>``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import urlsplit

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from demo_service import SERVICE_NAME
from demo_service.behaviour import (
    LEAK_HARD_CAP_MB,
    LEAK_STOP_FRACTION,
    OOM_THRESHOLD,
    VERSIONS_FILE,
    Behaviour,
    BehaviourError,
    check_version_name,
    load_versions,
    parse_behaviour,
)
from demo_service.jsonlog import JsonLog

MB = 1024 * 1024
CRASH_EXIT_CODE = 137  # what a SIGKILLed (e.g. OOM-killed) container reports
# Finer than the default buckets around the demo's latencies, so p95 is usable.
LATENCY_BUCKETS = (
    0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5,
    0.6, 0.8, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0,
)  # fmt: skip


class Metrics:
    """The instance's metrics in a registry of its own (with the real process's collectors), so
    importing this module registers nothing globally."""

    def __init__(self, version: str, behaviour: Behaviour) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.requests = Counter(
            "http_requests",
            "HTTP requests served, by status code",
            ["service", "version", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time to serve an HTTP request",
            ["service", "version"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        ).labels(SERVICE_NAME, version)
        for status in ("200", "500"):  # so error-ratio queries see a 0 series, not an empty one
            self.requests.labels(SERVICE_NAME, version, status)
        Gauge(
            "service_memory_limit_bytes",
            "Declared memory limit",
            ["service", "version"],
            registry=self.registry,
        ).labels(SERVICE_NAME, version).set(behaviour.memory_limit_bytes)
        Gauge(
            "service_build_info",
            "The running version (always 1)",
            ["service", "version"],
            registry=self.registry,
        ).labels(SERVICE_NAME, version).set(1)

    def exposition(self) -> bytes:
        return generate_latest(self.registry)


ITEMS = [
    {"id": 1, "name": "espresso beans 1 kg", "price": 21.5},
    {"id": 2, "name": "burr grinder", "price": 129.0},
    {"id": 3, "name": "milk jug 350 ml", "price": 14.9},
    {"id": 4, "name": "descaler", "price": 9.5},
]
# Injected failures: (status, message) per route, chosen at random when error_ratio fires.
INJECTED_ERRORS = {
    "/api/items": [
        (500, "query failed: inventory-db connection reset by peer"),
        (503, "upstream unavailable: inventory-db connection pool exhausted (20/20 in use)"),
    ],
    "/api/checkout": [
        (502, "checkout failed: payment-gateway returned 502 Bad Gateway"),
        (500, "checkout failed: KeyError 'currency' in pricing rules"),
    ],
}


def rss_bytes() -> int:
    """Resident set size of this process, read the way the process collector reads it."""
    try:
        with open("/proc/self/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class MemoryLeak(threading.Thread):
    """Really allocates (and touches) ``leak_mb_per_s`` MB every second, up to a cap."""

    def __init__(self, behaviour: Behaviour, log: JsonLog, stop: threading.Event) -> None:
        super().__init__(name="memory-leak", daemon=True)
        self.behaviour = behaviour
        self.log = log
        self.stop = stop
        self.leaked: list[bytes] = []
        self.leaked_bytes = 0

    def run(self) -> None:
        rate = self.behaviour.leak_mb_per_s * MB
        limit = self.behaviour.memory_limit_bytes
        stop_at = min(LEAK_STOP_FRACTION * limit, limit)
        started = time.monotonic()
        warned = False
        while not self.stop.wait(0.1):
            rss = rss_bytes()
            if not warned and rss >= 0.75 * limit:
                warned = True
                self.log.warn(
                    f"memory usage high: rss {rss // MB} MB of {limit // MB} MB limit",
                    fault="leak_mb_per_s",
                )
            if rss >= stop_at or self.leaked_bytes >= LEAK_HARD_CAP_MB * MB:
                continue
            # Catch up with the schedule so a busy process leaks at the declared rate.
            due = int(rate * (time.monotonic() - started)) - self.leaked_bytes
            due = min(due, LEAK_HARD_CAP_MB * MB - self.leaked_bytes)
            if due >= 64 * 1024:
                self.leaked.append(b"\x5a" * due)  # bytes * n writes every page: real RSS
                self.leaked_bytes += due


class Instance:
    """State shared by the request handlers of one instance."""

    def __init__(self, version: str, behaviour: Behaviour, log: JsonLog) -> None:
        self.version = version
        self.behaviour = behaviour
        self.log = log
        self.rng = random.Random()
        self.rng_lock = threading.Lock()
        self.served = 0
        self.served_lock = threading.Lock()
        self.started = time.monotonic()
        self.metrics = Metrics(version, behaviour)

    def random(self) -> float:
        with self.rng_lock:
            return self.rng.random()

    def choice(self, options: list[tuple[int, str]]) -> tuple[int, str]:
        with self.rng_lock:
            return self.rng.choice(options)

    def api(self, route: str) -> tuple[int, dict[str, Any], str | None, str | None]:
        """Serve one /api request: (status, body, error message or None, fault key or None)."""
        behaviour = self.behaviour
        rss = rss_bytes()
        limit = behaviour.memory_limit_bytes
        if rss >= OOM_THRESHOLD * limit:
            message = f"out of memory: rss {rss // MB} MB of {limit // MB} MB limit"
            return 500, {"error": "out of memory"}, message, "memory_limit_mb"
        jitter = 0.8 + 0.4 * self.random()
        delay_ms = behaviour.latency_ms * jitter + behaviour.extra_latency_ms
        if delay_ms > 0:
            time.sleep(delay_ms / 1000)
        if behaviour.error_ratio and self.random() < behaviour.error_ratio:
            status, message = self.choice(INJECTED_ERRORS[route])
            return status, {"error": message.split(":")[0]}, message, "error_ratio"
        if route == "/api/items":
            return 200, {"items": ITEMS, "version": self.version}, None, None
        order = f"ord-{int(time.time() * 1000) % 10**9:09d}-{int(self.random() * 1e4):04d}"
        return 200, {"order_id": order, "status": "confirmed", "version": self.version}, None, None


class Handler(BaseHTTPRequestHandler):
    instance: ClassVar[Instance]
    server_version = "demo-service"
    sys_version = ""
    timeout = 15  # a client that stalls cannot hold a worker thread for ever

    def log_message(self, format: str, *args: Any) -> None:
        """Access lines go to the JSON log, not stderr."""

    def _send(self, status: int, body: bytes, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, payload: dict[str, Any]) -> None:
        self._send(status, json.dumps(payload).encode())

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        instance = self.instance
        path = urlsplit(self.path).path
        if path == "/metrics" and self.command == "GET":
            self._send(200, instance.metrics.exposition(), CONTENT_TYPE_LATEST)
            return
        if path == "/healthz":
            self._json(200, {"status": "ok", "service": SERVICE_NAME, "version": instance.version})
            return
        started = time.perf_counter()
        error: str | None = None
        fault: str | None = None
        if path in INJECTED_ERRORS:
            status, body, error, fault = instance.api(path)
        elif path == "/" and self.command == "GET":
            status, body = 200, {"service": SERVICE_NAME, "version": instance.version}
        else:
            status, body = 404, {"error": f"no route {path}"}
        elapsed = time.perf_counter() - started
        try:
            self._json(status, body)
        finally:
            instance.metrics.requests.labels(SERVICE_NAME, instance.version, str(status)).inc()
            instance.metrics.duration.observe(elapsed)
            with instance.served_lock:
                instance.served += 1
            fields = {"route": path, "status": status, "duration_ms": round(elapsed * 1000, 1)}
            if error:
                instance.log.error(error, fault=fault, **fields)
            else:
                instance.log.info(f"{self.command} {path} {status}", **fields)


class Server(ThreadingHTTPServer):
    # Non-daemon handler threads: server_close() waits for in-flight requests (the drain).
    daemon_threads = False
    block_on_close = True
    request_queue_size = 128


def make_server(host: str, port: int | None, listen_fd: int | None) -> Server:
    if listen_fd is not None:
        sock = socket.socket(fileno=listen_fd)
        server = Server(sock.getsockname()[:2], Handler, bind_and_activate=False)
        server.socket.close()
        server.socket = sock
        server.server_address = sock.getsockname()[:2]
        server.server_name, server.server_port = host, server.server_address[1]
    else:
        server = Server((host, port or 0), Handler)
    # Old and new instance accept from one shared socket: a blocking accept() could hang after
    # the other process took the connection, and keep this one from ever draining.
    server.socket.setblocking(False)
    return server


def resolve_behaviour(version: str, behaviour_json: str | None, versions_file: str) -> Behaviour:
    if behaviour_json is not None:
        try:
            data = json.loads(behaviour_json)
        except json.JSONDecodeError as exc:
            raise BehaviourError(f"--behaviour is not valid JSON: {exc.msg}") from None
        return parse_behaviour(data)
    specs = load_versions(versions_file)
    if version not in specs:
        raise BehaviourError(f"unknown version {version!r} (known: {', '.join(specs)})")
    return specs[version].behaviour


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo_service.app", description=__doc__.split("\n")[0])
    parser.add_argument("--version", dest="version", default="v1.0.0", help="version name (default v1.0.0)")
    parser.add_argument("--behaviour", help="behaviour as JSON (default: the version's, from the file)")
    parser.add_argument("--versions-file", default=str(VERSIONS_FILE))
    parser.add_argument("--log-file", required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="bind this port (by hand)")
    parser.add_argument("--listen-fd", type=int, help="inherited listening socket (from the deployer)")
    parser.add_argument("--ready-fd", type=int, help="write 'ready' here once serving, then close it")
    parser.add_argument("--lifeline-fd", type=int, help="shut down when this pipe reaches EOF")
    args = parser.parse_args(argv)
    disable_created_metrics()  # no *_created series: fewer series for Prometheus to hold
    if (args.port is None) == (args.listen_fd is None):
        print("demo-service: give exactly one of --port and --listen-fd", file=sys.stderr)
        return 2
    try:
        version = check_version_name(args.version, where="--version")
        behaviour = resolve_behaviour(version, args.behaviour, args.versions_file)
        log = JsonLog(args.log_file, version, source="app")
        server = make_server(args.host, args.port, args.listen_fd)
    except (BehaviourError, OSError) as exc:
        print(f"demo-service: {exc}", file=sys.stderr)
        return 2

    stop = threading.Event()
    reason: list[str] = []

    def request_stop(why: str) -> None:
        if not reason:
            reason.append(why)
        stop.set()

    signal.signal(signal.SIGTERM, lambda *_: request_stop("received SIGTERM"))
    signal.signal(signal.SIGINT, lambda *_: request_stop("received SIGINT"))

    instance = Instance(version, behaviour, log)
    Handler.instance = instance
    address = f"{server.server_address[0]}:{server.server_address[1]}"
    log.info(
        f"starting {SERVICE_NAME} {version} on {address} (pid {os.getpid()}, "
        f"memory limit {int(behaviour.memory_limit_mb)} MB)",
        behaviour=behaviour.to_dict(),
    )
    if behaviour.leak_mb_per_s > 0:
        MemoryLeak(behaviour, log, stop).start()
    if behaviour.crash_after_s is not None:
        crash_after = behaviour.crash_after_s

        def crash() -> None:
            log.error(
                f"fatal: unrecoverable error in request worker after {crash_after:g} s, "
                f"aborting with exit code {CRASH_EXIT_CODE}",
                fault="crash_after_s",
            )
            os._exit(CRASH_EXIT_CODE)

        timer = threading.Timer(crash_after, crash)
        timer.daemon = True
        timer.start()
    if args.lifeline_fd is not None:
        lifeline_fd = args.lifeline_fd

        def watch_lifeline() -> None:
            try:
                while os.read(lifeline_fd, 64):
                    pass
            except OSError:
                pass
            request_stop("the deployer went away (lifeline closed)")

        threading.Thread(target=watch_lifeline, name="lifeline", daemon=True).start()

    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="serve")
    serving.start()
    log.info(f"ready: serving on {address}")
    if args.ready_fd is not None:
        try:
            os.write(args.ready_fd, b"ready\n")
            os.close(args.ready_fd)
        except OSError:
            pass
    while not stop.wait(0.5):
        pass
    log.info(f"{reason[0]}: draining in-flight requests")
    server.shutdown()  # no more accept(); the other instance (or the socket's backlog) takes new ones
    server.server_close()  # waits for the handler threads
    uptime = time.monotonic() - instance.started
    log.info(f"stopped after {uptime:.1f} s and {instance.served} requests")
    log.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
