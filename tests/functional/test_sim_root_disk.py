"""The simulator's root disks: a guest writes its local disk, createImage snapshots it.

What image-copy's root-disk protection relies on, checked over HTTP on a
stepped clock: the control API's guest writes (refused while the guest is
frozen or stopped, logged), ``createImage`` taking the disk's bytes at the
request (point in time), and a guest thawed while its snapshot uploads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx

from tests.support.sim import SimProcess

CIRROS = "6b6f2d1e-8d7e-4f0a-9a51-7c8e2e3b9a11"
BLOCK = 64 << 10


def _nova(sim: SimProcess) -> Callable[..., httpx.Response]:
    conn = sim.connect("east")
    token = conn.auth_token
    base = sim.sites["east"] + "/compute/v2.1"
    http = httpx.Client(timeout=30)

    def call(method: str, path: str, body: Any = None) -> httpx.Response:
        headers = {"X-Auth-Token": token, "OpenStack-API-Version": "compute 2.96"}
        return http.request(method, base + path, json=body, headers=headers)

    return call


def test_guest_writes_reach_the_root_disk_and_a_snapshot_holds_them_at_the_request(
    sim_factory: Callable[..., SimProcess],
) -> None:
    sim = sim_factory(
        topology={
            "images": [{"name": "cirros", "id": CIRROS}],
            "latency": {"quiesce": 1, "image_create": 5},
        }
    )
    nova = _nova(sim)
    r = nova(
        "POST",
        "/servers",
        {"server": {"name": "vm", "imageRef": CIRROS, "flavorRef": "1", "networks": "none"}},
    )
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    sim.advance(1)
    disk = f"/control/servers/east/{sid}/disk"
    info = sim.control("GET", disk)
    assert info["image_id"] == CIRROS and info["size"] == 1 << 30 and info["block_size"] == BLOCK
    assert info["written_blocks"] == list(range(16))  # the base image's 1 MiB
    w = sim.http.put(f"{disk}/blocks/40", content=b"A" * BLOCK)
    assert w.status_code == 200, w.text
    assert sim.http.get(f"{disk}/blocks/40").content == b"A" * BLOCK
    assert sim.http.put(f"{disk}/blocks/{info['blocks']}", content=b"x").status_code == 400

    # Frozen: the guest cannot write.  The snapshot taken now holds block 40 as "A".
    assert nova("POST", f"/servers/{sid}/action", {"quiesce": None}).status_code == 202
    sim.advance(1)
    frozen = sim.http.put(f"{disk}/blocks/41", content=b"Z" * BLOCK)
    assert frozen.status_code == 409 and "quiesced" in frozen.text
    r = nova("POST", f"/servers/{sid}/action", {"createImage": {"name": "snap"}})
    assert r.status_code == 202, r.text
    image_id = r.json()["image_id"]
    assert nova("GET", f"/servers/{sid}").json()["server"]["OS-EXT-STS:task_state"] == (
        "image_uploading"
    )
    # Thawed while the snapshot uploads; the upload's task state stays until it is done.
    assert nova("POST", f"/servers/{sid}/action", {"unquiesce": None}).status_code == 202
    sim.advance(1)
    assert nova("GET", f"/servers/{sid}").json()["server"]["OS-EXT-STS:task_state"] == (
        "image_uploading"
    )
    assert sim.http.put(f"{disk}/blocks/40", content=b"B" * BLOCK).status_code == 200
    sim.advance(5)
    assert nova("GET", f"/servers/{sid}").json()["server"]["OS-EXT-STS:task_state"] is None
    glance = sim.connect("east").image
    image = glance.get_image(image_id)
    assert image.status == "active" and image.size == 41 * BLOCK
    data = glance.download_image(image_id).content
    assert data[40 * BLOCK :] == b"A" * BLOCK  # the bytes at the request, not the later write
    assert sim.http.get(f"{disk}/blocks/40").content == b"B" * BLOCK
    log = sim.control("GET", f"/control/writelog?kind=disk-write&instance={sid}")["entries"]
    assert [e["data"]["block"] for e in log] == [40, 40]  # the refused write is not logged

    # A stopped guest writes nothing.
    assert nova("POST", f"/servers/{sid}/action", {"os-stop": None}).status_code == 202
    sim.advance(5)
    assert sim.http.put(f"{disk}/blocks/40", content=b"C" * BLOCK).status_code == 409
