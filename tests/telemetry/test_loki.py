"""The Loki source with the real ``requests`` client against a local server that answers exactly
in Loki's documented shape (no Loki server installs here):

- ``GET /loki/api/v1/query_range?query&start&end&limit&direction`` with start/end in Unix ns,
  ``start <= ts < end``, at most ``limit`` entries, the earliest first for ``direction=forward``;
- ``{"status": "success", "data": {"resultType": "streams", "result": [{"stream": {labels},
  "values": [["<ns as string>", "<line>"], ...]}], "stats": {...}}}``;
- errors as plain text: 400 ``parse error at line 1, col N: ...``, 401 ``no org id`` without the
  tenant header, 400 when ``limit`` passes ``max_entries_limit_per_query`` (5000).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from urllib.parse import parse_qs, urlsplit

import pytest

from console.telemetry.config import LokiLogsConfig
from console.telemetry.errors import (
    LokiAuthError,
    LokiBadResponse,
    LokiQueryError,
    LokiServerError,
    LokiTimeout,
    LokiUnreachable,
)
from console.telemetry.logs import LokiSource
from tests.telemetry.conftest import LocalServer

NS = 1_000_000_000
T0 = 1_800_000_000 * NS
Entry = tuple[int, str]


class LokiLike:
    """Loki's query_range contract over in-memory streams."""

    def __init__(
        self, streams: list[tuple[dict[str, str], list[Entry]]], *, tenant: str | None = None,
        token: str | None = None, max_entries: int = 5000,
    ) -> None:  # fmt: skip
        self.streams = streams
        self.tenant = tenant
        self.token = token
        self.max_entries = max_entries

    def __call__(self, request: BaseHTTPRequestHandler, method: str, body: bytes) -> tuple[int, dict, bytes]:
        text = {"Content-Type": "text/plain; charset=utf-8"}
        url = urlsplit(request.path)
        if method != "GET" or url.path != "/loki/api/v1/query_range":
            return 404, text, b"404 page not found\n"
        if self.tenant and request.headers.get("X-Scope-OrgID") != self.tenant:
            return 401, text, b"no org id\n"
        if self.token and request.headers.get("Authorization") != f"Bearer {self.token}":
            return 401, text, b"authentication required\n"
        params = {k: v[0] for k, v in parse_qs(url.query).items()}
        query = params["query"]
        if "|~~" in query:
            return 400, text, b"parse error at line 1, col 14: syntax error: unexpected ~\n"
        limit = int(params.get("limit", 100))
        if limit > self.max_entries:
            return (
                400,
                text,
                f"max entries limit per query exceeded, limit > max_entries_limit "
                f"({limit} > {self.max_entries})\n".encode(),
            )
        if query.startswith(("rate(", "count_over_time(")):
            doc = {"status": "success", "data": {"resultType": "matrix", "result": []}}
            return 200, {"Content-Type": "application/json"}, json.dumps(doc).encode()
        start, end = int(params["start"]), int(params["end"])
        assert params["direction"] == "forward"
        picked = sorted(
            ((ts, i, line, labels) for i, (labels, entries) in enumerate(self.streams) for ts, line in entries
             if start <= ts < end),
            key=lambda e: (e[0], e[1]),
        )[:limit]  # fmt: skip
        grouped: dict[int, dict] = {}
        for ts, i, line, labels in picked:
            grouped.setdefault(i, {"stream": labels, "values": []})["values"].append([str(ts), line])
        doc = {
            "status": "success",
            "data": {"resultType": "streams", "result": list(grouped.values()),
                     "stats": {"summary": {"totalEntriesReturned": len(picked)}}},
        }  # fmt: skip
        return 200, {"Content-Type": "application/json"}, json.dumps(doc).encode()


def config(url: str, **kw: object) -> LokiLogsConfig:
    return LokiLogsConfig(url=url, query='{app="payments"}', **kw)  # type: ignore[arg-type]


def pages(server: LocalServer) -> list[dict[str, str]]:
    return [
        {k: v[0] for k, v in parse_qs(urlsplit(path).query).items()} for _, path, _, _ in server.requests_seen
    ]


@pytest.fixture
def two_streams() -> list[tuple[dict[str, str], list[Entry]]]:
    """25 entries, 100 ms apart, alternating between two pods."""
    a = [(T0 + i * NS // 10, f"GET /pay/{i} 200") for i in range(0, 25, 2)]
    b = [(T0 + i * NS // 10, f"GET /pay/{i} 200") for i in range(1, 25, 2)]
    return [({"app": "payments", "pod": "pay-a"}, a), ({"app": "payments", "pod": "pay-b"}, b)]


def test_pages_forward_through_the_window_in_time_order(local_server: Callable, two_streams) -> None:
    server = local_server(LokiLike(two_streams, tenant="team-a", token="tok-9"))
    source = LokiSource.from_config(
        config(server.url, tenant="team-a", token_env="LOKI_TOKEN", page_size=10), env={"LOKI_TOKEN": "tok-9"}
    )
    result = source.read(T0 / NS, T0 / NS + 10)
    assert [r["message"] for r in result.records] == [f"GET /pay/{i} 200" for i in range(25)]
    assert result.records[0] == {
        "ts": "2027-01-15T08:00:00Z",
        "level": "INFO",
        "message": "GET /pay/0 200",
        "source": '{app="payments",pod="pay-a"}',
    }
    assert result.records[1]["ts"] == "2027-01-15T08:00:00.100Z"
    assert not result.cut and result.notes == []
    sent = pages(server)
    assert len(sent) == 3
    assert all(p["direction"] == "forward" and p["query"] == '{app="payments"}' for p in sent)
    assert sent[0]["start"] == str(T0) and sent[0]["end"] == str(T0 + 10 * NS + 1)  # end is exclusive
    # the next page starts at the last timestamp returned (inclusive: that entry comes again and
    # is skipped, so 10 + 9 + 6 entries)
    assert sent[1]["start"] == str(T0 + 9 * NS // 10) and sent[2]["start"] == str(T0 + 18 * NS // 10)
    for _, _, headers, _ in server.requests_seen:
        assert headers["X-Scope-OrgID"] == "team-a" and headers["Authorization"] == "Bearer tok-9"
    assert "tok-9" not in repr(source)


def test_entries_sharing_a_timestamp_across_a_page_boundary(local_server: Callable) -> None:
    same = T0 + 5 * NS
    streams = [
        ({"pod": "a"}, [(T0 + i * NS, f"a{i}") for i in range(5)] + [(same, f"same-a{k}") for k in range(4)]),
        ({"pod": "b"}, [(same, f"same-b{k}") for k in range(3)] + [(T0 + 6 * NS, "after")]),
    ]
    server = local_server(LokiLike(streams))
    result = LokiSource(config(server.url, page_size=6)).read(T0 / NS, T0 / NS + 10)
    messages = [r["message"] for r in result.records]
    assert messages[:5] == [f"a{i}" for i in range(5)]
    assert sorted(messages[5:12]) == sorted(
        [f"same-a{k}" for k in range(4)] + [f"same-b{k}" for k in range(3)]
    )
    assert messages[12:] == ["after"]
    assert len(messages) == len(set(messages)) == 13


def test_the_line_budget_cuts_with_a_note(local_server: Callable, two_streams) -> None:
    server = local_server(LokiLike(two_streams))
    result = LokiSource(config(server.url, page_size=5, max_lines=12)).read(T0 / NS, T0 / NS + 10)
    assert len(result.records) == 12 and result.cut
    assert result.notes == [
        "logs: cut at 12 lines from Loki: lines after 2027-01-15T08:00:01.100Z in that window were left out"
    ]
    exact = LokiSource(config(server.url, page_size=5, max_lines=25)).read(T0 / NS, T0 / NS + 10)
    assert len(exact.records) == 25 and not exact.cut


def test_window_edges_and_levels(local_server: Callable) -> None:
    streams = [
        ({"app": "x", "level": "error"}, [(T0, "boom")]),
        ({"app": "x"}, [
            (T0 + NS, json.dumps({"level": "warn", "message": "slow query", "ts": "ignored"})),
            (T0 + 2 * NS, "2027-01-15 WARNING disk almost full"),
            (T0 + 3 * NS, "plain line"),
            (T0 + 4 * NS, "at the end"),
            (T0 + 5 * NS, "past the end"),
        ]),
    ]  # fmt: skip
    server = local_server(LokiLike(streams))
    source = LokiSource(config(server.url, source="payments"))
    result = source.read(T0 / NS, T0 / NS + 4)
    assert [(r["level"], r["message"]) for r in result.records] == [
        ("ERROR", "boom"), ("WARN", "slow query"), ("WARN", "2027-01-15 WARNING disk almost full"),
        ("INFO", "plain line"), ("INFO", "at the end"),
    ]  # fmt: skip
    assert {r["source"] for r in result.records} == {"payments"}
    assert source.read(T0 / NS, T0 / NS + 4, include_end=False).records[-1]["message"] == "plain line"


def test_loki_errors_are_one_clear_line_each(local_server: Callable, two_streams) -> None:
    server = local_server(LokiLike(two_streams, tenant="team-a"))
    with pytest.raises(LokiAuthError) as caught:
        LokiSource(config(server.url)).read(T0 / NS, T0 / NS + 1)
    assert str(caught.value) == (
        f"Loki at {server.url} refused the request (HTTP 401 Unauthorized): it needs credentials: "
        "set token_env (bearer) or username + password_env"
    )
    bad = LokiLogsConfig(url=server.url, query='{app="x"} |~~ "a"', tenant="team-a")
    with pytest.raises(LokiQueryError) as caught:
        LokiSource(bad).read(T0 / NS, T0 / NS + 1)
    assert str(caught.value) == (
        "Loki rejected the LogQL query (HTTP 400): parse error at line 1, col 14: syntax error: unexpected ~"
    )
    too_many = config(server.url, tenant="team-a", page_size=6000)
    with pytest.raises(LokiQueryError, match=r"max entries limit per query exceeded.*\(6000 > 5000\)$"):
        LokiSource(too_many).read(T0 / NS, T0 / NS + 10)
    metric = LokiLogsConfig(url=server.url, query='rate({app="x"}[1m])', tenant="team-a")
    with pytest.raises(LokiQueryError, match="is a metric query"):
        LokiSource(metric).read(T0 / NS, T0 / NS + 1)
    with pytest.raises(LokiBadResponse, match=r"has no /loki/api/v1/query_range \(HTTP 404\)"):
        LokiSource(config(server.url + "/wrong-prefix", tenant="team-a")).read(T0 / NS, T0 / NS + 1)


def test_transport_failures_and_foreign_answers(local_server: Callable) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens on it once closed
    with pytest.raises(LokiUnreachable) as caught:
        LokiSource(config(f"http://127.0.0.1:{port}")).read(T0 / NS, T0 / NS + 1)
    assert str(caught.value) == f"Loki at http://127.0.0.1:{port} is unreachable (connection refused)"

    def html(request, method, body):
        return 200, {"Content-Type": "text/html"}, b"<html><body>Sign in</body></html>"

    with pytest.raises(
        LokiBadResponse, match=r"answered HTTP 200 with a body that is not JSON \(text/html: "
    ):
        LokiSource(config(local_server(html).url)).read(T0 / NS, T0 / NS + 1)

    def overloaded(request, method, body):
        return 500, {"Content-Type": "text/plain"}, b"rpc error: code = Internal desc = ingester down\n"

    with pytest.raises(LokiServerError, match=r"failed \(HTTP 500 Internal Server Error\): rpc error"):
        LokiSource(config(local_server(overloaded).url)).read(T0 / NS, T0 / NS + 1)

    def slow(request, method, body):
        time.sleep(1.0)
        return 200, {}, b"{}"

    with pytest.raises(LokiTimeout, match=r"did not answer within 0.2 s$"):
        LokiSource(config(local_server(slow).url, timeout_s=0.2)).read(T0 / NS, T0 / NS + 1)
