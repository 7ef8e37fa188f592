"""A console under faults: the embedded engine, its approval service and inbound service, the HTTP API on them
(two callers: Alertmanager's viewer token and a deployer's), a stand-in Prometheus whose demo-service
leaks from a moment the test sets (or answers 503 while ``failing``), short windows so a run decides
in seconds; and the invariants every fault test ends with."""

from __future__ import annotations

import sqlite3
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from starlette.applications import Starlette

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from starlette.testclient import TestClient

from console.access.tokens import hash_token
from console.api import api_routes
from console.api.guard import Guard
from console.api.health import HealthChecker
from console.domain.executions import Execution, State
from console.domain.models import format_time
from console.runtime import EmbeddedRuntime, Services, embedded_runtime
from console.settings import Settings
from tests.api.alert_stack import wait_for
from tests.api.prometheus_stub import PrometheusStub, healthy

ALERTMANAGER_TOKEN = "alertmanager-token-0123456789abcdef"
DEPLOYER_TOKEN = "deployer-token-0123456789abcdef"
ALERTMANAGER = {"Authorization": f"Bearer {ALERTMANAGER_TOKEN}"}
DEPLOYER = {"Authorization": f"Bearer {DEPLOYER_TOKEN}"}
WATCH_LEFT_S = 3.0
SERVICE = "demo-service"
"""Its stand-in Prometheus leaks while a leaky version runs."""
HEALTHY = "web-service"
"""A second service whose stand-in Prometheus is always healthy (the healthy deploys go there)."""
SLOW = "batch-service"
"""A third, healthy, whose window lasts ten minutes: its runs stay in progress through a test."""


def stamp(unix: float) -> str:
    from datetime import UTC, datetime

    return format_time(datetime.fromtimestamp(unix, UTC))


@dataclass
class Lab:
    runtime: EmbeddedRuntime
    client: TestClient
    prometheus: PrometheusStub
    settings: Settings
    steady: PrometheusStub
    settings_windows: dict[str, float]
    timeline: list[tuple[float, bool]] = field(default_factory=list)
    """(deployed at, leaky) of each deploy: the stub's demo-service leaks while a leaky one runs."""

    @property
    def engine(self):
        return self.runtime.engine

    @property
    def store(self):
        return self.runtime.store

    def deploy(self, version: str, *, leaky: bool, at: float | None = None, **extra: Any) -> Any:
        """The deployer announces a deploy of ``version``: of demo-service, whose leak starts with it,
        when ``leaky``; else of web-service, always healthy. By default a leaky deploy happened a
        few seconds ago (its window has ``WATCH_LEFT_S`` to go: the run watches), a healthy one a
        whole window ago (decided at its first look)."""
        verify_s = float(self.settings_windows["verify_s"])
        if at is None:
            at = time.time() - (verify_s - WATCH_LEFT_S if leaky else verify_s + 1)
        if leaky:
            self.timeline.append((at, leaky))
            self.timeline.sort()
        service = SERVICE if leaky else HEALTHY
        body = {"service": service, "version": version, "previous_version": "v1.0.0",
                "deployed_at": stamp(at), "deployed_by": "alice", **extra}  # fmt: skip
        return self.client.post("/api/deployments", json=body, headers=DEPLOYER)

    def alerts(self, body: dict[str, Any]) -> Any:
        return self.client.post("/api/alerts", json=body, headers=ALERTMANAGER)

    def execution(self, execution_id: str) -> Execution:
        return self.engine.get_execution(execution_id)

    def decided(self, execution_id: str, timeout: float = 60.0) -> Execution:
        """Until the run pauses for a human or ends."""
        return wait_for(
            f"run {execution_id} to decide",
            lambda: (
                (e := self.execution(execution_id)) and (e.state.terminal or e.state == State.PAUSED) and e
            ),
            timeout,
        )

    def close(self) -> None:
        try:
            for execution in self.engine.search_executions(size=500).items:
                if not execution.state.terminal:
                    try:
                        self.engine.kill(execution.id, by="test teardown")
                    except Exception:  # it ended meanwhile
                        pass
        finally:
            self.client.close()
            self.runtime.close()
            self.prometheus.stop()
            self.steady.stop()


def services_yaml(
    path: Path, urls: dict[str, tuple[str, float]], *, baseline_s: float, post_action_s: float
) -> Path:
    """Each service of ``urls`` (name -> its stand-in Prometheus and its verification window)."""
    text = "services:\n"
    for service, (url, verify_s) in urls.items():
        text += (
            f"  {service}:\n"
            "    environment: live-demo\n"
            f"    windows: {{baseline_s: {baseline_s:g}, verify_s: {verify_s:g}, "
            f"post_action_s: {post_action_s:g}}}\n"
            f"    prometheus: {{url: '{url}', profile: demo-service, selector: 'service=\"{service}\"', "
            "scrape_interval_s: 1}\n"
        )
    path.write_text(text, encoding="utf-8")
    return path


def start_lab(
    tmp_path: Path,
    *,
    data_dir: Path | None = None,
    verify_s: float = 8.0,
    post_action_s: float = 0.5,
    max_workers: int = 2,
    **overrides: Any,
) -> Lab:
    """The console on ``data_dir`` (default: under ``tmp_path``) with its API and a stand-in
    Prometheus; ``overrides`` go to the settings."""
    timeline: list[tuple[float, bool]] = []

    def profile(t: float) -> dict[str, float]:
        values = healthy(t)
        running = [leaky for at, leaky in timeline if at <= t]
        if running and running[-1]:
            values.update(error_rate=0.8, memory_utilization=0.95)
        return values

    prometheus = PrometheusStub(profile)
    steady = PrometheusStub(healthy)
    tokens = {
        "alertmanager": {
            "sha256": hash_token(ALERTMANAGER_TOKEN),
            "role": "viewer",
            "identity": "alertmanager",
        },
        "deployer": {"sha256": hash_token(DEPLOYER_TOKEN), "role": "viewer", "identity": "ci-deployer"},
    }
    settings = Settings(
        data_dir=data_dir or tmp_path / "data",
        services_file=services_yaml(
            tmp_path / "services.yaml",
            {SERVICE: (prometheus.url, verify_s), HEALTHY: (steady.url, verify_s), SLOW: (steady.url, 600)},
            baseline_s=20,
            post_action_s=post_action_s,
        ),
        live_poll_s=0.25,
        auto_approve_confidence=0.5,  # the stand-in's flat healthy series: CONTINUE at 64 %
        live_telemetry_grace_s=2.0,
        store_busy_timeout_s=0.1,
        store_fault_escalate_s=60.0,
        engine_sweep_s=0.2,
        api={"tokens": tokens},
        api_rate_per_minute=100_000,
        api_burst=10_000,
    )
    settings = replace(settings, **overrides)
    runtime = embedded_runtime(settings, max_workers=max_workers)
    services = Services(settings, runtime.store, runtime.engine, runtime.approvals, inbound=runtime.inbound)
    app = Starlette(
        routes=api_routes(lambda: services, guard=Guard(), health=HealthChecker(cache_s=0.0, timeout_s=1.0))
    )
    windows = {"verify_s": verify_s, "post_action_s": post_action_s}
    client = TestClient(app, raise_server_exceptions=False)
    lab = Lab(runtime, client, prometheus, settings, steady, windows, timeline)
    lab.services = services  # type: ignore[attr-defined]
    return lab


def check_invariants(path: Path) -> None:
    """What every fault test ends with, read from the file itself: the database is intact; every
    delivery that started a run names one that exists, and no deployment or incident has two runs;
    no incident is open without its run; nothing is left CREATED/RUNNING without being queued or
    held; nothing is queued that has ended."""
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        executions = {r["id"]: r["state"] for r in conn.execute("SELECT id, state FROM executions")}
        launched = conn.execute(
            "SELECT kind, key, execution_id FROM inbound_deliveries WHERE status = 'launched'"
        ).fetchall()
        for row in launched:
            assert row["execution_id"] in executions, dict(row)
        runs = [r["execution_id"] for r in launched]
        assert len(runs) == len(set(runs)), "two deliveries claim one run"
        zombies = conn.execute(
            "SELECT id FROM incidents WHERE status = 'open' AND execution_id IS NULL"
        ).fetchall()
        assert zombies == [], "an open incident without a run"
        per_incident = conn.execute(
            "SELECT incident_id, COUNT(*) AS n FROM (SELECT json_extract(labels, '$.incident') "
            "AS incident_id FROM executions WHERE flow_id = 'incident-handler') "
            "GROUP BY incident_id HAVING n > 1"
        ).fetchall()
        assert per_incident == [], "an incident with two runs"
        queued = {r[0] for r in conn.execute("SELECT execution_id FROM run_queue")}
        for execution_id in queued:
            assert executions.get(execution_id) in ("CREATED", "RUNNING"), (
                execution_id,
                executions.get(execution_id),
            )
    finally:
        conn.close()
