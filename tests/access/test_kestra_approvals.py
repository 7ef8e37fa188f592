"""The approval service is backend-agnostic: the same checks and decisions over KestraBackend, with the
real client talking HTTP to the project's fake Kestra server on 127.0.0.1."""

from __future__ import annotations

import pytest

from console.access.approvals import AlreadyDecided, ApprovalService
from console.access.auth import Identity, PermissionDenied, Role
from console.domain.executions import State
from console.engines.kestra.backend import KestraBackend
from console.engines.kestra.mirror import KestraMirror
from console.storage import Store
from tests.conftest import kestra_settings
from tests.waiting import wait_for_state


@pytest.mark.slow
def test_paused_kestra_execution_is_mirrored_once_and_decided(kestra, tmp_path):
    settings = kestra_settings(kestra, tmp_path)
    backend = KestraBackend(settings)
    store = Store(settings.db_path)
    mirror = KestraMirror(store, backend, settings)
    service = ApprovalService(store, backend, settings, refresh=lambda: mirror.sync().error)
    execution_id = backend.launch_scenario("memory-leak", "alice")
    assert wait_for_state(backend, execution_id, {State.PAUSED, State.FAILED}).state == State.PAUSED

    # identities signed in with a password: on Kestra a picked demo identity decides nothing
    [pending] = service.pending()
    assert service.pending()[0]["id"] == pending["id"]  # mirrored once
    assert pending["execution_id"] == execution_id and pending["status"] == "pending"
    assert "rollback_deployment" in {a["name"] for a in pending["actions"]}
    with pytest.raises(PermissionDenied):
        service.vote(pending["id"], Identity("vera", Role.VIEWER, source="password"), True, "")
    with pytest.raises(PermissionDenied, match="your own request"):
        service.vote(
            pending["id"], Identity(pending["requested_by"], Role.ADMIN, source="password"), True, ""
        )

    result = service.vote(
        pending["id"], Identity("bob", Role.APPROVER, source="password"), True, "leak confirmed"
    )
    assert result.status == "approved" and result.resumed
    done = wait_for_state(backend, execution_id, {State.SUCCESS, State.FAILED})
    assert done.state == State.SUCCESS
    with pytest.raises(AlreadyDecided, match="already approved by bob"):
        service.vote(pending["id"], Identity("carol", Role.APPROVER, source="password"), True, "")
    assert service.pending() == []  # the decided execution is not mirrored again
