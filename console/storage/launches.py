"""Who started a run, as far as the console knows: the console's record of the runs it launched
itself (on an engine it does not own, Kestra, the only record of who clicked), and the starters of a
run read from everything that names one (the approval's requester, the deployment's deployer, that
record and the run's ``launched_by`` label). Who may vote given the starters is the approval
service's rule (:mod:`console.access.approvals`)."""

from __future__ import annotations

from typing import Any

from console.domain.names import requester_name, same_person
from console.storage.database import Connection, Database, loads

LAUNCH_LABEL_SOURCE = "launched_by label (unverified)"
"""Where a launcher named by the run's ``launched_by`` label comes from (whoever launched set it)."""


class Launches:
    """The console's own launches and the starters of a run."""

    def __init__(self, db: Database) -> None:
        self.db = db

    @staticmethod
    def record_in(conn: Connection, execution_id: str, *, launched_by: str, source: str, at: str) -> None:
        """Remember that the console launched this execution, as whom and how it knew (first
        record wins: a launch happens once)."""
        conn.execute(
            "INSERT OR IGNORE INTO console_launches (execution_id, launched_by, source, at) "
            "VALUES (?, ?, ?, ?)",
            (execution_id, requester_name(launched_by), source, at),
        )

    def get(self, execution_id: str) -> dict[str, Any] | None:
        """``{"launched_by", "source", "at"}`` when the console launched this execution, else None."""
        row = self.db.conn.execute(
            "SELECT launched_by, source, at FROM console_launches WHERE execution_id = ?", (execution_id,)
        ).fetchone()
        return dict(row) if row else None

    def starters(self, execution_id: str, conn: Connection | None = None) -> list[dict[str, Any]]:
        """Who started this run, as far as the console knows: its requester (the approval's
        ``requested_by``), its deployer (the deployment's ``deployed_by``) and its launcher (the
        console's record of its own launch, and the run's ``launched_by`` label when the engine's
        executions are stored here). One entry per person (names compared in canonical form):
        ``{"name", "roles": ["requester" | "deployer" | "launcher", ...], "sources": {role: where
        the name came from}}``, roles in that order (a launch the console recorded beats the label).
        The approval service decides who may vote from it."""
        c = conn or self.db.conn
        found: list[tuple[str, str, str]] = []
        approval = c.execute(
            "SELECT requested_by, requested_by_source FROM approvals WHERE execution_id = ? "
            "ORDER BY requested_at DESC LIMIT 1",
            (execution_id,),
        ).fetchone()
        if approval is not None and approval["requested_by"]:
            found.append((approval["requested_by"], "requester", approval["requested_by_source"] or ""))
        deployment = c.execute(
            "SELECT deployed_by, source FROM deployments WHERE execution_id = ?", (execution_id,)
        ).fetchone()
        if deployment is not None and deployment["deployed_by"]:
            found.append((deployment["deployed_by"], "deployer", _deployer_source(deployment["source"])))
        launch = c.execute(
            "SELECT launched_by, source FROM console_launches WHERE execution_id = ?", (execution_id,)
        ).fetchone()
        if launch is not None:
            found.append((launch["launched_by"], "launcher", launch["source"]))
        execution = c.execute("SELECT labels FROM executions WHERE id = ?", (execution_id,)).fetchone()
        label = loads(execution["labels"], {}).get("launched_by") if execution is not None else None
        if isinstance(label, str) and label.strip():
            found.append((label, "launcher", LAUNCH_LABEL_SOURCE))
        people: list[dict[str, Any]] = []
        for raw, role, source in found:
            name = requester_name(raw)
            person = next((p for p in people if same_person(p["name"], name)), None)
            if person is None:
                person = {"name": name, "roles": [], "sources": {}}
                people.append(person)
            if role not in person["roles"]:
                person["roles"].append(role)
            person["sources"].setdefault(role, source)
        return people


def _deployer_source(source: str | None) -> str:
    """Where a deployment's ``deployed_by`` came from, in words."""
    if source == "scenario":
        return "the scenario file"
    if source == "snapshot":
        return "the snapshot given as evidence"
    if source == "console":
        return "the console's own deploy"
    what = f"the deployment announcement ({source})" if source else "the deployment announcement"
    return f"claimed by {what}, not verified"
