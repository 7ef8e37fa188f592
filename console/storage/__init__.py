"""SQLite storage: every SQL statement of the project lives in this package (checked by
tests/test_layering.py). Use :class:`Store` and its repositories (``store.approvals``,
``store.deployments``, ...); see :mod:`console.storage.store` for the parts."""

from console.storage.database import (
    Connection,
    Database,
    FaultState,
    StoreBusy,
    StoreFault,
    StoreFull,
    dumps,
    loads,
)
from console.storage.deliveries import DeliveryClaim
from console.storage.deployments import DashboardKpis
from console.storage.migrations import SchemaTooNew
from console.storage.outcomes import learning_fields
from console.storage.store import Store

__all__ = [
    "Connection",
    "DashboardKpis",
    "Database",
    "DeliveryClaim",
    "FaultState",
    "SchemaTooNew",
    "Store",
    "StoreBusy",
    "StoreFault",
    "StoreFull",
    "dumps",
    "learning_fields",
    "loads",
]
