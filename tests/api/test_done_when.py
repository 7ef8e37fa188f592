"""Issue 12's "done when", on the console as ``CONSOLE_API_TOKEN=t ./scripts/console.sh --server.port
PORT`` starts it (a real server: the pages and the API on one port): health 200, an Alertmanager
delivery 401 without the token, 202 with the run's id with it (and the run on the Executions page),
400 naming the field when malformed. Then, with real parts: a delivery Debian's Alertmanager really
sent, posted three times and six times at once, starts one run; and the demo deployer's
announcement (``--notify-url .../api/deployments``) starts the loop, which the console's own
announcement of the same deploy does not start again."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from console.storage import Store
from livestack.processes import start_alertmanager
from tests.api.inbound_support import alert, delivery, stamp
from tests.api.prometheus_stub import PrometheusStub, leak_from, services_yaml
from tests.browser_support import CHROMIUM, PROJECT_ROOT, SCRUBBED_ENV, free_port, wait_ready
from tests.telemetry.conftest import require
from tests.waiting import patience

TOKEN = "t"
AUTH = {"Authorization": f"Bearer {TOKEN}"}

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("api-done-when")]


@dataclass
class Server:
    url: str
    data_dir: Path
    log_path: Path
    onset: float

    def store(self) -> Store:
        return Store(self.data_dir / "console.sqlite3")

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """``CONSOLE_API_TOKEN=t ./scripts/console.sh --server.port PORT`` on a free port; its services
    (api-demo, demo-service) read a stand-in Prometheus showing a leak that began 15 s ago."""
    work = tmp_path_factory.mktemp("done-when")
    onset = time.time() - 15
    prometheus = PrometheusStub(leak_from(onset))
    services = services_yaml(work / "services.yaml", prometheus.url, service="api-demo")
    services.write_text(
        services.read_text()
        + services_yaml(work / "other.yaml", prometheus.url).read_text().removeprefix("services:\n"),
        encoding="utf-8",
    )
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in SCRUBBED_ENV}
    env.update(
        CONSOLE_API_TOKEN=TOKEN,
        CONSOLE_DATA_DIR=str(work / "data"),
        CONSOLE_SECRETS=str(work / "no-secrets.toml"),
        CONSOLE_SERVICES_FILE=str(services),
        LIVE_POLL_S="0.5",
        CONSOLE_SKIP_INSTALL="1",  # the suite's environment is installed; never pip from a test
        PYTHONUNBUFFERED="1",
    )
    log_path = work / "console.log"
    with log_path.open("w") as log:
        proc = subprocess.Popen(
            [
                str(PROJECT_ROOT / "scripts" / "console.sh"),
                "--server.port", str(port),
                "--server.address", "127.0.0.1",
                "--server.fileWatcherType", "none",
                "--browser.gatherUsageStats", "false",
            ],
            cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + patience(60)
        while True:
            try:
                if requests.get(f"{url}/_stcore/health", timeout=1).text == "ok":
                    break
            except requests.RequestException:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("console.sh did not start:\n" + log_path.read_text()[-2000:])
            time.sleep(0.2)
        yield Server(url, work / "data", log_path, onset)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        prometheus.stop()


def test_issue_12_done_when(server: Server, request: pytest.FixtureRequest):
    health = requests.get(f"{server.url}/api/health", timeout=10)
    assert health.status_code == 200 and health.headers["content-type"] == "application/json"
    assert health.json()["status"] == "up" and health.json()["checks"]["api"]["status"] == "up"

    body = delivery(alert(starts=server.onset, service="api-demo"))
    refused = requests.post(f"{server.url}/api/alerts", json=body, timeout=10)
    assert refused.status_code == 401 and refused.headers["www-authenticate"].startswith("Bearer")

    accepted = requests.post(f"{server.url}/api/alerts", json=body, headers=AUTH, timeout=10)
    assert accepted.status_code == 202, accepted.text
    execution_id = accepted.json()["execution_id"]
    assert execution_id and accepted.json()["alerts"][0]["status"] == "launched"

    malformed = delivery(alert(starts=server.onset, service="api-demo"))
    malformed["alerts"][0]["labels"] = {}
    bad = requests.post(f"{server.url}/api/alerts", json=malformed, headers=AUTH, timeout=10)
    assert bad.status_code == 400 and bad.json() == {"error": "alerts[0].labels: must not be empty"}

    deadline = time.monotonic() + patience(30)
    while True:
        view = requests.get(f"{server.url}/api/executions/{execution_id}", headers=AUTH, timeout=10).json()
        if view["state"] == "PAUSED" or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert view["state"] == "PAUSED" and view["kind"] == "incident", view
    assert view["incident"]["status"] == "open" and view["routing"]["route"] == "escalate"

    if not Path(CHROMIUM).exists():
        print("SKIP (the page part): Debian's chromium is not installed")
        return
    page = request.getfixturevalue("chromium").new_context().new_page()
    try:
        page.goto(f"{server.url}/executions?execution={execution_id}")
        wait_ready(page)
        page.get_by_text(execution_id).first.wait_for(timeout=15_000)
        page.get_by_text("incident-handler").first.wait_for(timeout=15_000)
    finally:
        page.context.close()


@pytest.mark.live
def test_a_real_alertmanager_delivery_posted_again_and_at_once_starts_one_run(
    server: Server, tmp_path, local_server
):
    require("prometheus-alertmanager")
    received: list[dict] = []

    def record(request, method, body):
        received.append(json.loads(body))
        return 200, {}, b""

    recorder = local_server(record)
    manager = start_alertmanager(tmp_path / "am", f"{recorder.url}/api/alerts", token=TOKEN)
    try:
        manager.post_alerts(
            [
                {
                    "labels": {"alertname": "ApiDemoErrors", "service": "api-demo", "severity": "warning"},
                    "annotations": {"summary": "api-demo fails requests"},
                    "startsAt": stamp(server.onset),
                    "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=up",
                }
            ]
        )
        deadline = time.monotonic() + patience(20)
        while not received and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        manager.stop()
    assert received, "Alertmanager sent nothing"
    [(_, _, headers, _)] = recorder.requests_seen[:1]
    assert headers["Authorization"] == f"Bearer {TOKEN}"  # from its credentials file
    raw = json.dumps(received[0]).encode()

    def post() -> requests.Response:
        return requests.post(
            f"{server.url}/api/alerts",
            data=raw,
            headers={**AUTH, "Content-Type": "application/json"},
            timeout=20,
        )

    answers = [post() for _ in range(3)]
    with ThreadPoolExecutor(6) as pool:
        answers += list(pool.map(lambda _: post(), range(6)))
    assert [a.status_code for a in answers] == [202] + [200] * 8, [a.text for a in answers]
    ids = {a.json()["execution_id"] for a in answers}
    assert len(ids) == 1 and None not in ids
    store = server.store()
    try:
        incidents = [i for i in store.incidents.list(service="api-demo") if i["alert_key"] == "ApiDemoErrors"]
        assert len(incidents) == 1 and incidents[0]["execution_id"] in ids
        sent = received[0]["alerts"][0]
        key = f"{received[0]['groupKey']}|{sent['fingerprint']}|{sent['startsAt']}"
        assert store.deliveries.get("alert", key)["status"] == "launched"
    finally:
        store.close()


@pytest.mark.live
def test_the_demo_deployer_s_announcement_starts_the_loop_once(server: Server, tmp_path):
    from demo_service.testing import start_demo_stack

    stack = start_demo_stack(
        tmp_path / "stack",
        notify_urls=[f"{server.url}/api/deployments"],
        notify_token_env="CONSOLE_NOTIFY_TOKEN",
        env={"CONSOLE_NOTIFY_TOKEN": TOKEN},
    )
    try:
        record = stack.deploy("v1.0.1", by="alice")
    finally:
        stack.stop()
    store = server.store()
    try:
        key = f"deployment:demo-service:{record['id']}"
        deadline = time.monotonic() + patience(20)
        while (row := store.deliveries.get("deployment", key)) is None or row["status"] == "received":
            assert time.monotonic() < deadline, "the deployer's announcement did not arrive"
            time.sleep(0.1)
        assert row["status"] == "launched" and row["detail"]["source"] == "deployer"
        execution_id = row["execution_id"]
        view = requests.get(f"{server.url}/api/executions/{execution_id}", headers=AUTH, timeout=10).json()
        assert view["kind"] == "deployment" and view["labels"]["source"] == "deployer"
        assert view["triggered_by"] == "alice"
        # the console announcing the deploy it made itself (same deployment id): no second run
        again = requests.post(
            f"{server.url}/api/deployments",
            json={
                "service": "demo-service",
                "version": "v1.0.1",
                "deployment_id": record["id"],
                "deployed_by": "alice",
                "source": "console",
            },
            headers=AUTH,
            timeout=10,
        )
        assert again.status_code == 200 and again.json()["status"] == "duplicate"
        assert again.json()["execution_id"] == execution_id
    finally:
        store.close()
