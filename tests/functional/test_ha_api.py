"""The ``/v1/ha/...`` routes and ``liferaft ha ...`` against a running ``liferaft serve``.

A real controller process (HA on, Redfish fencing from the simulator's BMC
list, the BMC passwords given by reference from files) on the simulator's
clock, called with a token from the simulator's Keystone: status, segments,
hosts, maintenance, rejoin and events, through the API and through the CLI
with ``--json``.  No BMC password appears in any answer.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.functional.test_serve import Controller, liferaft_cmd, write_config
from tests.support.sim import SimProcess
from tests.support.wait import wait_for


def ha_config(sim: SimProcess, tmp_path: Path) -> tuple[dict[str, Any], list[str]]:
    """The ``ha`` settings for site east; every BMC password by reference (``$file``)."""
    bmcs = sim.control("GET", "/control/bmcs")["bmcs"]
    mine = {b["host"]: b for b in bmcs.values() if b["site"] == "east"}
    secrets: list[str] = []
    hosts = []
    for name, b in sorted(mine.items()):
        pw = tmp_path / f"{name}.pw"
        pw.write_text(b["password"])
        pw.chmod(0o600)
        secrets.append(b["password"])
        hosts.append(
            {
                "name": name,
                "fencers": [
                    {
                        "driver": "redfish",
                        "address": b["redfish"]["url"],
                        "system_id": b["redfish"]["system_id"],
                        "username": b["username"],
                        "password": {"$file": str(pw)},
                        "verify_tls": False,
                    }
                ],
            }
        )
    ha = {
        "enabled": True,
        "segments": [{"name": "east-all", "hosts": sorted(mine), "shared_storage": True}],
        "hosts": hosts,
        "poll_interval": 5.0,
        "recheck_delay": 5.0,
        "notifier": "none",
    }
    return ha, secrets


@pytest.fixture
def ha_controller(sim: SimProcess, tmp_path: Path) -> Any:
    ha, secrets = ha_config(sim, tmp_path)
    c = Controller(write_config(tmp_path, sim, ha=ha), tmp_path / "serve.log")
    yield c, secrets
    c.stop()


def poll(check: Any, what: str, sim: SimProcess, timeout: float = 60.0) -> Any:
    """Nudge the simulator's clock a second at a time until ``check()`` returns something true.

    Real-time polling too: the controller under test acts on its own schedule.
    """
    return wait_for(check, timeout, what, interval=0.1, between=lambda: sim.advance(1))


def cli(controller: Controller, token: str, *args: str) -> Any:
    r = subprocess.run(
        liferaft_cmd("ha", *args, "--url", controller.url, "--token", token, "--json"),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    return r.stdout


@pytest.mark.timeout(300)
def test_ha_routes_and_cli_against_a_running_controller(
    sim: SimProcess, ha_controller: tuple[Controller, list[str]]
) -> None:
    controller, secrets = ha_controller
    url = controller.url
    r = httpx.get(url + "/v1/ha/status", timeout=30)
    assert r.status_code == 401, r.text
    token = str(sim.connect("east-demo").auth_token)
    hdr = {"X-Auth-Token": token}
    texts: list[str] = []

    def get(path: str, **params: Any) -> Any:
        resp = httpx.get(url + path, headers=hdr, params=params, timeout=30)
        assert resp.status_code == 200, (path, resp.status_code, resp.text)
        texts.append(resp.text)
        return resp.json()

    def post(path: str, body: Any = None, status: int = 200) -> Any:
        resp = httpx.post(url + path, headers=hdr, json=body, timeout=30)
        assert resp.status_code == status, (path, resp.status_code, resp.text)
        texts.append(resp.text)
        return resp.json()

    # The controller leads and has seen every host of the segment.
    status = poll(
        lambda: (s := get("/v1/ha/status"))["leading"] and sum(s["hosts"].values()) > 0 and s,
        "the HA service leading with its hosts",
        sim,
    )
    assert status["enabled"] is True
    assert status["hosts"]["active"] == sum(status["hosts"].values())
    assert status["breaker"] in (None, False) or isinstance(status["breaker"], dict)

    segs = get("/v1/ha/segments")
    (seg,) = segs["segments"]
    assert seg["name"] == "east-all" and seg["site"] == "east" and seg["shared_storage"] is True
    names = seg["hosts"]
    assert {f["host"] for f in segs["fencing"]} == set(names)
    assert all(lv["driver"] == "redfish" for f in segs["fencing"] for lv in f["levels"])
    assert all(set(lv) == {"driver", "address"} for f in segs["fencing"] for lv in f["levels"])

    hosts = {h["host"]: h for h in get("/v1/ha/hosts")["hosts"]}
    assert set(hosts) == set(names)
    assert all(h["state"] == "active" and not h["maintenance"] for h in hosts.values())

    # Maintenance on and off; a host that is not watched is a 404; rejoin of an active host refused.
    h1 = names[0]
    row = post(f"/v1/ha/hosts/{h1}/maintenance", {"on": True, "reason": "disk swap"})
    assert row["host"] == h1 and row["maintenance"] is True
    assert get("/v1/ha/status")["maintenance"] == [h1]
    row = post(f"/v1/ha/hosts/{h1}/maintenance", {"on": False})
    assert row["maintenance"] is False
    r = httpx.post(
        url + "/v1/ha/hosts/no-such-host/maintenance", headers=hdr, json={"on": True}, timeout=30
    )
    assert r.status_code == 404, r.text
    r = httpx.post(url + f"/v1/ha/hosts/{h1}/maintenance", headers=hdr, json={}, timeout=30)
    assert r.status_code == 400 and "body.on" in r.json()["error"]["message"], r.text
    r = httpx.post(url + f"/v1/ha/hosts/{h1}/rejoin", headers=hdr, timeout=30)
    assert r.status_code in (400, 409), r.text

    ev = get("/v1/ha/events")
    assert isinstance(ev["events"], list) and isinstance(ev["last"], int)
    assert get("/v1/ha/events", after=ev["last"])["events"] == []

    # The CLI, with --json, shows the same.
    cst = json.loads(cli(controller, token, "status"))
    assert cst["leading"] is True and cst["hosts"] == get("/v1/ha/status")["hosts"]
    cseg = json.loads(cli(controller, token, "segments"))
    assert cseg == segs
    chosts = json.loads(cli(controller, token, "hosts"))
    assert {h["host"] for h in chosts["hosts"]} == set(names)
    cev = json.loads(cli(controller, token, "events"))
    assert [e["id"] for e in cev["events"]] == [e["id"] for e in ev["events"]]
    texts += [json.dumps(x) for x in (cst, cseg, chosts, cev)]

    # No BMC password in any answer, nor in the controller's log (a fence and a rejoin
    # went through the BMCs meanwhile).
    texts.append(controller.log_path.read_text())
    for secret in secrets:
        assert all(secret not in t for t in texts), "a BMC password leaked"
