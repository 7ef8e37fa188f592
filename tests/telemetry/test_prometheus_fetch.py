"""What one :meth:`PrometheusSource.fetch` makes of a target that exports raw families (no recording
rules), without a real Prometheus: the profile picked from the names, the canonical metrics counted
per real scrape, what each was read from, its graph link, and the notes; and how the services file's
``metrics``/``queries`` and the caller's ``metrics`` narrow it. The answers of a real server:
test_live_prometheus.py."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from console.telemetry.config import PrometheusConfig
from console.telemetry.prometheus import PrometheusSource
from tests.telemetry.conftest import json_body

END = 1_800_000_000
SCRAPES = [END - 57, END - 42, END - 27, END - 12]
"""Four real scrapes, 15 s apart, in a 60 s window."""


def series(labels: dict[str, str], *values: Any) -> dict[str, Any]:
    return {"metric": labels, "values": [[t, str(v)] for t, v in zip(SCRAPES, values, strict=True)]}


I1 = {"instance": "i1"}
RAW = {
    "http_requests_total": [
        series({**I1, "handler": "/a", "code": "200"}, 100, 110, 120, 130),
        series({**I1, "handler": "/a", "code": "500"}, 1, 1, 3, 4),
    ],
    "http_request_duration_seconds_bucket": [
        series({**I1, "handler": "/a", "le": "0.1"}, 50, 55, 60, 62),
        series({**I1, "handler": "/a", "le": "0.5"}, 90, 98, 110, 115),
        series({**I1, "handler": "/a", "le": "+Inf"}, 101, 111, 123, 134),
    ],
    "process_resident_memory_bytes": [series(I1, 1e8, 1.1e8, 1.2e8, 2e8)],
    "process_cpu_seconds_total": [series(I1, 10, 11.5, "NaN", 14.5)],
    "process_start_time_seconds": [series(I1, 1000, 1000, 1000, 2000)],
    "up": [series(I1, 1, 1, 1, 1)],
    "errors": [{"metric": {}, "values": [[t, "0.1"] for t in SCRAPES[:3]]}],  # then the rule stopped
}
RANGE = [[t + 2, v] for t, v in zip(SCRAPES, ("0.1", "0.1", "0.2", "0.2"), strict=True)]
"""query_range's points: the last one is a look-back copy (no sample of ``errors`` behind it)."""
NAMES = [name for name in RAW if name not in ("up", "errors")] + ["go_info"]


def fake_prometheus(request: Any, method: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    """Metric names, raw samples by metric name, and one query_range series (``RANGE``)."""
    path = urlsplit(request.path).path
    form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
    if path == "/api/v1/label/__name__/values":
        doc: dict[str, Any] = {"status": "success", "data": NAMES}
    elif path == "/api/v1/query":
        name = re.match(r"[A-Za-z_:][A-Za-z0-9_:]*", form["query"]).group(0)  # type: ignore[union-attr]
        doc = {"status": "success", "data": {"resultType": "matrix", "result": RAW.get(name, [])}}
    else:
        doc = {
            "status": "success",
            "data": {"resultType": "matrix", "result": [{"metric": {}, "values": RANGE}]},
        }
    return 200, {"Content-Type": "application/json"}, json_body(doc)


def graph_expr(link: str) -> str:
    return parse_qs(urlsplit(link).query)["g0.expr"][0]


@pytest.fixture
def prometheus_url(local_server: Callable) -> str:
    return local_server(fake_prometheus).url


def test_a_target_with_raw_families_is_counted_per_real_scrape(prometheus_url: str) -> None:
    config = PrometheusConfig(
        url=prometheus_url,
        profile="auto",
        selector='job="shop"',
        memory_limit_bytes=4e8,
        scrape_interval_s=15,
    )
    result = PrometheusSource(config).fetch(END - 60, END)
    assert result.step_s == 15
    assert result.notes == [
        "profile go picked automatically: the selector has go_info",
        "cpu samples: dropped 1 non-numeric point (1 NaN; NaN is 0/0, e.g. no requests in the rate window)",
    ]
    assert list(result.metrics) == [
        "requests_per_second", "error_rate", "latency_p95_ms", "memory_utilization", "cpu_utilization",
        "pod_restarts",
    ]  # fmt: skip
    first, at = END - 45.0, [END - 30.0, END - 15.0, float(END)]  # a bin per scrape, ending at END
    assert result.metrics["requests_per_second"] == [(at[0], 10 / 15), (at[1], 12 / 15), (at[2], 11 / 15)]
    assert result.metrics["error_rate"] == [(at[0], 0.0), (at[1], 2 / 12), (at[2], 1 / 11)]
    assert [t for t, _ in result.metrics["latency_p95_ms"]] == at
    assert result.metrics["memory_utilization"] == [
        (first, 0.25), (at[0], 1.1e8 / 4e8), (at[1], 0.3), (at[2], 0.5),
    ]  # fmt: skip
    assert result.metrics["cpu_utilization"] == [(at[0], 0.1), (at[2], 0.1)]  # the NaN sample is no scrape
    assert result.metrics["pod_restarts"] == [(first, 0.0), (at[0], 0.0), (at[1], 0.0), (at[2], 1.0)]
    assert result.samples == {name: len(points) for name, points in result.metrics.items()}
    assert result.queries["error_rate"] == 'counted per real scrape from http_requests_total{job="shop"}'
    assert result.queries["latency_p95_ms"] == (
        'counted per real scrape from http_request_duration_seconds_bucket{job="shop"}'
    )
    assert graph_expr(result.links["error_rate"]) == (
        '(sum(rate(http_requests_total{code=~"5..",job="shop"}[1m])) or vector(0)) '
        '/ sum(rate(http_requests_total{job="shop"}[1m]))'
    )
    assert (
        graph_expr(result.links["memory_utilization"])
        == 'max(process_resident_memory_bytes{job="shop"}) / 4e+08'
    )
    assert graph_expr(result.links["pod_restarts"]) == 'changes(process_start_time_seconds{job="shop"}[15s])'
    evidence = result.evidence
    assert evidence is not None and evidence.profile == "go"
    assert (evidence.dimension_label, evidence.status_label) == ("handler", "code")
    assert evidence.scrapes_up == tuple(float(t) for t in SCRAPES)


def test_the_services_file_and_the_caller_narrow_the_metrics(prometheus_url: str) -> None:
    config = PrometheusConfig(
        url=prometheus_url,
        profile="go",
        selector='job="shop"',
        queries={"error_rate": "errors{{selector}}", "cpu_utilization": None},
        scrape_interval_s=15,
    )
    result = PrometheusSource(config).fetch(
        END - 60, END, metrics=["error_rate", "requests_per_second", "cpu_utilization"]
    )
    # error_rate from its PromQL (each point on a real sample of `errors`); cpu dropped in the file
    assert list(result.metrics) == ["error_rate", "requests_per_second"]
    assert result.metrics["error_rate"] == [(float(t), float(v)) for t, v in RANGE[:3]]
    assert result.queries == {
        "error_rate": 'errors{job="shop"}',
        "requests_per_second": 'counted per real scrape from http_requests_total{job="shop"}',
    }
    assert set(result.links) == {"error_rate", "requests_per_second"}
    assert graph_expr(result.links["error_rate"]) == 'errors{job="shop"}'
    assert (
        "memory: no limit known: set prometheus.memory_limit_bytes to judge a climb against it"
        in result.notes
    )
    copies = "error_rate: 1 of 4 points had no real sample behind them (Prometheus' look-back copies)"
    assert f"{copies}: left out" in result.notes
