"""Snapshot building without Prometheus: the deployment block, the log budget split at the deploy,
the no-source errors. (With the real Prometheus: test_live_prometheus.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from console.domain.snapshot import parse_snapshot
from console.settings import Settings
from console.telemetry.config import JsonlLogsConfig, ServiceConfig, Windows
from console.telemetry.errors import InvalidDeployment, NoSourceConfigured
from console.telemetry.snapshot import build_snapshot, build_snapshot_for
from console.telemetry.times import format_ts, to_epoch

T0 = 1_800_000_000.0
WINDOWS = Windows(20, 30, 20)


def log_file(path: Path, seconds: int, per_second: int) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for i in range(seconds * per_second):
            ts = T0 + i / per_second
            version = "v1.0.0" if ts < T0 + seconds / 2 else "v1.2.0"
            level = "ERROR" if version == "v1.2.0" and i % 10 == 0 else "INFO"
            doc = {"ts": format_ts(ts), "level": level, "message": f"request {i}", "service": "demo-service"}
            fh.write(json.dumps({**doc, "version": version, "pid": 1}) + "\n")
    return path


def logs_only(path: Path, max_lines: int = 10_000) -> ServiceConfig:
    return ServiceConfig(
        name="demo-service",
        environment="live-demo",
        windows=WINDOWS,
        logs=JsonlLogsConfig(path=path, max_lines=max_lines),
    )


DEPLOYER_RECORD = {
    "id": "dep-7",
    "service": "demo-service",
    "version": "v1.2.0",
    "previous_version": "v1.0.0",
    "by": "alice",
    "at": format_ts(T0 + 30),
    "kind": "deploy",
}


def test_a_logs_only_snapshot_is_valid_and_says_what_is_missing(tmp_path: Path) -> None:
    service = logs_only(log_file(tmp_path / "svc.log", 60, 2))
    collected = build_snapshot(service, DEPLOYER_RECORD, T0, T0 + 59.5)
    doc = collected.snapshot
    assert doc["deployment"] == {
        "id": "dep-7",
        "service": "demo-service",
        "version": "v1.2.0",
        "previous_version": "v1.0.0",
        "environment": "live-demo",
        "deployed_at": "2027-01-15T08:00:30Z",
        "deployed_by": "alice",
    }
    assert doc["metrics"] == {}
    assert len(doc["logs"]) == 120
    assert doc["logs"][60]["source"] == "demo-service@v1.2.0"
    assert collected.notes == ["metrics: no Prometheus configured for this service"]
    snapshot = parse_snapshot(doc)  # the console's own validation accepts it
    assert snapshot.deployment.version == "v1.2.0" and len(snapshot.logs) == 120


def test_the_line_budget_is_split_at_the_deploy(tmp_path: Path) -> None:
    """A chatty baseline cannot crowd out the lines after the deploy."""
    service = logs_only(log_file(tmp_path / "svc.log", 60, 20), max_lines=100)
    collected = build_snapshot(service, DEPLOYER_RECORD, T0, T0 + 60)
    logs = collected.snapshot["logs"]
    before = [r for r in logs if to_epoch(r["ts"]) < T0 + 30]
    after = [r for r in logs if to_epoch(r["ts"]) >= T0 + 30]
    assert (len(before), len(after)) == (50, 50)
    assert after[0]["ts"] == "2027-01-15T08:00:30Z"  # the deploy's own second belongs to "after"
    assert collected.notes[1:] == [
        "logs: cut at 50 lines from svc.log: lines after 2027-01-15T08:00:02.450Z "
        "in that window were left out (before the deploy)",
        "logs: cut at 50 lines from svc.log: lines after 2027-01-15T08:00:32.450Z "
        "in that window were left out",
    ]


def test_the_announcement_shape_and_the_window_cut_at_now(tmp_path: Path) -> None:
    service = logs_only(log_file(tmp_path / "svc.log", 10, 1))
    announcement = {
        "service": "demo-service", "version": "v2", "previous_version": "v1", "environment": "staging",
        "deployed_by": "ci", "deployed_at": T0 + 5, "deployment_id": "a-1", "source": "demo-deployer",
    }  # fmt: skip
    collected = build_snapshot(service, announcement, T0, T0 + 100, now=T0 + 8)
    assert collected.snapshot["deployment"]["environment"] == "staging"
    assert collected.snapshot["deployment"]["id"] == "a-1"
    assert collected.end == "2027-01-15T08:00:08Z"
    assert collected.notes[0] == "window cut at now (2027-01-15T08:00:08Z) instead of 2027-01-15T08:01:40Z"
    assert len(collected.snapshot["logs"]) == 9


@pytest.mark.parametrize(
    ("deployment", "message"),
    [
        (
            {"service": "demo-service", "version": "v1", "deployed_at": "2027-01-15T08:00:00Z"},
            "deployment.id: missing",
        ),
        ({"id": "d", "version": "v1"}, "deployment.deployed_at: missing"),
        ({"id": "d", "deployed_at": T0}, "deployment.version: missing"),
        (
            {"id": "d", "version": "v", "deployed_at": "soon"},
            "deployment.deployed_at: 'soon' is not a timestamp",
        ),
        (
            {"id": "d", "service": "payments", "version": "v", "deployed_at": T0},
            "deployment.service 'payments' is not the configured service 'demo-service'",
        ),
    ],
)
def test_a_deployment_missing_what_the_snapshot_needs(tmp_path: Path, deployment: dict, message: str) -> None:
    service = logs_only(log_file(tmp_path / "svc.log", 2, 1))
    with pytest.raises(InvalidDeployment, match=message):
        build_snapshot(service, deployment, T0, T0 + 1)
    with pytest.raises(InvalidDeployment, match="empty window"):
        build_snapshot(service, DEPLOYER_RECORD, T0 + 1, T0 + 1)


def test_no_source_is_a_clear_error_never_mock_data(tmp_path: Path) -> None:
    bare = ServiceConfig(name="ops", environment="prod", windows=WINDOWS, executor={"type": "simulated"})
    with pytest.raises(NoSourceConfigured, match="no telemetry source configured for service 'ops'"):
        build_snapshot(bare, {"id": "d", "version": "v", "deployed_at": T0}, T0, T0 + 1)
    request = {"service": "payment-service", "deployment_id": "d1", "version": "v9", "deployed_at": T0}
    with pytest.raises(NoSourceConfigured) as caught:
        build_snapshot_for(Settings(services_file=tmp_path / "services.yaml"), request, T0, T0 + 60)
    assert str(caught.value) == (
        "no telemetry source configured for service 'payment-service'; add it to CONSOLE_SERVICES_FILE "
        f"({tmp_path / 'services.yaml'} does not exist)"
    )
