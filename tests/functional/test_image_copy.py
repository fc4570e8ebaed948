"""The image-copy method end to end: real controllers against the simulator over HTTP.

Volumes are uploaded to images at east (Cinder's upload-to-image), read
back from Glance in ranges and stored as SHA-256-named chunks in west's
object store; recovery at west assembles them into images and volumes.
Checks read the manifests and chunks in west's object store and the
clouds through openstacksdk, and the restored data through the simulator's
canary reader and consistency checker.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.drcontroller import MANUAL, DrWorld, Serve, build_vm, until

pytestmark = pytest.mark.timeout(900)
RATE = 4.0  # canary writes per simulated second
POLICY = {**MANUAL, "method": "image-copy"}
HOT = 96  # blocks of 64 KiB the canary writes (6 chunks of 1 MiB)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[DrWorld]:
    w = DrWorld(tmp_path)
    try:
        w.start("east")
        w.start("west")
        yield w
    finally:
        w.stop()


def vm_with_canary(w: DrWorld, name: str, *, volumes: int) -> dict[str, Any]:
    """A server with data volumes and a canary writing a small hot set (1 MiB chunks: few).

    Every write lands in the first ``HOT`` blocks, so the volumes' images stay
    small and the test reads tens of megabytes per checkpoint, not gigabytes.
    """
    vm = build_vm(w, name, volumes=volumes, canary=None)
    kind = "database" if volumes >= 2 else "single"
    vm["canary"] = w.ctl(
        "POST",
        "/control/canaries",
        {
            "site": "east",
            "server": vm["id"],
            "volumes": vm["volumes"][:2] if kind == "database" else vm["volumes"][:1],
            "kind": kind,
            "rate": RATE,
            "locality": 1.0,
            "hot_blocks": HOT,
            "seed": 7,
        },
    )["canary"]["id"]
    return vm


def protect(w: DrWorld, name: str, vm: dict[str, Any], **policy: Any) -> dict[str, Any]:
    w.api("east", "PUT", f"/v1/policies/{name}", {**POLICY, **policy})
    g: dict[str, Any] = w.api("east", "POST", "/v1/groups", {"name": name, "policy": name})
    w.api("east", "POST", f"/v1/groups/{name}/members", {"kind": "server", "id": vm["id"]})
    for v in vm["volumes"]:
        w.api("east", "POST", f"/v1/groups/{name}/members", {"kind": "volume", "id": v})
    return g


def manifest(w: DrWorld, cp: dict[str, Any]) -> dict[str, Any]:
    c = w.sim.connect("west")
    try:
        raw = c.object_store.download_object(cp["manifest"]["object"], container=w.container)
    finally:
        c.close()
    doc: dict[str, Any] = json.loads(raw)["manifest"]
    return doc


def chunk_objects(w: DrWorld, group_id: str) -> dict[str, int]:
    """Chunk digest -> stored bytes, of the group's chunks in west's object store."""
    c = w.sim.connect("west")
    try:
        return {
            o.name.rsplit("/", 1)[-1]: int(o.content_length or o.bytes or 0)
            for o in c.object_store.objects(w.container, prefix=f"chunks/{group_id}/")
        }
    finally:
        c.close()


def digests(doc: dict[str, Any]) -> dict[str, list[str]]:
    return {v["id"]: v["image"]["chunks"] for v in doc["volumes"]}


def chunk_bytes(doc: dict[str, Any], wanted: set[str]) -> int:
    """Bytes of the chunks of ``doc`` whose digest is in ``wanted`` (each counted once)."""
    seen: set[str] = set()
    total = 0
    for v in doc["volumes"]:
        img = v["image"]
        size, cs = img["size"], img["chunk_size"]
        for i, d in enumerate(img["chunks"]):
            if d and d in wanted and d not in seen:
                seen.add(d)
                total += min(cs, size - i * cs)
    return total


def raw(w: DrWorld, method: str, path: str, body: bytes | None = None) -> bytes:
    """A control-API call with a raw body (a disk block), its raw answer."""
    r = w.sim.http.request(method, path, content=body)
    assert r.status_code < 400, (method, path, r.status_code, r.text)
    return r.content


def lose_east(w: DrWorld) -> float:
    w.ctl("POST", "/control/faults", {"kind": "site-down", "target": "east"})
    failure = w.now()
    w.ctls["east"].kill()
    return failure


def verify_restored(w: DrWorld, vm: dict[str, Any], rep: dict[str, Any], captured: float) -> None:
    """The restored volumes hold the canary's writes up to the recovery point, consistently."""
    restored = {v["source"]: v["volume_id"] for v in rep["volumes"]}
    vols = [restored[v] for v in vm["volumes"]]
    fresh = [w.ctl("GET", f"/control/volumes/west/{v}/freshness") for v in vols]
    assert all(f.get("writer") == vm["canary"] for f in fresh), fresh
    newest = max(f["time"] for f in fresh)
    writes = [
        e["time"]
        for e in w.ctl("GET", f"/control/writelog?kind=write&instance={vm['id']}")["entries"]
        if e["data"].get("writer") == vm["canary"]
    ]
    at_capture = max(t for t in writes if t <= captured)
    # The controller reads the simulator's clock by extrapolation: its capture time may lag
    # the simulator's by a fraction of a write interval.
    assert newest <= captured + 1 / RATE, (newest, captured)
    assert abs(newest - at_capture) <= 1 / RATE, (newest, at_capture)
    if len(vols) > 1:
        check = w.ctl(
            "POST",
            "/control/check-consistency",
            {"site": "west", "volumes": vols, "writer": vm["canary"]},
        )
        assert check["consistent"], check


def test_only_changed_chunks_travel_retention_collects_and_recovery_verifies(
    world: DrWorld,
) -> None:
    w = world
    vm = vm_with_canary(w, "icdb", volumes=2)
    g = protect(w, "ic", vm)
    # The schedule's first checkpoint may have been taken before every volume was in.
    w.wait_settled(g["id"])
    first = w.checkpoint(g["id"])
    done = [c for c in w.wait_settled(g["id"]) if c["state"] == "complete"]
    m1 = manifest(w, first)
    assert all("image" in v and "backup" not in v for v in m1["volumes"]), m1["volumes"]
    assert sorted(digests(m1)) == sorted(vm["volumes"])
    have = chunk_objects(w, g["id"])
    assert set(have) == {
        d for c in done for ds in digests(manifest(w, c)).values() for d in ds if d
    }
    # Every chunk travelled once: what the checkpoints sent is what is stored.
    sent1 = sum(v["sent_bytes"] for c in done for v in c["volumes"].values())
    assert sent1 == sum(have.values()) > 0

    # The canary writes on; the next checkpoint sends only the chunks that are new.
    t0 = w.now()
    until("more writes", lambda: w.now() - t0 >= 10)
    second = w.checkpoint(g["id"])
    m2 = manifest(w, second)
    before = set(have)
    new = {d for ds in digests(m2).values() for d in ds if d} - before
    sent2 = sum(v["sent_bytes"] for v in second["volumes"].values())
    total2 = sum(
        min(v["image"]["chunk_size"], v["image"]["size"] - i * v["image"]["chunk_size"])
        for v in m2["volumes"]
        for i, d in enumerate(v["image"]["chunks"])
        if d
    )
    assert new, "the canary's writes changed no chunk"
    assert sent2 == chunk_bytes(m2, new) <= total2, (sent2, chunk_bytes(m2, new))
    # Position by position, what changed is at least what was sent (a chunk moved is not resent).
    changed = 0
    for vid, ds in digests(m2).items():
        old = digests(m1)[vid]
        img = next(v["image"] for v in m2["volumes"] if v["id"] == vid)
        cs, size = img["chunk_size"], img["size"]
        changed += sum(
            min(cs, size - i * cs) for i, d in enumerate(ds) if d and (i >= len(old) or old[i] != d)
        )
    assert sent2 <= changed

    # The server is stopped (its writer pauses; a stopped guest needs no quiesce); after one
    # checkpoint that catches up, exactly three known chunks change: three blocks of the
    # data volume, each in another chunk.  Only those travel.
    e = w.sim.connect("east")
    try:
        e.compute.stop_server(vm["id"])
        until("the server to stop", lambda: e.compute.get_server(vm["id"]).status == "SHUTOFF")
    finally:
        e.close()
    quiet_policy = {**POLICY, "consistency": "crash-consistent"}
    w.api("east", "PUT", "/v1/policies/ic", quiet_policy)
    quiet = w.checkpoint(g["id"])
    mq = manifest(w, quiet)
    data_vol = vm["volumes"][1]
    img = next(v["image"] for v in mq["volumes"] if v["id"] == data_vol)
    blocks_per_chunk = img["chunk_size"] // (64 << 10)
    picked = [i for i, d in enumerate(img["chunks"]) if d][:3]
    assert len(picked) == 3
    path = f"/control/volumes/east/{data_vol}/blocks"
    originals = {}
    for i in picked:
        b = i * blocks_per_chunk
        originals[b] = raw(w, "GET", f"{path}/{b}")
        raw(w, "PUT", f"{path}/{b}", hashlib.sha256(b"x%d" % b).digest() * 2048)
    touched = w.checkpoint(g["id"])
    sent3 = sum(v["sent_bytes"] for v in touched["volumes"].values())
    assert sent3 == 3 * img["chunk_size"], sent3
    # Written back as they were: the chunks are there already, nothing travels.
    for b, data in originals.items():
        raw(w, "PUT", f"{path}/{b}", data)
    w.api("east", "PUT", "/v1/policies/ic", {**quiet_policy, "retention_count": 1})
    third = w.checkpoint(g["id"])
    assert sum(v["sent_bytes"] for v in third["volumes"].values()) == 0, third["volumes"]
    assert digests(manifest(w, third)) == digests(mq)

    # Each chunk's bytes hash to its name.
    c = w.sim.connect("west")
    try:
        kept = {d for ds in digests(manifest(w, third)).values() for d in ds if d}
        for d in sorted(kept)[:5]:
            data = c.object_store.download_object(f"chunks/{g['id']}/{d}", container=w.container)
            assert hashlib.sha256(data).hexdigest() == d
    finally:
        c.close()
    # Nothing left at east: the images made for the copies are deleted once copied.
    e = w.sim.connect("east")
    try:
        left = [i.name for i in e.image.images() if (i.name or "").startswith("lr-")]
    finally:
        e.close()
    assert left == [], left

    # Retention kept one checkpoint: the older ones are pruned, and the chunks no kept
    # manifest needs are collected.
    cps = {c["id"]: c for c in w.wait_settled(g["id"])}
    assert cps[third["id"]]["state"] == "complete"
    assert all(c["state"] == "pruned" for cid, c in cps.items() if cid != third["id"]), cps
    m3 = manifest(w, third)
    needed = {d for ds in digests(m3).values() for d in ds if d}
    stored = set(chunk_objects(w, g["id"]))
    assert stored == needed, (len(stored - needed), len(needed - stored))
    assert before - needed, "no chunk of the pruned checkpoints was left to collect"

    # East is lost; west recovers from the chunks alone.
    failure = lose_east(w)
    run = w.api("west", "POST", "/v1/recovery", {"datacenter": "east", "declare_down": "east"})
    final = w.wait_run(run["id"])
    assert final["state"] == "done", (final["failed_steps"], final["error"])
    rep = final["report"]
    assert [x["checkpoint_id"] for x in rep["groups"]] == [third["id"]]
    assert rep["servers_recovered"] == 1 and rep["volumes_recovered"] == 2
    c = w.sim.connect("west")
    try:
        (srv,) = [s for s in c.compute.servers() if s.name == "icdb"]
        assert srv.status == "ACTIVE"
        for v in rep["volumes"]:
            vol = c.block_storage.get_volume(v["volume_id"])
            assert vol.status == "in-use" and vol.attachments[0]["server_id"] == srv.id
        images = [i.name for i in c.image.images() if (i.name or "").startswith("lr-")]
    finally:
        c.close()
    assert images == [], images  # the assembled images are deleted once the volumes exist
    verify_restored(w, vm, rep, third["captured_at"])
    assert third["captured_at"] < failure


@pytest.mark.slow
def test_checkpoint_survives_a_kill_at_the_image_and_mid_copy(world: DrWorld) -> None:
    """Killed right after the image was made, then after the second new chunk landed:
    no second image, and the copy resumes (chunks already sent do not travel again)."""
    w = world
    vm = vm_with_canary(w, "ick", volumes=1)
    g = protect(w, "ick", vm)
    first = [c for c in w.wait_settled(g["id"]) if c["state"] == "complete"][-1]
    vid = vm["volumes"][0]

    for hook in ("after_cloud_call@capture", "after_cloud_call@copy:0#2"):
        t0 = w.now()
        until("more writes", lambda t0=t0: w.now() - t0 >= 10)
        before = set(chunk_objects(w, g["id"]))
        w.ctls["east"].stop()
        ctl = w.start("east", kill_at=hook)
        known = {c["id"] for c in w.checkpoints(g["id"])}
        w.post_once("east", "/v1/groups/ick/checkpoints")
        assert ctl.wait_dead() == -9, f"the controller did not die at {hook}"
        w.start("east")
        (cp,) = [c for c in w.checkpoints(g["id"]) if c["id"] not in known]
        done = w.wait_checkpoint(g["id"], cp["id"])
        assert done["state"] == "complete", done
        e = w.sim.connect("east")
        try:
            ours = [i for i in e.image.images() if (i.name or "").startswith(f"lr-{cp['id'][:12]}")]
        finally:
            e.close()
        assert ours == [], [i.name for i in ours]  # one image made, and deleted after the copy
        m = manifest(w, done)
        stored = chunk_objects(w, g["id"])
        assert {d for d in m["volumes"][0]["image"]["chunks"] if d} <= set(stored)
        entry = done["volumes"][vid]
        new = {d for d in m["volumes"][0]["image"]["chunks"] if d} - before
        # The image's last chunk is short when the data ends inside it: count stored sizes.
        new_bytes = sum(stored[d] for d in new)
        if hook.startswith("after_cloud_call@copy"):
            # Two chunks landed before the kill; the replay sent only the others.
            assert len(new) > 2
            landed_first = new_bytes - entry["sent_bytes_last_attempt"]
            pairs = {stored[a] + stored[b] for a, b in itertools.combinations(sorted(new), 2)}
            assert landed_first in pairs, (entry, landed_first, new)
        else:
            assert entry["sent_bytes"] == entry["sent_bytes_last_attempt"] == new_bytes, (
                entry,
                new,
            )
    assert first["state"] == "complete"


def settled_or_dead(w: DrWorld, ctl: Serve) -> str | None:
    if not ctl.alive():
        return "dead"
    try:
        runs = w.call("west", "GET", "/v1/recovery/runs").json()["runs"]
        if not runs:
            return None
        state = w.call("west", "GET", f"/v1/recovery/runs/{runs[0]['id']}").json()["state"]
    except Exception:
        return "dead" if not ctl.alive() else None
    return "settled" if state in ("done", "failed", "cancelled") else None


@pytest.mark.slow
def test_recovery_from_chunks_survives_a_kill_at_each_cloud_create(world: DrWorld) -> None:
    """West's controller killed right after the cloud accepted the image, the volume, the port,
    the server: one of each, the image deleted, the data verified."""
    w = world
    vm = vm_with_canary(w, "ickr", volumes=1)
    g = protect(w, "ickr", vm)
    cp = [c for c in w.wait_settled(g["id"]) if c["state"] == "complete"][-1]
    lose_east(w)

    w.ctls["west"].stop()
    w.start("west", kill_at="after_cloud_call")
    w.post_once("west", "/v1/recovery", {"datacenter": "east", "declare_down": "east"})
    kills = 0
    while True:
        ctl = w.ctls["west"]
        got = until("west to die or settle the run", lambda ctl=ctl: settled_or_dead(w, ctl))
        if got == "settled":
            break
        assert ctl.wait_dead() == -9
        kills += 1
        assert kills <= 4, "more kills than cloud creates"
        w.start("west", kill_at="after_cloud_call", wait_lead=False)
    assert kills >= 3, kills
    (run,) = w.api("west", "GET", "/v1/recovery/runs")["runs"]
    final = w.wait_run(run["id"])
    assert final["state"] == "done", (final["failed_steps"], final["error"])
    c = w.sim.connect("west")
    try:
        servers = Counter(s.name for s in c.compute.servers())
        volumes = [
            v
            for v in c.block_storage.volumes()
            if v.metadata.get("liferaft_source") == vm["volumes"][0]
        ]
        images = [i.name for i in c.image.images() if (i.name or "").startswith("lr-")]
    finally:
        c.close()
    assert servers["ickr"] == 1, servers
    assert len(volumes) == 1 and volumes[0].status == "in-use", volumes
    assert images == [], images
    verify_restored(w, vm, final["report"], cp["captured_at"])
