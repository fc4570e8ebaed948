"""Disaster recovery end to end: east lost, recovered at west by west's own controller.

Real controllers (``liferaft serve``) against the simulator over HTTP; the
checks read the clouds through openstacksdk and the restored data through
the simulator's canary reader and consistency checker.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.drcontroller import (
    MANUAL,
    ApiError,
    DrWorld,
    build_vm,
    until,
)
from tests.support.kills import count_recovered, recover_through_kills

pytestmark = pytest.mark.timeout(600)
RATE = 2.0  # canary writes per simulated second


@pytest.fixture
def world(tmp_path: Path) -> Iterator[DrWorld]:
    w = DrWorld(tmp_path)
    try:
        w.start("east")
        w.start("west")
        yield w
    finally:
        w.stop()


def protect(w: DrWorld, db: dict[str, Any], apps: list[dict[str, Any]]) -> dict[str, Any]:
    """db (tier 0, quiesced first, its volumes) and the apps (tier 1) in group ``vnf``."""
    w.api("east", "PUT", "/v1/policies/vnf", MANUAL)
    g: dict[str, Any] = w.api("east", "POST", "/v1/groups", {"name": "vnf", "policy": "vnf"})
    members = [("server", db["id"], 0, 1)]
    members += [("server", a["id"], 1, i + 2) for i, a in enumerate(apps)]
    members += [("volume", v, 0, 0) for v in db["volumes"]]
    for kind, rid, tier, rank in members:
        w.api(
            "east",
            "POST",
            "/v1/groups/vnf/members",
            {"kind": kind, "id": rid, "tier": tier, "rank": rank},
        )
    return g


def addresses(w: DrWorld, site: str, server_id: str) -> list[tuple[str, tuple[str, ...]]]:
    """(MAC, fixed IPs) of each port of a server, read through Neutron."""
    c = w.sim.connect(site)
    try:
        return sorted(
            (p.mac_address, tuple(sorted(f["ip_address"] for f in p.fixed_ips)))
            for p in c.network.ports(device_id=server_id)
        )
    finally:
        c.close()


def lose_east(w: DrWorld) -> float:
    w.ctl("POST", "/control/faults", {"kind": "site-down", "target": "east"})
    failure = w.now()
    w.ctls["east"].kill()
    return failure


def manifest_object(w: DrWorld, name: str, data: bytes | None = None) -> bytes:
    """Read (or replace) a manifest in west's object store through the Swift API."""
    c = w.sim.connect("west")
    try:
        if data is not None:
            c.object_store.upload_object(container=w.container, name=name, data=data)
        return bytes(c.object_store.download_object(name, container=w.container))
    finally:
        c.close()


def plan(w: DrWorld) -> dict[str, Any]:
    out: dict[str, Any] = w.api("west", "GET", "/v1/recovery/plan/east")
    return out


def test_east_lost_recovered_at_west_same_addresses_data_verified(world: DrWorld) -> None:
    w = world
    db = build_vm(w, "db", volumes=2, canary="database", rate=RATE)
    app = build_vm(w, "app", volumes=0, canary=None)
    g = protect(w, db, [app])
    w.wait_settled(g["id"])
    for _ in range(2):
        w.checkpoint(g["id"])
    cps = [c for c in w.wait_settled(g["id"]) if c["state"] == "complete"]
    assert len(cps) == 3
    east_addr = {s: addresses(w, "east", s) for s in (db["id"], app["id"])}
    assert all(east_addr.values())

    # A truncated newest manifest is refused with its reason; the previous one is used.
    newest = cps[-1]["manifest"]["object"]
    original = manifest_object(w, newest)
    manifest_object(w, newest, original[: len(original) // 2])
    p = plan(w)
    assert [x["checkpoint_id"] for x in p["groups"]] == [cps[-2]["id"]]
    assert len(p["refused"]) == 1 and "truncated" in p["refused"][0] and newest in p["refused"][0]
    # Put back, it is used again; then tampered with (still valid JSON, another flavor).
    manifest_object(w, newest, original)
    assert [x["checkpoint_id"] for x in plan(w)["groups"]] == [cps[-1]["id"]]
    doc = json.loads(original)
    doc["manifest"]["servers"][0]["flavor"] = "m1.large"
    manifest_object(w, newest, json.dumps(doc).encode())

    # The workload writes past the last checkpoint; then east is lost with its controller.
    t0 = w.now()
    until("more writes", lambda: w.now() - t0 >= 10)
    failure = lose_east(w)

    # Refused until an operator declares east down; nothing is started.
    with pytest.raises(ApiError) as e:
        w.api("west", "POST", "/v1/recovery", {"datacenter": "east"})
    assert e.value.status == 409 and "--declare-down east" in e.value.text
    r = subprocess.run(
        [sys.executable, "-m", "liferaft", "recovery", "east", "--url", w.ctls["west"].url],
        capture_output=True,
        text=True,
        timeout=120,
        env={**w.sim.cli_env(), "LIFERAFT_TOKEN": w.token("west")},
    )
    assert r.returncode == 1 and "needs an operator to declare it down" in r.stderr, r.stderr
    assert w.api("west", "GET", "/v1/recovery/runs")["runs"] == []

    # A port half made by a controller killed between Neutron's create and its tag call:
    # app's name and MAC, no tag, bound to nothing.  The recovery adopts it (a second
    # create would be refused: the MAC is in use).
    ((app_mac, app_ips),) = east_addr[app["id"]]
    c = w.sim.connect("west")
    try:
        net = c.network.find_network("private", ignore_missing=False)
        half = c.network.create_port(
            network_id=net.id,
            name="app-p0",
            mac_address=app_mac,
            fixed_ips=[{"ip_address": ip} for ip in app_ips],
        )
    finally:
        c.close()

    run = w.api("west", "POST", "/v1/recovery", {"datacenter": "east", "declare_down": "east"})
    final = w.wait_run(run["id"])
    assert final["state"] == "done", (final["failed_steps"], final["error"])
    assert final["declared_down"] == "east"
    assert any("tampered" in x and newest in x for x in final["refused_manifests"])
    rep = final["report"]
    assert [x["checkpoint_id"] for x in rep["groups"]] == [cps[-2]["id"]]
    assert rep["servers_recovered"] == 2 and rep["volumes_recovered"] == 2

    # The servers at west, once each, ACTIVE, with east's fixed IPs and MACs.
    c = w.sim.connect("west")
    try:
        servers = list(c.compute.servers())
        names = Counter(s.name for s in servers)
        assert names["db"] == 1 and names["app"] == 1, names
        by_source = {s["source"]: s["server_id"] for s in rep["servers"]}
        for sid in (db["id"], app["id"]):
            assert c.compute.get_server(by_source[sid]).status == "ACTIVE"
            assert addresses(w, "west", by_source[sid]) == east_addr[sid]
        assert [p.id for p in c.network.ports(device_id=by_source[app["id"]])] == [half.id]
        restored = {v["source"]: v["volume_id"] for v in rep["volumes"]}
        for v in db["volumes"]:
            vol = c.block_storage.get_volume(restored[v])
            assert vol.status == "in-use"
            assert [a["server_id"] for a in vol.attachments] == [by_source[db["id"]]]
    finally:
        c.close()

    # The restored data: the canary's writes up to the recovery point, consistent.
    vols = [restored[v] for v in db["volumes"]]
    fresh = [w.ctl("GET", f"/control/volumes/west/{v}/freshness") for v in vols]
    assert all(f.get("writer") == db["canary"] for f in fresh), fresh
    newest_canary = max(f["time"] for f in fresh)
    check = w.ctl(
        "POST",
        "/control/check-consistency",
        {"site": "west", "volumes": vols, "writer": db["canary"]},
    )
    assert check["consistent"], check
    writes = [
        e["time"]
        for e in w.ctl("GET", f"/control/writelog?kind=write&instance={db['id']}")["entries"]
        if e["data"].get("writer") == db["canary"]
    ]
    captured = cps[-2]["captured_at"]
    at_capture = max(t for t in writes if t <= captured)
    assert newest_canary <= captured + 1e-6
    assert abs(newest_canary - at_capture) <= 1 / RATE, (newest_canary, at_capture)
    # What east wrote after that checkpoint is the loss; east wrote nothing after it failed.
    assert any(captured < t <= failure for t in writes)
    assert not any(t > failure for t in writes)


@pytest.mark.slow
def test_recovery_survives_a_kill_at_each_cloud_create(world: DrWorld) -> None:
    """West's controller killed right after the cloud accepted a volume, a port, a server."""
    w = world
    vm = build_vm(w, "kr", volumes=1, canary="single", rate=RATE)
    g = protect(w, vm, [])
    assert w.wait_settled(g["id"])[-1]["state"] == "complete"
    lose_east(w)

    # Armed to die right after the next cloud create (a volume, a port or a server, whichever
    # comes first); every restart is armed again, until the run settles.  A create that was
    # in flight beside the one that killed it is adopted by the replay, not made again.
    got = recover_through_kills(
        w,
        lambda: w.post_once("west", "/v1/recovery", {"datacenter": "east", "declare_down": "east"}),
        "after_cloud_call",
        lambda _run: count_recovered(w, "kr", vm["volumes"][0]),
        max_kills=3,
    )
    assert got.alive_at_settle
    assert got.kills >= 2, got.kills
    final = got.run
    servers, volumes, ports = got.resources.servers, got.resources.volumes, got.resources.ports
    assert servers["kr"] == 1, servers
    assert len(volumes) == 1 and volumes[0].status == "in-use", volumes
    assert ports == Counter({"kr-p0": 1}), ports
    rep = final["report"]
    assert rep["servers_recovered"] == 1 and rep["volumes_recovered"] == 1
    assert rep["volumes"][0]["volume_id"] == volumes[0].id
    fresh = w.ctl("GET", f"/control/volumes/west/{volumes[0].id}/freshness")
    assert fresh.get("writer") == vm["canary"], fresh
