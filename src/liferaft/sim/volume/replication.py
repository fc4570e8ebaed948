"""Asynchronous storage replication of volumes to another site (OPNFV method 3).

A volume type replicates when its extra specs say so, as a Cinder
replication-capable backend's types do::

    replication_enabled                = "<is> True"
    liferaft_sim:replication_target    = "west"     # simulator-specific: the target site
    liferaft_sim:replication_interval  = "2"        # optional: seconds between two cycles

Every volume of such a type gets a **replica** on the target site's storage
backend: an unmanaged backend volume named ``replica-<volume id>`` (listed by
``GET /manageable_volumes`` there), which the target's Cinder can adopt with
manage-existing at failover.

The replication is asynchronous and runs in **cycles** on the world's clock:
each cycle (every ``replication_interval`` seconds, one transfer in flight at
a time) captures the blocks written since the previous cycle (the disk's
write sequences), sends them over the WAN link (``links.transfer``, tag
``replication``), and when they arrived applies them to the replica at once.
A replica is therefore always crash-consistent with the source at one
instant, its **last applied point**: the capture time of the newest cycle
applied.  Its **last applied write** is the write log's newest ``write`` to
the volume at that capture.  The **lag** is ``now - last applied point``: the
interval, plus the transfer time, plus any time the link was down or slow.

A transfer still in flight when the source site goes down never applies
(the data had not all left); while the source is down no cycle captures.
Once the replica is managed at the target, replication into it stops.

The replicas of one source site to one target at one interval form a
**stream** (a consistency group): one cycle captures them all at one instant
and applies them together, so a database's log and data replicas agree.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..disks import Disk
from ..http import ApiError, bad_request

if TYPE_CHECKING:
    from ..links import Flow
    from ..world import Site, World
    from .models import BackendVolume, Volume, VolumeType

SPEC_ENABLED = "replication_enabled"
SPEC_TARGET = "liferaft_sim:replication_target"
SPEC_INTERVAL = "liferaft_sim:replication_interval"
DEFAULT_INTERVAL = 2.0
TAG = "replication"


def is_enabled(vt: VolumeType) -> bool:
    """Cinder's ``replication_enabled='<is> True'`` (or a plain ``True``)."""
    raw = str(vt.extra_specs.get(SPEC_ENABLED, "")).strip().lower()
    return raw in ("<is> true", "true")


def check_type(site: Site, vt: VolumeType) -> tuple[str, float] | None:
    """The target site and interval of a replicated type; a 400 naming what is wrong."""
    if not is_enabled(vt):
        return None
    target = vt.extra_specs.get(SPEC_TARGET)
    sites = site.world.sites
    if not target or target not in sites or target == site.name:
        others = ", ".join(sorted(n for n in sites if n != site.name)) or "none"
        raise bad_request(
            f"Invalid volume type {vt.name}: {SPEC_ENABLED} needs {SPEC_TARGET} naming another "
            f"site (one of: {others}), got {target!r}."
        )
    try:
        interval = float(vt.extra_specs.get(SPEC_INTERVAL, DEFAULT_INTERVAL))
    except ValueError:
        interval = -1.0
    if not interval > 0:
        raise bad_request(
            f"Invalid volume type {vt.name}: {SPEC_INTERVAL} must be a number of seconds > 0, "
            f"got {vt.extra_specs.get(SPEC_INTERVAL)!r}."
        )
    try:
        site.world.links.between(site.name, target)
    except ApiError:
        raise bad_request(
            f"Invalid volume type {vt.name}: no WAN link between {site.name} and {target}."
        ) from None
    return target, interval


@dataclass(frozen=True)
class AppliedPoint:
    """The instant of the source a replica reflects, and the newest write it holds."""

    at: float
    disk_seq: int
    #: The write log's newest ``write`` entry to the volume at ``at`` (None: never written).
    write: dict[str, Any] | None

    def describe(self) -> dict[str, Any]:
        return {"at": self.at, "disk_seq": self.disk_seq, "write": self.write}


class Replica:
    """The replica of one source volume on its target site's backend."""

    def __init__(
        self,
        source: str,
        volume: Volume,
        target: str,
        backend: BackendVolume,
        interval: float,
        host: str,
    ) -> None:
        self.source = source
        self.host = host  # the target's Cinder backend that can manage the replica
        self.volume_id = volume.id
        self.target = target
        self.backend = backend
        self.interval = interval
        self.created_at = volume.created_at
        self.lineage = volume.lineage
        self.state = "syncing"  # syncing -> replicating; source-down; source-deleted; failed-over
        self.applied: AppliedPoint | None = None
        self.shipped_seq = 0
        self.in_flight: Flow | None = None
        self.bytes_sent = 0
        self.cycles = 0

    @property
    def name(self) -> str:
        return self.backend.name

    def describe(self, now: float) -> dict[str, Any]:
        since = self.applied.at if self.applied is not None else self.created_at
        return {
            "volume_id": self.volume_id,
            "source_site": self.source,
            "target_site": self.target,
            "state": self.state,
            "interval_s": self.interval,
            "replica": {
                "site": self.target,
                "host": self.host,
                "reference": {"source-name": self.backend.name},
                "size_gb": self.backend.size,
                "managed_as": self.backend.cinder_id,
            },
            "last_applied": None if self.applied is None else self.applied.describe(),
            "lag_s": max(0.0, now - since),
            "in_flight_bytes": 0 if self.in_flight is None else self.in_flight.nbytes,
            "bytes_sent": self.bytes_sent,
            "cycles": self.cycles,
            "now": now,
        }


class Stream:
    """The replicas of one source site to one target at one interval: a consistency group.

    One cycle captures every member at the same instant and applies them
    together, so the replicas of a stream agree on one point of the source's
    write history (as an array's consistency group does).
    """

    def __init__(self, source: str, target: str, interval: float) -> None:
        self.source = source
        self.target = target
        self.interval = interval
        self.members: list[Replica] = []
        self.in_flight: Flow | None = None
        self.running = False


class Replicator:
    """Every replica of a world, driven by clock events (no threads)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.replicas: dict[str, Replica] = {}  # source volume id -> replica
        self.streams: dict[tuple[str, str, float], Stream] = {}
        self._newest_write: dict[str, dict[str, Any]] = {}
        self._log_pos = 0

    # -- starting ----------------------------------------------------------------
    def start(self, site: Site, vol: Volume) -> Replica | None:
        """Replicate ``vol`` if its type says so (the type was checked by :func:`check_type`)."""
        got = check_type(site, vol.volume_type)
        if got is None:
            return None
        target, interval = got
        tvs = self.world.sites[target].volume
        name = f"replica-{vol.id}"
        disk = Disk(tvs.dir / "replicas" / f"{vol.id}.img", vol.disk.size, vol.disk.block_size)
        bv = tvs.register_backend_volume(name, disk, vol.size)
        bv.extra_info = {"replication_source": f"{site.name}/{vol.id}"}
        rep = Replica(site.name, vol, target, bv, interval, tvs.backend_host)
        self.replicas[vol.id] = rep
        key = (site.name, target, interval)
        stream = self.streams.get(key)
        if stream is None:
            stream = self.streams[key] = Stream(site.name, target, interval)
        stream.members.append(rep)
        if not stream.running:
            stream.running = True
            self.world.clock.call_later(0.0, lambda: self._cycle(stream))
        return rep

    # -- the cycles ----------------------------------------------------------------
    def _scan_log(self) -> None:
        """Bring the newest write per volume up to date (an incremental scan of the write log)."""
        log = self.world.writelog.entries
        for e in log[self._log_pos :]:
            if e.kind == "write" and e.volume is not None:
                self._newest_write[e.volume] = {
                    "log_seq": e.seq,
                    "time": e.time,
                    "seq": e.data.get("seq"),
                    "writer": e.data.get("writer"),
                    "block": e.data.get("block"),
                }
        self._log_pos = len(log)

    def _live(self, stream: Stream) -> list[tuple[Replica, Volume]]:
        """The members still replicating; a deleted source takes its replica with it."""
        src = self.world.sites[stream.source].volume
        tvs = self.world.sites[stream.target].volume
        live: list[tuple[Replica, Volume]] = []
        for rep in list(stream.members):
            if rep.backend.cinder_id is not None:
                rep.state = "failed-over"
                stream.members.remove(rep)
                continue
            vol = src.volumes.get(rep.volume_id)
            if vol is None:
                rep.state = "source-deleted"
                stream.members.remove(rep)
                if tvs.backend.get(rep.name) is rep.backend:
                    del tvs.backend[rep.name]
                    rep.backend.disk.delete()
                continue
            live.append((rep, vol))
        return live

    def _cycle(self, stream: Stream) -> None:
        live = self._live(stream)
        if not live:
            stream.running = False
            return
        clock = self.world.clock
        clock.call_later(stream.interval, lambda: self._cycle(stream))
        if self.world.sites[stream.source].faults.down:
            for rep, _vol in live:
                rep.state = "source-down"
            return
        if stream.in_flight is not None:
            return  # one transfer at a time: the lag grows while the link is slow
        self._scan_log()
        now = clock.now()
        shipment: list[tuple[Replica, AppliedPoint, list[tuple[int, bytes]]]] = []
        nbytes = 0
        for rep, vol in live:
            disk = vol.disk
            if disk.size > rep.backend.disk.size:
                rep.backend.disk.resize(disk.size)
                rep.backend.size = vol.size
            since = rep.shipped_seq if vol.lineage == rep.lineage else 0
            rep.lineage = vol.lineage
            blocks = disk.changed_since(since)
            point = AppliedPoint(now, disk.seq, self._newest_write.get(vol.id))
            rep.cycles += 1
            rep.shipped_seq = disk.seq
            shipment.append((rep, point, list(disk.iter_blocks(blocks))))
            rep.bytes_sent += len(blocks) * disk.block_size
            nbytes += len(blocks) * disk.block_size

        def arrived() -> None:
            stream.in_flight = None
            for rep, _point, _data in shipment:
                rep.in_flight = None
            if self.world.sites[stream.source].faults.down:
                return  # the source died before the cycle had all left: it never applies
            for rep, point, data in shipment:
                if rep.backend.cinder_id is not None:
                    continue  # failed over: the replica is a volume of the target now
                for i, chunk in data:
                    rep.backend.disk.write_block(i, chunk)
                rep.applied = point
                rep.state = "replicating"

        if nbytes == 0:
            arrived()  # nothing changed: the replicas are current as of now
            return
        stream.in_flight = self.world.links.transfer(
            stream.source, stream.target, nbytes, arrived, tag=TAG
        )
        for rep, _point, _data in shipment:
            rep.in_flight = stream.in_flight

    # -- views ---------------------------------------------------------------------
    def get(self, source: str, volume_id: str) -> Replica:
        rep = self.replicas.get(volume_id)
        if rep is None or rep.source != source:
            raise ApiError(
                404, f"volume {volume_id} of site {source} is not replicated (no replica known)"
            )
        return rep


_REGISTRIES: weakref.WeakKeyDictionary[World, Replicator] = weakref.WeakKeyDictionary()


def replicator(world: World) -> Replicator:
    """The world's replicator (made on first use, so ``World`` needs no field for it)."""
    rep = _REGISTRIES.get(world)
    if rep is None:
        rep = _REGISTRIES[world] = Replicator(world)
    return rep
