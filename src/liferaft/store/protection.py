"""The protection service's tables (Alembic branch ``protection``, revision ``0100``).

Policies, protection groups, the servers and volumes they protect,
checkpoints, recovery plans and recovery runs.  Times are floats from the
injected clock, like the engine's tables.  The models share the store's
declarative ``Base`` so one metadata describes the whole schema (the store's
contract test compares it with the migrations).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Float, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from liferaft.store.models import Base


class PolicyRow(Base):
    """A protection policy (RPO target, retention, consistency, replication method)."""

    __tablename__ = "protection_policies"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    rpo_seconds: Mapped[float] = mapped_column(Float)
    interval_seconds: Mapped[float] = mapped_column(Float)
    retention_count: Mapped[int] = mapped_column(Integer)
    retention_age_seconds: Mapped[float] = mapped_column(Float)
    consistency: Mapped[str] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(32))
    #: How many checkpoints an incremental chain holds before a new full backup.
    chain_length: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[float] = mapped_column(Float)


class GroupRow(Base):
    """A protection group: servers and volumes of one site protected together."""

    __tablename__ = "protection_groups"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    site: Mapped[str] = mapped_column(String(100))
    recovery_site: Mapped[str] = mapped_column(String(100))
    policy: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[float] = mapped_column(Float)


class MemberRow(Base):
    """A protected server or volume (in a group, or alone in ORBIT's default group)."""

    __tablename__ = "protected_resources"
    __table_args__ = (UniqueConstraint("site", "kind", "cloud_id", name="uq_protected_resource"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    site: Mapped[str] = mapped_column(String(100))
    #: ``server`` or ``volume``.
    kind: Mapped[str] = mapped_column(String(16))
    cloud_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(255))
    group_id: Mapped[str] = mapped_column(String(64), index=True)
    #: Servers: position in the quiesce order (unquiesce is the reverse); volumes: 0.
    quiesce_rank: Mapped[int] = mapped_column(Integer)
    #: Servers: boot tier at recovery (lower boots first).
    tier: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[float] = mapped_column(Float)


class CheckpointRow(Base):
    """One recovery point of a group."""

    __tablename__ = "checkpoints"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    group_id: Mapped[str] = mapped_column(String(64), index=True)
    #: ``pending`` → ``complete`` | ``failed``; ``complete`` → ``pruned``.
    state: Mapped[str] = mapped_column(String(16), index=True)
    requested_at: Mapped[float] = mapped_column(Float)
    captured_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    completed_at: Mapped[float | None] = mapped_column(Float, nullable=True)
    #: The checkpoint this one's backups are incremental on (None: full backups).
    parent_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    #: The full checkpoint that starts this one's incremental chain (itself when full).
    chain_id: Mapped[str] = mapped_column(String(64))
    consistency: Mapped[str | None] = mapped_column(String(32), nullable=True)
    #: Per volume id: ``{"backup_id", "snapshot_id", "incremental"}``.
    volumes: Mapped[dict[str, Any]] = mapped_column(JSON)
    #: ``{"site", "container", "object"}`` of the manifest at the recovery site.
    manifest: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    workflow_id: Mapped[str] = mapped_column(String(64))
    error: Mapped[str | None] = mapped_column(Text, nullable=True)


class PlanRow(Base):
    """A recovery plan: which groups recover where, in which priority tiers."""

    __tablename__ = "recovery_plans"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    protected_site: Mapped[str] = mapped_column(String(100))
    recovery_site: Mapped[str] = mapped_column(String(100))
    #: Group names by tier: ``[["db"], ["app", "lb"]]``; empty: every group of the site.
    tiers: Mapped[list[Any]] = mapped_column(JSON)
    updated_at: Mapped[float] = mapped_column(Float)


class RunRow(Base):
    """One execution of a recovery (disaster mode for now)."""

    __tablename__ = "recovery_runs"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    mode: Mapped[str] = mapped_column(String(16))
    protected_site: Mapped[str] = mapped_column(String(100))
    recovery_site: Mapped[str] = mapped_column(String(100))
    declared_down: Mapped[str | None] = mapped_column(String(100), nullable=True)
    requested_at: Mapped[float] = mapped_column(Float)
    workflow_id: Mapped[str] = mapped_column(String(64))


PROTECTION_TABLES = (
    PolicyRow.__table__,
    GroupRow.__table__,
    MemberRow.__table__,
    CheckpointRow.__table__,
    PlanRow.__table__,
    RunRow.__table__,
)
