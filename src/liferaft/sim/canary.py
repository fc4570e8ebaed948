"""Canary workloads: simulated applications that write self-describing blocks.

A :class:`Canary` is the application inside one server.  Driven by the
world's clock (no threads), it writes canary blocks (see
:mod:`liferaft.sim.canary_format`) to the server's attached volumes at a
steady ``rate`` while the guest runs (``site.compute.server_is_running``:
ACTIVE on a live host, not quiesced).  Quiesce pauses it; unquiesce, a
restart or a successful evacuation resumes it; a dead host or site stops it.

Every write goes three places: the volume's bytes (so any copy of the
volume tells its own freshness), the canary's history (the global write
sequence the consistency checker needs) and the world's write log
(``kind="write"`` with site, host, instance, volume, block, seq, writer),
which the benchmarks use to count double-running instances and to check
data-loss windows.

If compute reports that an evacuated server's old guest still runs on its
former host (an unfenced evacuation, ``ComputeState.ghost_running``), that
old copy keeps writing too, from the old host: the write log then shows the
same instance writing from two hosts at once, as it would in a real cloud.

Timing: writes are slots at ``start + k / rate``.  One clock event handles
every slot since the previous event; events run every ``1 / rate`` seconds
but never more often than :data:`MIN_TICK`, so a stepped hour at 10 writes/s
is 36,000 cheap events, and whether the guest runs is read at each event
(exact for rates up to ``1 / MIN_TICK``).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from .canary_check import HistoryWrite
from .canary_format import Role
from .canary_workload import DatabaseWorkload, PlannedWrite, SingleWorkload, Workload, write_canary
from .clock import Timer
from .http import ApiError

if TYPE_CHECKING:
    from .world import Site, World

#: The shortest interval between two clock events of one canary (seconds).
MIN_TICK = 0.05
MAX_RATE = 10_000.0

Kind = Literal["single", "database"]
Status = Literal["writing", "paused", "blocked", "stopped"]


@dataclass(frozen=True)
class CanarySpec:
    """What a canary was asked to do (validated by :meth:`CanaryRegistry.create`)."""

    site: str
    server_id: str
    volumes: tuple[str, ...]  # database: (log, data)
    kind: Kind
    rate: float  # transactions per simulated second (a database transaction is two writes)
    locality: float
    seed: int
    hot_blocks: int | None
    instance: str  # the workload's identity in the write log (default: the server id)


class Canary:
    """One running canary workload, driven by clock events."""

    def __init__(self, world: World, ident: str, spec: CanarySpec, workload: Workload) -> None:
        self.world = world
        self.id = ident
        self.spec = spec
        self.workload = workload
        self.roles: dict[str, Role] = (
            {spec.volumes[0]: "single"}
            if spec.kind == "single"
            else {spec.volumes[0]: "log", spec.volumes[1]: "data"}
        )
        self.history: list[HistoryWrite] = []
        self.seq = 0
        self.created_at = world.clock.now()
        self.status: Status = "writing"
        self.reason: str | None = None
        self._start = self.created_at
        self._period = max(1.0 / spec.rate, MIN_TICK)
        self._ticks = 0
        self._slots = 0  # write slots accounted for (written or skipped)
        self._timer: Timer | None = None

    @property
    def site(self) -> Site:
        return self.world.sites[self.spec.site]

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        self._schedule()

    def stop(self, reason: str = "deleted") -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.status, self.reason = "stopped", reason

    def _schedule(self) -> None:
        self._ticks += 1
        self._timer = self.world.clock.call_at(self._start + self._ticks * self._period, self._tick)

    # -- state of the guest --------------------------------------------------------
    def condition(self) -> tuple[Status, str | None]:
        """Whether the guest application can write right now, and why not."""
        if self.status == "stopped":
            return self.status, self.reason
        compute = self.site.compute
        server = compute.servers.get(self.spec.server_id)
        if server is None:
            return "stopped", f"server {self.spec.server_id} was deleted"
        for vid in self.spec.volumes:
            why = self._volume_problem(vid)
            if why is not None:
                return "blocked", why
        if not compute.server_is_running(self.spec.server_id):
            if server.quiesced:
                return "paused", "the guest is quiesced"
            return "paused", f"the server is not running (status {server.status})"
        if _storage_lost(compute, server.host):
            return "blocked", f"host {server.host} lost its storage network (volume I/O fails)"
        return "writing", None

    def _volume_problem(self, vid: str) -> str | None:
        vol = self.site.volume.volumes.get(vid)
        if vol is None:
            return f"volume {vid} was deleted"
        if not any(a.server_id == self.spec.server_id for a in vol.attachments):
            return f"volume {vid} is not attached to server {self.spec.server_id}"
        return None

    def _ghost_host(self) -> str | None:
        ghost: Callable[[str], str | None] | None = getattr(
            self.site.compute, "ghost_running", None
        )
        host = None if ghost is None else ghost(self.spec.server_id)
        return None if _storage_lost(self.site.compute, host) else host

    # -- writing ----------------------------------------------------------------------
    def _tick(self) -> None:
        now = self.world.clock.now()
        due = math.floor((now - self._start) * self.spec.rate + 1e-9)
        first, self._slots = self._slots + 1, max(self._slots, due)
        status, reason = self.condition()
        if status == "stopped":
            self.stop(reason or "stopped")
            return
        self._schedule()
        self.status, self.reason = status, reason
        writers: list[tuple[str, bool]] = []
        server = self.site.compute.servers[self.spec.server_id]
        if status == "writing" and server.host is not None:
            writers.append((server.host, False))
        ghost = self._ghost_host() if status != "blocked" else None
        if ghost is not None and ghost != server.host:
            writers.append((ghost, True))
        if not writers:
            return
        for slot in range(first, self._slots + 1):
            t = self._start + slot / self.spec.rate
            for host, is_ghost in writers:
                for w in self.workload.next_transaction():
                    self._write(w, t, host, is_ghost)

    def _write(self, w: PlannedWrite, t: float, host: str, ghost: bool) -> None:
        self.seq += 1
        disk = self.site.volume.volumes[w.volume].disk
        write_canary(
            disk, volume=w.volume, writer=self.id, role=w.role, block=w.block, seq=self.seq, time=t
        )
        self.history.append(HistoryWrite(self.seq, t, w.volume, w.block, w.role))
        extra: dict[str, Any] = {"ghost": True} if ghost else {}
        self.world.writelog.record(
            t,
            "write",
            self.spec.site,
            host=host,
            instance=self.spec.instance,
            volume=w.volume,
            block=w.block,
            seq=self.seq,
            writer=self.id,
            role=w.role,
            **extra,
        )

    # -- views ------------------------------------------------------------------------
    def describe(self) -> dict[str, Any]:
        status, reason = self.condition()
        last = self.history[-1] if self.history else None
        return {
            "id": self.id,
            "site": self.spec.site,
            "server_id": self.spec.server_id,
            "instance": self.spec.instance,
            "kind": self.spec.kind,
            "volumes": [{"id": v, "role": self.roles[v]} for v in self.spec.volumes],
            "rate": self.spec.rate,
            "locality": self.spec.locality,
            "seed": self.spec.seed,
            "hot_blocks": self.spec.hot_blocks,
            "status": status,
            "reason": reason,
            "writes": self.seq,
            "last_write": None if last is None else {"seq": last.seq, "time": last.time},
            "created_at": self.created_at,
        }

    def history_since(self, since: int = 0) -> list[HistoryWrite]:
        """Writes with ``seq > since`` (the history is in sequence order)."""
        return self.history[since:] if since >= 0 else list(self.history)


class CanaryRegistry:
    """Every canary of a world, by id."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.canaries: dict[str, Canary] = {}

    def create(self, body: Any) -> Canary:
        """Validate a ``POST /control/canaries`` body and start the canary."""
        spec = self._spec(body)
        site = self.world.sites[spec.site]
        blocks = [site.volume.volumes[v].disk.blocks for v in spec.volumes]
        workload: Workload
        if spec.kind == "single":
            workload = SingleWorkload(
                spec.volumes[0],
                blocks[0],
                locality=spec.locality,
                hot_blocks=spec.hot_blocks,
                seed=spec.seed,
            )
        else:
            workload = DatabaseWorkload(
                spec.volumes[0],
                blocks[0],
                spec.volumes[1],
                blocks[1],
                locality=spec.locality,
                hot_blocks=spec.hot_blocks,
                seed=spec.seed,
            )
        canary = Canary(self.world, site.new_id(), spec, workload)
        self.canaries[canary.id] = canary
        canary.start()
        return canary

    def _spec(self, body: Any) -> CanarySpec:
        if not isinstance(body, dict):
            raise ApiError(400, "a canary is a JSON object with 'site', 'server' and 'volumes'")
        site_name = body.get("site")
        if not isinstance(site_name, str) or site_name not in self.world.sites:
            raise ApiError(
                400,
                f"unknown site {site_name!r}; sites are {', '.join(sorted(self.world.sites))}",
            )
        site = self.world.sites[site_name]
        server_id = body.get("server", body.get("server_id"))
        if not isinstance(server_id, str) or not server_id:
            raise ApiError(400, "'server' must be the id of a server")
        server = site.compute.servers.get(server_id)
        if server is None:
            raise ApiError(404, f"server {server_id} not found at site {site_name}")
        kind = body.get("kind", "single")
        if kind not in ("single", "database"):
            raise ApiError(400, f"'kind' must be 'single' or 'database', got {kind!r}")
        volumes = body.get("volumes")
        want = 1 if kind == "single" else 2
        if (
            not isinstance(volumes, list)
            or len(volumes) != want
            or not all(isinstance(v, str) for v in volumes)
        ):
            shape = "[volume id]" if kind == "single" else "[log volume id, data volume id]"
            raise ApiError(400, f"a {kind} canary needs 'volumes': {shape}")
        if len(set(volumes)) != len(volumes):
            raise ApiError(400, "the log and the data must be on different volumes")
        for vid in volumes:
            vol = site.volume.volumes.get(vid)
            if vol is None:
                raise ApiError(404, f"volume {vid} not found at site {site_name}")
            if not any(a.server_id == server_id for a in vol.attachments):
                raise ApiError(
                    409, f"volume {vid} is not attached to server {server_id}; attach it first"
                )
        rate = _number(body, "rate", 1.0, lo=0.0, hi=MAX_RATE, exclusive_lo=True)
        locality = _number(body, "locality", 0.9, lo=0.0, hi=1.0)
        seed = body.get("seed", 0)
        if not isinstance(seed, int) or isinstance(seed, bool):
            raise ApiError(400, f"'seed' must be an integer, got {seed!r}")
        hot = body.get("hot_blocks")
        if hot is not None and (not isinstance(hot, int) or isinstance(hot, bool) or hot < 1):
            raise ApiError(400, f"'hot_blocks' must be a positive integer, got {hot!r}")
        instance = body.get("instance", server_id)
        if not isinstance(instance, str) or not instance:
            raise ApiError(400, "'instance' must be a non-empty string")
        return CanarySpec(
            site=site_name,
            server_id=server.id,
            volumes=tuple(volumes),
            kind=kind,
            rate=rate,
            locality=locality,
            seed=seed,
            hot_blocks=hot,
            instance=instance,
        )

    def get(self, ident: str) -> Canary:
        try:
            return self.canaries[ident]
        except KeyError:
            raise ApiError(404, f"canary {ident} not found") from None

    def delete(self, ident: str) -> Canary:
        canary = self.get(ident)
        canary.stop()
        del self.canaries[ident]
        return canary

    def of_server(self, site: str, server_id: str) -> list[Canary]:
        return [
            c
            for c in self.canaries.values()
            if c.spec.site == site and c.spec.server_id == server_id
        ]


def _number(
    body: dict[str, Any],
    key: str,
    default: float,
    *,
    lo: float,
    hi: float,
    exclusive_lo: bool = False,
) -> float:
    value = body.get(key, default)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or math.isnan(value):
        raise ApiError(400, f"'{key}' must be a number, got {value!r}")
    if value < lo or (exclusive_lo and value == lo) or value > hi:
        low = f"> {lo:g}" if exclusive_lo else f">= {lo:g}"
        raise ApiError(400, f"'{key}' must be {low} and <= {hi:g}, got {value}")
    return float(value)


def _storage_lost(compute: Any, host_name: str | None) -> bool:
    """The host lost its storage network (a host fault): its guests' volume I/O fails."""
    host = compute.hosts.get(host_name or "")
    return bool(getattr(host, "storage_lost", False))


_REGISTRIES: weakref.WeakKeyDictionary[World, CanaryRegistry] = weakref.WeakKeyDictionary()


def registry(world: World) -> CanaryRegistry:
    """The world's canaries (made on first use, so ``World`` needs no field for them)."""
    reg = _REGISTRIES.get(world)
    if reg is None:
        reg = _REGISTRIES[world] = CanaryRegistry(world)
    return reg
