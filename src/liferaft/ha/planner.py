"""Which instances are evacuated, in which order, and to which host.

Pure functions over plain values, so they are tested without a cloud.

* **selection** (segment ``selection``): by image, flavor or metadata;
* **priority** (instance metadata ``ha_priority``, an integer, higher
  first) and **restart groups** (``ha_group``; a group named in another's
  ``ha_after`` is running before that one starts);
* **local disk**: an instance booted from an image keeps its root disk on
  the failed host unless the segment has shared storage; the segment's
  ``local_disk`` policy skips (and notifies) or evacuates it (rebuilt from
  its image: its data is lost);
* **targets** by recovery method (as Masakari defines them): ``auto`` --
  any usable segment host with room; ``reserved_host`` -- the segment's
  reserved hosts still in the pool, filled one after the other;
  ``auto_priority`` -- ``auto``, then reserved hosts for what did not fit;
  ``rh_priority`` -- reserved hosts, then ``auto``.  Room is Placement's
  free VCPU and MEMORY_MB minus what this plan already put there;
* **server-group policy**, as Nova's scheduler filters and weighers apply
  it: ``anti-affinity`` -- never more members on a host than
  ``max_server_per_host`` (1 by default), counting the members living
  elsewhere and those this plan already placed; ``affinity`` -- every
  member to the host where the group's other members run (or, if all were
  on the failed host, all to one host); ``soft-anti-affinity`` /
  ``soft-affinity`` -- among the hosts with room, the fewest / the most
  members first.  A target that breaks a hard policy would be refused by
  the compute API (the instance would end in ERROR): such an instance is
  left unplaced instead.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from liferaft.clouds.model import ProviderCapacity, Server, ServerGroup
from liferaft.config.model import HaSegmentSettings

PRIORITY_KEY = "ha_priority"
GROUP_KEY = "ha_group"
AFTER_KEY = "ha_after"
RUNNING = 1


def _priority(meta: Mapping[str, str]) -> int:
    try:
        return int(meta.get(PRIORITY_KEY, "0"))
    except ValueError:
        return 0


def selected(server: Server, seg: HaSegmentSettings) -> bool:
    sel = seg.selection
    if sel.images and server.image_id not in sel.images:
        return False
    if sel.flavors and server.flavor not in sel.flavors:
        return False
    return all(server.metadata.get(k) == v for k, v in sel.metadata.items())


def on_local_disk(server: Server, seg: HaSegmentSettings) -> bool:
    return server.image_id is not None and not seg.shared_storage


def instance_record(server: Server) -> dict[str, Any]:
    """What the recovery workflow's params keep of an instance (plain JSON)."""
    meta = dict(server.metadata)
    return {
        "id": server.id,
        "name": server.name,
        "project_id": server.project_id,
        "power_state": server.power_state,
        "status": server.status,
        "vcpus": server.vcpus or 1,
        "ram_mb": server.ram_mb or 512,
        "priority": _priority(meta),
        "group": meta.get(GROUP_KEY),
        "after": meta.get(AFTER_KEY),
    }


def classify(
    servers: Sequence[Server], seg: HaSegmentSettings
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(to evacuate in priority order, skipped for their local disk, not selected)."""
    evac: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    ignored: list[dict[str, Any]] = []
    for s in servers:
        rec = instance_record(s)
        if not selected(s, seg):
            ignored.append(rec)
        elif on_local_disk(s, seg) and seg.local_disk == "skip":
            skipped.append(rec)
        else:
            evac.append(rec)
    evac.sort(key=lambda r: (-r["priority"], r["name"], r["id"]))
    return evac, skipped, ignored


def group_dependencies(instances: Sequence[Mapping[str, Any]]) -> dict[str, list[str]]:
    """Instance id -> ids of the instances it waits for (its group's ``ha_after`` group)."""
    members: dict[str, list[str]] = {}
    for r in instances:
        if r.get("group"):
            members.setdefault(str(r["group"]), []).append(str(r["id"]))
    deps: dict[str, list[str]] = {}
    for r in instances:
        after = r.get("after")
        if after and after != r.get("group") and after in members:
            deps[str(r["id"])] = list(members[str(after)])
    return deps


@dataclass
class Room:
    host: str
    vcpus: float
    ram_mb: float

    def fits(self, r: Mapping[str, Any]) -> bool:
        return self.vcpus >= r["vcpus"] and self.ram_mb >= r["ram_mb"]

    def take(self, r: Mapping[str, Any]) -> None:
        self.vcpus -= r["vcpus"]
        self.ram_mb -= r["ram_mb"]


def rooms(capacity: Sequence[ProviderCapacity], hosts: Sequence[str]) -> dict[str, Room]:
    """Free room of each of ``hosts`` from Placement (providers named after the host)."""
    by_name = {p.name: p for p in capacity}
    by_short = {p.name.split(".", 1)[0]: p for p in capacity}
    out: dict[str, Room] = {}
    for h in hosts:
        p = by_name.get(h) or by_short.get(h)
        if p is not None:
            out[h] = Room(h, p.free("VCPU"), p.free("MEMORY_MB"))
    return out


@dataclass
class GroupPlacement:
    """One server group as the plan sees it: its policy and its members per host."""

    policy: str
    #: Members per host: those not being evacuated (where they run) plus those placed.
    hosts: dict[str, int] = field(default_factory=dict)
    max_per_host: int = 1

    def allows(self, host: str) -> bool:
        """Whether a hard policy lets one more member go to ``host``."""
        if self.policy == "anti-affinity":
            return self.hosts.get(host, 0) < self.max_per_host
        if self.policy == "affinity":
            where = [h for h, n in self.hosts.items() if n > 0]
            return not where or host in where
        return True

    def preference(self, host: str) -> int:
        """Higher is better (soft policies only)."""
        n = self.hosts.get(host, 0)
        if self.policy == "soft-anti-affinity":
            return -n
        if self.policy == "soft-affinity":
            return n
        return 0

    def place(self, host: str) -> None:
        self.hosts[host] = self.hosts.get(host, 0) + 1


def _allowed(r: Mapping[str, Any], host: str, groups: Mapping[str, GroupPlacement]) -> bool:
    g = groups.get(str(r["id"]))
    return g is None or g.allows(host)


def _placed(r: Mapping[str, Any], host: str, groups: Mapping[str, GroupPlacement]) -> None:
    g = groups.get(str(r["id"]))
    if g is not None:
        g.place(host)


def _auto(
    todo: list[dict[str, Any]],
    room: dict[str, Room],
    out: dict[str, str],
    groups: Mapping[str, GroupPlacement],
) -> list[dict[str, Any]]:
    """Spread: each instance to the usable host with the most free RAM that fits it
    (after its server group's policy: hard rules filter, soft ones come first)."""
    left = []
    for r in todo:
        fit = [x for x in room.values() if x.fits(r) and _allowed(r, x.host, groups)]
        if not fit:
            left.append(r)
            continue
        g = groups.get(str(r["id"]))
        best = max(
            fit,
            key=lambda x: (g.preference(x.host) if g else 0, x.ram_mb, x.vcpus, x.host),
        )
        best.take(r)
        _placed(r, best.host, groups)
        out[r["id"]] = best.host
    return left


def _reserved(
    todo: list[dict[str, Any]],
    room: dict[str, Room],
    order: Sequence[str],
    out: dict[str, str],
    used: list[str],
    groups: Mapping[str, GroupPlacement],
) -> list[dict[str, Any]]:
    """Fill the reserved hosts one after the other, in the configured order
    (a host the instance's server group forbids is passed over)."""
    left = []
    for r in todo:
        g = groups.get(str(r["id"]))
        # A soft policy reorders the reserved hosts it has an opinion on; the sort is stable.
        hosts = sorted(order, key=lambda h: -g.preference(h)) if g else list(order)
        for h in hosts:
            x = room.get(h)
            if x is not None and x.fits(r) and _allowed(r, h, groups):
                x.take(r)
                _placed(r, h, groups)
                out[r["id"]] = h
                if h not in used:
                    used.append(h)
                break
        else:
            left.append(r)
    return left


def group_placements(
    instances: Sequence[Mapping[str, Any]],
    groups: Sequence[ServerGroup],
    host_of: Mapping[str, str | None],
) -> dict[str, GroupPlacement]:
    """Instance id -> its group's :class:`GroupPlacement` (one object per group).

    ``host_of`` gives the host of the members that are not being evacuated.
    """
    moving = {str(r["id"]) for r in instances}
    out: dict[str, GroupPlacement] = {}
    for grp in groups:
        mine = [m for m in grp.members if m in moving]
        if not mine:
            continue
        gp = GroupPlacement(grp.policy, max_per_host=grp.max_server_per_host or 1)
        for m in grp.members:
            h = host_of.get(m)
            if m not in moving and h:
                gp.place(h)
        for m in mine:
            out[m] = gp
    return out


def plan_targets(
    instances: Sequence[dict[str, Any]],
    *,
    method: str,
    auto_room: dict[str, Room],
    reserved_room: dict[str, Room],
    reserved_order: Sequence[str],
    groups: Mapping[str, GroupPlacement] | None = None,
) -> tuple[dict[str, str], list[str], list[str]]:
    """(instance id -> target host, reserved hosts used, instance ids with no room).

    ``groups``: instance id -> its server group (:func:`group_placements`).
    """
    out: dict[str, str] = {}
    used: list[str] = []
    todo = list(instances)
    g = groups or {}
    if method == "auto":
        left = _auto(todo, auto_room, out, g)
    elif method == "reserved_host":
        left = _reserved(todo, reserved_room, reserved_order, out, used, g)
    elif method == "auto_priority":
        left = _reserved(
            _auto(todo, auto_room, out, g), reserved_room, reserved_order, out, used, g
        )
    elif method == "rh_priority":
        left = _auto(
            _reserved(todo, reserved_room, reserved_order, out, used, g), auto_room, out, g
        )
    else:
        raise ValueError(f"unknown recovery method {method!r}")
    return out, used, [r["id"] for r in left]
