"""Executors: the code that carries out an action the loop decided on, reads what the service runs
now, and says honestly what happened.

One interface (``base.py``): ``run(ActionRequest) -> ActionResult`` never raises; a result is
``done``, ``failed``, ``refused`` or ``unknown`` (a timeout or a lost connection after the call was
sent: it may have acted), says whether it was ``simulated`` or a server ``dry_run``, what was run
(secrets masked), when, and any evidence. ``probe(service) -> ServiceState`` reads what runs now
(the version, ready, crash restarts, a switch under way, which switch put it there): the loop checks
its preconditions with it right before an action and reconciles an ``unknown`` result with it
(``reconcile``: bounded retries with backoff; a target that keeps idempotency keys gets the same call
again, so it never acts twice). ``result_label(result)`` is the one wording pages and records use:
a failed rollback reads "rollback failed: <reason>", never "rolled back".

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

What each reads as the service's state (``probe``), and how a changing call is guarded:

- demo-service: ``GET /status``; the call carries ``expected_version`` (compare-and-swap, 409 on a
  mismatch) and an ``Idempotency-Key`` (the deployer acts once per key).
- kubectl: ``kubectl get deployment/<name> -o json`` (the container image's tag, the revision,
  ready replicas) and its pods' restart counts; ``rollout undo`` takes no expected revision, so the
  check right before the call narrows the race, it cannot close it.
- webhook: ``GET <state_url>`` when configured (README, "Webhook executor"); a 2xx for an action
  that changes the service is ``done`` only once the state shows the change, else ``unknown``.

kubectl in ``dry_run: server`` mode gives ``done`` results with ``dry_run=True`` labelled "rollback
(server dry run)". kubectl also refuses an action whose params are unusable (scale without
``replicas``, resources without valid quantities).

Action names and their words come from :mod:`console.domain.actions` (the layers in pyproject.toml
put ``executors`` above ``domain``).
"""

from __future__ import annotations

from console.executors.base import (
    AUTO,
    DONE,
    FAILED,
    REFUSED,
    UNKNOWN,
    ActionRequest,
    ActionResult,
    Executor,
    ExecutorConfigError,
    ProbeError,
    ServiceState,
    effect_seen,
    result_label,
)
from console.executors.build import EXECUTOR_TYPES, build_executor
from console.executors.demo_service import DemoServiceExecutor
from console.executors.kubectl import KubectlExecutor
from console.executors.simulated import SimulatedExecutor
from console.executors.webhook import WebhookExecutor

__all__ = [
    "AUTO",
    "DONE",
    "EXECUTOR_TYPES",
    "FAILED",
    "REFUSED",
    "UNKNOWN",
    "ActionRequest",
    "ActionResult",
    "DemoServiceExecutor",
    "Executor",
    "ExecutorConfigError",
    "KubectlExecutor",
    "ProbeError",
    "ServiceState",
    "SimulatedExecutor",
    "WebhookExecutor",
    "build_executor",
    "effect_seen",
    "result_label",
]
