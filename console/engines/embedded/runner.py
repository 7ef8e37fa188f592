"""The embedded engine: runs the loop in-process and keeps executions in SQLite in Kestra's shape.

``launch`` returns an execution id at once; a bounded thread pool runs the steps. When the plan
needs a human, the ``approval`` task and the execution go PAUSED, one approval row is created and
the worker stops; :meth:`EmbeddedEngine.resume` (called by :mod:`console.access.approvals`) continues.

Crash recovery (:meth:`EmbeddedEngine.recover`, run when an engine starts): an execution left
CREATED/RUNNING by a process that no longer exists is **re-run from its first unfinished task**.
Finished tasks keep their stored outputs and are not run again; the steps are deterministic and the
executor only simulates, so re-running the interrupted task is safe. The history gets RESTARTED →
RUNNING and the log says "interrupted: the console stopped while this ran". An execution that has
already been restarted ``MAX_RESTARTS`` times is marked FAILED instead (so a step that kills the
process cannot loop forever). PAUSED executions and their pending approvals are left untouched.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import sqlite3
import string
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from console.domain.executions import Execution, LogEntry, State
from console.domain.models import parse_time
from console.domain.vocabulary import LOOP_TASKS, TIMEOUT_ACTOR, DeploymentStatus
from console.engines.backend import LOOP_FLOW_ID, BackendError, Health, Page
from console.loop import steps
from console.loop.steps import StepError
from console.settings import Settings
from console.storage.store import Store, dumps, loads, now_text

log = logging.getLogger(__name__)

MAX_RESTARTS = 3
STALE_AFTER_S = 600.0
"""A RUNNING execution whose owner lives on another host is orphaned after this long without news."""
INTERRUPTED = "interrupted: the console stopped while this ran"
_ALPHABET = string.ascii_letters + string.digits
_LIVE_OWNERS: set[str] = set()
"""Owner tokens of the engines alive in this process (not closed)."""


def new_id(length: int = 22) -> str:
    """A Kestra-like base62 id."""
    return "".join(secrets.choice(_ALPHABET) for _ in range(length))


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    if isinstance(exc, StepError | BackendError | ValueError):
        return text[:500]
    return f"{type(exc).__name__}: {text}"[:500]


def _history(text: str, state: State) -> str:
    items = loads(text, [])
    items.append({"state": state.value, "date": now_text()})
    return dumps(items)


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
        expire_every_s: float = 2.0,
        expiry_timer_s: float | None = 15.0,
    ) -> None:
        self.settings = settings
        self.store = store or Store(settings.db_path)
        self.namespace = settings.kestra_namespace or "devops.loop"
        self.synchronous = synchronous
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{new_id(8)}"
        _LIVE_OWNERS.add(self.owner)
        self._pool = None if synchronous else ThreadPoolExecutor(max_workers, thread_name_prefix="loop")
        self._expire_every_s = expire_every_s
        self._last_expiry = 0.0
        self._expiry_lock = threading.Lock()
        self.last_recovery: list[dict[str, Any]] = []
        self._stop = threading.Event()
        self._timer: threading.Thread | None = None
        if recover:
            self.last_recovery = self.recover()
        if expiry_timer_s and not synchronous:
            self._timer = threading.Thread(
                target=self._expiry_loop, args=(expiry_timer_s,), name="approval-expiry", daemon=True
            )
            self._timer.start()

    def _expiry_loop(self, interval: float) -> None:
        """Expire overdue approvals even when no page is open."""
        while not self._stop.wait(interval):
            self.maybe_expire()

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
        requester = (doc.get("deployment") or {}).get("deployed_by") or "ci-pipeline"
        merged = {"launched_by": triggered_by, "scenario": scenario_id, **(labels or {})}
        return self._create({"scenario": scenario_id}, doc, requester, merged)

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
        self, launch_input: dict[str, Any], doc: dict[str, Any], triggered_by: str, labels: dict[str, str]
    ) -> str:
        dep = doc.get("deployment") or {}
        scenario = doc.get("scenario") if isinstance(doc.get("scenario"), dict) else None
        execution_id = new_id()
        now = now_text()
        inputs = {
            "deployment_id": dep.get("id"),
            "service": dep.get("service"),
            "version": dep.get("version"),
            "scenario": (scenario or {}).get("id") or launch_input.get("scenario"),
            "triggered_by": triggered_by,
        }
        labels = {str(k): str(v) for k, v in labels.items()}
        with self.store.write() as conn:
            conn.execute(
                "INSERT INTO executions (id, namespace, flow_id, state, start_date, updated_at, "
                "inputs, labels, "
                "histories, triggered_by, launch, owner, heartbeat_at) "
                "VALUES (?, ?, ?, 'CREATED', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    execution_id,
                    self.namespace,
                    LOOP_FLOW_ID,
                    now,
                    now,
                    dumps(inputs),
                    dumps(labels),
                    dumps([{"state": "CREATED", "date": now}]),
                    triggered_by,
                    dumps(launch_input),
                    self.owner,
                    now,
                ),
            )
            conn.execute(
                "INSERT INTO deployments (id, ref, service, version, previous_version, environment, "
                "deployed_at, "
                "deployed_by, execution_id, scenario, status, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    f"{dep.get('id') or 'deployment'}-{execution_id[:8]}",
                    str(dep.get("id") or ""),
                    str(dep.get("service") or "unknown"),
                    str(dep.get("version") or "unknown"),
                    dep.get("previous_version"),
                    dep.get("environment") or "production",
                    dep.get("deployed_at") or now,
                    dep.get("deployed_by") or triggered_by,
                    execution_id,
                    inputs["scenario"],
                    DeploymentStatus.ANALYZING,
                    now,
                    now,
                ),
            )
            self.store.audit_in(
                conn,
                labels.get("launched_by") or triggered_by,
                "execution.launched",
                execution_id,
                {"service": inputs["service"], "version": inputs["version"], "scenario": inputs["scenario"]},
            )
        self._submit(execution_id)
        return execution_id

    def _submit(self, execution_id: str) -> None:
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
            self._fail(execution_id, None, f"internal error: {one_line(exc)}")

    def _run_tasks(self, execution_id: str) -> None:
        with self.store.write() as conn:
            row = _state_row(conn, execution_id)
            if row is None or row["state"] not in ("CREATED", "RUNNING"):
                return
            if row["state"] == "CREATED":
                conn.execute(
                    "UPDATE executions SET state = 'RUNNING', histories = ?, updated_at = ?, owner = "
                    "? WHERE id = ?",
                    (_history(row["histories"], State.RUNNING), now_text(), self.owner, execution_id),
                )
        ctx: dict[str, Any] = {}
        runs = {
            r["task_id"]: r
            for r in self.store.conn.execute(
                "SELECT id, task_id, state, outputs FROM task_runs WHERE execution_id = ?", (execution_id,)
            )
        }
        for seq, task_id in enumerate(LOOP_TASKS):
            run = runs.get(task_id)
            if run is not None and run["state"] == "SUCCESS":
                self._remember(execution_id, task_id, loads(run["outputs"], {}), ctx)
                continue
            if run is not None and run["state"] == "PAUSED":
                return
            task_run_id = self._start_task(execution_id, seq, task_id, run)
            if task_id == "approval":
                if self._approval(execution_id, task_run_id, ctx):
                    return  # paused
                ctx["approval"] = None
                continue
            try:
                outputs = self._call(task_id, execution_id, ctx)
            except _Killed:
                raise
            except Exception as exc:
                if not isinstance(exc, StepError | ValueError):
                    log.warning("execution %s task %s failed", execution_id, task_id, exc_info=True)
                self._fail(execution_id, (task_run_id, task_id), one_line(exc))
                return
            self._finish_task(execution_id, task_run_id, task_id, outputs, ctx)
        # every task had already finished (an execution marked RUNNING after its last task): close it
        with self.store.write() as conn:
            row = conn.execute("SELECT state, owner FROM executions WHERE id = ?", (execution_id,)).fetchone()
            record = runs.get("record")
            if row["state"] == "RUNNING" and row["owner"] == self.owner and record is not None:
                self._succeed(conn, execution_id, loads(record["outputs"], {}))

    def _remember(
        self, execution_id: str, task_id: str, outputs: dict[str, Any], ctx: dict[str, Any]
    ) -> None:
        """Put a finished task's outputs where the next steps look for them."""
        if task_id == "collect":
            ctx["snapshot"] = self.snapshot_document(execution_id)
        elif task_id in ("analyze", "summarize"):
            ctx["decision"] = outputs.get("decision")
        elif task_id == "decide":
            ctx["plan"] = outputs.get("plan")
            ctx["verdict"] = outputs.get("verdict")
        elif task_id == "approval":
            ctx["approval"] = outputs if outputs.get("required", True) else None
        elif task_id == "execute":
            ctx["executed"] = outputs.get("executed", [])
            ctx["deployment_status"] = outputs.get("deployment_status")

    def _call(self, task_id: str, execution_id: str, ctx: dict[str, Any]) -> dict[str, Any]:
        s = self.settings
        if task_id == "collect":
            row = self.store.conn.execute(
                "SELECT launch FROM executions WHERE id = ?", (execution_id,)
            ).fetchone()
            return steps.collect(loads(row["launch"], {}), s)
        if task_id == "analyze":
            return steps.analyze({"snapshot": ctx["snapshot"]}, s)
        if task_id == "summarize":
            return steps.summarize({"snapshot": ctx["snapshot"], "decision": ctx["decision"]}, s)
        if task_id == "decide":
            return steps.decide({"decision": ctx["decision"]}, s)
        if task_id == "execute":
            return steps.execute(
                {"plan": ctx["plan"], "approval": ctx.get("approval"), "verdict": ctx["verdict"]}, s
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
                },
                s,
            )
        raise StepError(f"unknown task {task_id!r}")

    def _guard_running(self, conn: Any, execution_id: str) -> None:
        row = conn.execute("SELECT state, owner FROM executions WHERE id = ?", (execution_id,)).fetchone()
        if row is None or row["state"] != "RUNNING" or row["owner"] != self.owner:
            raise _Killed

    def _start_task(self, execution_id: str, seq: int, task_id: str, run: Any) -> str:
        now = now_text()
        with self.store.write() as conn:
            self._guard_running(conn, execution_id)
            if run is None:
                task_run_id = new_id()
                histories = dumps([{"state": "CREATED", "date": now}, {"state": "RUNNING", "date": now}])
                conn.execute(
                    "INSERT INTO task_runs (id, execution_id, seq, task_id, state, histories) "
                    "VALUES (?, ?, ?, ?, 'RUNNING', ?)",
                    (task_run_id, execution_id, seq, task_id, histories),
                )
            else:  # interrupted earlier: run it again
                task_run_id = run["id"]
                old = conn.execute("SELECT histories FROM task_runs WHERE id = ?", (task_run_id,)).fetchone()
                histories = _history(_history(old["histories"], State.RESTARTED), State.RUNNING)
                conn.execute(
                    "UPDATE task_runs SET state = 'RUNNING', histories = ? WHERE id = ?",
                    (histories, task_run_id),
                )
            conn.execute(
                "UPDATE executions SET heartbeat_at = ?, updated_at = ? WHERE id = ?",
                (now, now, execution_id),
            )
            self.store.log_in(
                conn, execution_id, "INFO", f"{task_id} started", task_id=task_id, task_run_id=task_run_id
            )
        return task_run_id

    def _finish_task(
        self, execution_id: str, task_run_id: str, task_id: str, outputs: dict[str, Any], ctx: dict[str, Any]
    ) -> None:
        stored = outputs
        if task_id == "collect":
            snapshot = outputs["snapshot"]
            dep = snapshot["deployment"]
            stored = {
                "deployment": dep,
                "metrics": {name: len(points) for name, points in snapshot["metrics"].items()},
                "log_lines": len(snapshot["logs"]),
                "scenario": snapshot.get("scenario"),
                "snapshot": f"store://executions/{execution_id}/snapshot",
            }
        now = now_text()
        with self.store.write() as conn:
            self._guard_running(conn, execution_id)
            old = conn.execute("SELECT histories FROM task_runs WHERE id = ?", (task_run_id,)).fetchone()
            conn.execute(
                "UPDATE task_runs SET state = 'SUCCESS', histories = ?, outputs = ? WHERE id = ?",
                (_history(old["histories"], State.SUCCESS), dumps(stored), task_run_id),
            )
            conn.execute(
                "UPDATE executions SET heartbeat_at = ?, updated_at = ? WHERE id = ?",
                (now, now, execution_id),
            )
            if task_id == "collect":  # the Metrics page reads series per service from here
                points = {
                    name: [(_epoch(ts), value) for ts, value in series]
                    for name, series in outputs["snapshot"]["metrics"].items()
                }
                deployment_id = self._deployment_id(execution_id)
                self.store.add_metric_points_in(conn, dep["service"], deployment_id, points)
            message = self._side_effects(conn, execution_id, task_id, outputs)
            self.store.log_in(conn, execution_id, "INFO", message, task_id=task_id, task_run_id=task_run_id)
            if task_id == "record":
                self._succeed(conn, execution_id, outputs)
        self._remember(execution_id, task_id, stored, ctx)

    def _deployment_id(self, execution_id: str) -> str | None:
        row = self.store.conn.execute(
            "SELECT id FROM deployments WHERE execution_id = ?", (execution_id,)
        ).fetchone()
        return row[0] if row else None

    def _side_effects(self, conn: Any, execution_id: str, task_id: str, outputs: dict[str, Any]) -> str:
        """Keep the read models (deployments, artifacts) in step with a finished task; return its log line."""
        now = now_text()
        if task_id == "collect":
            snapshot = outputs["snapshot"]
            dep = snapshot["deployment"]
            conn.execute(
                "INSERT OR REPLACE INTO artifacts (execution_id, name, body) VALUES (?, 'snapshot', ?)",
                (execution_id, dumps(snapshot)),
            )
            conn.execute(
                "UPDATE deployments SET deployed_at = ?, updated_at = ? WHERE execution_id = ?",
                (dep["deployed_at"], now, execution_id),
            )
            return (
                f"collected {len(snapshot['metrics'])} metrics and {len(snapshot['logs'])} log lines "
                f"for {dep['service']} {dep['version']}"
            )
        if task_id in ("analyze", "summarize"):
            d = outputs["decision"]
            conn.execute(
                "UPDATE deployments SET verdict = ?, severity = ?, confidence = ?, analyzer = ?, "
                "summary = ?, "
                "updated_at = ? WHERE execution_id = ?",
                (
                    d["verdict"],
                    d["severity"],
                    d["confidence"],
                    d.get("analyzer"),
                    d.get("summary"),
                    now,
                    execution_id,
                ),
            )
            return (
                f"{task_id}: verdict {d['verdict']} ({d['severity']}, confidence {d['confidence']:.2f}) "
                f"by {d.get('analyzer')}"
            )
        if task_id == "decide":
            plan = outputs["plan"]
            if not plan.get("needs_approval"):
                conn.execute(
                    "UPDATE deployments SET approval = ?, decided_at = ?, updated_at = ? WHERE "
                    "execution_id = ?",
                    ("auto" if plan.get("auto") else "not_required", now, now, execution_id),
                )
            return (
                f"plan: {len(plan.get('auto', []))} automatic action(s), {len(plan.get('approval', []))} "
                f"needing approval ({plan.get('required_approvals', 0)} approver(s))"
            )
        if task_id == "execute":
            conn.execute(
                "UPDATE deployments SET status = ?, updated_at = ? WHERE execution_id = ?",
                (outputs["deployment_status"], now, execution_id),
            )
            names = ", ".join(f"{a['name']} ({a['mode']})" for a in outputs["executed"]) or "nothing"
            skipped = ", ".join(a["name"] for a in outputs.get("skipped", []))
            return f"executed (simulated): {names}" + (f"; skipped: {skipped}" if skipped else "")
        if task_id == "record":
            record = outputs["outcome"]
            deployment_id = self._deployment_id(execution_id)
            self.store.save_outcome_in(conn, execution_id, deployment_id, record)
            status = record["outcome"]["deployment_status"]
            return f"outcome recorded: {status}, approval {record['approval']['status']}"
        return f"{task_id} done"

    def _succeed(self, conn: Any, execution_id: str, outputs: dict[str, Any]) -> None:
        record = outputs["outcome"]
        row = conn.execute("SELECT histories FROM executions WHERE id = ?", (execution_id,)).fetchone()
        now = now_text()
        flow_outputs = {
            "verdict": record["decision"].get("verdict"),
            "severity": record["decision"].get("severity"),
            "confidence": record["decision"].get("confidence"),
            "approval": record["approval"]["status"],
            "deployment_status": record["outcome"]["deployment_status"],
        }
        conn.execute(
            "UPDATE executions SET state = 'SUCCESS', histories = ?, end_date = ?, updated_at = ?, "
            "outputs = ? "
            "WHERE id = ?",
            (_history(row["histories"], State.SUCCESS), now, now, dumps(flow_outputs), execution_id),
        )

    def _fail(self, execution_id: str, task: tuple[str, str] | None, message: str) -> None:
        now = now_text()
        with self.store.write() as conn:
            row = _state_row(conn, execution_id)
            if row is None or State(row["state"]).terminal:
                return
            if task is not None:
                task_run_id, task_id = task
                old = conn.execute("SELECT histories FROM task_runs WHERE id = ?", (task_run_id,)).fetchone()
                conn.execute(
                    "UPDATE task_runs SET state = 'FAILED', histories = ? WHERE id = ?",
                    (_history(old["histories"], State.FAILED), task_run_id),
                )
                self.store.log_in(
                    conn, execution_id, "ERROR", message, task_id=task_id, task_run_id=task_run_id
                )
            else:
                for run in conn.execute(
                    "SELECT id, histories FROM task_runs WHERE execution_id = ? AND state = 'RUNNING'",
                    (execution_id,),
                ).fetchall():
                    conn.execute(
                        "UPDATE task_runs SET state = 'FAILED', histories = ? WHERE id = ?",
                        (_history(run["histories"], State.FAILED), run["id"]),
                    )
                self.store.log_in(conn, execution_id, "ERROR", message)
            conn.execute(
                "UPDATE executions SET state = 'FAILED', histories = ?, end_date = ?, updated_at = ? "
                "WHERE id = ?",
                (_history(row["histories"], State.FAILED), now, now, execution_id),
            )
            conn.execute(
                "UPDATE deployments SET status = ?, updated_at = ? WHERE execution_id = ?",
                (DeploymentStatus.FAILED, now, execution_id),
            )
            conn.execute(
                "UPDATE approvals SET status = 'cancelled', decided_at = ? WHERE execution_id = ? "
                "AND status = 'pending'",
                (now, execution_id),
            )

    def _approval(self, execution_id: str, task_run_id: str, ctx: dict[str, Any]) -> bool:
        """Pause for a human when the plan needs one. Returns True when paused."""
        plan = ctx["plan"]
        now = now_text()
        with self.store.write() as conn:
            self._guard_running(conn, execution_id)
            old = conn.execute("SELECT histories FROM task_runs WHERE id = ?", (task_run_id,)).fetchone()
            if not plan.get("needs_approval"):
                conn.execute(
                    "UPDATE task_runs SET state = 'SUCCESS', histories = ?, outputs = ? WHERE id = ?",
                    (_history(old["histories"], State.SUCCESS), dumps({"required": False}), task_run_id),
                )
                self.store.log_in(
                    conn,
                    execution_id,
                    "INFO",
                    "no approval needed",
                    task_id="approval",
                    task_run_id=task_run_id,
                )
                return False
            ex = conn.execute(
                "SELECT histories, triggered_by FROM executions WHERE id = ?", (execution_id,)
            ).fetchone()
            dep = conn.execute(
                "SELECT id, service FROM deployments WHERE execution_id = ?", (execution_id,)
            ).fetchone()
            approval_id, expires = self.store.request_approval_in(
                conn,
                execution_id=execution_id,
                plan=plan,
                decision=ctx["decision"],
                requested_by=ex["triggered_by"] or "unknown",
                service=dep["service"] if dep else "unknown",
                deployment_id=dep["id"] if dep else None,
                timeout_minutes=self.settings.approval_timeout_minutes,
            )
            conn.execute(
                "UPDATE task_runs SET state = 'PAUSED', histories = ?, outputs = ? WHERE id = ?",
                (_history(old["histories"], State.PAUSED), dumps({"approval_id": approval_id}), task_run_id),
            )
            conn.execute(
                "UPDATE executions SET state = 'PAUSED', histories = ?, updated_at = ?, end_date = ? "
                "WHERE id = ?",
                (_history(ex["histories"], State.PAUSED), now, now, execution_id),
            )
            conn.execute(
                "UPDATE deployments SET status = ?, approval = 'pending', updated_at = ? WHERE "
                "execution_id = ?",
                (DeploymentStatus.AWAITING_APPROVAL, now, execution_id),
            )
            names = ", ".join(a["name"] for a in plan.get("approval", []))
            self.store.log_in(
                conn,
                execution_id,
                "INFO",
                f"paused: waiting for approval {approval_id} of {names} "
                f"({plan.get('required_approvals')} approver(s), expires {expires})",
                task_id="approval",
                task_run_id=task_run_id,
            )
        return True

    # -- Backend: control -----------------------------------------------------------------------------

    def resume(self, execution_id: str, *, approved: bool, comment: str, approver: str) -> None:
        now = now_text()
        with self.store.write() as conn:
            row = _state_row(conn, execution_id)
            if row is None:
                raise BackendError(f"execution {execution_id} not found")
            if row["state"] != "PAUSED":
                raise BackendError(f"execution {execution_id} is {row['state']}, not PAUSED")
            run = conn.execute(
                "SELECT id, histories FROM task_runs WHERE execution_id = ? AND task_id = 'approval'",
                (execution_id,),
            ).fetchone()
            outputs = {
                "approved": bool(approved),
                "comment": comment,
                "approver": approver,
                "resumed": {"by": approver, "on": now},
            }
            histories = _history(_history(run["histories"], State.RUNNING), State.SUCCESS)
            conn.execute(
                "UPDATE task_runs SET state = 'SUCCESS', histories = ?, outputs = ? WHERE id = ?",
                (histories, dumps(outputs), run["id"]),
            )
            conn.execute(
                "UPDATE executions SET state = 'RUNNING', histories = ?, end_date = NULL, updated_at "
                "= ?, owner = ?, "
                "heartbeat_at = ? WHERE id = ?",
                (_history(row["histories"], State.RUNNING), now, self.owner, now, execution_id),
            )
            conn.execute(
                "UPDATE deployments SET approval = ?, decided_at = ?, updated_at = ? WHERE execution_id = ?",
                (
                    "expired"
                    if approver == TIMEOUT_ACTOR
                    else ("approved" if approved else "rejected"),
                    now,
                    now,
                    execution_id,
                ),
            )
            self.store.log_in(
                conn,
                execution_id,
                "INFO",
                f"resumed by {approver}: {'approved' if approved else 'rejected'}"
                + (f" ({comment})" if comment else ""),
                task_id="approval",
                task_run_id=run["id"],
            )
        self._submit(execution_id)

    def kill(self, execution_id: str, *, by: str = "console") -> None:
        now = now_text()
        with self.store.write() as conn:
            row = _state_row(conn, execution_id)
            if row is None:
                raise BackendError(f"execution {execution_id} not found")
            if State(row["state"]).terminal:
                raise BackendError(f"execution {execution_id} is already {row['state']}")
            conn.execute(
                "UPDATE executions SET state = 'KILLED', histories = ?, end_date = ?, updated_at = ? "
                "WHERE id = ?",
                (_history(row["histories"], State.KILLED), now, now, execution_id),
            )
            for run in conn.execute(
                "SELECT id, histories FROM task_runs WHERE execution_id = ? AND state IN ('RUNNING', "
                "'PAUSED', 'CREATED')",
                (execution_id,),
            ).fetchall():
                conn.execute(
                    "UPDATE task_runs SET state = 'KILLED', histories = ? WHERE id = ?",
                    (_history(run["histories"], State.KILLED), run["id"]),
                )
            cancelled = conn.execute(
                "UPDATE approvals SET status = 'cancelled', decided_at = ? WHERE execution_id = ? "
                "AND status = 'pending'",
                (now, execution_id),
            ).rowcount
            conn.execute(
                "UPDATE deployments SET status = ?, updated_at = ? WHERE execution_id = ?",
                (DeploymentStatus.CANCELLED, now, execution_id),
            )
            self.store.log_in(
                conn, execution_id, "WARN", "killed" + (" (pending approval cancelled)" if cancelled else "")
            )
            self.store.audit_in(
                conn, by, "execution.killed", execution_id, {"approval_cancelled": bool(cancelled)}
            )

    # -- Backend: reads -------------------------------------------------------------------------------

    def health(self) -> Health:
        try:
            count = self.store.conn.execute("SELECT COUNT(*) FROM executions").fetchone()[0]
        except Exception as exc:
            return Health(ok=False, backend=self.name, message=f"database unavailable: {one_line(exc)}")
        return Health(
            ok=True,
            backend=self.name,
            message=f"embedded engine, {count} execution(s) stored",
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
        self.maybe_expire()
        items, total = self.store.search_executions(states=states, flow_id=flow_id, page=page, size=size)
        return Page(items=items, total=total, page=max(1, page), size=size)

    def get_execution(self, execution_id: str) -> Execution:
        self.maybe_expire()
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
        row = self.store.conn.execute(
            "SELECT body FROM artifacts WHERE execution_id = ? AND name = 'snapshot'", (execution_id,)
        ).fetchone()
        return loads(row["body"]) if row else None

    # -- read helpers for the pages -------------------------------------------------------------------

    def list_deployments(self, **kwargs: Any) -> list[dict[str, Any]]:
        self.maybe_expire()
        return self.store.list_deployments(**kwargs)

    def dashboard_kpis(self, now: datetime | None = None):
        self.maybe_expire()
        return self.store.dashboard_kpis(now)

    def latest_decisions(self, limit: int = 10) -> list[dict[str, Any]]:
        return self.store.latest_decisions(limit)

    def service_health(self) -> list[dict[str, Any]]:
        return self.store.service_health()

    # -- expiry and recovery ----------------------------------------------------------------------------

    def expire_overdue(self) -> list[str]:
        """Reject approvals past their deadline (actor system:timeout) and resume their executions."""
        from console.access.approvals import ApprovalService

        return ApprovalService(self.store, self, self.settings).expire_overdue()

    def maybe_expire(self) -> None:
        """expire_overdue at most every few seconds: cheap enough for every list/get."""
        now = time.monotonic()
        if now - self._last_expiry < self._expire_every_s or not self._expiry_lock.acquire(blocking=False):
            return
        try:
            self._last_expiry = now
            if self.store.overdue_approval_ids():
                self.expire_overdue()
        except Exception:
            log.warning("approval expiry failed", exc_info=True)
        finally:
            self._expiry_lock.release()

    def _orphaned(self, owner: str | None, heartbeat: str | None) -> bool:
        if owner == self.owner:
            return False
        if owner:
            host, _, rest = owner.partition(":")
            pid_text = rest.partition(":")[0]
            if host == socket.gethostname() and pid_text.isdigit():
                if int(pid_text) == os.getpid():
                    # this pid: a live engine of this process, or a previous process that had the
                    # same pid (a restarted container's PID 1)
                    return owner not in _LIVE_OWNERS
                return not _pid_alive(int(pid_text))
        if not heartbeat:
            return True
        return (datetime.now(UTC) - parse_time(heartbeat)).total_seconds() > STALE_AFTER_S

    def recover(self) -> list[dict[str, Any]]:
        """Take over executions whose process died; see the module docstring. Returns what was done."""
        report: list[dict[str, Any]] = []
        rows = self.store.conn.execute(
            "SELECT id, state, owner, heartbeat_at, histories FROM executions WHERE state IN "
            "('CREATED', 'RUNNING')"
        ).fetchall()
        for row in rows:
            if not self._orphaned(row["owner"], row["heartbeat_at"]):
                continue
            restarts = sum(1 for h in loads(row["histories"], []) if h["state"] == "RESTARTED")
            now = now_text()
            with self.store.write() as conn:
                claimed = conn.execute(
                    "UPDATE executions SET owner = ?, heartbeat_at = ? WHERE id = ? AND owner IS ? "
                    "AND state = ?",
                    (self.owner, now, row["id"], row["owner"], row["state"]),
                ).rowcount
                if not claimed:
                    continue
                current = conn.execute(
                    "SELECT task_id FROM task_runs WHERE execution_id = ? AND state != 'SUCCESS' "
                    "ORDER BY seq LIMIT 1",
                    (row["id"],),
                ).fetchone()
                where = current["task_id"] if current else "the start"
                if restarts >= MAX_RESTARTS:
                    action = "failed"
                    self.store.log_in(
                        conn,
                        row["id"],
                        "ERROR",
                        f"{INTERRUPTED}; gave up after {restarts} restarts",
                        task_id=None,
                    )
                else:
                    action = f"resumed from {where}"
                    histories = _history(_history(row["histories"], State.RESTARTED), State.RUNNING)
                    conn.execute(
                        "UPDATE executions SET state = 'RUNNING', histories = ?, updated_at = ? WHERE id = ?",
                        (histories, now, row["id"]),
                    )
                    self.store.log_in(conn, row["id"], "WARN", f"{INTERRUPTED}; resuming from {where}")
                self.store.audit_in(
                    conn, "system:recovery", "execution.recovered", row["id"], {"action": action}
                )
            if action == "failed":
                self._fail(row["id"], None, f"{INTERRUPTED} (too many restarts)")
            else:
                self._submit(row["id"])
            report.append({"execution_id": row["id"], "was": row["state"], "action": action})
        try:
            expired = self.expire_overdue()
        except Exception:
            log.warning("approval expiry failed during recovery", exc_info=True)
            expired = []
        report += [{"approval_id": a, "action": "expired (rejected)"} for a in expired]
        report += self._resume_decided()
        return report

    def _resume_decided(self) -> list[dict[str, Any]]:
        """Decisions committed whose engine resume never happened (the process died in between, or
        the resume failed): resume their still-PAUSED executions now."""
        from console.access.approvals import ApprovalService

        rows = self.store.conn.execute(
            "SELECT a.id FROM approvals a JOIN executions e ON e.id = a.execution_id "
            "WHERE a.status IN ('approved', 'rejected', 'expired') AND a.resume_state IN ('pending', "
            "'failed') "
            "AND e.state = 'PAUSED'"
        ).fetchall()
        service = ApprovalService(self.store, self, self.settings)
        report = []
        for row in rows:
            try:
                result = service.retry_resume(row["id"])
            except Exception as exc:
                report.append({"approval_id": row["id"], "action": f"resume failed: {one_line(exc)}"})
                continue
            report.append(
                {"approval_id": row["id"], "action": "decision applied" if result.resumed else result.message}
            )
        return report

    def close(self, wait: bool = True) -> None:
        self._stop.set()
        _LIVE_OWNERS.discard(self.owner)
        if self._pool is not None:
            self._pool.shutdown(wait=wait)


def _epoch(text: str) -> float:
    return parse_time(text).timestamp()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def _state_row(conn: sqlite3.Connection, execution_id: str) -> sqlite3.Row | None:
    """The execution's state and state history, read inside the caller's transaction."""
    return conn.execute("SELECT state, histories FROM executions WHERE id = ?", (execution_id,)).fetchone()
