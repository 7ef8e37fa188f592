"""The simulated executor touches nothing and says "simulated" everywhere."""

from __future__ import annotations

import pytest

from console.domain.actions import ACTION_NAMES
from console.executors import ActionRequest, SimulatedExecutor


@pytest.mark.parametrize("action", ACTION_NAMES)
def test_every_action_is_a_simulated_done(action: str) -> None:
    executor = SimulatedExecutor()
    assert executor.supports(action)
    result = executor.run(
        ActionRequest(action, "payment-service", previous_version="v1.1.0", execution_id="e1")
    )
    assert result.status == "done"
    assert result.simulated is True
    assert result.executor == "simulated"
    assert result.commands == ()
    assert result.detail.startswith("simulated: would ")
    assert result.detail.endswith("nothing was touched")
    assert result.label.endswith("(simulated)")
    assert not result.changed


def test_rollback_wording() -> None:
    executor = SimulatedExecutor()
    request = ActionRequest("rollback_deployment", "payment-service", params={"to_version": "v1.1.0"})
    result = executor.run(request)
    assert result.label == "rolled back (simulated)"
    assert result.detail == "simulated: would roll back payment-service to v1.1.0; nothing was touched"
    assert (
        executor.describe(request)
        == "simulated: would roll back payment-service to v1.1.0 (nothing is touched)"
    )


def test_unknown_action_is_refused_even_simulated() -> None:
    result = SimulatedExecutor().run(ActionRequest("drop_tables", "db"))
    assert result.status == "refused"
    assert result.label.startswith("drop_tables refused: unknown action 'drop_tables'")
    assert result.label.endswith("(simulated)")
