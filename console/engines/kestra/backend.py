"""`KestraBackend`: the console's engine interface on top of a Kestra server.

The loop runs as the flow ``devops-loop`` (namespace ``settings.kestra_namespace``, default
``devops.loop``); see flows/ and docs/kestra.md. This module only translates: every
:class:`~console.engines.kestra.client.KestraError` becomes :class:`BackendUnavailable` (cannot
reach Kestra, or it refuses the credentials) or :class:`BackendError` (Kestra refused the
request), with the client's one-line message.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from console.domain.executions import Execution, LogEntry, State, TaskRun
from console.domain.models import format_time, highest_risk
from console.engines.backend import (
    INCIDENT_FLOW_ID,
    LOOP_FLOW_ID,
    BackendError,
    BackendUnavailable,
    Health,
    Page,
)
from console.engines.kestra.client import (
    KestraAuthError,
    KestraClient,
    KestraConflict,
    KestraError,
    KestraNotFound,
    KestraServerError,
    KestraTimeout,
    KestraUnreachable,
)
from console.engines.kestra.flow_lint import lint_path
from console.loop import incidents, scenarios, step_io, steps
from console.settings import Settings

APPROVAL_TASK = "approval"
"""Task id of the Pause in ``devops-loop`` that waits for the console's approval service."""

_UNAVAILABLE = (KestraUnreachable, KestraTimeout, KestraAuthError, KestraServerError)


def translate_error(exc: KestraError) -> BackendError:
    """The engine error an operator reads for a Kestra client error."""
    if isinstance(exc, _UNAVAILABLE):
        return BackendUnavailable(str(exc))
    return BackendError(str(exc))


def task_values(run: TaskRun | None) -> dict[str, Any]:
    """The values a task exposed: a Subflow's flow outputs (``outputs``), a script's ``vars``, or
    a Pause's ``onResume`` inputs; {} when the task has none (yet)."""
    if run is None or not isinstance(run.outputs, dict):
        return {}
    for key in ("outputs", "vars", "onResume"):
        value = run.outputs.get(key)
        if isinstance(value, dict):
            return value
    return {}


def collected_snapshot(execution: Execution) -> dict[str, Any]:
    """The snapshot an execution's ``collect`` produced, else the one it was given as input, else {}."""
    snapshot = task_values(execution.task_run("collect")).get("snapshot")
    if isinstance(snapshot, dict):
        return snapshot
    given = (execution.inputs or {}).get("snapshot")
    return given if isinstance(given, dict) else {}


class KestraBackend:
    """Implements :class:`console.engines.backend.Backend` against Kestra's REST API."""

    name = "kestra"

    def __init__(self, settings: Settings, client: KestraClient | None = None) -> None:
        if not settings.kestra_url and client is None:
            raise BackendError("KESTRA_URL is not set")
        self.settings = settings
        self.namespace = settings.kestra_namespace
        self._flows = _Recent()
        """The flow of the executions seen lately (Kestra's UI links name it)."""
        try:
            self.client = client or KestraClient(
                settings.kestra_url,
                tenant=settings.kestra_tenant,
                username=settings.kestra_username or None,
                password=settings.kestra_password,
                token=settings.kestra_token,
                timeout=settings.kestra_timeout_s,
            )
        except KestraError as exc:
            raise BackendError(str(exc)) from None

    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except KestraError as exc:
            raise translate_error(exc) from None

    # ------------------------------------------------------------------ health
    def health(self) -> Health:
        """Reachable (GET /configs), version, and whether the API accepts our credentials."""
        details: dict[str, Any] = {"url": self.client.display_url, "namespace": self.namespace}
        try:
            version = self.client.version
        except KestraError as exc:
            return Health(
                ok=False, backend=self.name, message=str(exc), details={**details, "reachable": False}
            )
        details.update(reachable=True, version=version)
        try:
            self.client.check_auth()
        except KestraError as exc:
            details["auth_ok"] = not isinstance(exc, KestraAuthError)
            return Health(ok=False, backend=self.name, message=str(exc), version=version, details=details)
        details["auth_ok"] = True
        message = f"Kestra {version} at {self.client.display_url}"
        return Health(ok=True, backend=self.name, message=message, version=version, details=details)

    # ------------------------------------------------------------------ launching
    def launch(
        self, snapshot_doc: dict[str, Any], *, triggered_by: str, labels: dict[str, str] | None = None
    ) -> str:
        """Start ``devops-loop`` on a snapshot document (sent as the JSON input ``snapshot``)."""
        if not isinstance(snapshot_doc, dict) or not isinstance(snapshot_doc.get("deployment"), dict):
            raise BackendError("the snapshot has no deployment")
        dep = snapshot_doc["deployment"]
        inputs: dict[str, Any] = {
            "deployment_id": dep.get("id"),
            "service": dep.get("service"),
            "version": dep.get("version"),
            "snapshot": snapshot_doc,
            "triggered_by": triggered_by,
        }
        scenario = snapshot_doc.get("scenario")
        if isinstance(scenario, dict) and scenario.get("id"):
            inputs["scenario"] = scenario["id"]
        return self._trigger(inputs, {"triggered_by": triggered_by, **(labels or {})})

    def launch_scenario(
        self, scenario_id: str, triggered_by: str, labels: dict[str, str] | None = None
    ) -> str:
        """Start ``devops-loop`` on a demo scenario; the task image loads it from its mock-data/. As on
        the embedded engine, the request comes from the scenario's deployer; ``triggered_by`` (who
        clicked) is kept in the label ``launched_by``."""
        try:
            requester = scenarios.requester_of(steps.load_scenario(scenario_id, self.settings))
        except step_io.StepError as exc:
            raise BackendError(str(exc)) from None
        merged = {"launched_by": triggered_by, "scenario": scenario_id, **(labels or {})}
        return self._trigger({"scenario": scenario_id, "triggered_by": requester}, merged)

    def launch_deployment(
        self,
        deployment: dict[str, Any],
        *,
        triggered_by: str,
        source: str,
        labels: dict[str, str] | None = None,
    ) -> str:
        """Start ``devops-loop`` on a real deployment with the same inputs its webhook reads from a
        deployer's body (deployment_id, service, version, previous_version, deployed_at,
        deployed_by, source); the flow's tasks read the service's sources and executor."""
        if not isinstance(deployment, dict) or not deployment.get("service") or not deployment.get("version"):
            raise BackendError("the deployment needs at least 'service' and 'version'")

        def pick(*keys: str) -> Any:
            return next((deployment[k] for k in keys if deployment.get(k) not in (None, "")), None)

        inputs: dict[str, Any] = {
            "deployment_id": pick("id", "deployment_id"),
            "service": pick("service"),
            "version": pick("version"),
            "previous_version": pick("previous_version"),
            "deployed_at": pick("deployed_at", "at"),
            "deployed_by": pick("deployed_by", "by"),
            "source": source,
            "triggered_by": triggered_by,
        }
        # the console's own key wins over a caller's, as on the embedded engine
        return self._trigger(inputs, {"triggered_by": triggered_by, **(labels or {}), "source": source})

    def launch_incident(
        self, incident: dict[str, Any], *, triggered_by: str, labels: dict[str, str] | None = None
    ) -> str:
        """Start ``incident-handler`` for a firing alert: the incident's fields as the flow's inputs
        (incident_id, service, severity, starts_at, alertname, summary, fingerprint, labels) and its
        deployment block (deployment_id, version, previous_version, deployed_at, deployed_by: the
        suspect deployment, or the alert itself), which its collect task reads."""
        try:
            checked = incidents.incident_input({"incident": incident})
        except incidents.IncidentError as exc:
            raise BackendError(str(exc)) from None
        dep = incidents.incident_deployment(checked)
        suspect = checked["deployment"] is not None
        inputs: dict[str, Any] = {
            "incident_id": checked["id"],
            "service": checked["service"],
            "severity": checked["severity"],
            "starts_at": checked["starts_at"],
            "alertname": checked["alertname"],
            "summary": checked["summary"],
            "fingerprint": checked["fingerprint"],
            "labels": checked["labels"],
            "deployment_id": dep["id"],
            "version": dep["version"],
            "previous_version": dep["previous_version"],
            "deployed_at": dep["deployed_at"] if suspect else None,
            "deployed_by": dep["deployed_by"] if suspect else None,
            "source": incidents.INCIDENT_SOURCE,
            "triggered_by": triggered_by,
        }
        merged = {
            "triggered_by": triggered_by,
            "source": incidents.INCIDENT_SOURCE,
            "severity": checked["severity"],
            **({"incident": checked["id"]} if checked["id"] else {}),
            **(labels or {}),
        }
        return self._trigger(inputs, merged, flow_id=INCIDENT_FLOW_ID)

    def _trigger(self, inputs: dict[str, Any], labels: dict[str, str], *, flow_id: str = LOOP_FLOW_ID) -> str:
        inputs = {k: v for k, v in inputs.items() if v is not None}
        labels = {_label_key(k): str(v) for k, v in labels.items() if str(v)}
        execution = self._call(self.client.trigger, self.namespace, flow_id, inputs, labels=labels)
        self._flows[execution.id] = flow_id
        return execution.id

    # ------------------------------------------------------------------ reads
    def search_executions(
        self,
        *,
        states: list[State] | None = None,
        flow_id: str | None = None,
        page: int = 1,
        size: int = 50,
        with_task_runs: bool = True,
    ) -> Page:
        """Executions of the namespace, newest first. ``flow_id=None`` means every flow of the
        namespace (the subflows' child executions included). Kestra 2.x list items carry no task
        runs: with ``with_task_runs`` each item of the page is fetched in full."""
        page, size = max(1, page), max(1, size)
        items, total = self._call(
            self.client.search_executions,
            namespace=self.namespace,
            flow_id=flow_id,
            states=states,
            page=page,
            size=size,
        )
        if with_task_runs and self._call(lambda: self.client.major) >= 2:
            items = [self.get_execution(item.id, expand_subflows=False) for item in items]
        return Page(items=[_flatten(item) for item in items], total=total, page=page, size=size)

    def get_execution(self, execution_id: str, *, expand_subflows: bool = True) -> Execution:
        """One execution. With ``expand_subflows`` the task runs of its subflows' executions
        (``collect``, ``analyze``, ``summarize``, ``decide`` inside the child flows) are listed
        right after the Subflow task that ran them, with ``parent_task_run_id`` set to it, as
        Kestra's UI nests them. Every task run's values (a subflow's outputs, a script's vars,
        a Pause's onResume inputs) are also readable at the top of its ``outputs``, as the
        embedded engine stores them."""
        try:
            execution = self.client.get_execution(execution_id)
            if expand_subflows:
                self._expand(execution)
        except KestraNotFound:
            raise BackendError(f"execution {execution_id} not found") from None
        except KestraError as exc:
            raise translate_error(exc) from None
        self._flows[execution.id] = execution.flow_id
        return _flatten(execution)

    def _children(self, execution: Execution) -> dict[str, Execution]:
        """Subflow executions started by the task runs of ``execution``, by parent task run id."""
        out = {}
        for run in execution.task_runs:
            child_id = (run.outputs or {}).get("executionId")
            if not isinstance(child_id, str) or not child_id:
                continue
            try:
                out[run.id] = self.client.get_execution(child_id)
            except KestraNotFound:  # purged child: show the parent as it is
                continue
        return out

    def _expand(self, execution: Execution) -> None:
        children = self._children(execution)
        if not children:
            return
        runs: list[TaskRun] = []
        for run in execution.task_runs:
            runs.append(run)
            for child_run in children[run.id].task_runs if run.id in children else []:
                child_run.parent_task_run_id = child_run.parent_task_run_id or run.id
                runs.append(child_run)
        execution.task_runs = runs

    def execution_logs(self, execution_id: str) -> list[LogEntry]:
        """The execution's logs and its subflows' (where the steps run), oldest first."""
        try:
            logs = list(self.client.logs(execution_id))
            execution = self.client.get_execution(execution_id, with_outputs=False)
            child_ids = [
                r.outputs.get("executionId")
                for r in execution.task_runs
                if isinstance((r.outputs or {}).get("executionId"), str)
            ]
            if not child_ids and self.client.major >= 2:  # 2.x task runs carry no outputs inline
                child_ids = [c.id for c in self._children(self.client.get_execution(execution_id)).values()]
            for child_id in child_ids:
                logs += self.client.logs(child_id)
        except KestraNotFound:
            raise BackendError(f"execution {execution_id} not found") from None
        except KestraError as exc:
            raise translate_error(exc) from None
        return sorted(logs, key=lambda entry: entry.timestamp)

    def snapshot_document(self, execution_id: str) -> dict[str, Any] | None:
        """The snapshot the ``collect`` subflow produced, or the one the execution was launched
        with; None before either is known."""
        execution = self.get_execution(execution_id, expand_subflows=False)
        collected = task_values(execution.task_run("collect")).get("snapshot")
        if isinstance(collected, dict):
            return collected
        given = execution.inputs.get("snapshot")
        return given if isinstance(given, dict) and given else None

    def ui_link(self, execution_id: str) -> str | None:
        base = (self.settings.kestra_ui_url or self.settings.kestra_url).rstrip("/")
        if not base:
            return None
        tenant = self.settings.kestra_tenant or "main"
        flow_id = self._flows.get(execution_id, LOOP_FLOW_ID)
        return f"{base}/ui/{tenant}/executions/{self.namespace}/{flow_id}/{execution_id}"

    # ------------------------------------------------------------------ control
    def resume(
        self,
        execution_id: str,
        *,
        approved: bool,
        comment: str,
        approver: str,
        rollback_target: dict[str, Any] | None = None,
    ) -> None:
        """Resume the ``approval`` Pause with its onResume inputs approved / comment / approver, and
        ``rollback_target`` (JSON) when the approval service confirmed one."""
        inputs: dict[str, Any] = {"approved": bool(approved), "comment": comment or "", "approver": approver}
        if rollback_target:
            inputs["rollback_target"] = rollback_target
        try:
            self.client.resume(execution_id, inputs)
        except KestraConflict:
            raise BackendError(f"execution {execution_id} is not PAUSED; it cannot be resumed") from None
        except KestraNotFound:
            raise BackendError(f"execution {execution_id} not found") from None
        except KestraError as exc:
            raise translate_error(exc) from None

    def kill(self, execution_id: str, *, by: str = "console") -> None:
        """Kill the execution and its subflows (Kestra keeps its own record of the kill; ``by`` is
        not sent)."""
        try:
            self.client.kill(execution_id)
        except KestraConflict as exc:
            raise BackendError(str(exc)) from None
        except KestraNotFound:
            raise BackendError(f"execution {execution_id} not found") from None
        except KestraError as exc:
            raise translate_error(exc) from None

    def close(self, wait: bool = True) -> None:
        """Release the HTTP connections (nothing runs in the background here)."""
        self.client.close()

    # ------------------------------------------------------------------ approvals and flows
    def sync_flows(self) -> list[dict[str, Any]]:
        """Lint, validate and deploy every flow in ``settings.flows_dir``; one summary row per flow:
        ``{"file", "namespace", "id", "revision", "action": "created" | "updated"}``.

        The flow linter runs first (:mod:`console.engines.kestra.flow_lint`: Kestra 1.3's rules and
        the project's, including what Kestra accepts but then fails at run time), then Kestra's own
        ``/flows/validate``; either one refusing deploys nothing and names the first violation."""
        violations = lint_path(self.settings.flows_dir)
        if violations:
            others = len(violations) - 1
            more = f" (and {others} more: python -m console kestra lint)" if others else ""
            raise BackendError(f"flows not deployed: {violations[0]}{more}")
        return self._call(self.client.deploy_flows, self.settings.flows_dir)

    def approval_request(self, execution: Execution, pause: TaskRun | None = None) -> dict[str, Any]:
        """What the approval request of an execution paused at the ``approval`` Pause says, for the
        mirror to store (keys as the approvals table's): ``execution_id``, ``deployment_id``,
        ``service``, ``actions`` (the plan's approval actions), ``risk``, ``requested_by`` (the
        ``triggered_by`` input), ``requested_at`` (when the Pause started), ``expires_at``
        (requested_at + APPROVAL_TIMEOUT_MINUTES), ``verdict``, ``severity``, ``confidence``,
        ``decision`` and ``plan``."""
        pause = pause or execution.task_run(APPROVAL_TASK)
        decided = task_values(execution.task_run("decide"))
        plan = decided.get("plan") if isinstance(decided.get("plan"), dict) else {}
        actions = list(plan.get("approval") or [])
        requested = (pause.start if pause else None) or execution.start
        expires = requested + timedelta(minutes=self.settings.approval_timeout_minutes) if requested else None
        deployment = collected_snapshot(execution).get("deployment") or {}
        requested_by = (
            execution.inputs.get("triggered_by") or execution.labels.get("triggered_by") or "kestra"
        )
        return {
            "execution_id": execution.id,
            "deployment_id": execution.inputs.get("deployment_id") or deployment.get("id"),
            "service": execution.inputs.get("service") or deployment.get("service") or "unknown",
            "actions": actions,
            "risk": highest_risk(actions).value,
            "required_approvals": max(1, int(plan.get("required_approvals") or 1)),
            "requested_by": requested_by,
            "requested_at": format_time(requested) if requested else None,
            "expires_at": format_time(expires) if expires else None,
            **_verdict_of(execution, decided),
            "plan": plan,
        }


def _verdict_of(execution: Execution, decided: dict[str, Any]) -> dict[str, Any]:
    """Verdict, severity and confidence as ``decide`` gave them, else as the decision said, and the
    decision itself."""
    decision = task_values(execution.task_run("summarize")).get("decision") or {}
    confidence = decided.get("confidence")
    return {
        "verdict": decided.get("verdict") or decision.get("verdict"),
        "severity": decided.get("severity") or decision.get("severity"),
        "confidence": confidence if confidence is not None else decision.get("confidence"),
        "decision": decision,
    }


def _flatten(execution: Execution) -> Execution:
    """Expose each task run's values at the top of its outputs (raw Kestra keys kept and winning)."""
    for run in execution.task_runs:
        values = task_values(run)
        if values:
            run.outputs = {**values, **(run.outputs or {})}
    return execution


def _label_key(key: str) -> str:
    """Kestra label keys: lower case letter first, then letters, digits, '.', '_' or '-'."""
    cleaned = "".join(c if c.isalnum() or c in "._-" else "_" for c in key.strip().lower())
    return cleaned if cleaned[:1].isalpha() else f"l_{cleaned}"


class _Recent(dict[str, str]):
    """A dict that keeps only its newest entries (execution id -> flow id)."""

    LIMIT = 2000

    def __setitem__(self, key: str, value: str) -> None:
        self.pop(key, None)
        super().__setitem__(key, value)
        while len(self) > self.LIMIT:
            del self[next(iter(self))]
