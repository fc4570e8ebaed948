"""Faults of single compute hosts, each with a defined signal path.

A host fault is ``{"kind": K, "target": "SITE/HOST", ...}``:

=========================  ==================================================================
kind                       effect (see docs/host-ha-sim.md for every signal)
=========================  ==================================================================
``host-power-loss``        the host is off: guests stop, every heartbeat stops, the BMC
                           answers ``Off`` (and refuses ``On`` until healed)
``host-mgmt-isolation``    the management network is cut: the nova-compute heartbeat, the
                           network agent and the UDP host heartbeat go silent; the BMC still
                           answers ``On``; the guests keep running and writing
``host-storage-loss``      the storage network is cut: the guests' volume I/O fails (canary
                           writes stop); the control plane sees nothing
``host-flapping``          the management isolation comes and goes: isolated for
                           ``isolated_for`` seconds (default half the period) of every
                           ``period`` seconds, on the simulated clock
``compute-hung``           only the nova-compute service's heartbeat stops
``bmc-garbage``            the host's BMC answers nonsense: Redfish returns malformed JSON,
                           IPMI answers every command with completion code 0xFF and junk data
=========================  ==================================================================

Healing restores the host: power comes back (its guests are found stopped,
as Nova's power-state sync leaves them), heartbeats resume.  Every change is
recorded in the write log as ``host_fault`` (``fault``, ``active``; flapping
also ``isolated``), so benchmarks know the ground truth.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .clock import Timer
from .http import ApiError

if TYPE_CHECKING:
    from .compute.records import Host
    from .world import Site, World

KINDS = (
    "host-power-loss",
    "host-mgmt-isolation",
    "host-storage-loss",
    "host-flapping",
    "compute-hung",
    "bmc-garbage",
)


@dataclass
class _Flap:
    period: float
    isolated_for: float
    isolated: bool = True
    timer: Timer | None = None


@dataclass
class HostFaultState:
    """The faults active on one host."""

    power_loss: bool = False
    isolated_since: float | None = None  # host-mgmt-isolation
    flap: _Flap | None = None
    flap_isolated_since: float | None = None
    hung_since: float | None = None
    storage_lost: bool = False
    bmc_garbage: bool = False

    def any(self) -> bool:
        return bool(
            self.power_loss
            or self.isolated_since is not None
            or self.flap is not None
            or self.hung_since is not None
            or self.storage_lost
            or self.bmc_garbage
        )

    def mgmt_silent_since(self) -> float | None:
        times = [t for t in (self.isolated_since, self.flap_isolated_since) if t is not None]
        return min(times) if times else None


def parse_target(world: World, target: Any) -> tuple[Site, Host]:
    """``SITE/HOST`` as the site and the host record; a clear 400 otherwise."""
    if not isinstance(target, str) or "/" not in target:
        raise ApiError(400, f"a host fault's target is SITE/HOST, got {target!r}")
    site_name, _, host_name = target.partition("/")
    site = world.sites.get(site_name)
    if site is None:
        raise ApiError(
            400, f"unknown site {site_name!r}; sites are {', '.join(sorted(world.sites))}"
        )
    host = site.compute.hosts.get(host_name)
    if host is None:
        raise ApiError(
            400,
            f"unknown host {host_name!r} at {site_name}; hosts are "
            f"{', '.join(sorted(site.compute.hosts))}",
        )
    return site, host


def _number(body: dict[str, Any], key: str, *, default: float | None = None) -> float:
    value = body.get(key, default)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
        raise ApiError(400, f"fault {body.get('kind')!r} needs '{key}', a number > 0")
    return float(value)


class HostFaults:
    """Every host fault of a world, applied to the hosts' records."""

    def __init__(self, world: World) -> None:
        self.world = world
        self.states: dict[tuple[str, str], HostFaultState] = {}

    def state(self, site: str, host: str) -> HostFaultState:
        return self.states.get((site, host)) or HostFaultState()

    def _record(self, site: Site, host: Host, fault: str, active: bool, **data: Any) -> None:
        now = self.world.clock.now()
        log = self.world.writelog
        log.record(now, "host_fault", site.name, host=host.name, fault=fault, active=active, **data)

    # -- inject ------------------------------------------------------------------------
    def inject(self, body: dict[str, Any]) -> dict[str, Any]:
        kind = body.get("kind")
        site, host = parse_target(self.world, body.get("target"))
        st = self.states.setdefault((site.name, host.name), HostFaultState())
        now = self.world.clock.now()
        extra: dict[str, Any] = {}
        if kind == "host-power-loss":
            st.power_loss = True
            self._record(site, host, kind, True)
            site.compute.set_host_power(host.name, False, cause=kind)
        elif kind == "host-mgmt-isolation":
            if st.isolated_since is None:
                st.isolated_since = now
        elif kind == "host-storage-loss":
            st.storage_lost = True
        elif kind == "host-flapping":
            period = _number(body, "period")
            isolated_for = _number(body, "isolated_for", default=period / 2)
            if isolated_for >= period:
                raise ApiError(400, f"'isolated_for' must be shorter than 'period' ({period:g})")
            if st.flap is not None and st.flap.timer is not None:
                st.flap.timer.cancel()
            st.flap = _Flap(period, isolated_for)
            st.flap_isolated_since = now
            self._schedule_flap(site, host, st.flap, now)
            extra = {"period": period, "isolated_for": isolated_for}
        elif kind == "compute-hung":
            if st.hung_since is None:
                st.hung_since = now
        elif kind == "bmc-garbage":
            st.bmc_garbage = True
        else:
            raise ApiError(400, f"unknown host fault kind {kind!r}; kinds are {', '.join(KINDS)}")
        if kind != "host-power-loss":
            self._record(site, host, str(kind), True, **extra)
        self._apply(host, st)
        return {"kind": kind, "target": f"{site.name}/{host.name}", "at": now, **extra}

    def _schedule_flap(self, site: Site, host: Host, flap: _Flap, at: float) -> None:
        """Schedule the next toggle of a flapping host; ``at`` is when this phase began."""
        phase = flap.isolated_for if flap.isolated else flap.period - flap.isolated_for
        due = at + phase  # computed from phase starts, so the cycle never drifts

        def toggle() -> None:
            st = self.states.get((site.name, host.name))
            if st is None or st.flap is not flap:
                return
            flap.isolated = not flap.isolated
            st.flap_isolated_since = due if flap.isolated else None
            self._record(site, host, "host-flapping", True, isolated=flap.isolated)
            self._apply(host, st)
            self._schedule_flap(site, host, flap, due)

        flap.timer = self.world.clock.call_at(due, toggle)

    # -- heal --------------------------------------------------------------------------
    def heal(self, kind: str, target: str) -> None:
        site, host = parse_target(self.world, target)
        st = self.states.get((site.name, host.name))
        if st is None:
            return
        if kind == "host-power-loss" and st.power_loss:
            st.power_loss = False
            self._record(site, host, kind, False)
            site.compute.set_host_power(host.name, True, cause="heal")
        elif kind == "host-mgmt-isolation":
            st.isolated_since = None
        elif kind == "host-storage-loss":
            st.storage_lost = False
        elif kind == "host-flapping" and st.flap is not None:
            if st.flap.timer is not None:
                st.flap.timer.cancel()
            st.flap = None
            st.flap_isolated_since = None
        elif kind == "compute-hung":
            st.hung_since = None
        elif kind == "bmc-garbage":
            st.bmc_garbage = False
        if kind != "host-power-loss":
            self._record(site, host, kind, False)
        self._apply(host, st)
        if not st.any():
            del self.states[(site.name, host.name)]

    def _apply(self, host: Host, st: HostFaultState) -> None:
        silent = st.mgmt_silent_since()
        host.mgmt_silent_since = silent
        times = [t for t in (silent, st.hung_since) if t is not None]
        host.service_silent_since = min(times) if times else None
        host.storage_lost = st.storage_lost

    # -- listing -----------------------------------------------------------------------
    def active(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for (site, host), st in sorted(self.states.items()):
            target = f"{site}/{host}"
            if st.power_loss:
                out.append({"kind": "host-power-loss", "target": target})
            if st.isolated_since is not None:
                out.append(
                    {"kind": "host-mgmt-isolation", "target": target, "since": st.isolated_since}
                )
            if st.storage_lost:
                out.append({"kind": "host-storage-loss", "target": target})
            if st.flap is not None:
                out.append(
                    {
                        "kind": "host-flapping",
                        "target": target,
                        "period": st.flap.period,
                        "isolated_for": st.flap.isolated_for,
                        "isolated": st.flap.isolated,
                    }
                )
            if st.hung_since is not None:
                out.append({"kind": "compute-hung", "target": target, "since": st.hung_since})
            if st.bmc_garbage:
                out.append({"kind": "bmc-garbage", "target": target})
        return out


_REGISTRIES: weakref.WeakKeyDictionary[World, HostFaults] = weakref.WeakKeyDictionary()


def registry(world: World) -> HostFaults:
    """The world's host faults (made on first use, so ``World`` needs no field for them)."""
    reg = _REGISTRIES.get(world)
    if reg is None:
        reg = _REGISTRIES[world] = HostFaults(world)
    return reg
