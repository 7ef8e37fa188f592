"""The pure parts of the deployer, the instance, the log and the load generator."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import datetime

import pytest

from demo_service import app
from demo_service.behaviour import Behaviour, load_versions
from demo_service.deployer import (
    ApiError,
    parse_body,
    parse_deploy,
    parse_limit,
    parse_restart,
    parse_rollback,
    token_matches,
)
from demo_service.history import DeploymentHistory, ServiceState, new_record
from demo_service.jsonlog import JsonLog, format_line
from demo_service.load import LoadGenerator, LoadStats
from demo_service.notify import announcement, safe_url
from demo_service.supervisor import describe_exit
from demo_service.testing import PACKAGE_PARENT

VERSIONS = load_versions()
MB = 1024 * 1024


def api_error(func, *args):
    with pytest.raises(ApiError) as caught:
        func(*args)
    assert "\n" not in caught.value.message
    return caught.value.status, caught.value.message


# ---- request bodies -------------------------------------------------------------------------------


def test_body_must_be_a_json_object():
    assert parse_body(b"") == {}
    assert api_error(parse_body, b"{nope") == (400, "the body is not valid JSON")
    assert api_error(parse_body, b"[1]") == (400, "the body must be a JSON object")
    assert api_error(parse_body, b"\xff\xfe") == (400, "the body is not valid JSON")


def test_deploy_of_a_declared_version_takes_its_behaviour():
    request = parse_deploy({"version": "v1.2.0-leak", "by": " alice "}, VERSIONS)
    assert request.kind == "deploy" and request.by == "alice" and request.version == "v1.2.0-leak"
    assert request.behaviour == VERSIONS["v1.2.0-leak"].behaviour


def test_deploy_with_a_behaviour_overrides_the_declared_one():
    request = parse_deploy(
        {"version": "v1.2.0-leak", "by": "a", "behaviour": {"leak_mb_per_s": 50}}, VERSIONS
    )
    assert request.behaviour.leak_mb_per_s == 50 and request.behaviour.memory_limit_mb == 256


def test_ad_hoc_version_needs_a_behaviour_or_a_recorded_one():
    status, message = api_error(parse_deploy, {"version": "v9.9.9", "by": "a"}, VERSIONS)
    assert status == 404 and "unknown version 'v9.9.9'" in message
    adhoc = parse_deploy({"version": "v9.9.9", "by": "a", "behaviour": {"error_ratio": 0.5}}, VERSIONS)
    assert adhoc.behaviour == Behaviour(error_ratio=0.5)
    recorded = Behaviour(extra_latency_ms=700)
    assert parse_deploy({"version": "v9.9.9", "by": "a"}, VERSIONS, recorded).behaviour == recorded


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"by": "a"}, "field 'version' is required"),
        ({"version": "v1.0.0"}, "field 'by' is required"),
        ({"version": "v1.0.0", "by": ""}, "field 'by' must be a non-empty string"),
        ({"version": "v1.0.0", "by": 7}, "field 'by' must be a non-empty string"),
        ({"version": "v1.0.0", "by": "a\nb"}, "field 'by' must be one line"),
        ({"version": "v 1", "by": "a"}, "field 'version' must be a version name"),
        ({"version": "v1.0.0", "by": "a", "who": "b"}, "unknown field 'who'"),
        ({"version": "v1.0.0", "by": "a", "behaviour": {"leak": 1}}, "behaviour.leak is not a behaviour key"),
        ({"version": "v1.0.0", "by": "a", "behaviour": {"error_ratio": 3}}, "behaviour.error_ratio must be"),
        ({"version": "v1.0.0", "by": "a", "behaviour": "slow"}, "behaviour must be a mapping"),
        (
            {"version": "v1.0.0", "by": "a", "reason": "x" * 501},
            "field 'reason' must be one line of at most 500",
        ),
    ],
)
def test_bad_deploy_bodies_name_the_field(body, message):
    status, text = api_error(parse_deploy, body, VERSIONS)
    assert status == 400 and text.startswith(message)


def test_rollback_and_restart_bodies():
    request = parse_rollback({"by": "bob", "to": "v1.0.0", "reason": "memory leak"})
    assert (request.kind, request.by, request.version, request.reason) == (
        "rollback",
        "bob",
        "v1.0.0",
        "memory leak",
    )
    assert parse_rollback({"by": "bob"}).version is None
    assert api_error(parse_rollback, {"by": "bob", "to": "../etc"})[1].startswith(
        "field 'to' must be a version"
    )
    assert api_error(parse_rollback, {"by": "bob", "version": "v1"})[1].startswith("unknown field 'version'")
    assert parse_restart({"by": "carol"}).kind == "restart"
    assert api_error(parse_restart, {})[1] == "field 'by' is required"
    guarded = parse_rollback({"by": "bob", "to": "v1.0.0", "expected_version": "v1.2.0-leak"})
    assert guarded.expected_version == "v1.2.0-leak"
    assert parse_restart({"by": "carol", "expected_version": "v1.0.0"}).expected_version == "v1.0.0"
    assert api_error(parse_rollback, {"by": "bob", "expected_version": "a b"})[1].startswith(
        "field 'expected_version' must be a version"
    )


def test_idempotency_key_header():
    from demo_service.deployer import parse_key

    assert parse_key(None) is None
    assert parse_key(" devops-loop-3f2a ") == "devops-loop-3f2a"
    for bad in ("", "two words", "x" * 201, "tab\there"):
        with pytest.raises(ApiError) as caught:
            parse_key(bad)
        assert caught.value.status == 400


def test_limit():
    assert parse_limit("") == 50
    assert parse_limit("limit=3") == 3
    for bad in ("limit=0", "limit=1001", "limit=x"):
        assert api_error(parse_limit, bad)[0] == 400


def test_exit_descriptions():
    assert describe_exit(137) == "exited with code 137"
    assert describe_exit(-9) == "was killed by SIGKILL"


def test_token_check():
    assert token_matches("Bearer s3cret", "s3cret")
    assert not token_matches("Bearer s3cre", "s3cret")
    assert not token_matches("s3cret", "s3cret")
    assert not token_matches(None, "s3cret")
    assert not token_matches("Basic s3cret", "s3cret")


# ---- history --------------------------------------------------------------------------------------


def record(kind, version, previous, behaviour=None):
    return new_record(
        kind=kind,
        version=version,
        previous_version=previous,
        by="t",
        at="2026-11-29T17:00:00.000Z",
        behaviour=behaviour or Behaviour(),
    )


def test_history_survives_a_reload_and_replays_the_state(tmp_path):
    path = tmp_path / "deployments.jsonl"
    history = DeploymentHistory(path)
    leak = VERSIONS["v1.2.0-leak"].behaviour
    for item in (
        record("deploy", "v1.1.0-fast", "v1.0.0"),
        record("deploy", "v1.2.0-leak", "v1.1.0-fast", leak),
        record("restart", "v1.2.0-leak", "v1.2.0-leak", leak),
    ):
        history.append(item)
    reloaded = DeploymentHistory(path)
    assert [r["version"] for r in reloaded.newest_first(10)] == ["v1.2.0-leak", "v1.2.0-leak", "v1.1.0-fast"]
    state = reloaded.replay(ServiceState("v1.0.0", Behaviour()))
    assert (state.version, state.previous_version, state.behaviour) == ("v1.2.0-leak", "v1.1.0-fast", leak)
    # A rollback to the previous version makes the leak the previous one.
    state.advance(record("rollback", "v1.1.0-fast", "v1.2.0-leak"))
    assert (state.version, state.previous_version) == ("v1.1.0-fast", "v1.2.0-leak")
    # Redeploying the running version keeps what ran before it.
    state.advance(record("deploy", "v1.1.0-fast", "v1.1.0-fast"))
    assert state.previous_version == "v1.2.0-leak"
    assert reloaded.behaviour_of("v1.2.0-leak") == leak and reloaded.behaviour_of("v7") is None


def test_history_without_records_starts_at_the_initial_version(tmp_path):
    state = DeploymentHistory(tmp_path / "none.jsonl").replay(
        ServiceState("v1.0.1", Behaviour(latency_ms=36))
    )
    assert (state.version, state.previous_version, state.behaviour.latency_ms) == ("v1.0.1", None, 36)


def test_a_line_cut_short_is_skipped_not_fatal(tmp_path):
    path = tmp_path / "deployments.jsonl"
    good = record("deploy", "v1.0.1", "v1.0.0")
    path.write_text(json.dumps(good) + "\n" + json.dumps(good)[:40] + "\n" + '{"id": 1}\n')
    history = DeploymentHistory(path)
    assert len(history.records) == 1 and len(history.skipped) == 2
    assert history.skipped[0].startswith("deployments.jsonl line 2 skipped")


# ---- announcements and logs -----------------------------------------------------------------------


def test_announcement_shape():
    item = record("deploy", "v1.2.0-leak", "v1.0.0")
    assert announcement(item, "live-demo") == {
        "service": "demo-service",
        "version": "v1.2.0-leak",
        "previous_version": "v1.0.0",
        "environment": "live-demo",
        "deployed_by": "t",
        "deployed_at": "2026-11-29T17:00:00.000Z",
        "deployment_id": item["id"],
        "source": "demo-deployer",
    }


def test_urls_in_log_lines_lose_their_credentials():
    assert safe_url("https://user:pw@hooks.example:8443/x/y?token=abc") == "https://hooks.example:8443/x/y"


def test_log_line_format():
    line = json.loads(
        format_line("ERROR", "boom\nsecond line", "v1.0.0", 42, route="/api/items", status=None)
    )
    assert set(line) == {"ts", "level", "message", "service", "version", "pid", "route"}
    assert line["service"] == "demo-service" and line["pid"] == 42 and line["message"] == "boom\nsecond line"
    assert line["ts"].endswith("Z")
    datetime.strptime(line["ts"], "%Y-%m-%dT%H:%M:%S.%fZ")
    with pytest.raises(ValueError):
        format_line("DEBUG", "x", "v", 1)


WRITER = """
import sys
from demo_service.jsonlog import JsonLog
log = JsonLog(sys.argv[1], sys.argv[2])
for n in range(1500):
    log.info(sys.argv[2] * 300, n=n)
"""


def test_lines_from_processes_and_threads_never_interleave(tmp_path):
    """Two processes and two threads append ~1 KB lines to one file at once: every line parses."""
    path = tmp_path / "shared.log"
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(path), tag], cwd=PACKAGE_PARENT)
        for tag in ("ab", "cd")
    ]
    log = JsonLog(path, "v1")
    threads = [
        threading.Thread(target=lambda t=t: [log.info(t * 300, n=n) for n in range(1500)])
        for t in ("ef", "gh")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for proc in procs:
        assert proc.wait(timeout=30) == 0
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 4 * 1500
    assert {line["message"][:2] for line in lines} == {"ab", "cd", "ef", "gh"}


# ---- the instance's request logic ------------------------------------------------------------------


def make_instance(tmp_path, **behaviour):
    return app.Instance("v-test", Behaviour(latency_ms=0, **behaviour), JsonLog(tmp_path / "i.log", "v-test"))


def test_near_the_memory_limit_requests_fail_with_out_of_memory(tmp_path, monkeypatch):
    instance = make_instance(tmp_path, memory_limit_mb=256)
    monkeypatch.setattr(app, "rss_bytes", lambda: 231 * MB)  # 90.2 % of 256 MB
    status, body, message, fault = instance.api("/api/items")
    assert (status, body, message, fault) == (
        500,
        {"error": "out of memory"},
        "out of memory: rss 231 MB of 256 MB limit",
        "memory_limit_mb",
    )
    monkeypatch.setattr(app, "rss_bytes", lambda: 229 * MB)  # 89.5 %
    assert instance.api("/api/items")[0] == 200


def test_error_ratio_injects_5xx_with_realistic_messages(tmp_path):
    always = make_instance(tmp_path, error_ratio=1.0)
    results = [always.api("/api/checkout") for _ in range(20)]
    assert {status for status, *_ in results} <= {500, 502}
    assert all(
        message.startswith("checkout failed:") and fault == "error_ratio" for _, _, message, fault in results
    )
    never = make_instance(tmp_path, error_ratio=0.0)
    assert all(never.api("/api/items")[0] == 200 for _ in range(20))


def test_metrics_follow_the_contract(tmp_path):
    instance = make_instance(tmp_path, memory_limit_mb=256)
    text = instance.metrics.exposition().decode()
    assert 'service_build_info{service="demo-service",version="v-test"} 1.0' in text
    assert 'service_memory_limit_bytes{service="demo-service",version="v-test"} 2.68435456e+08' in text
    assert 'http_requests_total{service="demo-service",status="500",version="v-test"} 0.0' in text
    assert "process_resident_memory_bytes" in text and "process_cpu_seconds_total" in text
    assert "process_start_time_seconds" in text


def test_rss_is_the_real_one():
    before = app.rss_bytes()
    block = b"\x5a" * (64 * MB)
    assert app.rss_bytes() - before > 48 * MB
    del block


# ---- load -----------------------------------------------------------------------------------------


def test_load_summary_line():
    stats = LoadStats(started=0.0, stopped=10.0)
    stats.statuses.update({200: 180, 500: 20})
    stats.failures["ConnectionError"] = 2
    stats.skipped = 1
    stats.latencies_ms.extend(float(n) for n in range(1, 101))
    line = stats.summary("http://127.0.0.1:1")
    assert line == (
        "load on http://127.0.0.1:1: 202 requests in 10.0 s (20.2 req/s); status 200=180 500=20; "
        "no answer 2 (ConnectionError 2); skipped 1; latency p50 51 ms, p95 96 ms"
    )
    assert "\n" not in line and stats.server_errors == 20


@pytest.mark.parametrize(("rps", "workers"), [(0, 4), (2000, 4), (20, 0), (20, 100)])
def test_load_generator_refuses_unbounded_settings(rps, workers):
    with pytest.raises(ValueError):
        LoadGenerator("http://127.0.0.1:1", rps=rps, workers=workers)


def test_load_against_nothing_counts_failures_and_stays_bounded():
    """A dead target: requests fail fast, the ticker skips instead of queueing without bound."""
    with LoadGenerator("http://127.0.0.1:9", rps=50, workers=2, timeout=0.5) as generator:
        threading.Event().wait(1.0)
    stats = generator.stats
    assert stats.failed > 0 and not stats.statuses
    assert generator._ticks.qsize() <= 2
