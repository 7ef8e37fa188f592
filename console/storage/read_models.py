"""The read models the pages show: deployments, the dashboard's KPIs and service health, outcome
records and the Learning rows, and the metric points behind the charts.

The embedded engine fills them as its tasks finish (:mod:`console.engines.embedded.projection`);
the pages only read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from console.domain.models import format_time
from console.domain.vocabulary import DeploymentStatus
from console.storage.approvals import ApprovalStore
from console.storage.database import Connection, dumps, loads, now_text


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
    """Share of today's decided deployments whose actions ran without a human."""
    mean_time_to_decision_s: float | None
    """Mean time from a request for approval to its final decision, for approvals decided today."""
    failed_today: int
    verdicts_today: dict[str, int] = field(default_factory=dict)


class ReadModelStore(ApprovalStore):
    """Deployments, KPIs, service health, outcomes, learning rows and metric points."""

    # -- deployments: writes inside the caller's transaction ------------------------------------

    _DEPLOYMENT_FIELDS = frozenset(
        {
            "deployed_at",
            "verdict",
            "severity",
            "confidence",
            "analyzer",
            "summary",
            "approval",
            "status",
            "decided_at",
        }
    )
    """The columns the projection updates as an execution runs (never its identity or creation)."""

    @staticmethod
    def insert_deployment_in(
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
    ) -> None:
        now = now_text()
        conn.execute(
            "INSERT INTO deployments (id, ref, service, version, previous_version, environment, deployed_at, "
            "deployed_by, execution_id, scenario, status, created_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
                now,
                now,
            ),
        )

    @classmethod
    def update_deployment_in(cls, conn: Connection, execution_id: str, **values: Any) -> None:
        """Set some columns of the execution's deployment (``updated_at`` follows)."""
        unknown = set(values) - cls._DEPLOYMENT_FIELDS
        if unknown:
            raise ValueError(f"not deployment fields: {', '.join(sorted(unknown))}")
        names = sorted(values)
        assignments = ", ".join(f"{name} = ?" for name in [*names, "updated_at"])
        args = [values[n].value if isinstance(values[n], DeploymentStatus) else values[n] for n in names]
        conn.execute(
            f"UPDATE deployments SET {assignments} WHERE execution_id = ?",  # noqa: S608 - names checked above
            [*args, now_text(), execution_id],
        )

    @staticmethod
    def deployment_ref_in(conn: Connection, execution_id: str) -> tuple[str, str] | None:
        """(deployment id, service) of the execution's deployment."""
        row = conn.execute(
            "SELECT id, service FROM deployments WHERE execution_id = ?", (execution_id,)
        ).fetchone()
        return (row["id"], row["service"]) if row else None

    # -- deployments: reads ---------------------------------------------------------------------------

    def list_deployments(
        self, *, service: str | None = None, status: str | None = None, limit: int = 100, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Deployments with their loop status, newest launch first."""
        where: list[str] = []
        args: list[Any] = []
        if service:
            where.append("service = ?")
            args.append(service)
        if status:
            where.append("status = ?")
            args.append(status)
        clause = f" WHERE {' AND '.join(where)}" if where else ""
        rows = self.conn.execute(
            f"SELECT * FROM deployments{clause} ORDER BY created_at DESC LIMIT ? OFFSET ?",  # noqa: S608
            [*args, limit, offset],
        )
        return [dict(r) for r in rows]

    def get_deployment(self, deployment_id: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT * FROM deployments WHERE id = ?", (deployment_id,)).fetchone()
        return dict(row) if row else None

    def deployment_for_execution(self, execution_id: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT * FROM deployments WHERE execution_id = ?", (execution_id,)
        ).fetchone()
        return dict(row) if row else None

    def latest_decisions(self, limit: int = 10) -> list[dict[str, Any]]:
        """The newest deployments that have a verdict (the dashboard's "latest decisions")."""
        rows = self.conn.execute(
            "SELECT * FROM deployments WHERE verdict IS NOT NULL ORDER BY created_at DESC LIMIT ?", (limit,)
        )
        return [dict(r) for r in rows]

    def service_health(self) -> list[dict[str, Any]]:
        """Per service: its latest deployment's version, verdict and status, and its launch count."""
        rows = self.conn.execute(
            """
            SELECT d.service, d.version, d.verdict, d.severity, d.confidence, d.status, d.created_at,
                   d.execution_id, c.launches
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
        with self.read() as conn:
            executions = conn.execute(
                "SELECT COUNT(*), COALESCE(SUM(state = 'FAILED'), 0) FROM executions "
                "WHERE start_date >= ? AND start_date < ?",
                (day_start, day_end),
            ).fetchone()
            dep = conn.execute(
                """
                SELECT COUNT(*),
                       COALESCE(SUM(status = ?), 0),
                       COALESCE(SUM(status = ?), 0),
                       COALESCE(SUM(approval IN ('auto', 'not_required')), 0),
                       COALESCE(SUM(approval IN
                           ('auto', 'not_required', 'approved', 'rejected', 'expired')), 0)
                FROM deployments WHERE created_at >= ? AND created_at < ?
                """,
                (DeploymentStatus.ROLLED_BACK.value, DeploymentStatus.ESCALATED.value, day_start, day_end),
            ).fetchone()
            verdicts = conn.execute(
                "SELECT verdict, COUNT(*) FROM deployments WHERE created_at >= ? AND created_at < ? "
                "AND verdict IS NOT NULL GROUP BY verdict",
                (day_start, day_end),
            ).fetchall()
            pending = conn.execute("SELECT COUNT(*) FROM approvals WHERE status = 'pending'").fetchone()[0]
            mttd = conn.execute(
                "SELECT AVG((julianday(decided_at) - julianday(requested_at)) * 86400.0) FROM approvals "
                "WHERE decided_at >= ? AND decided_at < ? AND status IN ('approved', 'rejected', 'expired')",
                (day_start, day_end),
            ).fetchone()[0]
        decided = dep[4]
        return DashboardKpis(
            day=start.date().isoformat(),
            executions_today=executions[0],
            failed_today=executions[1],
            deployments_today=dep[0],
            rollbacks_today=dep[1],
            escalations_today=dep[2],
            pending_approvals=pending,
            auto_approved_share=(dep[3] / decided) if decided else None,
            mean_time_to_decision_s=float(mttd) if mttd is not None else None,
            verdicts_today={v: n for v, n in verdicts},
        )

    # -- outcomes ---------------------------------------------------------------------------------

    def save_outcome_in(
        self, conn: Connection, execution_id: str, deployment_id: str | None, record: dict[str, Any]
    ) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO outcomes (execution_id, deployment_id, record, recorded_at, learning) "
            "VALUES (?, ?, ?, ?, ?)",
            (execution_id, deployment_id, dumps(record), now_text(), dumps(learning_fields(record))),
        )

    def outcome_records(self, limit: int | None = None) -> list[dict[str, Any]]:
        """Outcome records, oldest first, with the approval part taken from the approvals table
        (the authoritative source for who decided) when the execution had one."""
        sql = (
            "SELECT o.execution_id, o.record, a.id AS approval_id, a.status AS a_status, a.comment "
            "AS a_comment "
            "FROM outcomes o LEFT JOIN approvals a ON a.execution_id = o.execution_id "
            "ORDER BY o.recorded_at, o.execution_id"
        )
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        out = []
        with self.read() as conn:
            for row in conn.execute(sql).fetchall():
                record = loads(row["record"], {})
                if row["approval_id"] is not None and row["a_status"] in ("approved", "rejected", "expired"):
                    votes = self.approval_votes(row["approval_id"], conn)
                    approval = dict(record.get("approval") or {})
                    approval["status"] = row["a_status"]
                    # who decided: the approving voters, the rejecting one, nobody for an expiry
                    approved = row["a_status"] == "approved"
                    approval["approvers"] = (
                        []
                        if row["a_status"] == "expired"
                        else [v["actor"] for v in votes if v["approved"] == approved]
                    )
                    approval["comment"] = (
                        row["a_comment"] if row["a_comment"] is not None else approval.get("comment")
                    )
                    record["approval"] = approval
                out.append(record)
        return out

    def effectiveness_rows(self) -> list[dict[str, Any]]:
        """What action effectiveness (console/loop/effectiveness.py) reads of each outcome record with
        a conclusive measured outcome, oldest first: the decision's log patterns, guards and metrics,
        the executed actions, the measurement and the outcome (not the whole record)."""
        with self.read() as conn:
            rows = conn.execute(
                "SELECT json_extract(record, '$.decision.log_patterns'), "
                "json_extract(record, '$.decision.guards'), json_extract(record, '$.decision.metrics'), "
                "json_extract(record, '$.executed'), json_extract(record, '$.measured'), "
                "json_extract(record, '$.outcome') FROM outcomes "
                "WHERE json_extract(record, '$.measured.status') IN ('resolved', 'not_resolved') "
                "ORDER BY recorded_at, execution_id"
            ).fetchall()
        return [
            {
                "decision": {
                    "log_patterns": loads(row[0], []),
                    "guards": loads(row[1], []),
                    "metrics": loads(row[2], {}),
                },
                "executed": loads(row[3], []),
                "measured": loads(row[4], {}),
                "outcome": loads(row[5], {}),
            }
            for row in rows
        ]

    def learning_rows(self, after: int = 0) -> list[tuple[str, int, str | None, str | None]]:
        """The few fields of each outcome the Learning page needs, oldest first:
        (execution id, seq, fields as JSON text, final approval status or None).

        ``fields`` is ``[verdict, confidence, actions, approval actions, approval status, held]``
        from the small ``learning`` column written with each record (:func:`learning_fields`), or
        extracted with ``json_extract`` for rows written before that column existed; the approval
        status comes from the approvals table when a human decided (it wins over the record).
        ``seq`` is the row's rowid: ``after`` reads only rows written after it (SQLite gives a
        replaced row a new rowid, so a re-recorded execution is read again too).
        """
        with self.read() as conn:
            return [tuple(row) for row in conn.execute(_LEARNING_SQL, (int(after),)).fetchall()]  # type: ignore[misc]

    # -- metric points ----------------------------------------------------------------------------

    def add_metric_points(
        self, service: str, deployment_id: str | None, metrics: dict[str, list[tuple[float, float]]]
    ) -> int:
        with self.write() as conn:
            return self.add_metric_points_in(conn, service, deployment_id, metrics)

    @staticmethod
    def add_metric_points_in(
        conn: Connection,
        service: str,
        deployment_id: str | None,
        metrics: dict[str, list[tuple[float, float]]],
    ) -> int:
        rows = [
            (service, name, float(ts), float(value), deployment_id)
            for name, points in metrics.items()
            for ts, value in points
        ]
        conn.executemany(
            "INSERT OR REPLACE INTO metric_points (service, metric, ts, value, deployment_id) "
            "VALUES (?, ?, ?, ?, ?)",
            rows,
        )
        return len(rows)

    # Both lists jump from one distinct value to the next through the primary key (a "loose index
    # scan", one seek per value) instead of SELECT DISTINCT, which without table statistics reads
    # every point: 645 ms for the services of 6M points, 8 ms per service for its metric names.

    def metric_names(self, service: str) -> list[str]:
        rows = self.conn.execute(
            """
            WITH RECURSIVE names(metric) AS (
                SELECT MIN(metric) FROM metric_points WHERE service = ?1
                UNION ALL
                SELECT (SELECT MIN(metric) FROM metric_points WHERE service = ?1 AND metric > names.metric)
                FROM names WHERE names.metric IS NOT NULL
            )
            SELECT metric FROM names WHERE metric IS NOT NULL
            """,
            (service,),
        )
        return [r[0] for r in rows]

    def metric_services(self) -> list[str]:
        rows = self.conn.execute(
            """
            WITH RECURSIVE services(service) AS (
                SELECT MIN(service) FROM metric_points
                UNION ALL
                SELECT (SELECT MIN(service) FROM metric_points WHERE service > services.service)
                FROM services WHERE services.service IS NOT NULL
            )
            SELECT service FROM services WHERE service IS NOT NULL
            """
        )
        return [r[0] for r in rows]

    def metric_series(
        self, service: str, metric: str, start: datetime, end: datetime, max_points: int = 500
    ) -> list[tuple[datetime, float]]:
        """One metric's points between start and end; averaged per time bucket in SQL when the range
        holds more than ``max_points`` points, so a chart never receives more than that."""
        t0, t1 = start.timestamp(), end.timestamp()
        max_points = max(1, int(max_points))
        with self.read() as conn:
            count = conn.execute(
                "SELECT COUNT(*) FROM metric_points WHERE service = ? AND metric = ? AND ts >= ? AND ts <= ?",
                (service, metric, t0, t1),
            ).fetchone()[0]
            if count <= max_points:
                rows = conn.execute(
                    "SELECT ts, value FROM metric_points WHERE service = ? AND metric = ? AND ts >= "
                    "? AND ts <= ? "
                    "ORDER BY ts",
                    (service, metric, t0, t1),
                ).fetchall()
            else:
                width = (t1 - t0) / max_points or 1.0
                rows = conn.execute(
                    "SELECT AVG(ts), AVG(value) FROM metric_points "
                    "WHERE service = ? AND metric = ? AND ts >= ? AND ts <= ? "
                    "GROUP BY MIN(CAST((ts - ?) / ? AS INTEGER), ?) ORDER BY 1",
                    (service, metric, t0, t1, t0, width, max_points - 1),
                ).fetchall()
        return [(datetime.fromtimestamp(r[0], UTC), float(r[1])) for r in rows]


def learning_fields(record: dict[str, Any]) -> list[Any]:
    """The few fields of an outcome record the Learning page reads, kept beside the record so the page
    never decodes whole records (~4 KB each): [verdict, confidence, actions, approval actions,
    approval status, held], actions as ``{"name": ...}`` like in the record."""
    decision = record.get("decision") if isinstance(record.get("decision"), dict) else {}
    plan = record.get("plan") if isinstance(record.get("plan"), dict) else {}
    approval = record.get("approval") if isinstance(record.get("approval"), dict) else {}
    outcome = record.get("outcome") if isinstance(record.get("outcome"), dict) else {}

    def names(items: Any) -> list[dict[str, str]]:
        if not isinstance(items, list):
            return []
        return [{"name": str(i["name"])} for i in items if isinstance(i, dict) and i.get("name")]

    return [
        decision.get("verdict"),
        decision.get("confidence"),
        names(decision.get("actions")),
        names(plan.get("approval")),
        approval.get("status"),
        outcome.get("held"),
    ]


_LEARNING_SQL = """
SELECT o.execution_id, o.rowid,
       COALESCE(o.learning,
                json_extract(o.record, '$.decision.verdict', '$.decision.confidence', '$.decision.actions',
                             '$.plan.approval', '$.approval.status', '$.outcome.held')) AS fields,
       CASE WHEN a.status IN ('approved', 'rejected', 'expired') THEN a.status END AS final_status
FROM outcomes o
LEFT JOIN approvals a ON a.execution_id = o.execution_id
WHERE o.rowid > ?
ORDER BY o.rowid
"""
