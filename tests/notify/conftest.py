"""Fixtures for the notifications: local receivers, settings that point both channels at them (with
secrets that must never show up in a message), a synchronous runtime, and a dispatcher that backs
off for milliseconds instead of seconds."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

import pytest

from console.domain.executions import Execution, State
from console.notify import Dispatcher
from console.runtime import EmbeddedRuntime, embedded_runtime
from console.settings import Secret, Settings
from tests.notify.receiver import Receiver

PUBLIC_URL = "https://console.example.com"
SLACK_PATH = "/services/T0SECRET/B0SECRET/xoxSLACKPATHSECRET42"
WEBHOOK_TOKEN = "whk-TOKEN-SECRET-9f8e7d"
WEBHOOK_QUERY_TOKEN = "qtok-SECRET-abc123"
TOGETHER_KEY = "sk-together-SECRET-0a1b2c"
KESTRA_PASSWORD = "kestra-PASS-SECRET-77"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as rx:
        yield rx


@pytest.fixture
def notify_settings(settings: Settings, receiver: Receiver) -> Settings:
    """Both channels on the local receiver; the webhook URL carries credentials and a query token."""
    host = receiver.url.removeprefix("http://")
    return replace(
        settings,
        public_url=PUBLIC_URL,
        notify_slack_webhook_url=Secret(receiver.url + SLACK_PATH),
        notify_webhook_url=Secret(f"http://hookuser:hookpass-SECRET@{host}/hook?token={WEBHOOK_QUERY_TOKEN}"),
        notify_webhook_token=Secret(WEBHOOK_TOKEN),
        notify_timeout_s=1.0,
        notify_max_attempts=3,
        together_api_key=Secret(""),
        kestra_password=Secret(KESTRA_PASSWORD),
    )


SECRETS = [SLACK_PATH.rsplit("/", 1)[-1], "T0SECRET", WEBHOOK_TOKEN, WEBHOOK_QUERY_TOKEN, "hookpass-SECRET",
           TOGETHER_KEY, KESTRA_PASSWORD]  # fmt: skip


@pytest.fixture
def runtime(notify_settings: Settings) -> Iterator[EmbeddedRuntime]:
    """The engine and its approval service, synchronous: no dispatcher thread (the tests run rounds)."""
    rt = embedded_runtime(notify_settings, synchronous=True)
    yield rt
    rt.close()


def dispatcher(runtime: EmbeddedRuntime, settings: Settings | None = None, **kwargs) -> Dispatcher:
    kwargs.setdefault("backoff_s", 0.02)
    return Dispatcher(runtime.store, settings or runtime.settings, **kwargs)


def paused(runtime: EmbeddedRuntime, scenario: str = "memory-leak") -> tuple[Execution, dict]:
    execution = runtime.engine.run_sync(scenario=scenario, triggered_by="alice")
    assert execution.state == State.PAUSED
    approval = runtime.store.approvals.for_execution(execution.id)
    assert approval is not None
    return execution, approval
