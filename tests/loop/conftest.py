"""Helpers of the loop tests: second-level snapshots built from a function of time, a fake clock."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from dataclasses import replace as _replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from console.access.auth import Identity, Role
from console.domain.executions import Execution, State
from console.runtime import EmbeddedRuntime, embedded_runtime
from console.settings import Settings
from console.telemetry.times import format_ts

DEPLOYED_AT = datetime(2026, 11, 29, 17, 0, tzinfo=UTC).timestamp()
TOKEN = "deployer-token-for-tests-0123456789"
"""The deployer token of the ``live`` fixture (the stand-in deployer's, in DEMO_DEPLOYER_TOKEN)."""
BASELINE_S = 15.0

Profile = Callable[[float], dict[str, float]]
"""Seconds since the deploy (negative before it) -> metric values at that second."""


def healthy(t: float, rng: np.random.Generator) -> dict[str, float]:
    """The demo service at 20 req/s, v1.0.0: no errors, ~49 ms p95, 5 % of its memory limit."""
    return {
        "error_rate": 0.0,
        "latency_p95_ms": 49.0 + float(rng.normal(0, 0.3)),
        "requests_per_second": 20.0 + float(rng.normal(0, 0.05)),
        "cpu_utilization": 0.02 + float(rng.normal(0, 0.002)),
        "memory_utilization": 0.048,
        "pod_restarts": 0.0,
    }


def snapshot_until(
    end: float, change: Callable[[float, dict[str, float]], dict[str, float]] | None = None, seed: int = 7
) -> dict:
    """Per-second points from ``DEPLOYED_AT - BASELINE_S`` to ``end`` (Unix seconds): healthy values,
    then ``change(t, values)`` applied after the deploy."""
    rng = np.random.default_rng(seed)
    metrics: dict[str, list] = {}
    t = -BASELINE_S
    while DEPLOYED_AT + t <= end + 1e-9:
        values = healthy(t, rng)
        if change is not None and t >= 0:
            values = change(t, values)
        for name, value in values.items():
            metrics.setdefault(name, []).append([format_ts(DEPLOYED_AT + t), round(value, 5)])
        t += 1.0
    return {
        "deployment": {
            "id": "dep-1",
            "service": "demo-service",
            "version": "v1.2.0-leak",
            "previous_version": "v1.0.0",
            "environment": "live-demo",
            "deployed_at": format_ts(DEPLOYED_AT),
            "deployed_by": "alice",
        },
        "metrics": metrics,
        "logs": [],
    }


@dataclass
class FakeClock:
    """Time that moves only when something sleeps."""

    now: float
    slept: list[float] = field(default_factory=list)

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def until_done(step, data: dict, settings, clock: FakeClock, *, looks: list | None = None) -> dict:
    """Call a step that looks (collect, verify) until it is done, as an engine would, on ``clock``."""
    from console.loop.steps import run_looks

    return run_looks(step, data, settings, clock=clock, sleep=clock.sleep, looks=looks)


def services_file(tmp_path: Path, executor: str, *, prometheus: str | None = None) -> Path:
    log = tmp_path / "demo-service.log"
    if not log.exists():
        log.write_text("", encoding="utf-8")
    path = tmp_path / "services.yaml"
    text = (
        "services:\n  demo-service:\n    environment: live-demo\n"
        "    windows: {baseline_s: 15, verify_s: 30, post_action_s: 15}\n"
        f"    logs: {{type: jsonl, path: {log}}}\n"
    )
    if prometheus:
        text += (
            f"    prometheus: {{url: '{prometheus}', selector: 'service=\"demo-service\"', "
            "scrape_interval_s: 1}\n"
        )
    path.write_text(text + executor, encoding="utf-8")
    return path


@pytest.fixture
def live(settings, tmp_path, monkeypatch):
    """``live(executor_section)``: settings whose services file gives demo-service that executor."""
    monkeypatch.setenv("DEMO_DEPLOYER_TOKEN", TOKEN)

    def configure(executor: str, **kw):
        return _replace(settings, services_file=services_file(tmp_path, executor, **kw))

    return configure


def record_revision(
    store,
    service: str,
    version: str,
    kind: str,
    at: str,
    *,
    window: tuple[str | None, str | None] = (None, None),
) -> None:
    """One event in a service's revision history, as a watched live run would leave it (``kind``:
    ``verified_healthy``, ``judged_faulty``, ...)."""
    from console.loop import revisions

    ev = revisions.event(
        service,
        version,
        kind,
        at,
        kind.replace("_", " "),
        source="loop",
        execution_id=f"E-{version}",
        window=window,
    )
    with store.db.write() as conn:
        store.revisions.add_in(conn, [ev])


@pytest.fixture
def rt(settings: Settings) -> Iterator[EmbeddedRuntime]:
    runtime = embedded_runtime(settings, synchronous=True)
    yield runtime
    runtime.close()


def run(rt: EmbeddedRuntime, scenario: str, *, approve: bool | None = True, comment: str = "",
        by: str = "bob") -> Execution:  # fmt: skip
    """Run a scenario to its end (deciding its approval when it pauses, unless ``approve`` is None)."""
    execution = rt.engine.run_sync(scenario=scenario, triggered_by="alice")
    if execution.state == State.PAUSED and approve is not None:
        approval = rt.store.approvals.for_execution(execution.id)
        rt.approvals.vote(approval["id"], Identity(by, Role.APPROVER), approve, comment)
        execution = rt.engine.wait(execution.id)
    return execution


def material(rt: EmbeddedRuntime, execution_id: str) -> dict[str, Any]:
    return rt.store.stories.incident_material(execution_id)


def _result(name: str, risk: str, mode: str, status: str, executor: str, detail: str, label: str,
            started: str, finished: str) -> dict[str, Any]:  # fmt: skip
    """An executed action in the live loop's shape: the planned action + mode + ActionResult.to_dict()."""
    return {
        "name": name, "risk": risk, "reason": "planned", "params": {}, "mode": mode,
        "action": name, "status": status, "simulated": False, "dry_run": False, "executor": executor,
        "detail": detail, "label": label, "commands": [], "evidence": None,
        "started_at": f"2026-11-29T17:02:{started}Z", "finished_at": f"2026-11-29T17:02:{finished}Z",
    }  # fmt: skip


ROLLBACK_FAILURE = "deployer answered 503: the new instance did not become ready"
GUARD = "error_rate 31.0% ≥ 20% (baseline 0.4%)"


def live_record() -> dict[str, Any]:
    """An outcome record of the live loop: real executors, a rollback that failed, a refused restart and
    a measured outcome from Prometheus."""
    decision = {
        "verdict": "ROLLBACK",
        "severity": "HIGH",
        "confidence": 0.93,
        "summary": "error_rate tripped its guard after v1.4.0.",
        "root_cause": "The new version fails requests near its memory limit.",
        "impact": "About a third of requests fail.",
        "guards": [GUARD],
        "metrics": {
            "error_rate": {"name": "error_rate", "classification": "High", "reason": "0.4% → 31.0%",
                           "guard": GUARD},
            "latency_p95_ms": {"name": "latency_p95_ms", "classification": "High",
                               "reason": "120 ms → 480 ms", "guard": None},
        },
        "log_patterns": [
            {"template": "out of memory: <*>", "level": "ERROR", "count_before": 0, "count_after": 41,
             "status": "new", "category": "out_of_memory", "example": "out of memory: heap"},
        ],
        "actions": [],
        "analyzer": "rules",
    }  # fmt: skip
    executed = [
        _result("collect_diagnostics", "LOW", "auto", "done", "demo-service", "logs saved",
                "diagnostics collected", "10.000", "10.250"),
        _result("rollback_deployment", "HIGH", "approved", "failed", "demo-service", ROLLBACK_FAILURE,
                "rollback failed: deployer answered 503", "10.300", "14.300"),
        _result("restart_pod", "LOW", "auto", "refused", "kubectl", "namespace not allowed",
                "restart refused: namespace not allowed", "14.400", "14.410"),
    ]  # fmt: skip
    return {
        "execution_id": "live-exec-1",
        "deployment": {
            "id": "dep-9",
            "service": "demo-service",
            "version": "v1.4.0",
            "previous_version": "v1.3.2",
            "environment": "live-demo",
            "deployed_at": "2026-11-29T17:00:00Z",
            "deployed_by": "alice",
        },
        "scenario": None,
        "decision": decision,
        "plan": {
            "auto": [{"name": "collect_diagnostics", "risk": "LOW"}, {"name": "restart_pod", "risk": "LOW"}],
            "approval": [{"name": "rollback_deployment", "risk": "HIGH"}],
            "required_approvals": 1,
            "needs_approval": True,
        },
        "approval": {"status": "approved", "approvers": ["bob"], "comment": "roll it back"},
        "executed": executed,
        "measured": {
            "status": "not_resolved",
            "reason": "error_rate still 29% after the actions",
            "source": "prometheus",
            "simulated": False,
            "window": {"start": "2026-11-29T17:02:15Z", "end": "2026-11-29T17:02:35Z"},
            "baseline": {"start": "2026-11-29T16:59:30Z", "end": "2026-11-29T17:00:00Z"},
            "metrics": {"error_rate": {"name": "error_rate", "reason": "31.0% → 29.0%"}},
            "measured_at": "2026-11-29T17:02:36Z",
        },
        "expected": None,
        "outcome": {
            "deployment_status": "rollback failed",
            "measured_status": "not_resolved",
            "held": False,
            "simulated": False,
        },
    }


LIVE_APPROVAL = {
    "id": "ap-live",
    "execution_id": "live-exec-1",
    "status": "approved",
    "actions": [{"name": "rollback_deployment", "risk": "HIGH"}],
    "required_approvals": 1,
    "requested_by": "alice",
    "requested_at": "2026-11-29T17:01:00Z",
    "expires_at": "2026-11-29T17:31:00Z",
    "decided_at": "2026-11-29T17:02:00Z",
    "decided_by": "bob",
    "comment": "roll it back",
}
LIVE_VOTES = [{"actor": "bob", "approved": True, "comment": "roll it back", "at": "2026-11-29T17:02:00Z"}]


def _audit(seq: int, at: str, actor: str, event: str, subject: str, **detail: Any) -> dict[str, Any]:
    return {"seq": seq, "at": f"2026-11-29T17:{at}Z", "actor": actor, "event": event, "subject": subject,
            "detail": detail}  # fmt: skip


LIVE_AUDIT = [
    _audit(1, "00:05", "deployer", "execution.launched", "live-exec-1"),
    _audit(2, "01:00", "alice", "approval.requested", "ap-live", actions="rollback_deployment"),
    _audit(3, "01:30", "alice", "approval.refused", "ap-live", attempt="approve",
           reason="you cannot approve your own request"),
    _audit(4, "02:00", "bob", "approval.approved", "ap-live", comment="roll it back"),
]  # fmt: skip
