"""What an engine must offer the console. The pages never know which one they talk to.

Two implementations: :class:`~console.engines.embedded.runner.EmbeddedEngine` (default,
in-process, SQLite) and :class:`~console.engines.kestra.backend.KestraBackend` (when ``KESTRA_URL``
is set); :mod:`console.engines.factory` picks one. Approvals, roles and the audit trail are not
part of an engine: :mod:`console.access.approvals` owns them and calls :meth:`Backend.resume`
once a decision is final.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from console.domain.executions import Execution, LogEntry, State

LOOP_FLOW_ID = "devops-loop"
INCIDENT_FLOW_ID = "incident-handler"


class BackendError(RuntimeError):
    """An engine could not do what was asked; the message is fit to show an operator."""


class BackendUnavailable(BackendError):
    """The engine cannot be reached (down, slow, refusing credentials)."""


@dataclass
class Page:
    items: list[Execution]
    total: int
    page: int = 1
    size: int = 50


@dataclass
class Health:
    ok: bool
    backend: str
    message: str = ""
    version: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


class Backend(Protocol):
    """Everything the console asks of an engine. Both engines implement all of it; nothing probes
    for a method."""

    name: str

    def health(self) -> Health: ...

    def launch(
        self, snapshot_doc: dict[str, Any], *, triggered_by: str, labels: dict[str, str] | None = None
    ) -> str:
        """Start the loop on a snapshot document; return the execution id at once.

        The run continues in the background; poll :meth:`get_execution` for progress.
        """
        ...

    def launch_scenario(
        self, scenario_id: str, triggered_by: str, labels: dict[str, str] | None = None
    ) -> str:
        """Start the loop on a demo scenario of ``mock-data/``; ``triggered_by`` is the console user
        who clicked (kept in the label ``launched_by``)."""
        ...

    def launch_deployment(
        self,
        deployment: dict[str, Any],
        *,
        triggered_by: str,
        source: str,
        labels: dict[str, str] | None = None,
    ) -> str:
        """Start the loop on a real deployment: ``deployment`` = {"id", "service", "version",
        "previous_version", "environment", "deployed_at", "deployed_by"} (deployed_at RFC 3339 Z);
        ``source`` says who announced it ("deployer", "api", "github", "argocd", "console"). The loop
        reads the service's configured telemetry sources and acts through its configured executor
        (CONSOLE_SERVICES_FILE); a service with no source fails its ``collect`` with one line."""
        ...

    def launch_incident(
        self, incident: dict[str, Any], *, triggered_by: str, labels: dict[str, str] | None = None
    ) -> str:
        """Start the incident path (flow ``incident-handler``) for a firing alert: ``incident`` =
        {"id", "service", "severity", "starts_at", "alertname", "summary", "fingerprint", "labels",
        "deployment"} (:func:`console.loop.incidents.incident_input`; ``deployment`` is the suspect
        deployment or None). The same steps as the loop: collect around ``starts_at`` from the
        service's configured sources, analyze, summarize, decide routed by the severity, the
        approval when the routing asks for one, execute, verify, record."""
        ...

    def search_executions(
        self,
        *,
        states: list[State] | None = None,
        flow_id: str | None = None,
        page: int = 1,
        size: int = 50,
    ) -> Page: ...

    def get_execution(self, execution_id: str) -> Execution: ...

    def execution_logs(self, execution_id: str) -> list[LogEntry]: ...

    def snapshot_document(self, execution_id: str) -> dict[str, Any] | None:
        """The snapshot document the execution analysed, or None before ``collect`` finished."""
        ...

    def resume(
        self,
        execution_id: str,
        *,
        approved: bool,
        comment: str,
        approver: str,
        rollback_target: dict[str, Any] | None = None,
    ) -> None:
        """Resume a PAUSED execution with the approval decision (Kestra's Pause onResume inputs);
        ``rollback_target`` is the known-good version the approval service confirmed (or the
        approver picked) for the plan's rollback, with why: ``execute`` rolls back to it only."""
        ...

    def kill(self, execution_id: str, *, by: str = "console") -> None:
        """Stop an execution that has not ended; ``by`` is who asked (for the audit trail)."""
        ...

    def ui_link(self, execution_id: str) -> str | None:
        """Link to the execution in the engine's own UI, if it has one."""
        ...

    def sync_flows(self) -> list[dict[str, Any]]:
        """Deploy the flows in ``settings.flows_dir`` to the engine (Kestra); one row per flow.
        BackendError where the engine has no flows."""
        ...

    def close(self, wait: bool = True) -> None:
        """Stop background work and release connections."""
        ...
