"""The ReplicationMonitor port: how far behind is a volume's storage replica, and where is it?

The storage-replication method (OPNFV method 3) copies no data itself: the
storage replicates each volume asynchronously to the recovery site.  Liferaft
needs three facts from the storage, which OpenStack's APIs do not give (Cinder
shows only ``replication_status``):

* the replica's **reference** at the recovery site's backend -- what Cinder's
  manage-existing API adopts at failover (``{"source-name": ...}``) and the
  backend host that serves it;
* the **lag**: how far the replica is behind its source, held against the
  group's RPO target (an alert when beyond);
* the **last applied point**: the instant of the source the replica reflects
  and the newest write it holds -- the recovery point of a failover.

Drivers register in the ``liferaft.replication_monitors`` entry-point group:

* ``none`` (the default) -- no storage replication here: a policy with
  ``method: storage-replication`` is refused at protect time, saying so;
* ``simulator`` -- the simulator's replicated volume types, read at its
  control API (``GET /control/replication/{site}/{volume}``,
  ``protection.replication_monitor_url``), which stands for the storage
  array's own API.  Like the simulator verifier, it only reads.

Adapters for real storage (a Ceph RBD mirroring status, a NetApp SnapMirror
or Pure Storage replica API) implement :class:`ReplicationMonitor` the same
way: they must answer for the replica side while the protected site is down.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

import httpx

from liferaft.errors import GiveUp, RetryLater


class NotReplicated(GiveUp):
    """The volume has no storage replica (its type does not replicate)."""


@dataclass(frozen=True)
class ReplicaStatus:
    """What the storage reports about one volume's replica."""

    volume_id: str
    source_site: str
    target_site: str
    #: The replica's reference for Cinder's manage-existing (``{"source-name": ...}``).
    reference: dict[str, str]
    #: The recovery site's Cinder backend (``host@backend#pool``) that can manage it.
    host: str
    #: replicating, syncing, source-down, failed-over, ...  (the storage's word).
    state: str
    lag_s: float
    #: The source's instant the replica reflects (None: the initial copy has not landed).
    last_applied_at: float | None
    #: The newest write the replica holds, as the storage identifies it (None: none known).
    last_applied_write: dict[str, Any] | None
    size_gb: int
    #: The recovery site's volume id once the replica was managed (adopted), else None.
    managed_as: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ReplicationMonitor(Protocol):
    capabilities: frozenset[str]

    async def status(self, site: str, volume_id: str) -> ReplicaStatus:
        """The replica of ``volume_id`` of ``site``; :class:`NotReplicated` if it has none."""
        ...


class NoReplicationMonitor:
    """No storage replication configured: every volume is 'not replicated', saying why."""

    capabilities = frozenset({"replication-status"})

    def __init__(self, **_: object) -> None:
        pass

    async def status(self, site: str, volume_id: str) -> ReplicaStatus:
        raise NotReplicated(
            f"volume {volume_id} of {site}: no replication monitor is configured "
            f"(protection.replication_monitor), so storage replication cannot be used"
        )


class SimulatorReplicationMonitor:
    """The simulator's replicated volume types, read at its control API."""

    capabilities = frozenset({"replication-status"})

    def __init__(self, *, url: str | None = None, timeout: float = 10.0, **_: object) -> None:
        if not url:
            raise ValueError(
                "the simulator replication monitor needs protection.replication_monitor_url"
            )
        self.url = url.rstrip("/")
        self.timeout = timeout

    async def status(self, site: str, volume_id: str) -> ReplicaStatus:
        try:
            async with httpx.AsyncClient(timeout=self.timeout) as client:
                r = await client.get(f"{self.url}/control/replication/{site}/{volume_id}")
        except httpx.HTTPError as err:
            raise RetryLater(f"replication status of {site}/{volume_id}: {err}") from err
        if r.status_code == 404:
            raise NotReplicated(
                f"volume {volume_id} of {site} is not replicated by its storage "
                f"(its volume type has no replication_enabled='<is> True')"
            )
        if r.status_code != 200:
            raise RetryLater(
                f"replication status of {site}/{volume_id}: HTTP {r.status_code} {r.text[:200]}"
            )
        return parse_simulator(r.json()["replication"])


def parse_simulator(d: dict[str, Any]) -> ReplicaStatus:
    """The simulator's answer (``GET /control/replication/...``) as a :class:`ReplicaStatus`."""
    last = d.get("last_applied")
    replica = d["replica"]
    return ReplicaStatus(
        volume_id=d["volume_id"],
        source_site=d["source_site"],
        target_site=d["target_site"],
        reference={str(k): str(v) for k, v in replica["reference"].items()},
        host=str(replica["host"]),
        state=d["state"],
        lag_s=float(d["lag_s"]),
        last_applied_at=None if last is None else float(last["at"]),
        last_applied_write=None if last is None else last.get("write"),
        size_gb=int(replica["size_gb"]),
        managed_as=replica.get("managed_as"),
    )
