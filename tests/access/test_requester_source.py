"""Who requested an approval, and how the console knows: ``requested_by_source`` on both engines.
On Kestra the ``triggered_by`` input is whatever the launcher typed ("kestra input
(unverified)") unless the console launched the run itself for a signed-in person."""

from __future__ import annotations

import pytest

from console.access.approvals import ApprovalService
from console.access.auth import Identity, PermissionDenied, Role
from console.domain.executions import State
from console.domain.names import RequesterSource
from console.engines.embedded.runner import EmbeddedEngine
from console.engines.kestra.backend import KestraBackend
from console.engines.kestra.mirror import KestraMirror
from console.loop import steps
from console.loop.steps import load_scenario
from console.presentation.formatting import requester_source_text
from console.storage import Store
from tests.conftest import kestra_settings
from tests.waiting import wait_for_state

SCENARIO = "memory-leak"


def paused_approval(engine: EmbeddedEngine, execution_id: str) -> dict:
    assert engine.wait(execution_id, timeout=60).state == State.PAUSED
    approval = engine.store.approvals.for_execution(execution_id)
    assert approval is not None
    return approval


def test_embedded_scenario_requester_is_the_scenario_deployer(engine):
    approval = paused_approval(engine, engine.launch_scenario(SCENARIO, "alice"))
    assert approval["requested_by"] == load_scenario(SCENARIO, engine.settings)["deployment"]["deployed_by"]
    assert approval["requested_by_source"] == RequesterSource.SCENARIO


def test_embedded_launcher_says_where_the_name_came_from(engine):
    doc = load_scenario(SCENARIO, engine.settings)
    said = engine.launch(doc, triggered_by="ci-bot", labels={RequesterSource.LABEL: "deployer"})
    assert paused_approval(engine, said)["requested_by_source"] == "deployer"
    unsaid = engine.launch(doc, triggered_by="ci-bot")
    assert paused_approval(engine, unsaid)["requested_by_source"] == RequesterSource.LAUNCHER


def test_the_card_says_it_in_words():
    assert requester_source_text(RequesterSource.KESTRA_INPUT) == "from the Kestra input, not verified"
    assert requester_source_text(RequesterSource.CONSOLE_SIGN_IN) == "signed in to the console"
    assert requester_source_text("deployer") == "from the deployer (as announced)"
    assert "not recorded" in requester_source_text(None)


@pytest.fixture
def on_kestra(kestra, tmp_path):
    settings = kestra_settings(kestra, tmp_path)
    backend = KestraBackend(settings)
    store = Store(settings.db_path)
    mirror = KestraMirror(store, backend, settings)
    yield backend, store, ApprovalService(store, backend, settings, refresh=mirror.refresh)
    store.close()
    backend.close()


def wait_paused(backend: KestraBackend, execution_id: str) -> None:
    assert wait_for_state(backend, execution_id, {State.PAUSED, State.FAILED}).state == State.PAUSED


@pytest.mark.slow
def test_kestra_typed_requester_is_marked_unverified_and_still_cannot_self_review(on_kestra):
    backend, _, service = on_kestra
    # launched from Kestra's own UI: the triggered_by input is whatever that launcher typed
    inputs = {"scenario": SCENARIO, "triggered_by": " CI-Bot "}
    execution_id = backend.client.trigger(backend.namespace, "devops-loop", inputs).id
    wait_paused(backend, execution_id)
    [pending] = service.pending()
    assert pending["requested_by"] == "CI-Bot"
    assert pending["requested_by_source"] == RequesterSource.KESTRA_INPUT
    with pytest.raises(PermissionDenied, match="your own request"):
        service.vote(pending["id"], Identity("ci-bot", Role.ADMIN, source="password"), True, "")


@pytest.mark.slow
def test_a_scenario_the_console_launched_on_kestra_is_requested_by_its_deployer(on_kestra):
    """As on the embedded engine: a demo scenario's request comes from the deployer it names."""
    backend, _, service = on_kestra
    execution_id = backend.launch_scenario(SCENARIO, "dana")
    service.record_launch(execution_id, Identity("dana", Role.APPROVER, source="password"))
    wait_paused(backend, execution_id)
    [pending] = service.pending()
    assert (pending["requested_by"], pending["requested_by_source"]) == ("ci-bot", RequesterSource.SCENARIO)


@pytest.mark.slow
def test_kestra_run_the_console_launched_names_the_signed_in_person(on_kestra):
    backend, _, service = on_kestra
    dana = Identity("dana", Role.APPROVER, source="password")
    doc = steps.load_scenario(SCENARIO, backend.settings)
    del doc["scenario"]  # a deployment's snapshot, not a demo scenario
    execution_id = backend.launch(doc, triggered_by="mallory")  # the input says someone else
    service.record_launch(execution_id, dana)
    wait_paused(backend, execution_id)
    [pending] = service.pending()
    assert (pending["requested_by"], pending["requested_by_source"]) == (
        "dana",
        RequesterSource.CONSOLE_SIGN_IN,
    )
    with pytest.raises(PermissionDenied, match="your own request"):
        service.vote(pending["id"], dana, True, "")
    erin = Identity("erin", Role.APPROVER, source="password")
    assert service.vote(pending["id"], erin, True, "ok").status == "approved"
