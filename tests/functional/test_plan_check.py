"""The recovery plan check and the pair's mappings, end to end (real controllers, the simulator).

east runs a server on a flavor, a network and a volume type that west does
not have, and west's project is short of cores and ports: ``liferaft plan check``
lists every problem at once (exit 1), a recovery is refused with the same
list before anything changes at west.  With west's mappings configured and
its quota raised, the check passes and the recovery uses west's flavor,
network and volume type.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.drcontroller import MANUAL, ApiError, DrWorld, until

pytestmark = pytest.mark.timeout(600)
EAST_ONLY = {"flavor": "pc.east", "network": "pc-net", "volume_type": "pc-gold"}


@pytest.fixture
def world(tmp_path: Path) -> Iterator[DrWorld]:
    w = DrWorld(tmp_path)
    try:
        w.start("east")
        w.start("west")
        yield w
    finally:
        w.stop()


def cli(w: DrWorld, site: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "liferaft", *args, "--url", w.ctls[site].url],
        capture_output=True,
        text=True,
        timeout=120,
        env={**w.sim.cli_env(), "LIFERAFT_TOKEN": w.token(site)},
    )


def east_only_vm(w: DrWorld) -> dict[str, Any]:
    """A server at east on a flavor, network (west's CIDR) and volume type west lacks."""
    west = w.sim.connect("west")
    c = w.sim.connect("east")
    try:
        west_net = west.network.find_network("private", ignore_missing=False)
        cidr = next(west.network.subnets(network_id=west_net.id)).cidr
        fl = c.compute.create_flavor(name=EAST_ONLY["flavor"], ram=512, vcpus=2, disk=1)
        net = c.network.create_network(name=EAST_ONLY["network"])
        c.network.create_subnet(network_id=net.id, cidr=cidr, ip_version=4, name="pc-sub")
        c.block_storage.create_type(name=EAST_ONLY["volume_type"])
        image = c.image.find_image("cirros", ignore_missing=False)
        s = c.compute.create_server(
            name="pc-db", image_id=image.id, flavor_id=fl.id, networks=[{"uuid": net.id}]
        )
        v = c.block_storage.create_volume(
            name="pc-data", size=1, volume_type=EAST_ONLY["volume_type"]
        )
        until("pc-db ACTIVE", lambda: c.compute.get_server(s.id).status == "ACTIVE")
        until("pc-data", lambda: c.block_storage.get_volume(v.id).status == "available")
        c.compute.create_volume_attachment(s.id, volume_id=v.id)
        until("pc-data in use", lambda: c.block_storage.get_volume(v.id).status == "in-use")
        return {"id": str(s.id), "volume": str(v.id)}
    finally:
        c.close()
        west.close()


def set_west_quotas(w: DrWorld, cores: int, ports: int) -> None:
    """west's project quotas: compute cores (Nova), ports (Neutron)."""
    c = w.sim.connect("west")
    try:
        pid = c.current_project_id
        r = c.compute.put(f"/os-quota-sets/{pid}", json={"quota_set": {"cores": cores}})
        assert r.status_code == 200, r.text
        r = c.network.put(f"/quotas/{pid}", json={"quota": {"port": ports}})
        assert r.status_code == 200, r.text
    finally:
        c.close()


def test_plan_check_lists_every_problem_and_mappings_make_it_recoverable(world: DrWorld) -> None:
    w = world
    vm = east_only_vm(w)
    w.api("east", "PUT", "/v1/policies/pc", MANUAL)
    g = w.api("east", "POST", "/v1/protect/servers", {"server": vm["id"], "policy": "pc"})
    assert [m["cloud_id"] for m in g["volumes"]] == [vm["volume"]]
    cps = [c for c in w.wait_settled(g["id"]) if c["state"] == "complete"]
    assert cps, w.checkpoints(g["id"])
    set_west_quotas(w, cores=1, ports=0)

    # Every problem at once, with where to fix it; exit status 1.
    r = cli(w, "west", "plan", "check", "east", "--json")
    assert r.returncode == 1, r.stderr
    chk = json.loads(r.stdout)
    assert not chk["ok"] and chk["groups"][0]["checkpoint_id"] == cps[-1]["id"]
    text = "\n".join(f"{p['kind']} {p['subject']}: {p['message']}" for p in chk["problems"])
    for want in (
        "no flavor 'pc.east' at west and no mapping for it: add protection.mappings.east.flavors",
        "no network 'pc-net' at west and no mapping for it: add protection.mappings.east.networks",
        "no volume type 'pc-gold' at west and no mapping for it",
        "compute quota cores: the plan needs 2, west's project has 1 free",
        "network quota port: the plan needs 1, west's project has 0 free (limit 0,",
    ):
        assert want in text, text
    r = cli(w, "west", "plan", "check", "east")
    assert r.returncode == 1 and "PROBLEM [mapping]" in r.stdout, r.stdout
    assert "the recovery plan of east has 5 problem(s)" in r.stderr, r.stderr

    # A recovery is refused with the same list, before anything changes at west.
    with pytest.raises(ApiError) as e:
        w.api("west", "POST", "/v1/recovery", {"datacenter": "east", "declare_down": "east"})
    assert e.value.status == 422, e.value.text
    msg = json.loads(e.value.text)["error"]["message"]
    assert "refused before anything changed: 5 problems" in msg and "pc.east" in msg, msg
    assert w.api("west", "GET", "/v1/recovery/runs")["runs"] == []
    c = w.sim.connect("west")
    try:
        assert not [s for s in c.compute.servers() if s.name == "pc-db"]
    finally:
        c.close()
    # A site that is not a peer, and the controller's own site, are bad input.
    with pytest.raises(ApiError) as e:
        w.api("west", "GET", "/v1/recovery/check/nowhere")
    assert e.value.status == 404 and "not a peer of west" in e.value.text
    r = cli(w, "west", "plan", "check", "west")
    assert r.returncode == 1 and "this controller serves west" in r.stderr

    # Malformed requests: 400 naming the field, nothing changed.
    for method, path, body, field in (
        ("POST", "/v1/protect/servers", {"policy": "pc"}, "body.server"),
        ("POST", "/v1/groups/x/members", {"kind": "disk", "id": "v"}, "body.kind"),
        (
            "PUT",
            "/v1/policies/bad",
            {"rpo_seconds": "soon", "interval_seconds": 5},
            "body.rpo_seconds",
        ),
        ("POST", "/v1/recovery", {"declare_down": "east"}, "body.datacenter"),
    ):
        site = "west" if path == "/v1/recovery" else "east"
        with pytest.raises(ApiError) as e:
            w.api(site, method, path, body)
        assert e.value.status == 400 and field in e.value.text, (path, e.value.text)
    assert w.api("west", "GET", "/v1/recovery/runs")["runs"] == []

    # west's mappings for east.  First onto a flavor too big for any of west's hosts: the
    # check finds the names now, and reports Placement capacity (and the cores quota).
    c = w.sim.connect("west")
    try:
        c.compute.create_flavor(name="pc.huge", ram=512, vcpus=4096, disk=1)
    finally:
        c.close()
    base = w.config
    flavor = {"pc.east": "pc.huge"}

    def with_mappings(site: str) -> Path:
        path = base(site)
        if site == "west":
            cfg = yaml.safe_load(path.read_text())
            cfg["protection"]["mappings"] = {
                "east": {
                    "flavors": flavor,
                    "networks": {"pc-net": "private"},
                    "volume_types": {"pc-gold": "__DEFAULT__"},
                }
            }
            path.write_text(yaml.safe_dump(cfg))
        return path

    w.config = with_mappings  # type: ignore[method-assign]
    w.ctls["west"].stop()
    w.start("west")
    r = cli(w, "west", "plan", "check", "east", "--json")
    assert r.returncode == 1, r.stderr
    kinds = sorted(p["kind"] for p in json.loads(r.stdout)["problems"])
    assert kinds == ["capacity", "quota", "quota"], r.stdout
    assert (
        "1 of 1 servers do not fit on 3 compute hosts of west: 1 x pc.huge (4096 VCPU" in r.stdout
    )

    # Then onto a flavor that fits, with room in the quota: the check passes, the recovery
    # uses west's flavor, network and volume type.
    set_west_quotas(w, cores=20, ports=-1)
    flavor["pc.east"] = "m1.small"
    w.ctls["west"].stop()
    w.start("west")
    r = cli(w, "west", "plan", "check", "east", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    chk = json.loads(r.stdout)
    assert chk["ok"] and chk["problems"] == []
    assert set(chk["resolved"]["networks"]) == {"pc-net"}
    run = w.api("west", "POST", "/v1/recovery", {"datacenter": "east", "declare_down": "east"})
    final = w.wait_run(run["id"])
    assert final["state"] == "done", (final["failed_steps"], final["error"])
    rep = final["report"]
    c = w.sim.connect("west")
    try:
        (srv,) = [x for x in rep["servers"] if x["source"] == vm["id"]]
        s = c.compute.get_server(srv["server_id"])
        assert s.flavor["original_name"] == "m1.small"
        assert list(s.addresses) == ["private"]
        (vol,) = [x for x in rep["volumes"] if x["source"] == vm["volume"]]
        assert c.block_storage.get_volume(vol["volume_id"]).volume_type == "__DEFAULT__"
    finally:
        c.close()
