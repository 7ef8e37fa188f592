"""Choosing an executor from the ``executor`` section of a service's config (README, "Live mode")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from console.domain.config_reader import ConfigReader
from console.executors.base import Executor, ExecutorConfigError
from console.executors.demo_service import DemoServiceExecutor
from console.executors.kubectl import KubectlExecutor
from console.executors.simulated import SimulatedExecutor
from console.executors.webhook import WebhookExecutor

EXECUTOR_TYPES: dict[str, Any] = {
    "simulated": SimulatedExecutor,
    "demo-service": DemoServiceExecutor,
    "kubectl": KubectlExecutor,
    "webhook": WebhookExecutor,
}


def build_executor(executor_config: Mapping[str, Any] | None, *, where: str = "executor") -> Executor:
    """The executor an ``executor`` section describes; ``None`` (a scenario, or no executor configured)
    gives the simulated one.

    Raises :class:`ExecutorConfigError` listing every problem, one line each, prefixed with ``where``
    (e.g. ``executor.type: must be one of simulated, demo-service, kubectl, webhook, got 'kubctl'``).
    """
    if executor_config is None:
        return SimulatedExecutor()
    check = ConfigReader()
    section = check.mapping(executor_config, where)
    if section is None:
        raise ExecutorConfigError(check.problems)
    kind = check.choice(section, "type", where, tuple(EXECUTOR_TYPES), None, required=True)
    if kind is None:
        raise ExecutorConfigError(check.problems)
    return EXECUTOR_TYPES[kind].from_config(section, where)  # type: ignore[no-any-return]
