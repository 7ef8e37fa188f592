"""The simulated executor: for recorded scenarios. It touches nothing; every result is
``simulated=True`` and its detail and label say so."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from console.executors.base import KNOWN_ACTIONS, ActionRequest, BaseExecutor, Handler, RunLog
from console.executors.config import ConfigReader


def _would(request: ActionRequest) -> str:
    service = request.service or "the service"
    params = request.params
    if request.action == "rollback_deployment":
        return f"roll back {service} to {request.target_version or 'the previous version'}"
    if request.action == "scale_deployment":
        replicas = params.get("replicas")
        return f"scale {service}" + (f" to {replicas} replicas" if replicas is not None else "")
    if request.action == "restart_pod":
        return f"restart {service}"
    if request.action == "increase_resources":
        return f"raise the resources of {service}"
    if request.action == "collect_diagnostics":
        return f"collect diagnostics of {service}"
    if request.action == "failover_database":
        return f"fail over the database of {service}"
    return f"notify on-call about {service}, changing nothing"


class SimulatedExecutor(BaseExecutor):
    name = "simulated"
    simulated = True

    @classmethod
    def from_config(cls, config: Mapping[str, Any], where: str = "executor") -> SimulatedExecutor:
        ConfigReader(config, where, cls.name, ()).finish()
        return cls()

    def _handlers(self) -> Mapping[str, Handler]:
        return dict.fromkeys(KNOWN_ACTIONS, self._simulate)

    def _simulate(self, request: ActionRequest, log: RunLog) -> str:
        log.evidence["simulated"] = True
        return f"simulated: would {_would(request)}; nothing was touched"

    def _describe_action(self, request: ActionRequest) -> str:
        return f"simulated: would {_would(request)} (nothing is touched)"
