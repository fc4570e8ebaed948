"""The control API's WAN link routes, on a running simulator."""

from __future__ import annotations

import httpx

from tests.support.sim import SimProcess


def test_links_are_listed_and_settings_change(sim: SimProcess) -> None:
    links = sim.control("GET", "/control/links")["links"]
    assert [lk["name"] for lk in links] == ["east-west"]
    assert links[0]["flows"] == [] and links[0]["up"] is True

    got = sim.control("PUT", "/control/links/west-east", {"background_mbps": 300})["link"]
    assert got["background_mbps"] == 300 and got["available_mbps"] == 700
    got = sim.control("PUT", "/control/links/east-west", {"bandwidth_mbps": 500})["link"]
    assert got["available_mbps"] == 200
    # A configured capacity is not a fault.
    assert sim.control("GET", "/control/faults")["faults"] == []

    got = sim.control("PUT", "/control/links/east-west/limits", {"limits_mbps": {"backup": 50}})
    assert got["link"]["tag_limits_mbps"] == {"backup": 50}
    got = sim.control("PUT", "/control/links/east-west/limits", {"limits_mbps": {"backup": None}})
    assert got["link"]["tag_limits_mbps"] == {}


def test_link_degrade_fault_shows_and_heals(sim: SimProcess) -> None:
    sim.control(
        "POST",
        "/control/faults",
        {"kind": "link-degraded", "target": "east-west", "bandwidth_mbps": 10},
    )
    assert sim.control("GET", "/control/links")["links"][0]["bandwidth_mbps"] == 10
    sim.control("POST", "/control/heal", {})
    assert sim.control("GET", "/control/links")["links"][0]["bandwidth_mbps"] == 1000


def test_bad_link_requests_are_400(sim: SimProcess) -> None:
    base = sim.control_url
    r = httpx.put(f"{base}/control/links/east-south", json={"background_mbps": 1})
    assert r.status_code == 400 and "unknown link" in r.json()["error"]["message"]
    r = httpx.put(f"{base}/control/links/east-west", json={"background_mbps": -1})
    assert r.status_code == 400
    r = httpx.put(f"{base}/control/links/east-west", json={"speed": 1})
    assert r.status_code == 400
    r = httpx.put(f"{base}/control/links/east-west/limits", content=b"{nope")
    assert r.status_code == 400
    r = httpx.put(f"{base}/control/links/east-west/limits", json={"limits_mbps": {"x": "fast"}})
    assert r.status_code == 400
