"""The console's store: one SQLite file behind one object.

:class:`Store` puts the parts of the package together; each part owns the SQL of one concern:

- :mod:`~console.storage.database`: connections, write and read transactions, the JSON codec;
  :mod:`~console.storage.migrations`: the versioned schema.
- :mod:`~console.storage.executions`: executions, task runs, logs, artifacts (the embedded engine's).
- :mod:`~console.storage.approvals` and :mod:`~console.storage.audit`: approvals, votes, the trail.
- :mod:`~console.storage.read_models`: deployments, KPIs, outcomes, learning rows, metric points.
- :mod:`~console.storage.stories`: an execution's story (timeline and postmortem material).
- :mod:`~console.storage.scenario_reads`: the Scenarios page's reads (latest run per scenario,
  actions on a live service in a time window).
- :mod:`~console.storage.notifications`: the notifications outbox (cursor, messages, deliveries).
- :mod:`~console.storage.inbound`: webhook deliveries (idempotency) and incidents with their alerts.
- :mod:`~console.storage.queue`: the run queue (runs due or waiting, with wake-up time and priority).
- :mod:`~console.storage.identity`: failed sign-ins and password sessions.
- :mod:`~console.storage.revisions`: the revision history (events per service and version).

Methods named ``*_in`` run inside the caller's transaction (``with store.write() as conn``), so
the caller decides what commits together; the others open their own.
"""

from __future__ import annotations

from console.storage.executions import ExecutionStore
from console.storage.identity import IdentityStore
from console.storage.inbound import InboundStore
from console.storage.notifications import NotificationStore
from console.storage.queue import QueueStore
from console.storage.revisions import RevisionStore
from console.storage.scenario_reads import ScenarioReadStore
from console.storage.stories import StoryStore


class Store(
    ExecutionStore,
    NotificationStore,
    StoryStore,
    ScenarioReadStore,
    InboundStore,
    IdentityStore,
    RevisionStore,
    QueueStore,
):
    """Thread-safe access to the console's SQLite file (every part of the package, one object)."""
