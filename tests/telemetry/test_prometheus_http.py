"""What the Prometheus source meets in front of a real server: a proxy's HTML pages, a wrong URL,
a slow or refusing endpoint, bearer tokens; and the request it sends (POST, form-encoded).
The real server's own answers and errors: test_live_prometheus.py."""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import parse_qs

import pytest

from console.telemetry.config import PrometheusConfig
from console.telemetry.errors import (
    PrometheusAuthError,
    PrometheusBadResponse,
    PrometheusServerError,
    PrometheusTimeout,
)
from console.telemetry.prometheus import PrometheusSource
from tests.telemetry.conftest import json_body

HTML = {"Content-Type": "text/html; charset=utf-8"}


def source(url: str, **kw: object) -> PrometheusSource:
    config = PrometheusConfig(url=url, metrics=("error_rate",), **kw)  # type: ignore[arg-type]
    return PrometheusSource.from_config(config, env={"PROM_TOKEN": "tok-secret"})


def test_the_request_is_a_form_encoded_post_with_the_bearer_token(local_server: Callable) -> None:
    rule = "service:http_requests_errors:ratio_rate5s"
    answers = {
        "/prom/api/v1/query_range": {
            "status": "success",
            "warnings": ["results may be partial: one store unavailable"],
            "data": {"resultType": "matrix", "result": [{"metric": {}, "values": [[1800000000, "0.25"]]}]},
        },
        # the rule's raw samples: the point at 1800000000 rests on a real one
        "/prom/api/v1/query": {
            "status": "success",
            "data": {"resultType": "matrix", "result": [{"metric": {}, "values": [[1799999999.2, "0.25"]]}]},
        },
        "/prom/api/v1/label/__name__/values": {"status": "success", "data": [rule]},
    }
    server = local_server(
        lambda request, method, body: (
            200, {"Content-Type": "application/json"}, json_body(answers[request.path.split("?")[0]])
        )
    )  # fmt: skip
    result = source(server.url + "/prom/", token_env="PROM_TOKEN", selector='service="x"').fetch(
        1_800_000_000 - 30, 1_800_000_000
    )
    assert result.metrics == {"error_rate": [(1_800_000_000.0, 0.25)]}
    assert result.samples == {"error_rate": 1}
    assert "error_rate: Prometheus warned: results may be partial: one store unavailable" in result.notes
    seen = {p.split("?")[0]: (method, headers, body) for method, p, headers, body in server.requests_seen}
    method, headers, body = seen["/prom/api/v1/query_range"]
    assert method == "POST"
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert all(h["Authorization"] == "Bearer tok-secret" for _, h, _ in seen.values())
    form = {k: v[0] for k, v in parse_qs(body.decode()).items()}
    assert form == {
        "query": f'{rule}{{service="x"}}',
        "start": "1799999970.000",
        "end": "1800000000.000",
        "step": "15",  # 30 s window, default 15 s scrape interval
    }
    samples = {k: v[0] for k, v in parse_qs(seen["/prom/api/v1/query"][2].decode()).items()}
    assert samples == {"query": f'{rule}{{service="x"}}[30s]', "time": "1800000000.000"}


def test_a_point_without_a_real_sample_behind_it_is_a_look_back_copy(local_server: Callable) -> None:
    """Prometheus repeats the last sample for up to 5 minutes where it has none: those points go."""
    points = [[1_800_000_000 - 60 + 15 * i, "0.5"] for i in range(5)]
    samples = [[1_800_000_000 - 60 + 15 * i - 0.4, "0.5"] for i in (0, 1)]  # then Prometheus stopped
    answers = {
        "/api/v1/query_range": {"status": "success", "data": {"resultType": "matrix",
                                                             "result": [{"metric": {}, "values": points}]}},
        "/api/v1/query": {"status": "success", "data": {"resultType": "matrix",
                                                       "result": [{"metric": {}, "values": samples}]}},
        "/api/v1/label/__name__/values": {"status": "success", "data": []},
    }  # fmt: skip
    server = local_server(
        lambda request, method, body: (
            200, {"Content-Type": "application/json"}, json_body(answers[request.path.split("?")[0]])
        )
    )  # fmt: skip
    result = source(server.url, selector='service="x"').fetch(1_800_000_000 - 60, 1_800_000_000)
    assert result.metrics == {"error_rate": [(1_800_000_000 - 60.0, 0.5), (1_800_000_000 - 45.0, 0.5)]}
    assert result.samples == {"error_rate": 2}
    assert (
        "error_rate: 3 of 5 points had no real sample behind them (Prometheus' look-back copies): left out"
        in result.notes
    )


@pytest.mark.parametrize(
    ("status", "headers", "body", "error", "message"),
    [
        (200, HTML, b"<html><body>Please sign in</body></html>", PrometheusBadResponse,
         "answered HTTP 200 with a body that is not JSON "
         "(text/html: <html><body>Please sign in</body></html>); is the URL the Prometheus server?"),
        (502, HTML, b"<html><h1>502 Bad Gateway</h1></html>", PrometheusServerError,
         "failed (HTTP 502 Bad Gateway): <html><h1>502 Bad Gateway</h1></html>"),
        (500, {"Content-Type": "application/json"},
         b'{"status":"error","errorType":"internal","error":"opening storage failed"}', PrometheusServerError,
         "failed on the query for error_rate (HTTP 500 internal): opening storage failed"),
        (404, {"Content-Type": "text/plain"}, b"404 page not found", PrometheusBadResponse,
         "has no query API at /api/v1/query_range (HTTP 404): check the URL"),
        (403, HTML, b"forbidden", PrometheusAuthError,
         "refused the request (HTTP 403 Forbidden): check the credentials "
         "(token_env, or username + password_env)"),
        (200, {"Content-Type": "application/json"},
         b'{"status":"success","data":{"resultType":"vector","result":[]}}', PrometheusBadResponse,
         "answered a query_range for error_rate in an unexpected shape: expected a matrix"),
    ],
)  # fmt: skip
def test_foreign_answers_are_one_line_each(
    local_server: Callable, status: int, headers: dict, body: bytes, error: type, message: str
) -> None:
    server = local_server(lambda request, method, _: (status, headers, body))
    with pytest.raises(error) as caught:
        source(server.url, token_env="PROM_TOKEN").fetch(1_800_000_000 - 60, 1_800_000_000)
    text = str(caught.value)
    assert text.startswith(f"Prometheus at {server.url} ") and message in text
    assert "\n" not in text and "tok-secret" not in text


def test_a_slow_server_is_a_timeout(local_server: Callable) -> None:
    def slow(request, method, body):
        time.sleep(1.0)
        return 200, {}, b"{}"

    server = local_server(slow)
    with pytest.raises(PrometheusTimeout) as caught:
        source(server.url, timeout_s=0.2).fetch(1_800_000_000 - 60, 1_800_000_000)
    assert str(caught.value) == f"Prometheus at {server.url} did not answer within 0.2 s"
