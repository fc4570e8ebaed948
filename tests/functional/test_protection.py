"""Protection end to end: real controllers (``liferaft serve``) against the simulator over HTTP.

One world for the module (a simulator on a scaled clock, a controller at
east and at west); each test protects servers and volumes of its own.
Everything is checked through the cloud's own APIs (openstacksdk) and the
simulator's write log and canary checker, never through the controller's
records alone.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.drcontroller import MANUAL, ApiError, DrWorld, backups, build_vm, until

pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DrWorld]:
    w = DrWorld(tmp_path_factory.mktemp("dr"))
    try:
        w.start("east")
        yield w
    finally:
        w.stop()


def cli(w: DrWorld, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "liferaft", *args, "--url", w.ctls["east"].url],
        capture_output=True,
        text=True,
        timeout=120,
        env={**w.sim.cli_env(), "LIFERAFT_TOKEN": w.token("east")},
    )


def groups(w: DrWorld) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = w.api("east", "GET", "/v1/groups")["groups"]
    return out


def writelog(w: DrWorld, kind: str, since: float) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = w.ctl("GET", f"/control/writelog?kind={kind}&site=east")[
        "entries"
    ]
    return [e for e in entries if e["time"] >= since]


def test_protect_vm_and_volume_with_clear_errors_before_anything_changes(world: DrWorld) -> None:
    w = world
    vm = build_vm(w, "pv", volumes=2, canary=None)
    before = groups(w)
    w.api("east", "PUT", "/v1/policies/pv", MANUAL)

    # protect-vm protects the server's attached volumes with it (--no-volumes: the server alone).
    r = cli(w, "protect-vm", vm["id"], "--policy", "pv", "--json")
    assert r.returncode == 0, r.stderr
    g = json.loads(r.stdout)
    assert [m["cloud_id"] for m in g["servers"]] == [vm["id"]]
    assert sorted(m["cloud_id"] for m in g["volumes"]) == sorted(vm["volumes"])
    assert g["site"] == "east" and g["recovery_site"] == "west"
    # A server whose volume is protected already: refused, naming the volume, no group made.
    alone = build_vm(w, "pv-alone", volumes=1, canary=None)
    r = cli(w, "protect-volume", alone["volumes"][0], "--policy", "pv", "--json")
    assert r.returncode == 0, r.stderr
    assert [m["cloud_id"] for m in json.loads(r.stdout)["volumes"]] == [alone["volumes"][0]]
    n = len(groups(w))
    r = cli(w, "protect-vm", alone["id"], "--policy", "pv")
    assert r.returncode == 1 and "already protected" in r.stderr and "--no-volumes" in r.stderr
    with pytest.raises(ApiError) as e:
        w.api("east", "POST", "/v1/protect/servers", {"server": alone["id"], "policy": "pv"})
    assert e.value.status == 409 and alone["volumes"][0] in e.value.text
    assert len(groups(w)) == n
    r = cli(w, "protect-vm", alone["id"], "--policy", "pv", "--no-volumes", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["volumes"] == []
    after = groups(w)
    assert len(after) == len(before) + 3

    # An unknown server: the CLI says so in one line, exit 1, nothing created.
    r = cli(w, "protect-vm", "no-such-server")
    assert r.returncode == 1
    assert "no server 'no-such-server' at site east" in r.stderr and "Traceback" not in r.stderr
    # The same volume again: a conflict naming the group that owns it.
    r = cli(w, "protect-volume", vm["volumes"][0])
    assert r.returncode == 1
    assert "already protected" in r.stderr and f"server-{vm['id']}" in r.stderr
    # The same server again: a conflict.
    r = cli(w, "protect-vm", alone["id"], "--no-volumes")
    assert r.returncode == 1 and f"server-{alone['id']}" in r.stderr
    # An unknown policy for a volume not yet protected.
    with pytest.raises(ApiError) as e:
        w.api("east", "POST", "/v1/protect/volumes", {"volume": vm["volumes"][1], "policy": "x"})
    assert e.value.status == 404 and "no policy 'x'" in e.value.text
    assert groups(w) == after

    # A malformed policy: every problem named, nothing stored.
    bad = {
        **MANUAL,
        "rpo_seconds": 60,
        "interval_seconds": 120,
        "consistency": "app",
        "method": "x",
    }
    with pytest.raises(ApiError) as e:
        w.api("east", "PUT", "/v1/policies/bad", bad)
    assert e.value.status == 400
    for part in ("interval_seconds (120.0) must not exceed rpo_seconds", "consistency", "method"):
        assert part in e.value.text
    names = [p["name"] for p in w.api("east", "GET", "/v1/policies")["policies"]]
    assert "bad" not in names
    r = cli(w, "policy", "set", "bad", "--rpo", "60", "--interval", "30", "--retention-count", "0")
    assert r.returncode == 1 and "retention_count must be >= 1" in r.stderr
    assert "bad" not in [p["name"] for p in w.api("east", "GET", "/v1/policies")["policies"]]
    assert groups(w) == after


def test_ordered_quiesce_checkpoint_is_consistent(world: DrWorld) -> None:
    w = world
    db = build_vm(w, "oq-db", volumes=2, canary="database", rate=4.0)
    apps = [build_vm(w, f"oq-app{i}", volumes=0, canary=None) for i in range(2)]
    w.api("east", "PUT", "/v1/policies/oq", MANUAL)
    g = w.api("east", "POST", "/v1/groups", {"name": "oq", "policy": "oq"})
    order = [db["id"], apps[0]["id"], apps[1]["id"]]
    for rank, sid in enumerate(order, start=1):
        w.api("east", "POST", "/v1/groups/oq/members", {"kind": "server", "id": sid, "rank": rank})
    for v in db["volumes"]:
        w.api("east", "POST", "/v1/groups/oq/members", {"kind": "volume", "id": v})
    # The schedule takes a first checkpoint as soon as the group has a volume (maybe
    # before the second one was added); the one checked here is taken with both.
    w.wait_settled(g["id"])
    t0 = w.now()
    cp = w.checkpoint(g["id"])
    assert cp["state"] == "complete" and cp["consistency"] == "ordered-quiesce", cp
    assert sorted(cp["volumes"]) == sorted(db["volumes"])

    ours = set(order)
    events = [
        (e["kind"], e["instance"])
        for e in sorted(
            writelog(w, "quiesce", t0) + writelog(w, "unquiesce", t0), key=lambda e: e["seq"]
        )
        if e["instance"] in ours
    ]
    # Quiesced in the group's order, unquiesced in reverse, once each.
    assert events == [("quiesce", s) for s in order] + [("unquiesce", s) for s in order[::-1]]

    # The checkpoint's backups, restored at east, agree on one point of the writer's history.
    c = w.sim.connect("east")
    try:
        restored = []
        for vid in db["volumes"]:
            bid = cp["volumes"][vid]["backup_id"]
            c.block_storage.restore_backup(bid, name=f"oq-check-{vid[:6]}")
        until(
            "restored volumes",
            lambda: (
                len(
                    vs := [
                        v
                        for v in c.block_storage.volumes()
                        if (v.name or "").startswith("oq-check-") and v.status == "available"
                    ]
                )
                == 2
                and vs
            ),
        )
        restored = [
            str(v.id) for v in c.block_storage.volumes() if (v.name or "").startswith("oq-check-")
        ]
    finally:
        c.close()
    check = w.ctl(
        "POST",
        "/control/check-consistency",
        {"site": "east", "volumes": restored, "writer": db["canary"]},
    )
    assert check["consistent"], check
    fresh = [w.ctl("GET", f"/control/volumes/east/{v}/freshness") for v in restored]
    assert all(f.get("writer") == db["canary"] for f in fresh), fresh
    assert max(f["time"] for f in fresh) <= cp["captured_at"] + 1e-6


def test_crash_consistent_checkpoint_quiesces_nothing(world: DrWorld) -> None:
    w = world
    vm = build_vm(w, "cc", volumes=1, canary="single")
    w.api("east", "PUT", "/v1/policies/cc", {**MANUAL, "consistency": "crash-consistent"})
    g = w.api("east", "POST", "/v1/groups", {"name": "cc", "policy": "cc"})
    w.api("east", "POST", "/v1/groups/cc/members", {"kind": "server", "id": vm["id"]})
    t0 = w.now()
    w.api("east", "POST", "/v1/groups/cc/members", {"kind": "volume", "id": vm["volumes"][0]})
    cp = w.wait_settled(g["id"])[-1]
    assert cp["state"] == "complete" and cp["consistency"] == "crash-consistent", cp
    quiesced = [e for e in writelog(w, "quiesce", t0) if e["instance"] == vm["id"]]
    assert quiesced == []
    b = backups(w)[cp["volumes"][vm["volumes"][0]]["backup_id"]]
    assert b.status == "available"


def test_retention_prunes_old_checkpoints_without_breaking_a_chain(world: DrWorld) -> None:
    w = world
    vm = build_vm(w, "rt", volumes=1, canary="single", rate=4.0)
    w.api(
        "east",
        "PUT",
        "/v1/policies/rt",
        {**MANUAL, "retention_count": 2, "chain_length": 2, "consistency": "crash-consistent"},
    )
    g = w.api("east", "POST", "/v1/groups", {"name": "rt", "policy": "rt"})
    w.api("east", "POST", "/v1/groups/rt/members", {"kind": "volume", "id": vm["volumes"][0]})
    w.wait_settled(g["id"])
    for _ in range(4):
        w.checkpoint(g["id"])
    cps = w.wait_settled(g["id"])
    assert len(cps) == 5 and all(c["state"] in ("complete", "pruned") for c in cps), cps
    # Chains of two: c0 c1 | c2 c3 | c4.  Keep the newest two (c3, c4), and c2 that c3
    # is incremental on; c0 and c1 go.
    assert [c["parent_id"] for c in cps] == [None, cps[0]["id"], None, cps[2]["id"], None]
    assert [c["state"] for c in cps] == ["pruned", "pruned", "complete", "complete", "complete"]

    have = backups(w)
    vid = vm["volumes"][0]
    for c in cps:
        bid = c["volumes"][vid]["backup_id"]
        if c["state"] == "pruned":
            assert bid not in have, f"pruned checkpoint {c['id']} left backup {bid}"
        else:
            assert have[bid].status == "available"
            assert bool(have[bid].is_incremental) == bool(c["parent_id"])
    # The manifests at west: only the kept ones.
    conn = w.sim.connect("west")
    try:
        names = {
            o.name for o in conn.object_store.objects(w.container, prefix=f"manifests/{g['id']}/")
        }
    finally:
        conn.close()
    assert names == {c["manifest"]["object"] for c in cps if c["state"] == "complete"}


@pytest.mark.slow
def test_checkpoint_survives_a_kill_at_each_cloud_create(world: DrWorld) -> None:
    """Killed right after the cloud accepted the snapshot, then the backup: no duplicate, no loss."""
    w = world
    vm = build_vm(w, "kc", volumes=1, canary="single")
    w.api("east", "PUT", "/v1/policies/kc", MANUAL)
    g = w.api("east", "POST", "/v1/groups", {"name": "kc", "policy": "kc"})
    w.api("east", "POST", "/v1/groups/kc/members", {"kind": "server", "id": vm["id"]})
    w.api("east", "POST", "/v1/groups/kc/members", {"kind": "volume", "id": vm["volumes"][0]})
    first = w.wait_settled(g["id"])[-1]
    assert first["state"] == "complete"

    for hook in ("after_cloud_call@capture", "after_cloud_call@backup:0"):
        w.ctls["east"].stop()
        ctl = w.start("east", kill_at=hook)
        known = {c["id"] for c in w.checkpoints(g["id"])}
        w.post_once("east", "/v1/groups/kc/checkpoints")  # it may die before it answers
        assert ctl.wait_dead() == -9, f"the controller did not die at {hook}"
        w.start("east")
        (cp,) = [c for c in w.checkpoints(g["id"]) if c["id"] not in known]
        done = w.wait_checkpoint(g["id"], cp["id"])
        assert done["state"] == "complete", done
        prefix = f"lr-{cp['id'][:12]}-"
        c = w.sim.connect("east")
        try:
            snaps = [s for s in c.block_storage.snapshots(all_projects=True)]
            ours_b = [b for b in backups(w).values() if (b.name or "").startswith(prefix)]
            ours_s = [s for s in snaps if (s.name or "").startswith(prefix)]
            server = c.compute.get_server(vm["id"])
        finally:
            c.close()
        assert len(ours_b) == 1 and ours_b[0].status == "available", ours_b
        assert ours_b[0].id == done["volumes"][vm["volumes"][0]]["backup_id"]
        assert ours_s == [], f"snapshots left behind: {[s.name for s in ours_s]}"
        conn = w.sim.connect("west")
        try:
            conn.object_store.get_object_metadata(done["manifest"]["object"], w.container)
        finally:
            conn.close()
        # The guest was quiesced when the controller died; it runs (and writes) again.
        assert server.status == "ACTIVE"
        t = w.now()
        until(
            "the canary to write again",
            lambda t=t: any(
                e["instance"] == vm["id"] and e["time"] > t
                for e in w.ctl("GET", f"/control/writelog?kind=write&instance={vm['id']}")[
                    "entries"
                ]
            ),
        )


def test_retention_after_a_failed_checkpoint_prunes_the_whole_chain(world: DrWorld) -> None:
    """A checkpoint that failed after its backup landed: the next incremental is made on
    that backup (the cloud chains on a volume's newest backup), so pruning the chain must
    take the failed checkpoint's backup too, newest first, or the cloud refuses."""
    w = world
    vm = build_vm(w, "rf", volumes=1, canary="single", rate=4.0)
    vid = vm["volumes"][0]
    w.api(
        "east",
        "PUT",
        "/v1/policies/rf",
        {**MANUAL, "retention_count": 1, "chain_length": 2, "consistency": "crash-consistent"},
    )
    g = w.api("east", "POST", "/v1/groups", {"name": "rf", "policy": "rf"})
    w.api("east", "POST", "/v1/groups/rf/members", {"kind": "volume", "id": vid})
    c1 = w.wait_settled(g["id"])[-1]
    assert c1["state"] == "complete"

    # West's APIs fail: the backup lands in west's object store (the backup service's own
    # path), the manifest cannot be written, the checkpoint fails.
    w.ctl("POST", "/control/faults", {"kind": "api-errors", "target": "west", "rate": 1.0})
    try:
        c2 = w.api("east", "POST", "/v1/groups/rf/checkpoints")
        failed = until(
            "the checkpoint to fail",
            lambda: next(
                (
                    c
                    for c in w.checkpoints(g["id"])
                    if c["id"] == c2["id"] and c["state"] == "failed"
                ),
                None,
            ),
        )
    finally:
        w.ctl("POST", "/control/heal", {"kind": "api-errors", "target": "west"})
    assert "manifest" in failed["error"], failed
    # A new chain starts after the failure (a full backup): nothing is made on the failed
    # checkpoint's backup, which retention deletes before the checkpoints it depends on.
    c3 = w.checkpoint(g["id"])
    assert c3["parent_id"] is None
    c4 = w.checkpoint(g["id"])
    assert c4["parent_id"] == c3["id"]
    cps = {c["id"]: c for c in w.wait_settled(g["id"])}
    assert [cps[c]["state"] for c in (c1["id"], c2["id"], c3["id"], c4["id"])] == [
        "pruned",
        "pruned",
        "complete",
        "complete",
    ], cps
    assert "manifest" in cps[c2["id"]]["error"]
    ours = {b.id for b in backups(w).values() if b.volume_id == vid}
    assert ours == {c3["volumes"][vid]["backup_id"], c4["volumes"][vid]["backup_id"]}, ours
