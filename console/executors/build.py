"""Choosing an executor from the ``executor`` section of a service's config (README, "Live mode")."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from console.executors.base import Executor
from console.executors.config import ExecutorConfigError
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
    (e.g. ``executor.type: unknown 'kubctl' (one of simulated, demo-service, kubectl, webhook)``).
    """
    if executor_config is None:
        return SimulatedExecutor()
    if not isinstance(executor_config, Mapping):
        raise ExecutorConfigError([f"{where}: must be a mapping, got {type(executor_config).__name__}"])
    kind = executor_config.get("type")
    names = ", ".join(EXECUTOR_TYPES)
    if kind is None or kind == "":
        raise ExecutorConfigError([f"{where}.type: required (one of {names})"])
    if not isinstance(kind, str) or kind.strip() not in EXECUTOR_TYPES:
        raise ExecutorConfigError([f"{where}.type: unknown {kind!r} (one of {names})"])
    return EXECUTOR_TYPES[kind.strip()].from_config(executor_config, where)  # type: ignore[no-any-return]
