"""The simulated hosts' BMCs over Redfish, driven by sushy: power reads, fencing, auth, faults."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
import sushy
import yaml
from sushy import exceptions as sushy_exc

from tests.functional.hostha import (
    SERVICE_DOWN_TIME,
    TOPOLOGY,
    bmc,
    entries,
    guest,
    redfish_system,
    service,
    until,
    writes_between,
)
from tests.support.sim import SimProcess


@pytest.fixture
def hsim(sim_factory: Callable[..., SimProcess]) -> SimProcess:
    return sim_factory(topology=TOPOLOGY)


def test_force_off_through_sushy_stops_the_host_and_on_brings_it_back(hsim: SimProcess) -> None:
    sim = hsim
    g = guest(sim)
    sim.advance(5)
    system = redfish_system(sim, g.host)
    assert system.power_state == sushy.POWER_STATE_ON
    assert sushy.RESET_FORCE_OFF in system.get_allowed_reset_system_values()

    t_off = sim.now()
    system.reset_system(sushy.RESET_FORCE_OFF)
    system.refresh()
    assert system.power_state == sushy.POWER_STATE_OFF
    # The power change and both read-backs are in the write log.
    (power,) = entries(sim, "power", host=g.host)
    assert power["data"] == {"on": False, "action": "ForceOff", "via": "redfish"}
    reads = [e["data"]["state"] for e in entries(sim, "power_read", host=g.host)]
    assert reads[0] == "On" and reads[-1] == "Off"
    assert entries(sim, "power_read", host=g.host)[-1]["time"] >= power["time"]

    # Its guest stopped writing at once; Nova notices after the service-down time.
    sim.advance(SERVICE_DOWN_TIME - 1)
    assert writes_between(sim, g, t_off, sim.now()) == []
    assert service(g.conn, g.host).state == "up"
    sim.advance(2)
    assert service(g.conn, g.host).state == "down"

    system.reset_system(sushy.RESET_ON)
    system.refresh()
    assert system.power_state == sushy.POWER_STATE_ON
    assert service(g.conn, g.host).state == "up"
    # Nova finds the guest stopped after the power cut; started again, it writes.
    until(sim, lambda: g.conn.compute.get_server(g.server).status == "SHUTOFF", "power sync")
    g.conn.compute.start_server(g.server)
    until(sim, lambda: g.conn.compute.get_server(g.server).status == "ACTIVE", "start")
    t_on = sim.now()
    sim.advance(5)
    assert {e["host"] for e in writes_between(sim, g, t_on, sim.now())} == {g.host}


def test_power_actions_take_the_power_latency_on_the_clock(
    sim_factory: Callable[..., SimProcess],
) -> None:
    sim = sim_factory(topology={"latency": {"power": 5.0}})
    host = "east-compute-2"
    system = redfish_system(sim, host)
    system.reset_system(sushy.RESET_FORCE_OFF)
    system.refresh()
    assert system.power_state == sushy.POWER_STATE_POWERING_OFF
    sim.advance(5)
    system.refresh()
    assert system.power_state == sushy.POWER_STATE_OFF
    system.reset_system(sushy.RESET_FORCE_RESTART)  # on an off host: powers it on
    sim.advance(5)
    system.refresh()
    assert system.power_state == sushy.POWER_STATE_ON
    actions = [e["data"]["action"] for e in entries(sim, "bmc_action", host=host)]
    assert actions == ["ForceOff", "ForceRestart"]


def test_credentials_are_per_bmc(sim: SimProcess) -> None:
    one, two = bmc(sim, "east-compute-1"), bmc(sim, "east-compute-2")
    assert one["password"] != two["password"]
    url = one["redfish"]["url"]
    path = one["redfish"]["system_path"]
    # The service root is public; everything else needs this BMC's credentials.
    root = httpx.get(url + "/redfish/v1/")
    assert root.status_code == 200 and root.json()["Links"]["Sessions"]["@odata.id"]
    for auth in (None, ("admin", "wrong"), (two["username"], two["password"])):
        r = httpx.get(url + path, auth=auth)
        assert r.status_code == 401, auth
        assert r.headers["WWW-Authenticate"].startswith("Basic")
        err = r.json()["error"]
        assert err["@Message.ExtendedInfo"][0]["MessageId"] == "Base.1.8.NoValidSession"
    ok = httpx.get(url + path, auth=(one["username"], one["password"]))
    assert ok.status_code == 200 and ok.json()["PowerState"] == "On"
    # The collection lists exactly the systems the credentials open.
    coll = httpx.get(url + "/redfish/v1/Systems", auth=(two["username"], two["password"])).json()
    assert [m["@odata.id"] for m in coll["Members"]] == [two["redfish"]["system_path"]]
    # sushy: a wrong password is an access error, the right one finds the one system.
    with pytest.raises(sushy_exc.AccessError):
        sushy.Sushy(url + "/redfish/v1/", username="admin", password="wrong").get_system(path)
    root_ok = sushy.Sushy(url + "/redfish/v1/", username=one["username"], password=one["password"])
    assert root_ok.get_system().identity == "east-compute-1"
    # Sessions: a token works until the session is deleted.
    r = httpx.post(
        url + "/redfish/v1/SessionService/Sessions",
        json={"UserName": one["username"], "Password": one["password"]},
    )
    assert r.status_code == 201
    token, location = r.headers["X-Auth-Token"], r.headers["Location"]
    assert httpx.get(url + path, headers={"X-Auth-Token": token}).status_code == 200
    assert httpx.delete(url + location, headers={"X-Auth-Token": token}).status_code == 204
    assert httpx.get(url + path, headers={"X-Auth-Token": token}).status_code == 401


def test_bad_reset_requests_get_redfish_errors(sim: SimProcess) -> None:
    one = bmc(sim, "east-compute-1")
    url = one["redfish"]["url"]
    auth = (one["username"], one["password"])
    target = one["redfish"]["system_path"] + "/Actions/ComputerSystem.Reset"
    r = httpx.post(url + target, json={"ResetType": "Explode"}, auth=auth)
    assert r.status_code == 400
    assert "Explode" in r.json()["error"]["message"]
    r = httpx.post(url + target, json={}, auth=auth)
    assert r.status_code == 400
    r = httpx.get(url + "/redfish/v1/Systems/nope", auth=auth)
    assert r.status_code == 404
    assert r.json()["error"]["@Message.ExtendedInfo"][0]["MessageId"].endswith("ResourceNotFound")
    assert entries(sim, "bmc_action") == []


def test_bmc_garbage_returns_malformed_json_until_healed(sim: SimProcess) -> None:
    host = "east-compute-3"
    one = bmc(sim, host)
    url = one["redfish"]["url"] + one["redfish"]["system_path"]
    auth = (one["username"], one["password"])
    sim.control("POST", "/control/faults", {"kind": "bmc-garbage", "target": f"east/{host}"})
    r = httpx.get(url, auth=auth)
    assert r.status_code == 200
    with pytest.raises(ValueError):
        r.json()
    with pytest.raises((sushy_exc.SushyError, ValueError)):
        redfish_system(sim, host)
    # Other BMCs answer normally.
    assert redfish_system(sim, "east-compute-1").power_state == sushy.POWER_STATE_ON
    sim.control("POST", "/control/heal", {"kind": "bmc-garbage", "target": f"east/{host}"})
    assert httpx.get(url, auth=auth).json()["PowerState"] == "On"


def test_bmcs_of_a_down_site_do_not_answer(sim: SimProcess) -> None:
    one = bmc(sim, "east-compute-1")
    sim.control("POST", "/control/faults", {"kind": "site-down", "target": "east"})
    with pytest.raises(httpx.ConnectError):
        httpx.get(one["redfish"]["url"] + "/redfish/v1/", timeout=5)
    west = bmc(sim, "west-compute-1", "west")
    assert httpx.get(west["redfish"]["url"] + "/redfish/v1/").status_code == 200
    sim.control("POST", "/control/heal", {"target": "east"})
    assert httpx.get(one["redfish"]["url"] + "/redfish/v1/").status_code == 200


def test_bmcs_are_listed_in_the_control_api_and_the_state_dir(sim: SimProcess) -> None:
    listed = sim.control("GET", "/control/bmcs")["bmcs"]
    on_disk = yaml.safe_load((sim.state_dir / "bmcs.yaml").read_text())["bmcs"]
    assert listed == on_disk
    assert len(listed) == 6
    ports = {b["ipmi"]["port"] for b in listed.values()}
    assert len(ports) == 6 and 0 not in ports
    assert (sim.state_dir / "bmcs.yaml").stat().st_mode & 0o777 == 0o600
