"""The embedded engine: runs the loop in-process and keeps executions in SQLite in Kestra's shape.

``launch`` returns an execution id at once: the run is queued (:mod:`console.storage.queue`) and the
scheduler (:mod:`~console.engines.embedded.scheduler`) hands it to a bounded pool of workers as
**units**: its tasks up to its next wait, pause or end. A step that waits (``collect`` watching a
window, ``verify`` its post-action window) returns when to look again instead of sleeping; the run
keeps the look's progress in its task run and waits in the queue with its wake-up time, holding no
worker. Each step's input comes from the wiring table (:mod:`console.loop.wiring`). When the plan
needs a human, the ``approval`` task and the execution go PAUSED, one approval row is created and
the unit ends; :meth:`EmbeddedEngine.resume` (called by the approval service once a decision is
final) queues it again. After each task the read models are updated in the same transaction
(:mod:`~console.engines.projection`, which the Kestra mirror uses too). Store faults are waited
out, then escalated (the scheduler); an engine that starts, and the scheduler's periodic sweep, take
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
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from console.domain.executions import Execution, LogEntry, State
from console.domain.models import format_time, now_text, parse_time
from console.domain.names import RequesterSource
from console.domain.text import one_line
from console.domain.vocabulary import APPROVAL_TASK, LOOP_TASKS
from console.engines.backend import INCIDENT_FLOW_ID, LOOP_FLOW_ID, BackendError, Health, Page
from console.engines.embedded import recovery
from console.engines.embedded.scheduler import Scheduler, run_priority
from console.engines.projection import Projection
from console.loop import incidents, outcome, scenarios, step_io, steps, wiring
from console.loop.step_io import StepError
from console.settings import Settings
from console.storage import Connection, Store, StoreFault, loads
from console.storage.codec import put_document_in
from console.storage.executions import StoredTaskRun

log = logging.getLogger(__name__)

_ALPHABET = string.ascii_letters + string.digits


def new_id(length: int = 22) -> str:
    """A Kestra-like base62 id."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


ERROR_LINE_LIMIT = 500


def error_line(exc: BaseException) -> str:
    """The exception on one line (``domain.text.one_line``), its type named unless it is one of the
    loop's own errors."""
    text = one_line(exc, ERROR_LINE_LIMIT)
    if isinstance(exc, StepError | BackendError | ValueError):
        return text
    return one_line(f"{type(exc).__name__}: {text}", ERROR_LINE_LIMIT)


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
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.settings = settings
        self.store = store or Store(
            settings.db_path, busy_timeout_ms=int(settings.store_busy_timeout_s * 1000)
        )
        self.projection = Projection(self.store, self.name)
        self.namespace = settings.kestra_namespace or "devops.loop"
        self.synchronous = synchronous
        self.clock = clock
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{new_id(8)}"
        recovery.LIVE_OWNERS.add(self.owner)
        self.scheduler = (
            None
            if synchronous
            else Scheduler(
                self,
                max_workers,
                sweep_s=settings.engine_sweep_s,
                escalate_s=settings.store_fault_escalate_s,
                clock=clock,
            )
        )
        self._read_hooks: list[Callable[[], None]] = []
        self.last_recovery: list[dict[str, Any]] = []
        if recover:
            self.last_recovery = self.recover()
        if self.scheduler is not None:
            self.scheduler.start()

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

    def _deployment_launch(
        self, deployment: dict[str, Any], source: str, labels: dict[str, str] | None
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
        dep = step_io.live_deployment({"deployment": deployment}) if isinstance(deployment, dict) else None
        if dep is None or not dep.get("service") or not dep.get("version"):
            raise BackendError("the deployment needs at least 'service' and 'version'")
        if not dep.get("environment"):
            dep["environment"] = steps.service_environment(str(dep["service"]), self.settings)
        return (
            {"deployment": dep, "source": source},
            {"deployment": dep},
            {**(labels or {}), "source": source},  # the console's own key wins over a caller's
        )

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
        launch, doc, merged = self._deployment_launch(deployment, source, labels)
        return self._create(launch, doc, triggered_by, merged)

    def launch_deployment_in(
        self,
        conn: Connection,
        deployment: dict[str, Any],
        *,
        triggered_by: str,
        source: str,
        labels: dict[str, str] | None = None,
    ) -> str:
        """:meth:`launch_deployment` inside the caller's transaction (the inbound service: the delivery, and
        the run it starts, commit together). The run starts once the caller has committed and
        called :meth:`wake`."""
        launch, doc, merged = self._deployment_launch(deployment, source, labels)
        return self._create_in(conn, launch, doc, triggered_by, merged)

    def _incident_launch(
        self, incident: dict[str, Any], labels: dict[str, str] | None
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
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
        return {"incident": checked, "source": incidents.INCIDENT_SOURCE}, {"deployment": dep}, merged

    def launch_incident(
        self, incident: dict[str, Any], *, triggered_by: str, labels: dict[str, str] | None = None
    ) -> str:
        """Start ``incident-handler`` for a firing alert (:mod:`console.loop.incidents`). The launch
        input is ``{"incident": {...}, "source": "alertmanager"}``; the read model's row is the
        incident's deployment block (the suspect deployment, or the alert itself)."""
        launch, doc, merged = self._incident_launch(incident, labels)
        return self._create(launch, doc, triggered_by, merged, flow_id=INCIDENT_FLOW_ID)

    def launch_incident_in(
        self,
        conn: Connection,
        incident: dict[str, Any],
        *,
        triggered_by: str,
        labels: dict[str, str] | None = None,
    ) -> str:
        """:meth:`launch_incident` inside the caller's transaction (see :meth:`launch_deployment_in`)."""
        launch, doc, merged = self._incident_launch(incident, labels)
        return self._create_in(conn, launch, doc, triggered_by, merged, flow_id=INCIDENT_FLOW_ID)

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
        with self.store.db.write() as conn:
            execution_id = self._create_in(conn, launch_input, doc, triggered_by, labels, flow_id=flow_id)
            # the command line (no scheduler) runs what it launched: taken in the launch's own
            # transaction, so a console running on the same data never takes it in between
            held = self.scheduler is None and self.store.queue.claim_in(
                conn, execution_id, owner=self.owner, now=self.clock()
            )
        if held:
            self._run_held(execution_id)
        else:
            self.submit(execution_id)
        return execution_id

    def _run_held(self, execution_id: str) -> None:
        """Run a run this engine took when it launched it, then follow its waits (:meth:`_drive`)."""
        try:
            self.run_unit(execution_id)
        except StoreFault as fault:
            log.warning("execution %s: %s; queued again", execution_id, fault)
            self.submit(execution_id)
            return
        self._drive(execution_id)

    def _create_in(
        self,
        conn: Connection,
        launch_input: dict[str, Any],
        doc: dict[str, Any],
        triggered_by: str,
        labels: dict[str, str],
        *,
        flow_id: str = LOOP_FLOW_ID,
    ) -> str:
        """The execution, its read-model row, its audit row and its place in the queue (due now)."""
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
        self.store.executions.insert_in(
            conn,
            execution_id=execution_id,
            namespace=self.namespace,
            flow_id=flow_id,
            inputs=inputs,
            labels=labels,
            triggered_by=triggered_by,
            launch=launch_input,
            owner=None,
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
        self.store.audit.record_in(
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
        self._enqueue_in(conn, execution_id, launch_input, labels, due_at=self.clock(), reason="queued")
        return execution_id

    # -- the queue ------------------------------------------------------------------------------------

    def _enqueue_in(
        self,
        conn: Connection,
        execution_id: str,
        launch: dict[str, Any] | None,
        labels: dict[str, str] | None,
        *,
        due_at: float,
        reason: str,
        urgent: bool = False,
    ) -> None:
        if launch is None or labels is None:
            row = self.store.executions.row_in(conn, execution_id) or {}
            launch = loads(row.get("launch"), {}) or {}
            labels = loads(row.get("labels"), {}) or {}
        self.store.queue.enqueue_in(
            conn,
            execution_id,
            due_at=due_at,
            priority=run_priority(launch, urgent=urgent),
            source=caller_of(launch, labels),
            reason=reason,
            now=self.clock(),
        )

    def submit(self, execution_id: str) -> None:
        """Run the execution's unfinished tasks: queue it due now (a run already queued keeps its
        place) and wake the scheduler; a synchronous engine runs it here, through its waits."""
        try:
            with self.store.db.write() as conn:
                if self.store.queue.get_in(conn, execution_id) is None:
                    self._enqueue_in(conn, execution_id, None, None, due_at=self.clock(), reason="queued")
        except StoreFault:
            log.warning("execution %s: could not be queued now; the sweep will", execution_id)
        self.wake(execution_id)

    def wake(self, execution_id: str | None = None) -> None:
        """Something was queued (by this engine, or in a caller's committed transaction): the
        scheduler looks now; a synchronous engine runs ``execution_id`` here."""
        if self.scheduler is not None:
            self.scheduler.wake()
        elif execution_id is not None:
            self._drive(execution_id)

    def _drive(self, execution_id: str) -> None:
        """The synchronous engine (the command line has no scheduler): run one queued run to its
        end or a pause, sleeping through its waits; store faults are waited out, then escalated."""
        faulted: tuple[float, StoreFault] | None = None
        while True:
            entry = self.store.queue.get(execution_id)
            if entry is None:
                return
            time.sleep(max(0.0, entry.due_at - self.clock()))
            try:
                if faulted is not None and self.clock() - faulted[0] >= self.settings.store_fault_escalate_s:
                    self.escalate_fault(execution_id, *faulted)
                    return
                with self.store.db.write() as conn:
                    claimed = self.store.queue.claim_in(
                        conn, execution_id, owner=self.owner, now=max(self.clock(), entry.due_at)
                    )
                if not claimed:
                    return  # another engine took it
                self.run_unit(execution_id)
                faulted = None
            except StoreFault as fault:
                faulted = faulted or (self.clock(), fault)
                log.warning("execution %s: %s; trying again", execution_id, fault)
                time.sleep(1.0)
                with suppress(StoreFault), self.store.db.write() as conn:
                    self.store.queue.requeue_lost_in(
                        conn,
                        execution_id,
                        owner=self.owner,
                        priority=entry.priority,
                        source=entry.source,
                        now=self.clock(),
                    )

    # -- a unit: the run's tasks up to its next wait, pause or end -----------------------------------

    def run_unit(self, execution_id: str) -> None:
        """Run the execution's unfinished tasks until it waits, pauses, fails or succeeds. Store
        faults propagate (the scheduler retries the unit); any other error fails the run."""
        try:
            self._run_tasks(execution_id)
        except _Killed:
            return
        except StoreFault:
            raise
        except Exception as exc:  # never leave an execution RUNNING because of a bug
            log.exception("execution %s: unexpected error", execution_id)
            self.fail(execution_id, f"internal error: {error_line(exc)}")

    def _run_tasks(self, execution_id: str) -> None:
        if not self._claim_running(execution_id):
            return
        launch = self.store.executions.launch_input(execution_id)
        runs = self.store.executions.task_runs_by_task(execution_id)
        outputs: dict[str, dict[str, Any]] = {wiring.EXECUTION: {"id": execution_id}}
        for seq, task_id in enumerate(LOOP_TASKS):
            run = runs.get(task_id)
            if run is not None and run.state == State.SUCCESS:
                outputs[task_id] = self._readable(execution_id, task_id, run.outputs)
                continue
            if run is not None and run.state == State.PAUSED:
                return
            if not self._run_task(execution_id, seq, task_id, run, launch, outputs):
                return
        # every task had already finished (an execution marked RUNNING after its last task): close it
        with self.store.db.write() as conn:
            row = self.store.executions.state_in(conn, execution_id)
            record = runs.get("record")
            if (
                row is not None
                and row.state == State.RUNNING
                and row.owner == self.owner
                and record is not None
            ):
                self._succeed(conn, execution_id, record.outputs)

    def _claim_running(self, execution_id: str) -> bool:
        """Whether this engine runs the execution now: RUNNING and ours, or CREATED and ours, then
        moved to RUNNING (checked again inside the write)."""
        row = self.store.executions.state_in(self.store.db.conn, execution_id)  # a read: the claim holds it
        if row is None or row.state not in (State.CREATED, State.RUNNING) or row.owner != self.owner:
            return False
        if row.state == State.CREATED:
            with self.store.db.write() as conn:
                row = self.store.executions.state_in(conn, execution_id)
                if row is None or row.state != State.CREATED or row.owner != self.owner:
                    return False
                self.store.executions.transition_in(conn, execution_id, State.RUNNING, owner=self.owner)
        return True

    def _run_task(
        self,
        execution_id: str,
        seq: int,
        task_id: str,
        run: StoredTaskRun | None,
        launch: dict[str, Any],
        outputs: dict[str, dict[str, Any]],
    ) -> bool:
        """Run one unfinished task; True when the run goes on to the next one, False when it paused,
        waits for its next look or failed. A finished task's outputs are added to ``outputs``."""
        self._start_task(execution_id, seq, task_id, run)
        if task_id == APPROVAL_TASK:
            return not self._approval(execution_id, outputs)  # _approval says whether it paused
        if run is not None and run.state == State.RUNNING:
            outputs[task_id] = dict(run.outputs or {})  # a look in progress: its watch
        try:
            result = self._call(task_id, execution_id, launch, outputs, run)
        except (_Killed, StoreFault):
            raise
        except Exception as exc:
            if not isinstance(exc, StepError | ValueError):
                log.warning("execution %s task %s failed", execution_id, task_id, exc_info=True)
            self._fail_task(execution_id, task_id, error_line(exc))
            return False
        if result.get("done") is False:
            self._wait(execution_id, task_id, launch, result)
            return False
        outputs[task_id] = self._finish_task(execution_id, task_id, result, outputs)
        return True

    def _readable(self, execution_id: str, task_id: str, stored: dict[str, Any]) -> dict[str, Any]:
        """A finished task's outputs as later steps read them (collect's snapshot document put back
        where its outputs point at it; the approval's ``required: false`` is no approval)."""
        if task_id == "collect":
            return {**stored, "snapshot": self.snapshot_document(execution_id)}
        if task_id == APPROVAL_TASK and stored.get("required") is False:
            return {}
        return dict(stored)

    def _call(
        self,
        task_id: str,
        execution_id: str,
        launch: dict[str, Any],
        outputs: dict[str, dict[str, Any]],
        previous: StoredTaskRun | None,
    ) -> dict[str, Any]:
        s = self.settings
        data = wiring.step_input(task_id, outputs)
        if task_id == "collect":
            return steps.collect({**launch, **data}, s, clock=self.clock)
        if task_id == "execute":
            progress = (previous.outputs or {}).get("progress") if previous is not None else None
            return steps.execute(
                data,
                s,
                progress=progress if isinstance(progress, dict) else None,
                on_progress=self._progress_saver(execution_id, task_id),
            )
        if task_id == "verify":
            return steps.verify(data, s, clock=self.clock)
        if task_id == "decide":
            return steps.decide({**data, **self._history(outputs)}, s)
        step: Callable[[dict[str, Any], Settings], dict[str, Any]] = getattr(steps, task_id)
        return step(data, s)

    def _progress_saver(self, execution_id: str, task_id: str) -> Callable[[dict[str, Any]], None]:
        """Keep execute's progress in its task run's outputs as each action starts and ends, in its own
        transaction, so a crash between two actions leaves a record of the first."""

        def save(progress: dict[str, Any]) -> None:
            with self.store.db.write() as conn:
                self._guard_running(conn, execution_id)
                self.store.executions.save_task_run_outputs_in(
                    conn, execution_id, task_id, {"progress": progress}
                )

        return save

    def _wait(self, execution_id: str, task_id: str, launch: dict[str, Any], result: dict[str, Any]) -> None:
        """A look that is not the last: keep its progress in the task run and queue the run for
        its next look; no worker holds it meanwhile."""
        try:
            due = parse_time(str(result["until"])).timestamp()
        except (KeyError, TypeError, ValueError):
            due = self.clock() + self.settings.live_poll_s
        reason = f"{task_id}: {result.get('waiting_for') or 'waiting'}"
        with self.store.db.write() as conn:
            self._guard_running(conn, execution_id)
            self.store.executions.save_task_run_outputs_in(conn, execution_id, task_id, result)
            self._enqueue_in(
                conn, execution_id, launch, None, due_at=due, reason=reason, urgent=bool(result.get("urgent"))
            )

    def _history(self, outputs: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """For a watched live deployment, its service's revision history and the deployment, which
        ``decide`` takes besides the wiring's inputs, so the plan takes its rollback target from the
        history (Kestra's tasks do not read the console's store: there the approval does it)."""
        collected = outputs.get("collect") or {}
        deployment = (collected.get("snapshot") or {}).get("deployment") or {}
        if not collected.get("verification") or not deployment.get("service"):
            return {}
        return {
            "revisions": self.store.revisions.events(str(deployment["service"])),
            "deployment": deployment,
        }

    def _guard_running(self, conn: Connection, execution_id: str) -> None:
        row = self.store.executions.state_in(conn, execution_id)
        if row is None or row.state != State.RUNNING or row.owner != self.owner:
            raise _Killed

    def _start_task(self, execution_id: str, seq: int, task_id: str, run: StoredTaskRun | None) -> None:
        if run is not None and (run.outputs or {}).get("done") is False:
            return  # the next look of a step that waits: the same task run goes on (the claim beat)
        with self.store.db.write() as conn:
            self._guard_running(conn, execution_id)
            if run is None:
                self.store.executions.insert_task_run_in(
                    conn, task_run_id=new_id(), execution_id=execution_id, seq=seq, task_id=task_id
                )
            else:  # interrupted earlier: run it again (a start is in the task run's history; a
                # second start is worth a line in the log too)
                self.store.executions.transition_task_run_in(
                    conn, execution_id, task_id, State.RESTARTED, State.RUNNING
                )
                self.store.executions.log_in(
                    conn, execution_id, "WARN", f"{task_id} restarted: it was interrupted", task_id=task_id
                )
            self.store.executions.heartbeat_in(conn, execution_id)

    def _finish_task(
        self, execution_id: str, task_id: str, outputs: dict[str, Any], before: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        """The step's outputs stored, the read model projected; returns them as later steps read them."""
        stored = {k: v for k, v in outputs.items() if k not in step_io.Look.KEYS}
        readable = dict(stored)
        with self.store.db.write() as conn:
            self._guard_running(conn, execution_id)
            if task_id == "collect":  # the snapshot is kept once, compressed; the outputs point at it
                snapshot = outputs["snapshot"]
                stored = {
                    **{k: v for k, v in stored.items() if k != "snapshot"},
                    "metrics": len(snapshot["metrics"]),
                    "points": sum(len(points) for points in snapshot["metrics"].values()),
                    "log_lines": len(snapshot["logs"]),
                    "scenario": (snapshot.get("scenario") or {}).get("id"),
                    "snapshot": SNAPSHOT_REF + put_document_in(conn, "snapshot", snapshot),
                }
            self.store.executions.transition_task_run_in(
                conn, execution_id, task_id, State.SUCCESS, outputs=stored
            )
            self.store.executions.heartbeat_in(conn, execution_id)
            self.projection.task_finished(conn, execution_id, task_id, outputs, at=now_text())
            self.store.executions.log_in(
                conn,
                execution_id,
                "INFO",
                task_log_line(task_id, outputs),
                task_id=task_id,
            )
            routing = outputs.get("routing") if task_id == "decide" else None
            if isinstance(routing, dict) and routing.get("escalate"):
                self._escalate(conn, execution_id, routing, before)
            if task_id == "record":
                self._succeed(conn, execution_id, outputs)
        return readable

    def _escalate(
        self, conn: Connection, execution_id: str, routing: dict[str, Any], before: dict[str, dict[str, Any]]
    ) -> None:
        """A HIGH or CRITICAL incident: an ERROR line in the execution's log and an audit row
        (``incident.escalated``), like incident-handler's ``escalate`` task on Kestra."""
        incident = before.get("collect", {}).get("incident") or {}
        summary = (before.get("summarize") or {}).get("decision", {}).get("summary")
        line = incidents.escalation_line(incident, routing, summary)
        self.store.executions.log_in(conn, execution_id, "ERROR", line, task_id="decide")
        self.store.audit.record_in(
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
        self.store.executions.transition_in(
            conn, execution_id, State.SUCCESS, ended=True, outputs=flow_outputs
        )
        self.store.queue.dequeue_in(conn, execution_id)

    def _fail_task(self, execution_id: str, task_id: str, message: str) -> None:
        """A step failed: its task run and the execution end FAILED."""
        with self.store.db.write() as conn:
            row = self.store.executions.state_in(conn, execution_id)
            if row is None or row.state.terminal:
                return
            self.store.executions.transition_task_run_in(conn, execution_id, task_id, State.FAILED)
            self.store.executions.log_in(conn, execution_id, "ERROR", message, task_id=task_id)
            self._fail_in(conn, execution_id)

    def fail(self, execution_id: str, message: str) -> None:
        """End the execution FAILED (any task still RUNNING too) with one log line."""
        with self.store.db.write() as conn:
            row = self.store.executions.state_in(conn, execution_id)
            if row is None or row.state.terminal:
                return
            self.store.executions.end_task_runs_in(
                conn, execution_id, now_in=(State.RUNNING,), state=State.FAILED
            )
            self.store.executions.log_in(conn, execution_id, "ERROR", message)
            self._fail_in(conn, execution_id)

    def _fail_in(self, conn: Connection, execution_id: str) -> None:
        self.store.executions.transition_in(conn, execution_id, State.FAILED, ended=True)
        self.store.queue.dequeue_in(conn, execution_id)
        self.projection.failed(conn, execution_id)
        self.store.approvals.cancel_pending_in(conn, execution_id, now_text())

    def escalate_fault(self, execution_id: str, since: float, fault: StoreFault) -> None:
        """The store refused this run's writes for ``store_fault_escalate_s``: stop waiting and say
        so, honestly (the run FAILED, its deployment escalated with the reason, an audit row that
        the notifications announce). Raises StoreFault when even that cannot be written yet."""
        started = format_time(datetime.fromtimestamp(since, UTC))
        reason = (
            f"the console's store refused writes since {started} ({fault.kind}): "
            "the run stopped before a decision; check the deployment by hand"
        )
        with self.store.db.write() as conn:
            row = self.store.executions.state_in(conn, execution_id)
            if row is None or row.state.terminal or row.state == State.PAUSED:
                return
            self.store.executions.end_task_runs_in(
                conn, execution_id, now_in=(State.RUNNING,), state=State.FAILED
            )
            self.store.executions.log_in(conn, execution_id, "ERROR", reason)
            self._fail_in(conn, execution_id)
            self.projection.escalated(conn, execution_id, reason)

    def _requester_source(self, execution_id: str) -> str:
        """How the requester (the execution's ``triggered_by``) is known: a scenario's deployer, the
        announcement's source (``launch_deployment``), or what the launcher said in the label
        ``requested_by_source``; else a name the launcher typed."""
        row = self.store.executions.row(execution_id) or {}
        launch = loads(row.get("launch"), {}) or {}
        labels = loads(row.get("labels"), {}) or {}
        if launch.get("scenario"):
            return RequesterSource.SCENARIO
        if isinstance(launch.get("source"), str) and launch["source"].strip():
            return launch["source"].strip()[:100]
        label = labels.get(RequesterSource.LABEL)
        return str(label)[:100] if label else RequesterSource.LAUNCHER

    def _approval(self, execution_id: str, outputs: dict[str, dict[str, Any]]) -> bool:
        """Pause for a human when the plan needs one (the run then holds no worker and is not
        queued: a decision resumes it). Returns True when paused."""
        plan = outputs["decide"]["plan"]
        with self.store.db.write() as conn:
            self._guard_running(conn, execution_id)
            if not plan.get("needs_approval"):
                self.store.executions.transition_task_run_in(
                    conn, execution_id, APPROVAL_TASK, State.SUCCESS, outputs={"required": False}
                )
                self.store.executions.log_in(
                    conn,
                    execution_id,
                    "INFO",
                    "no approval needed",
                    task_id=APPROVAL_TASK,
                )
                return False
            row = self.store.executions.state_in(conn, execution_id)
            deployment = self.store.deployments.ref_in(conn, execution_id)
            approval_id, expires = self.store.approvals.request_in(
                conn,
                execution_id=execution_id,
                plan=plan,
                decision=outputs["summarize"]["decision"],
                requested_by=(row.triggered_by if row else None) or "unknown",
                service=deployment[1] if deployment else "unknown",
                deployment_id=deployment[0] if deployment else None,
                timeout_minutes=self.settings.approval_timeout_minutes,
                requested_by_source=self._requester_source(execution_id),
                critical_approvers=self.settings.critical_approvers,
            )
            self.store.executions.transition_task_run_in(
                conn, execution_id, APPROVAL_TASK, State.PAUSED, outputs={"approval_id": approval_id}
            )
            self.store.executions.transition_in(conn, execution_id, State.PAUSED, ended=True)
            self.store.queue.dequeue_in(conn, execution_id)
            self.projection.paused(conn, execution_id)
            names = ", ".join(a["name"] for a in plan.get("approval", []))
            self.store.executions.log_in(
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
        with self.store.db.write() as conn:
            row = self.store.executions.state_in(conn, execution_id)
            if row is None:
                raise BackendError(f"execution {execution_id} not found")
            if row.state != State.PAUSED:
                raise BackendError(f"execution {execution_id} is {row.state.value}, not PAUSED")
            if self.store.executions.task_run_id_in(conn, execution_id, APPROVAL_TASK) is None:
                raise BackendError(f"execution {execution_id} is PAUSED but has no approval task")
            outputs = {
                "approved": bool(approved),
                "comment": comment,
                "approver": approver,
                "resumed": {"by": approver, "on": now_text()},
            }
            if rollback_target:
                outputs["rollback_target"] = rollback_target
            self.store.executions.transition_task_run_in(
                conn, execution_id, APPROVAL_TASK, State.RUNNING, State.SUCCESS, outputs=outputs
            )
            self.store.executions.transition_in(conn, execution_id, State.RUNNING, ended=False)
            self.projection.resumed(conn, execution_id, approved=approved, approver=approver, at=now_text())
            self.store.executions.log_in(
                conn,
                execution_id,
                "INFO",
                f"resumed by {approver}: {'approved' if approved else 'rejected'}"
                + (f" ({comment})" if comment else ""),
                task_id=APPROVAL_TASK,
            )
            # acting on a decision goes before new work
            self._enqueue_in(
                conn, execution_id, None, None, due_at=self.clock(), reason="resumed", urgent=True
            )
        self.wake(execution_id)

    def kill(self, execution_id: str, *, by: str = "console") -> None:
        with self.store.db.write() as conn:
            row = self.store.executions.state_in(conn, execution_id)
            if row is None:
                raise BackendError(f"execution {execution_id} not found")
            if row.state.terminal:
                raise BackendError(f"execution {execution_id} is already {row.state.value}")
            self.store.executions.transition_in(conn, execution_id, State.KILLED, ended=True)
            self.store.queue.dequeue_in(conn, execution_id)  # a killed run that waited never wakes
            self.store.executions.end_task_runs_in(
                conn, execution_id, now_in=(State.RUNNING, State.PAUSED, State.CREATED), state=State.KILLED
            )
            cancelled = self.store.approvals.cancel_pending_in(conn, execution_id, now_text())
            self.projection.killed(conn, execution_id)
            self.store.executions.log_in(
                conn, execution_id, "WARN", "killed" + (" (pending approval cancelled)" if cancelled else "")
            )
            self.store.audit.record_in(
                conn, by, "execution.killed", execution_id, {"approval_cancelled": bool(cancelled)}
            )

    # -- Backend: reads -------------------------------------------------------------------------------

    def health(self) -> Health:
        try:
            count = self.store.executions.count()
            due, waiting = self.store.queue.depth(self.clock())
        except Exception as exc:
            return Health(ok=False, backend=self.name, message=f"database unavailable: {error_line(exc)}")
        details: dict[str, Any] = {
            "database": str(self.store.db.path),
            "executions": count,
            "queue": {"due": due, "waiting": waiting},
        }
        message = "embedded engine, SQLite store ready"
        if self.scheduler is not None:
            stats = self.scheduler.snapshot()
            details["queue"].update(running=stats.running, retrying=stats.retrying)
            if stats.retrying:
                message = (
                    f"embedded engine: {stats.retrying} run(s) waiting out a store fault ({stats.fault})"
                )
        # no count in the sidebar's line: it is cached and a live run's fragment never refreshes it,
        # so "0 executions" showed beside a running loop (the count is in the details)
        return Health(ok=True, backend=self.name, message=message, details=details)

    def search_executions(
        self,
        *,
        states: list[State] | None = None,
        flow_id: str | None = None,
        page: int = 1,
        size: int = 50,
    ) -> Page:
        self._before_read()
        items, total = self.store.executions.search(states=states, flow_id=flow_id, page=page, size=size)
        return Page(items=items, total=total, page=max(1, page), size=size)

    def get_execution(self, execution_id: str) -> Execution:
        self._before_read()
        execution = self.store.executions.get(execution_id)
        if execution is None:
            raise BackendError(f"execution {execution_id} not found")
        return execution

    def execution_logs(self, execution_id: str) -> list[LogEntry]:
        return self.store.executions.logs(execution_id)

    def ui_link(self, execution_id: str) -> str | None:
        return None

    def snapshot_document(self, execution_id: str) -> dict[str, Any] | None:
        """The snapshot an execution analysed (after collect), or None before that."""
        return self.store.deployments.snapshot_for_execution(execution_id)

    def sync_flows(self) -> list[dict[str, Any]]:
        raise BackendError(
            "the embedded engine runs the loop itself; flow sync is for Kestra (set KESTRA_URL)"
        )

    # -- recovery, the sweep and shutdown -------------------------------------------------------------

    def recover(self) -> list[dict[str, Any]]:
        """Take over executions a dead process left running; see :mod:`~console.engines.embedded.recovery`."""
        return recovery.recover(self)

    def sweep(self, busy: set[str]) -> None:
        """The scheduler's periodic sweep: what a dead process left (recovery, not only at start),
        and runs this engine holds that no unit runs (``busy``: those that do), queued again."""
        for item in self.recover():
            log.warning("sweep: execution %s %s", item["execution_id"], item["action"])
        for execution_id in self.store.queue.owned_unqueued(self.owner):
            if execution_id in busy:
                continue
            launch = self.store.executions.launch_input(execution_id)
            with self.store.db.write() as conn:
                if self.store.queue.requeue_lost_in(
                    conn,
                    execution_id,
                    owner=self.owner,
                    priority=run_priority(launch),
                    source=caller_of(launch, {}),
                    now=self.clock(),
                ):
                    self.store.executions.log_in(
                        conn, execution_id, "WARN", "a worker stopped while this ran; queued again"
                    )

    def close(self, wait: bool = True) -> None:
        recovery.LIVE_OWNERS.discard(self.owner)
        if self.scheduler is not None:
            self.scheduler.stop(wait=wait)


def caller_of(launch: dict[str, Any], labels: dict[str, str]) -> str:
    """Whose run this is, for the scheduler's fairness: the caller that delivered it (an API token,
    a signed webhook), else who launched it, else its source."""
    for key in ("received_by", "launched_by"):
        if labels.get(key):
            return str(labels[key])
    return str(launch.get("source") or ("scenario" if launch.get("scenario") else "console"))


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
        line = (
            f"{task_id}: verdict {d['verdict']} ({d['severity']}, confidence {d['confidence']:.2f}) "
            f"by {d.get('analyzer')}"
        )
        if d.get("rule"):
            line += f", rule {d['rule']}: {one_line(d.get('reasoning') or d.get('summary', ''))}"
        return line
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
