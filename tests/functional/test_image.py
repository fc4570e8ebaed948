"""Image v2 of the simulator, through openstacksdk and the openstack CLI."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import openstack.exceptions
import pytest

from tests.support.sim import SimProcess


def _seed_bytes(name: str, size: int) -> bytes:
    from liferaft.sim.image.store import seed_bytes

    return b"".join(seed_bytes(name, size))


def test_versions_and_seeded_image(sim: SimProcess) -> None:
    r = httpx.get(sim.sites["east"] + "/image")
    assert r.status_code == 300
    current = [v for v in r.json()["versions"] if v["status"] == "CURRENT"]
    assert current[0]["id"] == "v2.9"
    assert current[0]["links"][0]["href"] == sim.sites["east"] + "/image/v2/"
    conn = sim.connect("west")
    image = conn.image.find_image("cirros")
    assert image is not None
    assert image.status == "active" and image.visibility == "public"
    assert image.size == 1 << 20
    data = _seed_bytes("cirros", 1 << 20)
    assert image.checksum == hashlib.md5(data).hexdigest()
    assert image.hash_algo == "sha512"
    assert image.hash_value == hashlib.sha512(data).hexdigest()
    # The same image has the same bytes at every site.
    east = sim.connect("east").image.find_image("cirros")
    assert east is not None and east.checksum == image.checksum


def test_cli_create_with_file_then_save_is_byte_identical(sim: SimProcess, tmp_path: Path) -> None:
    src = tmp_path / "disk.img"
    payload = bytes(range(256)) * 4099 + b"tail"  # not a whole number of blocks
    src.write_bytes(payload)
    made = sim.openstack(
        "east",
        "image",
        "create",
        "--file",
        str(src),
        "--disk-format",
        "raw",
        "--container-format",
        "bare",
        "--property",
        "purpose=test",
        "uploaded",
        "-f",
        "json",
    )
    assert made["status"] == "active"
    assert made["size"] == len(payload)
    assert made["checksum"] == hashlib.md5(payload).hexdigest()
    out = tmp_path / "out.img"
    sim.openstack("east", "image", "save", "--file", str(out), "uploaded")
    assert out.read_bytes() == payload
    conn = sim.connect("east")
    image = conn.image.get_image(made["id"])
    assert image.hash_value == hashlib.sha512(payload).hexdigest()
    assert image.properties["purpose"] == "test"
    assert image.owner == conn.current_project_id and image.visibility == "shared"


def test_sdk_upload_states_and_download(sim: SimProcess) -> None:
    conn = sim.connect("east")
    image = conn.image.create_image(
        name="steps", disk_format="qcow2", container_format="bare", allow_duplicates=True
    )
    queued = conn.image.get_image(image.id)
    assert queued.status == "queued" and queued.size is None
    base = sim.sites["east"] + f"/image/v2/images/{image.id}/file"
    hdr = {"X-Auth-Token": conn.auth_token}
    assert httpx.get(base, headers=hdr).status_code == 204  # no data yet
    r = httpx.put(base, headers={**hdr, "Content-Type": "text/plain"}, content=b"x")
    assert r.status_code == 415
    data = b"\0" * 70000 + b"payload" + b"\0" * 1000
    r = httpx.put(base, headers={**hdr, "Content-Type": "application/octet-stream"}, content=data)
    assert r.status_code == 204
    active = conn.image.get_image(image.id)
    assert active.status == "active" and active.size == len(data)
    got = httpx.get(base, headers=hdr)
    assert got.content == data
    assert got.headers["content-md5"] == hashlib.md5(data).hexdigest()
    assert conn.image.download_image(active).content == data
    # Uploading twice is a state-transition conflict.
    r = httpx.put(
        base, headers={**hdr, "Content-Type": "application/octet-stream"}, content=b"again"
    )
    assert r.status_code == 409


def test_image_list_pages_over_five_images(sim: SimProcess) -> None:
    conn = sim.connect("east")
    made = set()
    for i in range(5):
        img = conn.image.create_image(
            name=f"page-{i}", disk_format="raw", container_format="bare", allow_duplicates=True
        )
        made.add(img.id)
    seen = [i.id for i in conn.image.images(limit=2)]
    assert len(seen) == len(set(seen))  # each image once
    assert made <= set(seen)
    assert len(seen) == 6  # the five and the seeded cirros
    r = httpx.get(
        sim.sites["east"] + "/image/v2/images",
        params={"limit": 2},
        headers={"X-Auth-Token": conn.auth_token},
    )
    body = r.json()
    assert len(body["images"]) == 2 and body["first"] == "/v2/images"
    assert body["next"].startswith("/v2/images?") and body["images"][-1]["id"] in body["next"]
    cli = sim.openstack("east", "image", "list", "--limit", "2", "-f", "json")
    assert len(cli) == 2
    names = {i["Name"] for i in sim.openstack("east", "image", "list", "-f", "json")}
    assert {f"page-{i}" for i in range(5)} | {"cirros"} == names


def test_image_filters(sim: SimProcess) -> None:
    conn = sim.connect("east")
    a = conn.image.create_image(
        name="fa", disk_format="raw", container_format="bare", allow_duplicates=True
    )
    b = conn.image.create_image(
        name="fb", disk_format="raw", container_format="bare", allow_duplicates=True
    )
    hidden = conn.image.create_image(
        name="fh", disk_format="raw", container_format="bare", allow_duplicates=True
    )
    conn.image.update_image(hidden, is_hidden=True)
    ids = {i.id for i in conn.image.images(id=f"in:{a.id},{b.id}")}
    assert ids == {a.id, b.id}
    assert [i.id for i in conn.image.images(name="fb")] == [b.id]
    assert hidden.id not in {i.id for i in conn.image.images()}
    assert [i.id for i in conn.image.images(is_hidden=True)] == [hidden.id]
    assert {i.name for i in conn.image.images(status="active")} == {"cirros"}
    assert {i.name for i in conn.image.images(visibility="public")} == {"cirros"}
    # The demo project sees public images, not admin's private ones.
    demo = {i.name for i in sim.connect("east-demo").image.images()}
    assert demo == {"cirros"}


def test_cli_show_and_set_property(sim: SimProcess) -> None:
    conn = sim.connect("east")
    img = conn.image.create_image(
        name="props", disk_format="raw", container_format="bare", allow_duplicates=True
    )
    sim.openstack("east", "image", "set", "--property", "tier=gold", "--min-ram", "64", "props")
    shown = sim.openstack("east", "image", "show", "props", "-f", "json")
    assert shown["id"] == img.id
    assert shown["min_ram"] == 64
    assert shown["properties"]["tier"] == "gold"
    after = conn.image.get_image(img.id)
    assert after.properties["tier"] == "gold"


def _patch(
    sim: SimProcess, conn: Any, image_id: str, ops: Any, ctype: str | None = None
) -> httpx.Response:
    return httpx.patch(
        sim.sites["east"] + f"/image/v2/images/{image_id}",
        headers={
            "X-Auth-Token": conn.auth_token,
            "Content-Type": ctype or "application/openstack-images-v2.1-json-patch",
        },
        json=ops,
    )


def test_json_patch_rules(sim: SimProcess) -> None:
    conn = sim.connect("east")
    img = conn.image.create_image(
        name="jp", disk_format="raw", container_format="bare", allow_duplicates=True
    )
    r = _patch(sim, conn, img.id, [{"op": "add", "path": "/color", "value": "red"}])
    assert r.status_code == 200 and r.json()["color"] == "red"
    r = _patch(sim, conn, img.id, [{"op": "replace", "path": "/nothere", "value": "x"}])
    assert r.status_code == 409
    r = _patch(sim, conn, img.id, [{"op": "replace", "path": "/status", "value": "active"}])
    assert r.status_code == 403
    r = _patch(sim, conn, img.id, [{"op": "remove", "path": "/color"}])
    assert r.status_code == 200 and "color" not in r.json()
    r = _patch(sim, conn, img.id, [{"op": "add", "path": "/n", "value": 5}])
    assert r.status_code == 400
    r = _patch(sim, conn, img.id, [], ctype="application/json")
    assert r.status_code == 415
    # An op list that fails part-way changes nothing.
    r = _patch(
        sim,
        conn,
        img.id,
        [{"op": "add", "path": "/a", "value": "1"}, {"op": "remove", "path": "/missing"}],
    )
    assert r.status_code == 409
    assert "a" not in conn.image.get_image(img.id).properties


def test_protected_image_cannot_be_deleted(sim: SimProcess) -> None:
    conn = sim.connect("east")
    img = conn.image.create_image(
        name="keep", disk_format="raw", container_format="bare", allow_duplicates=True
    )
    conn.image.update_image(img, is_protected=True)
    r = sim.openstack("east", "image", "delete", "keep", check=False)
    assert r.returncode != 0
    r = httpx.delete(
        sim.sites["east"] + f"/image/v2/images/{img.id}",
        headers={"X-Auth-Token": conn.auth_token},
    )
    assert r.status_code == 403 and "protected" in r.text
    conn.image.update_image(img, is_protected=False)
    conn.image.delete_image(img)
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.image.get_image(img.id)


def test_errors(sim: SimProcess) -> None:
    conn = sim.connect("east")
    base = sim.sites["east"] + "/image/v2/images"
    hdr = {"X-Auth-Token": conn.auth_token}
    r = httpx.get(f"{base}/00000000-0000-0000-0000-000000000000", headers=hdr)
    assert r.status_code == 404 and "No image found" in r.text
    r = httpx.post(base, headers=hdr, content=b"{broken")
    assert r.status_code == 400
    r = httpx.post(base, headers=hdr, json={"name": "x", "disk_format": "floppy"})
    assert r.status_code == 400
    r = httpx.post(base, headers=hdr, json={"name": "x", "size": 5})
    assert r.status_code == 403
    r = httpx.get(base, headers=hdr, params={"marker": "nope"})
    assert r.status_code == 400
    demo = sim.connect("east-demo")
    r = httpx.post(
        base,
        headers={"X-Auth-Token": demo.auth_token},
        json={"name": "pub", "visibility": "public"},
    )
    assert r.status_code == 403
    cirros = conn.image.find_image("cirros")
    assert cirros is not None
    r = httpx.delete(f"{base}/{cirros.id}", headers={"X-Auth-Token": demo.auth_token})
    assert r.status_code == 403
