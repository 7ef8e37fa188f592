"""The demo-service executor: acts on the project's demo service through its deployer API
(demo_service/README.md, "API").

- ``rollback_deployment``: ``POST /rollback`` to the request's target version (the loop names a
  known-good one; without a target the rollback is refused, never left to the deployer's idea of
  "previous"), then ``GET /status`` until that version runs and is ready, at most
  ``verify_timeout_s``.
- ``restart_pod``: ``POST /restart``, then the same check for the restarted version.
- ``collect_diagnostics``: ``GET /status`` and ``GET /deployments?limit=5``, kept as evidence.
- ``notify_only``: changes nothing.
- ``scale_deployment``, ``increase_resources``, ``failover_database``: refused (one instance, resources
  fixed per version, no database).

Every changing call carries ``expected_version`` (the version the decision was about: the deployer
answers 409 and does nothing when another one runs, so a race between the loop's check and its call
cannot roll back the wrong thing) and an ``Idempotency-Key`` (the deployer acts once per key and
answers a repeated key with the first call's record). A call that timed out or lost its connection
after it was sent is ``unknown``, not failed; the state is ``GET /status`` (:meth:`probe`).

The bearer token is read from the environment variable named by ``token_env`` at each run; it is
sent only in the ``Authorization`` header and masked out of results and logs.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import requests

from console.domain.actions import COLLECT_DIAGNOSTICS, NOTIFY_ONLY, RESTART, ROLLBACK
from console.domain.config_reader import ConfigReader
from console.domain.models import now_text
from console.domain.redaction import mask_url
from console.executors.base import (
    ActionFailed,
    ActionRefused,
    ActionRequest,
    ActionUnknown,
    BaseExecutor,
    ExecutorConfigError,
    Handler,
    RunLog,
    ServiceState,
    bounded_json,
)
from console.executors.http_support import answer_excerpt, json_body, maybe_sent, read_secret, request_error

DEFAULT_TOKEN_ENV = "DEMO_DEPLOYER_TOKEN"  # noqa: S105 -- the name of the variable, not a token
RECENT_DEPLOYMENTS = 5
IDEMPOTENCY_HEADER = "Idempotency-Key"
PROBE_TIMEOUT_S = 3.0
"""A state read feeding a check right before an action: a deployer slower than this is unreadable."""


class DeployerAnswer(ActionFailed):
    """The deployer answered with an error status (``doc`` is its JSON answer, when it sent one)."""

    def __init__(self, status: int, line: str, doc: dict[str, Any] | None = None) -> None:
        super().__init__(line)
        self.status = status
        self.doc = doc or {}


def deployer_request(
    base_url: str,
    token_env: str,
    token: str,
    method: str,
    path: str,
    *,
    body: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    timeout_s: float,
    key: str | None = None,
) -> dict[str, Any]:
    """One call of the deployer's API, its answer's JSON object. Raises :class:`DeployerAnswer` for
    an error status, :class:`ActionUnknown` when a changing call (a POST) may have reached the
    deployer before its answer was lost, and :class:`ActionFailed` when it cannot be asked or
    answers no JSON object; each with one line that names the deployer and never the token."""
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    if key:
        headers[IDEMPOTENCY_HEADER] = key
    try:
        response = requests.request(
            method,
            base_url + path,
            json=body,
            params=params,
            headers=headers,
            timeout=timeout_s,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        line = request_error(exc, "deployer", base_url, timeout_s)
        if method == "POST" and maybe_sent(exc):
            raise ActionUnknown(f"{line}: the deployer may have acted") from None
        raise ActionFailed(line) from None
    doc = json_body(response)
    if not 200 <= response.status_code < 300:
        line = f"deployer answered {response.status_code}: {answer_excerpt(response)}"
        if response.status_code == 401:
            line += f" (check the token in {token_env})"
        if method == "POST" and response.status_code == 500:
            raise ActionUnknown(f"{line}: the deployer may have acted") from None
        raise DeployerAnswer(response.status_code, line, doc if isinstance(doc, dict) else None)
    if not isinstance(doc, dict):
        raise ActionFailed(f"deployer answered {method} {path} with something other than a JSON object")
    return doc


def state_of(status: Mapping[str, Any], source: str) -> ServiceState:
    """A deployer's ``GET /status`` answer as a :class:`ServiceState`."""

    def text(key: str) -> str | None:
        value = status.get(key)
        return value if isinstance(value, str) and value else None

    restarts = status.get("restarts")
    ready = status.get("ready")
    return ServiceState(
        version=text("version"),
        ready=ready if isinstance(ready, bool) else None,
        restarts=restarts if isinstance(restarts, int) and not isinstance(restarts, bool) else None,
        deploying=status.get("deploying") is True,
        previous_version=text("previous_version"),
        deployment_id=text("deployment_id"),
        switched_at=text("switched_at"),
        started_at=text("started_at"),
        observed_at=now_text(),
        source=source,
    )


class DemoServiceExecutor(BaseExecutor):
    name = "demo-service"
    simulated = False
    idempotent = True
    KEYS = ("url", "token_env", "timeout_s", "verify_timeout_s", "poll_interval_s")

    def __init__(
        self,
        url: str,
        *,
        token_env: str = DEFAULT_TOKEN_ENV,
        timeout_s: float = 30.0,
        verify_timeout_s: float = 10.0,
        poll_interval_s: float = 0.25,
    ) -> None:
        self.url = url.rstrip("/")
        self.token_env = token_env
        self.timeout_s = timeout_s
        """Per HTTP request; a deploy answers once the new instance serves, so it is generous."""
        self.verify_timeout_s = verify_timeout_s
        """How long ``GET /status`` may take to show the expected version running and ready."""
        self.poll_interval_s = poll_interval_s

    @classmethod
    def from_config(cls, config: Mapping[str, Any], where: str = "executor") -> DemoServiceExecutor:
        check = ConfigReader()
        check.keys(config, where, ("type", *cls.KEYS), kind=cls.name)
        url = check.url(config, "url", where)
        token_env = check.env_name(config, "token_env", where, default=DEFAULT_TOKEN_ENV) or DEFAULT_TOKEN_ENV
        timeout_s = check.number(config, "timeout_s", where, 30.0, maximum=600)
        verify_timeout_s = check.number(config, "verify_timeout_s", where, 10.0, maximum=600)
        poll_interval_s = check.number(config, "poll_interval_s", where, 0.25, maximum=10)
        if check.problems:
            raise ExecutorConfigError(check.problems)
        assert url is not None
        return cls(
            url,
            token_env=token_env,
            timeout_s=timeout_s,
            verify_timeout_s=verify_timeout_s,
            poll_interval_s=poll_interval_s,
        )

    # -- what it does and refuses ----------------------------------------------------------------------

    def _handlers(self) -> Mapping[str, Handler]:
        return {
            ROLLBACK: self._rollback,
            RESTART: self._restart,
            COLLECT_DIAGNOSTICS: self._diagnostics,
            NOTIFY_ONLY: self._notify,
        }

    def _refusals(self) -> Mapping[str, str]:
        return {
            "scale_deployment": "it runs one instance",
            "increase_resources": "its resources are part of each version's behaviour "
            "(the deployer has no endpoint to change them)",
            "failover_database": "it has no database",
        }

    def _describe_action(self, request: ActionRequest) -> str:
        base = mask_url(self.url)
        wait = f"then wait up to {self.verify_timeout_s:g} s for GET /status to show it running and ready"
        guard = f" if {request.expected_version} still runs" if request.expected_version else ""
        if request.action == ROLLBACK:
            if not request.target_version:
                raise ActionRefused(NO_TARGET)
            return f"POST {base}/rollback to {request.target_version}{guard}, {wait}"
        if request.action == RESTART:
            return f"POST {base}/restart{guard}, {wait}"
        if request.action == COLLECT_DIAGNOSTICS:
            return f"GET {base}/status and {base}/deployments?limit={RECENT_DEPLOYMENTS}"
        return f"no change to {request.service} (notify only)"

    # -- HTTP --------------------------------------------------------------------------------------------

    def _call(
        self,
        method: str,
        path: str,
        log: RunLog,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        timeout_s: float | None = None,
        record: bool = True,
        key: str | None = None,
    ) -> dict[str, Any]:
        token = read_secret(self.token_env, "deployer token")
        assert token is not None
        log.secrets.append(token)
        url = self.url + path
        timeout = timeout_s if timeout_s is not None else self.timeout_s
        if record:
            shown = mask_url(url) + (f"?{urlencode(params)}" if params else "")
            payload = f" {json.dumps(body, sort_keys=True)}" if body is not None else ""
            keyed = f"; {IDEMPOTENCY_HEADER}: {key}" if key else ""
            log.command(f"{method} {shown}{payload} (Authorization: Bearer ***{keyed})")
        return deployer_request(
            self.url,
            self.token_env,
            token,
            method,
            path,
            body=body,
            params=params,
            timeout_s=timeout,
            key=key,
        )

    def _probe(self, service: str) -> ServiceState:
        log = RunLog()
        status = self._call(
            "GET", "/status", log, timeout_s=min(self.timeout_s, PROBE_TIMEOUT_S), record=False
        )
        return state_of(status, f"GET {mask_url(self.url)}/status")

    def _change(self, path: str, request: ActionRequest, body: dict[str, Any], log: RunLog) -> dict[str, Any]:
        """POST a switch with the request's expected version and idempotency key; its record. A 409 on
        the expected version is a refusal that says what runs instead (the decision is superseded)."""
        if request.expected_version:
            body = {**body, "expected_version": request.expected_version}
        try:
            answer = self._call("POST", path, log, body=body, key=request.idempotency_key)
        except DeployerAnswer as exc:
            current = exc.doc.get("current") if isinstance(exc.doc.get("current"), dict) else None
            if exc.status == 409 and current is not None:
                raise ActionRefused(
                    f"{request.service} runs {current.get('version')}, not {request.expected_version}: "
                    "nothing was done (the decision is superseded)",
                    evidence={"superseded": bounded_json(current)},
                ) from None
            if exc.status == 409:
                raise ActionRefused(f"{exc}: nothing was done") from None
            raise
        record = self._deployment(answer, path)
        log.evidence["deployment"] = bounded_json(record)
        if answer.get("replayed") is True:
            log.evidence["replayed"] = True
        return record

    def _deployment(self, doc: dict[str, Any], path: str) -> dict[str, Any]:
        record = doc.get("deployment")
        if not isinstance(record, dict):
            raise ActionFailed(f"deployer answered POST {path} without a deployment record")
        return record

    @staticmethod
    def _serving(status: dict[str, Any], version: str | None) -> bool:
        return (
            (version is None or status.get("version") == version)
            and status.get("ready") is True
            and not status.get("deploying")
        )

    def _wait_until_serving(self, version: str | None, log: RunLog) -> tuple[float, str | None]:
        """Poll ``GET /status`` until ``version`` runs and is ready: (seconds waited, None), or
        (seconds, what stands instead) once ``verify_timeout_s`` passed. ActionFailed when the
        service runs another version than the switch the deployer recorded (it did not happen)."""
        what = version or "the service"
        log.command(
            f"GET {mask_url(self.url)}/status (Authorization: Bearer ***), polled until {what} "
            f"runs and is ready, at most {self.verify_timeout_s:g} s"
        )
        start = time.monotonic()
        deadline = start + self.verify_timeout_s
        last: dict[str, Any] | None = None
        last_error: str | None = None
        polls = 0
        while True:
            polls += 1
            remaining = deadline - time.monotonic()
            try:
                last = self._call(
                    "GET", "/status", log, timeout_s=min(self.timeout_s, max(remaining, 0.5)), record=False
                )
                last_error = None
            except DeployerAnswer as exc:
                if exc.status < 500:
                    raise  # 401, 404...: asking again will not help
                last_error = str(exc)
            except ActionFailed as exc:  # unreachable or timed out: the switch may be under way
                last_error = str(exc)
            if last is not None and last_error is None and self._serving(last, version):
                log.evidence["status"] = bounded_json(last)
                log.evidence["status_polls"] = polls
                return time.monotonic() - start, None
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(self.poll_interval_s, remaining))
        log.evidence["status"] = bounded_json(last)
        log.evidence["status_polls"] = polls
        waited = f"after {self.verify_timeout_s:g} s"
        if last_error is not None:
            return self.verify_timeout_s, f"{waited} the service's status is unknown: {last_error}"
        assert last is not None
        running = last.get("version")
        if version is not None and running != version and not last.get("deploying"):
            raise ActionFailed(f"{waited} the service still runs {running} (expected {version})")
        if last.get("deploying"):
            return self.verify_timeout_s, f"{waited} a deploy is still in progress (running {running})"
        restarts = last.get("restarts")
        crashes = f", {restarts} crash restarts" if isinstance(restarts, int) and restarts else ""
        return self.verify_timeout_s, f"{waited} {running} runs but is not ready{crashes}"

    # -- actions -----------------------------------------------------------------------------------------

    def _rollback(self, request: ActionRequest, log: RunLog) -> str:
        target = request.target_version
        if not target:
            raise ActionRefused(NO_TARGET)
        body = {"by": request.actor, "reason": _reason(request), "to": target}
        record = self._change("/rollback", request, body, log)
        waited, problem = self._wait_until_serving(target, log)
        log.evidence["verified_after_s"] = round(waited, 3)
        done = f"{request.service} rolled back to {target} (deployment {record.get('id', '?')})"
        if problem is not None:  # the switch happened: whether it serves well is verify's to measure
            return f"{done}; {problem}"
        return f"{done}; running and ready after {waited:.1f} s"

    def _restart(self, request: ActionRequest, log: RunLog) -> str:
        record = self._change("/restart", request, {"by": request.actor}, log)
        version = record.get("version") if isinstance(record.get("version"), str) else None
        waited, problem = self._wait_until_serving(version, log)
        log.evidence["verified_after_s"] = round(waited, 3)
        which = f"{request.service} {version}" if version else request.service
        done = f"{which} restarted (deployment {record.get('id', '?')})"
        return f"{done}; {problem}" if problem is not None else f"{done}; ready after {waited:.1f} s"

    def _diagnostics(self, request: ActionRequest, log: RunLog) -> str:
        status = self._call("GET", "/status", log)
        recent = self._call("GET", "/deployments", log, params={"limit": RECENT_DEPLOYMENTS})
        deployments = recent.get("deployments")
        if not isinstance(deployments, list):
            raise ActionFailed("deployer answered GET /deployments without a 'deployments' list")
        deployments = deployments[:RECENT_DEPLOYMENTS]
        log.evidence["status"] = bounded_json(status)
        log.evidence["deployments"] = bounded_json(deployments, 8000)
        ready = "ready" if status.get("ready") is True else "not ready"
        return (
            f"captured {request.service}'s status ({status.get('version')}, {ready}, "
            f"{status.get('restarts', '?')} restarts) and its {len(deployments)} most recent deployments"
        )

    def _notify(self, request: ActionRequest, log: RunLog) -> str:
        return (
            f"no change made to {request.service}: notify only (this executor sends no message; "
            "the decision is on the console)"
        )


NO_TARGET = (
    "no rollback target: the loop rolls back only to a known-good version it names "
    "(the deployer's own previous version is never taken blindly)"
)


def _reason(request: ActionRequest) -> str:
    parts = [f"devops-loop {request.action}"]
    if request.execution_id:
        parts.append(f"execution {request.execution_id}")
    if request.deployment_id:
        parts.append(f"after deployment {request.deployment_id}")
    if request.version:
        parts.append(f"of {request.version}")
    return ", ".join(parts)
