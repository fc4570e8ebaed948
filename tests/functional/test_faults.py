"""Site faults injected and healed through the CLI, seen through the OpenStack APIs."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from typing import Any

import httpx
import pytest

from tests.support.sim import SimProcess


def liferaft(sim: SimProcess, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "liferaft", "sim", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, env=sim.cli_env(), timeout=60)
    if check and r.returncode != 0:
        raise AssertionError(f"{cmd} failed: {r.stdout}{r.stderr}")
    return r


def token_for(sim: SimProcess, site: str) -> str:
    body = {
        "auth": {
            "identity": {
                "methods": ["password"],
                "password": {
                    "user": {
                        "name": "admin",
                        "domain": {"name": "Default"},
                        "password": "admin-secret",
                    }
                },
            },
            "scope": {"project": {"name": "admin", "domain": {"name": "Default"}}},
        }
    }
    r = httpx.post(sim.sites[site] + "/identity/v3/auth/tokens", json=body, timeout=10)
    assert r.status_code == 201, r.text
    return r.headers["X-Subject-Token"]


def test_site_down_refuses_connections_and_heals(sim: SimProcess) -> None:
    conn = sim.connect("east")
    assert conn.identity.get_project(conn.current_project_id).name == "admin"
    out = liferaft(sim, "fault", "site-down", "east")
    assert "injected site-down on east" in out.stdout
    with pytest.raises(httpx.ConnectError):
        httpx.get(sim.sites["east"] + "/identity/v3", timeout=5)
    # The other site is untouched.
    assert httpx.get(sim.sites["west"] + "/identity/v3", timeout=5).status_code == 200
    status = json.loads(liferaft(sim, "status", "--json").stdout)
    assert status["sites"]["east"]["faults"]["down"] is True
    liferaft(sim, "heal", "east")
    fresh = sim.connect("east")
    assert fresh.identity.get_project(fresh.current_project_id).name == "admin"
    assert sim.control("GET", "/control/faults")["faults"] == []
    entries = sim.control("GET", "/control/writelog")["entries"]
    kinds = [e["kind"] for e in entries if e["kind"] in ("site_down", "site_up")]
    assert kinds == ["site_down", "site_up"]
    power = [e for e in entries if e["kind"] == "power" and e["site"] == "east"]
    assert power and all(e["data"]["cause"] in ("site-down", "site-up") for e in power)


def test_api_errors_answer_503_in_the_service_shape(sim: SimProcess) -> None:
    token = token_for(sim, "west")
    liferaft(sim, "fault", "api-errors", "west", "rate=1.0")
    r = httpx.get(sim.sites["west"] + "/identity/v3/projects", headers={"X-Auth-Token": token})
    assert r.status_code == 503
    assert r.json()["error"]["code"] == 503
    liferaft(sim, "heal", "west", "--kind", "api-errors")
    r = httpx.get(sim.sites["west"] + "/identity/v3/projects", headers={"X-Auth-Token": token})
    assert r.status_code == 200


def test_api_latency_is_charged_on_the_simulated_clock(sim: SimProcess) -> None:
    token = token_for(sim, "east")
    liferaft(sim, "fault", "api-latency", "east", "seconds=5")
    t0 = sim.now()
    result: dict[str, Any] = {}

    def call() -> None:
        r = httpx.get(
            sim.sites["east"] + "/identity/v3/projects", headers={"X-Auth-Token": token}, timeout=30
        )
        result["status"] = r.status_code
        result["now"] = sim.now()

    th = threading.Thread(target=call)
    th.start()
    th.join(timeout=1.0)
    assert th.is_alive(), "the call must wait for simulated time to pass"
    sim.advance(5)
    th.join(timeout=20)
    assert result["status"] == 200
    assert result["now"] - t0 >= 5


@pytest.mark.parametrize(
    "args, message",
    [
        (["fault", "meltdown", "east"], "unknown fault kind 'meltdown'"),
        (["fault", "site-down", "north"], "unknown site 'north'"),
        (["fault", "api-errors", "east", "rate=2"], "'rate' must be between 0.0 and 1.0"),
        (["fault", "link-down", "east-north"], "unknown link 'east-north'"),
        (["advance", "--", "-3"], "advance needs 'seconds', a number >= 0"),
    ],
)
def test_bad_fault_requests_get_clear_errors(
    sim: SimProcess, args: list[str], message: str
) -> None:
    r = liferaft(sim, *args, check=False)
    assert r.returncode == 2
    assert message in r.stderr.replace("\n", " ")


def test_link_faults_show_in_status(sim: SimProcess) -> None:
    liferaft(sim, "fault", "link-degraded", "west-east", "bandwidth_mbps=10")
    liferaft(sim, "fault", "link-down", "east-west")
    faults = sim.control("GET", "/control/faults")["faults"]
    assert {f["kind"] for f in faults} == {"link-down", "link-degraded"}
    status = json.loads(liferaft(sim, "status", "--json").stdout)
    link = status["links"][0]
    assert link["up"] is False and link["bandwidth_mbps"] == 10
    liferaft(sim, "heal")
    assert sim.control("GET", "/control/faults")["faults"] == []


def test_host_fenced_before_a_site_outage_stays_off_when_power_returns(sim: SimProcess) -> None:
    import sushy

    from tests.functional.hostha import redfish_system

    conn = sim.connect("east")
    hosts = sorted(h.name for h in conn.compute.hypervisors())
    fenced = hosts[0]
    system = redfish_system(sim, fenced)
    system.reset_system(sushy.RESET_FORCE_OFF)
    sim.advance(10)
    assert redfish_system(sim, fenced).power_state == sushy.SYSTEM_POWER_STATE_OFF
    liferaft(sim, "fault", "site-down", "east")
    liferaft(sim, "heal", "east")
    sim.advance(10)
    assert redfish_system(sim, fenced).power_state == sushy.SYSTEM_POWER_STATE_OFF
    assert redfish_system(sim, hosts[1]).power_state == sushy.SYSTEM_POWER_STATE_ON
