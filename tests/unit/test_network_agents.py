"""Open vSwitch agents derived from compute hosts: heartbeats, liveness, VTEPs."""

from __future__ import annotations

from pathlib import Path

from liferaft.sim.clock import SimClock
from liferaft.sim.network.agents import AGENT_DOWN_TIME, agent_time
from liferaft.sim.topology import Topology
from liferaft.sim.world import World


def _world(tmp_path: Path) -> World:
    topo = Topology.model_validate(
        {"sites": {"east": {"hosts": 2}, "west": {"hosts": 1, "vtep_subnet": "10.9.0.0/24"}}}
    )
    return World(topo, tmp_path, SimClock("stepped"))


def test_a_dead_hosts_agent_freezes_then_goes_down(tmp_path: Path) -> None:
    world = _world(tmp_path)
    site = world.sites["east"]
    assert sorted(site.compute.hosts) == ["east-compute-1", "east-compute-2"]
    world.clock.advance(10)
    died_at = world.clock.now()
    site.compute.set_host_power("east-compute-1", False)
    world.clock.advance(AGENT_DOWN_TIME - 5)
    agents = {a["host"]: a for a in site.network.agents.docs()}
    dead, live = agents["east-compute-1"], agents["east-compute-2"]
    assert dead["alive"] is True  # Neutron has not noticed yet
    assert dead["heartbeat_timestamp"] < live["heartbeat_timestamp"]
    world.clock.advance(10)
    agents = {a["host"]: a for a in site.network.agents.docs()}
    assert agents["east-compute-1"]["alive"] is False
    assert agents["east-compute-2"]["alive"] is True
    frozen = agents["east-compute-1"]["heartbeat_timestamp"]
    assert frozen == agent_time(died_at)
    site.compute.set_host_power("east-compute-1", True)
    assert all(a["alive"] for a in site.network.agents.docs())


def test_vteps_come_from_the_site_subnet(tmp_path: Path) -> None:
    world = _world(tmp_path)
    east = world.sites["east"].network.agents
    west = world.sites["west"].network.agents
    assert east.vtep_of("east-compute-1") == "192.0.2.1"
    assert east.vtep_of("east-compute-2") == "192.0.2.2"
    assert west.vtep_of("west-compute-1") == "10.9.0.1"
    # Stable once given, also for a host seen later.
    assert east.vtep_of("east-compute-9") == "192.0.2.3"
    assert east.vtep_of("east-compute-1") == "192.0.2.1"
