"""The approval service is backend-agnostic: the same checks and decisions over KestraBackend, with the
real client talking HTTP to the project's fake Kestra server on 127.0.0.1."""

from __future__ import annotations

import time

import pytest

from console.access.approvals import AlreadyDecided, ApprovalService
from console.access.auth import Identity, PermissionDenied, Role
from console.domain.executions import State
from console.engines.kestra.backend import KestraBackend
from console.engines.kestra.mirror import KestraMirror
from console.settings import Secret, Settings
from console.storage import Store
from tests.kestra.conftest import FLOWS_DIR, PASSWORD, USER
from tests.kestra.fake_kestra import FakeKestra


@pytest.fixture
def kestra(tmp_path):
    fake = FakeKestra(
        version="1.3.21", username=USER, password=PASSWORD, settings=Settings(data_dir=tmp_path / "fake-data")
    ).start()
    fake.deploy_dir(FLOWS_DIR)
    try:
        yield fake
    finally:
        fake.stop()


def wait_for(backend, execution_id, states, timeout=60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        execution = backend.get_execution(execution_id)
        if execution.state in states:
            return execution
        time.sleep(0.05)
    raise AssertionError(f"{execution_id} never reached {states}")


@pytest.mark.slow
def test_paused_kestra_execution_is_mirrored_once_and_decided(kestra, tmp_path):
    settings = Settings(
        data_dir=tmp_path / "console",
        kestra_url=kestra.url,
        kestra_username=USER,
        kestra_password=Secret(PASSWORD),
        kestra_timeout_s=2.0,
    )
    backend = KestraBackend(settings)
    store = Store(settings.db_path)
    mirror = KestraMirror(store, backend, settings)
    service = ApprovalService(store, backend, settings, refresh=lambda: mirror.sync().error)
    execution_id = backend.launch_scenario("memory-leak", "alice")
    assert wait_for(backend, execution_id, {State.PAUSED, State.FAILED}).state == State.PAUSED

    [pending] = service.pending()
    assert service.pending()[0]["id"] == pending["id"]  # mirrored once
    assert pending["execution_id"] == execution_id and pending["status"] == "pending"
    assert "rollback_deployment" in {a["name"] for a in pending["actions"]}
    with pytest.raises(PermissionDenied):
        service.decide(pending["id"], Identity("vera", Role.VIEWER), True, "")
    with pytest.raises(PermissionDenied, match="your own request"):
        service.decide(pending["id"], Identity(pending["requested_by"], Role.ADMIN), True, "")

    result = service.decide(pending["id"], Identity("bob", Role.APPROVER), True, "leak confirmed")
    assert result.status == "approved" and result.resumed
    done = wait_for(backend, execution_id, {State.SUCCESS, State.FAILED})
    assert done.state == State.SUCCESS
    with pytest.raises(AlreadyDecided, match="already approved by bob"):
        service.decide(pending["id"], Identity("carol", Role.APPROVER), True, "")
    assert service.pending() == []  # the decided execution is not mirrored again
