"""SQLite storage: every SQL statement of the project lives in this package (checked by
tests/test_layering.py). Use :class:`Store`; see :mod:`console.storage.store` for its parts."""

from console.storage.database import (
    Connection,
    FaultState,
    StoreBusy,
    StoreFault,
    StoreFull,
    dumps,
    loads,
)
from console.storage.inbound import DeliveryClaim
from console.storage.migrations import SchemaTooNew
from console.storage.read_models import DashboardKpis, learning_fields
from console.storage.store import Store

__all__ = [
    "Connection",
    "DashboardKpis",
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
