"""The embedded engine: runs the loop in-process and keeps executions in SQLite in Kestra's shape.

``launch`` returns an execution id at once; a bounded thread pool runs the steps. When the plan
needs a human, the ``approval`` task and the execution go PAUSED, one approval row is created and
the worker stops; :meth:`EmbeddedEngine.resume` (called by the approval service once a decision is
final) continues. After each task the read models are updated in the same transaction
(:mod:`~console.engines.projection`, which the Kestra mirror uses too); an engine that starts takes
over the executions a dead process left running (:mod:`~console.engines.embedded.recovery`).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import string
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from console.domain.executions import Execution, LogEntry, State
from console.domain.names import RequesterSource
from console.domain.vocabulary import APPROVAL_TASK, LOOP_TASKS
from console.engines.backend import INCIDENT_FLOW_ID, LOOP_FLOW_ID, BackendError, Health, Page
from console.engines.embedded import recovery
from console.engines.projection import Projection
from console.loop import incidents, outcome, scenarios, steps
from console.loop.steps import StepError
from console.settings import Settings
from console.storage import Connection, Store, loads, now_text
from console.storage.codec import put_document_in
from console.storage.executions import StoredTaskRun

log = logging.getLogger(__name__)

_ALPHABET = string.ascii_letters + string.digits


def new_id(length: int = 22) -> str:
    """A Kestra-like base62 id."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, StepError | BackendError | ValueError):
        return text[:500]
    return f"{type(exc).__name__}: {text}"[:500]


class _Killed(Exception):
    """The execution stopped being RUNNING under a worker (killed, or taken over)."""


class EmbeddedEngine:
    """In-process implementation of :class:`console.engines.backend.Backend`."""

    name = "embedded"

    def __init__(
        self,
        settings: Settings,
        store: Store | None = None,
        *,
        max_workers: int = 2,
        synchronous: bool = False,
        recover: bool = True,
    ) -> None:
        self.settings = settings
        self.store = store or Store(settings.db_path)
        self.projection = Projection(self.store, self.name)
        self.namespace = settings.kestra_namespace or "devops.loop"
        self.synchronous = synchronous
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{new_id(8)}"
        recovery.LIVE_OWNERS.add(self.owner)
        self._pool = None if synchronous else ThreadPoolExecutor(max_workers, thread_name_prefix="loop")
        self._read_hooks: list[Callable[[], None]] = []
        self.last_recovery: list[dict[str, Any]] = []
        if recover:
            self.last_recovery = self.recover()

    def add_read_hook(self, hook: Callable[[], None]) -> None:
        """Call ``hook`` before every read of executions and read models (the composition root
        hooks the approval service's throttled expiry here, so an overdue approval is expired
        before a page shows its execution)."""
        self._read_hooks.append(hook)

    def _before_read(self) -> None:
        for hook in self._read_hooks:
            hook()

    # -- launching ------------------------------------------------------------------------------------

    def launch(
        self, snapshot_doc: dict[str, Any], *, triggered_by: str, labels: dict[str, str] | None = None
    ) -> str:
        if not isinstance(snapshot_doc, dict) or not isinstance(snapshot_doc.get("deployment"), dict):
            raise BackendError("the snapshot has no deployment")
        return self._create({"snapshot": snapshot_doc}, snapshot_doc, triggered_by, labels or {})

    def launch_scenario(
        self, scenario_id: str, triggered_by: str, labels: dict[str, str] | None = None
    ) -> str:
        """Launch a demo scenario. The request comes from the scenario's deployer ("ci-pipeline" when
        it names none): ``triggered_by`` is the console user who clicked, kept in label launched_by."""
        try:
            doc = steps.load_scenario(scenario_id, self.settings)
        except StepError as exc:
            raise BackendError(str(exc)) from None
        requester = scenarios.requester_of(doc)
        merged = {"launched_by": triggered_by, "scenario": scenario_id, **(labels or {})}
        return self._create({"scenario": scenario_id}, doc, requester, merged)

    def launch_deployment(
        self,
        deployment: dict[str, Any],
        *,
        triggered_by: str,
        source: str,
        labels: dict[str, str] | None = None,
    ) -> str:
        """Start the loop on a real deployment: ``collect`` reads the service's configured sources
        and watches its verification window; ``execute`` acts through its configured executor.
        The launch input is ``{"deployment": {...}, "source": source}``."""
        dep = steps.live_deployment({"deployment": deployment}) if isinstance(deployment, dict) else None
        if dep is None or not dep.get("service") or not dep.get("version"):
            raise BackendError("the deployment needs at least 'service' and 'version'")
        if not dep.get("environment"):
            dep["environment"] = steps.service_environment(str(dep["service"]), self.settings)
        merged = {**(labels or {}), "source": source}  # the console's own key wins over a caller's
        return self._create({"deployment": dep, "source": source}, {"deployment": dep}, triggered_by, merged)

    def launch_incident(
        self, incident: dict[str, Any], *, triggered_by: str, labels: dict[str, str] | None = None
    ) -> str:
        """Start ``incident-handler`` for a firing alert (:mod:`console.loop.incidents`). The launch
        input is ``{"incident": {...}, "source": "alertmanager"}``; the read model's row is the
        incident's deployment block (the suspect deployment, or the alert itself)."""
        try:
            checked = incidents.incident_input({"incident": incident})
        except incidents.IncidentError as exc:
            raise BackendError(str(exc)) from None
        environment = steps.service_environment(checked["service"], self.settings)
        dep = incidents.incident_deployment(checked, environment)
        merged = {
            "source": incidents.INCIDENT_SOURCE,
            "severity": checked["severity"],
            **({"incident": checked["id"]} if checked["id"] else {}),
            **({"alertname": checked["alertname"]} if checked["alertname"] else {}),
            **(labels or {}),
        }
        return self._create(
            {"incident": checked, "source": incidents.INCIDENT_SOURCE},
            {"deployment": dep},
            triggered_by,
            merged,
            flow_id=INCIDENT_FLOW_ID,
        )

    def run_sync(
        self,
        snapshot_doc: dict[str, Any] | None = None,
        *,
        scenario: str | None = None,
        triggered_by: str = "cli",
        labels: dict[str, str] | None = None,
        timeout: float = 300.0,
    ) -> Execution:
        """Launch and wait until the execution is PAUSED or finished."""
        if scenario is not None:
            execution_id = self.launch_scenario(scenario, triggered_by, labels)
        elif snapshot_doc is not None:
            execution_id = self.launch(snapshot_doc, triggered_by=triggered_by, labels=labels)
        else:
            raise BackendError("nothing to run: give a snapshot or a scenario")
        return self.wait(execution_id, timeout=timeout)

    def wait(self, execution_id: str, *, timeout: float = 60.0) -> Execution:
        """Poll until the execution is PAUSED or terminal (or the timeout passes)."""
        deadline = time.monotonic() + timeout
        while True:
            execution = self.get_execution(execution_id)
            if execution.state.terminal or execution.state == State.PAUSED or time.monotonic() > deadline:
                return execution
            time.sleep(0.02)

    def _create(
        self,
        launch_input: dict[str, Any],
        doc: dict[str, Any],
        triggered_by: str,
        labels: dict[str, str],
        *,
        flow_id: str = LOOP_FLOW_ID,
    ) -> str:
        dep = doc.get("deployment") or {}
        scenario = doc.get("scenario") if isinstance(doc.get("scenario"), dict) else None
        execution_id = new_id()
        inputs = {
            "deployment_id": dep.get("id"),
            "service": dep.get("service"),
            "version": dep.get("version"),
            "scenario": (scenario or {}).get("id") or launch_input.get("scenario"),
            "triggered_by": triggered_by,
        }
        incident = launch_input.get("incident")
        if isinstance(incident, dict):  # incident-handler's inputs, as on Kestra
            inputs = {
                "incident_id": incident.get("id"),
                "service": incident.get("service"),
                "severity": incident.get("severity"),
                "starts_at": incident.get("starts_at"),
                "alertname": incident.get("alertname"),
                "deployment_id": dep.get("id"),
                "version": dep.get("version"),
                "triggered_by": triggered_by,
            }
        labels = {str(k): str(v) for k, v in labels.items()}
        with self.store.write() as conn:
            self.store.insert_execution_in(
                conn,
                execution_id=execution_id,
                namespace=self.namespace,
                flow_id=flow_id,
                inputs=inputs,
                labels=labels,
                triggered_by=triggered_by,
                launch=launch_input,
                owner=self.owner,
            )
            self.projection.launched(
                conn,
                execution_id,
                deployment=dep,
                scenario=scenario or ({"id": inputs["scenario"]} if inputs.get("scenario") else None),
                triggered_by=triggered_by,
                source=launch_source(launch_input),
                at=now_text(),
            )
            self.store.audit_in(
                conn,
                labels.get("launched_by") or triggered_by,
                "execution.launched",
                execution_id,
                {
                    "service": inputs["service"],
                    "version": inputs["version"],
                    "scenario": inputs.get("scenario"),
                    **({"incident": inputs.get("incident_id"), "flow": flow_id} if incident else {}),
                },
            )
        self.submit(execution_id)
        return execution_id

    def submit(self, execution_id: str) -> None:
        """Run the execution's unfinished tasks: on the pool, or inline when synchronous."""
        if self._pool is None:
            self._advance(execution_id)
        else:
            self._pool.submit(self._advance, execution_id)

    # -- the worker -----------------------------------------------------------------------------------

    def _advance(self, execution_id: str) -> None:
        """Run the execution's unfinished tasks until it pauses, fails or succeeds."""
        try:
            self._run_tasks(execution_id)
        except _Killed:
            return
        except Exception as exc:  # never leave an execution RUNNING because of a bug
            log.exception("execution %s: unexpected error", execution_id)
            self.fail(execution_id, f"internal error: {one_line(exc)}")

    def _run_tasks(self, execution_id: str) -> None:
        with self.store.write() as conn:
            row = self.store.execution_state_in(conn, execution_id)
            if row is None or row.state not in (State.CREATED, State.RUNNING):
                return
            if row.state == State.CREATED:
                self.store.transition_execution_in(conn, execution_id, State.RUNNING, owner=self.owner)
        ctx: dict[str, Any] = {}
        incident = self.store.launch_input(execution_id).get("incident")
        if isinstance(incident, dict):  # incident-handler: decide routes by the alert's severity
            ctx["incident"] = incident
        runs = self.store.task_runs_by_task(execution_id)
        for seq, task_id in enumerate(LOOP_TASKS):
            run = runs.get(task_id)
            if run is not None and run.state == State.SUCCESS:
                self._remember(execution_id, task_id, run.outputs, ctx)
                continue
            if run is not None and run.state == State.PAUSED:
                return
            self._start_task(execution_id, seq, task_id, run)
            if task_id == APPROVAL_TASK:
                if self._approval(execution_id, ctx):
                    return  # paused
                ctx["approval"] = None
                continue
            try:
                outputs = self._call(task_id, execution_id, ctx, run)
            except _Killed:
                raise
            except Exception as exc:
                if not isinstance(exc, StepError | ValueError):
                    log.warning("execution %s task %s failed", execution_id, task_id, exc_info=True)
                self._fail_task(execution_id, task_id, one_line(exc))
                return
            self._finish_task(execution_id, task_id, outputs, ctx)
        # every task had already finished (an execution marked RUNNING after its last task): close it
        with self.store.write() as conn:
            row = self.store.execution_state_in(conn, execution_id)
            record = runs.get("record")
            if (
                row is not None
                and row.state == State.RUNNING
                and row.owner == self.owner
                and record is not None
            ):
                self._succeed(conn, execution_id, record.outputs)

    def _remember(
        self, execution_id: str, task_id: str, outputs: dict[str, Any], ctx: dict[str, Any]
    ) -> None:
        """Put a finished task's outputs where the next steps look for them."""
        if task_id == "collect":
            ctx["snapshot"] = self.snapshot_document(execution_id)
            ctx["verification"] = outputs.get("verification")
            if isinstance(outputs.get("incident"), dict):
                ctx["incident"] = outputs["incident"]
        elif task_id in ("analyze", "summarize"):
            ctx["decision"] = outputs.get("decision")
        elif task_id == "decide":
            ctx["plan"] = outputs.get("plan")
            ctx["verdict"] = outputs.get("verdict")
            ctx["routing"] = outputs.get("routing")
        elif task_id == APPROVAL_TASK:
            ctx["approval"] = outputs if outputs.get("required", True) else None
        elif task_id == "execute":
            ctx["executed"] = outputs.get("executed", [])
            ctx["deployment_status"] = outputs.get("deployment_status")
        elif task_id == "verify":
            ctx["measured"] = outputs.get("measured")

    # -- live-run support: waiting that a kill interrupts, and progress a re-run can resume --------

    HEARTBEAT_EVERY_S = 30.0

    def _sleeper(self, execution_id: str) -> Callable[[float], None]:
        """``sleep`` for a step that waits (a live verification window): in short slices, raising
        _Killed as soon as the execution stops being this worker's, with a heartbeat now and then so
        another host does not take a long wait for a dead owner."""
        last_beat = [time.monotonic()]

        def sleep(seconds: float) -> None:
            end = time.monotonic() + max(0.0, seconds)
            while True:
                with self.store.write() as conn:
                    self._guard_running(conn, execution_id)
                    if time.monotonic() - last_beat[0] >= self.HEARTBEAT_EVERY_S:
                        self.store.heartbeat_in(conn, execution_id)
                        last_beat[0] = time.monotonic()
                left = end - time.monotonic()
                if left <= 0:
                    return
                time.sleep(min(left, 0.25))

        return sleep

    def _progress_saver(self, execution_id: str, task_id: str) -> Callable[[dict[str, Any]], None]:
        """Keep execute's progress in its task run's outputs as each action starts and ends, in its own
        transaction, so a crash between two actions leaves a record of the first."""

        def save(progress: dict[str, Any]) -> None:
            with self.store.write() as conn:
                self._guard_running(conn, execution_id)
                self.store.save_task_run_outputs_in(conn, execution_id, task_id, {"progress": progress})

        return save

    def _call(
        self,
        task_id: str,
        execution_id: str,
        ctx: dict[str, Any],
        previous: StoredTaskRun | None = None,
    ) -> dict[str, Any]:
        s = self.settings
        if task_id == "collect":
            return steps.collect(self.store.launch_input(execution_id), s, sleep=self._sleeper(execution_id))
        if task_id == "analyze":
            return steps.analyze({"snapshot": ctx["snapshot"]}, s)
        if task_id == "summarize":
            return steps.summarize({"snapshot": ctx["snapshot"], "decision": ctx["decision"]}, s)
        if task_id == "decide":
            routed = {"incident": ctx["incident"]} if ctx.get("incident") else {}
            return steps.decide({"decision": ctx["decision"], **routed, **self._history(ctx)}, s)
        if task_id == "execute":
            progress = (previous.outputs or {}).get("progress") if previous is not None else None
            return steps.execute(
                {
                    "plan": ctx["plan"],
                    "approval": ctx.get("approval"),
                    "verdict": ctx["verdict"],
                    "snapshot": ctx["snapshot"],
                    "verification": ctx.get("verification"),
                    "execution_id": execution_id,
                },
                s,
                progress=progress if isinstance(progress, dict) else None,
                on_progress=self._progress_saver(execution_id, task_id),
                sleep=self._sleeper(execution_id),
            )
        if task_id == "verify":
            return steps.verify(
                {
                    "snapshot": ctx["snapshot"],
                    "verification": ctx.get("verification"),
                    "executed": ctx.get("executed", []),
                },
                s,
                sleep=self._sleeper(execution_id),
            )
        if task_id == "record":
            return steps.record(
                {
                    "execution_id": execution_id,
                    "snapshot": ctx["snapshot"],
                    "decision": ctx["decision"],
                    "plan": ctx["plan"],
                    "approval": ctx.get("approval"),
                    "executed": ctx.get("executed", []),
                    "deployment_status": ctx.get("deployment_status"),
                    "measured": ctx.get("measured"),
                    **(
                        {"incident": ctx["incident"], "routing": ctx.get("routing")}
                        if ctx.get("incident")
                        else {}
                    ),
                },
                s,
            )
        raise StepError(f"unknown task {task_id!r}")

    def _history(self, ctx: dict[str, Any]) -> dict[str, Any]:
        """For a watched live deployment, its service's revision history and the deployment, so the
        plan takes its rollback target from the history (Kestra's tasks do not read the console's
        store: there the approval does it)."""
        deployment = (ctx.get("snapshot") or {}).get("deployment") or {}
        if not ctx.get("verification") or not deployment.get("service"):
            return {}
        return {"revisions": self.store.revision_events(str(deployment["service"])), "deployment": deployment}

    def _guard_running(self, conn: Connection, execution_id: str) -> None:
        row = self.store.execution_state_in(conn, execution_id)
        if row is None or row.state != State.RUNNING or row.owner != self.owner:
            raise _Killed

    def _start_task(self, execution_id: str, seq: int, task_id: str, run: StoredTaskRun | None) -> None:
        with self.store.write() as conn:
            self._guard_running(conn, execution_id)
            if run is None:
                self.store.insert_task_run_in(
                    conn, task_run_id=new_id(), execution_id=execution_id, seq=seq, task_id=task_id
                )
            else:  # interrupted earlier: run it again (a start is in the task run's history; a
                # second start is worth a line in the log too)
                self.store.transition_task_run_in(conn, execution_id, task_id, State.RESTARTED, State.RUNNING)
                self.store.log_in(
                    conn, execution_id, "WARN", f"{task_id} restarted: it was interrupted", task_id=task_id
                )
            self.store.heartbeat_in(conn, execution_id)

    def _finish_task(
        self, execution_id: str, task_id: str, outputs: dict[str, Any], ctx: dict[str, Any]
    ) -> None:
        stored = outputs
        with self.store.write() as conn:
            self._guard_running(conn, execution_id)
            if task_id == "collect":  # the snapshot is kept once, compressed; the outputs point at it
                snapshot = outputs["snapshot"]
                stored = {
                    **{k: v for k, v in outputs.items() if k != "snapshot"},
                    "metrics": len(snapshot["metrics"]),
                    "points": sum(len(points) for points in snapshot["metrics"].values()),
                    "log_lines": len(snapshot["logs"]),
                    "scenario": (snapshot.get("scenario") or {}).get("id"),
                    "snapshot": SNAPSHOT_REF + put_document_in(conn, "snapshot", snapshot),
                }
            self.store.transition_task_run_in(conn, execution_id, task_id, State.SUCCESS, outputs=stored)
            self.store.heartbeat_in(conn, execution_id)
            self.projection.task_finished(conn, execution_id, task_id, outputs, at=now_text())
            self.store.log_in(
                conn,
                execution_id,
                "INFO",
                task_log_line(task_id, outputs),
                task_id=task_id,
            )
            routing = outputs.get("routing") if task_id == "decide" else None
            if isinstance(routing, dict) and routing.get("escalate"):
                self._escalate(conn, execution_id, routing, ctx)
            if task_id == "record":
                self._succeed(conn, execution_id, outputs)
        self._remember(execution_id, task_id, stored, ctx)

    def _escalate(
        self, conn: Connection, execution_id: str, routing: dict[str, Any], ctx: dict[str, Any]
    ) -> None:
        """A HIGH or CRITICAL incident: an ERROR line in the execution's log and an audit row
        (``incident.escalated``), like incident-handler's ``escalate`` task on Kestra."""
        incident = ctx.get("incident") or {}
        summary = (ctx.get("decision") or {}).get("summary")
        line = incidents.escalation_line(incident, routing, summary)
        self.store.log_in(conn, execution_id, "ERROR", line, task_id="decide")
        self.store.audit_in(
            conn,
            "system:loop",
            "incident.escalated",
            execution_id,
            {
                "incident": incident.get("id"),
                "service": incident.get("service"),
                "alertname": incident.get("alertname"),
                "severity": routing.get("severity"),
            },
        )

    def _succeed(self, conn: Connection, execution_id: str, outputs: dict[str, Any]) -> None:
        record = outputs["outcome"]
        flow_outputs = {
            "verdict": record["decision"].get("verdict"),
            "severity": record["decision"].get("severity"),
            "confidence": record["decision"].get("confidence"),
            "approval": record["approval"]["status"],
            "deployment_status": record["outcome"]["deployment_status"],
        }
        self.store.transition_execution_in(
            conn, execution_id, State.SUCCESS, ended=True, outputs=flow_outputs
        )

    def _fail_task(self, execution_id: str, task_id: str, message: str) -> None:
        """A step failed: its task run and the execution end FAILED."""
        with self.store.write() as conn:
            row = self.store.execution_state_in(conn, execution_id)
            if row is None or row.state.terminal:
                return
            self.store.transition_task_run_in(conn, execution_id, task_id, State.FAILED)
            self.store.log_in(conn, execution_id, "ERROR", message, task_id=task_id)
            self._fail_in(conn, execution_id)

    def fail(self, execution_id: str, message: str) -> None:
        """End the execution FAILED (any task still RUNNING too) with one log line."""
        with self.store.write() as conn:
            row = self.store.execution_state_in(conn, execution_id)
            if row is None or row.state.terminal:
                return
            self.store.end_task_runs_in(conn, execution_id, now_in=(State.RUNNING,), state=State.FAILED)
            self.store.log_in(conn, execution_id, "ERROR", message)
            self._fail_in(conn, execution_id)

    def _fail_in(self, conn: Connection, execution_id: str) -> None:
        self.store.transition_execution_in(conn, execution_id, State.FAILED, ended=True)
        self.projection.failed(conn, execution_id)
        self.store.cancel_pending_approvals_in(conn, execution_id, now_text())

    def _requester_source(self, execution_id: str) -> str:
        """How the requester (the execution's ``triggered_by``) is known: a scenario's deployer, the
        announcement's source (``launch_deployment``), or what the launcher said in the label
        ``requested_by_source``; else a name the launcher typed."""
        row = self.store.execution_row(execution_id) or {}
        launch = loads(row.get("launch"), {}) or {}
        labels = loads(row.get("labels"), {}) or {}
        if launch.get("scenario"):
            return RequesterSource.SCENARIO
        if isinstance(launch.get("source"), str) and launch["source"].strip():
            return launch["source"].strip()[:100]
        label = labels.get(RequesterSource.LABEL)
        return str(label)[:100] if label else RequesterSource.LAUNCHER

    def _approval(self, execution_id: str, ctx: dict[str, Any]) -> bool:
        """Pause for a human when the plan needs one. Returns True when paused."""
        plan = ctx["plan"]
        with self.store.write() as conn:
            self._guard_running(conn, execution_id)
            if not plan.get("needs_approval"):
                self.store.transition_task_run_in(
                    conn, execution_id, APPROVAL_TASK, State.SUCCESS, outputs={"required": False}
                )
                self.store.log_in(
                    conn,
                    execution_id,
                    "INFO",
                    "no approval needed",
                    task_id=APPROVAL_TASK,
                )
                return False
            row = self.store.execution_state_in(conn, execution_id)
            deployment = self.store.deployment_ref_in(conn, execution_id)
            approval_id, expires = self.store.request_approval_in(
                conn,
                execution_id=execution_id,
                plan=plan,
                decision=ctx["decision"],
                requested_by=(row.triggered_by if row else None) or "unknown",
                service=deployment[1] if deployment else "unknown",
                deployment_id=deployment[0] if deployment else None,
                timeout_minutes=self.settings.approval_timeout_minutes,
                requested_by_source=self._requester_source(execution_id),
                critical_approvers=self.settings.critical_approvers,
            )
            self.store.transition_task_run_in(
                conn, execution_id, APPROVAL_TASK, State.PAUSED, outputs={"approval_id": approval_id}
            )
            self.store.transition_execution_in(conn, execution_id, State.PAUSED, ended=True)
            self.projection.paused(conn, execution_id)
            names = ", ".join(a["name"] for a in plan.get("approval", []))
            self.store.log_in(
                conn,
                execution_id,
                "INFO",
                f"paused: waiting for approval {approval_id} of {names} "
                f"({plan.get('required_approvals')} approver(s), expires {expires})",
                task_id=APPROVAL_TASK,
            )
        return True

    # -- Backend: control -----------------------------------------------------------------------------

    def resume(
        self,
        execution_id: str,
        *,
        approved: bool,
        comment: str,
        approver: str,
        rollback_target: dict[str, Any] | None = None,
    ) -> None:
        with self.store.write() as conn:
            row = self.store.execution_state_in(conn, execution_id)
            if row is None:
                raise BackendError(f"execution {execution_id} not found")
            if row.state != State.PAUSED:
                raise BackendError(f"execution {execution_id} is {row.state.value}, not PAUSED")
            if self.store.task_run_id_in(conn, execution_id, APPROVAL_TASK) is None:
                raise BackendError(f"execution {execution_id} is PAUSED but has no approval task")
            outputs = {
                "approved": bool(approved),
                "comment": comment,
                "approver": approver,
                "resumed": {"by": approver, "on": now_text()},
            }
            if rollback_target:
                outputs["rollback_target"] = rollback_target
            self.store.transition_task_run_in(
                conn, execution_id, APPROVAL_TASK, State.RUNNING, State.SUCCESS, outputs=outputs
            )
            self.store.transition_execution_in(
                conn, execution_id, State.RUNNING, ended=False, owner=self.owner
            )
            self.projection.resumed(conn, execution_id, approved=approved, approver=approver, at=now_text())
            self.store.log_in(
                conn,
                execution_id,
                "INFO",
                f"resumed by {approver}: {'approved' if approved else 'rejected'}"
                + (f" ({comment})" if comment else ""),
                task_id=APPROVAL_TASK,
            )
        self.submit(execution_id)

    def kill(self, execution_id: str, *, by: str = "console") -> None:
        with self.store.write() as conn:
            row = self.store.execution_state_in(conn, execution_id)
            if row is None:
                raise BackendError(f"execution {execution_id} not found")
            if row.state.terminal:
                raise BackendError(f"execution {execution_id} is already {row.state.value}")
            self.store.transition_execution_in(conn, execution_id, State.KILLED, ended=True)
            self.store.end_task_runs_in(
                conn, execution_id, now_in=(State.RUNNING, State.PAUSED, State.CREATED), state=State.KILLED
            )
            cancelled = self.store.cancel_pending_approvals_in(conn, execution_id, now_text())
            self.projection.killed(conn, execution_id)
            self.store.log_in(
                conn, execution_id, "WARN", "killed" + (" (pending approval cancelled)" if cancelled else "")
            )
            self.store.audit_in(
                conn, by, "execution.killed", execution_id, {"approval_cancelled": bool(cancelled)}
            )

    # -- Backend: reads -------------------------------------------------------------------------------

    def health(self) -> Health:
        try:
            count = self.store.count_executions()
        except Exception as exc:
            return Health(ok=False, backend=self.name, message=f"database unavailable: {one_line(exc)}")
        return Health(
            ok=True,
            backend=self.name,
            # no count in the sidebar's line: it is cached and a live run's fragment never
            # refreshes it, so "0 executions" showed beside a running loop (the count is in details)
            message="embedded engine, SQLite store ready",
            details={"database": str(self.store.path), "executions": count},
        )

    def search_executions(
        self,
        *,
        states: list[State] | None = None,
        flow_id: str | None = None,
        page: int = 1,
        size: int = 50,
    ) -> Page:
        self._before_read()
        items, total = self.store.search_executions(states=states, flow_id=flow_id, page=page, size=size)
        return Page(items=items, total=total, page=max(1, page), size=size)

    def get_execution(self, execution_id: str) -> Execution:
        self._before_read()
        execution = self.store.get_execution(execution_id)
        if execution is None:
            raise BackendError(f"execution {execution_id} not found")
        return execution

    def execution_logs(self, execution_id: str) -> list[LogEntry]:
        return self.store.execution_logs(execution_id)

    def ui_link(self, execution_id: str) -> str | None:
        return None

    def snapshot_document(self, execution_id: str) -> dict[str, Any] | None:
        """The snapshot an execution analysed (after collect), or None before that."""
        return self.store.snapshot_for_execution(execution_id)

    def sync_flows(self) -> list[dict[str, Any]]:
        raise BackendError(
            "the embedded engine runs the loop itself; flow sync is for Kestra (set KESTRA_URL)"
        )

    # -- recovery and shutdown --------------------------------------------------------------------------

    def recover(self) -> list[dict[str, Any]]:
        """Take over executions a dead process left running; see :mod:`~console.engines.embedded.recovery`."""
        return recovery.recover(self)

    def close(self, wait: bool = True) -> None:
        recovery.LIVE_OWNERS.discard(self.owner)
        if self._pool is not None:
            self._pool.shutdown(wait=wait)


SNAPSHOT_REF = "store://documents/"
"""How the collect task's outputs point at the stored snapshot (not inlined: pages show outputs)."""


def launch_source(launch_input: dict[str, Any]) -> str:
    """Who announced the run: a demo scenario, a snapshot given whole, or the source of a deployment."""
    if launch_input.get("scenario") is not None:
        return "scenario"
    if launch_input.get("snapshot") is not None:
        return "snapshot"
    return str(launch_input.get("source") or "deployment")


def task_log_line(task_id: str, outputs: dict[str, Any]) -> str:
    """The log line of a finished step, from its outputs."""
    if task_id == "collect":
        snapshot = outputs["snapshot"]
        dep = snapshot["deployment"]
        line = (
            f"collected {len(snapshot['metrics'])} metrics and {len(snapshot['logs'])} log lines "
            f"for {dep['service']} {dep['version']}"
        )
        watched = outputs.get("verification")
        if isinstance(watched, dict):
            line += (
                f"; verification ended {watched.get('ended')} after {watched.get('elapsed_s')} s "
                f"({watched.get('evaluations')} evaluations): {watched.get('reason')}"
            )
        return line
    if task_id in ("analyze", "summarize"):
        d = outputs["decision"]
        return (
            f"{task_id}: verdict {d['verdict']} ({d['severity']}, confidence {d['confidence']:.2f}) "
            f"by {d.get('analyzer')}"
        )
    if task_id == "decide":
        plan = outputs["plan"]
        line = (
            f"plan: {len(plan.get('auto', []))} automatic action(s), {len(plan.get('approval', []))} "
            f"needing approval ({plan.get('required_approvals', 0)} approver(s))"
        )
        routing = outputs.get("routing")
        if isinstance(routing, dict):
            line += f"; incident routed {routing.get('route')} ({routing.get('reason')})"
        return line
    if task_id == "execute":
        names = (
            "; ".join(
                f"{a['name']} ({a['mode']}): {a.get('label') or a.get('status')}" for a in outputs["executed"]
            )
            or "nothing"
        )
        skipped = ", ".join(a["name"] for a in outputs.get("skipped", []))
        return (
            f"executed{' (simulated)' if outputs.get('simulated') else ''}: {names}"
            + (f"; skipped: {skipped}" if skipped else "")
            + f"; deployment {outputs.get('deployment_status')}"
        )
    if task_id == "verify":
        measured = outputs.get("measured") or {}
        simulated = " (simulated)" if measured.get("simulated") else ""
        # the reason, with its numbers, is in the task's outputs (the measured document)
        return f"measured{simulated}: {measured.get('status')} from {measured.get('source')}"
    if task_id == "record":
        record = outputs["outcome"]
        status = record["outcome"]["deployment_status"]
        simulated = " (simulated)" if record["outcome"].get("simulated") else ""
        return (
            f"outcome recorded{simulated}: {status}, approval {record['approval']['status']}, "
            f"{outcome.outcome_words(record['outcome'])}"
        )
    return f"{task_id} done"
