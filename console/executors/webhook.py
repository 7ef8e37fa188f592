"""The webhook executor: POSTs the action as JSON to a configured URL (Argo CD, a Kestra flow, any
receiver) and reports what the receiver answered.

Body (keys sorted, compact JSON; the same bytes on every attempt)::

    {"action", "params", "service", "version", "previous_version", "deployment_id",
     "execution_id", "approved_by", "idempotency_key"}

Headers: ``Content-Type: application/json``, ``Idempotency-Key`` (the same key as in the body),
``Authorization: Bearer <token>`` when ``token_env`` is set, and ``X-Signature-256:
sha256=<hex HMAC-SHA256 of the body>`` when ``secret_env`` is set.

The idempotency key is derived from the execution, the deployment, the service, the action and its
params, so a retried delivery, or the same step re-run after a console restart, carries the same key
and the receiver can drop the duplicate. Retries: on 5xx, connection errors and timeouts (the key
makes a repeat safe), at most ``retries`` more attempts with exponential backoff; never on 2xx-4xx.
Redirects are not followed.

A 2xx answer is ``done`` and means the receiver *accepted* the action, not that it has been carried
out: the label reads "rollback sent: webhook answered 202", never "rolled back".
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

from console.executors.base import (
    KNOWN_ACTIONS,
    ActionFailed,
    ActionRequest,
    BaseExecutor,
    Handler,
    RunLog,
    bounded_json,
    mask_url,
)
from console.executors.config import ConfigReader
from console.executors.http_support import answer_excerpt, json_body, read_secret, request_error

SIGNATURE_HEADER = "X-Signature-256"
IDEMPOTENCY_HEADER = "Idempotency-Key"
RESPONSE_LIMIT = 4000
"""Characters of a JSON answer kept as evidence."""


def idempotency_key(request: ActionRequest) -> str:
    """Stable for one action of one execution: same request, same key (a retry, a re-run step)."""
    if not (request.execution_id or request.deployment_id):
        return f"devops-loop-{uuid.uuid4().hex}"  # nothing stable to derive it from
    basis = json.dumps(
        [request.execution_id, request.deployment_id, request.service, request.action, request.params],
        sort_keys=True,
        default=str,
    )
    return "devops-loop-" + hashlib.sha256(basis.encode("utf-8")).hexdigest()[:32]


def sign(secret: str, body: bytes) -> str:
    """The ``X-Signature-256`` header value for ``body``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


class WebhookExecutor(BaseExecutor):
    name = "webhook"
    simulated = False
    KEYS = ("url", "token_env", "secret_env", "timeout_s", "retries", "backoff_s")

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
    ) -> None:
        self.url = url
        self.token_env = token_env
        self.secret_env = secret_env
        self.timeout_s = timeout_s
        self.retries = retries
        self.backoff_s = backoff_s
        self._sleep = sleep

    @classmethod
    def from_config(cls, config: Mapping[str, Any], where: str = "executor") -> WebhookExecutor:
        read = ConfigReader(config, where, cls.name, cls.KEYS)
        url = read.url("url")
        token_env = read.env_name("token_env")
        secret_env = read.env_name("secret_env")
        timeout_s = read.number("timeout_s", 10.0, maximum=300)
        retries = read.integer("retries", 2, minimum=0, maximum=5)
        backoff_s = read.number("backoff_s", 0.5, maximum=30, zero_ok=True)
        read.finish()
        assert url is not None
        return cls(
            url,
            token_env=token_env,
            secret_env=secret_env,
            timeout_s=timeout_s,
            retries=retries,
            backoff_s=backoff_s,
        )

    def _handlers(self) -> Mapping[str, Handler]:
        return dict.fromkeys(KNOWN_ACTIONS, self._deliver)

    def _describe_action(self, request: ActionRequest) -> str:
        extras = [IDEMPOTENCY_HEADER]
        if self.token_env:
            extras.append("Authorization: Bearer ***")
        if self.secret_env:
            extras.append(SIGNATURE_HEADER)
        return f"POST {mask_url(self.url)} with the {request.action} action as JSON ({', '.join(extras)})"

    @staticmethod
    def body(request: ActionRequest, key: str) -> bytes:
        doc = {
            "action": request.action,
            "params": request.params,
            "service": request.service,
            "version": request.version,
            "previous_version": request.previous_version,
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

        attempts = 1 + self.retries
        problem = ""
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
                continue
            log.evidence["status_code"] = response.status_code
            if 200 <= response.status_code < 300:
                answer = json_body(response)
                if answer is not None:
                    log.evidence["response"] = bounded_json(answer, RESPONSE_LIMIT)
                tries = f" after {attempt} attempts" if attempt > 1 else ""
                return (
                    f"receiver at {mask_url(self.url)} answered {response.status_code} "
                    f"{response.reason or ''}".rstrip()
                    + tries
                )
            problem = f"receiver answered {response.status_code}: {answer_excerpt(response)}"
            if response.status_code < 500:
                raise ActionFailed(problem)  # 3xx/4xx: sending it again would get the same answer
        raise ActionFailed(f"{problem} ({attempts} attempts)" if attempts > 1 else problem)
