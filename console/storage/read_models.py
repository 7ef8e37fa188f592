"""The read models the pages show, the same on both engines: deployments (with the decision and
the snapshot their decision saw, as documents), their actions, the dashboard's KPIs and service
health, outcome records and the Learning rows, and the Kestra mirror's state.

The embedded engine fills them as its tasks finish; on Kestra the mirror fills them from the
executions it reads (both through :mod:`console.engines.projection`). The pages only read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from console.domain.models import Verdict, format_time, now_text
from console.domain.vocabulary import DeploymentStatus
from console.storage.approvals import ApprovalStore
from console.storage.codec import pack, put_large_in
from console.storage.database import Connection, dumps, loads


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


class ReadModelStore(ApprovalStore):
    """Deployments, actions, KPIs, service health, outcomes, learning rows, the Kestra mirror's state."""

    # -- deployments: writes inside the caller's transaction ------------------------------------

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
    def update_deployment_in(cls, conn: Connection, execution_id: str, **values: Any) -> None:
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
    def deployment_ref_in(conn: Connection, execution_id: str) -> tuple[str, str] | None:
        """(deployment id, service) of the execution's deployment."""
        row = conn.execute(
            "SELECT id, service FROM deployments WHERE execution_id = ?", (execution_id,)
        ).fetchone()
        return (row["id"], row["service"]) if row else None

    @staticmethod
    def deployment_versions_in(conn: Connection, execution_id: str) -> tuple[str, str | None] | None:
        """(version, previous version) of the execution's deployment."""
        row = conn.execute(
            "SELECT version, previous_version FROM deployments WHERE execution_id = ?", (execution_id,)
        ).fetchone()
        return (row["version"], row["previous_version"]) if row else None

    @staticmethod
    def deployment_source_in(conn: Connection, execution_id: str) -> tuple[str | None, str | None] | None:
        """(source, scenario) of the execution's deployment."""
        row = conn.execute(
            "SELECT source, scenario FROM deployments WHERE execution_id = ?", (execution_id,)
        ).fetchone()
        return (row["source"], row["scenario"]) if row else None

    @staticmethod
    def update_action_rows_in(conn: Connection, execution_id: str, actions: list[dict[str, Any]]) -> None:
        """The first ``len(actions)`` actions of the execution (those that ran, in order) as they were
        settled later (verify reconciled an unknown result); skipped ones after them stay."""
        conn.executemany(
            "UPDATE actions SET status = ?, changed = ?, label = ?, detail = ?, finished_at = ?, result = ? "
            "WHERE execution_id = ? AND seq = ?",
            [
                (
                    str(a.get("status") or "?"),
                    int(bool(a.get("changed"))),
                    a.get("label"),
                    a.get("detail"),
                    a.get("finished_at"),
                    dumps(a.get("result") or {}),
                    execution_id,
                    seq,
                )
                for seq, a in enumerate(actions)
            ],
        )

    @staticmethod
    def replace_actions_in(conn: Connection, execution_id: str, actions: list[dict[str, Any]]) -> None:
        """The execution's actions as they ran (or were skipped), in order, replacing any earlier
        projection of them. Each item: name, risk, mode, status, simulated, changed, executor,
        label, detail, started_at, finished_at, and the whole result."""
        conn.execute("DELETE FROM actions WHERE execution_id = ?", (execution_id,))
        conn.executemany(
            "INSERT INTO actions (execution_id, seq, name, risk, mode, status, simulated, changed, executor, "
            "label, detail, started_at, finished_at, result) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    execution_id,
                    seq,
                    str(a.get("name") or "?"),
                    a.get("risk"),
                    str(a.get("mode") or "?"),
                    str(a.get("status") or "?"),
                    int(bool(a.get("simulated"))),
                    int(bool(a.get("changed"))),
                    a.get("executor"),
                    a.get("label"),
                    a.get("detail"),
                    a.get("started_at"),
                    a.get("finished_at"),
                    dumps(a.get("result") or {}),
                )
                for seq, a in enumerate(actions)
            ],
        )

    # -- deployments: reads ---------------------------------------------------------------------------

    def list_deployments(
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
        rows = self.conn.execute(
            f"{DEPLOYMENT_ROWS}{clause} ORDER BY d.created_at DESC LIMIT ? OFFSET ?",
            [*args, limit, offset],
        )
        return [_deployment(r) for r in rows]

    def get_deployment(self, deployment_id: str) -> dict[str, Any] | None:
        row = self.conn.execute(f"{DEPLOYMENT_ROWS} WHERE d.id = ?", (deployment_id,)).fetchone()
        return _deployment(row) if row else None

    def deployment_for_execution(self, execution_id: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            f"{DEPLOYMENT_ROWS} WHERE d.execution_id = ?",
            (execution_id,),
        ).fetchone()
        return _deployment(row) if row else None

    def latest_decisions(self, limit: int = 10) -> list[dict[str, Any]]:
        """The newest deployments that have a verdict (the dashboard's "latest decisions")."""
        rows = self.conn.execute(
            f"{DEPLOYMENT_ROWS} WHERE d.verdict IS NOT NULL ORDER BY d.created_at DESC LIMIT ?",
            (limit,),
        )
        return [_deployment(r) for r in rows]

    def service_health(self) -> list[dict[str, Any]]:
        """Per service: its latest deployment's version, verdict and status, and its launch count."""
        rows = self.conn.execute(
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
        with self.read() as conn:
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

    # -- outcomes ---------------------------------------------------------------------------------

    def save_outcome_in(
        self,
        conn: Connection,
        execution_id: str,
        deployment_id: str | None,
        record: dict[str, Any],
        recorded_at: str | None = None,
    ) -> None:
        conn.execute(
            "INSERT OR REPLACE INTO outcomes (execution_id, deployment_id, record, recorded_at, learning, "
            "effect) VALUES (?, ?, ?, ?, ?, ?)",
            (
                execution_id,
                deployment_id,
                dumps(put_large_in(conn, "outcome", pack(conn, record))),
                recorded_at or now_text(),
                dumps(learning_fields(record)),
                dumps(effect_fields(record)),
            ),
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
                record = self.unpack(loads(row["record"], {}), conn)
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
        """What action effectiveness (console/loop/effectiveness.py) reads of the outcome records
        with a conclusive measured outcome, in the record's shape but only those fields, each with
        ``times``: how many records have exactly these fields. The small ``effect`` column written
        with each record makes identical ones identical text, so SQL groups them (100k records:
        about 60 ms instead of 900 ms decoding each); a record of before that column is read whole."""
        out = []
        with self.read() as conn:
            grouped = conn.execute(
                "SELECT effect, COUNT(*) FROM outcomes WHERE effect IS NOT NULL "
                "AND json_extract(effect, '$[1]') IN (?, ?) GROUP BY effect",
                CONCLUSIVE,
            ).fetchall()
            out.extend(effect_record(loads(effect, None), times=times) for effect, times in grouped)
            for (record,) in conn.execute("SELECT record FROM outcomes WHERE effect IS NULL"):
                fields = effect_fields(self.unpack(loads(record, {}), conn))
                if fields[1] in CONCLUSIVE:
                    out.append(effect_record(fields))
        return out

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

    def outcome_provenance(self) -> tuple[int, int]:
        """(recorded outcomes, those of simulated runs): a scenario's actions are simulated and its
        outcome measured on a recorded segment, so Learning says how much of it is that."""
        row = self.conn.execute(
            "SELECT COUNT(*), COALESCE(SUM(d.simulated), 0) FROM outcomes o "
            "LEFT JOIN deployments d ON d.execution_id = o.execution_id"
        ).fetchone()
        return int(row[0]), int(row[1])

    # -- what a deployment's decision saw and what its actions did -------------------------------

    def deployment_decision(self, deployment: dict[str, Any]) -> dict[str, Any] | None:
        """The decision document of a deployment row (None before the analysis)."""
        ref = deployment.get("decision_ref")
        return self.document(ref) if ref else None

    def deployment_snapshot(self, deployment: dict[str, Any]) -> dict[str, Any] | None:
        """The snapshot the deployment's decision saw (None before ``collect``)."""
        ref = deployment.get("snapshot_ref")
        return self.document(ref) if ref else None

    def snapshot_for_execution(self, execution_id: str) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT snapshot_ref FROM deployments WHERE execution_id = ?", (execution_id,)
        ).fetchone()
        return self.document(row["snapshot_ref"]) if row and row["snapshot_ref"] else None

    def deployment_actions(self, execution_id: str) -> list[dict[str, Any]]:
        """The execution's actions in order: as they ran, or why they were skipped."""
        rows = self.conn.execute(
            "SELECT * FROM actions WHERE execution_id = ? ORDER BY seq", (execution_id,)
        ).fetchall()
        return [
            {**dict(r), "simulated": bool(r["simulated"]), "changed": bool(r["changed"]),
             "result": loads(r["result"], {})}
            for r in rows
        ]  # fmt: skip

    def deployed_services(self) -> list[str]:
        """Services that have at least one deployment, by name (a loose index scan: one seek per
        service instead of SELECT DISTINCT over every deployment)."""
        rows = self.conn.execute(
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

    # -- the Kestra mirror's state ------------------------------------------------------------------

    def mirror_state(self, source: str) -> dict[str, Any]:
        row = self.conn.execute("SELECT * FROM mirror_state WHERE source = ?", (source,)).fetchone()
        return dict(row) if row else {"source": source, "cursor": None, "last_attempt": None,
                                      "last_success": None, "last_error": None}  # fmt: skip

    def save_mirror_state(
        self, source: str, *, cursor: str | None = None, success: bool, error: str | None = None
    ) -> None:
        """Record a sync attempt (and move the cursor when given)."""
        now = now_text()
        with self.write() as conn:
            conn.execute(
                "INSERT INTO mirror_state (source, cursor, last_attempt, last_success, last_error) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (source) DO UPDATE SET "
                "cursor = COALESCE(excluded.cursor, mirror_state.cursor), "
                "last_attempt = excluded.last_attempt, "
                "last_success = COALESCE(excluded.last_success, mirror_state.last_success), "
                "last_error = excluded.last_error",
                (source, cursor, now, now if success else None, error),
            )

    def mirrored_fingerprints(self, execution_ids: list[str]) -> dict[str, str]:
        """The fingerprint each of these executions had when it was last mirrored."""
        if not execution_ids:
            return {}
        marks = ",".join("?" * len(execution_ids))
        rows = self.conn.execute(
            f"SELECT execution_id, fingerprint FROM mirrored_executions WHERE execution_id IN ({marks})",  # noqa: S608
            execution_ids,
        )
        return {r[0]: r[1] for r in rows}

    def open_mirrored_ids(self, terminal: tuple[str, ...], limit: int = 200) -> list[str]:
        """Mirrored executions not finished when last seen (to look at again), oldest first."""
        marks = ",".join("?" * len(terminal))
        rows = self.conn.execute(
            f"SELECT execution_id FROM mirrored_executions WHERE gone = 0 AND state NOT IN ({marks}) "  # noqa: S608
            "ORDER BY start_date LIMIT ?",
            (*terminal, limit),
        )
        return [r[0] for r in rows]

    @staticmethod
    def mark_mirrored_in(
        conn: Connection,
        execution_id: str,
        *,
        flow_id: str,
        state: str,
        fingerprint: str,
        start_date: str | None,
        gone: bool = False,
    ) -> None:
        conn.execute(
            "INSERT INTO mirrored_executions (execution_id, flow_id, state, fingerprint, start_date, "
            "synced_at, gone) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (execution_id) DO UPDATE SET "
            "state = excluded.state, fingerprint = excluded.fingerprint, synced_at = excluded.synced_at, "
            "gone = excluded.gone",
            (execution_id, flow_id, state, fingerprint, start_date, now_text(), int(gone)),
        )


def _column_value(value: Any) -> Any:
    """A projected value as SQLite stores it (enums by value, JSON objects as text, bools as 0/1)."""
    if isinstance(value, DeploymentStatus):
        return value.value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dict | list):
        return dumps(value)
    return value


def _deployment(row: Any) -> dict[str, Any]:
    data = dict(row)
    if "simulated" in data:
        data["simulated"] = bool(data["simulated"])
    if data.get("expected_match") is not None:
        data["expected_match"] = bool(data["expected_match"])
    return data


def effect_fields(record: dict[str, Any]) -> list[Any]:
    """The fields of an outcome record action effectiveness reads, kept compact beside it:
    ``[category, measured status, simulated, [[action, status, simulated, dry run], ...], evidence]``
    where ``evidence`` (the decision's log patterns, guards and metrics) is kept only for a record
    without its root-cause category (:func:`effect_record` gives them back in the record's shape)."""
    executed = record.get("executed") if isinstance(record.get("executed"), list) else []
    measured = record.get("measured") if isinstance(record.get("measured"), dict) else {}
    outcome = record.get("outcome") if isinstance(record.get("outcome"), dict) else {}
    decision = record.get("decision") if isinstance(record.get("decision"), dict) else {}
    category = outcome.get("category")
    return [
        category,
        measured.get("status"),
        outcome.get("simulated"),
        [
            [a.get("name"), a.get("status"), a.get("simulated"), a.get("dry_run")]
            for a in executed
            if isinstance(a, dict)
        ],
        None if category else {k: decision.get(k) for k in ("log_patterns", "guards", "metrics")},
    ]


CONCLUSIVE = ("resolved", "not_resolved")
"""Measured statuses that count for effectiveness."""


def effect_record(fields: list[Any], times: int = 1) -> dict[str, Any]:
    """The effect fields back in an outcome record's shape; ``times``: how many records they stand for."""
    category, measured, simulated, actions, evidence = fields
    return {
        "times": times,
        "executed": [
            {"name": name, "status": status, "simulated": sim, "dry_run": dry}
            for name, status, sim, dry in actions
        ],
        "measured": {"status": measured},
        "outcome": {"category": category, "simulated": simulated},
        "decision": evidence or {},
    }


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
