"""Fixtures for an execution's story: runs of the real loop on the embedded engine (synchronous), and a
record in the live loop's shapes (done / failed / refused actions, skipped ones, a measured outcome)
written by hand, since the live loop's steps are another branch's."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from console.access.auth import Identity, Role
from console.domain.executions import Execution, State
from console.runtime import EmbeddedRuntime, embedded_runtime
from console.settings import Settings


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
