"""Host faults and their signal paths, seen by the signals a monitor reads.

Each test drives the stepped clock and reads what a controller would: the
compute service list, the network agents, the hosts' UDP heartbeats, the BMC
(Redfish) — and the write log, which knows what the guests really did.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import httpx
import pytest
import sushy
import yaml

from tests.functional.hostha import (
    AGENT_DOWN_TIME,
    SERVICE_DOWN_TIME,
    TOPOLOGY,
    HeartbeatListener,
    agent_alive,
    entries,
    guest,
    redfish_system,
    service,
    writes_between,
)
from tests.support.sim import SimProcess


@pytest.fixture
def hsim(sim_factory: Callable[..., SimProcess]) -> SimProcess:
    return sim_factory(topology=TOPOLOGY)


def fault(sim: SimProcess, kind: str, target: str, **fields: object) -> None:
    sim.control("POST", "/control/faults", {"kind": kind, "target": target, **fields})


def heartbeat_hosts(hb: HeartbeatListener) -> dict[str, int]:
    counts: dict[str, int] = {}
    for h in hb.drain():
        counts[h.host] = counts.get(h.host, 0) + 1
    return counts


def test_mgmt_isolation_is_the_false_positive_trap(hsim: SimProcess) -> None:
    """Every management signal says dead, but the guest keeps running and writing."""
    sim = hsim
    g = guest(sim)
    hb = HeartbeatListener(sim)
    sim.advance(10)
    assert heartbeat_hosts(hb).get(g.host, 0) >= 2
    t0 = sim.now()
    fault(sim, "host-mgmt-isolation", f"east/{g.host}")
    sim.advance(SERVICE_DOWN_TIME + 1)
    assert service(g.conn, g.host).state == "down"
    assert agent_alive(g.conn, g.host)  # Neutron's agent_down_time is longer
    sim.advance(AGENT_DOWN_TIME - SERVICE_DOWN_TIME)
    assert not agent_alive(g.conn, g.host)
    beats = heartbeat_hosts(hb)
    assert g.host not in beats and len(beats) == 5  # the other hosts keep beating
    # ...while the guest runs and writes from its host, and the BMC says On.
    assert g.conn.compute.get_server(g.server).status == "ACTIVE"
    late = writes_between(sim, g, t0 + SERVICE_DOWN_TIME, sim.now())
    assert late and {e["host"] for e in late} == {g.host}
    assert redfish_system(sim, g.host).power_state == sushy.POWER_STATE_ON
    # Heal: every signal comes back.
    sim.control("POST", "/control/heal", {"target": f"east/{g.host}"})
    sim.advance(5)
    assert service(g.conn, g.host).state == "up"
    assert agent_alive(g.conn, g.host)
    assert heartbeat_hosts(hb).get(g.host, 0) >= 1
    assert sim.control("GET", "/control/faults")["faults"] == []
    logged = [(e["data"]["fault"], e["data"]["active"]) for e in entries(sim, "host_fault")]
    assert logged == [("host-mgmt-isolation", True), ("host-mgmt-isolation", False)]
    hb.close()


def test_power_loss_stops_everything_and_the_bmc_reads_off(hsim: SimProcess) -> None:
    sim = hsim
    g = guest(sim)
    hb = HeartbeatListener(sim)
    sim.advance(5)
    t0 = sim.now()
    fault(sim, "host-power-loss", f"east/{g.host}")
    heartbeat_hosts(hb)
    sim.advance(AGENT_DOWN_TIME + 1)
    assert writes_between(sim, g, t0, sim.now()) == []
    assert service(g.conn, g.host).state == "down"
    assert not agent_alive(g.conn, g.host)
    assert g.host not in heartbeat_hosts(hb)
    system = redfish_system(sim, g.host)
    assert system.power_state == sushy.POWER_STATE_OFF
    # A host without power cannot be switched on through its BMC.
    with pytest.raises(sushy.exceptions.HTTPError) as err:
        system.reset_system(sushy.RESET_ON)
    assert err.value.status_code == 409
    sim.control("POST", "/control/heal", {"kind": "host-power-loss", "target": f"east/{g.host}"})
    system.refresh()
    assert system.power_state == sushy.POWER_STATE_ON
    assert service(g.conn, g.host).state == "up"
    (off, on) = entries(sim, "power", host=g.host)
    assert (off["data"], on["data"]) == (
        {"on": False, "cause": "host-power-loss"},
        {"on": True, "cause": "heal"},
    )
    hb.close()


def test_storage_loss_stops_volume_writes_only(hsim: SimProcess) -> None:
    sim = hsim
    g = guest(sim)
    sim.advance(5)
    t0 = sim.now()
    fault(sim, "host-storage-loss", f"east/{g.host}")
    sim.advance(SERVICE_DOWN_TIME + 5)
    assert writes_between(sim, g, t0, sim.now()) == []
    canary = sim.control("GET", f"/control/canaries/{g.canary}")["canary"]
    assert canary["status"] == "blocked" and "storage" in canary["reason"]
    # The control plane sees nothing wrong.
    assert service(g.conn, g.host).state == "up"
    assert agent_alive(g.conn, g.host)
    assert g.conn.compute.get_server(g.server).status == "ACTIVE"
    t1 = sim.now()
    sim.control("POST", "/control/heal", {"target": f"east/{g.host}"})
    sim.advance(3)
    assert writes_between(sim, g, t1, sim.now())


def test_compute_hung_stops_only_the_compute_heartbeat(hsim: SimProcess) -> None:
    sim = hsim
    g = guest(sim)
    hb = HeartbeatListener(sim)
    t0 = sim.now()
    fault(sim, "compute-hung", f"east/{g.host}")
    sim.advance(AGENT_DOWN_TIME + 5)
    svc = service(g.conn, g.host)
    assert svc.state == "down"
    assert agent_alive(g.conn, g.host)
    assert heartbeat_hosts(hb).get(g.host, 0) >= 10
    assert writes_between(sim, g, t0 + SERVICE_DOWN_TIME, sim.now())
    assert redfish_system(sim, g.host).power_state == sushy.POWER_STATE_ON
    sim.control("POST", "/control/heal", {"kind": "compute-hung", "target": f"east/{g.host}"})
    assert service(g.conn, g.host).state == "up"
    hb.close()


def test_flapping_toggles_isolation_on_the_clock(sim: SimProcess) -> None:
    host = "east-compute-2"
    conn = sim.connect("east")
    hb = HeartbeatListener(sim)
    t0 = sim.now()
    fault(sim, "host-flapping", f"east/{host}", period=180, isolated_for=90)
    states = []
    for _ in range(4):  # isolated 0-90, connected 90-180, isolated 180-270, ...
        sim.advance(1)
        heartbeat_hosts(hb)  # forget the previous phase's heartbeats
        sim.advance(SERVICE_DOWN_TIME + 9)
        states.append((service(conn, host).state, host in heartbeat_hosts(hb)))
        sim.advance(90 - SERVICE_DOWN_TIME - 10)
    assert states == [("down", False), ("up", True), ("down", False), ("up", True)]
    toggles = [
        (e["time"] - t0, e["data"].get("isolated"))
        for e in entries(sim, "host_fault", host=host)
        if e["data"]["fault"] == "host-flapping"
    ]
    assert toggles == [(0, None), (90, False), (180, True), (270, False), (360, True)]
    (listed,) = sim.control("GET", "/control/faults")["faults"]
    assert listed["kind"] == "host-flapping" and listed["isolated"] is True
    sim.control("POST", "/control/heal", {"target": f"east/{host}"})
    sim.advance(200)
    assert service(conn, host).state == "up"
    assert host in heartbeat_hosts(hb)
    hb.close()


def test_heartbeats_are_signed_per_host_and_target_settable(sim: SimProcess) -> None:
    assert sim.control("GET", "/control/heartbeat")["target"] is None
    hb = HeartbeatListener(sim)
    assert hb.settings["interval"] == 5
    sim.advance(20)
    beats = hb.drain()
    hosts = {(b.site, b.host) for b in beats}
    assert len(hosts) == 6
    assert all(b.timestamp <= sim.now() for b in beats)
    sim.control("PUT", "/control/heartbeat", {"target": None})
    sim.advance(20)
    assert hb.drain() == []
    r = sim.http.put("/control/heartbeat", json={"target": "nowhere"})
    assert r.status_code == 400 and "HOST:PORT" in r.json()["error"]["message"]
    hb.close()


@pytest.mark.parametrize(
    "body, message",
    [
        ({"kind": "host-mgmt-isolation", "target": "east"}, "target is SITE/HOST"),
        ({"kind": "host-mgmt-isolation", "target": "east/nope"}, "unknown host 'nope'"),
        ({"kind": "compute-hung", "target": "mars/x"}, "unknown site 'mars'"),
        ({"kind": "host-flapping", "target": "east/east-compute-1"}, "needs 'period'"),
        (
            {
                "kind": "host-flapping",
                "target": "east/east-compute-1",
                "period": 10,
                "isolated_for": 10,
            },
            "shorter than 'period'",
        ),
    ],
)
def test_bad_host_faults_get_clear_errors(
    sim: SimProcess, body: dict[str, object], message: str
) -> None:
    r = sim.http.post("/control/faults", json=body)
    assert r.status_code == 400
    assert message in r.json()["error"]["message"]


def test_topology_sets_bmc_credentials_and_heartbeat_interval(
    sim_factory: Callable[..., SimProcess],
) -> None:
    topo = {
        "bmc_username": "root",
        "bmc_password": "calvin-secret",
        "heartbeat_interval": 2,
        "sites": {
            "east": {"hosts": [{"name": "e1", "bmc_password": "own-secret"}, {"name": "e2"}]}
        },
    }
    sim = sim_factory(topology=topo)
    bmcs = yaml.safe_load((sim.state_dir / "bmcs.yaml").read_text())["bmcs"]
    assert {k: (v["username"], v["password"]) for k, v in bmcs.items()} == {
        "east/e1": ("root", "own-secret"),
        "east/e2": ("root", "calvin-secret"),
    }
    url = bmcs["east/e2"]["redfish"]["url"]
    coll = httpx.get(url + "/redfish/v1/Systems", auth=("root", "calvin-secret")).json()
    assert [m["@odata.id"] for m in coll["Members"]] == ["/redfish/v1/Systems/e2"]
    assert sim.control("GET", "/control/heartbeat")["interval"] == 2


def test_host_faults_through_the_cli(sim: SimProcess) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "liferaft", "sim", *args]
        return subprocess.run(cmd, capture_output=True, text=True, env=sim.cli_env(), timeout=60)

    host = "east/east-compute-1"
    r = cli("fault", "host-flapping", host, "period=60", "isolated_for=20")
    assert r.returncode == 0 and f"injected host-flapping on {host}" in r.stdout, r.stderr
    (listed,) = sim.control("GET", "/control/faults")["faults"]
    assert (listed["period"], listed["isolated_for"]) == (60, 20)
    r = cli("heal", host)
    assert r.returncode == 0 and f"healed host-flapping on {host}" in r.stdout
    r = cli("heal", "east/nope")
    assert r.returncode == 2 and "unknown host 'nope'" in r.stderr
