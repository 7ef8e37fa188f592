"""The demo-service executor: acts on the project's demo service through its deployer API
(demo_service/README.md, "API").

- ``rollback_deployment``: ``POST /rollback`` (to the request's target version when known), then
  ``GET /status`` until that version runs and is ready, at most ``verify_timeout_s``.
- ``restart_pod``: ``POST /restart``, then the same check for the restarted version.
- ``collect_diagnostics``: ``GET /status`` and ``GET /deployments?limit=5``, kept as evidence.
- ``notify_only``: changes nothing.
- ``scale_deployment``, ``increase_resources``, ``failover_database``: refused (one instance, resources
  fixed per version, no database).

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

from console.executors.base import (
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

DEFAULT_TOKEN_ENV = "DEMO_DEPLOYER_TOKEN"  # noqa: S105 -- the name of the variable, not a token
RECENT_DEPLOYMENTS = 5


class DeployerAnswer(ActionFailed):
    """The deployer answered with an error status."""

    def __init__(self, status: int, line: str) -> None:
        super().__init__(line)
        self.status = status


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
) -> dict[str, Any]:
    """One call of the deployer's API, its answer's JSON object. Raises :class:`DeployerAnswer` for
    an error status and :class:`ActionFailed` when it cannot be asked or answers no JSON object;
    each with one line that names the deployer and never the token."""
    try:
        response = requests.request(
            method,
            base_url + path,
            json=body,
            params=params,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=timeout_s,
            allow_redirects=False,
        )
    except requests.RequestException as exc:
        raise ActionFailed(request_error(exc, "deployer", base_url, timeout_s)) from None
    if not 200 <= response.status_code < 300:
        line = f"deployer answered {response.status_code}: {answer_excerpt(response)}"
        if response.status_code == 401:
            line += f" (check the token in {token_env})"
        raise DeployerAnswer(response.status_code, line)
    doc = json_body(response)
    if not isinstance(doc, dict):
        raise ActionFailed(f"deployer answered {method} {path} with something other than a JSON object")
    return doc


class DemoServiceExecutor(BaseExecutor):
    name = "demo-service"
    simulated = False
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
        read = ConfigReader(config, where, cls.name, cls.KEYS)
        url = read.url("url")
        token_env = read.env_name("token_env", default=DEFAULT_TOKEN_ENV) or DEFAULT_TOKEN_ENV
        timeout_s = read.number("timeout_s", 30.0, maximum=600)
        verify_timeout_s = read.number("verify_timeout_s", 10.0, maximum=600)
        poll_interval_s = read.number("poll_interval_s", 0.25, maximum=10)
        read.finish()
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
            "rollback_deployment": self._rollback,
            "restart_pod": self._restart,
            "collect_diagnostics": self._diagnostics,
            "notify_only": self._notify,
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
        if request.action == "rollback_deployment":
            target = request.target_version or "the version that ran before the current one"
            return f"POST {base}/rollback to {target}, {wait}"
        if request.action == "restart_pod":
            return f"POST {base}/restart, {wait}"
        if request.action == "collect_diagnostics":
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
    ) -> dict[str, Any]:
        token = read_secret(self.token_env, "deployer token")
        assert token is not None
        log.secrets.append(token)
        url = self.url + path
        timeout = timeout_s if timeout_s is not None else self.timeout_s
        if record:
            shown = mask_url(url) + (f"?{urlencode(params)}" if params else "")
            payload = f" {json.dumps(body, sort_keys=True)}" if body is not None else ""
            log.command(f"{method} {shown}{payload} (Authorization: Bearer ***)")
        return deployer_request(
            self.url, self.token_env, token, method, path, body=body, params=params, timeout_s=timeout
        )

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

    def _wait_until_serving(self, version: str | None, log: RunLog) -> float:
        """Poll ``GET /status`` until ``version`` runs and is ready; the seconds it took, or ActionFailed."""
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
                return time.monotonic() - start
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            time.sleep(min(self.poll_interval_s, remaining))
        log.evidence["status"] = bounded_json(last)
        log.evidence["status_polls"] = polls
        waited = f"after {self.verify_timeout_s:g} s"
        if last_error is not None:
            raise ActionFailed(f"{waited} the service's status is unknown: {last_error}")
        assert last is not None
        running = last.get("version")
        if version is not None and running != version:
            raise ActionFailed(f"{waited} the service still runs {running} (expected {version})")
        if last.get("deploying"):
            raise ActionFailed(f"{waited} a deploy is still in progress (running {running})")
        raise ActionFailed(f"{waited} {running} runs but is not ready")

    # -- actions -----------------------------------------------------------------------------------------

    def _rollback(self, request: ActionRequest, log: RunLog) -> str:
        target = request.target_version
        body: dict[str, Any] = {
            "by": request.actor,
            "reason": _reason(request),
        }
        if target:
            body["to"] = target
        record = self._deployment(self._call("POST", "/rollback", log, body=body), "/rollback")
        log.evidence["deployment"] = bounded_json(record)
        expected = target or (record.get("version") if isinstance(record.get("version"), str) else None)
        waited = self._wait_until_serving(expected, log)
        log.evidence["verified_after_s"] = round(waited, 3)
        return (
            f"{request.service} rolled back to {expected or 'the previous version'} "
            f"(deployment {record.get('id', '?')}); running and ready after {waited:.1f} s"
        )

    def _restart(self, request: ActionRequest, log: RunLog) -> str:
        record = self._deployment(self._call("POST", "/restart", log, body={"by": request.actor}), "/restart")
        log.evidence["deployment"] = bounded_json(record)
        version = record.get("version") if isinstance(record.get("version"), str) else None
        waited = self._wait_until_serving(version, log)
        log.evidence["verified_after_s"] = round(waited, 3)
        which = f"{request.service} {version}" if version else request.service
        return f"{which} restarted (deployment {record.get('id', '?')}); ready after {waited:.1f} s"

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


def _reason(request: ActionRequest) -> str:
    parts = [f"devops-loop {request.action}"]
    if request.execution_id:
        parts.append(f"execution {request.execution_id}")
    if request.deployment_id:
        parts.append(f"after deployment {request.deployment_id}")
    if request.version:
        parts.append(f"of {request.version}")
    return ", ".join(parts)
