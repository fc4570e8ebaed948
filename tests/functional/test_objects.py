"""The per-site object store through openstacksdk's object_store proxy and raw Swift calls."""

from __future__ import annotations

import hashlib

import httpx
import openstack.exceptions
import pytest

from tests.support.sim import SimProcess


def test_object_store_crud_with_the_sdk(sim: SimProcess, tmp_path: object) -> None:
    conn = sim.connect("east-demo")
    conn.object_store.create_container("photos")
    data = b"\x00\x01hello swift" * 1000
    conn.object_store.upload_object(container="photos", name="a/b.bin", data=data)
    conn.object_store.upload_object(container="photos", name="a/c.bin", data=b"c")
    conn.object_store.upload_object(container="photos", name="z.txt", data=b"zz")

    names = [o.name for o in conn.object_store.objects("photos")]
    assert names == ["a/b.bin", "a/c.bin", "z.txt"]
    assert [o.name for o in conn.object_store.objects("photos", prefix="a/")] == [
        "a/b.bin",
        "a/c.bin",
    ]
    # limit + marker paging returns each object once.
    paged = [o.name for o in conn.object_store.objects("photos", limit=1)]
    assert paged == names

    assert conn.object_store.download_object("a/b.bin", container="photos") == data
    meta = conn.object_store.get_object_metadata("a/b.bin", container="photos")
    assert meta.etag == hashlib.md5(data).hexdigest()
    assert int(meta.content_length) == len(data)

    cont = conn.object_store.get_container_metadata("photos")
    assert cont.object_count == 3 and cont.bytes_used == len(data) + 3
    assert [c.name for c in conn.object_store.containers()] == ["photos"]

    # A container with objects cannot go.
    with pytest.raises(openstack.exceptions.ConflictException):
        conn.object_store.delete_container("photos")
    for name in names:
        conn.object_store.delete_object(name, container="photos")
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.object_store.download_object("z.txt", container="photos")
    conn.object_store.delete_container("photos")
    assert list(conn.object_store.containers()) == []


def test_swift_raw_semantics(sim: SimProcess) -> None:
    conn = sim.connect("west")
    token = conn.auth_token
    base = f"{sim.sites['west']}/object-store/v1/AUTH_{conn.current_project_id}"
    h = {"X-Auth-Token": token}
    assert httpx.put(f"{base}/c1", headers=h).status_code == 201
    assert httpx.put(f"{base}/c1", headers=h).status_code == 202
    # Object into a missing container: 404.
    assert httpx.put(f"{base}/nope/o", headers=h, content=b"x").status_code == 404
    # A wrong ETag is refused.
    r = httpx.put(f"{base}/c1/o", headers={**h, "ETag": "0" * 32}, content=b"x")
    assert r.status_code == 422
    r = httpx.put(f"{base}/c1/d/o", headers={**h, "X-Object-Meta-Color": "blue"}, content=b"hello")
    assert r.status_code == 201 and r.headers["etag"] == hashlib.md5(b"hello").hexdigest()
    r = httpx.head(f"{base}/c1/d/o", headers=h)
    assert r.headers["x-object-meta-color"] == "blue" and r.headers["content-length"] == "5"
    r = httpx.get(f"{base}/c1", headers=h, params={"delimiter": "/", "format": "json"})
    assert r.json() == [{"subdir": "d/"}]
    r = httpx.get(f"{base}", headers=h)
    assert r.text == "c1\n"
    # Another project's account is forbidden to a non-admin.
    demo = sim.connect("west-demo")
    r = httpx.get(base, headers={"X-Auth-Token": demo.auth_token})
    assert r.status_code == 403
    assert httpx.get(base).status_code == 401
    assert httpx.get(f"{sim.sites['west']}/object-store/info").json()["swift"]["max_file_size"]


def test_object_store_unreachable_while_site_down(sim: SimProcess) -> None:
    conn = sim.connect("east")
    conn.object_store.create_container("keep")
    conn.object_store.upload_object(container="keep", name="o", data=b"data")
    sim.control("POST", "/control/faults", {"kind": "site-down", "target": "east"})
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{sim.sites['east']}/object-store/info")
    sim.control("POST", "/control/heal", {})
    assert conn.object_store.download_object("o", container="keep") == b"data"
