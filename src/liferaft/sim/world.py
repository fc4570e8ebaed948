"""The simulated world: sites, WAN links, one clock, the write log.

A :class:`World` is pure state plus the clock's scheduled events; the HTTP
facades in the service packages read and change it.  Everything runs on one
asyncio event loop, so no locks are needed: a handler runs to completion
between awaits.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

from .clock import SimClock
from .compute.state import ComputeState
from .identity import IdentityState
from .image.state import ImageState
from .links import LinkState
from .network.state import NetworkState
from .objects.state import ObjectState
from .topology import LatencyProfile, Topology
from .volume.state import VolumeState
from .wan_view import VIEW_URL
from .writelog import WriteLog


class SiteFaults:
    """Faults injected on one site's APIs (see :mod:`liferaft.sim.faults`)."""

    def __init__(self) -> None:
        self.down = False  # whole site: APIs, hosts, object store
        self.extra_latency = 0.0  # simulated seconds added to each API call
        self.error_rate = 0.0  # share of API calls answered 503
        self.error_seed = 0

    def describe(self) -> dict[str, Any]:
        return {
            "down": self.down,
            "extra_latency_s": self.extra_latency,
            "error_rate": self.error_rate,
        }


class Site:
    """One OpenStack cloud/region of the simulated world."""

    def __init__(self, world: World, name: str) -> None:
        self.world = world
        self.name = name
        self.region = name
        self.url = ""  # set when the site's HTTP server is bound
        self.state_dir = world.state_dir / "sites" / name
        self.state_dir.mkdir(parents=True, exist_ok=True)
        self.faults = SiteFaults()
        self.identity = IdentityState(self)
        self.compute = ComputeState(self)
        self.volume = VolumeState(self)
        self.network = NetworkState(self)
        self.image = ImageState(self)
        self.objects = ObjectState(self)

    @property
    def clock(self) -> SimClock:
        return self.world.clock

    @property
    def latency(self) -> LatencyProfile:
        return self.world.latency

    def new_id(self) -> str:
        return str(uuid.uuid4())

    def catalog(self) -> list[dict[str, Any]]:
        # Through a remote view (sim/wan_view.py) the catalog names the view: calls stay on it.
        base = VIEW_URL.get() or self.url

        def entry(stype: str, name: str, path: str) -> dict[str, Any]:
            url = f"{base}{path}"
            return {
                "type": stype,
                "name": name,
                "id": uuid.uuid5(uuid.NAMESPACE_URL, f"{self.name}/{stype}").hex,
                "endpoints": [
                    {
                        "id": uuid.uuid5(uuid.NAMESPACE_URL, f"{self.name}/{stype}/{iface}").hex,
                        "interface": iface,
                        "region_id": self.region,
                        "region": self.region,
                        "url": url,
                    }
                    for iface in ("public", "internal", "admin")
                ],
            }

        return [
            entry("identity", "keystone", "/identity/v3"),
            entry("compute", "nova", "/compute/v2.1"),
            entry("placement", "placement", "/placement"),
            entry("block-storage", "cinder", "/volume/v3"),
            entry("volumev3", "cinderv3", "/volume/v3"),
            entry("image", "glance", "/image"),
            entry("network", "neutron", "/networking"),
            entry("object-store", "swift", "/object-store/v1/AUTH_%(project_id)s"),
        ]

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "url": self.url,
            "faults": self.faults.describe(),
            "hosts": len(self.compute.hosts),
            "servers": len(self.compute.servers),
            "volumes": len(self.volume.volumes),
        }


class World:
    """Every site, the WAN links between them, the clock and the write log."""

    def __init__(self, topology: Topology, state_dir: Path, clock: SimClock) -> None:
        self.topology = topology
        self.state_dir = state_dir
        state_dir.mkdir(parents=True, exist_ok=True)
        self.clock = clock
        self.latency = topology.latency_profile()
        self.writelog = WriteLog(state_dir / "writelog.jsonl")
        self.sites: dict[str, Site] = {}
        for name in topology.sites:
            self.sites[name] = Site(self, name)
        self.links = LinkState(self, topology.link_specs())
        for name, site in self.sites.items():
            site.identity.seed(topology.admin_password, topology.demo_password)
            site.compute.seed(topology, topology.sites[name])
            site.image.seed(topology)
            site.network.seed(topology)
            site.volume.seed(topology)
            site.objects.seed(topology)

    def site(self, name: str) -> Site:
        try:
            return self.sites[name]
        except KeyError:
            raise KeyError(
                f"unknown site {name!r}; sites are {', '.join(sorted(self.sites))}"
            ) from None

    def describe(self) -> dict[str, Any]:
        return {
            "clock": self.clock.describe(),
            "sites": {n: s.describe() for n, s in self.sites.items()},
            "links": self.links.describe(),
        }
