"""The webhook executor: POSTs the action as JSON to a configured URL (Argo CD, a Kestra flow, any
receiver), reports what the receiver answered, and, when the receiver publishes the service's state
(``state_url``), confirms the change there.

Body (keys sorted, compact JSON; the same bytes on every attempt)::

    {"action", "params", "service", "version", "previous_version", "expected_version",
     "deployment_id", "execution_id", "approved_by", "idempotency_key"}

Headers: ``Content-Type: application/json``, ``Idempotency-Key`` (the same key as in the body),
``Authorization: Bearer <token>`` when ``token_env`` is set, and ``X-Signature-256:
sha256=<hex HMAC-SHA256 of the body>`` when ``secret_env`` is set.

The idempotency key is one per attempt of one action of one execution (execution, deployment,
service, action, attempt), so a retried delivery, or the same step re-run after a console restart,
carries the same key and the receiver can drop the duplicate. ``expected_version`` is the version the
decision was about: a receiver that can compare-and-swap acts only while it runs. Retries: on 5xx,
connection errors and timeouts (the key makes a repeat safe), at most ``retries`` more attempts with
exponential backoff; never on 2xx-4xx. Redirects are not followed.

**The state probe** (README, "Webhook executor"): ``GET <state_url>`` with the same bearer token
answers the service's state as JSON, ``{"version", "ready", "restarts", "deploying",
"previous_version", "deployment_id", "switched_at", "started_at", "revision", "replicas"}`` (only
``version`` is required). The loop reads it right before an action (preconditions) and after one.

A 2xx answer means the receiver *accepted* the action. For an action that changes the service it is
``done`` only once the state shows the change (polled for ``confirm_timeout_s``); without a
``state_url``, or when the state does not show it in time, the result is ``unknown``: the label reads
"rollback result unknown: ...", never "rolled back". A timeout or a lost connection on the last
attempt is ``unknown`` too (the receiver may have acted); a refused connection is ``failed``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import requests

from console.domain.actions import ACTION_NAMES, changes_service
from console.domain.config_reader import ConfigReader
from console.domain.models import now_text
from console.domain.redaction import mask_url
from console.domain.text import one_line
from console.executors.base import (
    ActionFailed,
    ActionRequest,
    ActionUnknown,
    BaseExecutor,
    ExecutorConfigError,
    Handler,
    ProbeError,
    RunLog,
    ServiceState,
    bounded_json,
    effect_seen,
)
from console.executors.http_support import answer_excerpt, json_body, maybe_sent, read_secret, request_error

SIGNATURE_HEADER = "X-Signature-256"
IDEMPOTENCY_HEADER = "Idempotency-Key"
RESPONSE_LIMIT = 4000
"""Characters of a JSON answer kept as evidence."""


def idempotency_key(request: ActionRequest) -> str:
    """The request's key (one per attempt of one action of one execution); a unique one when there
    is nothing stable to derive it from."""
    return request.idempotency_key or f"devops-loop-{uuid.uuid4().hex}"


def sign(secret: str, body: bytes) -> str:
    """The ``X-Signature-256`` header value for ``body``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def state_from_json(doc: Any, source: str) -> ServiceState:
    """A receiver's state document as a :class:`ServiceState`; ProbeError when it is not one."""
    if not isinstance(doc, Mapping) or not isinstance(doc.get("version"), str) or not doc["version"]:
        raise ProbeError(f"{source} answered no JSON object with a 'version' string")
    state = ServiceState.from_dict({**doc, "observed_at": now_text(), "source": source})
    assert state is not None
    return state


class WebhookExecutor(BaseExecutor):
    name = "webhook"
    simulated = False
    idempotent = True
    KEYS = (
        "url",
        "token_env",
        "secret_env",
        "timeout_s",
        "retries",
        "backoff_s",
        "state_url",
        "confirm_timeout_s",
    )

    def __init__(
        self,
        url: str,
        *,
        token_env: str | None = None,
        secret_env: str | None = None,
        timeout_s: float = 10.0,
        retries: int = 2,
        backoff_s: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
        state_url: str | None = None,
        confirm_timeout_s: float = 30.0,
        poll_interval_s: float = 0.5,
    ) -> None:
        self.url = url
        self.state_url = state_url
        self.confirm_timeout_s = confirm_timeout_s
        """How long the state may take to show a change the receiver accepted."""
        self.poll_interval_s = poll_interval_s
        self.token_env = token_env
        self.secret_env = secret_env
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self._sleep = sleep

    @classmethod
    def from_config(cls, config: Mapping[str, Any], where: str = "executor") -> WebhookExecutor:
        check = ConfigReader()
        check.keys(config, where, ("type", *cls.KEYS), kind=cls.name)
        url = check.url(config, "url", where)
        token_env = check.env_name(config, "token_env", where)
        secret_env = check.env_name(config, "secret_env", where)
        timeout_s = check.number(config, "timeout_s", where, 10.0, maximum=300)
        retries = int(check.number(config, "retries", where, 2, integer=True, zero_ok=True, maximum=5))
        backoff_s = check.number(config, "backoff_s", where, 0.5, zero_ok=True, maximum=30)
        state_url = check.url(config, "state_url", where, required=False)
        confirm_timeout_s = check.number(config, "confirm_timeout_s", where, 30.0, maximum=600)
        if check.problems:
            raise ExecutorConfigError(check.problems)
        assert url is not None
        return cls(
            url,
            token_env=token_env,
            secret_env=secret_env,
            timeout_s=timeout_s,
            retries=retries,
            backoff_s=backoff_s,
            state_url=state_url,
            confirm_timeout_s=confirm_timeout_s,
        )

    def _handlers(self) -> Mapping[str, Handler]:
        return dict.fromkeys(ACTION_NAMES, self._deliver)

    def _describe_action(self, request: ActionRequest) -> str:
        extras = [IDEMPOTENCY_HEADER]
        if self.token_env:
            extras.append("Authorization: Bearer ***")
        if self.secret_env:
            extras.append(SIGNATURE_HEADER)
        sent = f"POST {mask_url(self.url)} with the {request.action} action as JSON ({', '.join(extras)})"
        if not changes_service(request.action):
            return sent
        if self.state_url:
            state = mask_url(self.state_url)
            return f"{sent}, then wait up to {self.confirm_timeout_s:g} s for GET {state} to show it"
        return f"{sent}; no state_url: whether the receiver acted cannot be read (the result stays unknown)"

    def _probe(self, service: str) -> ServiceState | None:
        if not self.state_url:
            return None
        token = read_secret(self.token_env, "webhook token")
        headers = {"Accept": "application/json", "User-Agent": "devops-loop-console"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        source = f"GET {mask_url(self.state_url)}"
        try:
            response = requests.get(
                self.state_url, headers=headers, timeout=min(self.timeout_s, 5.0), allow_redirects=False
            )
        except requests.RequestException as exc:
            line = request_error(exc, "state endpoint", self.state_url, min(self.timeout_s, 5.0))
            raise ProbeError(line) from None
        if response.status_code != 200:
            raise ProbeError(f"state endpoint answered {response.status_code}: {answer_excerpt(response)}")
        return state_from_json(json_body(response), source)

    @staticmethod
    def body(request: ActionRequest, key: str) -> bytes:
        doc = {
            "action": request.action,
            "params": request.params,
            "service": request.service,
            "version": request.version,
            "previous_version": request.previous_version,
            "expected_version": request.expected_version,
            "deployment_id": request.deployment_id,
            "execution_id": request.execution_id,
            "approved_by": request.approved_by,
            "idempotency_key": key,
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), default=str).encode("utf-8")

    def _deliver(self, request: ActionRequest, log: RunLog) -> str:
        token = read_secret(self.token_env, "webhook token")
        secret = read_secret(self.secret_env, "webhook signing secret")
        log.secrets += [s for s in (token, secret) if s]
        key = idempotency_key(request)
        body = self.body(request, key)
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            IDEMPOTENCY_HEADER: key,
            "User-Agent": "devops-loop-console",
        }
        shown = [f"{IDEMPOTENCY_HEADER}: {key}"]
        if token:
            headers["Authorization"] = f"Bearer {token}"
            shown.append("Authorization: Bearer ***")
        if secret:
            headers[SIGNATURE_HEADER] = sign(secret, body)
            shown.append(f"{SIGNATURE_HEADER}: sha256=***")
        log.command(f"POST {mask_url(self.url)} ({'; '.join(shown)}) {body.decode('utf-8')}")
        log.evidence["idempotency_key"] = key

        before = self._state_before(request)
        attempts = 1 + self.retries
        problem = ""
        lost = False
        for attempt in range(1, attempts + 1):
            if attempt > 1:
                self._sleep(self.backoff_s * 2 ** (attempt - 2))
            log.evidence["attempts"] = attempt
            try:
                response = requests.post(
                    self.url, data=body, headers=headers, timeout=self.timeout_s, allow_redirects=False
                )
            except requests.RequestException as exc:
                problem = request_error(exc, "receiver", self.url, self.timeout_s)
                lost = lost or maybe_sent(exc)
                continue
            lost = False
            log.evidence["status_code"] = response.status_code
            if 200 <= response.status_code < 300:
                answer = json_body(response)
                if answer is not None:
                    log.evidence["response"] = bounded_json(answer, RESPONSE_LIMIT)
                tries = f" after {attempt} attempts" if attempt > 1 else ""
                accepted = (
                    f"receiver at {mask_url(self.url)} answered {response.status_code} "
                    f"{response.reason or ''}".rstrip()
                    + tries
                )
                if not changes_service(request.action):
                    return accepted
                return self._confirm(request, before, accepted, log)
            problem = f"receiver answered {response.status_code}: {answer_excerpt(response)}"
            if response.status_code < 500:
                raise ActionFailed(problem)  # 3xx/4xx: sending it again would get the same answer
        line = f"{problem} ({attempts} attempts)" if attempts > 1 else problem
        if lost:  # the last attempt may have reached the receiver: it may have acted
            raise ActionUnknown(f"{line}: the receiver may have acted")
        raise ActionFailed(line)

    def _state_before(self, request: ActionRequest) -> ServiceState | None:
        """The state before a changing call, to tell its effect later (None when it cannot be read)."""
        if not self.state_url or not changes_service(request.action):
            return None
        try:
            return self.probe(request.service)
        except ProbeError:
            return None

    def _confirm(
        self, request: ActionRequest, before: ServiceState | None, accepted: str, log: RunLog
    ) -> str:
        """After a 2xx for a change: done once the state shows it, else ActionUnknown."""
        if not self.state_url:
            raise ActionUnknown(
                f"{accepted}; whether it acted cannot be read (no state_url configured for this receiver)"
            )
        log.command(
            f"GET {mask_url(self.state_url)}, polled until it shows the {request.action}, "
            f"at most {self.confirm_timeout_s:g} s"
        )
        deadline = time.monotonic() + self.confirm_timeout_s
        last = "no state read"
        while True:
            try:
                state = self.probe(request.service)
            except ProbeError as exc:
                last = str(exc)
            else:
                last = state.text
                log.evidence["state"] = state.to_dict()
                if effect_seen(request, before, state):
                    return f"{accepted}; confirmed: {request.service} runs {state.text}"
            left = deadline - time.monotonic()
            if left <= 0:
                break
            self._sleep(min(self.poll_interval_s, left))
        raise ActionUnknown(
            one_line(f"{accepted}; after {self.confirm_timeout_s:g} s the state does not show it ({last})")
        )
