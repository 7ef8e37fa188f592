"""KestraBackend end to end against the fake Kestra (which runs the project's own steps)."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.domain.executions import State
from console.engines.backend import BackendError, BackendUnavailable
from console.engines.factory import make_backend
from console.engines.kestra.backend import KestraBackend, task_values
from console.engines.kestra.client import KestraClient
from console.loop.steps import load_scenario
from console.presentation import tables
from console.settings import Secret, Settings
from tests.kestra.conftest import FLOWS_DIR, PASSWORD, USER
from tests.kestra.fake_kestra import FakeKestra, free_port
from tests.waiting import wait_for_state

pytestmark = pytest.mark.kestra


def _settings(url: str, tmp_path: Path, **kw) -> Settings:
    return Settings(
        data_dir=tmp_path / "console-data",
        kestra_url=url,
        kestra_username=USER,
        kestra_password=Secret(kw.pop("password", PASSWORD)),
        kestra_timeout_s=kw.pop("timeout", 2.0),
        **kw,
    )


@pytest.fixture
def backend(loaded: FakeKestra, tmp_path: Path) -> KestraBackend:
    return KestraBackend(_settings(loaded.url, tmp_path))


def test_make_backend_picks_kestra_when_url_set(tmp_path: Path) -> None:
    backend = make_backend(_settings("http://127.0.0.1:9", tmp_path))
    assert isinstance(backend, KestraBackend) and backend.name == "kestra"


@pytest.mark.slow  # runs the whole loop (analysis included) through the fake: ~3-7 s
def test_memory_leak_pauses_then_approved_rolls_back(backend: KestraBackend, loaded: FakeKestra) -> None:
    execution_id = backend.launch_scenario("memory-leak", "alice")
    paused = wait_for_state(backend, execution_id, {State.PAUSED, State.FAILED})
    assert paused.state == State.PAUSED
    assert paused.labels["launched_by"] == "alice" and paused.labels["scenario"] == "memory-leak"

    snapshot = backend.snapshot_document(execution_id)  # what the collect subflow produced
    scenario = load_scenario("memory-leak", backend.settings)
    assert snapshot["deployment"]["service"] == scenario["deployment"]["service"]
    assert set(snapshot["metrics"]) == set(scenario["metrics"]) and len(snapshot["logs"]) == len(
        scenario["logs"]
    )

    request = backend.approval_request(paused)
    assert request["execution_id"] == execution_id
    assert request["verdict"] == "ROLLBACK"
    assert request["actions"] and request["plan"]["needs_approval"] is True
    assert request["risk"] in {"MEDIUM", "HIGH", "CRITICAL"}
    assert request["requested_by"] == "ci-bot"  # the scenario's deployer, as on the embedded engine
    assert request["requested_at"] < request["expires_at"]
    assert request["decision"]["verdict"] == "ROLLBACK"

    backend.resume(execution_id, approved=True, comment="leak confirmed", approver="bob")
    done = wait_for_state(backend, execution_id, {State.SUCCESS, State.FAILED, State.CANCELLED})
    assert done.state == State.SUCCESS
    assert done.outputs["deployment_status"] == "rolled back"
    assert task_values(done.task_run("approval")) == {
        "approved": True,
        "comment": "leak confirmed",
        "approver": "bob",
        "rollback_target": None,  # a scenario's rollback keeps its recorded target
    }
    executed = task_values(done.task_run("execute"))["executed"]
    assert any(a.get("mode") == "approved" for a in executed)
    # the detail view nests the subflows' task runs under the Subflow task that ran them
    ids = [r.task_id for r in done.task_runs]
    assert ids.index("analyze") < ids.index("decide") < ids.index("approval") < ids.index("execute")
    analyze = done.task_run("analyze")
    assert analyze.parent_task_run_id == done.task_run("summarize").id
    # what the pages read: the decision and the final status, as with the embedded engine
    assert tables.execution_decision(done).verdict.value == "ROLLBACK"
    assert tables.task_output(done, "execute", "deployment_status") == "rolled back"
    assert [p.state for p in tables.loop_progress(done)][:7] == ["SUCCESS"] * 7
    # the logs include the steps, which run in the subflows' executions
    messages = [e.message for e in backend.execution_logs(execution_id)]
    assert any("step analyze" in m for m in messages) and any("step record" in m for m in messages)
    # a second resume is refused with the words the approval service looks for
    with pytest.raises(BackendError, match="not PAUSED"):
        backend.resume(execution_id, approved=True, comment="", approver="bob")


def test_rejected_approval_runs_nothing_risky(backend: KestraBackend) -> None:
    execution_id = backend.launch_scenario("memory-leak", "alice")
    wait_for_state(backend, execution_id, {State.PAUSED})
    backend.resume(execution_id, approved=False, comment="not now", approver="bob")
    done = wait_for_state(backend, execution_id, {State.SUCCESS, State.FAILED})
    values = task_values(done.task_run("execute"))
    assert values["skipped"] and all(a["skipped"] == "rejected" for a in values["skipped"])
    assert done.outputs["deployment_status"] != "rolled back"


def test_expired_pause_cancels_never_approves(loaded: FakeKestra, backend: KestraBackend) -> None:
    loaded.pause_seconds = 0.3  # stands for PT30M
    execution_id = backend.launch_scenario("memory-leak", "alice")
    done = wait_for_state(backend, execution_id, {State.CANCELLED, State.SUCCESS, State.FAILED})
    assert done.state == State.CANCELLED
    assert done.task_run("execute") is None  # nothing ran after the expired approval


def test_healthy_snapshot_launch_runs_to_success(backend: KestraBackend, loaded: FakeKestra) -> None:
    import json

    doc = json.loads((Path(__file__).resolve().parents[2] / "mock-data" / "healthy-hotfix.json").read_text())
    execution_id = backend.launch(doc, triggered_by="ci-pipeline", labels={"Team Name": "sre"})
    done = wait_for_state(backend, execution_id, {State.SUCCESS, State.FAILED, State.PAUSED})
    assert done.state == State.SUCCESS
    assert done.inputs["service"] == doc["deployment"]["service"]
    assert done.labels["team_name"] == "sre"  # label keys made valid for Kestra
    assert done.outputs["verdict"] == "CONTINUE"


def test_search_get_logs_kill_and_link(backend: KestraBackend, loaded: FakeKestra) -> None:
    first = backend.launch_scenario("memory-leak", "alice")
    wait_for_state(backend, first, {State.PAUSED})
    page = backend.search_executions(flow_id="devops-loop", states=[State.PAUSED])
    assert page.total == 1 and page.items[0].id == first and page.items[0].task_runs
    whole = backend.search_executions()  # the namespace, subflow children included
    assert whole.total == 4 and {e.flow_id for e in whole.items} >= {"devops-loop", "collect-snapshot"}
    assert any("paused" in e.message.lower() for e in backend.execution_logs(first))
    assert backend.ui_link(first) == f"{loaded.url}/ui/main/executions/devops.loop/devops-loop/{first}"
    backend.kill(first)
    wait_for_state(backend, first, {State.KILLED})
    with pytest.raises(BackendError, match="already ended"):
        backend.kill(first)
    with pytest.raises(BackendError, match="not found"):
        backend.get_execution("0000000000000000000000")


def test_2x_search_fills_task_runs(loaded2: FakeKestra, tmp_path: Path) -> None:
    backend = KestraBackend(_settings(loaded2.url, tmp_path))
    execution_id = backend.launch_scenario("memory-leak", "alice")
    wait_for_state(backend, execution_id, {State.PAUSED})
    page = backend.search_executions(flow_id="devops-loop")
    assert page.items[0].task_run("decide") is not None
    assert page.items[0].task_run("decide").outputs["plan"]["needs_approval"] is True
    assert any("step decide" in e.message for e in backend.execution_logs(execution_id))
    request = backend.approval_request(backend.get_execution(execution_id))
    assert request["plan"]["needs_approval"] is True
    backend.resume(execution_id, approved=True, comment="", approver="bob")
    assert (
        wait_for_state(backend, execution_id, {State.SUCCESS, State.FAILED}).outputs["deployment_status"]
        == "rolled back"
    )


def test_health_reports_version_and_auth(loaded: FakeKestra, tmp_path: Path) -> None:
    ok = KestraBackend(_settings(loaded.url, tmp_path)).health()
    assert ok.ok and ok.version == "1.3.21" and ok.details["auth_ok"] is True
    bad = KestraBackend(_settings(loaded.url, tmp_path, password="Nope-Nope-1")).health()
    assert not bad.ok and bad.details["reachable"] is True and bad.details["auth_ok"] is False
    assert "Nope-Nope-1" not in bad.message and "401" in bad.message
    down = KestraBackend(_settings(f"http://127.0.0.1:{free_port()}", tmp_path)).health()
    assert not down.ok and down.details["reachable"] is False and "cannot be reached" in down.message


def test_failures_become_backend_errors(loaded: FakeKestra, tmp_path: Path) -> None:
    backend = KestraBackend(_settings(loaded.url, tmp_path, timeout=0.3))
    loaded.fault = "500"
    with pytest.raises(BackendUnavailable, match="HTTP 500"):
        backend.search_executions()
    loaded.fault = "malformed"
    with pytest.raises(BackendError, match="not JSON"):
        backend.get_execution("x")
    loaded.fault = "401"
    with pytest.raises(BackendUnavailable, match="credentials"):
        backend.launch_scenario("memory-leak", "alice")
    loaded.fault, loaded.slow_seconds = "slow", 1.0
    with pytest.raises(BackendUnavailable, match="did not answer"):  # the 0.3 s timeout, not the 1 s answer
        backend.execution_logs("x")
    loaded.fault = None
    loaded.down()
    with pytest.raises(BackendUnavailable, match="cannot be reached"):
        backend.resume("x", approved=True, comment="", approver="bob")


def test_sync_flows_deploys_the_folder(fake: FakeKestra, tmp_path: Path) -> None:
    backend = KestraBackend(_settings(fake.url, tmp_path, flows_dir=FLOWS_DIR))
    summary = backend.sync_flows()
    assert {row["id"] for row in summary} == {p.stem for p in FLOWS_DIR.glob("*.yaml")}
    assert all(row["action"] == "created" and row["file"].endswith(".yaml") for row in summary)
    assert {row["action"] for row in backend.sync_flows()} == {"updated"}
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BackendError, match="no flow files"):
        KestraBackend(_settings(fake.url, tmp_path, flows_dir=empty)).sync_flows()


def test_backend_accepts_an_injected_client(loaded: FakeKestra, tmp_path: Path) -> None:
    client = KestraClient(loaded.url, username=USER, password=PASSWORD, timeout=2)
    backend = KestraBackend(Settings(data_dir=tmp_path), client=client)
    assert backend.search_executions().total == 0


def test_launch_deployment_sends_the_live_inputs_and_the_flow_collects_from_the_services_file(
    backend: KestraBackend, loaded: FakeKestra, tmp_path: Path
) -> None:
    from dataclasses import replace

    from console.telemetry.times import format_ts
    from tests.conftest import logs_only_service

    services, now = logs_only_service(tmp_path)
    loaded.settings = replace(loaded.settings, services_file=services, live_poll_s=0.1)
    record = {"id": "dep-5", "service": "demo-service", "version": "v1.0.1", "previous_version": "v1.0.0",
              "by": "alice", "at": format_ts(now), "kind": "deploy"}  # fmt: skip
    execution_id = backend.launch_deployment(record, triggered_by="alice", source="deployer")
    execution = wait_for_state(backend, execution_id, {State.PAUSED, State.SUCCESS, State.FAILED})
    assert execution.state in (State.PAUSED, State.SUCCESS), backend.execution_logs(execution_id)
    assert {k: v for k, v in execution.inputs.items() if v is not None} == {
        "deployment_id": "dep-5",
        "service": "demo-service",
        "version": "v1.0.1",
        "previous_version": "v1.0.0",
        "deployed_at": format_ts(now),
        "deployed_by": "alice",
        "source": "deployer",
        "triggered_by": "alice",
    }
    assert execution.labels["source"] == "deployer"
    snapshot = backend.snapshot_document(execution_id)
    assert snapshot["deployment"]["id"] == "dep-5" and len(snapshot["logs"]) == 1
    with pytest.raises(BackendError, match="needs at least 'service' and 'version'"):
        backend.launch_deployment({"id": "x"}, triggered_by="alice", source="api")
