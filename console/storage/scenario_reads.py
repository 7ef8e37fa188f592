"""What the Scenarios page reads: the latest run of each demo scenario (its card and the scoreboard,
so both survive a reload), the past scenario runs, and the actions taken on a live service in a
time window (the markers of the Live section's charts)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from console.storage.read_models import ReadModelStore, _deployment

SCENARIO_SOURCE = "scenario"
"""``deployments.source`` of a run launched on a demo scenario."""

_LATEST = "SELECT * FROM deployments WHERE scenario = ? AND source = ? ORDER BY created_at DESC LIMIT 1"
_LATEST_DECIDED = (
    "SELECT * FROM deployments WHERE scenario = ? AND source = ? AND expected_match IS NOT NULL "
    "ORDER BY created_at DESC LIMIT 1"
)


class ScenarioReadStore(ReadModelStore):
    """Reads of the Scenarios page (one indexed seek per scenario, not a scan of every deployment)."""

    def latest_scenario_runs(
        self, scenarios: Iterable[str], *, decided: bool = False
    ) -> dict[str, dict[str, Any]]:
        """Scenario id -> its newest run's deployment row (scenarios never run are absent).
        ``decided``: the newest run that has compared its verdict with the scenario's expected one
        (``expected_match`` set), for the scoreboard."""
        sql = _LATEST_DECIDED if decided else _LATEST
        out: dict[str, dict[str, Any]] = {}
        with self.read() as conn:
            for scenario in dict.fromkeys(scenarios):
                row = conn.execute(sql, (scenario, SCENARIO_SOURCE)).fetchone()
                if row is not None:
                    out[scenario] = _deployment(row)
        return out

    def scenario_runs(self, *, limit: int = 50) -> list[dict[str, Any]]:
        """Runs launched on demo scenarios, newest first."""
        rows = self.conn.execute(
            "SELECT * FROM deployments WHERE source = ? ORDER BY created_at DESC LIMIT ?",
            (SCENARIO_SOURCE, int(limit)),
        ).fetchall()
        return [_deployment(r) for r in rows]

    def service_actions(self, service: str, *, since: str, launched_since: str) -> list[dict[str, Any]]:
        """The actions of ``service``'s runs that started at or after ``since`` (RFC 3339), oldest
        first, each with its run's execution id, version and previous version. Only runs created at
        or after ``launched_since`` are looked at (an action follows its run's launch: give a margin
        as long as an approval may wait)."""
        rows = self.conn.execute(
            "SELECT a.execution_id, a.seq, a.name, a.mode, a.status, a.simulated, a.changed, a.executor, "
            "a.label, a.detail, a.started_at, a.finished_at, d.version, d.previous_version "
            "FROM deployments d JOIN actions a ON a.execution_id = d.execution_id "
            "WHERE d.service = ? AND d.created_at >= ? AND a.started_at >= ? "
            "ORDER BY a.started_at, a.seq",
            (service, launched_since, since),
        ).fetchall()
        return [{**dict(r), "simulated": bool(r["simulated"]), "changed": bool(r["changed"])} for r in rows]
