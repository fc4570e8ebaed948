"""Helpers of the host-HA simulator tests: a server with a canary, BMC access, heartbeats."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sushy
import yaml
from openstack.connection import Connection

from liferaft.agent.heartbeat import Heartbeat, ReplayGuard, load_key, verify
from tests.support.sim import SimProcess
from tests.support.wait import step_until as until

IMAGE_ID = "5c4b7a3e-2f1d-4e8a-9b6c-0d1e2f3a4b5c"
TOPOLOGY: dict[str, Any] = {"images": [{"name": "cirros", "size_mb": 1, "id": IMAGE_ID}]}
SERVICE_DOWN_TIME = 60  # Nova's service_down_time
AGENT_DOWN_TIME = 75  # Neutron's agent_down_time


@dataclass
class Guest:
    conn: Connection
    server: str
    volume: str
    host: str
    canary: str


def guest(sim: SimProcess, rate: float = 2) -> Guest:
    """A server with one volume and a canary writing to it, at site east."""
    conn = sim.connect("east")
    flavor = conn.compute.find_flavor("m1.tiny")
    server = conn.compute.create_server(
        name="app", image_id=IMAGE_ID, flavor_id=flavor.id, networks="none"
    )
    until(sim, lambda: conn.compute.get_server(server.id).status == "ACTIVE", "boot")
    vol = conn.block_storage.create_volume(name="data", size=1)
    until(sim, lambda: conn.block_storage.get_volume(vol.id).status == "available", "volume")
    conn.compute.create_volume_attachment(server.id, volume_id=vol.id)
    until(sim, lambda: conn.block_storage.get_volume(vol.id).status == "in-use", "attach")
    body = {"site": "east", "server": server.id, "volumes": [vol.id], "rate": rate}
    canary = sim.control("POST", "/control/canaries", body)["canary"]
    host = conn.compute.get_server(server.id).compute_host
    return Guest(conn, server.id, vol.id, host, canary["id"])


def entries(sim: SimProcess, kind: str, **match: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = sim.control("GET", f"/control/writelog?kind={kind}")["entries"]
    return [e for e in found if all(e.get(k) == v for k, v in match.items())]


def writes_between(sim: SimProcess, g: Guest, start: float, end: float) -> list[dict[str, Any]]:
    return [e for e in entries(sim, "write", instance=g.server) if start < e["time"] <= end]


def service(conn: Connection, host: str) -> Any:
    (svc,) = [s for s in conn.compute.services() if s.host == host and s.binary == "nova-compute"]
    return svc


def agent_alive(conn: Connection, host: str) -> bool:
    (agent,) = list(conn.network.agents(host=host))
    return bool(agent.is_alive)


def bmc(sim: SimProcess, host: str, site: str = "east") -> dict[str, Any]:
    info: dict[str, Any] = yaml.safe_load((sim.state_dir / "bmcs.yaml").read_text())["bmcs"][
        f"{site}/{host}"
    ]
    return info


def redfish_system(sim: SimProcess, host: str, site: str = "east") -> Any:
    """The host's system through sushy, logged in with its BMC's credentials."""
    info = bmc(sim, host, site)
    root = sushy.Sushy(
        info["redfish"]["url"] + "/redfish/v1/",
        username=info["username"],
        password=info["password"],
        server_side_retries=0,
    )
    return root.get_system(info["redfish"]["system_path"])


class HeartbeatListener:
    """A UDP socket standing in for the controller's monitor."""

    def __init__(self, sim: SimProcess) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        port = self.sock.getsockname()[1]
        self.settings = sim.control("PUT", "/control/heartbeat", {"target": f"127.0.0.1:{port}"})
        self.key = load_key(Path(self.settings["key_file"]))
        self.guard = ReplayGuard(max_skew=3600)
        self.sim = sim
        self.received = 0

    def drain(self) -> list[Heartbeat]:
        """Every heartbeat received so far (all verified)."""
        now = self.sim.now()
        got: list[Heartbeat] = []
        self.sock.settimeout(0.5)
        expected = self.sim.control("GET", "/control/heartbeat")["sent"]
        while len(got) + self.received < expected:
            try:
                got.append(verify(self.sock.recv(1024), [self.key], self.guard, now))
            except TimeoutError:
                break
        self.received += len(got)
        return got

    def close(self) -> None:
        self.sock.close()
