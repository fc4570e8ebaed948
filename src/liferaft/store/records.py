"""Plain, immutable views of the store's rows, handed out by :class:`~liferaft.store.Store`.

Callers never hold SQLAlchemy objects, so nothing is lazily loaded after a
transaction ended and nothing is changed behind the store's back.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any, Final


class _Keep:
    def __repr__(self) -> str:
        return "KEEP"


#: Pass as a field's value to leave it unchanged.
KEEP: Final = _Keep()


@dataclass(frozen=True)
class Fence:
    """The fencing token every state change carries: who leads which role, under which epoch.

    The store accepts a write only if, in the same transaction, the lease of
    ``role`` still has this ``holder`` and ``epoch``.
    """

    role: str
    holder: str
    epoch: int


@dataclass(frozen=True)
class Lease:
    role: str
    holder: str
    epoch: int
    expires_at: float

    @property
    def fence(self) -> Fence:
        return Fence(self.role, self.holder, self.epoch)


@dataclass(frozen=True)
class Workflow:
    id: str
    kind: str
    state: str
    params: dict[str, Any]
    role: str
    created_at: float
    updated_at: float
    epoch: int
    error: str | None


@dataclass(frozen=True)
class Step:
    workflow_id: str
    name: str
    position: int
    state: str
    attempts: int
    depends_on: tuple[str, ...]
    site: str | None
    result: Any
    error: str | None
    retry_at: float | None
    updated_at: float
    epoch: int


@dataclass(frozen=True)
class StepChange:
    """One step transition for :meth:`~liferaft.store.Store.transition_steps`
    (fields left at ``KEEP`` are unchanged; ``attempts=None`` too)."""

    name: str
    to: str
    allowed_from: Collection[str]
    attempts: int | None = None
    result: Any = KEEP
    error: str | _Keep | None = KEEP
    retry_at: float | _Keep | None = KEEP
    detail: dict[str, Any] | None = None


@dataclass(frozen=True)
class NewStep:
    """A step to record when a workflow is created."""

    name: str
    depends_on: tuple[str, ...] = ()
    site: str | None = None


@dataclass(frozen=True)
class Event:
    id: int
    workflow_id: str | None
    step: str | None
    #: ``workflow``, ``step`` or ``note``.
    subject: str
    from_state: str | None
    to_state: str | None
    at: float
    epoch: int
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Resource:
    id: int
    run_id: str
    step_id: str
    kind: str
    key: str
    cloud_id: str
    site: str | None
    created_at: float
    epoch: int
