"""Executors: the code that carries out an action the loop decided on, and says honestly what happened.

One interface (``base.py``): ``run(ActionRequest) -> ActionResult`` never raises; a result is
``done``, ``failed`` (with the reason) or ``refused`` (with the reason), says whether it was
``simulated`` or a server ``dry_run``, what was run (secrets masked), when, and any evidence.
``result_label(result)`` is the one wording pages and records use: a failed rollback reads
"rollback failed: <reason>", never "rolled back".

This package imports only ``console.settings``, the standard library and installed third-party
packages (``requests``, ``pyyaml``): action names are plain strings.
"""

from __future__ import annotations

from console.executors.base import (
    AUTO,
    DONE,
    FAILED,
    KNOWN_ACTIONS,
    REFUSED,
    ActionRequest,
    ActionResult,
    Executor,
    result_label,
)
from console.executors.config import ExecutorConfigError
from console.executors.demo_service import DemoServiceExecutor
from console.executors.kubectl import KubectlExecutor
from console.executors.simulated import SimulatedExecutor
from console.executors.webhook import WebhookExecutor

__all__ = [
    "AUTO",
    "DONE",
    "FAILED",
    "KNOWN_ACTIONS",
    "REFUSED",
    "ActionRequest",
    "ActionResult",
    "DemoServiceExecutor",
    "Executor",
    "ExecutorConfigError",
    "KubectlExecutor",
    "SimulatedExecutor",
    "WebhookExecutor",
    "result_label",
]
