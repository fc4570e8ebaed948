"""The host-HA service's table (Alembic branch ``ha``, revision ``0200``) and its queries.

``ha_hosts`` holds each monitored compute host's lifecycle: ``active``,
``recovering`` (a recovery workflow runs), ``recovered`` (fenced and
evacuated, waiting for repair), ``rejoining``, ``fence_failed``; whether an
operator put it in maintenance (no recovery while set); whether a reserved
host is still in the reserved pool; and its incarnation, which names its
next recovery workflow so a restarted controller does not submit a second
one for the same failure.  Times come from the injected clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Boolean, Float, Integer, String, Text, insert, select, update
from sqlalchemy.orm import Mapped, mapped_column

from liferaft.store.models import Base
from liferaft.store.records import Fence
from liferaft.store.store import Store

#: Host lifecycle states.
HOST_STATES = ("active", "recovering", "recovered", "fence_failed", "rejoining")


class HaHostRow(Base):
    """One compute host watched by host HA."""

    __tablename__ = "ha_hosts"

    site: Mapped[str] = mapped_column(String(100), primary_key=True)
    host: Mapped[str] = mapped_column(String(255), primary_key=True)
    segment: Mapped[str] = mapped_column(String(100))
    state: Mapped[str] = mapped_column(String(32))
    maintenance: Mapped[bool] = mapped_column(Boolean)
    #: A reserved host still held for recovery (False once one recovery used it).
    in_pool: Mapped[bool] = mapped_column(Boolean)
    #: Bumped when a recovered host rejoins; names the next recovery workflow.
    incarnation: Mapped[int] = mapped_column(Integer)
    workflow_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    updated_at: Mapped[float] = mapped_column(Float)


@dataclass(frozen=True)
class HaHost:
    site: str
    host: str
    segment: str
    state: str
    maintenance: bool
    in_pool: bool
    incarnation: int
    workflow_id: str | None
    reason: str | None
    updated_at: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "host": self.host,
            "segment": self.segment,
            "state": self.state,
            "maintenance": self.maintenance,
            "in_pool": self.in_pool,
            "incarnation": self.incarnation,
            "workflow_id": self.workflow_id,
            "reason": self.reason,
            "updated_at": self.updated_at,
        }


def _host(r: Any) -> HaHost:
    return HaHost(
        r.site,
        r.host,
        r.segment,
        r.state,
        bool(r.maintenance),
        bool(r.in_pool),
        int(r.incarnation),
        r.workflow_id,
        r.reason,
        float(r.updated_at),
    )


def list_hosts(store: Store, *, site: str | None = None) -> list[HaHost]:
    q = select(HaHostRow).order_by(HaHostRow.site, HaHostRow.host)
    if site is not None:
        q = q.where(HaHostRow.site == site)
    with store._read() as conn:
        return [_host(r) for r in conn.execute(q)]


def get_host(store: Store, site: str, host: str) -> HaHost | None:
    q = select(HaHostRow).where(HaHostRow.site == site, HaHostRow.host == host)
    with store._read() as conn:
        r = conn.execute(q).one_or_none()
    return None if r is None else _host(r)


def ensure_host(
    store: Store, *, site: str, host: str, segment: str, reserved: bool, now: float
) -> HaHost:
    """The host's row, made (``active``, in the pool if reserved) when first seen."""
    with store._write() as conn:
        q = select(HaHostRow).where(HaHostRow.site == site, HaHostRow.host == host)
        r = conn.execute(q).one_or_none()
        if r is None:
            conn.execute(
                insert(HaHostRow).values(
                    site=site,
                    host=host,
                    segment=segment,
                    state="active",
                    maintenance=False,
                    in_pool=reserved,
                    incarnation=0,
                    workflow_id=None,
                    reason=None,
                    updated_at=now,
                )
            )
            r = conn.execute(q).one()
        elif r.segment != segment:
            conn.execute(
                update(HaHostRow)
                .where(HaHostRow.site == site, HaHostRow.host == host)
                .values(segment=segment, updated_at=now)
            )
            r = conn.execute(q).one()
        return _host(r)


def update_host(
    store: Store,
    fence: Fence | None,
    *,
    site: str,
    host: str,
    now: float,
    expect_state: tuple[str, ...] | None = None,
    **values: Any,
) -> HaHost | None:
    """Change a host's row (under the leader's fence when given); ``None`` if
    ``expect_state`` is given and the host is in none of those states."""
    bad = set(values) - {"state", "maintenance", "in_pool", "incarnation", "workflow_id", "reason"}
    if bad:
        raise ValueError(f"update_host: unknown fields {sorted(bad)}")
    if "state" in values and values["state"] not in HOST_STATES:
        raise ValueError(f"update_host: unknown state {values['state']!r}")
    with store._write() as conn:
        if fence is not None:
            store._check_fence(conn, fence)
        where = [HaHostRow.site == site, HaHostRow.host == host]
        if expect_state is not None:
            where.append(HaHostRow.state.in_(expect_state))
        res = conn.execute(update(HaHostRow).where(*where).values(updated_at=now, **values))
        if res.rowcount != 1:
            return None
        r = conn.execute(
            select(HaHostRow).where(HaHostRow.site == site, HaHostRow.host == host)
        ).one()
        return _host(r)


__all__ = [
    "HOST_STATES",
    "HaHost",
    "HaHostRow",
    "ensure_host",
    "get_host",
    "list_hosts",
    "update_host",
]
