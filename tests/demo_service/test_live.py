"""The real processes: deployer, instances and load on loopback (each test takes seconds)."""

from __future__ import annotations

import itertools
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest
import requests

from demo_service.load import LoadGenerator
from demo_service.testing import PACKAGE_PARENT, free_port
from tests.waiting import patience, wait_until

pytestmark = pytest.mark.live
MB = 1024 * 1024


def wait_for(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    return wait_until(predicate, timeout, step=interval, what=what)


def served_version(url: str) -> str | None:
    try:
        return requests.get(url + "/", timeout=2).json()["version"]
    except (requests.RequestException, ValueError, KeyError):
        return None


def test_leak_climbs_fails_and_rollback_recovers(demo_stack):
    stack = demo_stack(load_rps=20)
    wait_for(
        lambda: (stack.metric("http_requests_total", version="v1.0.0", status="200") or 0) >= 5,
        10,
        what="baseline traffic",
    )
    idle_rss = stack.metric("process_resident_memory_bytes")

    started = time.monotonic()
    deployment = stack.deploy("v1.2.0-leak", by="alice", reason="new product cache")
    deploy_s = time.monotonic() - started
    assert deployment["version"] == "v1.2.0-leak" and deployment["previous_version"] == "v1.0.0"
    assert stack.serving_versions() == ["v1.2.0-leak"]
    assert stack.metric("service_memory_limit_bytes") == 256 * MB

    # The real RSS climbs until 90 % of the limit.
    samples = []

    def at_threshold():
        samples.append(stack.metric("process_resident_memory_bytes"))
        return samples[-1] >= 0.9 * 256 * MB

    wait_for(at_threshold, 25, 0.25, "RSS at 90 % of 256 MB")
    leak_s = time.monotonic() - started - deploy_s
    assert samples[-1] - samples[0] > 150 * MB
    assert sum(b > a for a, b in itertools.pairwise(samples)) >= len(samples) // 2

    # Then requests fail with 5xx and "out of memory" ERROR lines.
    wait_for(
        lambda: (stack.metric("http_requests_total", version="v1.2.0-leak", status="500") or 0) >= 3,
        5,
        what="5xx from the leaking version",
    )
    oom = [line for line in stack.log_lines() if line.get("message", "").startswith("out of memory: rss")]
    assert oom and all(line["level"] == "ERROR" and line["version"] == "v1.2.0-leak" for line in oom)
    assert re.fullmatch(r"out of memory: rss \d+ MB of 256 MB limit", oom[0]["message"])
    assert oom[0]["status"] == 500 and oom[0]["route"].startswith("/api/")

    started = time.monotonic()
    rollback = stack.rollback(by="bob", reason="memory leak")
    rollback_s = time.monotonic() - started
    assert rollback["kind"] == "rollback" and rollback["version"] == "v1.0.0"
    assert rollback["previous_version"] == "v1.2.0-leak" and rollback["by"] == "bob"
    assert stack.serving_versions() == ["v1.0.0"]
    assert stack.metric("process_resident_memory_bytes") < 100 * MB
    before = stack.metric("http_requests_total", version="v1.0.0", status="200") or 0
    wait_for(
        lambda: (stack.metric("http_requests_total", version="v1.0.0", status="200") or 0) > before + 5,
        5,
        what="the previous version serving the load again",
    )
    assert not stack.metric("http_requests_total", version="v1.0.0", status="500")

    history = stack.deployments()
    assert [(r["kind"], r["version"], r["previous_version"], r["by"]) for r in history] == [
        ("rollback", "v1.0.0", "v1.2.0-leak", "bob"),
        ("deploy", "v1.2.0-leak", "v1.0.0", "alice"),
    ]
    assert history[0]["reason"] == "memory leak" and history[0]["at"] > history[1]["at"]
    status = stack.status()
    assert (status["version"], status["previous_version"], status["ready"]) == ("v1.0.0", "v1.2.0-leak", True)
    assert stack.metric("service_deployments_total", "deployer", kind="rollback") == 1
    print(
        f"\nidle rss {idle_rss / MB:.0f} MB; deploy {deploy_s * 1000:.0f} ms; leak to 90 % of 256 MB "
        f"in {leak_s:.1f} s after the deploy; rollback {rollback_s * 1000:.0f} ms; {stack.stop_load()}"
    )


def test_rolling_deploys_under_load_lose_no_request(demo_stack):
    stack = demo_stack()
    switch_ms = []
    versions = ["v1.0.1", "v1.1.0-fast", "v1.0.0"] * 2
    with LoadGenerator(stack.service_url, rps=20, workers=4) as load:

        def more_requests(count: int) -> None:
            """Wait until the load has sent ``count`` more requests (traffic on the version serving)."""
            target = load.stats.sent + count
            wait_for(lambda: load.stats.sent >= target, 30, 0.02, f"{count} more requests")

        more_requests(20)
        for version in versions:
            started = time.monotonic()
            done = threading.Event()
            thread = threading.Thread(target=lambda v=version: (stack.deploy(v, by="ci"), done.set()))
            thread.start()
            # deploy request -> the first answer from the new version
            wait_for(lambda v=version: served_version(stack.service_url) == v, 10, 0.01, f"{version} serving")
            switch_ms.append((time.monotonic() - started) * 1000)
            thread.join(timeout=30)
            assert done.is_set()
            more_requests(8)
        more_requests(10)
    stats = load.stats
    lost = stats.failed + stats.server_errors
    print(
        f"\n{len(versions)} rolling deploys at 20 req/s: {stats.sent} requests, lost {lost} "
        f"({dict(stats.failures)}, 5xx {stats.server_errors}); request -> new version serving "
        f"median {sorted(switch_ms)[len(switch_ms) // 2]:.0f} ms, max {max(switch_ms):.0f} ms"
    )
    assert stats.sent >= 20 * 4
    assert lost == 0, stats.summary()
    assert stack.serving_versions() == ["v1.0.0"]


def test_crash_loop_is_restarted_and_counted_then_replaced(demo_stack):
    stack = demo_stack()
    stack.deploy("v9.0.0-crashy", by="ci", behaviour={"crash_after_s": 1})
    wait_for(lambda: (stack.metric("service_restarts_total", "deployer") or 0) >= 2, 15, 0.2, "two restarts")
    assert stack.status()["restarts"] >= 2
    lines = stack.log_lines()
    fatal = [line for line in lines if line.get("message", "").startswith("fatal:")]
    assert fatal and fatal[0]["level"] == "ERROR" and fatal[0]["fault"] == "crash_after_s"
    backoff = [
        line for line in lines if line.get("message", "").startswith("back-off restarting failed instance")
    ]
    assert backoff and "exited with code 137" in backoff[0]["message"] and backoff[0]["source"] == "deployer"

    # A deploy is taken even while the crashed instance waits for its restart.
    fix = stack.deploy("v1.0.0", by="ci", reason="stop the crash loop")
    assert fix["previous_version"] == "v9.0.0-crashy"
    status = stack.status()
    assert status["ready"] and status["restarts"] == 0 and status["version"] == "v1.0.0"
    restarts = stack.metric("service_restarts_total", "deployer")
    time.sleep(1.5)
    assert stack.metric("service_restarts_total", "deployer") == restarts
    assert stack.serving_versions() == ["v1.0.0"]


def test_api_auth_and_bad_requests(demo_stack):
    stack = demo_stack()
    protected = [
        ("GET", "/status", None),
        ("GET", "/versions", None),
        ("GET", "/deployments", None),
        ("POST", "/deploy", {"version": "v1.0.1", "by": "x"}),
        ("POST", "/rollback", {"by": "x"}),
        ("POST", "/restart", {"by": "x"}),
    ]
    for method, path, body in protected:
        for token in ("", "wrong-" + stack.token):
            response = stack.api(method, path, body, token=token)
            assert response.status_code == 401, (method, path)
            assert response.json() == {"error": "missing or wrong bearer token"}
    assert stack.deployments() == []  # nothing was deployed by the refused calls
    assert requests.get(stack.deployer_url + "/health", timeout=5).json() == {
        "ok": True,
        "service": "demo-service",
        "version": "v1.0.0",
        "ready": True,
    }
    assert requests.get(stack.deployer_url + "/metrics", timeout=5).status_code == 200

    status = stack.status()
    assert set(status) == {
        "service",
        "version",
        "previous_version",
        "behaviour",
        "pid",
        "started_at",
        "ready",
        "restarts",
        "deploying",
        "deployment_id",
        "switched_at",
    }
    listed = stack.api("GET", "/versions").json()["versions"]
    assert [v["version"] for v in listed][:4] == ["v1.0.0", "v1.0.1", "v1.1.0-fast", "v1.2.0-leak"]

    def error(method, path, body=None, raw=None):
        if raw is not None:
            response = requests.post(stack.deployer_url + path, data=raw, headers=stack.headers, timeout=10)
        else:
            response = stack.api(method, path, body)
        return response.status_code, response.json()["error"]

    assert error("POST", "/deploy", raw=b"{not json") == (400, "the body is not valid JSON")
    assert error("POST", "/deploy", {"by": "x"}) == (400, "field 'version' is required")
    assert error("POST", "/deploy", {"version": "v1.0.1"}) == (400, "field 'by' is required")
    code, message = error("POST", "/deploy", {"version": "v2", "by": "x", "behaviour": {"cpu_burn": 1}})
    assert code == 400 and message.startswith("behaviour.cpu_burn is not a behaviour key")
    code, message = error("POST", "/deploy", {"version": "v2", "by": "x", "behaviour": {"error_ratio": 7}})
    assert code == 400 and message.startswith("behaviour.error_ratio must be between 0 and 1")
    code, message = error("POST", "/deploy", {"version": "v7.7.7", "by": "x"})
    assert code == 404 and message.startswith("unknown version 'v7.7.7'")
    assert error("POST", "/rollback", {"by": "x", "to": "v8.8.8"}) == (404, "unknown version 'v8.8.8'")
    assert error("POST", "/rollback", {"by": "x"}) == (409, "no previous version to roll back to from v1.0.0")
    assert error("GET", "/deployments?limit=0")[0] == 400
    assert error("GET", "/nope")[0] == 404
    assert error("GET", "/deploy")[0] == 405
    assert stack.deployments() == []

    restart = stack.restart(by="carol")
    assert (restart["kind"], restart["version"], restart["previous_version"]) == (
        "restart",
        "v1.0.0",
        "v1.0.0",
    )
    assert stack.status()["pid"] != status["pid"]
    stack.stop()
    everything = (
        stack.log_file.read_text() + stack.output() + (stack.state_dir / "deployments.jsonl").read_text()
    )
    assert stack.token not in everything


def test_a_second_deploy_while_one_runs_is_refused_and_in_flight_requests_drain(demo_stack):
    stack = demo_stack()
    stack.deploy("v9.1.0-slow", by="ci", behaviour={"latency_ms": 0, "extra_latency_ms": 1500})
    slow: dict = {}
    request = threading.Thread(
        target=lambda: slow.update(r=requests.get(stack.service_url + "/api/items", timeout=10))
    )
    request.start()
    time.sleep(0.2)  # the slow request is in flight in the old instance
    first: dict = {}
    deploy = threading.Thread(
        target=lambda: first.update(d=stack.api("POST", "/deploy", {"version": "v1.0.0", "by": "a"}))
    )
    deploy.start()
    wait_for(lambda: stack.status()["deploying"], 5, 0.02, "the deploy in progress")
    second = stack.api("POST", "/deploy", {"version": "v1.0.1", "by": "b"})
    assert second.status_code == 409 and second.json() == {"error": "a deploy is already in progress"}
    deploy.join(timeout=30)
    request.join(timeout=30)
    assert first["d"].status_code == 200
    # The old instance finished the request it had accepted before it stopped.
    assert slow["r"].status_code == 200 and slow["r"].json()["version"] == "v9.1.0-slow"
    assert stack.serving_versions() == ["v1.0.0"] and not stack.status()["deploying"]


def test_a_new_instance_that_cannot_start_is_a_503_and_the_old_one_keeps_serving(demo_stack):
    stack = demo_stack()
    # The running processes keep their open log file; a directory in its place makes the next
    # instance fail at start-up (a real start-up failure, no test hook in the service).
    moved = stack.log_file.with_suffix(".moved")
    stack.log_file.rename(moved)
    stack.log_file.mkdir()
    try:
        response = stack.api("POST", "/deploy", {"version": "v1.0.1", "by": "alice"})
    finally:
        stack.log_file.rmdir()
        moved.rename(stack.log_file)
    assert response.status_code == 503
    message = response.json()["error"]
    assert message.startswith("the new instance of v1.0.1 exited before it was ready (code 2): demo-service:")
    assert "Is a directory" in message and "\n" not in message
    assert stack.serving_versions() == ["v1.0.0"]
    status = stack.status()
    assert status["version"] == "v1.0.0" and status["ready"] and not status["deploying"]
    assert stack.deployments() == []
    assert stack.deploy("v1.0.1", by="alice")["previous_version"] == "v1.0.0"
    failed = [
        line for line in stack.log_lines() if line.get("message", "").startswith("deploy to v1.0.1 failed")
    ]
    assert failed and failed[0]["level"] == "ERROR" and failed[0]["message"].endswith("v1.0.0 keeps serving")


class Receiver(BaseHTTPRequestHandler):
    """Records announcements; answers 500 to the first one to make the deployer retry."""

    received: ClassVar[list] = []
    calls = 0

    deployed = threading.Event()
    held_until_deployed = False

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).calls += 1
        if type(self).calls == 1:  # held until the deploy returned, then a failure
            type(self).held_until_deployed = type(self).deployed.wait(patience(30))
            self.send_response(500)
        else:
            type(self).received.append((self.headers.get("Authorization"), json.loads(body)))
            self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_deploys_are_announced_in_the_background_with_retry(demo_stack):
    Receiver.received, Receiver.calls, Receiver.deployed = [], 0, threading.Event()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    receiver_url = f"http://127.0.0.1:{server.server_address[1]}/hooks/deploy"
    dead_url = f"http://127.0.0.1:{free_port()}/nobody-here"
    try:
        stack = demo_stack(
            notify_urls=[dead_url, receiver_url],
            notify_token_env="DEMO_NOTIFY_TOKEN",
            env={"DEMO_NOTIFY_TOKEN": "n0tify-secret"},
        )
        deployment = stack.deploy("v1.0.1", by="alice")  # returns while the receiver holds its answer
        Receiver.deployed.set()
        wait_for(lambda: Receiver.received, 10, 0.05, "the announcement")
        assert Receiver.held_until_deployed  # neither the dead URL nor the receiver held the deploy
        authorization, payload = Receiver.received[0]
        assert authorization == "Bearer n0tify-secret"
        assert payload == {
            "service": "demo-service",
            "version": "v1.0.1",
            "previous_version": "v1.0.0",
            "environment": "live-demo",
            "deployed_by": "alice",
            "deployed_at": deployment["at"],
            "deployment_id": deployment["id"],
            "source": "demo-deployer",
        }
        assert Receiver.calls == 2  # one failure, one retry
        stack.rollback(by="bob")  # rollbacks are not announced (the loop would trigger on its own action)
        wait_for(
            lambda: any(
                "not announced to " + dead_url in line.get("message", "") for line in stack.log_lines()
            ),
            10,
            0.1,
            "the dead URL given up",
        )
        again = stack.deploy("v1.1.0-fast", by="alice")  # announced after anything the rollback had queued
        wait_for(lambda: len(Receiver.received) >= 2, 10, 0.05, "the second announcement")
        assert [p["deployment_id"] for _, p in Receiver.received] == [deployment["id"], again["id"]]
        messages = [line["message"] for line in stack.log_lines()]
        assert any(f"announced to {receiver_url} (attempt 2)" in m for m in messages)
        assert any(m.endswith("after 3 attempts: ConnectionError") for m in messages)
        stack.stop()
        assert "n0tify-secret" not in stack.log_file.read_text() + stack.output()
    finally:
        server.shutdown()
        server.server_close()


def test_a_restarted_deployer_keeps_its_history_and_version(demo_stack):
    stack = demo_stack()
    stack.deploy("v1.1.0-fast", by="alice")
    stack.deploy("v9.2.0-custom", by="bob", behaviour={"latency_ms": 5, "error_ratio": 0.01})
    before = stack.deployments()

    # A second deployer on the same state directory is refused.
    other = subprocess.run(
        [
            sys.executable,
            "-m",
            "demo_service.deployer",
            "--port",
            str(free_port()),
            "--service-port",
            str(free_port()),
            "--log-file",
            str(stack.workdir / "other.log"),
            "--state-dir",
            str(stack.state_dir),
        ],
        env=stack.env,
        cwd=PACKAGE_PARENT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert other.returncode == 2 and "is in use by another deployer" in other.stderr

    stack.stop_deployer()
    wait_for(lambda: not stack.instance_pids(), 5, 0.05, "no instance left after SIGTERM")
    stack.start_deployer()
    status = stack.status()
    assert (status["version"], status["previous_version"]) == ("v9.2.0-custom", "v1.1.0-fast")
    assert status["behaviour"]["error_ratio"] == 0.01 and status["behaviour"]["latency_ms"] == 5
    assert stack.deployments() == before
    assert stack.serving_versions() == ["v9.2.0-custom"]
    # The ad-hoc version can be rolled back to, and back again, by name.
    stack.rollback(by="carol")
    assert stack.serving_versions() == ["v1.1.0-fast"]
    back = stack.rollback(by="carol", to="v9.2.0-custom")
    assert back["behaviour"]["error_ratio"] == 0.01


def test_instances_do_not_outlive_a_killed_deployer(demo_stack):
    stack = demo_stack()
    pid = stack.status()["pid"]
    assert stack.instance_pids() == [pid]
    stack.proc.send_signal(signal.SIGKILL)
    stack.proc.wait(timeout=5)
    wait_for(lambda: not stack.instance_pids(), 5, 0.05, "the instance to notice its deployer died")
    assert any("the deployer went away" in line.get("message", "") for line in stack.log_lines())


def test_load_cli_prints_one_summary_line(demo_stack):
    stack = demo_stack()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "demo_service.load",
            "--target",
            stack.service_url,
            "--rps",
            "20",
            "--duration",
            "2",
        ],
        cwd=PACKAGE_PARENT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 1
    match = re.match(
        r"load on http://127\.0\.0\.1:\d+: (\d+) requests in [\d.]+ s \([\d.]+ req/s\); status 200=(\d+);",
        lines[0],
    )
    assert match and 30 <= int(match.group(1)) <= 45 and match.group(1) == match.group(2), lines[0]


# ---- start-up refusals (quick: the deployer exits before starting anything) ---------------------


def run_deployer(tmp_path: Path, *extra: str, env: dict | None = None) -> subprocess.CompletedProcess:
    args = [
        "--port",
        str(free_port()),
        "--service-port",
        str(free_port()),
        "--log-file",
        str(tmp_path / "x.log"),
        "--state-dir",
        str(tmp_path / "state"),
        *extra,
    ]
    full_env = {k: v for k, v in os.environ.items() if k != "DEMO_DEPLOYER_TOKEN"}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "demo_service.deployer", *args],
        env=full_env,
        cwd=PACKAGE_PARENT,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize(
    ("extra", "env", "message"),
    [
        (
            (),
            {},
            "demo deployer: DEMO_DEPLOYER_TOKEN is not set; refusing to start an unauthenticated deployer",
        ),
        (
            ("--notify-token-env", "NO_SUCH_VAR_X"),
            {"DEMO_DEPLOYER_TOKEN": "t"},
            "demo deployer: --notify-token-env names NO_SUCH_VAR_X, which is not set",
        ),
        (
            ("--initial-version", "v0"),
            {"DEMO_DEPLOYER_TOKEN": "t"},
            "demo deployer: --initial-version 'v0' is not in versions.yaml",
        ),
        (
            ("--notify-url", "ftp://x"),
            {"DEMO_DEPLOYER_TOKEN": "t"},
            "demo deployer: --notify-url must be an http(s) URL",
        ),
    ],
)
def test_deployer_refuses_to_start_with_one_clear_line(tmp_path, extra, env, message):
    result = run_deployer(tmp_path, *extra, env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == message


def test_malformed_versions_file_is_one_line(tmp_path):
    bad = tmp_path / "versions.yaml"
    bad.write_text("versions:\n  v1.0.0:\n    description: ok\n    behaviour: {error_ratio: 2}\n")
    result = run_deployer(tmp_path, "--versions-file", str(bad), env={"DEMO_DEPLOYER_TOKEN": "t"})
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "demo deployer: versions.yaml: versions.v1.0.0.behaviour.error_ratio must be between 0 and 1 (got 2)"
    )


def test_a_busy_service_port_is_one_line(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_deployer(tmp_path, "--service-port", str(port), env={"DEMO_DEPLOYER_TOKEN": "t"})
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"demo deployer: cannot listen on 127.0.0.1:{port} for the service: Address already in use"
    )


def test_a_keyed_switch_acts_once_and_an_expected_version_guards_it(demo_stack):
    """The two guards the loop's calls carry: ``Idempotency-Key`` (the same key again gets the first
    switch's record, nothing is done twice, even across a restart of the deployer) and
    ``expected_version`` (409 with what runs, nothing done, when another version runs)."""
    stack = demo_stack()
    stack.deploy("v1.2.0-leak", by="alice")
    leak = stack.status()
    assert leak["deployment_id"] == stack.deployments()[0]["id"] and leak["switched_at"]
    keyed = {**stack.headers, "Idempotency-Key": "devops-loop-test-1"}
    body = {"by": "bob", "to": "v1.0.0", "expected_version": "v1.2.0-leak"}

    def post(path: str, payload: dict, headers: dict) -> requests.Response:
        return requests.post(stack.deployer_url + path, json=payload, headers=headers, timeout=60)

    first = post("/rollback", body, keyed)
    assert first.status_code == 200 and first.json()["replayed"] is False
    again = post("/rollback", body, keyed)
    assert again.status_code == 200 and again.json() == {**first.json(), "replayed": True}
    assert [d["kind"] for d in stack.deployments()] == ["rollback", "deploy"]
    assert stack.serving_versions() == ["v1.0.0"]

    # the decision was about the leak; v1.0.0 runs now: refused with what runs, nothing done
    stale = post("/rollback", {**body, "to": "v1.1.0-fast"}, {**stack.headers, "Idempotency-Key": "k-2"})
    assert stale.status_code == 409
    assert (
        stale.json()["error"]
        == "the service runs v1.0.0, not v1.2.0-leak (expected_version): nothing was done"
    )
    assert stale.json()["current"]["version"] == "v1.0.0"
    assert stale.json()["current"]["deployment_id"] == first.json()["deployment"]["id"]
    assert [d["kind"] for d in stack.deployments()] == ["rollback", "deploy"]

    stack.stop_deployer()
    stack.start_deployer()
    replay = post("/rollback", body, keyed)  # the key survives the restart in the history file
    assert replay.status_code == 200 and replay.json()["deployment"] == first.json()["deployment"]
    assert [d["kind"] for d in stack.deployments()] == ["rollback", "deploy"]
    assert (
        post("/restart", {"by": "carol"}, {**stack.headers, "Idempotency-Key": "bad key"}).status_code == 400
    )


def test_a_port_taken_between_its_pick_and_the_deployers_bind_is_picked_again(tmp_path, monkeypatch):
    """The OS-picked service port is taken by another process before the deployer binds it (as
    parallel tests do): the stack starts on newly picked ports instead of failing."""
    import demo_service.testing as testing

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    busy = taken.getsockname()[1]
    picks = iter([free_port(), busy])  # the deployer's port, then the service's: already taken
    monkeypatch.setattr(testing, "free_port", lambda: next(picks, None) or free_port())
    stack = testing.start_demo_stack(tmp_path / "stack")
    try:
        assert stack.service_port != busy
        assert requests.get(f"{stack.service_url}/healthz", timeout=5).status_code == 200
    finally:
        stack.stop()
        taken.close()
