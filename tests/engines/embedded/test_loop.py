"""The whole loop on the embedded engine: scenarios, pause/resume, shapes, time shift, failures."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from console.domain.executions import Execution, State
from console.domain.models import parse_time
from console.domain.vocabulary import LOOP_TASKS
from console.engines.backend import BackendError
from console.engines.embedded.runner import EmbeddedEngine
from console.loop.scenarios import list_scenarios
from console.presentation.charts import snapshot_series
from tests.conftest import HEALTHY_SCENARIO, ROLLBACK_SCENARIO, run_paused
from tests.waiting import patience, wait_until


def states(execution: Execution) -> list[str]:
    return [h.state.value for h in execution.histories]


@pytest.mark.parametrize("scenario", [s.id for s in list_scenarios()])
def test_every_scenario_pauses_exactly_when_the_plan_needs_a_human(engine, approvals, carol, scenario):
    execution = engine.run_sync(scenario=scenario, triggered_by="alice", timeout=30)
    decide = execution.task_run("decide")
    assert decide is not None and decide.state == State.SUCCESS
    plan = decide.outputs["plan"]
    approval = engine.store.approvals.for_execution(execution.id)
    if plan["needs_approval"]:
        assert execution.state == State.PAUSED
        assert execution.task_run("approval").state == State.PAUSED
        assert approval is not None and approval["status"] == "pending"
        assert [a["name"] for a in approval["actions"]] == [a["name"] for a in plan["approval"]]
        critical = any(a["risk"] == "CRITICAL" for a in plan["approval"])
        assert approval["required_approvals"] == (2 if critical else 1)
        assert engine.store.deployments.for_execution(execution.id)["status"] == "awaiting approval"
    else:
        assert execution.state == State.SUCCESS
        assert approval is None
        assert execution.outputs["approval"] in ("auto", "not_required")
        executed = execution.task_run("execute").outputs["executed"]
        assert {a["name"] for a in executed} == {a["name"] for a in plan["auto"]}


def test_rollback_scenario_pauses_then_approval_rolls_back(engine, approvals, bob):
    execution, approval = run_paused(engine)
    assert execution.inputs["scenario"] == ROLLBACK_SCENARIO
    assert states(execution) == ["CREATED", "RUNNING", "PAUSED"]
    assert [r.task_id for r in execution.task_runs] == list(LOOP_TASKS[:5])
    assert execution.task_run("execute") is None  # nothing ran before the human said so
    # the request comes from the scenario's deployer; the console user is kept in a label
    assert approval["requested_by"] != "alice"
    assert execution.labels["launched_by"] == "alice"
    assert approval["risk"] == "HIGH"

    result = approvals.vote(approval["id"], bob, True, "go")
    assert result.status == "approved" and result.resumed
    done = engine.wait(execution.id, timeout=30)

    assert done.state == State.SUCCESS
    assert states(done) == ["CREATED", "RUNNING", "PAUSED", "RUNNING", "SUCCESS"]
    assert [r.task_id for r in done.task_runs] == list(LOOP_TASKS)
    assert all(r.state == State.SUCCESS for r in done.task_runs)
    pause = done.task_run("approval")
    assert [h.state.value for h in pause.histories] == ["CREATED", "RUNNING", "PAUSED", "RUNNING", "SUCCESS"]
    assert pause.outputs["approved"] is True and pause.outputs["approver"] == "bob"
    assert pause.outputs["resumed"]["by"] == "bob"
    executed = done.task_run("execute").outputs["executed"]
    assert "rollback_deployment" in {a["name"] for a in executed}
    assert done.outputs["deployment_status"] == "rolled back"
    deployment = engine.store.deployments.for_execution(execution.id)
    assert deployment["status"] == "rolled back" and deployment["approval"] == "approved"
    assert deployment["verdict"] == "ROLLBACK"


def test_healthy_scenario_runs_to_success_without_approval(engine):
    execution = engine.run_sync(scenario=HEALTHY_SCENARIO, triggered_by="alice", timeout=30)
    assert execution.state == State.SUCCESS
    assert states(execution) == ["CREATED", "RUNNING", "SUCCESS"]
    assert execution.outputs["verdict"] == "CONTINUE"
    assert execution.outputs["deployment_status"] == "healthy"
    assert execution.task_run("approval").outputs == {"required": False}
    assert engine.store.approvals.for_execution(execution.id) is None
    [record] = engine.store.outcomes.records()
    assert record["approval"]["status"] == "auto"
    assert record["scenario"]["id"] == HEALTHY_SCENARIO
    assert record["outcome"]["held"] is True  # it stayed healthy on the recorded post-action segment
    # a scenario's log says at each step that what it did and measured is simulated
    lines = {e.task_id: e.message for e in engine.execution_logs(execution.id)}
    assert lines["verify"].startswith("measured (simulated): resolved")
    assert lines["record"].startswith("outcome recorded (simulated): healthy")
    # the log says which verdict rule fired and why, so a surprising verdict is explained there
    decision = execution.task_run("summarize").outputs["decision"]
    assert lines["analyze"].endswith(f"by rules, rule healthy: {decision['reasoning']}")


def test_launch_returns_at_once_and_the_worker_finishes(engine, monkeypatch):
    import threading

    import console.loop.steps as steps

    release = threading.Event()
    original = steps.collect

    def held(*args, **kwargs):
        release.wait(patience(30))
        return original(*args, **kwargs)

    monkeypatch.setattr(steps, "collect", held)
    try:
        execution_id = engine.launch_scenario(HEALTHY_SCENARIO, "alice")  # returns while collect is held
        first = engine.get_execution(execution_id)
        assert first.state in (State.CREATED, State.RUNNING)
    finally:
        release.set()
    done = engine.wait(execution_id, timeout=30)
    assert done.state == State.SUCCESS


def test_scenario_timestamps_are_shifted_to_now(engine):
    execution = engine.run_sync(scenario=HEALTHY_SCENARIO, triggered_by="alice", timeout=30)
    snapshot = engine.snapshot_document(execution.id)
    newest = max(parse_time(ts) for points in snapshot["metrics"].values() for ts, _ in points)
    assert abs((datetime.now(UTC) - newest).total_seconds()) < 60
    deployed = parse_time(snapshot["deployment"]["deployed_at"])
    assert deployed < newest
    # the deployment's charts read exactly this snapshot, at the shifted times
    deployment = engine.store.deployments.for_execution(execution.id)
    assert engine.store.deployments.snapshot(deployment) == snapshot
    metric = next(iter(snapshot["metrics"]))
    times, values = snapshot_series(snapshot)[metric]
    assert times[-1] == newest.timestamp() and len(values) == len(snapshot["metrics"][metric])


def test_execution_has_kestra_shape_and_round_trips(engine):
    execution = engine.run_sync(scenario=HEALTHY_SCENARIO, triggered_by="alice", timeout=30)
    doc = execution.to_kestra()
    assert doc["flowId"] == "devops-loop" and doc["namespace"] == "devops.loop"
    assert doc["state"]["current"] == "SUCCESS"
    again = Execution.from_kestra(doc)
    assert [r.task_id for r in again.task_runs] == list(LOOP_TASKS)
    assert again.outputs == execution.outputs


def test_a_failing_step_fails_the_task_and_the_execution_with_one_line(engine, monkeypatch):
    import console.loop.steps as steps

    def boom(data, settings):
        raise RuntimeError("analysis exploded\n  on two lines")

    monkeypatch.setattr(steps, "analyze", boom)
    execution = engine.run_sync(scenario=HEALTHY_SCENARIO, triggered_by="alice", timeout=30)
    assert execution.state == State.FAILED
    assert execution.task_run("analyze").state == State.FAILED
    assert execution.task_run("summarize") is None
    errors = [e for e in engine.execution_logs(execution.id) if e.level == "ERROR"]
    assert len(errors) == 1
    assert errors[0].task_id == "analyze"
    assert errors[0].message == "RuntimeError: analysis exploded on two lines"
    assert "Traceback" not in errors[0].message
    assert engine.store.deployments.for_execution(execution.id)["status"] == "failed"


def test_invalid_snapshot_fails_in_collect(engine):
    execution_id = engine.launch(
        {
            "deployment": {"id": "d1", "service": "svc", "version": "v2", "deployed_at": "yesterday"},
            "metrics": {},
            "logs": [],
        },
        triggered_by="ci",
    )
    execution = engine.wait(execution_id, timeout=30)
    assert execution.state == State.FAILED
    [error] = [e for e in engine.execution_logs(execution_id) if e.level == "ERROR"]
    assert error.task_id == "collect" and "deployment.deployed_at" in error.message


def test_resume_of_a_finished_execution_is_refused(engine):
    execution = engine.run_sync(scenario=HEALTHY_SCENARIO, triggered_by="alice", timeout=30)
    with pytest.raises(BackendError, match=f"execution {execution.id} is SUCCESS, not PAUSED"):
        engine.resume(execution.id, approved=True, comment="", approver="bob")
    with pytest.raises(BackendError, match="not found"):
        engine.get_execution("nope")


def test_kill_a_paused_execution_cancels_its_approval(engine, approvals, bob):
    from console.access.approvals import AlreadyDecided

    execution, approval = run_paused(engine)
    engine.kill(execution.id)
    killed = engine.get_execution(execution.id)
    assert killed.state == State.KILLED
    assert killed.task_run("approval").state == State.KILLED
    assert engine.store.approvals.get(approval["id"])["status"] == "cancelled"
    with pytest.raises(AlreadyDecided, match="cancelled"):
        approvals.vote(approval["id"], bob, True, "")
    with pytest.raises(BackendError, match="already KILLED"):
        engine.kill(execution.id)


def test_search_is_newest_first_with_state_filter_and_paging(engine):
    ids = [engine.run_sync(scenario=HEALTHY_SCENARIO, triggered_by="a", timeout=30).id for _ in range(3)]
    paused, _ = run_paused(engine)
    page = engine.search_executions(page=1, size=2)
    assert page.total == 4
    assert [e.id for e in page.items] == [paused.id, ids[2]]
    assert page.items[0].task_runs == []  # listing does not load task runs
    second = engine.search_executions(page=2, size=2)
    assert [e.id for e in second.items] == [ids[1], ids[0]]
    only_paused = engine.search_executions(states=[State.PAUSED])
    assert [e.id for e in only_paused.items] == [paused.id] and only_paused.total == 1
    assert engine.search_executions(flow_id="other").total == 0


def test_dashboard_read_models(engine, approvals, bob):
    engine.run_sync(scenario=HEALTHY_SCENARIO, triggered_by="alice", timeout=30)
    execution, approval = run_paused(engine)
    kpis = engine.store.deployments.dashboard_kpis()
    assert kpis.executions_today == 2 and kpis.pending_approvals == 1
    assert kpis.auto_approved_share == 1.0  # the only decided deployment ran on its own
    approvals.vote(approval["id"], bob, True, "")
    engine.wait(execution.id, timeout=30)
    kpis = engine.store.deployments.dashboard_kpis()
    assert kpis.pending_approvals == 0 and kpis.rollbacks_today == 1
    assert kpis.auto_approved_share == 0.5
    assert kpis.mean_human_wait_s is not None and kpis.mean_human_wait_s >= 0
    assert kpis.verdicts_today == {"CONTINUE": 1, "ROLLBACK": 1}
    latest = engine.store.deployments.latest_decisions(5)
    assert latest[0]["execution_id"] == execution.id
    health = {h["service"]: h for h in engine.store.deployments.service_health()}
    assert health[latest[0]["service"]]["status"] == "rolled back"
    engine_health = engine.health()
    assert engine_health.ok and engine_health.details["executions"] == 2
    assert not any(c.isdigit() for c in engine_health.message)  # no count for a cached sidebar to leave stale


def test_synchronous_engine_runs_inline(settings):
    engine = EmbeddedEngine(settings, synchronous=True)
    execution_id = engine.launch_scenario(HEALTHY_SCENARIO, "cli")
    assert engine.store.executions.get(execution_id).state == State.SUCCESS


def test_an_engine_bug_still_ends_the_execution_failed(engine, monkeypatch):
    original = engine.projection.task_finished

    def broken(conn, execution_id, task_id, outputs, *, at):
        if task_id == "decide":
            raise KeyError("plan")
        return original(conn, execution_id, task_id, outputs, at=at)

    monkeypatch.setattr(engine.projection, "task_finished", broken)
    execution = engine.run_sync(scenario=HEALTHY_SCENARIO, triggered_by="alice", timeout=30)
    assert execution.state == State.FAILED
    assert execution.task_run("decide").state == State.FAILED  # not left RUNNING
    [error] = [e for e in engine.execution_logs(execution.id) if e.level == "ERROR"]
    assert error.message == "internal error: KeyError: 'plan'"


def test_kill_while_a_task_runs_stops_the_worker(engine, monkeypatch):
    import threading

    import console.loop.steps as steps

    entered, release = threading.Event(), threading.Event()
    original = steps.summarize

    def slow(data, settings):
        entered.set()
        release.wait(patience(10))
        return original(data, settings)

    monkeypatch.setattr(steps, "summarize", slow)
    execution_id = engine.launch_scenario(HEALTHY_SCENARIO, "alice")
    assert entered.wait(patience(30))
    engine.kill(execution_id, by="carol")
    release.set()
    wait_until(lambda: not engine.scheduler.busy(), 10, what="the worker finishing its step")
    execution = engine.get_execution(execution_id)
    assert execution.state == State.KILLED
    assert execution.task_run("summarize").state == State.KILLED
    assert execution.task_run("decide") is None
    assert ("carol", "execution.killed") in [
        (r["actor"], r["event"]) for r in engine.store.audit.trail(subject=execution_id)
    ]


def test_collect_for_a_service_without_a_source_is_a_clear_error_never_mock_data(settings):
    from console.loop import step_io, steps

    for data in (
        {"deployment_id": "dep-77", "service": "payment-service", "version": "v9"},
        {"deployment": {"id": "dep-77", "service": "payment-service", "version": "v9"}, "source": "api"},
    ):
        with pytest.raises(step_io.StepError) as caught:
            steps.collect(data, settings)
        message = str(caught.value)
        assert "no telemetry source configured for service 'payment-service'" in message
        assert "CONSOLE_SERVICES_FILE" in message and "\n" not in message


def test_launch_deployment_stores_the_deployment_and_its_source_and_runs_the_live_loop(settings, tmp_path):
    from dataclasses import replace

    from console.telemetry.times import format_ts
    from tests.conftest import logs_only_service

    services, now = logs_only_service(tmp_path)
    live = replace(settings, services_file=services, live_poll_s=0.1)
    engine = EmbeddedEngine(live, synchronous=True)
    try:
        record = {"id": "dep-5", "service": "demo-service", "version": "v1.0.1", "previous_version": "v1.0.0",
                  "by": "alice", "at": format_ts(now), "kind": "deploy"}  # fmt: skip
        execution_id = engine.launch_deployment(
            record, triggered_by="alice", source="deployer", labels={"x": "y"}
        )
        assert engine.store.executions.launch_input(execution_id) == {
            "deployment": {
                "id": "dep-5",
                "service": "demo-service",
                "version": "v1.0.1",
                "previous_version": "v1.0.0",
                "environment": "live-demo",
                "deployed_at": format_ts(now),
                "deployed_by": "alice",
            },
            "source": "deployer",
        }
        execution = engine.get_execution(execution_id)
        assert execution.labels == {"source": "deployer", "x": "y"}
        assert execution.state in (State.PAUSED, State.SUCCESS)
        verification = execution.task_run("collect").outputs["verification"]
        assert verification["ended"] == "window end"
        row = engine.store.deployments.for_execution(execution_id)
        assert row["environment"] == "live-demo" and row["deployed_by"] == "alice"
        with pytest.raises(BackendError, match="needs at least 'service' and 'version'"):
            engine.launch_deployment({"service": "demo-service"}, triggered_by="alice", source="api")
    finally:
        engine.close()


def test_the_command_line_runs_what_it_launched_no_console_can_take_it_in_between(settings, monkeypatch):
    """The command line (a synchronous engine) takes its run in the launch's own transaction: a
    console on the same data that looks for queued runs right after every commit finds none."""
    from contextlib import contextmanager

    from console.storage import Store

    cli = EmbeddedEngine(settings, synchronous=True)
    console = Store(settings.db_path)
    taken: list[str] = []
    write = cli.store.db.write

    @contextmanager
    def write_then_a_console_looks():
        with write() as conn:
            yield conn
        with console.db.write() as other:
            for (queued,) in other.execute("SELECT execution_id FROM run_queue").fetchall():
                if console.queue.claim_in(other, queued, owner="another-console", now=9e12):
                    taken.append(queued)

    monkeypatch.setattr(cli.store.db, "write", write_then_a_console_looks)
    try:
        run = cli.launch_scenario(HEALTHY_SCENARIO, "alice")
        assert taken == []
        assert cli.get_execution(run).state == State.SUCCESS
    finally:
        console.close()
        cli.close()
