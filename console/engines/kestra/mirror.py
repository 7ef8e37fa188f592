"""The Kestra mirror: the executions of ``devops-loop`` (and ``incident-handler``) copied, incrementally,
into the console's read model, so every page shows on Kestra what it shows on the embedded engine.

One sync:

1. searches the namespace's executions that started at or after the cursor (minus an overlap, so
   an execution created just before the last sync and listed late is not missed; the first sync
   goes back ``KESTRA_MIRROR_DAYS``), oldest first, page by page;
2. skips an execution whose fingerprint (state, history length, last change) is the one already
   mirrored; otherwise reads it whole (subflows expanded, outputs flattened) and folds it into the
   read model with :meth:`console.engines.projection.Projection.project_execution`, in one
   transaction, together with its approval request when it is paused at the ``approval`` Pause;
3. reads again, by id, the executions that were still running or paused when last seen and were
   not in the search (an execution deleted in Kestra answers 404: its deployment says so);
4. moves the cursor to the newest start date seen and records the attempt.

Everything is idempotent: re-running a sync, or a sync that failed half-way (Kestra down, a page
that times out), changes nothing twice and resumes from the persisted cursor after a restart.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from console.domain.executions import TERMINAL_STATES, Execution, State
from console.domain.models import format_time, parse_time
from console.domain.names import RequesterSource
from console.domain.vocabulary import APPROVAL_TASK, DeploymentStatus
from console.engines.backend import INCIDENT_FLOW_ID, LOOP_FLOW_ID, BackendError, BackendUnavailable
from console.engines.kestra.backend import KestraBackend, collected_snapshot, task_values, translate_error
from console.engines.kestra.client import KestraError
from console.engines.projection import Projection, deployment_row_id
from console.settings import Settings
from console.storage import Store

log = logging.getLogger(__name__)

SOURCE = "kestra"
MIRRORED_FLOWS = (LOOP_FLOW_ID, INCIDENT_FLOW_ID)
OVERLAP = timedelta(minutes=2)
PAGE_SIZE = 50
MAX_REOPEN = 100
"""Open executions read again by id per sync (the oldest first)."""


@dataclass
class SyncReport:
    seen: int = 0
    projected: int = 0
    gone: int = 0
    approvals_requested: int = 0
    error: str | None = None
    cursor: str | None = None
    duration_s: float = 0.0
    projected_ids: list[str] = field(default_factory=list)
    listed_ids: set[str] = field(default_factory=set)
    """Executions the search listed this time (changed or not)."""


def fingerprint(execution: Execution) -> str:
    """What changes whenever Kestra changes the execution (a list item carries enough of it)."""
    last = execution.histories[-1].date.isoformat() if execution.histories else ""
    return f"{execution.state.value}|{len(execution.histories)}|{last}"


class KestraMirror:
    """Copies Kestra's executions into the store's read model (see the module docstring)."""

    def __init__(self, store: Store, backend: KestraBackend, settings: Settings) -> None:
        self.store = store
        self.backend = backend
        self.settings = settings
        self.projection = Projection(store, SOURCE)
        self._lock = threading.Lock()
        self._last_run = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._synced_once = threading.Event()
        self.last_report: SyncReport | None = None

    # -- syncing --------------------------------------------------------------------------------------

    def sync(self) -> SyncReport:
        """One incremental sync. Never raises for Kestra's sake: an unreachable or failing Kestra
        is recorded (``report.error`` and the store's mirror state) and the next sync resumes."""
        with self._lock:
            started = time.monotonic()
            report = SyncReport()
            state = self.store.mirror.state(SOURCE)
            cursor = state.get("cursor")
            try:
                newest = self._sync_new(cursor, report)
                self._reopen(report)
            except BackendError as exc:
                report.error = " ".join(str(exc).split())[:300] or type(exc).__name__
                log.warning("Kestra mirror: %s", report.error)
                self.store.mirror.save_state(SOURCE, success=False, error=report.error)
            else:
                report.cursor = newest or cursor
                self.store.mirror.save_state(SOURCE, cursor=report.cursor, success=True)
            report.duration_s = time.monotonic() - started
            self._last_run = time.monotonic()
            self.last_report = report
            self._synced_once.set()
            return report

    def wait_first_sync(self, timeout_s: float) -> bool:
        """Wait (at most ``timeout_s``) until one sync has run since this mirror started, so the
        first page a console serves shows Kestra's runs rather than an empty read model."""
        return self._synced_once.wait(timeout_s)

    def sync_soon(self, min_interval_s: float = 2.0) -> SyncReport | None:
        """:meth:`sync` unless one ran in the last ``min_interval_s`` (or runs right now)."""
        if time.monotonic() - self._last_run < min_interval_s or self._lock.locked():
            return None
        return self.sync()

    def refresh(self) -> str | None:
        """For the approval service: a sync unless one just ran; why the last one failed, or None."""
        report = self.sync_soon() or self.last_report
        return report.error if report is not None else None

    def _sync_new(self, cursor: str | None, report: SyncReport) -> str | None:
        if cursor:
            since = format_time(parse_time(cursor) - OVERLAP)
        else:  # the first copy: the last few days, not a Kestra's whole history
            since = format_time(datetime.now(UTC) - timedelta(days=self.settings.kestra_mirror_days))
        newest = cursor
        page = 1
        while True:
            items, total = self._search(since, page)
            report.seen += len(items)
            known = self.store.mirror.fingerprints([item.id for item in items])
            for item in items:
                if item.flow_id not in MIRRORED_FLOWS:
                    continue
                report.listed_ids.add(item.id)
                if item.start is not None:
                    start = format_time(item.start)
                    newest = start if newest is None or start > newest else newest
                if known.get(item.id) == fingerprint(item):
                    continue
                self._mirror(item.id, report)
            if page * PAGE_SIZE >= total or not items:
                return newest
            page += 1

    def _search(self, since: str | None, page: int) -> tuple[list[Execution], int]:
        try:
            return self.backend.client.search_executions(
                namespace=self.backend.namespace,
                started_from=since,
                page=page,
                size=PAGE_SIZE,
                sort="state.startDate:asc",
            )
        except KestraError as exc:
            raise translate_error(exc) from None

    def _reopen(self, report: SyncReport) -> None:
        """Executions still open when last seen and not refreshed by the search: read them by id."""
        terminal = tuple(s.value for s in TERMINAL_STATES)
        stale = [
            execution_id
            for execution_id in self.store.mirror.open_ids(terminal, limit=MAX_REOPEN)
            if execution_id not in report.listed_ids
        ]
        known = self.store.mirror.fingerprints(stale)
        for execution_id in stale:
            self._mirror(execution_id, report, known.get(execution_id))

    def _mirror(self, execution_id: str, report: SyncReport, known: str | None = None) -> None:
        try:
            execution = self.backend.get_execution(execution_id)
        except BackendUnavailable:
            raise
        except BackendError:  # 404: deleted in Kestra (or purged by its retention)
            self._gone(execution_id)
            report.gone += 1
            return
        if execution.flow_id not in MIRRORED_FLOWS or fingerprint(execution) == known:
            return
        facts = self._facts(execution)
        if not facts["deployment"].get("service") and not execution.state.terminal:
            # an incident run Alertmanager started straight on Kestra: its service is known once its
            # collect step has read the delivery; kept open (read again next sync), not projected
            with self.store.db.write() as conn:
                self.store.mirror.mark_in(
                    conn,
                    execution.id,
                    flow_id=execution.flow_id,
                    state=execution.state.value,
                    fingerprint="waiting for collect",
                    start_date=format_time(execution.start) if execution.start else None,
                )
            return
        with self.store.db.write() as conn:
            self.projection.project_execution(conn, execution, **facts)
            if self._needs_approval_request(execution):
                self._request_approval(conn, execution, facts, report)
            if execution.state.terminal:  # ended in Kestra (killed, failed, the pause ran out)
                self.store.approvals.cancel_pending_in(conn, execution.id, format_time(datetime.now(UTC)))
            self.store.mirror.mark_in(
                conn,
                execution.id,
                flow_id=execution.flow_id,
                state=execution.state.value,
                fingerprint=fingerprint(execution),
                start_date=format_time(execution.start) if execution.start else None,
            )
        report.projected += 1
        report.projected_ids.append(execution.id)

    def _request_approval(
        self, conn: Any, execution: Execution, facts: dict[str, Any], report: SyncReport
    ) -> None:
        """The one approval request of an execution paused at the ``approval`` Pause. The requester,
        when the console launched the run (it records its own launches): a scenario's deployer (the
        ``triggered_by`` the console itself gave, as on the embedded engine), else the signed-in
        person who launched it. When someone else launched it: Kestra's ``triggered_by`` input,
        typed by whoever that was (marked unverified)."""
        if self.store.approvals.for_execution(execution.id) is not None:
            return
        request = self.backend.approval_request(execution)
        launched = self.store.launches.get(execution.id)
        if launched is not None and facts["source"] == "scenario":
            requested_by, source = request["requested_by"], RequesterSource.SCENARIO
        elif launched is not None:
            requested_by, source = launched["launched_by"], launched["source"]
        else:
            requested_by, source = request["requested_by"], RequesterSource.KESTRA_INPUT
        self.store.approvals.request_in(
            conn,
            execution_id=execution.id,
            plan=request["plan"] or {"approval": request["actions"]},
            decision=request["decision"],
            requested_by=requested_by,
            service=request["service"],
            deployment_id=deployment_row_id(facts["deployment"], execution.id),
            timeout_minutes=self.settings.approval_timeout_minutes,
            requested_at=request["requested_at"],
            expires_at=request["expires_at"],
            requested_by_source=source,
            critical_approvers=self.settings.critical_approvers,
        )
        report.approvals_requested += 1

    def _gone(self, execution_id: str) -> None:
        with self.store.db.write() as conn:
            self.store.deployments.update_in(
                conn,
                execution_id,
                status=DeploymentStatus.CANCELLED,
                note="deleted in Kestra: the console keeps what it mirrored",
            )
            self.store.approvals.cancel_pending_in(conn, execution_id, format_time(datetime.now(UTC)))
            self.store.mirror.mark_in(
                conn, execution_id, flow_id="?", state="DELETED", fingerprint="gone", start_date=None,
                gone=True,
            )  # fmt: skip

    @staticmethod
    def _needs_approval_request(execution: Execution) -> bool:
        pause = execution.task_run(APPROVAL_TASK)
        return execution.state == State.PAUSED and pause is not None and pause.state == State.PAUSED

    def _facts(self, execution: Execution) -> dict[str, Any]:
        """The deployment, scenario, requester and source of a Kestra execution, from its inputs and
        what its collect step produced."""
        inputs = execution.inputs or {}
        snapshot = collected_snapshot(execution)
        scenario = snapshot.get("scenario") if isinstance(snapshot.get("scenario"), dict) else None
        if scenario is None and inputs.get("scenario"):
            scenario = {"id": inputs["scenario"]}
        triggered_by = str(inputs.get("triggered_by") or execution.labels.get("triggered_by") or "kestra")
        return {
            "deployment": _deployment_of(execution, snapshot),
            "scenario": scenario,
            "triggered_by": triggered_by,
            "source": _source_of(execution),
        }

    # -- in the background ------------------------------------------------------------------------------

    def start(self, interval_s: float) -> None:
        """Sync every ``interval_s`` seconds in a daemon thread until :meth:`stop`."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._loop, args=(interval_s,), name="kestra-mirror", daemon=True
        )
        self._thread.start()

    def _loop(self, interval_s: float) -> None:
        while not self._stop.is_set():
            try:
                self.sync()
            except Exception:  # never let the thread die on a bug; the next round tries again
                log.exception("Kestra mirror: sync failed")
            self._stop.wait(interval_s)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None


_INPUT_FIELDS = (
    ("deployment_id", "id"),
    ("service", "service"),
    ("version", "version"),
    ("previous_version", "previous_version"),
    ("deployed_at", "deployed_at"),
    ("deployed_by", "deployed_by"),
)
"""The flow inputs that fill a deployment's fields its snapshot leaves empty."""


def _deployment_of(execution: Execution, snapshot: dict[str, Any]) -> dict[str, Any]:
    """The execution's deployment: its snapshot's, completed from the inputs (and, for an incident,
    from the incident collect found; its window starts at the alert's start)."""
    inputs = execution.inputs or {}
    deployment = dict(snapshot.get("deployment") or {})
    for key, name in _INPUT_FIELDS:
        if inputs.get(key) and not deployment.get(name):
            deployment[name] = inputs[key]
    if execution.flow_id != INCIDENT_FLOW_ID:
        return deployment
    incident = task_values(execution.task_run("collect")).get("incident")
    if not isinstance(incident, dict):
        if not deployment.get("deployed_at"):
            deployment["deployed_at"] = inputs.get("starts_at")
        return deployment
    for name in ("service", "version"):
        if incident.get(name) and not deployment.get(name):
            deployment[name] = incident[name]
    deployment.setdefault("deployed_at", inputs.get("starts_at") or incident.get("starts_at"))
    return deployment


def _source_of(execution: Execution) -> str:
    """Where the run came from, as the read model's ``source`` says it."""
    inputs = execution.inputs or {}
    if execution.flow_id == INCIDENT_FLOW_ID:
        return str(inputs.get("source") or "alertmanager")
    if inputs.get("scenario"):
        return "scenario"
    if isinstance(inputs.get("snapshot"), dict) and inputs["snapshot"]:
        return "snapshot"
    return str(inputs.get("source") or "deployment")
