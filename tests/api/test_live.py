"""Against the real binaries (Debian's prometheus-alertmanager and prometheus): what Alertmanager 0.25
actually posts parses, a retried delivery keeps its keys and a resolution matches its firing; the
health check reads a real Prometheus's readiness."""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import yaml

from console.domain.models import Severity
from console.payloads import parse_alertmanager
from livestack.processes import find_binary, free_port, start_prometheus
from tests.api.conftest import services_of
from tests.telemetry.conftest import require
from tests.waiting import patience, wait_until

pytestmark = pytest.mark.live


class Alertmanager:
    def __init__(self, tmp: Path, webhook_url: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "route": {
                "receiver": "console",
                "group_by": ["alertname"],
                "group_wait": "0s",
                "group_interval": "1s",
                "repeat_interval": "1h",
            },
            "receivers": [
                {"name": "console", "webhook_configs": [{"url": webhook_url, "send_resolved": True}]}
            ],
        }
        (tmp / "alertmanager.yml").write_text(yaml.safe_dump(config))
        self.log = (tmp / "alertmanager.log").open("wb")
        self.process = subprocess.Popen(
            [
                str(find_binary("prometheus-alertmanager")),
                f"--config.file={tmp / 'alertmanager.yml'}",
                f"--storage.path={tmp / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--cluster.listen-address=",
            ],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + patience(20)
        while True:
            try:
                if requests.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("alertmanager did not start")
            time.sleep(0.1)

    def post(self, alerts: list[dict]) -> None:
        requests.post(f"{self.url}/api/v2/alerts", json=alerts, timeout=5).raise_for_status()

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


def wait_for(predicate, timeout: float = 20.0):
    return wait_until(predicate, timeout, step=0.1, what="the delivery")


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_alertmanagers_own_deliveries_parse_retry_with_the_same_keys_and_resolve(tmp_path, local_server):
    require("prometheus-alertmanager")
    answers = iter([500])  # the first delivery fails: Alertmanager retries it
    received: list[dict] = []

    def hook(request, method, body):
        received.append(json.loads(body))
        return next(answers, 200), {}, b""

    receiver = local_server(hook)
    manager = Alertmanager(tmp_path, f"{receiver.url}/api/alerts")
    try:
        started = datetime.now(UTC) - timedelta(seconds=5)
        alert = {
            "labels": {"alertname": "HighErrorRate", "service": "demo-service", "severity": "critical"},
            "annotations": {"summary": "demo-service fails 34% of requests"},
            "startsAt": stamp(started),
            "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=up",
        }
        manager.post([alert])
        wait_for(lambda: len(received) >= 2)
        first, retried = (parse_alertmanager(doc) for doc in received[:2])
        assert received[0] == received[1]  # a retry is the same delivery
        assert first.version == "4" and first.status == "firing" and first.receiver == "console"
        assert first.group_key == '{}:{alertname="HighErrorRate"}' and first.truncated_alerts == 0
        [firing] = first.alerts
        assert (firing.service, firing.severity, firing.ends_at) == ("demo-service", Severity.CRITICAL, None)
        assert firing.generator_url == alert["generatorURL"] and len(firing.fingerprint) == 16
        assert retried.alerts[0].delivery_key == firing.delivery_key

        manager.post([{**alert, "endsAt": stamp(datetime.now(UTC) - timedelta(seconds=1))}])
        resolved_doc = wait_for(lambda: next((d for d in received if d["status"] == "resolved"), None))
        resolved = parse_alertmanager(resolved_doc)
        [ended] = resolved.resolved
        assert ended.delivery_key == firing.delivery_key and ended.ends_at is not None
        assert ended.incident_key == firing.incident_key == "HighErrorRate"
    finally:
        manager.stop()


def test_health_reads_a_real_prometheus(tmp_path, runtime, make_client):
    require("prometheus")
    prometheus = start_prometheus(tmp_path / "prom", {})
    try:
        services_file = tmp_path / "services.yaml"
        services_file.write_text(
            yaml.safe_dump({"services": {"demo-service": {"prometheus": {"url": prometheus.url}}}})
        )
        client = make_client(services_of(runtime, replace(runtime.settings, services_file=services_file)))
        assert client.get("/api/health").json()["checks"]["prometheus"] == {
            "status": "up",
            "reason": "1 server(s) ready",
        }
    finally:
        prometheus.stop()
    reason = client.get("/api/health").json()["checks"]["prometheus"]["reason"]
    assert reason.startswith("1 of 1 down: demo-service: unreachable")
