"""Block Storage v3 of the simulator through openstacksdk, the openstack CLI and raw HTTP."""

from __future__ import annotations

import httpx
import openstack.exceptions
import pytest

from tests.support.sim import SimProcess


def _wait(sim: SimProcess, conn: object, vol_id: str, status: str = "available") -> object:
    sim.advance(0)
    vol = conn.block_storage.get_volume(vol_id)  # type: ignore[attr-defined]
    assert vol.status == status, vol.status
    return vol


def test_discovery_answers_every_form(sim: SimProcess) -> None:
    base = sim.sites["east"]
    for path in ("/volume/v3/", "/volume/", "/volume/v3"):
        doc = httpx.get(base + path).json()
        assert doc["versions"][0]["version"] == "3.71"
        assert doc["versions"][0]["min_version"] == "3.0"


def test_create_list_paginate_show_with_the_sdk(sim: SimProcess) -> None:
    conn = sim.connect("east")
    ids = {conn.block_storage.create_volume(size=1, name=f"v{i}").id for i in range(5)}
    sim.advance(0)
    listed = [v.id for v in conn.block_storage.volumes(limit=2)]
    assert sorted(listed) == sorted(ids) and len(listed) == 5  # each once
    vol = conn.block_storage.get_volume(next(iter(ids)))
    assert vol.status == "available" and vol.size == 1 and vol.attachments == []
    assert vol.volume_type == "__DEFAULT__"
    assert [v.name for v in conn.block_storage.volumes(name="v3")] == ["v3"]
    # Another project sees none of them.
    demo = sim.connect("east-demo")
    assert list(demo.block_storage.volumes()) == []
    with pytest.raises(openstack.exceptions.NotFoundException):
        demo.block_storage.get_volume(vol.id)


def _needs_image_api(sim: SimProcess) -> None:
    """The CLI discovers the image service for most volume commands."""
    if httpx.get(sim.sites["east"] + "/image").status_code >= 400:
        pytest.skip("the simulator's image API is not served yet (the CLI needs it)")


def test_cli_volume_create_list_show_snapshot(sim: SimProcess) -> None:
    _needs_image_api(sim)
    made = sim.openstack("east", "volume", "create", "--size", "1", "cli-vol", "-f", "json")
    assert made["status"] == "creating" and made["size"] == 1
    sim.advance(0)
    shown = sim.openstack("east", "volume", "show", "cli-vol", "-f", "json")
    assert shown["status"] == "available" and shown["id"] == made["id"]
    other = sim.openstack("east", "volume", "create", "--size", "2", "cli-vol2", "-f", "json")
    # The CLI (through openstacksdk) treats --limit as the page size and follows
    # every page by marker: each volume comes back exactly once.
    listed = sim.openstack("east", "volume", "list", "--limit", "1", "-f", "json")
    assert sorted(v["ID"] for v in listed) == sorted([made["id"], other["id"]])
    snap = sim.openstack(
        "east", "volume", "snapshot", "create", "--volume", "cli-vol", "snap1", "-f", "json"
    )
    assert snap["status"] == "creating"
    sim.advance(0)
    shown = sim.openstack("east", "volume", "snapshot", "show", "snap1", "-f", "json")
    assert shown["status"] == "available" and shown["volume_id"] == made["id"]


def test_status_follows_latency_on_the_clock(sim_factory: object) -> None:
    sim = sim_factory(topology={"latency": {"volume_create": 5.0, "snapshot": 2.0}})  # type: ignore[operator]
    conn = sim.connect("east")
    vol = conn.block_storage.create_volume(size=1)
    sim.advance(4.9)
    assert conn.block_storage.get_volume(vol.id).status == "creating"
    sim.advance(0.2)
    assert conn.block_storage.get_volume(vol.id).status == "available"
    snap = conn.block_storage.create_snapshot(volume_id=vol.id)
    sim.advance(1.9)
    assert conn.block_storage.get_snapshot(snap.id).status == "creating"
    sim.advance(0.2)
    assert conn.block_storage.get_snapshot(snap.id).status == "available"


def test_snapshot_is_point_in_time_and_clones_hold_its_bytes(sim: SimProcess) -> None:
    conn = sim.connect("east")
    vol = conn.block_storage.create_volume(size=1)
    sim.advance(0)
    blocks = f"/control/volumes/east/{vol.id}/blocks"
    sim.http.put(f"{blocks}/3", content=b"before")
    snap = conn.block_storage.create_snapshot(volume_id=vol.id)
    sim.http.put(f"{blocks}/3", content=b"after")
    sim.advance(0)
    clone = conn.block_storage.create_volume(snapshot_id=snap.id)
    assert clone.size == 1
    sim.advance(0)
    got = sim.http.get(f"/control/volumes/east/{clone.id}/blocks/3").content
    assert got.rstrip(b"\0") == b"before"
    copy = conn.block_storage.create_volume(source_volume_id=vol.id, size=2)
    sim.advance(0)
    assert sim.http.get(f"/control/volumes/east/{copy.id}/blocks/3").content.startswith(b"after")
    assert conn.block_storage.get_volume(copy.id).size == 2
    # A volume with snapshots cannot be deleted; the error is Cinder's 400.
    with pytest.raises(openstack.exceptions.BadRequestException):
        conn.block_storage.delete_volume(vol.id)


def test_attach_detach_rules(sim: SimProcess) -> None:
    conn = sim.connect("east")
    vol = conn.block_storage.create_volume(size=1)
    sim.advance(0)
    server = "0b1c8a7e-0000-4000-8000-000000000001"
    base = f"{sim.sites['east']}/volume/v3/volumes/{vol.id}/action"
    h = {"X-Auth-Token": conn.auth_token}
    assert httpx.post(base, headers=h, json={"os-reserve": None}).status_code == 202
    r = httpx.post(
        base, headers=h, json={"os-attach": {"instance_uuid": server, "mountpoint": "/dev/vdb"}}
    )
    assert r.status_code == 202
    sim.advance(0)
    vol = conn.block_storage.get_volume(vol.id)
    assert vol.status == "in-use" and vol.attachments[0]["server_id"] == server
    # Deleting an in-use volume: 400 badRequest.
    r = httpx.delete(f"{sim.sites['east']}/volume/v3/volumes/{vol.id}", headers=h)
    assert r.status_code == 400 and "badRequest" in r.json()
    # A snapshot of an in-use volume needs force before 3.66.
    r = httpx.post(
        f"{sim.sites['east']}/volume/v3/snapshots",
        headers={**h, "OpenStack-API-Version": "volume 3.65"},
        json={"snapshot": {"volume_id": vol.id}},
    )
    assert r.status_code == 400 and "force" in r.json()["badRequest"]["message"]
    r = httpx.post(
        f"{sim.sites['east']}/volume/v3/snapshots",
        headers={**h, "OpenStack-API-Version": "volume 3.66"},
        json={"snapshot": {"volume_id": vol.id}},
    )
    assert r.status_code == 202 and r.headers["openstack-api-version"] == "volume 3.66"
    assert httpx.post(base, headers=h, json={"os-begin_detaching": None}).status_code == 202
    assert httpx.post(base, headers=h, json={"os-detach": {}}).status_code == 202
    sim.advance(0)
    vol = conn.block_storage.get_volume(vol.id)
    assert vol.status == "available" and vol.attachments == []


def test_attachments_api(sim: SimProcess) -> None:
    conn = sim.connect("east")
    vol = conn.block_storage.create_volume(size=1)
    sim.advance(0)
    server = "0b1c8a7e-0000-4000-8000-000000000002"
    h = {"X-Auth-Token": conn.auth_token, "OpenStack-API-Version": "volume 3.71"}
    base = f"{sim.sites['east']}/volume/v3/{conn.current_project_id}/attachments"
    r = httpx.post(
        base, headers=h, json={"attachment": {"volume_uuid": vol.id, "instance_uuid": server}}
    )
    assert r.status_code == 200
    att = r.json()["attachment"]
    assert att["status"] == "reserved"
    assert conn.block_storage.get_volume(vol.id).status == "reserved"
    r = httpx.put(
        f"{base}/{att['id']}", headers=h, json={"attachment": {"connector": {"host": "h1"}}}
    )
    assert r.json()["attachment"]["connection_info"]["driver_volume_type"] == "liferaft_sim"
    assert (
        httpx.post(f"{base}/{att['id']}/action", headers=h, json={"os-complete": None}).status_code
        == 204
    )
    sim.advance(0)
    assert conn.block_storage.get_volume(vol.id).status == "in-use"
    assert httpx.delete(f"{base}/{att['id']}", headers=h).status_code == 200
    sim.advance(0)
    assert conn.block_storage.get_volume(vol.id).status == "available"
    # Below 3.27 the attachments API does not exist.
    r = httpx.get(base, headers={**h, "OpenStack-API-Version": "volume 3.26"})
    assert r.status_code == 404


def test_extend_update_reset_status_and_types(sim: SimProcess) -> None:
    conn = sim.connect("east")
    vol = conn.block_storage.create_volume(size=1, name="x")
    sim.advance(0)
    conn.block_storage.extend_volume(vol.id, 3)
    assert conn.block_storage.get_volume(vol.id).size == 3
    conn.block_storage.update_volume(vol.id, name="renamed")
    assert conn.block_storage.get_volume(vol.id).name == "renamed"
    conn.block_storage.reset_volume_status(
        vol.id, status="error", attach_status=None, migration_status=None
    )
    assert conn.block_storage.get_volume(vol.id).status == "error"
    names = [t.name for t in conn.block_storage.types()]
    assert "__DEFAULT__" in names
    conn.block_storage.delete_volume(vol.id)
    sim.advance(0)
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.block_storage.get_volume(vol.id)


@pytest.mark.parametrize(
    "method, path, body, status, key",
    [
        ("GET", "/volumes/00000000-0000-0000-0000-000000000000", None, 404, "itemNotFound"),
        ("POST", "/volumes", b"{not json", 400, "badRequest"),
        ("POST", "/volumes", b'{"volume": {"size": "big"}}', 400, "badRequest"),
        ("POST", "/volumes", b'{"volume": {"size": 0}}', 400, "badRequest"),
        (
            "POST",
            "/volumes",
            b'{"volume": {"size": 1, "volume_type": "gold"}}',
            404,
            "itemNotFound",
        ),
        ("POST", "/volumes", b'{"nothing": {}}', 400, "badRequest"),
        ("GET", "/volumes/detail?marker=nope", None, 400, "badRequest"),
        ("GET", "/volumes/detail?limit=x", None, 400, "badRequest"),
    ],
)
def test_errors_have_cinder_bodies(
    sim: SimProcess, method: str, path: str, body: bytes | None, status: int, key: str
) -> None:
    conn = sim.connect("east")
    r = httpx.request(
        method,
        f"{sim.sites['east']}/volume/v3{path}",
        headers={"X-Auth-Token": conn.auth_token},
        content=body,
    )
    assert r.status_code == status
    assert r.json()[key]["code"] == status


def test_unsupported_microversion_is_406(sim: SimProcess) -> None:
    conn = sim.connect("east")
    r = httpx.get(
        f"{sim.sites['east']}/volume/v3/volumes",
        headers={"X-Auth-Token": conn.auth_token, "OpenStack-API-Version": "volume 3.99"},
    )
    assert r.status_code == 406


def test_groups_and_group_snapshots(sim: SimProcess) -> None:
    conn = sim.connect("east")
    h = {"X-Auth-Token": conn.auth_token, "OpenStack-API-Version": "volume 3.71"}
    base = f"{sim.sites['east']}/volume/v3"
    gt = httpx.get(f"{base}/group_types/default", headers=h).json()["group_type"]
    r = httpx.post(
        f"{base}/groups",
        headers=h,
        json={"group": {"name": "g", "group_type": gt["id"], "volume_types": ["__DEFAULT__"]}},
    )
    assert r.status_code == 202
    gid = r.json()["group"]["id"]
    vols = [conn.block_storage.create_volume(size=1).id for _ in range(2)]
    sim.advance(0)
    for i, vid in enumerate(vols):
        sim.http.put(f"/control/volumes/east/{vid}/blocks/0", content=f"g{i}-t1".encode())
    r = httpx.put(
        f"{base}/groups/{gid}", headers=h, json={"group": {"add_volumes": ",".join(vols)}}
    )
    assert r.status_code == 202
    grp = httpx.get(f"{base}/groups/{gid}?list_volume=True", headers=h).json()["group"]
    assert sorted(grp["volumes"]) == sorted(vols)
    r = httpx.post(f"{base}/group_snapshots", headers=h, json={"group_snapshot": {"group_id": gid}})
    assert r.status_code == 202
    gsid = r.json()["group_snapshot"]["id"]
    for vid in vols:  # writes after the group snapshot are not in it
        sim.http.put(f"/control/volumes/east/{vid}/blocks/0", content=b"later")
    sim.advance(0)
    assert (
        httpx.get(f"{base}/group_snapshots/{gsid}", headers=h).json()["group_snapshot"]["status"]
        == "available"
    )
    snaps = httpx.get(f"{base}/snapshots/detail?group_snapshot_id={gsid}", headers=h).json()[
        "snapshots"
    ]
    assert len(snaps) == 2
    for snap in snaps:
        clone = conn.block_storage.create_volume(snapshot_id=snap["id"])
        sim.advance(0)
        data = sim.http.get(f"/control/volumes/east/{clone.id}/blocks/0").content.rstrip(b"\0")
        assert data == f"g{vols.index(snap['volume_id'])}-t1".encode()
    # A member snapshot goes only with its group snapshot; a group with volumes needs delete-volumes.
    r = httpx.delete(f"{base}/snapshots/{snaps[0]['id']}", headers=h)
    assert r.status_code == 400
    r = httpx.post(
        f"{base}/groups/{gid}/action", headers=h, json={"delete": {"delete-volumes": False}}
    )
    assert r.status_code == 400
    assert httpx.delete(f"{base}/group_snapshots/{gsid}", headers=h).status_code == 202


def test_manage_existing_backend_volume(sim: SimProcess) -> None:
    conn = sim.connect("east")
    h = {"X-Auth-Token": conn.auth_token, "OpenStack-API-Version": "volume 3.8"}
    base = f"{sim.sites['east']}/volume/v3"
    r = httpx.post(
        f"{base}/manageable_volumes",
        headers=h,
        json={"volume": {"host": "east-volume@lvm#lvm", "ref": {"source-name": "missing"}}},
    )
    assert r.status_code == 400
    assert httpx.get(f"{base}/manageable_volumes", headers=h).json() == {"manageable-volumes": []}


def test_limits_and_quotas(sim: SimProcess) -> None:
    conn = sim.connect("east")
    conn.block_storage.create_volume(size=2)
    h = {"X-Auth-Token": conn.auth_token}
    base = f"{sim.sites['east']}/volume/v3"
    absolute = httpx.get(f"{base}/limits", headers=h).json()["limits"]["absolute"]
    assert absolute["totalVolumesUsed"] == 1 and absolute["totalGigabytesUsed"] == 2
    qs = httpx.get(f"{base}/os-quota-sets/{conn.current_project_id}?usage=True", headers=h).json()
    assert qs["quota_set"]["volumes"]["in_use"] == 1
