"""The incident path on Kestra: an alert received by the console starts ``incident-handler`` (the fake
Kestra runs flows/incident-handler.yaml with the project's steps), the Switch escalates a CRITICAL
one, the mirror asks the console's approval service, the decision resumes Kestra, and the read
model shows the incident run and its resolution as on the embedded engine. Alertmanager posting
straight to the flow's webhook runs it too, from its own delivery."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from console.access.approvals import ApprovalService
from console.access.auth import Identity, Role
from console.engines.kestra.backend import KestraBackend
from console.engines.kestra.mirror import KestraMirror
from console.inbound import Inbound
from console.settings import Secret, Settings
from console.storage import Store
from tests.api.inbound_support import alert, delivery
from tests.api.prometheus_stub import PrometheusStub, leak_from, services_yaml
from tests.kestra.conftest import FLOWS_DIR, PASSWORD, USER
from tests.kestra.fake_kestra import FakeKestra

pytestmark = [pytest.mark.kestra, pytest.mark.slow]


@dataclass
class Parts:
    fake: FakeKestra
    backend: KestraBackend
    store: Store
    mirror: KestraMirror
    approvals: ApprovalService
    inbound: Inbound
    onset: float
    stopped: dict

    def wait(self, execution_id: str, states: set[str], timeout: float = 30.0) -> dict:
        return self.fake.wait_state(execution_id, states, timeout)


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[Parts]:
    onset = time.time() - 15
    stopped: dict = {"at": None}
    prometheus = PrometheusStub(leak_from(onset, until=lambda: stopped["at"]))
    services = services_yaml(tmp_path / "services.yaml", prometheus.url)
    # the flows' tasks read the same services file (CONSOLE_SERVICES_FILE in their env)
    fake = FakeKestra(
        username=USER,
        password=PASSWORD,
        settings=Settings(data_dir=tmp_path / "fake", services_file=services, live_poll_s=0.2),
    ).start()
    fake.deploy_dir(FLOWS_DIR)
    settings = Settings(
        data_dir=tmp_path / "console",
        services_file=services,
        kestra_url=fake.url,
        kestra_username=USER,
        kestra_password=Secret(PASSWORD),
        kestra_timeout_s=2.0,
    )
    backend = KestraBackend(settings)
    store = Store(settings.db_path)
    mirror = KestraMirror(store, backend, settings)
    approvals = ApprovalService(store, backend, settings, refresh=mirror.refresh)
    try:
        yield Parts(
            fake, backend, store, mirror, approvals, Inbound(store, backend, settings), onset, stopped
        )
    finally:
        fake.stop()
        backend.close()
        store.close()
        prometheus.stop()


def test_an_alert_runs_incident_handler_on_kestra_and_the_console_decides_it(parts):
    [outcome, ignored] = parts.inbound.receive_alerts(
        delivery(alert(starts=parts.onset), alert("00000000000000ff", starts=parts.onset, service="payment"))
    )
    assert outcome.status == "launched" and ignored.status == "ignored"
    execution_id = outcome.execution_id
    paused = parts.wait(execution_id, {"PAUSED", "FAILED"})
    assert paused["flowId"] == "incident-handler" and paused["state"]["current"] == "PAUSED", parts.fake.logs[
        execution_id
    ]
    inputs = paused["inputs"]
    assert (inputs["service"], inputs["severity"], inputs["incident_id"]) == (
        "demo-service",
        "CRITICAL",
        outcome.incident_id,
    )
    runs = {r["taskId"]: r["state"]["current"] for r in paused["taskRunList"]}
    assert runs["escalate"] == "SUCCESS" and "route_low" not in runs and runs["approval"] == "PAUSED"
    escalation = [e for e in parts.fake.logs[execution_id] if e["level"] == "ERROR"]
    assert escalation and escalation[0]["message"].startswith("ESCALATION CRITICAL: DemoServiceOutOfMemory")

    [pending] = parts.approvals.pending()  # the mirror reads the Pause and asks for the approval
    assert pending["execution_id"] == execution_id and pending["service"] == "demo-service"
    assert pending["requested_by"] == "alertmanager" and pending["requested_by_source"] == "alertmanager"
    row = parts.store.deployments.for_execution(execution_id)
    assert row["source"] == "alertmanager" and row["engine"] == "kestra" and row["incident_status"] == "open"
    assert parts.backend.ui_link(execution_id).endswith(f"/devops.loop/incident-handler/{execution_id}")

    result = parts.approvals.vote(
        pending["id"], Identity("bob", Role.APPROVER, source="password"), True, "ok"
    )
    assert result.resumed
    parts.stopped["at"] = time.time()
    done = parts.wait(execution_id, {"SUCCESS", "FAILED"})
    assert done["state"]["current"] == "SUCCESS"
    assert done["outputs"]["routing"]["route"] == "escalate"
    assert done["outputs"]["outcome"]["incident"]["id"] == outcome.incident_id
    parts.mirror.sync()
    row = parts.store.deployments.for_execution(execution_id)
    assert row["status"] == "rolled back" and row["approval"] == "approved" and row["verdict"] == "ROLLBACK"

    [resolved] = parts.inbound.receive_alerts(delivery(alert(starts=parts.onset, ends=time.time())))
    assert resolved.status == "resolved"
    assert parts.store.deployments.for_execution(execution_id)["incident_status"] == "resolved"
    # Alertmanager retrying the firing delivery starts nothing on Kestra
    [again] = parts.inbound.receive_alerts(delivery(alert(starts=parts.onset)))
    assert again.status == "duplicate" and again.execution_id == execution_id
    assert parts.backend.search_executions(flow_id="incident-handler").total == 1


def test_alertmanager_straight_to_the_flow_s_webhook_runs_it_from_its_own_delivery(parts):
    body = delivery(alert(starts=parts.onset, severity="info"))
    url = parts.fake.url + parts.fake.webhook_path("incident-handler")
    answer = requests.post(url, json=body, timeout=10)  # an open URL on a default Kestra
    assert answer.status_code == 200, answer.text
    execution_id = answer.json()["id"]
    paused = parts.wait(execution_id, {"PAUSED", "FAILED", "SUCCESS"})
    assert paused["state"]["current"] == "PAUSED", parts.fake.logs[execution_id]
    runs = {r["taskId"] for r in paused["taskRunList"]}
    assert "route_low" in runs and "escalate" not in runs  # info = LOW: no escalation
    # the mirror waits for collect to name the service, then shows the run like any other
    parts.mirror.sync()
    row = parts.store.deployments.for_execution(execution_id)
    assert row["service"] == "demo-service" and row["source"] == "alertmanager"
    assert row["status"] == "awaiting approval"
    parts.backend.kill(execution_id)
