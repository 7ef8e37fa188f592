"""Security below the UI: refusals enforced by ApprovalService, secrets absent from every message.

(The browser half, HTML injection and secrets in pages, is in test_browser_security.py.)
"""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from console.access.approvals import AlreadyDecided, ApprovalService
from console.access.auth import Identity, PermissionDenied, Role
from console.domain.executions import State
from console.domain.snapshot import parse_snapshot
from console.engines.embedded.runner import EmbeddedEngine
from console.engines.kestra.backend import KestraBackend
from console.engines.kestra.client import KestraClient, KestraError
from console.loop.narrative import close_clients, summarize
from console.loop.steps import analyze, load_scenario
from console.settings import Secret, Settings
from tests.browser_support import free_port
from tests.reliability.conftest import KESTRA_PASSWORD_SENTINEL, KESTRA_USER, TOGETHER_KEY_SENTINEL


@pytest.fixture
def engine(settings):
    engine = EmbeddedEngine(settings, max_workers=2)
    yield engine
    engine.close()


@pytest.mark.parametrize(
    ("who", "self_request", "allowed"),
    [
        (Role.VIEWER, False, False),
        (Role.VIEWER, True, False),
        (Role.APPROVER, True, False),
        (Role.ADMIN, True, False),
        (Role.APPROVER, False, True),
        (Role.ADMIN, False, True),
    ],
)
@pytest.mark.parametrize("approved", [True, False])
def test_roles_and_self_approval_are_enforced_by_the_service(
    engine, settings, who, self_request, allowed, approved
):
    execution = engine.run_sync(scenario="memory-leak", triggered_by="alice", timeout=60)
    assert execution.state == State.PAUSED
    service = ApprovalService(engine.store, engine, settings)
    [item] = service.pending()
    name = item["requested_by"] if self_request else "zoe"
    identity = Identity(name, who)
    if not allowed:
        with pytest.raises(PermissionDenied):
            service.vote(item["id"], identity, approved, "a reason")
        row = engine.store.approvals.get(item["id"])
        assert row["status"] == "pending" and engine.store.approvals.votes(item["id"]) == []
        assert engine.get_execution(execution.id).state == State.PAUSED
        [refusal] = [
            r for r in engine.store.audit.trail(subject=item["id"]) if r["event"] == "approval.refused"
        ]
        assert refusal["actor"] == name and refusal["detail"]["role"] == who.value
    else:
        result = service.vote(item["id"], identity, approved, "a reason")
        assert result.status == ("approved" if approved else "rejected")
        # and nobody can decide it again, whatever their role
        with pytest.raises((AlreadyDecided, PermissionDenied)):
            service.vote(item["id"], Identity("yann", Role.ADMIN), not approved, "again")


def test_a_role_cannot_be_smuggled_in_as_text(engine, settings):
    """Only the Role enum grants anything: a name that looks like a role is still a viewer."""
    engine.run_sync(scenario="memory-leak", triggered_by="alice", timeout=60)
    service = ApprovalService(engine.store, engine, settings)
    [item] = service.pending()
    with pytest.raises(PermissionDenied):
        service.vote(item["id"], Identity("admin", Role.VIEWER), True, "")
    assert engine.store.approvals.get(item["id"])["status"] == "pending"


# ------------------------------------------------------------------ secrets in messages and logs


def test_kestra_password_never_in_errors_reprs_or_logs(tmp_path, caplog):
    from tests.kestra.fake_kestra import FakeKestra

    caplog.set_level(logging.DEBUG)
    fake = FakeKestra(
        username=KESTRA_USER, password="the-real-password", settings=Settings(data_dir=tmp_path)
    ).start()
    messages: list[str] = []
    try:
        urls = [fake.url, f"http://{KESTRA_USER}:{KESTRA_PASSWORD_SENTINEL}@127.0.0.1:{fake.port}"]
        for url in urls:
            client = KestraClient(
                url, username=KESTRA_USER, password=Secret(KESTRA_PASSWORD_SENTINEL), timeout=1
            )
            messages.append(repr(client))
            for call in (
                client.check_auth,
                lambda c=client: c.search_executions(),
                lambda c=client: c.logs("x"),
            ):
                with pytest.raises(KestraError) as info:
                    call()
                messages.append(str(info.value))
        fake.fault = "500"
        settings = replace(
            Settings(data_dir=tmp_path / "c"),
            kestra_url=fake.url,
            kestra_username=KESTRA_USER,
            kestra_password=Secret(KESTRA_PASSWORD_SENTINEL),
            kestra_timeout_s=1.0,
        )
        backend = KestraBackend(settings)
        messages.append(backend.health().message)
        messages += [repr(settings), str(settings.safe_dict())]
        fake.down()
        messages.append(backend.health().message)
        dead = KestraClient(
            f"http://127.0.0.1:{free_port()}", password=KESTRA_PASSWORD_SENTINEL, username="u"
        )
        with pytest.raises(KestraError) as info:
            dead.configs()
        messages.append(str(info.value))
    finally:
        fake.stop()
    assert any("401" in m for m in messages)  # the failures did happen
    for text in [*messages, caplog.text]:
        assert KESTRA_PASSWORD_SENTINEL not in text


def test_together_key_never_in_notes_or_logs(settings, caplog):
    from tests.llm.fake_llm import FakeLLM, content, status

    caplog.set_level(logging.DEBUG)
    doc = load_scenario("memory-leak", settings)
    snapshot = parse_snapshot({k: v for k, v in doc.items() if k != "scenario"})
    from console.domain.models import Decision

    decision = Decision.from_dict(analyze({"snapshot": doc}, settings)["decision"])
    notes: list[str] = []
    with FakeLLM(api_key="another-key") as fake:  # our key is refused: 401
        llm = replace(
            settings,
            together_api_key=Secret(TOGETHER_KEY_SENTINEL),
            llm_base_url=fake.url,
            llm_timeout_s=10.0,  # the first call also builds the client: never a timeout here
            llm_max_retries=0,
        )
        for behaviour in (None, status(500), content("{not json")):
            if behaviour is not None:
                fake.api_key = TOGETHER_KEY_SENTINEL
                fake.reset(behaviour)
            result = summarize(snapshot, decision, llm)
            notes += result.notes
    close_clients()
    assert any("401" in n for n in notes) and any("500" in n for n in notes)
    for text in [*notes, caplog.text, repr(llm), str(llm.safe_dict())]:
        assert TOGETHER_KEY_SENTINEL not in text
