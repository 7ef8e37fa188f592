"""Executors: the code that carries out an action the loop decided on, and says honestly what happened.

One interface (``base.py``): ``run(ActionRequest) -> ActionResult`` never raises; a result is
``done``, ``failed`` (with the reason) or ``refused`` (with the reason), says whether it was
``simulated`` or a server ``dry_run``, what was run (secrets masked), when, and any evidence.
``result_label(result)`` is the one wording pages and records use: a failed rollback reads
"rollback failed: <reason>", never "rolled back".

The executor of a service is chosen by the ``executor`` section of the services config
(``build_executor``); no section (a scenario, or nothing configured) means ``simulated``.

Which executor does which action (✓ done when it works, ✗ refused with a reason):

==================== =========== ============================= ============================ ==========
action               simulated   demo-service                  kubectl                      webhook
==================== =========== ============================= ============================ ==========
rollback_deployment  ✓ simulated ✓ POST /rollback + /status    ✓ rollout undo + status      ✓ sent
scale_deployment     ✓ simulated ✗ it runs one instance        ✓ scale --replicas=N         ✓ sent
restart_pod          ✓ simulated ✓ POST /restart + /status     ✓ rollout restart + status   ✓ sent
increase_resources   ✓ simulated ✗ resources fixed per version ✓ set resources + status     ✓ sent
collect_diagnostics  ✓ simulated ✓ GET /status, /deployments   ✓ describe, get events       ✓ sent
failover_database    ✓ simulated ✗ it has no database          ✗ not a Deployment change    ✓ sent
notify_only          ✓ simulated ✓ changes nothing             ✓ changes nothing            ✓ sent
==================== =========== ============================= ============================ ==========

"sent" means the receiver accepted the action (2xx); what it then does is its own business, so the
label reads "rollback sent: webhook answered 202". kubectl in ``dry_run: server`` mode gives ``done``
results with ``dry_run=True`` labelled "rollback (server dry run)". kubectl also refuses an action
whose params are unusable (scale without ``replicas``, resources without valid quantities).

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
from console.executors.build import EXECUTOR_TYPES, build_executor
from console.executors.config import ExecutorConfigError
from console.executors.demo_service import DemoServiceExecutor
from console.executors.kubectl import KubectlExecutor
from console.executors.simulated import SimulatedExecutor
from console.executors.webhook import WebhookExecutor

__all__ = [
    "AUTO",
    "DONE",
    "EXECUTOR_TYPES",
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
    "build_executor",
    "result_label",
]
