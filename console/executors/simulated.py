"""The simulated executor: for recorded scenarios. It touches nothing; every result is
``simulated=True`` and its detail and label say so."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from console.domain.actions import (
    ACTION_NAMES,
    COLLECT_DIAGNOSTICS,
    FAILOVER_DATABASE,
    INCREASE_RESOURCES,
    RESTART,
    ROLLBACK,
    SCALE,
)
from console.domain.config_reader import ConfigReader
from console.executors.base import ActionRequest, BaseExecutor, ExecutorConfigError, Handler, RunLog


def _would(request: ActionRequest) -> str:
    service = request.service or "the service"
    params = request.params
    if request.action == ROLLBACK:
        return f"roll back {service} to {request.target_version or 'the previous version'}"
    if request.action == SCALE:
        replicas = params.get("replicas")
        return f"scale {service}" + (f" to {replicas} replicas" if replicas is not None else "")
    if request.action == RESTART:
        return f"restart {service}"
    if request.action == INCREASE_RESOURCES:
        return f"raise the resources of {service}"
    if request.action == COLLECT_DIAGNOSTICS:
        return f"collect diagnostics of {service}"
    if request.action == FAILOVER_DATABASE:
        return f"fail over the database of {service}"
    return f"notify on-call about {service}, changing nothing"


class SimulatedExecutor(BaseExecutor):
    name = "simulated"
    simulated = True

    @classmethod
    def from_config(cls, config: Mapping[str, Any], where: str = "executor") -> SimulatedExecutor:
        check = ConfigReader()
        check.keys(config, where, ("type",), kind=cls.name)
        if check.problems:
            raise ExecutorConfigError(check.problems)
        return cls()

    def _handlers(self) -> Mapping[str, Handler]:
        return dict.fromkeys(ACTION_NAMES, self._simulate)

    def _simulate(self, request: ActionRequest, log: RunLog) -> str:
        log.evidence["simulated"] = True
        return f"simulated: would {_would(request)}; nothing was touched"

    def _describe_action(self, request: ActionRequest) -> str:
        return f"simulated: would {_would(request)} (nothing is touched)"
