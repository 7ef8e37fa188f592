"""Deployments as the pages read them, the same on both engines: one row per loop run (its service,
versions, verdict, approval, status; the decision and the snapshot its decision saw, as documents),
the dashboard's KPIs and service health, and the deployment an alert's incident is judged against.

The embedded engine fills them as its tasks finish; on Kestra the mirror fills them from the
executions it reads (both through :mod:`console.engines.projection`). The pages only read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from console.domain.models import Verdict, format_time, now_text, parse_time
from console.domain.vocabulary import DeploymentStatus
from console.storage.database import Connection, Database, dumps
from console.storage.documents import Documents


@dataclass
class DashboardKpis:
    """Inputs of the dashboard's KPI tiles for one day (UTC)."""

    day: str
    executions_today: int
    deployments_today: int
    rollbacks_today: int
    escalations_today: int
    pending_approvals: int
    auto_approved_share: float | None
    """Share of today's decided deployments that needed no human: their actions ran on their own
    (an ESCALATE, whatever ran, asks for a human; so does an approval)."""
    mean_human_wait_s: float | None
    """Mean time from a request for approval to its final decision, for approvals decided today."""
    failed_today: int
    verdicts_today: dict[str, int] = field(default_factory=dict)
    mean_loop_time_s: float | None = None
    """Mean time from the deploy (a scenario's or an incident's: the run's launch) to the loop's
    decision (the plan ran on its own, or asked for approval), for today's deployments."""


DEPLOYMENT_ROWS = (
    "SELECT d.*, i.id AS incident_id, i.status AS incident_status, i.severity AS incident_severity, "
    "i.alert_key AS incident_alert, i.resolved_at AS incident_resolved_at "
    "FROM deployments d LEFT JOIN incidents i ON i.id = "
    "(SELECT x.id FROM incidents x WHERE x.execution_id = d.execution_id ORDER BY x.opened_at DESC LIMIT 1)"
)
"""A deployment row as the pages read it: an incident run's row (flow ``incident-handler``) carries
its incident (``incident_id``, ``incident_status`` open / resolved / failed, ``incident_severity``,
``incident_alert``, ``incident_resolved_at``); these are None for a deployment's run."""


class Deployments:
    """Deployment rows (one per loop run), the dashboard's reads of them, their documents."""

    def __init__(self, db: Database, documents: Documents) -> None:
        self.db = db
        self.documents = documents

    _DEPLOYMENT_FIELDS = frozenset(
        {
            "deployed_at",
            "deployed_by",
            "previous_version",
            "environment",
            "verdict",
            "severity",
            "confidence",
            "analyzer",
            "approval",
            "status",
            "decided_at",
            "snapshot_ref",
            "decision_ref",
            "simulated",
            "running_version",
            "measured_status",
            "expected_match",
            "note",
        }
    )
    """The columns the projection updates as an execution runs (never its identity or creation)."""

    @staticmethod
    def insert_in(
        conn: Connection,
        *,
        deployment_id: str,
        ref: str,
        service: str,
        version: str,
        previous_version: str | None,
        environment: str,
        deployed_at: str,
        deployed_by: str,
        execution_id: str,
        scenario: str | None,
        status: DeploymentStatus,
        engine: str,
        source: str,
        expected_verdict: str | None = None,
        created_at: str | None = None,
    ) -> bool:
        """The execution's deployment row, unless it has one already; True when inserted."""
        now = now_text()
        return bool(
            conn.execute(
                "INSERT OR IGNORE INTO deployments (id, ref, service, version, previous_version, "
                "environment, deployed_at, deployed_by, execution_id, scenario, status, engine, source, "
                "expected_verdict, running_version, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    deployment_id,
                    ref,
                    service,
                    version,
                    previous_version,
                    environment,
                    deployed_at,
                    deployed_by,
                    execution_id,
                    scenario,
                    status.value,
                    engine,
                    source,
                    expected_verdict,
                    version,
                    created_at or now,
                    now,
                ),
            ).rowcount
        )

    @classmethod
    def update_in(cls, conn: Connection, execution_id: str, **values: Any) -> None:
        """Set some columns of the execution's deployment (``updated_at`` follows)."""
        unknown = set(values) - cls._DEPLOYMENT_FIELDS
        if unknown:
            raise ValueError(f"not deployment fields: {', '.join(sorted(unknown))}")
        names = sorted(values)
        assignments = ", ".join(f"{name} = ?" for name in [*names, "updated_at"])
        args = [_column_value(values[n]) for n in names]
        conn.execute(
            f"UPDATE deployments SET {assignments} WHERE execution_id = ?",  # noqa: S608 - names checked above
            [*args, now_text(), execution_id],
        )

    @staticmethod
    def ref_in(conn: Connection, execution_id: str) -> tuple[str, str] | None:
        """(deployment id, service) of the execution's deployment."""
        row = conn.execute(
            "SELECT id, service FROM deployments WHERE execution_id = ?", (execution_id,)
        ).fetchone()
        return (row["id"], row["service"]) if row else None

    @staticmethod
    def versions_in(conn: Connection, execution_id: str) -> tuple[str, str | None] | None:
        """(version, previous version) of the execution's deployment."""
        row = conn.execute(
            "SELECT version, previous_version FROM deployments WHERE execution_id = ?", (execution_id,)
        ).fetchone()
        return (row["version"], row["previous_version"]) if row else None

    @staticmethod
    def source_in(conn: Connection, execution_id: str) -> tuple[str | None, str | None] | None:
        """(source, scenario) of the execution's deployment."""
        row = conn.execute(
            "SELECT source, scenario FROM deployments WHERE execution_id = ?", (execution_id,)
        ).fetchone()
        return (row["source"], row["scenario"]) if row else None

    def list(
        self, *, service: str | None = None, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Deployments with their loop status, newest launch first (an incident run's row with its
        incident: :data:`DEPLOYMENT_ROWS`)."""
        where: list[str] = []
        args: list[Any] = []
        if service:
            where.append("d.service = ?")
            args.append(service)
        if status:
            where.append("d.status = ?")
            args.append(status)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self.db.conn.execute(
            f"{DEPLOYMENT_ROWS}{clause} ORDER BY d.created_at DESC LIMIT ? OFFSET ?",
            [*args, limit, offset],
        )
        return [deployment_row(r) for r in rows]

    def get(self, deployment_id: str) -> dict[str, Any] | None:
        row = self.db.conn.execute(f"{DEPLOYMENT_ROWS} WHERE d.id = ?", (deployment_id,)).fetchone()
        return deployment_row(row) if row else None

    def for_execution(self, execution_id: str) -> dict[str, Any] | None:
        row = self.db.conn.execute(
            f"{DEPLOYMENT_ROWS} WHERE d.execution_id = ?",
            (execution_id,),
        ).fetchone()
        return deployment_row(row) if row else None

    def latest_decisions(self, limit: int = 10) -> list[dict[str, Any]]:
        """The newest deployments that have a verdict (the dashboard's "latest decisions")."""
        rows = self.db.conn.execute(
            f"{DEPLOYMENT_ROWS} WHERE d.verdict IS NOT NULL ORDER BY d.created_at DESC LIMIT ?",
            (limit,),
        )
        return [deployment_row(r) for r in rows]

    def service_health(self) -> list[dict[str, Any]]:
        """Per service: its latest deployment's version, verdict and status, and its launch count."""
        rows = self.db.conn.execute(
            """
            SELECT d.service, d.version, d.previous_version, d.running_version, d.simulated, d.verdict,
                   d.severity, d.confidence, d.status, d.created_at, d.execution_id, c.launches
            FROM deployments d
            JOIN (SELECT service, MAX(created_at) AS latest, COUNT(*) AS launches
                  FROM deployments GROUP BY service) c
              ON c.service = d.service AND c.latest = d.created_at
            ORDER BY d.service
            """
        )
        seen: dict[str, dict[str, Any]] = {}
        for r in rows:
            seen.setdefault(r["service"], dict(r))
        return list(seen.values())

    def dashboard_kpis(self, now: datetime | None = None) -> DashboardKpis:
        now = now or datetime.now(UTC)
        start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        day_start, day_end = format_time(start), format_time(start + timedelta(days=1))
        with self.db.read() as conn:
            # From the deployments (one per loop run), not the executions table: on Kestra the
            # executions live in Kestra and only the read model is local. One pass over the day's
            # deployments, grouped by verdict (the counts add up over the groups).
            groups = conn.execute(
                """
                SELECT verdict,
                       COUNT(*),
                       COALESCE(SUM(status = ?), 0),
                       COALESCE(SUM(status = ?), 0),
                       COALESCE(SUM(status = ?), 0),
                       COALESCE(SUM(approval IN ('auto', 'not_required')), 0),
                       COALESCE(SUM(approval IN
                           ('auto', 'not_required', 'approved', 'rejected', 'expired')), 0)
                FROM deployments WHERE created_at >= ? AND created_at < ?
                GROUP BY verdict
                """,
                (
                    DeploymentStatus.FAILED.value,
                    DeploymentStatus.ROLLED_BACK.value,
                    DeploymentStatus.ESCALATED.value,
                    day_start,
                    day_end,
                ),
            ).fetchall()
            pending = conn.execute("SELECT COUNT(*) FROM approvals WHERE status = 'pending'").fetchone()[0]
            # "+status": the day's range on decided_at is the narrow index, not the status
            human = conn.execute(
                "SELECT AVG((julianday(decided_at) - julianday(requested_at)) * 86400.0) FROM approvals "
                "WHERE decided_at >= ? AND decided_at < ? AND +status IN ('approved', 'rejected', 'expired')",
                (day_start, day_end),
            ).fetchone()[0]
            # the loop's decision: when it asked for approval, else when its plan ran on its own; a
            # live deploy counts from the deploy, a scenario (its data recorded long before) or an
            # incident (the alert's window reaches back) from the run's launch
            loop = conn.execute(
                """
                SELECT AVG((julianday(decided) - julianday(started)) * 86400.0) FROM (
                    SELECT COALESCE((SELECT MIN(a.requested_at) FROM approvals a
                                     WHERE a.execution_id = d.execution_id),
                                    CASE WHEN d.approval IN ('auto', 'not_required') THEN d.decided_at END)
                               AS decided,
                           CASE WHEN d.scenario IS NULL AND d.deployed_at <= d.created_at
                                     AND NOT EXISTS (SELECT 1 FROM incidents i
                                                     WHERE i.execution_id = d.execution_id)
                                THEN d.deployed_at ELSE d.created_at END AS started
                    FROM deployments d WHERE d.created_at >= ? AND d.created_at < ?
                ) WHERE decided IS NOT NULL
                """,
                (day_start, day_end),
            ).fetchone()[0]
        totals = [sum(row[i] for row in groups) for i in range(1, 7)]
        deployments, failed, rollbacks, escalations, _, decided = totals
        # an ESCALATE asks for a human whatever ran on its own (notify_only, diagnostics)
        auto = sum(row[5] for row in groups if row[0] != Verdict.ESCALATE.value)
        return DashboardKpis(
            day=start.date().isoformat(),
            executions_today=deployments,
            failed_today=failed,
            deployments_today=deployments,
            rollbacks_today=rollbacks,
            escalations_today=escalations,
            pending_approvals=pending,
            auto_approved_share=(auto / decided) if decided else None,
            mean_human_wait_s=float(human) if human is not None else None,
            mean_loop_time_s=float(loop) if loop is not None else None,
            verdicts_today={row[0]: row[1] for row in groups if row[0] is not None},
        )

    def decision(self, deployment: dict[str, Any]) -> dict[str, Any] | None:
        """The decision document of a deployment row (None before the analysis)."""
        ref = deployment.get("decision_ref")
        return self.documents.get(ref) if ref else None

    def snapshot(self, deployment: dict[str, Any]) -> dict[str, Any] | None:
        """The snapshot the deployment's decision saw (None before ``collect``)."""
        ref = deployment.get("snapshot_ref")
        return self.documents.get(ref) if ref else None

    def snapshot_for_execution(self, execution_id: str) -> dict[str, Any] | None:
        row = self.db.conn.execute(
            "SELECT snapshot_ref FROM deployments WHERE execution_id = ?", (execution_id,)
        ).fetchone()
        return self.documents.get(row["snapshot_ref"]) if row and row["snapshot_ref"] else None

    def services(self) -> list[str]:
        """Services that have at least one deployment, by name (a loose index scan: one seek per
        service instead of SELECT DISTINCT over every deployment)."""
        rows = self.db.conn.execute(
            """
            WITH RECURSIVE services(service) AS (
                SELECT MIN(service) FROM deployments
                UNION ALL
                SELECT (SELECT MIN(service) FROM deployments WHERE service > services.service)
                FROM services WHERE services.service IS NOT NULL
            )
            SELECT service FROM services WHERE service IS NOT NULL
            """
        )
        return [r[0] for r in rows]

    SUSPECT_SOURCES_EXCLUDED = ("scenario", "snapshot", "alertmanager")
    """Rows that are not a real deployment of the service: demo scenarios, snapshots given as
    evidence, and incident runs themselves."""

    def suspect(
        self, service: str, starts_at: str, lookback_s: float, *, skew_s: float = 5.0
    ) -> dict[str, Any] | None:
        """The service's latest real deployment the read model knows, deployed in
        ``[starts_at - lookback_s, starts_at + skew_s]`` and still running (not rolled back):
        ``{"id", "version", "previous_version", "deployed_at", "deployed_by", "execution_id"}``,
        or None."""
        if lookback_s <= 0:
            return None
        start = parse_time(starts_at)
        rows = self.db.conn.execute(
            "SELECT ref, version, previous_version, deployed_at, deployed_by, running_version, "
            "execution_id, source, scenario FROM deployments WHERE service = ? "
            "ORDER BY created_at DESC LIMIT 20",
            (service,),
        ).fetchall()
        best: tuple[datetime, dict[str, Any]] | None = None
        for row in rows:
            if row["scenario"] or (row["source"] or "") in self.SUSPECT_SOURCES_EXCLUDED:
                continue
            try:
                at = parse_time(row["deployed_at"])
            except (TypeError, ValueError):
                continue
            if not start - timedelta(seconds=lookback_s) <= at <= start + timedelta(seconds=skew_s):
                continue
            if best is None or at > best[0]:
                best = (at, dict(row))
        if best is None:
            return None
        row = best[1]
        if row["running_version"] and row["running_version"] != row["version"]:
            return None  # rolled back since: what runs now is not that deploy
        return {
            "id": row["ref"] or None,
            "version": row["version"],
            "previous_version": row["previous_version"],
            "deployed_at": format_time(best[0]),
            "deployed_by": row["deployed_by"],
            "execution_id": row["execution_id"],
        }


def _column_value(value: Any) -> Any:
    """A projected value as SQLite stores it (enums by value, JSON objects as text, bools as 0/1)."""
    if isinstance(value, DeploymentStatus):
        return value.value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dict | list):
        return dumps(value)
    return value


def deployment_row(row: Any) -> dict[str, Any]:
    """A deployments row as the pages read it (flags as booleans)."""
    data = dict(row)
    if "simulated" in data:
        data["simulated"] = bool(data["simulated"])
    if data.get("expected_match") is not None:
        data["expected_match"] = bool(data["expected_match"])
    return data
