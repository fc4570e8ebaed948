"""Fencing over the wire: the real ``ipmitool`` and pyghmi's ``Command`` against the
simulator's IPMI BMCs (RMCP+ / IPMI 2.0 over UDP on loopback).

``ipmitool`` comes from Debian (``scripts/system-deps`` installs it).
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

import pytest
from pyghmi.exceptions import IpmiException
from pyghmi.ipmi.command import Command

from tests.functional.hostha import bmc, entries
from tests.support.sim import SimProcess

IPMITOOL = shutil.which("ipmitool")
needs_ipmitool = pytest.mark.skipif(
    IPMITOOL is None, reason="ipmitool is not installed (run scripts/system-deps)"
)


def ipmitool(info: dict[str, Any], *args: str, password: str | None = None) -> Any:
    cmd = [
        str(IPMITOOL),
        "-I", "lanplus",
        "-H", "127.0.0.1",
        "-p", str(info["ipmi"]["port"]),
        "-U", info["username"],
        "-P", password or info["password"],
        "-N", "1", "-R", "1",
        *args,
    ]  # fmt: skip
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


@needs_ipmitool
def test_ipmitool_reads_and_fences_a_host(sim: SimProcess) -> None:
    host = "east-compute-1"
    info = bmc(sim, host)
    r = ipmitool(info, "chassis", "power", "status")
    assert (r.returncode, r.stdout.strip()) == (0, "Chassis Power is on"), r.stderr
    r = ipmitool(info, "chassis", "power", "off")
    assert r.returncode == 0 and "Down/Off" in r.stdout, r.stderr
    r = ipmitool(info, "chassis", "power", "status")
    assert r.stdout.strip() == "Chassis Power is off"
    # The simulator's compute service saw the power cut, the write log has it all.
    conn = sim.connect("east")
    sim.advance(61)
    (svc,) = [s for s in conn.compute.services() if s.host == host]
    assert svc.state == "down"
    (power,) = entries(sim, "power", host=host)
    assert power["data"] == {"on": False, "action": "ForceOff", "via": "ipmi"}
    reads = [(e["data"]["state"], e["data"]["via"]) for e in entries(sim, "power_read", host=host)]
    assert reads == [("On", "ipmi"), ("Off", "ipmi")]
    r = ipmitool(info, "chassis", "power", "on")
    assert r.returncode == 0 and "Up/On" in r.stdout
    assert ipmitool(info, "chassis", "power", "status").stdout.strip() == "Chassis Power is on"


@needs_ipmitool
def test_ipmitool_fails_on_a_wrong_password_garbage_and_a_down_site(sim: SimProcess) -> None:
    host = "east-compute-2"
    info = bmc(sim, host)
    r = ipmitool(info, "chassis", "power", "status", password="wrong-password")
    assert r.returncode != 0
    assert "Unable to establish IPMI v2 / RMCP+ session" in r.stderr
    sim.control("POST", "/control/faults", {"kind": "bmc-garbage", "target": f"east/{host}"})
    r = ipmitool(info, "chassis", "power", "status")
    assert r.returncode != 0 and "Chassis Power is" not in r.stdout
    sim.control("POST", "/control/heal", {})
    sim.control("POST", "/control/faults", {"kind": "site-down", "target": "east"})
    r = ipmitool(info, "chassis", "power", "status")
    assert r.returncode != 0 and "Unable to establish" in r.stderr
    sim.control("POST", "/control/heal", {})
    assert ipmitool(info, "chassis", "power", "status").returncode == 0
    assert entries(sim, "bmc_action") == []


def test_pyghmi_command_reads_powers_off_and_reads_back(sim: SimProcess) -> None:
    host = "west-compute-3"
    info = bmc(sim, host, "west")
    ipmi = Command(
        bmc="127.0.0.1",
        userid=info["username"],
        password=info["password"],
        port=info["ipmi"]["port"],
    )
    assert ipmi.get_power() == {"powerstate": "on"}
    result = ipmi.set_power("off", wait=True)
    assert result["powerstate"] == "off"
    assert ipmi.get_power() == {"powerstate": "off"}
    conn = sim.connect("west")
    sim.advance(61)
    (svc,) = [s for s in conn.compute.services() if s.host == host]
    assert svc.state == "down"
    states = [e["data"]["state"] for e in entries(sim, "power_read", host=host)]
    assert states[0] == "On" and states[-1] == "Off"
    assert ipmi.set_power("on", wait=True)["powerstate"] == "on"
    ipmi.ipmi_session.logout()
    with pytest.raises(IpmiException):
        Command(
            bmc="127.0.0.1",
            userid=info["username"],
            password="wrong-password",
            port=info["ipmi"]["port"],
        )
