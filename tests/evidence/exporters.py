"""Targets that export another instrumentation's conventional names, with steady traffic: the Go
client's (go_info, go_goroutines, http_requests_total{code,method,handler}) and OpenTelemetry's HTTP
semantic conventions through Prometheus (http_server_request_duration_seconds{http_route,
http_response_status_code}). Each has its own registry and port."""

from __future__ import annotations

import threading

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server


class Exporter:
    def __init__(self, kind: str) -> None:
        self.registry = CollectorRegistry()
        self.stopping = threading.Event()
        if kind == "go":
            Gauge("go_goroutines", "goroutines", registry=self.registry).set(12)
            Gauge("go_info", "Go version", ["version"], registry=self.registry).labels("go1.22").set(1)
            Gauge("process_resident_memory_bytes", "rss", registry=self.registry).set(30e6)
            self.requests = Counter(
                "http_requests", "requests", ["code", "method", "handler"], registry=self.registry
            )
            self.latency = Histogram(
                "http_request_duration_seconds", "latency", ["handler"], registry=self.registry
            )
            self._step = self._go
        else:
            Gauge("process_memory_usage_bytes", "memory", registry=self.registry).set(40e6)
            self.latency = Histogram(
                "http_server_request_duration_seconds", "latency",
                ["http_route", "http_response_status_code", "http_request_method"], registry=self.registry,
            )  # fmt: skip
            self._step = self._otel
        self.server, self.thread = start_http_server(0, addr="127.0.0.1", registry=self.registry)
        self.target = f"127.0.0.1:{self.server.server_address[1]}"
        self.traffic = threading.Thread(target=self._run, daemon=True)
        self.traffic.start()

    def _go(self) -> None:
        for handler in ("/orders", "/users"):
            self.requests.labels("200", "get", handler).inc(5)
            self.latency.labels(handler).observe(0.03)

    def _otel(self) -> None:
        for route in ("/orders/{id}", "/users"):
            self.latency.labels(route, "200", "GET").observe(0.03)

    def _run(self) -> None:
        while not self.stopping.wait(0.1):
            self._step()

    def stop(self) -> None:
        self.stopping.set()
        self.traffic.join(timeout=5)
        self.server.shutdown()
        self.server.server_close()
