"""The webhook executor against a real local receiver that checks the signature and counts deliveries."""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from console.domain.actions import ACTION_NAMES
from console.executors import ActionRequest, WebhookExecutor
from console.executors.webhook import idempotency_key
from tests.executors.conftest import result_text
from tests.executors.servers import Reply, Request, closed_port_url, serve

TOKEN_ENV = "EXECUTOR_TEST_WEBHOOK_TOKEN"
SECRET_ENV = "EXECUTOR_TEST_WEBHOOK_SECRET"
TOKEN = "hook-token-5b1f0e"
SECRET = "signing-secret-9c2d"


@dataclass
class Receiver:
    """Answers with ``replies`` in turn (the last one repeats); rejects a bad signature or token."""

    replies: list[Reply] = field(default_factory=lambda: [Reply(202, {"accepted": True, "run": "r-1"})])
    deliveries: list[Request] = field(default_factory=list)
    bad_signatures: int = 0
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, req: Request) -> Reply:
        with self._lock:
            self.deliveries.append(req)
            n = len(self.deliveries)
        expected = "sha256=" + hmac.new(SECRET.encode(), req.body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(req.headers.get("x-signature-256", ""), expected):
            self.bad_signatures += 1
            return Reply(401, {"error": "bad signature"})
        if req.headers.get("authorization") != f"Bearer {TOKEN}":
            return Reply(401, {"error": "bad token"})
        return self.replies[min(n, len(self.replies)) - 1]


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.setenv(SECRET_ENV, SECRET)
    rec = Receiver()
    with serve(rec.handle) as url:
        rec.url = url + "/hooks/devops"
        yield rec


def webhook(url: str, **extra: object) -> WebhookExecutor:
    config = {"type": "webhook", "url": url, "token_env": TOKEN_ENV, "secret_env": SECRET_ENV, "backoff_s": 0}
    return WebhookExecutor.from_config({**config, **extra})


ROLLBACK = ActionRequest(
    action="rollback_deployment",
    service="checkout",
    params={"service": "checkout", "to_version": "v41"},
    version="v42",
    previous_version="v41",
    deployment_id="dep-42",
    execution_id="exec-7",
    approved_by="alice",
    expected_version="v42",
)
NOTIFY = ActionRequest("notify_only", "checkout", deployment_id="dep-42", execution_id="exec-7")


def test_delivery_signed_and_accepted(receiver: Receiver, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    result = webhook(receiver.url).run(ROLLBACK)
    assert result.status == "unknown", result.detail  # accepted is not carried out, and nothing shows it
    assert result.label == (
        f"rollback result unknown: receiver at {receiver.url} answered 202 Accepted; whether it acted "
        "cannot be read (no state_url configured for this receiver)"
    )
    assert "rolled back" not in result.label and not result.changed
    [delivery] = receiver.deliveries
    assert receiver.bad_signatures == 0
    body = delivery.json()
    assert body == {
        "action": "rollback_deployment",
        "params": {"service": "checkout", "to_version": "v41"},
        "service": "checkout",
        "version": "v42",
        "previous_version": "v41",
        "expected_version": "v42",
        "deployment_id": "dep-42",
        "execution_id": "exec-7",
        "approved_by": "alice",
        "idempotency_key": idempotency_key(ROLLBACK),
    }
    assert delivery.headers["idempotency-key"] == body["idempotency_key"]
    assert delivery.headers["content-type"] == "application/json"
    assert result.evidence is not None
    assert result.evidence["response"] == {"accepted": True, "run": "r-1"}
    assert result.evidence["status_code"] == 202 and result.evidence["attempts"] == 1
    [command] = result.commands
    assert command.startswith(f"POST {receiver.url} (Idempotency-Key: devops-loop-")
    assert "Authorization: Bearer ***; X-Signature-256: sha256=***" in command
    for secret in (TOKEN, SECRET):
        assert secret not in result_text(result)
        assert secret not in caplog.text


def test_500_then_200_is_retried_with_the_same_key_and_body(receiver: Receiver) -> None:
    receiver.replies = [Reply(500, {"error": "flow engine busy"}), Reply(200, {"ok": True})]
    result = webhook(receiver.url).run(NOTIFY)
    assert result.status == "done", result.detail
    assert result.detail == f"receiver at {receiver.url} answered 200 OK after 2 attempts"
    assert result.label == "notification sent: webhook answered 200"
    first, second = receiver.deliveries
    assert first.body == second.body
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert receiver.bad_signatures == 0


def test_5xx_every_time_fails_after_bounded_retries_with_backoff(receiver: Receiver) -> None:
    receiver.replies = [Reply(503, {"error": "maintenance"})]
    sleeps: list[float] = []
    executor = WebhookExecutor(
        receiver.url,
        token_env=TOKEN_ENV,
        secret_env=SECRET_ENV,
        retries=3,
        backoff_s=0.01,
        sleep=sleeps.append,
    )
    result = executor.run(ROLLBACK)
    assert result.status == "failed"
    assert result.detail == "receiver answered 503: maintenance (4 attempts)"
    assert result.label == "rollback failed: receiver answered 503: maintenance (4 attempts)"
    assert len(receiver.deliveries) == 4
    assert sleeps == [0.01, 0.02, 0.04]


def test_4xx_is_never_retried(receiver: Receiver) -> None:
    receiver.replies = [Reply(400, {"error": "unknown service checkout"})]
    result = webhook(receiver.url, retries=5).run(ROLLBACK)
    assert result.status == "failed"
    assert result.detail == "receiver answered 400: unknown service checkout"
    assert len(receiver.deliveries) == 1


def test_error_excerpt_is_bounded(receiver: Receiver) -> None:
    receiver.replies = [Reply(422, "<html>" + "nope " * 500 + "</html>")]
    result = webhook(receiver.url).run(ROLLBACK)
    assert result.detail.startswith("receiver answered 422: <html>nope nope")
    assert len(result.detail) < 240


def test_slow_receiver_times_out_is_retried_and_stays_unknown(receiver: Receiver) -> None:
    """The request reached the receiver each time: it may have acted; never "failed"."""
    receiver.replies = [Reply(200, {"ok": True}, delay_s=1.5)]
    result = webhook(receiver.url, timeout_s=0.3, retries=1).run(ROLLBACK)
    assert result.status == "unknown"
    assert result.detail == (
        f"receiver did not answer within 0.3 s ({receiver.url}) (2 attempts): the receiver may have acted"
    )
    assert len(receiver.deliveries) == 2


def test_unreachable_receiver(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.setenv(SECRET_ENV, SECRET)
    url = closed_port_url() + "/hook"
    result = webhook(url).run(ROLLBACK)
    assert result.status == "failed"
    assert result.detail == f"receiver unreachable at {url}: connection refused (3 attempts)"


def test_wrong_signing_secret_is_rejected_by_the_receiver(
    receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(SECRET_ENV, "not-the-shared-secret")
    result = webhook(receiver.url).run(ROLLBACK)
    assert result.status == "failed"
    assert result.detail == "receiver answered 401: bad signature"
    assert receiver.bad_signatures == 1
    assert "not-the-shared-secret" not in result_text(result)


def test_missing_secret_sends_nothing(receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SECRET_ENV)
    result = webhook(receiver.url).run(ROLLBACK)
    assert result.detail == f"webhook signing secret missing: environment variable {SECRET_ENV} is not set"
    assert receiver.deliveries == []


def test_redirects_are_not_followed(receiver: Receiver) -> None:
    receiver.replies = [Reply(302, {"error": "moved"})]
    result = webhook(receiver.url).run(ROLLBACK)
    assert result.detail == "receiver answered 302: moved"
    assert len(receiver.deliveries) == 1


def test_non_json_and_huge_answers(receiver: Receiver) -> None:
    receiver.replies = [Reply(200, "ok")]
    plain = webhook(receiver.url).run(NOTIFY)
    assert plain.status == "done" and plain.evidence is not None and "response" not in plain.evidence
    receiver.replies = [Reply(200, {"log": "x" * 20000})]
    huge = webhook(receiver.url).run(NOTIFY)
    assert huge.evidence is not None and huge.evidence["response"]["truncated"] is True
    assert len(huge.evidence["response"]["excerpt"]) == 4000


def test_every_url_query_value_is_masked(receiver: Receiver) -> None:
    """A query value may be a secret whatever its name: every one is masked, the names stay."""
    result = webhook(receiver.url + "?token=abc123xyz&flow=s3cr3t-flow").run(ROLLBACK)
    assert result.status == "unknown", result.detail
    assert "abc123xyz" not in result_text(result) and "s3cr3t-flow" not in result_text(result)
    assert "token=***&flow=***" in result.commands[0]


def test_idempotency_key_is_one_per_attempt_of_an_action_of_an_execution() -> None:
    same = ActionRequest.from_dict(ROLLBACK.to_dict())
    assert idempotency_key(ROLLBACK) == idempotency_key(same)
    others = [
        ActionRequest.from_dict({**ROLLBACK.to_dict(), "execution_id": "exec-8"}),
        ActionRequest.from_dict({**ROLLBACK.to_dict(), "action": "restart_pod"}),
        ActionRequest.from_dict({**ROLLBACK.to_dict(), "attempt": 2}),
    ]
    assert len({idempotency_key(r) for r in [ROLLBACK, *others]}) == 4
    loose = ActionRequest("notify_only", "checkout")  # nothing stable to derive from: unique
    assert idempotency_key(loose) != idempotency_key(loose)


def test_every_known_action_can_be_sent_unknown_is_refused(receiver: Receiver) -> None:
    executor = webhook(receiver.url)
    assert all(executor.supports(a) for a in ACTION_NAMES)
    result = executor.run(ActionRequest("format_disk", "checkout"))
    assert result.status == "refused"
    assert receiver.deliveries == []
    assert executor.describe(ROLLBACK) == (
        f"POST {receiver.url} with the rollback_deployment action as JSON "
        "(Idempotency-Key, Authorization: Bearer ***, X-Signature-256); no state_url: whether the "
        "receiver acted cannot be read (the result stays unknown)"
    )


def test_unsigned_unauthenticated_webhook(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[Request] = []

    def accept(req: Request) -> Reply:
        seen.append(req)
        return Reply(204, None)

    with serve(accept) as url:
        result = WebhookExecutor.from_config({"type": "webhook", "url": url}).run(NOTIFY)
    assert result.status == "done", result.detail
    assert result.label == "notification sent: webhook answered 204"
    assert "authorization" not in seen[0].headers and "x-signature-256" not in seen[0].headers


@dataclass
class StatefulReceiver:
    """A receiver that publishes its service's state at ``/state`` (README, "Webhook executor") and
    acts on a rollback ``delay_polls`` state reads after accepting it (0: at once; None: never)."""

    version: str = "v42"
    delay_polls: int | None = 0
    deliveries: list[Request] = field(default_factory=list)
    pending: str | None = None
    state_reads: int = 0

    def handle(self, req: Request) -> Reply:
        if req.method == "GET" and req.path == "/state":
            if req.headers.get("authorization") != f"Bearer {TOKEN}":
                return Reply(401, {"error": "bad token"})
            self.state_reads += 1
            if self.pending and self.delay_polls is not None and self.state_reads > self.delay_polls:
                self.version, self.pending = self.pending, None
            return Reply(200, {"version": self.version, "ready": True, "restarts": 0, "deploying": False})
        self.deliveries.append(req)
        body = req.json()
        if body["expected_version"] != self.version:
            return Reply(409, {"error": f"runs {self.version}, not {body['expected_version']}"})
        self.pending = body["params"]["to_version"]
        return Reply(202, {"accepted": True})


@pytest.fixture
def stateful(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[StatefulReceiver, str]]:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    rec = StatefulReceiver()
    with serve(rec.handle) as url:
        yield rec, url


def stateful_webhook(url: str, **extra: object) -> WebhookExecutor:
    config = {
        "type": "webhook",
        "url": url + "/hook",
        "state_url": url + "/state",
        "token_env": TOKEN_ENV,
        "confirm_timeout_s": 2,
        **extra,
    }
    executor = WebhookExecutor.from_config(config)
    executor.poll_interval_s = 0.01
    return executor


def test_a_202_is_done_once_the_state_shows_the_rollback(stateful: tuple[StatefulReceiver, str]) -> None:
    receiver, url = stateful
    receiver.delay_polls = 3  # the receiver acts a moment after it answered 202
    executor = stateful_webhook(url)
    state = executor.probe("checkout")
    assert (state.version, state.ready, state.source) == ("v42", True, f"GET {url}/state")
    result = executor.run(ROLLBACK)
    assert result.status == "done", result.detail
    assert result.label == "rolled back" and result.changed
    assert result.detail.endswith("; confirmed: checkout runs v41 · ready · 0 crash restarts")


def test_a_202_that_never_acted_is_unknown_not_rolled_back(stateful: tuple[StatefulReceiver, str]) -> None:
    receiver, url = stateful
    receiver.delay_polls = None
    result = stateful_webhook(url, confirm_timeout_s=0.2).run(ROLLBACK)
    assert result.status == "unknown"
    assert result.detail.endswith("; after 0.2 s the state does not show it (v42 · ready · 0 crash restarts)")
    assert "rolled back" not in result.label and not result.changed


def test_a_state_endpoint_that_answers_nonsense_is_a_one_line_probe_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from console.executors import ProbeError

    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    with serve(lambda req: Reply(200, ["not", "a", "state"])) as url:
        with pytest.raises(ProbeError, match="answered no JSON object with a 'version' string"):
            stateful_webhook(url).probe("checkout")
