"""What a health probe inside a simulated guest would report.

Real sites check a recovered workload with a probe (ping, an HTTP health
URL, a database query).  The simulator answers the same question from its
model: ``booted`` when the server is ACTIVE and running on a live host,
``application_answering`` when it is also not quiesced and every canary
writer of the server is able to write.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .canary import registry
from .http import ApiError

if TYPE_CHECKING:
    from .world import World

#: Nova's power state of a running guest.
_RUNNING = 1


def guest_health(world: World, site_name: str, server_id: str) -> dict[str, Any]:
    site = world.sites.get(site_name)
    if site is None:
        raise ApiError(
            404, f"unknown site {site_name!r}; sites are {', '.join(sorted(world.sites))}"
        )
    server = site.compute.servers.get(server_id)
    if server is None:
        raise ApiError(404, f"server {server_id} not found at site {site_name}")
    host = site.compute.hosts.get(server.host) if server.host else None
    host_alive = host is not None and host.alive()
    booted = server.status == "ACTIVE" and server.power_state == _RUNNING and host_alive
    canaries = registry(world).of_server(site_name, server_id)
    states = [(c, *c.condition()) for c in canaries]
    answering = booted and not server.quiesced and all(s == "writing" for _, s, _ in states)

    reason: str | None = None
    if not booted:
        if host is None:
            reason = "the server has no host"
        elif not host_alive:
            reason = f"host {host.name} is down"
        else:
            reason = f"the server is {server.status}, not running"
    elif server.quiesced:
        reason = "the guest is quiesced"
    elif not answering:
        reason = next(f"canary {c.id}: {why}" for c, s, why in states if s != "writing")
    return {
        "site": site_name,
        "server_id": server_id,
        "host": server.host,
        "status": server.status,
        "booted": booted,
        "application_answering": answering,
        "quiesced": server.quiesced,
        "reason": reason,
        "canaries": [{"id": c.id, "status": s, "reason": why} for c, s, why in states],
    }
