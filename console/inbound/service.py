"""What arrives from outside, acted on: a deployment announced starts the loop on it, an
Alertmanager delivery opens (or updates) incidents and starts their runs. The HTTP API
(``POST /api/deployments``, ``POST /api/alerts``) calls these; so can the pages (a deploy the console
makes itself goes through :meth:`Inbound.announce`, with the same idempotency key as the deployer's
own announcement of it, so the two never start two runs).

Idempotency (``inbound_deliveries``, :mod:`console.storage.deliveries`): every delivery is claimed by
its key before anything starts — a deployment by service + deployment id, an alert by Alertmanager's
group key + fingerprint + ``startsAt`` — so a retry, or the same delivery arriving twice at once,
never starts a second run: the duplicate answers with the run the first one started (waiting a
moment when that one is still starting it). An incident is one per service and alert name while
open (the store's unique index): a firing alert whose incident is open is attached to it, and a
resolved alert marks its incident resolved once none of its alerts fires any more.

On the embedded engine (a :class:`LocalLauncher`) accepting a delivery, opening its incident and
creating its run is **one transaction**: there is never an open incident without a run, and any
failure keeps nothing, so the sender's retry starts it. On Kestra (a launch is an HTTP call) a run
that cannot be started leaves nothing half-done either: the delivery is marked failed and a newly
opened incident is closed as failed, so the sender's retry starts it again.

Fairness: each caller (an API token's identity, GitHub, the console) may have at most
``intake_budget`` runs in progress (not paused, not ended); past it a deployment is refused with
:class:`OverBudget` (503, Retry-After) and nothing is kept, and an alert is **deferred**. An
Alertmanager delivery is handled ``alerts_per_delivery`` new alerts at a time (Alertmanager's own
``max_alerts`` shape): the rest are deferred too. A delivery with a deferred alert is answered 503,
which Alertmanager retries (any 5xx); the alerts already handled are duplicates then, and the next
ones are taken. Nothing is dropped silently.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from console.domain.models import format_time, now_text
from console.domain.names import is_system_name
from console.domain.text import one_line
from console.engines.backend import Backend, BackendError, BackendUnavailable
from console.loop.incidents import INCIDENT_SOURCE, incident_of
from console.payloads import (
    Alert,
    AlertmanagerDelivery,
    AlertMapping,
    AlertMappingError,
    parse_alertmanager,
    parse_announcement,
)
from console.settings import Settings
from console.storage import Connection, DeliveryClaim, Store
from console.telemetry import TelemetryError, service_config
from console.telemetry.errors import NoSourceConfigured

log = logging.getLogger(__name__)

DEPLOYMENT = "deployment"
ALERT = "alert"
ALERT_RESOLVED = "alert-resolved"
WAIT_FOR_OTHER_S = 5.0
"""How long a duplicate waits for the request that claimed the delivery to name its run."""

LAUNCHED, DUPLICATE, ATTACHED, RESOLVED, IGNORED = "launched", "duplicate", "attached", "resolved", "ignored"
DEFERRED = "deferred"
"""An alert not handled in this request (the delivery's cap, the caller's budget): answered 503 so
the sender delivers it again."""
CALLER_LABEL = "received_by"
"""The run's label naming the caller that delivered it (the budgets count by it; so does the
scheduler's fairness)."""


class InboundError(Exception):
    """Nothing was started; the message is one line for the caller."""

    status = 503
    retry_after_s = 5
    """When the sender may try again (the 503's Retry-After)."""


class NotConfigured(InboundError):
    """The service has no telemetry source configured: the loop would have nothing to judge."""

    status = 422


class Unavailable(InboundError):
    """The engine, or the console's own configuration, cannot serve now (the sender may retry)."""

    status = 503


class Refused(InboundError):
    """The engine refused to start the run."""

    status = 502


class OverBudget(Unavailable):
    """The caller has as many runs in progress as its budget allows; nothing was kept."""

    retry_after_s = 10


class LocalLauncher(Protocol):
    """An engine whose runs live in the console's own store (the embedded engine): it creates a run
    inside the caller's transaction, and starts it once that has committed (``wake``)."""

    def launch_deployment_in(
        self,
        conn: Connection,
        deployment: dict[str, Any],
        *,
        triggered_by: str,
        source: str,
        labels: dict[str, str] | None = None,
    ) -> str: ...

    def launch_incident_in(
        self,
        conn: Connection,
        incident: dict[str, Any],
        *,
        triggered_by: str,
        labels: dict[str, str] | None = None,
    ) -> str: ...

    def wake(self, execution_id: str | None = None) -> None: ...


@dataclass(frozen=True)
class Outcome:
    """What became of one announcement or one alert."""

    status: str
    """launched | duplicate | attached | resolved | ignored"""
    key: str | None = None
    execution_id: str | None = None
    incident_id: str | None = None
    reason: str | None = None
    deployment: dict[str, Any] | None = None
    alert: dict[str, Any] = field(default_factory=dict)
    not_configured: bool = False
    """Ignored because the service has no telemetry source configured."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status, "execution_id": self.execution_id}
        if self.incident_id is not None:
            out["incident_id"] = self.incident_id
        if self.reason:
            out["reason"] = self.reason
        if self.deployment is not None:
            out["deployment"] = self.deployment
        if self.alert:
            out.update(self.alert)
        return out


class Inbound:
    """Announcements and alerts acted on, idempotently (see the module's doc)."""

    def __init__(
        self,
        store: Store,
        backend: Backend,
        settings: Settings,
        *,
        wait_s: float = WAIT_FOR_OTHER_S,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        local: LocalLauncher | None = None,
    ) -> None:
        self.store = store
        self.backend = backend
        self.settings = settings
        self.wait_s = wait_s
        self.now = now
        self.local = local
        """Set when the engine's runs live in this store: a delivery and its launch commit together."""

    # -- shared ------------------------------------------------------------------------------------

    def require_source(self, service: str) -> None:
        """:class:`NotConfigured` unless ``service`` has a telemetry source in the services file;
        :class:`Unavailable` when that file cannot be used."""
        try:
            service_config(service, self.settings)
        except NoSourceConfigured:
            raise NotConfigured(
                f"service {service[:100]!r} has no telemetry source configured in the console "
                "(add it, with a prometheus or logs section, to CONSOLE_SERVICES_FILE); no run started"
            ) from None
        except TelemetryError as exc:
            raise Unavailable(f"the console's services file cannot be used: {one_line(exc)}") from None

    def _settled(self, kind: str, key: str, row: dict[str, Any]) -> dict[str, Any]:
        """The delivery's row once the request that claimed it has finished (or after ``wait_s``)."""
        deadline = time.monotonic() + self.wait_s
        while row.get("status") == "received" and time.monotonic() < deadline:
            time.sleep(0.05)
            row = self.store.deliveries.get(kind, key) or row
        return row

    def _duplicate(self, kind: str, key: str, row: dict[str, Any], **extra: Any) -> Outcome:
        row = self._settled(kind, key, row)
        status = row.get("status")
        why = "still being handled by another request" if status == "received" else f"already {status}"
        detail = row.get("detail") or {}
        return Outcome(
            DUPLICATE,
            key,
            execution_id=row.get("execution_id"),
            incident_id=detail.get("incident"),
            reason=f"this delivery was received before ({why}); nothing new started",
            **extra,
        )

    def _check_budget_in(self, conn: Connection, caller: str) -> None:
        """:class:`OverBudget` when ``caller`` already has ``intake_budget`` runs in progress."""
        budget = self.settings.intake_budget
        if self.store.executions.active_runs_in(conn, CALLER_LABEL, caller) >= budget:
            raise OverBudget(
                f"{caller[:80]} has {budget} runs in progress (its budget, CONSOLE_INTAKE_BUDGET): "
                "nothing was kept; send it again later"
            )

    def _launch_failed(self, exc: BackendError) -> InboundError:
        line = f"the engine could not start the run: {one_line(exc)}"
        return Unavailable(line) if isinstance(exc, BackendUnavailable) else Refused(line)

    # -- deployments ---------------------------------------------------------------------------------

    def announce(
        self,
        deployment: Mapping[str, Any],
        *,
        source: str,
        announced_by: str,
        labels: Mapping[str, str] | None = None,
        requester_source: str | None = None,
        caller_source: str | None = None,
    ) -> Outcome:
        """Start the loop on an announced deployment, once per service and deployment id.

        ``deployment`` is the loop's deployment (``id``, ``service``, ``version``,
        ``previous_version``, ``environment``, ``deployed_at``, ``deployed_by``; the deployer's
        record spellings ``by``/``at`` accepted); ``source`` who announced it (deployer, api,
        github, argocd, console); ``announced_by`` the authenticated person who delivered it (a
        token's person, a signed-in person): the requester when the deployment names nobody, and
        always one of the run's starters (its launcher: whoever announced a deployment never
        decides its rollback alone, whatever ``deployed_by`` claims). ``requester_source`` says how
        the requester is known (shown on the approval card; default: ``source``);
        ``caller_source`` how the caller was authenticated (default: ``requester_source``).
        Raises :class:`NotConfigured`, :class:`Unavailable` or :class:`Refused`."""
        dep = _deployment(deployment, self.now())
        if not dep["service"] or not dep["version"]:
            raise Refused("the deployment needs at least 'service' and 'version'")
        self.require_source(dep["service"])
        if not dep["deployed_by"] or is_system_name(dep["deployed_by"]):
            dep["deployed_by"] = announced_by
        key = f"{DEPLOYMENT}:{dep['service']}:{dep['id']}"
        detail = {"source": source, "service": dep["service"], "version": dep["version"], "by": announced_by}
        run_labels = {**dict(labels or {}), CALLER_LABEL: announced_by, "launched_by": announced_by}
        launch_source = caller_source or requester_source or source
        if self.local is not None:
            execution_id = self._announce_in_one_transaction(
                dep, key, detail, source, run_labels, (announced_by, launch_source)
            )
            if execution_id is None:
                return self._duplicate(
                    DEPLOYMENT, key, self.store.deliveries.get(DEPLOYMENT, key) or {}, deployment=dep
                )
        else:
            claim = self.store.deliveries.begin(DEPLOYMENT, key, detail=detail)
            if not claim.claimed:
                return self._duplicate(DEPLOYMENT, key, claim.row, deployment=dep)
            try:
                execution_id = self.backend.launch_deployment(
                    dep, triggered_by=dep["deployed_by"], source=source, labels=run_labels
                )
            except BackendError as exc:
                self.store.deliveries.finish(
                    DEPLOYMENT, key, status="failed", detail={"error": one_line(exc)}
                )
                raise self._launch_failed(exc) from None
            with self.store.db.write() as conn:
                self._launched_in(conn, DEPLOYMENT, key, execution_id, announced_by, launch_source)
        log.info(
            "deployment %s of %s announced by %s: run %s", dep["id"], dep["service"], source, execution_id
        )
        return Outcome(LAUNCHED, key, execution_id=execution_id, deployment=dep)

    def _announce_in_one_transaction(
        self,
        dep: dict[str, Any],
        key: str,
        detail: dict[str, Any],
        source: str,
        labels: dict[str, str],
        launcher: tuple[str, str],
    ) -> str | None:
        """Claim the delivery, check the caller's budget and create the run, together; the run
        starts once committed. ``launcher``: who launched it and how they are known. None when the
        delivery was claimed before (a duplicate)."""
        assert self.local is not None
        with self.store.db.write() as conn:
            claim = self.store.deliveries.begin_in(conn, DEPLOYMENT, key, detail=detail)
            if not claim.claimed:
                return None
            self._check_budget_in(conn, labels[CALLER_LABEL])
            try:
                execution_id = self.local.launch_deployment_in(
                    conn, dep, triggered_by=dep["deployed_by"], source=source, labels=labels
                )
            except BackendError as exc:
                raise self._launch_failed(exc) from None
            self._launched_in(conn, DEPLOYMENT, key, execution_id, *launcher)
        self.local.wake(execution_id)
        return execution_id

    def _launched_in(
        self,
        conn: Connection,
        kind: str,
        key: str,
        execution_id: str,
        launched_by: str,
        source: str,
        detail: dict[str, Any] | None = None,
    ) -> None:
        """The delivery finished with its run, and the console's record of its own launch."""
        self.store.deliveries.finish_in(
            conn, kind, key, status=LAUNCHED, execution_id=execution_id, detail=detail
        )
        self.store.launches.record_in(
            conn, execution_id, launched_by=launched_by, source=source, at=now_text()
        )

    def announce_payload(
        self,
        body: Any,
        *,
        announced_by: str,
        caller_source: str | None = None,
        github_event: str | None = None,
        delivery_id: str | None = None,
    ) -> Outcome:
        """A payload as it arrives (the console's shape, GitHub's ``deployment_status``, Argo CD's
        notification): parsed (:class:`~console.payloads.PayloadError` naming the field), then
        :meth:`announce`; a payload that announces nothing is ``ignored`` with the reason."""
        announcement = parse_announcement(
            body, now=self.now(), github_event=github_event, delivery_id=delivery_id
        )
        if announcement.deployment is None:
            return Outcome(IGNORED, announcement.delivery_key, reason=announcement.ignored)
        return self.announce(
            announcement.deployment,
            source=announcement.source,
            announced_by=announced_by,
            labels=announcement.labels,
            caller_source=caller_source,
        )

    # -- alerts --------------------------------------------------------------------------------------

    def mapping(self) -> AlertMapping:
        try:
            return AlertMapping.from_settings(self.settings)
        except AlertMappingError as exc:
            raise Unavailable(f"the alert label mapping cannot be used: {exc}") from None

    def parse_alerts(self, body: Any) -> AlertmanagerDelivery:
        """Check an Alertmanager delivery (:class:`~console.payloads.PayloadError` names the field)."""
        return parse_alertmanager(body, self.mapping(), now=self.now())

    def receive_alerts(
        self, body: Any, *, received_by: str = INCIDENT_SOURCE, caller_source: str | None = None
    ) -> list[Outcome]:
        """Each alert of an Alertmanager delivery (webhook v4): a firing one opens an incident and
        starts its run, or is attached to the open incident of its service and name; a resolved one
        marks its alert resolved (and the incident, when none of its alerts fires any more).
        ``received_by`` is the authenticated person who posted it (a token's person): the launcher
        of the runs it starts, so whoever posts an alert never decides its rollback alone;
        ``caller_source`` says how they were authenticated.
        Raises :class:`~console.payloads.PayloadError` for a malformed delivery, :class:`Unavailable`
        or :class:`Refused` when a run could not be started (nothing of that alert is kept: the
        sender's retry starts it). Past the delivery's cap or the caller's budget an alert is
        ``deferred`` (see the module's doc)."""
        delivery = self.parse_alerts(body)
        caller = (received_by, caller_source or INCIDENT_SOURCE)
        cap = self.settings.alerts_per_delivery
        outcomes: list[Outcome] = []
        taken = 0  # alerts this request handled anew
        over_budget: str | None = None  # once the caller is over its budget, the rest wait too
        for alert in delivery.alerts:
            if not alert.firing:
                outcomes.append(self._resolved(alert))
                continue
            held = over_budget or (
                f"more than {cap} new alerts in one delivery (CONSOLE_ALERTS_PER_DELIVERY): "
                "not handled now; Alertmanager sends it again"
                if taken >= cap
                else None
            )
            if held is not None and not self._seen(alert):
                outcomes.append(Outcome(DEFERRED, alert.delivery_key, reason=held, alert=self._about(alert)))
                continue
            try:
                outcome = self._firing(alert, caller)
            except OverBudget as exc:
                over_budget = str(exc)
                outcome = Outcome(DEFERRED, alert.delivery_key, reason=over_budget, alert=self._about(alert))
            taken += outcome.status in (LAUNCHED, ATTACHED)
            outcomes.append(outcome)
        return outcomes

    def _seen(self, alert: Alert) -> bool:
        """A delivery of this alert was received before and did not fail (a retry answers it)."""
        row = self.store.deliveries.get(ALERT, alert.delivery_key)
        return row is not None and row.get("status") != "failed"

    @staticmethod
    def _about(alert: Alert) -> dict[str, Any]:
        return {
            "fingerprint": alert.fingerprint,
            "alertname": alert.alertname,
            "service": alert.service,
            "severity": alert.severity.value,
            "starts_at": alert.starts_at,
            "alert_status": alert.status,
        }

    def _firing(self, alert: Alert, caller: tuple[str, str]) -> Outcome:
        about = self._about(alert)
        if alert.service is None:
            return Outcome(IGNORED, alert.delivery_key, reason="; ".join(alert.notes), alert=about)
        try:
            self.require_source(alert.service)
        except NotConfigured as exc:
            return Outcome(IGNORED, alert.delivery_key, reason=str(exc), alert=about, not_configured=True)
        key = alert.delivery_key
        if self.local is not None:
            return self._firing_in_one_transaction(alert, key, about, caller)
        with self.store.db.write() as conn:
            claim, incident, created = self._claim_and_open_in(conn, alert, key)
            if incident is not None and not created:
                self.store.deliveries.finish_in(
                    conn,
                    ALERT,
                    key,
                    status=ATTACHED,
                    execution_id=incident.get("execution_id"),
                    detail={"incident": incident["id"]},
                )
        if not claim.claimed:
            return self._duplicate(ALERT, key, claim.row, alert=about)
        if not created:
            execution_id = incident.get("execution_id") or self._incident_run(incident["id"])
            return self._attached(alert, key, incident, execution_id, about)
        return self._start_incident(alert, incident, key, about, caller)

    def _claim_and_open_in(
        self, conn: Connection, alert: Alert, key: str
    ) -> tuple[DeliveryClaim, dict[str, Any] | None, bool]:
        """Claim the alert's delivery and, when this request claimed it, open or attach its incident:
        (the claim, the incident or None for a duplicate, whether it was opened now)."""
        assert alert.service is not None
        claim = self.store.deliveries.begin_in(
            conn, ALERT, key, detail={"alertname": alert.alertname, "service": alert.service}
        )
        if not claim.claimed:
            return claim, None, False
        incident, created = self.store.incidents.open_or_attach_in(
            conn,
            service=alert.service,
            alert_key=alert.incident_key,
            fingerprint=alert.fingerprint,
            starts_at=alert.starts_at,
            severity=alert.severity,
            labels=alert.labels,
            annotations=alert.annotations,
            summary=alert.summary(),
        )
        return claim, incident, created

    def _firing_in_one_transaction(
        self, alert: Alert, key: str, about: dict[str, Any], caller: tuple[str, str]
    ) -> Outcome:
        """Claim the alert, open (or attach to) its incident and, for an incident with no run yet,
        check the caller's budget and create its run: one transaction, started once committed. An
        open incident left without a run (by a console of before) gets its run here."""
        assert self.local is not None and alert.service is not None
        received_by, caller_source = caller
        duplicate: dict[str, Any] | None = None
        with self.store.db.write() as conn:
            claim, incident, created = self._claim_and_open_in(conn, alert, key)
            if incident is None:
                duplicate = claim.row
            else:
                execution_id = incident.get("execution_id")
                if execution_id is None:
                    self._check_budget_in(conn, received_by)
                    suspect = self.store.deployments.suspect(
                        alert.service, alert.starts_at, self.settings.incident_lookback_s
                    )
                    try:
                        execution_id = self.local.launch_incident_in(
                            conn,
                            incident_of(alert, incident["id"], suspect),
                            triggered_by=INCIDENT_SOURCE,
                            labels={CALLER_LABEL: received_by, "launched_by": received_by},
                        )
                    except BackendError as exc:
                        raise self._launch_failed(exc) from None
                    self.store.incidents.set_execution_in(conn, incident["id"], execution_id)
                    self._launched_in(
                        conn, ALERT, key, execution_id, received_by, caller_source,
                        detail={"incident": incident["id"]},
                    )  # fmt: skip
                    self._incident_opened_in(conn, alert, incident["id"], execution_id, suspect)
                else:
                    self.store.deliveries.finish_in(
                        conn, ALERT, key, status=ATTACHED, execution_id=execution_id,
                        detail={"incident": incident["id"]},
                    )  # fmt: skip
        if duplicate is not None:
            return self._duplicate(ALERT, key, duplicate, alert=about)
        if created or incident.get("execution_id") is None:
            self.local.wake(execution_id)
            self._log_incident(alert, incident["id"], execution_id)
            return Outcome(LAUNCHED, key, execution_id=execution_id, incident_id=incident["id"], alert=about)
        return self._attached(alert, key, incident, execution_id, about)

    def _attached(
        self,
        alert: Alert,
        key: str,
        incident: dict[str, Any],
        execution_id: str | None,
        about: dict[str, Any],
    ) -> Outcome:
        return Outcome(
            ATTACHED,
            key,
            execution_id=execution_id,
            incident_id=incident["id"],
            reason=(
                f"incident {incident['id']} is open for {alert.service} / {alert.incident_key}: "
                "attached to it"
            ),
            alert=about,
        )

    def _incident_opened_in(
        self,
        conn: Connection,
        alert: Alert,
        incident_id: str,
        execution_id: str,
        suspect: dict[str, Any] | None,
    ) -> None:
        self.store.audit.record_in(
            conn,
            INCIDENT_SOURCE,
            "incident.opened",
            execution_id,
            {
                "incident": incident_id,
                "service": alert.service,
                "alertname": alert.alertname,
                "severity": alert.severity.value,
                "suspect_deployment": (suspect or {}).get("id"),
            },
        )

    @staticmethod
    def _log_incident(alert: Alert, incident_id: str, execution_id: str) -> None:
        log.info(
            "alert %s on %s (%s): incident %s, run %s",
            alert.alertname,
            alert.service,
            alert.severity.value,
            incident_id,
            execution_id,
        )

    def _incident_run(self, incident_id: str) -> str | None:
        """The run of an incident whose run another request is starting right now (briefly waited)."""
        deadline = time.monotonic() + self.wait_s
        while True:
            incident = self.store.incidents.get(incident_id) or {}
            if incident.get("execution_id") or incident.get("status") != "open":
                return incident.get("execution_id")
            if time.monotonic() >= deadline:
                return None
            time.sleep(0.05)

    def _start_incident(
        self, alert: Alert, incident: dict[str, Any], key: str, about: dict[str, Any], caller: tuple[str, str]
    ) -> Outcome:
        received_by, caller_source = caller
        assert alert.service is not None
        suspect = self.store.deployments.suspect(
            alert.service, alert.starts_at, self.settings.incident_lookback_s
        )
        document = incident_of(alert, incident["id"], suspect)
        try:
            execution_id = self.backend.launch_incident(
                document,
                triggered_by=INCIDENT_SOURCE,
                labels={CALLER_LABEL: received_by, "launched_by": received_by},
            )
        except BackendError as exc:
            with self.store.db.write() as conn:
                self.store.incidents.abandon_in(conn, incident["id"], one_line(exc))
                self.store.deliveries.finish_in(
                    conn, ALERT, key, status="failed", detail={"error": one_line(exc)}
                )
            raise self._launch_failed(exc) from None
        with self.store.db.write() as conn:
            self.store.incidents.set_execution_in(conn, incident["id"], execution_id)
            self._launched_in(
                conn,
                ALERT,
                key,
                execution_id,
                received_by,
                caller_source,
                detail={"incident": incident["id"]},
            )
            self._incident_opened_in(conn, alert, incident["id"], execution_id, suspect)
        self._log_incident(alert, incident["id"], execution_id)
        return Outcome(LAUNCHED, key, execution_id=execution_id, incident_id=incident["id"], alert=about)

    def _resolved(self, alert: Alert) -> Outcome:
        about = self._about(alert)
        if alert.service is None:
            return Outcome(IGNORED, alert.delivery_key, reason="; ".join(alert.notes), alert=about)
        key = alert.delivery_key
        incident: dict[str, Any] | None = None
        with self.store.db.write() as conn:
            claim = self.store.deliveries.begin_in(
                conn, ALERT_RESOLVED, key, detail={"alertname": alert.alertname, "service": alert.service}
            )
            if claim.claimed:
                incident = self.store.incidents.resolve_alert_in(
                    conn,
                    service=alert.service,
                    alert_key=alert.incident_key,
                    fingerprint=alert.fingerprint,
                    starts_at=alert.starts_at,
                    ends_at=alert.ends_at,
                )
                if incident is None:
                    self.store.deliveries.finish_in(
                        conn, ALERT_RESOLVED, key, status=IGNORED, detail={"reason": "no open incident"}
                    )
                else:
                    execution_id = incident.get("execution_id")
                    self.store.deliveries.finish_in(
                        conn,
                        ALERT_RESOLVED,
                        key,
                        status=RESOLVED,
                        execution_id=execution_id,
                        detail={"incident": incident["id"], "incident_status": incident["status"]},
                    )
                    if incident["status"] == "resolved":
                        self._incident_resolved_in(conn, incident)
        if not claim.claimed:
            return self._duplicate(ALERT_RESOLVED, key, claim.row, alert=about)
        if incident is None:
            return Outcome(
                IGNORED, key, reason="no open incident holds this alert (nothing to resolve)", alert=about
            )
        still = sum(1 for a in incident.get("alerts") or [] if a.get("status") == "firing")
        reason = (
            f"incident {incident['id']} resolved: none of its alerts fires any more"
            if incident["status"] == "resolved"
            else f"alert resolved; incident {incident['id']} stays open ({still} alert(s) still firing)"
        )
        return Outcome(
            RESOLVED,
            key,
            execution_id=incident.get("execution_id"),
            incident_id=incident["id"],
            reason=reason,
            alert=about,
        )

    def _incident_resolved_in(self, conn: Any, incident: dict[str, Any]) -> None:
        execution_id = incident.get("execution_id")
        when = incident.get("resolved_at") or now_text()
        self.store.audit.record_in(
            conn,
            INCIDENT_SOURCE,
            "incident.resolved",
            execution_id or incident["id"],
            {"incident": incident["id"], "service": incident["service"], "alertname": incident["alert_key"]},
        )
        if execution_id:
            self.store.deployments.update_in(
                conn,
                execution_id,
                note=f"incident {incident['id']} resolved at {when}: its alert(s) stopped firing",
            )


def _deployment(given: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The loop's deployment from an announcement or a deployer's record (``by``/``at`` and
    ``deployment_id`` spellings accepted); an id made from what it names when it has none."""

    def pick(*keys: str) -> str | None:
        for key in keys:
            value = given.get(key)
            if value is not None and not isinstance(value, bool | dict | list) and str(value).strip():
                return str(value).strip()
        return None

    service, version = pick("service"), pick("version")
    deployed_at = pick("deployed_at", "at") or format_time(now)
    return {
        "id": pick("id", "deployment_id") or f"{service}-{version}-{deployed_at}",
        "service": service,
        "version": version,
        "previous_version": pick("previous_version"),
        "environment": pick("environment"),
        "deployed_at": deployed_at,
        "deployed_by": pick("deployed_by", "by"),
    }
