"""What the inbound tests share: an embedded console (the API's parts) whose demo-service is read from
a stand-in Prometheus showing a leak that began 15 s ago, and Alertmanager deliveries built like
Alertmanager 0.25 builds them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from console.domain.executions import Execution
from console.domain.models import format_time
from console.engines.backend import BackendError
from console.runtime import EmbeddedRuntime, embedded_runtime
from console.settings import Secret, Settings
from tests.api.conftest import TOKEN, services_of
from tests.api.prometheus_stub import PrometheusStub, leak_from, services_yaml

if TYPE_CHECKING:
    from starlette.testclient import TestClient

GROUP_KEY = '{}/{severity=~"critical|warning|info"}:{alertname="DemoServiceOutOfMemory"}'


def stamp(unix: float) -> str:
    return format_time(datetime.fromtimestamp(unix, UTC))


def alert(
    fingerprint: str = "a1b2c3d4e5f60718",
    *,
    starts: float,
    name: str = "DemoServiceOutOfMemory",
    service: str | None = "demo-service",
    severity: str = "critical",
    ends: float | None = None,
    **labels: str,
) -> dict[str, Any]:
    tags = {"alertname": name, "severity": severity, **labels}
    if service is not None:
        tags["service"] = service
    return {
        "status": "resolved" if ends is not None else "firing",
        "labels": tags,
        "annotations": {"summary": f"{service} uses more than 90% of its memory limit"},
        "startsAt": stamp(starts),
        "endsAt": stamp(ends) if ends is not None else "0001-01-01T00:00:00Z",
        "generatorURL": "http://127.0.0.1:9090/graph?g0.expr=x",
        "fingerprint": fingerprint,
    }


def delivery(*alerts: dict[str, Any], group_key: str = GROUP_KEY) -> dict[str, Any]:
    """A webhook v4 delivery of one group (resolved when every alert is)."""
    firing = any(a["status"] == "firing" for a in alerts)
    return {
        "receiver": "console",
        "status": "firing" if firing else "resolved",
        "alerts": list(alerts),
        "groupLabels": {"alertname": alerts[0]["labels"]["alertname"]},
        "commonLabels": {"service": "demo-service"},
        "commonAnnotations": {},
        "externalURL": "http://127.0.0.1:9093",
        "version": "4",
        "groupKey": group_key,
        "truncatedAlerts": 0,
    }


@dataclass
class Console:
    """The embedded engine, approval service and inbound service, the API on them, and the stand-in
    Prometheus (``rolled_back()`` makes the leak stop, as a rollback does)."""

    runtime: EmbeddedRuntime
    client: TestClient
    prometheus: PrometheusStub
    settings: Settings
    onset: float
    state: dict[str, float | None] = field(default_factory=dict)

    def rolled_back(self) -> None:
        self.state["rolled_back"] = time.time()

    def wait(self, execution_id: str, timeout: float = 30.0) -> Execution:
        return self.runtime.engine.wait(execution_id, timeout=timeout)

    def incident_runs(self) -> int:
        return self.runtime.engine.search_executions(flow_id="incident-handler").total


def start_console(
    tmp_path: Path, make_client: Callable[..., TestClient], *, executor: str = "", **overrides: Any
) -> Console:
    onset = time.time() - 15
    state: dict[str, float | None] = {"rolled_back": None}
    prometheus = PrometheusStub(leak_from(onset, until=lambda: state["rolled_back"]))
    settings = Settings(
        data_dir=tmp_path / "data",
        services_file=services_yaml(tmp_path / "services.yaml", prometheus.url, executor=executor),
        live_poll_s=0.2,
        api_token=Secret(TOKEN),
        api_role="approver",
        **overrides,
    )
    runtime = embedded_runtime(settings, max_workers=4)
    return Console(runtime, make_client(services_of(runtime)), prometheus, settings, onset, state)


def stop_console(console: Console) -> None:
    try:
        for execution in console.runtime.engine.search_executions().items:
            if not execution.state.terminal:
                try:
                    console.runtime.engine.kill(execution.id, by="test teardown")
                except BackendError:  # it finished between the read and the kill
                    pass
    finally:
        console.runtime.close()
        console.prometheus.stop()
