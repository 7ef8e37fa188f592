"""Crash recovery of the embedded engine, run when an engine starts and by its scheduler's periodic
sweep (so a run a dead process left is taken over while a console runs, not only at its next start).

An execution left CREATED/RUNNING, not queued, by a process that no longer exists is **re-run from
its first unfinished task** (queued again, due now). A queued run is not an orphan: it waits on
purpose, held by nobody, and the scheduler takes it when due (after a restart too). Finished tasks
keep their stored outputs and are not run again; a look of a watch is taken again where it was.
Re-running an interrupted ``execute`` is safe because it keeps its progress per action
(``console/loop/steps.py``): an action with a recorded result is not run again, one interrupted
before its call runs now, and one interrupted during its call is *reconciled* through the service's
state (a target that keeps idempotency keys gets the same call with the same key; any other is only
read), never reported failed while the change may have happened, never called twice. The history
gets RESTARTED → RUNNING and the log says "interrupted: the console stopped while this ran". An
execution that has already been restarted ``MAX_RESTARTS`` times is marked FAILED instead (so a step
that kills the process cannot loop forever). PAUSED executions and their pending approvals are left
untouched: what happens to approvals at a restart is the approval service's
(:meth:`console.access.approvals.ApprovalService.recover`).

The engine is given as an argument (:class:`Recoverable`), so this module does not import it.
"""

from __future__ import annotations

import os
import socket
from datetime import UTC, datetime
from typing import Any, Protocol

from console.domain.executions import State
from console.domain.models import parse_time
from console.storage import Store

MAX_RESTARTS = 3
STALE_AFTER_S = 600.0
"""A RUNNING execution whose owner lives on another host is orphaned after this long without news."""
INTERRUPTED = "interrupted: the console stopped while this ran"
LIVE_OWNERS: set[str] = set()
"""Owner tokens of the engines alive in this process (not closed)."""


class Recoverable(Protocol):
    """What recovery needs of an engine."""

    owner: str
    store: Store

    def submit(self, execution_id: str) -> None:
        """Run the execution's unfinished tasks (in the background or inline)."""
        ...

    def fail(self, execution_id: str, message: str) -> None:
        """End the execution FAILED with one log line."""
        ...


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def orphaned(owner: str | None, heartbeat: str | None, *, me: str) -> bool:
    """Whether an execution owned by ``owner`` (last heard of at ``heartbeat``) has no live owner;
    ``me`` is the owner token of the engine asking."""
    if owner == me:
        return False
    if owner:
        host, _, rest = owner.partition(":")
        pid_text = rest.partition(":")[0]
        if host == socket.gethostname() and pid_text.isdigit():
            if int(pid_text) == os.getpid():
                # this pid: a live engine of this process, or a previous process that had the
                # same pid (a restarted container's PID 1)
                return owner not in LIVE_OWNERS
            return not pid_alive(int(pid_text))
    if not heartbeat:
        return True
    return (datetime.now(UTC) - parse_time(heartbeat)).total_seconds() > STALE_AFTER_S


def recover(engine: Recoverable) -> list[dict[str, Any]]:
    """Take over executions whose process died; see the module docstring. Returns what was done."""
    store = engine.store
    report: list[dict[str, Any]] = []
    for candidate in store.executions.orphan_candidates():
        if not orphaned(candidate.owner, candidate.heartbeat_at, me=engine.owner):
            continue
        with store.db.write() as conn:
            if not store.executions.claim_in(conn, candidate.id, owner=engine.owner, was=candidate):
                continue
            where = store.executions.first_unfinished_task_in(conn, candidate.id) or "the start"
            if candidate.restarts >= MAX_RESTARTS:
                action = "failed"
                store.executions.log_in(
                    conn, candidate.id, "ERROR", f"{INTERRUPTED}; gave up after {candidate.restarts} restarts"
                )
            else:
                action = f"resumed from {where}"
                store.executions.transition_in(conn, candidate.id, State.RESTARTED, State.RUNNING)
                store.executions.log_in(conn, candidate.id, "WARN", f"{INTERRUPTED}; resuming from {where}")
            store.audit.record_in(
                conn, "system:recovery", "execution.recovered", candidate.id, {"action": action}
            )
        if action == "failed":
            engine.fail(candidate.id, f"{INTERRUPTED} (too many restarts)")
        else:
            engine.submit(candidate.id)
        report.append({"execution_id": candidate.id, "was": candidate.state.value, "action": action})
    return report
