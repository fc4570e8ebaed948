"""Benchmark replication: bytes sent per checkpoint against the bytes that changed, and throughput.

A simulator (``east`` → ``west``) and a real controller at ``east``
(``liferaft serve``, on the simulator's scaled clock).  For each method a
server gets one 1 GiB volume; ``base_mib`` MiB of incompressible (random)
bytes are written at its start through the simulator's block-write control
API, a first (full) checkpoint is taken, then ``rounds`` times ``writes``
random 64 KiB blocks of that region are overwritten with random bytes and
a checkpoint is taken.  Per measured (incremental) checkpoint:

* ``image_copy``: ``bytes_sent`` = the chunk bytes the copier stored at the
  recovery site (the checkpoint's ``sent_bytes``) plus its manifest;
  ``changed_bytes`` = the bytes of the chunks whose content changed since
  the previous checkpoint (read from the two manifests);
* ``snapshot_backup`` (for information): ``bytes_sent`` = the bytes the
  backup service carried over the WAN link (the simulator's link counters,
  tag ``backup``) plus the manifest; ``changed_bytes`` = the distinct
  blocks written times the block size;
* ``ratio`` = ``bytes_sent / changed_bytes`` (target for image-copy ≤ 1.1);
* ``written_bytes`` (the distinct blocks overwritten) and ``sent_per_written``:
  what the chunk granularity costs against block-level backups when the
  writes are scattered (each 64 KiB write dirties a whole 1 MiB chunk);
* ``throughput_mb_s`` = the image bytes the copier read and hashed (the
  whole image, every checkpoint) per wall-clock second of the checkpoint
  (image-copy), or the bytes sent per wall-clock second (snapshot-backup).

For image-copy the server is protected too, so its root disk (booted from
the ``cirros`` image) is copied as well: ``root_mib`` MiB of random bytes
are written to it through the simulator's guest-write control API, and
each round overwrites a quarter as many random blocks there.
``image_copy.root_disk`` reports its own ``bytes_sent`` (the checkpoint's
``root:<server>`` ``sent_bytes``), ``changed_bytes`` and ``ratio``; the
headline figures stay the volume's (the throughput counts both images).

The machine's limits, measured here: ``sha256_mb_s`` (hashlib over
incompressible data in memory), ``disk_write_mb_s`` (a file written and
fsynced) and ``disk_read_mb_s`` (read back; the page cache may serve it).
Wall-clock figures depend on the machine's load (the simulator, the
controller and this process share its cores).

``--quick`` runs a smaller size (named in the output) in about a minute or
two.  ``--json`` prints one JSON object; results are also written to
``bench/results/replication.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.drcontroller import MANUAL, DrWorld, build_vm  # noqa: E402

from liferaft.protection.image_copy import changed_bytes  # noqa: E402

MIB = 1 << 20
BLOCK = 64 << 10


def machine_limits(tmp: Path, mib: int) -> dict[str, float]:
    data = os.urandom(mib * MIB)
    t = time.perf_counter()
    hashlib.sha256(data).hexdigest()
    sha = mib / (time.perf_counter() - t)
    path = tmp / "disk.bin"
    t = time.perf_counter()
    with open(path, "wb") as f:
        for i in range(0, len(data), 4 * MIB):
            f.write(data[i : i + 4 * MIB])
        f.flush()
        os.fsync(f.fileno())
    write = mib / (time.perf_counter() - t)
    t = time.perf_counter()
    with open(path, "rb") as f:
        while f.read(4 * MIB):
            pass
    read = mib / (time.perf_counter() - t)
    path.unlink()
    return {
        "sha256_mb_s": round(sha, 1),
        "disk_write_mb_s": round(write, 1),
        "disk_read_mb_s": round(read, 1),
    }


def put_block(w: DrWorld, vid: str, index: int, data: bytes) -> None:
    r = w.sim.http.put(f"/control/volumes/east/{vid}/blocks/{index}", content=data)
    r.raise_for_status()


def put_root_block(w: DrWorld, sid: str, index: int, data: bytes) -> None:
    """The guest of server ``sid`` writes one block of its root disk."""
    r = w.sim.http.put(f"/control/servers/east/{sid}/disk/blocks/{index}", content=data)
    r.raise_for_status()


def manifest(w: DrWorld, cp: dict[str, Any]) -> tuple[dict[str, Any], int]:
    c = w.sim.connect("west")
    try:
        raw = bytes(c.object_store.download_object(cp["manifest"]["object"], container=w.container))
    finally:
        c.close()
    doc: dict[str, Any] = json.loads(raw)["manifest"]
    return doc, len(raw)


def link_bytes(w: DrWorld, tag: str) -> int:
    """Bytes the WAN links carried for flows of ``tag`` so far (the simulator's counters)."""
    return sum(
        int(link["bytes_by_tag"].get(tag, 0)) for link in w.ctl("GET", "/control/links")["links"]
    )


def run_method(
    w: DrWorld, method: str, *, base_mib: int, rounds: int, writes: int, seed: int
) -> dict[str, Any]:
    rng = random.Random(seed)
    name = f"bench-{method}"
    vm = build_vm(w, name, volumes=1, canary=None)
    vid = vm["volumes"][0]
    base_blocks = base_mib * MIB // BLOCK
    for b in range(base_blocks):
        put_block(w, vid, b, os.urandom(BLOCK))
    policy = {**MANUAL, "method": method, "consistency": "crash-consistent", "chain_length": 100}
    w.api("east", "PUT", f"/v1/policies/{name}", policy)
    g = w.api("east", "POST", "/v1/groups", {"name": name, "policy": name})
    w.api("east", "POST", f"/v1/groups/{name}/members", {"kind": "volume", "id": vid})
    sid = vm["id"]
    root = method == "image-copy"
    root_blocks = max(base_blocks // 4, 16)
    if root:  # the server's root disk too: random bytes past the base image's 1 MiB
        for b in range(16, 16 + root_blocks):
            put_root_block(w, sid, b, os.urandom(BLOCK))
        w.api("east", "POST", f"/v1/groups/{name}/members", {"kind": "server", "id": sid})
    prev = [c for c in w.wait_settled(g["id"]) if c["state"] == "complete"][-1]
    if root:  # the group's first checkpoint may have started before the server was in
        prev = w.checkpoint(g["id"])
    prev_doc, _ = manifest(w, prev)
    sent = changed = written = 0
    root_sent = root_changed = 0
    seconds = 0.0
    scanned = 0
    per: list[dict[str, Any]] = []
    for _ in range(rounds):
        touched = sorted({rng.randrange(base_blocks) for _ in range(writes)})
        for b in touched:
            put_block(w, vid, b, os.urandom(BLOCK))
        if root:
            for b in sorted({16 + rng.randrange(root_blocks) for _ in range(writes // 4)}):
                put_root_block(w, sid, b, os.urandom(BLOCK))
        link0 = link_bytes(w, "backup")
        t = time.perf_counter()
        cp = w.checkpoint(g["id"])
        dt = time.perf_counter() - t
        doc, mbytes = manifest(w, cp)
        if method == "image-copy":
            img, old = doc["volumes"][0]["image"], prev_doc["volumes"][0]["image"]
            ch = changed_bytes(old["chunks"], img["chunks"], img["size"], img["chunk_size"])
            s = cp["volumes"][vid]["sent_bytes"] + mbytes
            scanned += img["size"]
            rimg = doc["servers"][0]["root_disk"]["image"]
            rold = prev_doc["servers"][0]["root_disk"]["image"]
            root_changed += changed_bytes(
                rold["chunks"], rimg["chunks"], rimg["size"], rimg["chunk_size"]
            )
            root_sent += cp["volumes"][f"root:{sid}"]["sent_bytes"]
            scanned += rimg["size"]
        else:
            ch = len(touched) * BLOCK
            s = link_bytes(w, "backup") - link0 + mbytes
            scanned += s
        per.append(
            {
                "bytes_sent": s,
                "changed_bytes": ch,
                "written_bytes": len(touched) * BLOCK,
                "seconds": round(dt, 2),
            }
        )
        sent += s
        changed += ch
        written += len(touched) * BLOCK
        seconds += dt
        prev_doc = doc
    return {
        "bytes_sent": sent,
        "changed_bytes": changed,
        "ratio": round(sent / changed, 4) if changed else None,
        "written_bytes": written,
        "sent_per_written": round(sent / written, 2) if written else None,
        "throughput_mb_s": round(scanned / MIB / seconds, 1) if seconds else None,
        "checkpoints": per,
        **(
            {
                "root_disk": {
                    "root_mib": root_blocks * BLOCK // MIB,
                    "bytes_sent": root_sent,
                    "changed_bytes": root_changed,
                    "ratio": round(root_sent / root_changed, 4) if root_changed else None,
                }
            }
            if root
            else {}
        ),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smaller run (a minute or two)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    base_mib, rounds, writes = (32, 2, 24) if args.quick else (256, 4, 200)
    tmp = Path(tempfile.mkdtemp(prefix="lr-bench-replication-"))
    try:
        limits = machine_limits(tmp, 64 if args.quick else 256)
        w = DrWorld(tmp / "world")
        try:
            w.start("east")
            results = {
                key: run_method(w, method, base_mib=base_mib, rounds=rounds, writes=writes, seed=7)
                for key, method in (
                    ("image_copy", "image-copy"),
                    ("snapshot_backup", "snapshot-backup"),
                )
            }
        finally:
            w.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "benchmark": "replication",
        "size": "quick" if args.quick else "full",
        "base_mib": base_mib,
        "rounds": rounds,
        "writes_per_round": writes,
        "block_bytes": BLOCK,
        "chunk_bytes": MIB,
        **results,
        "limits": limits,
        "cpus": os.cpu_count(),
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    out = ROOT / "bench" / "results" / "replication.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:20} {v}")


if __name__ == "__main__":
    main()
