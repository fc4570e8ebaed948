"""Host selection, in the spirit of Nova's filter scheduler.

Filters: the compute service is enabled and up (ComputeFilter), the flavor
fits the host's capacity times its allocation ratios (what Placement
checks), and the server group's hard policy (affinity / anti-affinity with
``max_server_per_host``).  Weighers: most free RAM first (spread), then the
soft group policies.  A forced host (``nova:HOST``, or evacuate with
``force``) skips the filters but must still have room, as Placement
would refuse the claim otherwise.
"""

from __future__ import annotations

from collections.abc import Iterable

from .records import Flavor, Host, ServerGroup


class NoValidHost(Exception):
    """No host passed the filters."""

    def __init__(self, reason: str = "") -> None:
        msg = "No valid host was found. "
        super().__init__(msg + reason if reason else msg)


def demand(flavor: Flavor, *, volume_backed: bool) -> tuple[int, int, int]:
    """What a server of this flavor claims: (vcpus, MiB, GiB); no root disk from a volume."""
    disk = flavor.ephemeral_gb + (0 if volume_backed else flavor.disk_gb)
    return flavor.vcpus, flavor.ram_mb, disk


def select_host(
    hosts: Iterable[Host],
    now: float,
    need: tuple[int, int, int],
    *,
    group: ServerGroup | None = None,
    group_hosts: dict[str, int] | None = None,
    exclude: frozenset[str] = frozenset(),
    requested: str | None = None,
    force: bool = False,
) -> Host:
    """The best host for one server; raises :class:`NoValidHost`."""
    counts = group_hosts or {}
    candidates = [h for h in hosts if h.name not in exclude]
    if requested is not None:
        candidates = [h for h in candidates if h.name == requested]
    if force:
        for h in candidates:
            if h.fits(*need):
                return h
        raise NoValidHost("The forced host does not have enough room.")
    best: Host | None = None
    best_key: tuple[float, float] | None = None
    for h in candidates:
        if h.disabled or not h.service_up(now) or not h.fits(*need):
            continue
        on_host = counts.get(h.name, 0)
        key_group = 0.0
        if group is not None:
            if group.policy == "affinity" and counts and on_host == 0:
                continue
            if group.policy == "anti-affinity":
                if on_host >= group.rules.get("max_server_per_host", 1):
                    continue
            elif group.policy == "soft-affinity":
                key_group = on_host
            elif group.policy == "soft-anti-affinity":
                key_group = -on_host
        free_ram = h.capacity()[1] - h.ram_used
        key = (key_group, free_ram)
        if best_key is None or key > best_key:
            best, best_key = h, key
    if best is None:
        raise NoValidHost("There are not enough hosts available.")
    return best
