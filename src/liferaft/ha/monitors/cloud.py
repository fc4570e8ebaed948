"""Monitors that ask the cloud: compute services, hypervisors, network agents."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from .base import CONTROL_PLANE, MonitorContext, Signal


def parse_time(text: str | None) -> float | None:
    """An API timestamp (ISO 8601, or Neutron's ``YYYY-MM-DD HH:MM:SS``, UTC when naive)."""
    if not text:
        return None
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return t.timestamp()


class _Passive:
    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class ComputeServiceMonitor(_Passive):
    """nova-compute's ``state`` and ``updated_at`` (its last heartbeat)."""

    name = "compute_service"
    capabilities = frozenset({CONTROL_PLANE})

    def __init__(self, ctx: MonitorContext) -> None:
        self.ctx = ctx

    async def observe(self, hosts: Sequence[str]) -> dict[str, Signal]:
        wanted = set(hosts)
        now = self.ctx.clock.now()
        limit = self.ctx.settings.service_down_seconds
        out: dict[str, Signal] = {}
        for svc in await self.ctx.cloud.list_compute_services():
            if svc.host not in wanted:
                continue
            beat = parse_time(svc.updated_at)
            age = None if beat is None else now - beat
            if svc.state == "down":
                out[svc.host] = Signal(svc.host, True, "compute service down")
            elif age is not None and age > limit:
                out[svc.host] = Signal(svc.host, True, f"compute service silent for {age:.0f} s")
            else:
                out[svc.host] = Signal(svc.host, False, "compute service up")
        return out


class HypervisorMonitor(_Passive):
    """The hypervisor's ``state`` (Nova's view of the compute node)."""

    name = "hypervisor"
    capabilities = frozenset({CONTROL_PLANE})

    def __init__(self, ctx: MonitorContext) -> None:
        self.ctx = ctx

    async def observe(self, hosts: Sequence[str]) -> dict[str, Signal]:
        wanted = set(hosts)
        out: dict[str, Signal] = {}
        for hyp in await self.ctx.cloud.list_hypervisors():
            host = hyp.name if hyp.name in wanted else hyp.name.split(".", 1)[0]
            if host not in wanted:
                continue
            failed = hyp.state == "down"
            out[host] = Signal(host, failed, f"hypervisor {hyp.state}")
        return out


class NetworkAgentMonitor(_Passive):
    """Networking v2 agents on the host (Open vSwitch, Linux bridge...): alive or not."""

    name = "network_agent"
    capabilities = frozenset({CONTROL_PLANE})

    def __init__(self, ctx: MonitorContext) -> None:
        self.ctx = ctx

    async def observe(self, hosts: Sequence[str]) -> dict[str, Signal]:
        wanted = set(hosts)
        alive: dict[str, bool] = {}
        for agent in await self.ctx.cloud.list_network_agents():
            if agent.host in wanted:
                alive[agent.host] = alive.get(agent.host, False) or agent.alive
        return {
            h: Signal(h, not ok, "network agent alive" if ok else "network agents dead")
            for h, ok in alive.items()
        }
