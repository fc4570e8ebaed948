"""The protection service's records and the validation of what users ask for.

Bad input is refused here, at the edge, with :class:`Invalid` (HTTP 400),
:class:`Conflict` (409) or :class:`Unknown` (404), each naming what was
wrong.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from liferaft.errors import GiveUp

CONSISTENCY = ("ordered-quiesce", "crash-consistent")
METHODS = ("snapshot-backup", "image-copy", "storage-replication")
DEFAULT_POLICY = "default"
#: ORBIT's default group: a server or volume protected alone lands in a group of its own.
KINDS = ("server", "volume")


class Invalid(GiveUp):
    """A malformed request (HTTP 400)."""


class Conflict(GiveUp):
    """The request clashes with what exists (HTTP 409)."""


class Unknown(GiveUp):
    """Something the request names does not exist (HTTP 404)."""


@dataclass(frozen=True)
class Policy:
    name: str
    rpo_seconds: float
    interval_seconds: float
    retention_count: int
    retention_age_seconds: float
    consistency: str = "ordered-quiesce"
    method: str = "snapshot-backup"
    chain_length: int = 12
    updated_at: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_policy(p: Policy) -> Policy:
    """Refuse a malformed policy, naming every problem."""
    problems: list[str] = []
    if not p.name or len(p.name) > 100:
        problems.append("name must be 1 to 100 characters")
    if p.rpo_seconds <= 0:
        problems.append(f"rpo_seconds must be > 0, not {p.rpo_seconds}")
    if p.interval_seconds <= 0:
        problems.append(f"interval_seconds must be > 0, not {p.interval_seconds}")
    elif p.rpo_seconds > 0 and p.interval_seconds > p.rpo_seconds:
        problems.append(
            f"interval_seconds ({p.interval_seconds}) must not exceed rpo_seconds "
            f"({p.rpo_seconds}): checkpoints that far apart cannot meet the RPO"
        )
    if p.retention_count < 1:
        problems.append(f"retention_count must be >= 1, not {p.retention_count}")
    if p.retention_age_seconds <= 0:
        problems.append(f"retention_age_seconds must be > 0, not {p.retention_age_seconds}")
    if p.consistency not in CONSISTENCY:
        problems.append(
            f"consistency must be one of {', '.join(CONSISTENCY)}, not {p.consistency!r}"
        )
    if p.method not in METHODS:
        problems.append(f"method must be one of {', '.join(METHODS)}, not {p.method!r}")
    if p.chain_length < 1:
        problems.append(f"chain_length must be >= 1, not {p.chain_length}")
    if problems:
        raise Invalid(f"policy {p.name!r}: " + "; ".join(problems))
    return p


@dataclass(frozen=True)
class Member:
    site: str
    kind: str
    cloud_id: str
    name: str
    group_id: str
    quiesce_rank: int = 0
    tier: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Group:
    id: str
    name: str
    site: str
    recovery_site: str
    policy: str
    created_at: float
    servers: tuple[Member, ...] = ()
    volumes: tuple[Member, ...] = ()

    @property
    def quiesce_order(self) -> list[str]:
        """Server ids in the order they are quiesced (unquiesced in reverse)."""
        return [m.cloud_id for m in sorted(self.servers, key=lambda m: m.quiesce_rank)]

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if k not in ("servers", "volumes")}
        d["servers"] = [m.to_dict() for m in self.servers]
        d["volumes"] = [m.to_dict() for m in self.volumes]
        d["quiesce_order"] = self.quiesce_order
        return d


@dataclass(frozen=True)
class Checkpoint:
    id: str
    group_id: str
    state: str
    requested_at: float
    workflow_id: str
    chain_id: str
    captured_at: float | None = None
    completed_at: float | None = None
    parent_id: str | None = None
    consistency: str | None = None
    volumes: dict[str, Any] = field(default_factory=dict)
    manifest: dict[str, Any] | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_name(what: str, name: str) -> str:
    if not name or len(name) > 200 or name.strip() != name:
        raise Invalid(f"{what} name {name!r} must be 1 to 200 characters without outer spaces")
    return name
