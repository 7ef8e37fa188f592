"""The console's store: one SQLite file, one :class:`~console.storage.database.Database`, and one small
repository per concept over it, each owning the SQL of its tables.

``Store`` only puts them together; it holds no SQL and no rule (``store.deployments.list()``: the
deployments repository of this store):

========================  =================================================================
``store.db``              :class:`Database`: connections, ``write()`` / ``read()`` transactions,
                          faults (busy, disk full), WAL upkeep, the migrations
``store.documents``       large JSON documents stored once, compressed, referenced
``store.audit``           the append-only audit trail
``store.executions``      executions in Kestra's shape: rows, task runs, logs (the embedded engine's)
``store.queue``           the embedded engine's run queue
``store.approvals``       approval requests and votes
``store.launches``        the console's own launches and who started a run
``store.deployments``     deployment rows (the read model), KPIs, service health
``store.actions``         each run's actions as they ran
``store.outcomes``        outcome records, the Learning and effectiveness rows
``store.stories``         an execution's story (timeline and postmortem material)
``store.scenario_runs``   the runs launched on demo scenarios
``store.revisions``       the revision history (events per service and version)
``store.deliveries``      webhook deliveries (idempotency)
``store.incidents``       incidents with their alerts
``store.notifications``   the notifications outbox (cursor, messages, deliveries)
``store.mirror``          the Kestra mirror's cursor and fingerprints
``store.sign_in_failures``  failed sign-ins per person and address
``store.sessions``        password sessions and their one-time tickets
========================  =================================================================

What must commit together commits in one transaction of the caller's: methods named ``*_in`` take
the connection of ``with store.db.write() as conn`` and never open their own, so a caller writes to
several repositories at once (a delivery, its incident and its run; a vote and its audit row). The
other methods open their own transaction or read snapshot. A repository that always writes beside
another (an approval request and its audit row) is given that repository and calls its ``*_in``.
"""

from __future__ import annotations

from pathlib import Path

from console.storage.actions import Actions
from console.storage.approvals import Approvals
from console.storage.audit import Audit
from console.storage.database import Database
from console.storage.deliveries import Deliveries
from console.storage.deployments import Deployments
from console.storage.documents import Documents
from console.storage.executions import Executions
from console.storage.incidents import Incidents
from console.storage.launches import Launches
from console.storage.mirror import Mirror
from console.storage.notifications import Notifications
from console.storage.outcomes import Outcomes
from console.storage.queue import RunQueue
from console.storage.revisions import Revisions
from console.storage.scenario_runs import ScenarioRuns
from console.storage.sessions import Sessions
from console.storage.sign_in_failures import SignInFailures
from console.storage.stories import Stories


class Store:
    """The console's SQLite file (opened, migrated) and its repositories, all on one :class:`Database`."""

    def __init__(self, path: str | Path, *, busy_timeout_ms: int | None = None) -> None:
        self.db = Database(path, busy_timeout_ms=busy_timeout_ms)
        self.documents = Documents(self.db)
        self.audit = Audit(self.db)
        self.executions = Executions(self.db, self.documents)
        self.queue = RunQueue(self.db)
        self.approvals = Approvals(self.db, self.documents, self.audit)
        self.launches = Launches(self.db)
        self.deployments = Deployments(self.db, self.documents)
        self.actions = Actions(self.db)
        self.outcomes = Outcomes(self.db, self.documents, self.approvals)
        self.stories = Stories(self.db, self.documents, self.approvals, self.audit)
        self.scenario_runs = ScenarioRuns(self.db)
        self.revisions = Revisions(self.db)
        self.deliveries = Deliveries(self.db)
        self.incidents = Incidents(self.db)
        self.notifications = Notifications(self.db, self.approvals)
        self.mirror = Mirror(self.db)
        self.sign_in_failures = SignInFailures(self.db)
        self.sessions = Sessions(self.db)

    def close(self) -> None:
        """Close every connection of the file (the store is not used after)."""
        self.db.close()
