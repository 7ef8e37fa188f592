"""The Scenarios page's Live section on a real deployer and a real Prometheus (livestack/stack.py without
its console: the page runs under AppTest), and ``scripts/live.sh`` itself: its checks, and a start
and a Ctrl-C that leave no process behind."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

from livestack.stack import FREE_PORTS, LiveStack, StackOptions, Windows, start_live_stack
from tests.live.conftest import require_prometheus
from tests.ui.conftest import (
    app_env,  # noqa: F401 -- the fixture (a private data dir, clean caches), used by name below
    password_of,
    signed_in_app,
    texts,
    wait_for,
)
from tests.waiting import patience

pytestmark = [pytest.mark.live]

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = PROJECT_ROOT / "scripts" / "live.sh"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    require_prometheus()
    started = start_live_stack(
        StackOptions(
            tmp_path_factory.mktemp("live-section"),
            ports=dict(FREE_PORTS),
            windows=Windows(3, 1, 0.5),  # a run launched here ends in seconds (its verdict is not tested)
            rps=10,
            console=False,
            passwords={name: password_of(name) for name in ("alice", "bob")},
        )
    )
    yield started
    started.stop()


@pytest.mark.usefixtures("app_env")
def test_live_section_shows_the_service_and_deploys_once_on_a_double_click(stack: LiveStack, monkeypatch):
    monkeypatch.setenv("CONSOLE_SERVICES_FILE", str(stack.services_file))
    monkeypatch.setenv("CONSOLE_SECRETS", str(stack.secrets_file))
    monkeypatch.setenv("DEMO_DEPLOYER_TOKEN", stack.demo.token)
    wait_for(lambda: stack.query('service:http_requests:rate5s{service="demo-service"}'), timeout=30)

    at = signed_in_app("alice", "scenarios")
    assert not at.exception, at.exception
    assert any("runs **v1.0.0**" in line for line in texts(at, "markdown")), texts(at, "markdown")
    versions = {
        b.key.removeprefix("deploy_demo-service_"): b for b in at.button if b.key.startswith("deploy_")
    }
    assert set(versions) == {"v1.0.0", "v1.0.1", "v1.1.0-fast", "v1.2.0-leak", "v1.3.0-slow",
                             "v1.4.0-errors", "v1.5.0-crashloop"}  # fmt: skip
    assert versions["v1.0.0"].disabled and not versions["v1.2.0-leak"].disabled
    import plotly.io

    titles = [plotly.io.from_json(c.proto.spec).layout.title.text for c in at.get("plotly_chart")]
    assert [t.split(" · ")[0] for t in titles] == ["Error rate", "p95 latency", "Request rate", "Memory use"]
    assert "Request rate · no data" not in titles
    links = [b.proto.url for b in at.get("link_button")]
    assert len(links) == 4 and all(link.startswith(f"{stack.prom.url}/graph?g0.expr=") for link in links)
    assert not texts(at, "error") and not texts(at, "warning")

    at.button(key="deploy_demo-service_v1.0.1").click().run()
    at.button(key="deploy_demo-service_v1.0.1").click().run()  # a double click
    assert any("not deployed again" in w for w in texts(at, "warning")), texts(at, "warning")
    from ui.services import get_services

    runs = wait_for(lambda: get_services().store.deployments.list(service="demo-service"), timeout=30)
    deploys = [d for d in stack.demo.deployments() if d["kind"] == "deploy"]
    assert [(d["version"], d["by"]) for d in deploys] == [("v1.0.1", "alice")]
    [row] = runs
    assert (row["source"], row["deployed_by"], row["version"]) == ("console", "alice", "v1.0.1")
    assert row["ref"] == deploys[0]["id"]  # the loop watches the deployer's own record
    launch = get_services().store.launches.get(row["execution_id"])
    assert launch["launched_by"] == "alice" and launch["source"] == "console sign-in"
    at.run()
    assert any("runs **v1.0.1**" in line for line in texts(at, "markdown"))


@pytest.mark.usefixtures("app_env")
def test_a_viewer_cannot_deploy(stack: LiveStack, monkeypatch, tmp_path):
    from tests.ui.conftest import write_users

    monkeypatch.setenv("CONSOLE_SERVICES_FILE", str(stack.services_file))
    monkeypatch.setenv("CONSOLE_SECRETS", str(write_users(tmp_path / "s.toml", vera="viewer")))
    monkeypatch.setenv("DEMO_DEPLOYER_TOKEN", stack.demo.token)
    before = len(stack.demo.deployments())
    at = signed_in_app("vera", "scenarios")
    at.button(key="deploy_demo-service_v1.3.0-slow").click().run()
    assert "vera has the viewer role: deploying needs approver or admin." in texts(at, "warning")
    assert len(stack.demo.deployments()) == before


# -- scripts/live.sh ----------------------------------------------------------------------------------


def _script_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVE_")}
    env.update(LIVE_SKIP_BOOTSTRAP="1", **extra)
    return env


def test_live_sh_check_says_what_is_missing_in_one_line_each(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [str(SCRIPT), "--check", "--state-dir", str(tmp_path / "s"), "--console-port", str(port)],
            env=_script_env(PROMETHEUS_BIN=str(tmp_path / "no-prometheus")),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert "live: prometheus not found: apt-get install prometheus (or set PROMETHEUS_BIN)" in lines
    assert any(f"port {port} (console) is in use on 127.0.0.1: pass --console-port" in line for line in lines)
    assert "Traceback" not in done.stderr


def test_a_second_start_while_the_stack_runs_is_one_clear_line(tmp_path):
    from contextlib import ExitStack

    from livestack.stack import DEFAULT_PORTS, StackError

    with ExitStack() as held:
        ports = {}
        for name in DEFAULT_PORTS:  # every port of the stack taken, as by a stack already running
            sock = held.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            sock.listen()
            ports[name] = sock.getsockname()[1]
        with pytest.raises(StackError) as raised:
            start_live_stack(StackOptions(tmp_path / "s", ports=ports, console=False))
    line = str(raised.value)
    assert "\n" not in line and "the live stack is probably running already" in line
    assert all(str(port) in line for port in ports.values())


def _own_processes(marker: str) -> list[str]:
    """Command lines of running processes that mention ``marker`` (this test's state directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if marker in cmdline:
            found.append(cmdline)
    return found


def test_live_sh_starts_everything_and_ctrl_c_stops_everything(tmp_path):
    require_prometheus()
    state = tmp_path / "state"
    out = tmp_path / "live.out"
    ports = [arg for name in FREE_PORTS for arg in (f"--{name}-port", "0")]
    with out.open("wb") as sink:
        proc = subprocess.Popen(
            [str(SCRIPT), "--state-dir", str(state), *ports, "--baseline", "3", "--rps", "5"],
            env=_script_env(),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches the whole group, as in a terminal
        )
    try:
        # every part is up once it says what it waits for (the console answered its health check)
        started = wait_for(lambda: "waiting for a steady baseline" in out.read_text(), timeout=90)
        assert started, out.read_text()
        text = out.read_text()
        url = next(line.split()[2] for line in text.splitlines() if line.startswith("live: console"))
        assert requests.get(f"{url}/_stcore/health", timeout=5).text == "ok"
        assert "alice / " in text and "bob / " in text  # the demo's passwords, printed once
        assert (state / "secrets.toml").stat().st_mode & 0o077 == 0
        token_file = state / "deployer.token"
        assert f"bearer token in {token_file}" in text and token_file.stat().st_mode & 0o077 == 0
        assert token_file.read_text() not in text  # the token itself is never printed
        service = next(line.split()[2] for line in text.splitlines() if line.startswith("live: service"))
        console = f"--server.port {url.rsplit(':', 1)[1]}"
        load = f"--target {service}"  # the load's command line names the service, not the state dir
        marks = (str(state), console, load)
        running = [line for mark in marks for line in _own_processes(mark)]
        for part in ("demo_service.deployer", "demo_service.app", "demo_service.load", "prometheus", console):
            assert any(part in line for line in running), (part, running)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=60) == 0, out.read_text()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert out.read_text().rstrip().endswith("live: stopped."), out.read_text()
    deadline = time.monotonic() + patience(10)
    while any(_own_processes(mark) for mark in marks) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert [line for mark in marks for line in _own_processes(mark)] == []
