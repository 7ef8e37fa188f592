"""The Kestra mirror copies Kestra's executions into the console's read model: incrementally,
idempotently, after a restart, and through killed, failed and deleted executions and a Kestra that
is down. The real client talks HTTP to the fake Kestra, which runs the project's own steps."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.access.approvals import ApprovalService
from console.access.auth import Identity, Role
from console.domain.executions import State
from console.engines.kestra.backend import KestraBackend
from console.engines.kestra.mirror import KestraMirror
from console.settings import Secret, Settings
from console.storage import Store
from tests.kestra.conftest import PASSWORD, USER
from tests.kestra.fake_kestra import FakeKestra
from tests.waiting import wait_for_state

pytestmark = [pytest.mark.kestra, pytest.mark.slow]


def _settings(url: str, tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "console",
        kestra_url=url,
        kestra_username=USER,
        kestra_password=Secret(PASSWORD),
        kestra_timeout_s=2.0,
    )


@pytest.fixture
def parts(loaded: FakeKestra, tmp_path: Path):
    settings = _settings(loaded.url, tmp_path)
    backend = KestraBackend(settings)
    store = Store(settings.db_path)
    mirror = KestraMirror(store, backend, settings)
    approvals = ApprovalService(store, backend, settings, refresh=mirror.refresh)
    yield settings, backend, store, mirror, approvals
    store.close()


def test_a_sync_copies_runs_once_and_a_second_sync_changes_nothing(parts):
    _, backend, store, mirror, _ = parts
    healthy = backend.launch_scenario("healthy-hotfix", "alice")
    leak = backend.launch_scenario("memory-leak", "alice")
    wait_for_state(backend, healthy, {State.SUCCESS})
    wait_for_state(backend, leak, {State.PAUSED})

    first = mirror.sync()
    assert first.error is None and first.projected == 2 and first.approvals_requested == 1
    ok = store.deployments.for_execution(healthy)
    assert (ok["engine"], ok["source"], ok["scenario"], ok["verdict"], ok["status"]) == (
        "kestra", "scenario", "healthy-hotfix", "CONTINUE", "healthy"
    )  # fmt: skip
    assert store.deployments.decision(ok)["verdict"] == "CONTINUE"
    assert store.deployments.snapshot(ok) == backend.snapshot_document(healthy)  # what the decision saw
    paused = store.deployments.for_execution(leak)
    assert (paused["status"], paused["approval"]) == ("awaiting approval", "pending")
    request = store.approvals.for_execution(leak)
    assert request["status"] == "pending" and "rollback_deployment" in {a["name"] for a in request["actions"]}

    before = {
        "deployments": store.deployments.list(),
        "approvals": store.approvals.list(),
        "actions": store.actions.for_execution(healthy),
    }
    again = mirror.sync()
    assert again.projected == 0 and again.approvals_requested == 0  # unchanged fingerprints: not re-read
    assert store.deployments.list() == before["deployments"] and store.approvals.list() == before["approvals"]
    assert store.mirror.state("kestra")["cursor"] is not None


def test_the_approval_decided_in_the_console_resumes_kestra_and_the_outcome_comes_back(parts):
    _, backend, store, mirror, approvals = parts
    leak = backend.launch_scenario("memory-leak", "alice")
    wait_for_state(backend, leak, {State.PAUSED})
    [pending] = approvals.pending()  # the mirror brings the request in
    result = approvals.vote(
        pending["id"], Identity("bob", Role.APPROVER, source="password"), True, "leak confirmed"
    )
    assert result.status == "approved" and result.resumed
    wait_for_state(backend, leak, {State.SUCCESS})
    mirror.sync()
    deployment = store.deployments.for_execution(leak)
    assert deployment["status"] == "rolled back" and deployment["running_version"] == "v1.2.2"
    assert deployment["simulated"] is True  # a recorded scenario: the rollback was simulated
    actions = store.actions.for_execution(leak)
    ran = {(a["name"], a["mode"], a["status"], a["simulated"]) for a in actions}
    assert ("rollback_deployment", "approved", "done", True) in ran
    [record] = store.outcomes.records()
    assert record["execution_id"] == leak and record["approval"]["approvers"] == ["bob"]
    assert approvals.pending() == []


def test_a_new_mirror_resumes_from_the_stored_cursor(parts, tmp_path):
    settings, backend, store, mirror, _ = parts
    first = backend.launch_scenario("healthy-hotfix", "alice")
    wait_for_state(backend, first, {State.SUCCESS})
    mirror.sync()
    restarted = KestraMirror(Store(settings.db_path), backend, settings)  # a console restart
    second = backend.launch_scenario("performance-improvement", "alice")
    wait_for_state(backend, second, {State.SUCCESS, State.PAUSED})
    report = restarted.sync()
    assert report.projected == 1 and report.projected_ids == [second]
    assert {d["execution_id"] for d in store.deployments.list()} == {first, second}


def test_kestra_down_is_one_line_and_the_next_sync_catches_up(parts, loaded: FakeKestra):
    _, backend, store, mirror, approvals = parts
    loaded.down()
    report = mirror.sync()
    assert report.error and "\n" not in report.error and PASSWORD not in report.error
    assert store.mirror.state("kestra")["last_error"] == report.error
    with pytest.raises(AssertionError):  # pages keep what they had: nothing, and say why
        assert approvals.pending()
    assert approvals.sync_error
    loaded.start()
    execution_id = backend.launch_scenario("healthy-hotfix", "alice")
    wait_for_state(backend, execution_id, {State.SUCCESS})
    again = mirror.sync()
    assert again.error is None and store.deployments.for_execution(execution_id)["status"] == "healthy"
    assert store.mirror.state("kestra")["last_error"] is None


def test_killed_failed_and_deleted_executions(parts, loaded: FakeKestra):
    _, backend, store, mirror, _ = parts
    killed = backend.launch_scenario("memory-leak", "alice")
    deleted = backend.launch_scenario("crash-loop", "alice")
    wait_for_state(backend, killed, {State.PAUSED})
    wait_for_state(backend, deleted, {State.PAUSED})
    # launched by someone else (Kestra's UI, a CI job) with a scenario the task image cannot load
    failed = backend.client.trigger(backend.namespace, "devops-loop", {"scenario": "no-such-scenario"}).id
    wait_for_state(backend, failed, {State.FAILED})
    mirror.sync()
    assert store.approvals.for_execution(killed)["status"] == "pending"

    backend.kill(killed)
    wait_for_state(backend, killed, {State.KILLED})
    loaded.delete(deleted)
    report = mirror.sync()
    assert report.error is None and report.gone == 1
    gone = store.deployments.for_execution(deleted)
    assert gone["status"] == "cancelled" and "deleted in Kestra" in gone["note"]
    assert store.approvals.for_execution(deleted)["status"] == "cancelled"
    stopped = store.deployments.for_execution(killed)
    assert stopped["status"] == "cancelled" and stopped["note"] == "killed in Kestra"
    assert store.approvals.for_execution(killed)["status"] == "cancelled"
    assert store.deployments.for_execution(failed)["status"] == "failed"
    assert mirror.sync().gone == 0  # a deleted execution is not looked for again
