"""Open vSwitch agents of the simulated network service, one per compute host.

Nothing runs per agent: the heartbeat is derived when asked.  While the
host is alive its agent's last heartbeat is "now"; once the host dies
(powered off, or its site down) the heartbeat freezes at the moment of
death, read from the write log, and the agent turns ``alive: false`` after
Neutron's ``agent_down_time`` (75 s), exactly the lag a real monitor sees.
A host whose management network is isolated (``Host.mgmt_silent_since``, see
:mod:`liferaft.sim.hostfaults`) keeps running, but its agent's heartbeat
freezes at the moment of isolation just the same.

Each host gets a VTEP (tunnel endpoint) address from its site's
``vtep_subnet``, or a default per-site subnet, allocated in host-name order
the first time the host is seen and kept afterwards.
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..world import Site

#: Neutron's default ``agent_down_time``: an agent silent this long is dead.
AGENT_DOWN_TIME = 75.0

#: Default VTEP subnets (documentation ranges); other sites get 100.64.<n>.0/24.
DEFAULT_VTEP_SUBNETS = {"east": "192.0.2.0/24", "west": "198.51.100.0/24"}

_NS = uuid.UUID("0d6f3c8e-2c55-4f3e-9a57-7e7a4f1b6a21")


def agent_time(t: float) -> str:
    """Neutron writes agent timestamps as ``YYYY-MM-DD HH:MM:SS``."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%S")


def vtep_subnet(site_name: str, configured: str | None, index: int) -> ipaddress.IPv4Network:
    text = configured or DEFAULT_VTEP_SUBNETS.get(site_name) or f"100.64.{index}.0/24"
    return ipaddress.IPv4Network(text, strict=False)


@dataclass
class _HostView:
    """What the agent table needs of a host: its name, whether it is alive, and
    since when its management network is silent (a host fault), if it is."""

    name: str
    alive: bool
    silent_since: float | None = None


@dataclass
class AgentRecord:
    """What the agent table remembers: settings an admin changed, first-seen time."""

    id: str
    host: str
    created_at: float
    admin_state_up: bool = True
    description: str | None = None


class AgentTable:
    """The site's agents, derived from ``site.compute.hosts`` on every read."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.records: dict[str, AgentRecord] = {}  # host name -> record
        self._vteps: dict[str, str] = {}
        self._last_alive: dict[str, float] = {}
        self._scanned = 0  # write-log entries already read for deaths
        self._deaths: dict[str, float] = {}
        self._site_down: float | None = None

    # -- hosts ---------------------------------------------------------------------
    def _hosts(self) -> list[_HostView]:
        hosts = self.site.compute.hosts
        if hosts:
            return [
                _HostView(h.name, bool(h.alive()), getattr(h, "mgmt_silent_since", None))
                for h in hosts.values()
            ]
        # Until the compute service has hosts, the topology's host list stands
        # in for them (alive unless the site is down).
        topo = self.site.world.topology
        spec = topo.sites.get(self.site.name)
        if spec is None:
            return []
        up = not self.site.faults.down
        return [_HostView(h.name, up) for h in spec.host_specs(self.site.name)]

    def vtep_of(self, host: str) -> str:
        """The host's tunnel endpoint address (allocated on first use)."""
        self._sync()
        if host not in self._vteps:
            self._assign_vteps([host])
        return self._vteps[host]

    def _assign_vteps(self, names: list[str]) -> None:
        topo = self.site.world.topology
        spec = topo.sites.get(self.site.name)
        index = sorted(topo.sites).index(self.site.name) if spec is not None else 0
        net = vtep_subnet(self.site.name, spec.vtep_subnet if spec else None, index)
        used = set(self._vteps.values())
        candidates = (str(ip) for ip in net.hosts() if str(ip) not in used)
        for name in sorted(names):
            if name not in self._vteps:
                self._vteps[name] = next(candidates)

    def _sync(self) -> list[_HostView]:
        hosts = self._hosts()
        now = self.site.clock.now()
        new = [h.name for h in hosts if h.name not in self.records]
        for name in new:
            self.records[name] = AgentRecord(
                id=str(uuid.uuid5(_NS, f"{self.site.name}/{name}/ovs")), host=name, created_at=now
            )
        if new:
            self._assign_vteps(new)
        for h in hosts:
            if h.alive and h.silent_since is None:
                self._last_alive[h.name] = now
        return hosts

    # -- heartbeats ----------------------------------------------------------------
    def _death_time(self, host: str) -> float | None:
        """When the host last stopped: its newest power-off or its site's newest outage.

        The write log is scanned incrementally (it grows with every canary write).
        """
        log = self.site.world.writelog
        for e in log.entries[self._scanned :]:
            if e.site != self.site.name:
                continue
            if e.kind == "power" and e.host and not e.data.get("on", True):
                self._deaths[e.host] = e.time
            elif e.kind == "site_down":
                self._site_down = e.time
        self._scanned = len(log.entries)
        times = [t for t in (self._deaths.get(host), self._site_down) if t is not None]
        return max(times) if times else None

    def heartbeat(self, host: str, alive_now: bool) -> float:
        now = self.site.clock.now()
        if alive_now:
            return now
        death = self._death_time(host)
        if death is not None:
            return death
        return self._last_alive.get(host, self.records[host].created_at)

    # -- API view ------------------------------------------------------------------
    def docs(self) -> list[dict[str, Any]]:
        hosts = self._sync()
        now = self.site.clock.now()
        out = []
        for h in sorted(hosts, key=lambda x: x.name):
            rec = self.records[h.name]
            beat = self.heartbeat(h.name, h.alive)
            if h.silent_since is not None:  # isolated: its reports stopped reaching Neutron
                beat = min(beat, h.silent_since)
            devices = len(self.site.network.ports_on_host(h.name))
            out.append(
                {
                    "id": rec.id,
                    "agent_type": "Open vSwitch agent",
                    "binary": "neutron-openvswitch-agent",
                    "topic": "N/A",
                    "host": h.name,
                    "admin_state_up": rec.admin_state_up,
                    "alive": now - beat <= AGENT_DOWN_TIME,
                    "heartbeat_timestamp": agent_time(beat),
                    "created_at": agent_time(rec.created_at),
                    "started_at": agent_time(rec.created_at),
                    "description": rec.description,
                    "availability_zone": None,
                    "resources_synced": None,
                    "ha_state": None,
                    "configurations": {
                        "tunneling_ip": self._vteps[h.name],
                        "tunnel_types": ["vxlan"],
                        "bridge_mappings": {},
                        "l2_population": True,
                        "arp_responder_enabled": True,
                        "integration_bridge": "br-int",
                        "devices": devices,
                    },
                }
            )
        return out

    def find(self, agent_id: str) -> AgentRecord | None:
        self._sync()
        for rec in self.records.values():
            if rec.id == agent_id:
                return rec
        return None
