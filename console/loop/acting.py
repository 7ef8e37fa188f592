"""Acting on the world as it is now, not as it was at decision time.

- **Preconditions** (:func:`superseded_by`, :func:`check_now`): right before an action that changes
  the service, the executor reads what runs (its ``probe``). If the service no longer runs the
  version the decision was about, or another switch happened since the deploy under judgement,
  nothing runs: the decision is *superseded*, with what changed and when. A switch under way is
  waited for a moment, then refused. A state that cannot be read does not stop the action: the call
  itself carries the expected version where the target supports it (compare-and-swap).
- **One attempt, then the truth** (:func:`attempt`): the call, and for an ``unknown`` result
  (timeout, lost connection) a bounded reconciliation through the target's state; the progress an
  engine keeps says which phase an action reached, so a run interrupted mid-call is reconciled
  (:func:`reconcile_interrupted`), never reported failed while the change happened, and never
  called twice on a target without idempotency keys.
- **The rollback target** (:func:`rollback_params`): for a watched live deployment only the
  approver's confirmed target (the approval service checked it against the revision history) or
  the plan's target from the history; never the announced previous version. A scenario keeps its
  recorded target (simulated).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from console.domain.models import now_text, parse_time
from console.executors import (
    REFUSED,
    UNKNOWN,
    ActionRequest,
    ActionResult,
    Executor,
    ProbeError,
    ServiceState,
)

Sleep = Callable[[float], None]

SWITCH_TOLERANCE_S = 1.0
"""A switch this much after the deploy under judgement is another switch (clocks of one target)."""
BUSY_READS = 4
"""How many times a switch under way is read again (backoff 0.5 s, 1 s, 2 s) before refusing."""
RECONCILE_ATTEMPTS = 3
"""Reads (or keyed repeats) right after an unknown result, in the execute step."""


def _clock(text: str | None) -> str:
    try:
        return parse_time(str(text)).strftime("%H:%M:%S UTC")
    except (TypeError, ValueError):
        return "?"


def _after(later: str | None, earlier: str | None, tolerance_s: float = SWITCH_TOLERANCE_S) -> bool:
    try:
        return parse_time(str(later)).timestamp() > parse_time(str(earlier)).timestamp() + tolerance_s
    except (TypeError, ValueError):
        return False


def decided_version(
    deployment: Mapping[str, Any], verification: Mapping[str, Any] | None = None
) -> str | None:
    """The version the decision was about: the deployment's, or for an alert that named none, what
    the target said ran when the loop looked (collect's ``target_state``)."""
    version = deployment.get("version")
    if isinstance(version, str) and version and version != "unknown":
        return version
    state = (verification or {}).get("target_state") if isinstance(verification, Mapping) else None
    found = state.get("version") if isinstance(state, Mapping) else None
    return str(found) if found else None


def superseded_by(
    deployment: Mapping[str, Any], state: ServiceState, version: str | None = None
) -> str | None:
    """Why a decision about ``deployment`` no longer applies to the service in ``state``, or None:
    another version runs, or the same version was switched in again after the deploy under
    judgement (another run or a person acted since)."""
    version = version or decided_version(deployment)
    if not version or not state.version:
        return None
    since = f" since {_clock(state.switched_at)}" if state.switched_at else ""
    if state.version != version:
        return f"{state.version} is running now{since}: this decision was about {version}"
    ours = deployment.get("id")
    if (
        state.deployment_id
        and ours
        and state.deployment_id != ours
        and _after(state.switched_at, deployment.get("deployed_at"))
    ):
        return (
            f"{version} was switched in again{since} ({state.deployment_id}): another deploy or run "
            "has acted since this decision"
        )
    return None


@dataclass(frozen=True)
class Check:
    """What the check right before an action found."""

    state: ServiceState | None
    superseded: str | None = None
    busy: str | None = None
    unreadable: str | None = None
    at: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "state": self.state.to_dict() if self.state else None,
            "superseded": self.superseded,
            "busy": self.busy,
            "unreadable": self.unreadable,
            "at": self.at,
        }


def check_now(
    executor: Executor,
    deployment: Mapping[str, Any],
    *,
    version: str | None = None,
    sleep: Sleep = time.sleep,
    busy_reads: int = BUSY_READS,
) -> Check:
    """Read the service's state and check the decision still applies (see the module docstring)."""
    if not executor.can_probe():
        return Check(
            None, unreadable=f"the {executor.name} executor cannot read the service's state", at=now_text()
        )
    service = str(deployment.get("service") or "")
    state: ServiceState | None = None
    for read in range(max(1, busy_reads)):
        if read:
            sleep(0.5 * 2 ** (read - 1))
        try:
            state = executor.probe(service)
        except ProbeError as exc:
            return Check(None, unreadable=str(exc), at=now_text())
        reason = superseded_by(deployment, state, version)
        if reason is not None:
            return Check(state, superseded=reason, at=now_text())
        if not state.deploying:
            return Check(state, at=now_text())
    return Check(
        state, busy=f"a switch is under way on {service} ({state.text if state else '?'})", at=now_text()
    )


def rollback_params(
    action: Mapping[str, Any],
    approval: Mapping[str, Any] | None,
    *,
    live: bool,
) -> tuple[dict[str, Any], dict[str, Any] | None, str | None]:
    """(params for the request, the target document, why there is no usable target). For a watched
    live deployment the target is the approval's ``rollback_target`` (checked by the approval
    service against the revision history, possibly an approver's pick) or the plan's target from the
    history; a ``to_version`` that came from anywhere else (an announcement) is dropped."""
    params = dict(action.get("params") or {}) if isinstance(action.get("params"), Mapping) else {}
    if not live:
        return params, None, None
    chosen = (approval or {}).get("rollback_target") if isinstance(approval, Mapping) else None
    planned = action.get("target") if isinstance(action.get("target"), Mapping) else None
    target = chosen if isinstance(chosen, Mapping) and chosen.get("version") else planned
    params.pop("to_version", None)
    if not isinstance(target, Mapping) or not target.get("version"):
        why = (
            (target or {}).get("reason")
            if isinstance(target, Mapping)
            else "the target was not checked against the revision history"
        )
        return params, None, f"no verified rollback target: {why}"
    params["to_version"] = str(target["version"])
    return params, dict(target), None


def attempt(
    executor: Executor,
    request: ActionRequest,
    *,
    before: ServiceState | None,
    sleep: Sleep = time.sleep,
    attempts: int = RECONCILE_ATTEMPTS,
) -> ActionResult:
    """The call, then (for an unknown result) a bounded reconciliation through the target."""
    result = executor.run(request)
    if result.status == UNKNOWN:
        result = executor.reconcile(request, result, before=before, attempts=attempts, sleep=sleep)
    return result


def reconcile_interrupted(
    executor: Executor,
    entry: Mapping[str, Any],
    *,
    sleep: Sleep = time.sleep,
    attempts: int = RECONCILE_ATTEMPTS,
) -> ActionResult:
    """An action a previous run of the step started calling and never recorded (the console stopped
    mid-call): ``unknown`` until the target says; reconciled like a timeout (a keyed target gets the
    same call with the same key, any other is only read), never "failed"."""
    name = str((entry.get("request") or {}).get("action") or "?")
    started = str(entry.get("started_at") or "?")
    unknown = ActionResult(
        action=name,
        status=UNKNOWN,
        simulated=bool(executor.simulated),
        executor=executor.name,
        detail=f"interrupted: the console stopped during the call (started {started})",
        started_at=started,
        finished_at=now_text(),
    )
    try:
        request = ActionRequest.from_dict(entry.get("request") or {})
    except ValueError:
        return unknown
    before = ServiceState.from_dict(entry.get("before"))
    return executor.reconcile(request, unknown, before=before, attempts=attempts, sleep=sleep)


def superseded_result(action: str, executor: Executor, reason: str, check: Check) -> ActionResult:
    """The refusal of an action whose decision the service has moved past (nothing was sent)."""
    evidence: dict[str, Any] = {
        "superseded": {"reason": reason, **(check.state.to_dict() if check.state else {})}
    }
    return ActionResult(
        action=action,
        status=REFUSED,
        simulated=bool(executor.simulated),
        executor=executor.name,
        detail=f"superseded: {reason}; nothing was sent",
        started_at=check.at,
        finished_at=now_text(),
        evidence=evidence,
    )


def superseded_reason(result: Mapping[str, Any]) -> str | None:
    """Why a result says its decision was superseded (checked before, or the target's
    compare-and-swap refusing), or None."""
    evidence = result.get("evidence") if isinstance(result.get("evidence"), Mapping) else {}
    found = evidence.get("superseded") if isinstance(evidence, Mapping) else None
    if result.get("status") != REFUSED or not isinstance(found, Mapping):
        return None
    return str(found.get("reason") or result.get("detail") or "superseded")
