"""The state store's tables (SQLAlchemy 2.0 declarative models).

Times are floats (seconds since the Unix epoch) taken from the engine's
injected clock, never from the database server, so stepped-clock tests and
the simulator's clock see the same values.

Changing a model needs a new Alembic revision in ``migrations/versions``;
``tests/unit/store/test_migrations.py`` fails when they drift apart.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    pass


class WorkflowRow(Base):
    """One durable workflow (a checkpoint, a recovery run, an evacuation...)."""

    __tablename__ = "workflows"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(100), index=True)
    state: Mapped[str] = mapped_column(String(32), index=True)
    params: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: The leadership role whose leader drives this workflow.
    role: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[float] = mapped_column(Float)
    updated_at: Mapped[float] = mapped_column(Float)
    #: Epoch of the leader that last changed this workflow.
    epoch: Mapped[int] = mapped_column(BigInteger)
    #: Why it is paused / failed / cancelled (the last classified error).
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class StepRow(Base):
    """One named step of a workflow, with its latest attempt's outcome."""

    __tablename__ = "steps"

    workflow_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("workflows.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    #: Position in the workflow's definition (a topological order).
    position: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    depends_on: Mapped[list[str]] = mapped_column(JSON)
    site: Mapped[str | None] = mapped_column(String(100), nullable=True)
    result: Mapped[Any] = mapped_column(JSON, nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: When a step waiting to retry may run again.
    retry_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    updated_at: Mapped[float] = mapped_column(Float)
    epoch: Mapped[int] = mapped_column(BigInteger)


class EventRow(Base):
    """An append-only record of every transition; ``id`` only grows."""

    __tablename__ = "events"
    __table_args__ = (
        Index("ix_events_workflow_id_id", "workflow_id", "id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    workflow_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    step: Mapped[str | None] = mapped_column(String(200), nullable=True)
    #: ``workflow``, ``step`` or ``note``.
    subject: Mapped[str] = mapped_column(String(16))
    from_state: Mapped[str | None] = mapped_column(String(32), nullable=True)
    to_state: Mapped[str | None] = mapped_column(String(32), nullable=True)
    at: Mapped[float] = mapped_column(Float)
    epoch: Mapped[int] = mapped_column(BigInteger)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class LeaseRow(Base):
    """Who leads a role, under which epoch (fencing token), until when."""

    __tablename__ = "leases"

    role: Mapped[str] = mapped_column(String(100), primary_key=True)
    #: Empty when released.
    holder: Mapped[str] = mapped_column(String(200))
    epoch: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[float] = mapped_column(Float)


class ResourceRow(Base):
    """A cloud resource a workflow step created (the idempotency ledger)."""

    __tablename__ = "resources"
    __table_args__ = (
        UniqueConstraint("run_id", "step_id", "kind", "key", name="uq_resources_tag"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True
    )
    run_id: Mapped[str] = mapped_column(String(64), index=True)
    step_id: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(64))
    #: Distinguishes several resources of one kind made by one step.
    key: Mapped[str] = mapped_column(String(200))
    cloud_id: Mapped[str] = mapped_column(String(200))
    site: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[float] = mapped_column(Float)
    epoch: Mapped[int] = mapped_column(BigInteger)
