"""The notification settings, the messages on their own, the outbox's migration, and the composition
root starting and stopping the dispatcher for both engines."""

from __future__ import annotations

import sqlite3
from dataclasses import replace

import pytest

from console.notify import Dispatcher, build_notice, slack_escape, slack_payload, webhook_payload
from console.runtime import open_services
from console.settings import Secret, Settings, SettingsError, load_settings
from console.storage import Store
from console.storage.migrations import MIGRATIONS
from tests.notify.conftest import PUBLIC_URL, SLACK_PATH
from tests.notify.receiver import Receiver

SLACK_URL = "https://hooks.slack.com/services/T000/B000/XXXXsecretXXXX"


def test_notification_settings_come_from_the_environment_and_stay_secret(tmp_path):
    settings = load_settings(
        {
            "CONSOLE_PUBLIC_URL": "https://console.example.com/",
            "NOTIFY_SLACK_WEBHOOK_URL": SLACK_URL,
            "NOTIFY_WEBHOOK_URL": "https://hooks.example.com/in?token=abcdefgh123",
            "NOTIFY_WEBHOOK_TOKEN": "tok-123456789",
            "NOTIFY_TIMEOUT_S": "2.5",
            "NOTIFY_MAX_ATTEMPTS": "4",
        },
        secrets_path=tmp_path / "none.toml",
    )
    assert settings.notify_enabled and settings.public_url == "https://console.example.com/"
    assert settings.notify_timeout_s == 2.5 and settings.notify_max_attempts == 4
    shown = repr(settings) + str(settings.safe_dict())
    assert "XXXXsecretXXXX" not in shown and "abcdefgh123" not in shown and "tok-123456789" not in shown
    assert settings.safe_dict()["notify_slack_webhook_url"] == "set"
    assert "/services/T000/B000/XXXXsecretXXXX" in settings.secret_values()  # its path is masked alone too
    assert not Settings().notify_enabled


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"CONSOLE_PUBLIC_URL": "console.example.com"}, "CONSOLE_PUBLIC_URL must be an http"),
        ({"CONSOLE_PUBLIC_URL": "https://admin:pw@console.example.com"}, "must not carry credentials"),
        ({"NOTIFY_SLACK_WEBHOOK_URL": "hooks.slack.com/services/T/B/SECRETPART"}, "NOTIFY_SLACK_WEBHOOK_URL"),
        ({"NOTIFY_WEBHOOK_URL": "ftp://x/SECRETPART"}, "NOTIFY_WEBHOOK_URL must be"),
        ({"NOTIFY_MAX_ATTEMPTS": "0"}, "NOTIFY_MAX_ATTEMPTS"),
        ({"NOTIFY_TIMEOUT_S": "0"}, "NOTIFY_TIMEOUT_S"),
    ],
)
def test_bad_notification_settings_are_refused_in_one_line_without_the_secret(tmp_path, env, message):
    with pytest.raises(SettingsError) as err:
        load_settings(env, secrets_path=tmp_path / "none.toml")
    assert message in str(err.value) and "SECRETPART" not in str(err.value) and "pw@" not in str(err.value)


def _row(event: str, **detail) -> dict:
    return {"seq": 7, "at": "2026-11-29T17:05:00Z", "actor": "bob", "event": event, "subject": "ap-1",
            "detail": detail}  # fmt: skip


MATERIAL = {
    "approval": {
        "id": "ap-1",
        "execution_id": "ex-1",
        "service": "checkout",
        "actions": [{"name": "scale_deployment", "risk": "MEDIUM"}],
        "risk": "MEDIUM",
        "required_approvals": 1,
        "requested_by": "ci",
        "requested_at": "2026-11-29T17:00:00Z",
        "expires_at": "2026-11-29T17:30:00Z",
        "status": "approved",
        "decided_by": "bob",
        "verdict": "ESCALATE",
        "severity": "HIGH",
        "confidence": 0.85,
        "decision": {"summary": "error_rate rose <b>a lot</b>"},
    },
    "votes": [{"actor": "bob", "approved": True, "comment": "ok", "at": "2026-11-29T17:05:00Z"}],
    "deployment": {"service": "checkout", "version": "v2.4.0", "previous_version": "v2.3.9",
                   "environment": "production", "scenario": None},
}  # fmt: skip


def test_each_event_reads_as_what_happened():
    settings = Settings(public_url=PUBLIC_URL)
    pending = build_notice(_row("approval.requested"), MATERIAL, settings)
    assert pending.title == "Approval needed: ESCALATE checkout v2.4.0" and not pending.simulated
    assert pending.link == f"{PUBLIC_URL}/approvals?approval=ap-1"
    assert dict(pending.fields)["Expires"] == "2026-11-29 17:30 UTC"
    assert "Approve runs scale_deployment (MEDIUM)" in " ".join(pending.lines)
    approved = build_notice(_row("approval.approved", comment="ok"), MATERIAL, settings)
    assert approved.title == "Approved by bob: ESCALATE checkout v2.4.0"
    assert dict(approved.fields)["Decided"] == "bob at 2026-11-29 17:05 UTC"
    assert "Comment: ok" in approved.lines
    payload = slack_payload(pending)
    assert "error_rate rose &lt;b&gt;a lot&lt;/b&gt;" in payload["blocks"][0]["text"]["text"]
    assert webhook_payload(approved)["approval"]["decided_by"] == "bob"
    unknown = build_notice(_row("approval.expired"), None, settings)  # the approval row is gone
    assert unknown.kind == "expired" and "unknown service" in unknown.title
    assert slack_escape("a & <b> >") == "a &amp; &lt;b&gt; &gt;"


def test_the_outbox_migration_does_not_replay_an_old_databases_history(tmp_path):
    path = tmp_path / "old.sqlite3"
    store = Store(path)
    for i in range(3):
        store.audit.record("alice", "approval.requested", f"ap-{i}", {})
    store.close()
    with sqlite3.connect(path) as conn:  # back to the schema of before the outbox
        conn.execute("DROP TABLE notifications")
        conn.execute("DROP TABLE notify_cursor")
        outbox = next(m.version for m in MIGRATIONS if m.what.startswith("notifications"))
        conn.execute(f"PRAGMA user_version = {outbox - 1}")
    store = Store(path)
    try:
        assert store.db.schema_version == len(MIGRATIONS)
        assert store.notifications.cursor("approvals") == 3
        store.audit.record("alice", "approval.requested", "ap-new", {})
        rows, read_to = store.audit.after(3, ["approval.requested"])
        assert [r["subject"] for r in rows] == ["ap-new"] and read_to == 4
        store.audit.record("alice", "execution.launched", "ex-1", {})
        assert store.audit.after(4, ["approval.requested"]) == ([], 5)  # read past what is not followed
        assert store.audit.after(3, ["approval.requested"], limit=1)[1] == 4
    finally:
        store.close()


def test_the_composition_root_runs_the_dispatcher_only_when_a_channel_is_set(settings):
    services = open_services(settings)
    try:
        assert services.error == "" and services.notifier is None
    finally:
        services.close()
    with Receiver() as receiver:
        configured = replace(
            settings, public_url=PUBLIC_URL, notify_slack_webhook_url=Secret(receiver.url + SLACK_PATH)
        )
        services = open_services(configured)
        try:
            assert isinstance(services.notifier, Dispatcher) and services.notifier.running
            services.backend.launch_scenario("memory-leak", "alice")
            [message] = receiver.wait_for(1, timeout=20)
            assert message.body["text"].startswith("Approval needed: ROLLBACK payment-service v1.2.3")
        finally:
            services.close()
        assert not services.notifier.running


@pytest.mark.slow
def test_on_kestra_a_pause_is_announced_with_no_page_open(tmp_path, monkeypatch):
    from tests.kestra.conftest import FLOWS_DIR, PASSWORD, USER
    from tests.kestra.fake_kestra import FakeKestra

    kestra = FakeKestra(
        version="1.3.21", username=USER, password=PASSWORD, settings=Settings(data_dir=tmp_path / "fake")
    ).start()
    kestra.deploy_dir(FLOWS_DIR)
    try:
        with Receiver() as receiver:
            settings = Settings(
                data_dir=tmp_path / "console",
                kestra_url=kestra.url,
                kestra_username=USER,
                kestra_password=Secret(PASSWORD),
                kestra_timeout_s=2.0,
                kestra_mirror_interval_s=0.2,
                public_url=PUBLIC_URL,
                notify_webhook_url=Secret(receiver.url + "/hook"),
            )
            services = open_services(settings)
            try:
                assert services.backend.name == "kestra" and services.notifier is not None
                execution_id = services.backend.launch_scenario("memory-leak", "alice")
                [message] = receiver.wait_for(1, timeout=60)
                body = message.body
                assert body["kind"] == "pending" and body["approval"]["execution_id"] == execution_id
                assert body["link"].startswith(f"{PUBLIC_URL}/approvals?approval=ap-")
            finally:
                services.close()
    finally:
        kestra.stop()
