"""Site and WAN faults: inject and heal.

A fault is ``{"kind": K, "target": T, ...}``:

========================  ===========  ==============================================
kind                      target       extra fields
========================  ===========  ==============================================
``site-down``             site name    (APIs refuse connections, hosts stop, object
                                       store unreachable)
``api-latency``           site name    ``seconds``: added to every API call
``api-errors``            site name    ``rate``: share of API calls answered 503
``link-down``             ``a-b``      (no transfer progresses)
``link-degraded``         ``a-b``      ``bandwidth_mbps`` and/or ``delay_ms``
========================  ===========  ==============================================

Faults of one host (target ``SITE/HOST``: ``host-power-loss``,
``host-mgmt-isolation``, ``host-storage-loss``, ``host-flapping``,
``compute-hung``, ``bmc-garbage``) live in :mod:`liferaft.sim.hostfaults`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import hostfaults
from .http import ApiError

if TYPE_CHECKING:
    from .server import SimServer

KINDS = (
    "site-down",
    "api-latency",
    "api-errors",
    "link-down",
    "link-degraded",
    *hostfaults.KINDS,
)


def _site(server: SimServer, target: Any) -> str:
    if not isinstance(target, str) or target not in server.world.sites:
        raise ApiError(
            400, f"unknown site {target!r}; sites are {', '.join(sorted(server.world.sites))}"
        )
    return target


def _number(body: dict[str, Any], key: str, lo: float, hi: float | None = None) -> float:
    value = body.get(key)
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ApiError(400, f"fault {body.get('kind')!r} needs '{key}', a number")
    if value < lo or (hi is not None and value > hi):
        rng = f">= {lo}" if hi is None else f"between {lo} and {hi}"
        raise ApiError(400, f"'{key}' must be {rng}, got {value}")
    return float(value)


async def inject(server: SimServer, body: dict[str, Any]) -> dict[str, Any]:
    kind = body.get("kind")
    target = body.get("target")
    world = server.world
    if kind in hostfaults.KINDS:
        return hostfaults.registry(world).inject(body)
    if kind == "site-down":
        name = _site(server, target)
        await server.set_site_down(name, True)
        world.sites[name].compute.power_site(False)
        world.writelog.record(world.clock.now(), "site_down", name)
    elif kind == "api-latency":
        name = _site(server, target)
        world.sites[name].faults.extra_latency = _number(body, "seconds", 0.0)
    elif kind == "api-errors":
        name = _site(server, target)
        world.sites[name].faults.error_rate = _number(body, "rate", 0.0, 1.0)
    elif kind in ("link-down", "link-degraded"):
        link = world.links.find(target)
        if kind == "link-down":
            world.links.set_up(link, False)
        else:
            bw = body.get("bandwidth_mbps")
            delay = body.get("delay_ms")
            if bw is None and delay is None:
                raise ApiError(400, "link-degraded needs 'bandwidth_mbps' and/or 'delay_ms'")
            world.links.degrade(
                link,
                bandwidth_mbps=None if bw is None else _number(body, "bandwidth_mbps", 1e-6),
                delay_ms=None if delay is None else _number(body, "delay_ms", 0.0),
            )
    else:
        raise ApiError(400, f"unknown fault kind {kind!r}; kinds are {', '.join(KINDS)}")
    return {"kind": kind, "target": target, "at": world.clock.now()}


async def heal(server: SimServer, body: dict[str, Any]) -> list[dict[str, Any]]:
    """Heal one fault (``kind`` + ``target``), every fault of a target, or everything."""
    kind = body.get("kind")
    target = body.get("target")
    if kind is not None and kind not in KINDS:
        raise ApiError(400, f"unknown fault kind {kind!r}; kinds are {', '.join(KINDS)}")
    world = server.world
    healed: list[dict[str, Any]] = []
    for f in active(server):
        if kind is not None and f["kind"] != kind:
            continue
        if target is not None and f["target"] != target:
            continue
        k, t = f["kind"], f["target"]
        if k == "site-down":
            await server.set_site_down(t, False)
            world.sites[t].compute.power_site(True)
            world.writelog.record(world.clock.now(), "site_up", t)
        elif k == "api-latency":
            world.sites[t].faults.extra_latency = 0.0
        elif k == "api-errors":
            world.sites[t].faults.error_rate = 0.0
        elif k == "link-down":
            world.links.set_up(world.links.find(t), True)
        elif k == "link-degraded":
            world.links.restore(world.links.find(t))
        elif k in hostfaults.KINDS:
            hostfaults.registry(world).heal(k, t)
        healed.append(f)
    if target is not None and kind is None and not healed and target not in world.sites:
        if "/" in str(target):
            hostfaults.parse_target(world, target)  # a clear error for an unknown host
        else:
            world.links.find(target)  # raises a clear error for an unknown name
    return healed


def active(server: SimServer) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for name, site in server.world.sites.items():
        f = site.faults
        if f.down:
            out.append({"kind": "site-down", "target": name})
        if f.extra_latency:
            out.append({"kind": "api-latency", "target": name, "seconds": f.extra_latency})
        if f.error_rate:
            out.append({"kind": "api-errors", "target": name, "rate": f.error_rate})
    out.extend(server.world.links.faults())
    out.extend(hostfaults.registry(server.world).active())
    return out
