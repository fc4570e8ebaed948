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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.drcontroller import MANUAL, DrWorld, build_vm, until
from tests.support.kills import Recovered, count_recovered, recover_through_kills

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


def copied_images(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every copied image of a manifest: volume id, or ``root:<server id>`` for a root disk."""
    out = {v["id"]: v["image"] for v in doc["volumes"]}
    out |= {f"root:{s['id']}": s["root_disk"]["image"] for s in doc["servers"] if "root_disk" in s}
    return out


def digests(doc: dict[str, Any]) -> dict[str, list[str]]:
    return {k: img["chunks"] for k, img in copied_images(doc).items()}


def chunk_bytes(doc: dict[str, Any], wanted: set[str]) -> int:
    """Bytes of the chunks of ``doc`` whose digest is in ``wanted`` (each counted once)."""
    seen: set[str] = set()
    total = 0
    for img in copied_images(doc).values():
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
    # The volumes, and the root disk of the server (it boots from an image).
    assert sorted(digests(m1)) == sorted([*vm["volumes"], f"root:{vm['id']}"])
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
        min(img["chunk_size"], img["size"] - i * img["chunk_size"])
        for img in copied_images(m2).values()
        for i, d in enumerate(img["chunks"])
        if d
    )
    assert new, "the canary's writes changed no chunk"
    assert sent2 == chunk_bytes(m2, new) <= total2, (sent2, chunk_bytes(m2, new))
    # Position by position, what changed is at least what was sent (a chunk moved is not resent).
    changed = 0
    for vid, ds in digests(m2).items():
        old = digests(m1)[vid]
        img = copied_images(m2)[vid]
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


BLOCK = 64 << 10  # the simulator's block size


def root_block(w: DrWorld, site: str, server_id: str, index: int) -> bytes:
    return raw(w, "GET", f"/control/servers/{site}/{server_id}/disk/blocks/{index}")


def guest_writes_root(w: DrWorld, server_id: str, index: int, data: bytes) -> dict[str, Any]:
    """The guest of a server at east writes one block of its root disk (a running guest)."""
    out: dict[str, Any] = json.loads(
        raw(w, "PUT", f"/control/servers/east/{server_id}/disk/blocks/{index}", data)
    )
    return out


def marker(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest() * (BLOCK // 32)


def test_root_disk_writes_before_the_checkpoint_are_recovered_and_later_ones_are_not(
    world: DrWorld,
) -> None:
    """A server booted from an image: its root disk (not the base image) is what recovers.

    Guest writes to the root disk before a checkpoint are on the recovered server's
    root disk; a write after it is not, and the write log says which writes fell in
    the data-loss window.  A later checkpoint sends only the root-disk chunks that
    changed.
    """
    w = world
    vm = build_vm(w, "icroot", volumes=1, canary=None)
    sid = vm["id"]
    g = protect(w, "icroot", vm)
    w.wait_settled(g["id"])
    base_block = root_block(w, "east", sid, 3)  # a block of the base image (cirros, 1 MiB)
    base4 = root_block(w, "east", sid, 4)
    assert base_block != bytes(BLOCK) and base4 != bytes(BLOCK)
    # Writes inside the base image's bytes and far past them (chunks 0, 3 and 6 of 1 MiB).
    guest_writes_root(w, sid, 3, marker("A3"))
    guest_writes_root(w, sid, 100, marker("A100"))
    first = w.checkpoint(g["id"])
    m1 = manifest(w, first)
    (srv,) = m1["servers"]
    assert srv["boot"]["from"] == "image" and srv["root_disk"]["method"] == "image-copy"
    root = srv["root_disk"]["image"]
    assert root["size"] == 101 * BLOCK, root["size"]  # the snapshot ends at the last write
    assert {d for d in root["chunks"] if d} <= set(chunk_objects(w, g["id"]))
    entry = first["volumes"][f"root:{sid}"]
    assert entry["server_id"] == sid and entry["method"] == "image-copy"

    # One more write, in chunk 3: the next checkpoint sends that chunk of the root disk only.
    guest_writes_root(w, sid, 50, marker("A50"))
    second = w.checkpoint(g["id"])
    m2 = manifest(w, second)
    r2 = next(s for s in m2["servers"])["root_disk"]["image"]
    assert [
        i for i, (a, b) in enumerate(zip(root["chunks"], r2["chunks"], strict=True)) if a != b
    ] == [3]
    assert second["volumes"][f"root:{sid}"]["sent_bytes"] == r2["chunk_size"]
    vol = vm["volumes"][0]
    assert second["volumes"][vol]["sent_bytes"] == 0  # the data volume did not change

    # After the last checkpoint: an overwrite and a new block; both are lost with east.
    after = [
        guest_writes_root(w, sid, 3, marker("B3")),
        guest_writes_root(w, sid, 120, marker("B120")),
    ]
    assert all(a["time"] >= second["captured_at"] for a in after)
    e = w.sim.connect("east")
    try:
        left = [i.name for i in e.image.images() if (i.name or "").startswith("lr-")]
    finally:
        e.close()
    assert left == [], left  # the root-disk snapshots at east are deleted once copied

    lose_east(w)
    run = w.api("west", "POST", "/v1/recovery", {"datacenter": "east", "declare_down": "east"})
    final = w.wait_run(run["id"])
    assert final["state"] == "done", (final["failed_steps"], final["error"])
    rep = final["report"]
    assert [x["checkpoint_id"] for x in rep["groups"]] == [second["id"]]
    (booted,) = rep["servers"]
    new_id = booted["server_id"]
    c = w.sim.connect("west")
    try:
        server = c.compute.get_server(new_id)
        assert server.status == "ACTIVE"
        image = c.image.get_image(server.image["id"])
        west_images = [i.name for i in c.image.images()]
    finally:
        c.close()
    # It booted from its root disk's image (kept: Nova rebuilds its disk from it), not cirros.
    assert image.name.startswith("icroot-root-"), image.name
    assert [n for n in west_images if (n or "").startswith("lr-")] == []
    assert root_block(w, "west", new_id, 3) == marker("A3")
    assert root_block(w, "west", new_id, 50) == marker("A50")
    assert root_block(w, "west", new_id, 100) == marker("A100")
    assert root_block(w, "west", new_id, 120) == bytes(BLOCK)  # written after the checkpoint
    assert root_block(w, "west", new_id, 4) == base4  # the base image's bytes, unwritten
    # The write log's root-disk writes: those up to the recovery point are on the disk, the
    # ones after it (the data-loss window) are not.
    log = w.ctl("GET", f"/control/writelog?kind=disk-write&instance={sid}")["entries"]
    kept = [e["data"]["block"] for e in log if e["time"] <= second["captured_at"]]
    lost = [e["data"]["block"] for e in log if e["time"] > second["captured_at"]]
    assert kept == [3, 100, 50] and lost == [3, 120], log


@pytest.mark.slow
def test_checkpoint_survives_a_kill_at_the_image_and_mid_copy(world: DrWorld) -> None:
    """Killed right after the volume's image was made, after the root disk's snapshot was
    made, and after the second new chunk of either copy landed: no second image, and the
    copy resumes (chunks already sent do not travel again)."""
    w = world
    vm = vm_with_canary(w, "ick", volumes=1)
    g = protect(w, "ick", vm)
    first = [c for c in w.wait_settled(g["id"]) if c["state"] == "complete"][-1]
    vid = vm["volumes"][0]
    root = f"root:{vm['id']}"
    # The step each hook kills in, and which copy it interrupts (None: the capture).
    hooks = {
        "after_cloud_call@capture": None,  # the volume's image
        "after_cloud_call@copy:0#2": vid,
        "after_cloud_call@capture#2": None,  # the root disk's snapshot (Nova createImage)
        "after_cloud_call@copy-root:0#2": root,
    }
    for n, (hook, cut) in enumerate(hooks.items()):
        t0 = w.now()
        until("more writes", lambda t0=t0: w.now() - t0 >= 10)
        for b in (20, 40, 60):  # the guest writes its root disk: three chunks change
            guest_writes_root(w, vm["id"], b, marker(f"{n}-{b}"))
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
        # One image per copy made (a second one would be left over), deleted after the copy.
        assert ours == [], [i.name for i in ours]
        m = manifest(w, done)
        stored = chunk_objects(w, g["id"])
        for key, chunks in digests(m).items():
            assert {d for d in chunks if d} <= set(stored), key
            entry = done["volumes"][key]
            new = {d for d in chunks if d} - before
            # The image's last chunk is short when the data ends inside it: count stored sizes.
            new_bytes = sum(stored[d] for d in new)
            if key == cut:
                # Two chunks landed before the kill; the replay sent only the others.
                assert len(new) > 2, (key, new)
                landed_first = new_bytes - entry["sent_bytes_last_attempt"]
                pairs = {stored[a] + stored[b] for a, b in itertools.combinations(sorted(new), 2)}
                assert landed_first in pairs, (key, entry, landed_first, new)
            else:
                # The other copy runs beside the one the hook cuts, so it may have been cut
                # too and resumed: every new chunk travelled once, and at most one (stored in
                # the instant of the kill, before its ledger record) is not counted as sent.
                unrecorded = new_bytes - entry["sent_bytes"]
                assert unrecorded in {0} | {stored[d] for d in new}, (hook, key, entry, new)
                assert entry["sent_bytes_last_attempt"] <= entry["sent_bytes"], (hook, key)
        assert len(digests(m)[root]) >= 4  # the root disk's chunks are in the manifest
    assert first["state"] == "complete"


@pytest.mark.slow
def test_recovery_from_chunks_survives_a_kill_at_each_cloud_create(world: DrWorld) -> None:
    """West's controller killed right after the cloud accepted the volume's image, the root
    disk's image, the volume, the port, the server: one of each, the volume's image deleted,
    the server booted from its root disk's image, the data verified."""
    w = world
    vm = vm_with_canary(w, "ickr", volumes=1)
    g = protect(w, "ickr", vm)
    cp = [c for c in w.wait_settled(g["id"]) if c["state"] == "complete"][-1]
    lose_east(w)

    def made(_run: dict[str, Any]) -> tuple[Recovered, list[str], Any]:
        c = w.sim.connect("west")
        try:
            roots = [i.id for i in c.image.images() if (i.name or "").startswith("ickr-root-")]
            (srv,) = [s for s in c.compute.servers() if s.name == "ickr"]
        finally:
            c.close()
        return count_recovered(w, "ickr", vm["volumes"][0]), roots, srv

    got = recover_through_kills(
        w,
        lambda: w.post_once("west", "/v1/recovery", {"datacenter": "east", "declare_down": "east"}),
        "after_cloud_call",
        made,
        max_kills=5,
    )
    assert got.kills >= 4, got.kills
    final = got.run
    made_here, roots, srv = got.resources
    servers, volumes, images = made_here.servers, made_here.volumes, made_here.images
    assert servers["ickr"] == 1, servers
    assert roots == [srv.image["id"]], (roots, srv.image)
    assert len(volumes) == 1 and volumes[0].status == "in-use", volumes
    assert images == [], images
    verify_restored(w, vm, final["report"], cp["captured_at"])
