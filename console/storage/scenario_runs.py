"""The runs launched on demo scenarios, as the Scenarios page reads them: the latest run of each
scenario (its card and the scoreboard, so both survive a reload) and the past scenario runs."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from console.storage.database import Database
from console.storage.deployments import deployment_row

SCENARIO_SOURCE = "scenario"
"""``deployments.source`` of a run launched on a demo scenario."""

_LATEST = "SELECT * FROM deployments WHERE scenario = ? AND source = ? ORDER BY created_at DESC LIMIT 1"
_LATEST_DECIDED = (
    "SELECT * FROM deployments WHERE scenario = ? AND source = ? AND expected_match IS NOT NULL "
    "ORDER BY created_at DESC LIMIT 1"
)


class ScenarioRuns:
    """Deployment rows of scenario runs (one indexed seek per scenario, not a scan of every deployment)."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def latest(self, scenarios: Iterable[str], *, decided: bool = False) -> dict[str, dict[str, Any]]:
        """Scenario id -> its newest run's deployment row (scenarios never run are absent).
        ``decided``: the newest run that has compared its verdict with the scenario's expected one
        (``expected_match`` set), for the scoreboard."""
        sql = _LATEST_DECIDED if decided else _LATEST
        out: dict[str, dict[str, Any]] = {}
        with self.db.read() as conn:
            for scenario in dict.fromkeys(scenarios):
                row = conn.execute(sql, (scenario, SCENARIO_SOURCE)).fetchone()
                if row is not None:
                    out[scenario] = deployment_row(row)
        return out

    def list(self, *, limit: int = 50) -> list[dict[str, Any]]:
        """Runs launched on demo scenarios, newest first."""
        rows = self.db.conn.execute(
            "SELECT * FROM deployments WHERE source = ? ORDER BY created_at DESC LIMIT ?",
            (SCENARIO_SOURCE, int(limit)),
        ).fetchall()
        return [deployment_row(r) for r in rows]
