"""A small client of the demo service's deployer API for the console's Live section (demo_service/README.md,
"API"): what runs (``GET /status``), what can be deployed (``GET /versions``), the
recent switches (``GET /deployments``), and a deploy (``POST /deploy``) on behalf of a person.

The remediation actions (rollback, restart) stay with :class:`~console.executors.demo_service.
DemoServiceExecutor`; this client is built from the same ``executor`` section of the services file
(its ``url`` and ``token_env``). Every failure is a :class:`DeployerUnavailable` with one line that
names the deployer and never the token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from console.executors.base import ActionFailed, ActionUnknown
from console.executors.demo_service import DemoServiceExecutor, DeployerAnswer, deployer_request
from console.executors.http_support import read_secret

READ_TIMEOUT_S = 3.0
"""Reads feed a page refreshed every few seconds: a deployer slower than this counts as down."""


class DeployerUnavailable(RuntimeError):
    """The deployer could not be asked, or answered with an error; one line, fit to show."""

    def __init__(self, line: str, status: int | None = None) -> None:
        super().__init__(line)
        self.status = status


class DeployerClient:
    """The deployer of one service, as the ``executor`` section of the services file names it."""

    def __init__(self, url: str, *, token_env: str, deploy_timeout_s: float = 60.0) -> None:
        self.url = url.rstrip("/")
        self.token_env = token_env
        self.deploy_timeout_s = deploy_timeout_s
        """A deploy answers once the new instance serves and the old one drained: seconds."""

    @classmethod
    def from_executor_config(cls, config: Mapping[str, Any], where: str = "executor") -> DeployerClient:
        """The client of a ``type: demo-service`` executor section (ExecutorConfigError if unusable)."""
        executor = DemoServiceExecutor.from_config(config, where)
        return cls(executor.url, token_env=executor.token_env, deploy_timeout_s=max(executor.timeout_s, 30.0))

    def __repr__(self) -> str:
        return f"DeployerClient({self.url!r}, token_env={self.token_env!r})"

    def _request(
        self, method: str, path: str, *, body: dict[str, Any] | None = None, timeout_s: float = READ_TIMEOUT_S
    ) -> dict[str, Any]:
        try:
            token = read_secret(self.token_env, "deployer token")
            assert token is not None
            return deployer_request(
                self.url, self.token_env, token, method, path, body=body, timeout_s=timeout_s
            )
        except DeployerAnswer as exc:
            raise DeployerUnavailable(str(exc), exc.status) from None
        except (ActionFailed, ActionUnknown) as exc:
            raise DeployerUnavailable(str(exc)) from None

    def status(self) -> dict[str, Any]:
        """``GET /status``: version, previous_version, behaviour, ready, restarts, deploying..."""
        return self._request("GET", "/status")

    def versions(self) -> list[dict[str, Any]]:
        """``GET /versions``: each ``{"version", "description", "behaviour"}``, as the file lists them."""
        items = self._request("GET", "/versions").get("versions")
        return (
            [v for v in items if isinstance(v, dict) and v.get("version")] if isinstance(items, list) else []
        )

    def deployments(self, limit: int = 20) -> list[dict[str, Any]]:
        """``GET /deployments``: the latest switches (deploy, rollback, restart), newest first."""
        items = self._request("GET", f"/deployments?limit={int(limit)}").get("deployments")
        return [d for d in items if isinstance(d, dict)] if isinstance(items, list) else []

    def deploy(self, version: str, by: str, reason: str | None = None) -> dict[str, Any]:
        """``POST /deploy`` as ``by``; the deployer's record once the new version serves."""
        body: dict[str, Any] = {"version": version, "by": by}
        if reason:
            body["reason"] = reason
        record = self._request("POST", "/deploy", body=body, timeout_s=self.deploy_timeout_s).get(
            "deployment"
        )
        if not isinstance(record, dict) or not record.get("id"):
            raise DeployerUnavailable("deployer answered POST /deploy without a deployment record")
        return record
