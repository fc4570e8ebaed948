"""The simulated Placement API: providers per host, inventories, usages and allocations."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.functional.test_compute import Nova, topology
from tests.support.sim import SimProcess


def test_root_document_needs_no_token(sim: SimProcess) -> None:
    r = httpx.get(sim.sites["east"] + "/placement")
    assert r.status_code == 200
    (v,) = r.json()["versions"]
    assert (v["id"], v["min_version"], v["max_version"], v["status"]) == (
        "v1.0",
        "1.0",
        "1.39",
        "CURRENT",
    )


def test_providers_usages_and_allocations_follow_the_servers(
    sim_factory: Callable[..., SimProcess],
) -> None:
    sim = sim_factory(topology=topology())
    nova = Nova(sim)
    headers = {"X-Auth-Token": nova.token, "OpenStack-API-Version": "placement 1.39"}
    base = sim.sites["east"] + "/placement"
    rps = httpx.get(base + "/resource_providers", headers=headers).json()["resource_providers"]
    by_name = {rp["name"]: rp for rp in rps}
    assert set(by_name) == {"east-compute-1", "east-compute-2", "east-compute-3"}
    rp = by_name["east-compute-2"]
    inv = httpx.get(f"{base}/resource_providers/{rp['uuid']}/inventories", headers=headers).json()
    assert inv["inventories"]["VCPU"]["total"] == 64
    assert inv["inventories"]["VCPU"]["allocation_ratio"] == 4.0
    assert inv["inventories"]["MEMORY_MB"]["total"] == 262144

    sid = nova.boot(availability_zone="nova:east-compute-2", flavorRef="2")
    usages = httpx.get(f"{base}/resource_providers/{rp['uuid']}/usages", headers=headers).json()
    assert usages["usages"] == {"VCPU": 1, "MEMORY_MB": 2048, "DISK_GB": 20}
    assert usages["resource_provider_generation"] > rp["generation"]
    alloc = httpx.get(f"{base}/allocations/{sid}", headers=headers).json()
    assert alloc["allocations"][rp["uuid"]]["resources"] == {
        "VCPU": 1,
        "MEMORY_MB": 2048,
        "DISK_GB": 20,
    }
    assert alloc["project_id"] == nova.project_id
    totals = httpx.get(
        f"{base}/usages", params={"project_id": nova.project_id}, headers=headers
    ).json()
    assert totals["usages"] == {"VCPU": 1, "MEMORY_MB": 2048, "DISK_GB": 20}

    assert nova("DELETE", f"/servers/{sid}").status_code == 204
    usages = httpx.get(f"{base}/resource_providers/{rp['uuid']}/usages", headers=headers).json()
    assert usages["usages"] == {"VCPU": 0, "MEMORY_MB": 0, "DISK_GB": 0}
    assert httpx.get(f"{base}/allocations/{sid}", headers=headers).json() == {"allocations": {}}


def test_placement_errors_have_placement_shape(sim: SimProcess) -> None:
    conn = sim.connect("east")
    headers = {"X-Auth-Token": conn.auth_token}
    base = sim.sites["east"] + "/placement"
    r = httpx.get(
        base + "/resource_providers/0b9b9a49-0000-4000-8000-000000000000", headers=headers
    )
    assert r.status_code == 404
    (err,) = r.json()["errors"]
    assert err["status"] == 404 and err["title"] == "Not Found"
    r = httpx.get(base + "/resource_providers", headers={"X-Auth-Token": "garbage"})
    assert r.status_code == 401 and r.json()["errors"][0]["status"] == 401
    demo = sim.connect("east-demo")
    r = httpx.get(base + "/resource_providers", headers={"X-Auth-Token": demo.auth_token})
    assert r.status_code == 403
    r = httpx.get(
        base + "/resource_providers",
        headers={"X-Auth-Token": conn.auth_token, "OpenStack-API-Version": "placement 1.40"},
    )
    assert r.status_code == 406
