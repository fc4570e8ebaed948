"""The state store: SQLAlchemy tables, Alembic migrations and the :class:`Store` API."""

from liferaft.store import ha as _ha_tables  # noqa: F401  (their tables in Base.metadata)
from liferaft.store import protection as _protection_tables  # noqa: F401  (their tables in Base.metadata)
from liferaft.store.db import sqlite_url
from liferaft.store.migrate import upgrade
from liferaft.store.records import (
    Event,
    Fence,
    Lease,
    NewStep,
    Resource,
    Step,
    StepChange,
    Workflow,
)
from liferaft.store.store import KEEP, Store

__all__ = [
    "KEEP",
    "Event",
    "Fence",
    "Lease",
    "NewStep",
    "Resource",
    "Step",
    "StepChange",
    "Store",
    "Workflow",
    "sqlite_url",
    "upgrade",
]
