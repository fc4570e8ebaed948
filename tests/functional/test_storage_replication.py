"""The storage-replication method end to end: the storage replicates, Liferaft manages the replica.

East's volumes are of a replicated volume type (the simulator's storage
copies them to west asynchronously, over the WAN link, with lag).  Real
controllers (``liferaft serve``) protect a group whose policy method is
``storage-replication``: checkpoints write manifests only.  East is lost;
west's controller manages the replicas into west's Cinder and boots the
servers from them.  The checks read the clouds through openstacksdk, the
data through the simulator's canary reader and consistency checker, and the
recovery point against the simulator's write log.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.drcontroller import ApiError, DrWorld, build_vm, until
from tests.support.kills import count_recovered, recover_through_kills

pytestmark = pytest.mark.timeout(600)
RATE = 2.0  # canary transactions per simulated second
RPO = 60.0
TYPE = "replicated"
REPLICATED_SPECS = {
    "replication_enabled": "<is> True",
    "liferaft_sim:replication_target": "west",
    "liferaft_sim:replication_interval": "2",
}
POLICY = {
    "rpo_seconds": RPO,
    "interval_seconds": RPO,
    "retention_count": 3,
    "retention_age_seconds": 1e7,
    "consistency": "crash-consistent",
    "method": "storage-replication",
}


class ReplWorld(DrWorld):
    """DrWorld whose controllers read replicas through the simulator's ReplicationMonitor."""

    def config(self, site: str) -> Path:
        path = super().config(site)
        cfg = yaml.safe_load(path.read_text())
        cfg["protection"]["replication_monitor"] = "simulator"
        cfg["protection"]["replication_monitor_url"] = self.sim.control_url
        path.write_text(yaml.safe_dump(cfg))
        return path


@pytest.fixture
def world(tmp_path: Path) -> Iterator[ReplWorld]:
    w = ReplWorld(tmp_path)
    try:
        w.start("east")
        w.start("west")
        c = w.sim.connect("east")
        try:
            c.block_storage.create_type(name=TYPE, extra_specs=REPLICATED_SPECS)
        finally:
            c.close()
        # West's own type of that name (its replicas, once managed, are plain volumes there).
        c = w.sim.connect("west")
        try:
            c.block_storage.create_type(name=TYPE)
        finally:
            c.close()
        yield w
    finally:
        w.stop()


def replicated_vm(w: ReplWorld, name: str, volumes: int) -> dict[str, Any]:
    """A server at east with ``volumes`` replicated data volumes and a canary writing them."""
    c = w.sim.connect("east")
    try:
        image = c.image.find_image("cirros", ignore_missing=False)
        flavor = c.compute.find_flavor("m1.tiny", ignore_missing=False)
        net = c.network.find_network("private", ignore_missing=False)
        s = c.compute.create_server(
            name=name, image_id=image.id, flavor_id=flavor.id, networks=[{"uuid": net.id}]
        )
        vols = [
            str(c.block_storage.create_volume(name=f"{name}-v{i}", size=1, volume_type=TYPE).id)
            for i in range(volumes)
        ]
        until(f"{name} ACTIVE", lambda: c.compute.get_server(s.id).status == "ACTIVE")
        until(
            f"{name}'s volumes",
            lambda: all(c.block_storage.get_volume(v).status == "available" for v in vols),
        )
        for v in vols:
            c.compute.create_volume_attachment(s.id, volume_id=v)
        until(
            f"{name}'s attachments",
            lambda: all(c.block_storage.get_volume(v).status == "in-use" for v in vols),
        )
    finally:
        c.close()
    kind = "database" if volumes >= 2 else "single"
    canary = w.ctl(
        "POST",
        "/control/canaries",
        {
            "site": "east",
            "server": str(s.id),
            "volumes": vols if kind == "database" else vols[:1],
            "kind": kind,
            "rate": RATE,
            "seed": 11,
        },
    )["canary"]["id"]
    return {"id": str(s.id), "name": name, "volumes": vols, "canary": canary}


def replication(w: ReplWorld, volume_id: str) -> dict[str, Any]:
    out: dict[str, Any] = w.ctl("GET", f"/control/replication/east/{volume_id}")["replication"]
    return out


def protect(w: ReplWorld, vm: dict[str, Any], extra: list[dict[str, Any]]) -> dict[str, Any]:
    w.api("east", "PUT", "/v1/policies/repl", POLICY)
    g: dict[str, Any] = w.api("east", "POST", "/v1/groups", {"name": "vnf", "policy": "repl"})
    members = [("server", vm["id"], 0, 1)]
    members += [("server", x["id"], 1, i + 2) for i, x in enumerate(extra)]
    members += [("volume", v, 0, 0) for v in vm["volumes"]]
    for kind, rid, tier, rank in members:
        w.api(
            "east",
            "POST",
            "/v1/groups/vnf/members",
            {"kind": kind, "id": rid, "tier": tier, "rank": rank},
        )
    return g


def lose_east(w: ReplWorld) -> float:
    w.ctl("POST", "/control/faults", {"kind": "site-down", "target": "east"})
    failure = w.now()
    w.ctls["east"].kill()
    return failure


def canary_writes(w: ReplWorld, vm: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        e
        for e in w.ctl("GET", f"/control/writelog?kind=write&instance={vm['id']}")["entries"]
        if e["data"].get("writer") == vm["canary"]
    ]


def test_replicated_group_recovered_from_its_replicas_at_their_last_applied_write(
    world: ReplWorld,
) -> None:
    w = world
    db = replicated_vm(w, "db", volumes=2)
    app = build_vm(w, "app", volumes=0, canary=None)
    plain = build_vm(w, "plain", volumes=1, canary=None)["volumes"][0]
    g = protect(w, db, [app])

    # A volume whose type does not replicate is refused at protect time, saying why.
    with pytest.raises(ApiError) as e:
        w.api("east", "POST", "/v1/groups/vnf/members", {"kind": "volume", "id": plain})
    assert e.value.status == 400 and "not replicated" in e.value.text and plain in e.value.text
    with pytest.raises(ApiError) as e2:
        w.api("east", "POST", "/v1/protect/volumes", {"volume": plain, "policy": "repl"})
    assert e2.value.status == 400 and "not replicated" in e2.value.text

    # Checkpoints record the replicas (no data is copied by Liferaft: no backup anywhere).
    # (The schedule may have started one after the first volume joined: take one now.)
    w.wait_settled(g["id"])
    cp = w.checkpoint(g["id"])
    assert cp["state"] == "complete" and cp["consistency"] == "crash-consistent"
    assert {v: x["replica"] for v, x in cp["volumes"].items()} == {
        v: {"source-name": f"replica-{v}"} for v in db["volumes"]
    }
    c = w.sim.connect("east")
    try:
        assert list(c.block_storage.backups(all_projects=True)) == []
    finally:
        c.close()

    # The link goes down: the replicas fall behind beyond the RPO target -> an alert event.
    w.ctl("POST", "/control/faults", {"kind": "link-down", "target": "east-west"})
    t0 = w.now()
    until("the replicas to fall behind", lambda: replication(w, db["volumes"][0])["lag_s"] > RPO)
    lagging = w.checkpoint(g["id"])
    events = w.api("east", "GET", f"/v1/events?workflow={lagging['workflow_id']}&limit=1000")
    alerts = [
        e["detail"] for e in events["events"] if e["detail"].get("alert") == "replication-lag"
    ]
    assert {a["volume"] for a in alerts} == set(db["volumes"]), events
    assert all(a["lag_s"] > RPO and a["rpo_s"] == RPO for a in alerts)
    assert w.now() - t0 > RPO
    w.ctl("POST", "/control/heal", {"kind": "link-down", "target": "east-west"})
    until(
        "the replicas to catch up",
        lambda: all(replication(w, v)["lag_s"] < 10 for v in db["volumes"]),
    )

    # The workload keeps writing; then east is lost with its controller.
    t1 = w.now()
    until("more writes", lambda: w.now() - t1 >= 10)
    failure = lose_east(w)
    reps = {v: replication(w, v) for v in db["volumes"]}
    assert {r["state"] for r in reps.values()} <= {"replicating", "source-down"}
    (point,) = {r["last_applied"]["at"] for r in reps.values()}  # one consistency group

    run = w.api("west", "POST", "/v1/recovery", {"datacenter": "east", "declare_down": "east"})
    final = w.wait_run(run["id"])
    assert final["state"] == "done", (final["failed_steps"], final["error"])
    rep = final["report"]
    assert rep["servers_recovered"] == 2 and rep["volumes_recovered"] == 2
    (grp,) = rep["groups"]
    rp = grp["recovery_point"]
    assert rp["kind"] == "replica-last-applied-write"
    assert rp["at"] == pytest.approx(point)

    # The reported recovery point against the simulator's write log: the replica's last
    # applied write is the canary's newest write at that point, within one write interval.
    writes = canary_writes(w, db)
    at_point = max((e for e in writes if e["time"] <= point), key=lambda e: e["time"])
    assert rp["write"]["time"] == pytest.approx(at_point["time"])
    assert 0 <= point - at_point["time"] <= 1 / RATE + 1e-6, (point, at_point)
    assert point <= failure  # what east wrote after the point (if anything) is the loss
    assert not any(e["time"] > failure for e in writes)

    # The event of each managed replica says what the recovery point is.
    events = w.api("west", "GET", f"/v1/events?workflow={run['id']}&limit=1000")["events"]
    noted = [e["detail"] for e in events if "managed_as" in e["detail"]]
    assert sorted(n["volume"] for n in noted) == sorted(db["volumes"])
    assert all(n["recovery_point"]["kind"] == "replica-last-applied-write" for n in noted)

    # The servers at west, once each, ACTIVE; the managed replicas attached to db.
    c = w.sim.connect("west")
    try:
        names = Counter(s.name for s in c.compute.servers())
        assert names["db"] == 1 and names["app"] == 1, names
        by_source = {s["source"]: s["server_id"] for s in rep["servers"]}
        assert c.compute.get_server(by_source[db["id"]]).status == "ACTIVE"
        managed = {v["source"]: v["volume_id"] for v in rep["volumes"]}
        for v in db["volumes"]:
            vol = c.block_storage.get_volume(managed[v])
            assert vol.status == "in-use" and vol.metadata.get("liferaft_source") == v
            assert [a["server_id"] for a in vol.attachments] == [by_source[db["id"]]]
            # The volume is the replica itself, managed (adopted), not a copy.
            assert replication(w, v)["replica"]["managed_as"] == managed[v]
    finally:
        c.close()

    # The data: the canary's writes up to the recovery point, consistent (log covers data).
    vols = [managed[v] for v in db["volumes"]]
    fresh = [w.ctl("GET", f"/control/volumes/west/{v}/freshness") for v in vols]
    assert all(f.get("writer") == db["canary"] for f in fresh), fresh
    assert max(f["time"] for f in fresh) == pytest.approx(at_point["time"])
    check = w.ctl(
        "POST",
        "/control/check-consistency",
        {"site": "west", "volumes": vols, "writer": db["canary"]},
    )
    assert check["consistent"], check


@pytest.mark.slow
def test_recovery_survives_a_kill_after_the_manage_and_each_create(world: ReplWorld) -> None:
    """West's controller killed right after the cloud accepted the manage, the port, the server."""
    w = world
    vm = replicated_vm(w, "kr", volumes=1)
    g = protect(w, vm, [])
    assert w.wait_settled(g["id"])[-1]["state"] == "complete"
    until("the replica to be applied", lambda: replication(w, vm["volumes"][0])["last_applied"])
    lose_east(w)

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
    assert rep["volumes"][0]["volume_id"] == volumes[0].id and rep["volumes"][0]["managed"]
    assert rep["groups"][0]["recovery_point"]["kind"] == "replica-last-applied-write"
    assert replication(w, vm["volumes"][0])["replica"]["managed_as"] == volumes[0].id
    fresh = w.ctl("GET", f"/control/volumes/west/{volumes[0].id}/freshness")
    assert fresh.get("writer") == vm["canary"], fresh
