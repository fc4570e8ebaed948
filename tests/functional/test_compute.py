"""The simulated Compute v2.1 API, through openstacksdk, the openstack CLI and raw HTTP."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import openstack
import pytest

from tests.support.sim import SimProcess

#: A fixed image id, so tests can boot before looking anything up.
CIRROS = "6b6f2d1e-8d7e-4f0a-9a51-7c8e2e3b9a11"
IMAGES = [{"name": "cirros", "id": CIRROS}]


def topology(**extra: Any) -> dict[str, Any]:
    return {"images": IMAGES, **extra}


@pytest.fixture
def cloud(sim_factory: Callable[..., SimProcess]) -> SimProcess:
    """A stepped simulator (east/west, three hosts each) whose cirros image has a known id."""
    return sim_factory(topology=topology())


class Nova:
    """Raw HTTP to one site's compute API with an admin (or demo) token."""

    def __init__(self, sim: SimProcess, cloud: str = "east") -> None:
        conn = sim.connect(cloud)
        self.token = conn.auth_token
        self.project_id = conn.current_project_id
        site = cloud.removesuffix("-demo")
        self.base = sim.sites[site] + "/compute/v2.1"
        self.http = httpx.Client(timeout=30)

    def __call__(
        self, method: str, path: str, body: Any = None, *, version: str | None = None, **kw: Any
    ) -> httpx.Response:
        headers = {"X-Auth-Token": self.token, **kw.pop("headers", {})}
        if version is not None:
            headers["OpenStack-API-Version"] = f"compute {version}"
        return self.http.request(method, self.base + path, json=body, headers=headers, **kw)

    def boot(self, name: str = "vm", version: str = "2.96", **server: Any) -> str:
        body = {"name": name, "imageRef": CIRROS, "flavorRef": "1", "networks": "none", **server}
        r = self("POST", "/servers", {"server": body}, version=version)
        assert r.status_code == 202, r.text
        return str(r.json()["server"]["id"])

    def server(self, sid: str, version: str = "2.96") -> dict[str, Any]:
        r = self("GET", f"/servers/{sid}", version=version)
        assert r.status_code == 200, r.text
        doc: dict[str, Any] = r.json()["server"]
        return doc

    def action(self, sid: str, body: Any, version: str = "2.96") -> httpx.Response:
        return self("POST", f"/servers/{sid}/action", body, version=version)


# -- discovery ------------------------------------------------------------------------
def test_version_discovery_both_slash_forms(cloud: SimProcess) -> None:
    base = cloud.sites["east"]
    root = httpx.get(base + "/compute")
    assert root.status_code == 200
    assert root.json()["versions"][0]["id"] == "v2.1"
    for path in ("/compute/v2.1", "/compute/v2.1/"):
        r = httpx.get(base + path)
        assert r.status_code == 200
        v = r.json()["version"]
        assert (v["id"], v["status"], v["version"], v["min_version"]) == (
            "v2.1",
            "CURRENT",
            "2.96",
            "2.1",
        )


def test_microversion_is_echoed_and_capped(cloud: SimProcess) -> None:
    nova = Nova(cloud)
    r = nova("GET", "/flavors", version="2.53")
    assert r.headers["OpenStack-API-Version"] == "compute 2.53"
    assert r.headers["X-OpenStack-Nova-API-Version"] == "2.53"
    r = nova("GET", "/flavors", headers={"X-OpenStack-Nova-API-Version": "2.40"})
    assert r.headers["X-OpenStack-Nova-API-Version"] == "2.40"
    r = nova("GET", "/flavors", version="2.97")
    assert r.status_code == 406
    assert "maximum is 2.96" in r.json()["notAcceptable"]["message"]


def test_quiesce_extension_is_advertised(cloud: SimProcess) -> None:
    nova = Nova(cloud)
    aliases = {e["alias"]: e for e in nova("GET", "/extensions").json()["extensions"]}
    assert "quiesce" in aliases["os-server-quiesce"]["description"]
    assert nova("GET", "/extensions/os-server-quiesce").json()["extension"]["name"]


# -- servers through the SDK -------------------------------------------------------------
def test_sdk_boots_lists_and_shows_a_server(cloud: SimProcess) -> None:
    conn = cloud.connect("east")
    created = conn.compute.create_server(
        name="web", image_id=CIRROS, flavor_id="1", networks="auto", metadata={"tier": "web"}
    )
    server = conn.compute.wait_for_server(created, status="ACTIVE", wait=30, interval=0.1)
    assert server.name == "web"
    assert server.flavor.original_name == "m1.tiny"  # the 2.47+ shape
    assert server.image.id == CIRROS
    assert server.compute_host in {"east-compute-1", "east-compute-2", "east-compute-3"}
    assert server.hypervisor_hostname == server.compute_host
    assert server.vm_state == "active" and server.power_state == 1
    assert server.metadata == {"tier": "web"}
    (addr,) = server.addresses["private"]
    assert addr["version"] == 4 and addr["addr"].startswith("10.0.0.")
    assert [s.id for s in conn.compute.servers()] == [server.id]
    # The demo project sees nothing of the admin project's servers.
    assert list(cloud.connect("east-demo").compute.servers()) == []
    assert [s.id for s in conn.compute.servers(all_projects=True)] == [server.id]


def test_sdk_paginates_with_limit_and_marker(cloud: SimProcess) -> None:
    nova = Nova(cloud)
    r = nova(
        "POST",
        "/servers",
        {
            "server": {
                "name": "batch",
                "imageRef": CIRROS,
                "flavorRef": "1",
                "networks": "none",
                "min_count": 7,
                "max_count": 7,
            }
        },
        version="2.96",
    )
    assert r.status_code == 202, r.text
    conn = cloud.connect("east")
    names = [s.name for s in conn.compute.servers(limit=2)]
    assert sorted(names) == [f"batch-{i}" for i in range(1, 8)]
    page = nova("GET", "/servers?limit=2").json()
    assert len(page["servers"]) == 2
    (nxt,) = page["servers_links"]
    assert nxt["rel"] == "next" and f"marker={page['servers'][1]['id']}" in nxt["href"]
    last = nova("GET", f"/servers?limit=10&marker={page['servers'][1]['id']}").json()
    assert len(last["servers"]) == 5 and "servers_links" not in last
    assert nova("GET", "/servers?marker=nope").status_code == 400
    # Filters: name is a regular expression, status maps to vm_state.
    assert len(nova("GET", "/servers/detail?name=^batch-[12]$").json()["servers"]) == 2
    assert nova("GET", "/servers?status=SHUTOFF").json()["servers"] == []


def test_boot_stays_in_build_until_the_boot_latency_passes(
    sim_factory: Callable[..., SimProcess],
) -> None:
    sim = sim_factory(topology=topology(latency={"boot": 30}))
    nova = Nova(sim)
    sid = nova.boot()
    doc = nova.server(sid)
    assert (doc["status"], doc["OS-EXT-STS:task_state"]) == ("BUILD", "spawning")
    sim.advance(29)
    assert nova.server(sid)["status"] == "BUILD"
    sim.advance(1)
    doc = nova.server(sid)
    assert doc["status"] == "ACTIVE"
    assert doc["OS-SRV-USG:launched_at"].startswith("2026-01-01T00:00:30")


def test_max_builds_queues_extra_builds(sim_factory: Callable[..., SimProcess]) -> None:
    hosts = [{"name": "solo", "max_builds": 2}]
    sim = sim_factory(topology=topology(latency={"boot": 10}, sites={"east": {"hosts": hosts}}))
    nova = Nova(sim)
    ids = [nova.boot(f"vm{i}") for i in range(3)]
    sim.advance(10)
    statuses = [nova.server(i)["status"] for i in ids]
    assert statuses == ["ACTIVE", "ACTIVE", "BUILD"]
    sim.advance(10)
    assert nova.server(ids[2])["status"] == "ACTIVE"


def test_no_valid_host_puts_the_server_in_error(cloud: SimProcess) -> None:
    nova = Nova(cloud)
    r = nova(
        "POST",
        "/flavors",
        {"flavor": {"name": "huge", "ram": 10_000_000, "vcpus": 1, "disk": 1, "id": "huge"}},
    )
    assert r.status_code == 200, r.text
    sid = nova.boot(flavorRef="huge")
    doc = nova.server(sid)
    assert doc["status"] == "ERROR"
    assert doc["fault"]["code"] == 500
    assert doc["fault"]["message"].startswith("No valid host was found.")


def test_stop_and_start_with_latencies(sim_factory: Callable[..., SimProcess]) -> None:
    sim = sim_factory(topology=topology(latency={"stop": 5, "start": 10}))
    conn = sim.connect("east")
    server = conn.compute.create_server(name="svc", image_id=CIRROS, flavor_id="1", networks="none")
    conn.compute.wait_for_server(server, status="ACTIVE", wait=30, interval=0.1)
    conn.compute.stop_server(server)
    doc = conn.compute.get_server(server.id)
    assert (doc.status, doc.task_state) == ("ACTIVE", "powering-off")
    sim.advance(5)
    doc = conn.compute.get_server(server.id)
    assert (doc.status, doc.power_state, doc.task_state) == ("SHUTOFF", 4, None)
    with pytest.raises(openstack.exceptions.ConflictException, match="vm_state stopped"):
        conn.compute.stop_server(server)
    conn.compute.start_server(server)
    assert conn.compute.get_server(server.id).task_state == "powering-on"
    sim.advance(10)
    assert conn.compute.get_server(server.id).status == "ACTIVE"
    actions = [a.action for a in conn.compute.server_actions(server)]
    assert actions == ["start", "stop", "create"]


# -- evacuation ---------------------------------------------------------------------------
def _host_of(nova: Nova, sid: str) -> str:
    return str(nova.server(sid)["OS-EXT-SRV-ATTR:host"])


def test_evacuate_is_refused_while_the_source_service_is_up(cloud: SimProcess) -> None:
    nova = Nova(cloud)
    sid = nova.boot()
    r = nova.action(sid, {"evacuate": {}})
    assert r.status_code == 400  # Nova's ComputeServiceInUse is a bad request
    assert r.json()["badRequest"]["message"] == (
        f"Compute service of {_host_of(nova, sid)} is still in use."
    )
    demo = Nova(cloud, "east-demo")
    assert demo.action(sid, {"evacuate": {}}).status_code == 404  # not its server


def test_evacuate_after_force_down_253_form_ends_shutoff_at_295(cloud: SimProcess) -> None:
    nova = Nova(cloud)
    sid = nova.boot()
    source = _host_of(nova, sid)
    conn = cloud.connect("east")
    (svc,) = conn.compute.services(host=source, binary="nova-compute")
    updated = conn.compute.update_service_forced_down(svc, forced=True)
    assert updated is not None and updated.is_forced_down is True
    r = nova.action(sid, {"evacuate": {}}, version="2.95")
    assert r.status_code == 200 and r.content == b""
    doc = nova.server(sid)
    assert doc["status"] == "SHUTOFF"
    assert doc["OS-EXT-SRV-ATTR:host"] not in (None, source)
    events = cloud.control("GET", "/control/writelog?kind=evacuate")["entries"]
    assert [(e["instance"], e["data"]["source"]) for e in events] == [(sid, source)]
    assert events[0]["data"]["target"] == doc["OS-EXT-SRV-ATTR:host"]
    forced = cloud.control("GET", "/control/writelog?kind=force_down")["entries"]
    assert forced[0]["host"] == source
    # Nova refuses to lift force-down while the `done` evacuation record
    # remains, i.e. until the source's compute service has restarted.
    r = nova("PUT", f"/os-services/{svc.id}", {"forced_down": False}, version="2.53")
    assert r.status_code == 400
    assert "`done` evacuation migration records remain" in r.json()["badRequest"]["message"]
    cloud.control("POST", "/control/faults", {"kind": "site-down", "target": "east"})
    cloud.control("POST", "/control/heal", {"kind": "site-down", "target": "east"})
    r = nova("PUT", f"/os-services/{svc.id}", {"forced_down": False}, version="2.53")
    assert r.status_code == 200 and r.json()["service"]["forced_down"] is False


def test_evacuated_server_is_active_while_powering_off_and_delete_is_async(
    sim_factory: Callable[..., SimProcess],
) -> None:
    sim = sim_factory(topology=topology(latency={"evacuate": 5, "boot": 10, "stop": 5}))
    nova = Nova(sim)
    sid = nova.boot()
    sim.advance(10)
    source = _host_of(nova, sid)
    svc = next(
        s
        for s in nova("GET", "/os-services", version="2.53").json()["services"]
        if s["host"] == source
    )
    nova("PUT", f"/os-services/{svc['id']}", {"forced_down": True}, version="2.53")
    assert nova.action(sid, {"evacuate": {}}, version="2.95").status_code == 200
    seen = []
    for _ in range(25):
        doc = nova.server(sid)
        seen.append((doc["status"], doc["OS-EXT-STS:task_state"]))
        sim.advance(1)
    # Nova spawns the guest, then stops it: ACTIVE (powering-off) before SHUTOFF.
    assert [k for i, k in enumerate(seen) if i == 0 or seen[i - 1] != k] == [
        ("REBUILD", "rebuilding"),
        ("ACTIVE", "powering-off"),
        ("SHUTOFF", None),
    ]
    assert nova("DELETE", f"/servers/{sid}").status_code == 204
    # The host shuts the guest down first (status unchanged, task deleting);
    # DELETED lasts one Placement call (api_call, 0 here), then 404.
    assert nova.server(sid)["OS-EXT-STS:task_state"] == "deleting"
    sim.advance(5)
    assert nova("GET", f"/servers/{sid}").status_code == 404


def test_evacuate_after_legacy_force_down_to_a_named_host(cloud: SimProcess) -> None:
    nova = Nova(cloud)
    sid = nova.boot(availability_zone="nova:east-compute-1")
    assert _host_of(nova, sid) == "east-compute-1"
    r = nova(
        "PUT",
        "/os-services/force-down",
        {"host": "east-compute-1", "binary": "nova-compute", "forced_down": True},
        version="2.11",
    )
    assert r.status_code == 200, r.text
    assert r.json()["service"]["forced_down"] is True
    services = nova("GET", "/os-services", version="2.11").json()["services"]
    down = next(s for s in services if s["host"] == "east-compute-1")
    assert (down["state"], down["id"]) == ("down", 1)  # integer ids below 2.53
    r = nova.action(sid, {"evacuate": {"host": "east-compute-1"}}, version="2.29")
    assert r.status_code == 400  # not onto the failed host itself
    r = nova.action(sid, {"evacuate": {"host": "east-compute-3"}}, version="2.13")
    assert r.status_code == 200 and "adminPass" in r.json()
    doc = nova.server(sid)
    assert (doc["status"], doc["OS-EXT-SRV-ATTR:host"]) == ("ACTIVE", "east-compute-3")


def test_evacuation_rebuilds_after_its_latency_and_moves_ports(
    sim_factory: Callable[..., SimProcess],
) -> None:
    sim = sim_factory(topology=topology(latency={"evacuate": 5, "boot": 10}))
    nova = Nova(sim)
    sid = nova.boot(networks="auto")
    sim.advance(10)
    before = nova.server(sid)
    source = before["OS-EXT-SRV-ATTR:host"]
    sim.control("POST", "/control/faults", {"kind": "site-down", "target": "east"})
    sim.control("POST", "/control/heal", {"kind": "site-down", "target": "east"})
    # After the site comes back the guests are found powered off, as Nova's power sync leaves them.
    assert nova.server(sid)["status"] == "SHUTOFF"
    power = sim.control("GET", "/control/writelog?kind=power&site=east")["entries"]
    assert {(e["host"], e["data"]["on"]) for e in power} >= {(source, False), (source, True)}
    svc = next(
        s
        for s in nova("GET", "/os-services", version="2.53").json()["services"]
        if s["host"] == source
    )
    r = nova("PUT", f"/os-services/{svc['id']}", {"forced_down": True}, version="2.53")
    assert r.json()["service"]["forced_down"] is True
    assert nova.action(sid, {"evacuate": {}}, version="2.94").status_code == 200
    doc = nova.server(sid)
    assert (doc["status"], doc["OS-EXT-STS:task_state"]) == ("REBUILD", "rebuilding")
    sim.advance(15)
    doc = nova.server(sid)
    # Below 2.95 an evacuated server keeps its prior state (here stopped).
    assert doc["status"] == "SHUTOFF"
    assert doc["OS-EXT-SRV-ATTR:host"] != source
    assert doc["addresses"] == before["addresses"]


# -- quiesce (the simulator's extension) -------------------------------------------------------
def test_quiesce_and_unquiesce(sim_factory: Callable[..., SimProcess]) -> None:
    sim = sim_factory(topology=topology(latency={"quiesce": 1}))
    nova = Nova(sim)
    sid = nova.boot()
    assert nova.action(sid, {"unquiesce": None}).status_code == 409
    assert nova.action(sid, {"quiesce": None}).status_code == 202
    assert nova.server(sid)["OS-EXT-STS:task_state"] == "quiescing"
    r = nova.action(sid, {"quiesce": None})
    assert r.status_code == 409
    assert "task_state quiescing" in r.json()["conflictingRequest"]["message"]
    sim.advance(1)
    assert nova.action(sid, {"quiesce": None}).status_code == 409  # already quiesced
    assert nova.action(sid, {"unquiesce": None}).status_code == 202
    sim.advance(1)
    log = sim.control("GET", f"/control/writelog?instance={sid}")["entries"]
    assert [e["kind"] for e in log] == ["quiesce", "unquiesce"]
    assert log[1]["time"] - log[0]["time"] == 1
    nova.action(sid, {"os-stop": None})
    r = nova.action(sid, {"quiesce": None})
    assert r.json()["conflictingRequest"]["message"] == (
        f"Cannot 'quiesce' instance {sid} while it is in vm_state stopped"
    )


# -- errors -------------------------------------------------------------------------------------
def test_unknown_flavor_is_a_400_with_novas_message(cloud: SimProcess) -> None:
    nova = Nova(cloud)
    r = nova(
        "POST",
        "/servers",
        {"server": {"name": "x", "imageRef": CIRROS, "flavorRef": "nope", "networks": "none"}},
        version="2.96",
    )
    assert r.status_code == 400
    assert r.json() == {"badRequest": {"code": 400, "message": "Flavor nope could not be found."}}


def test_unknown_server_is_item_not_found(cloud: SimProcess) -> None:
    conn = cloud.connect("east")
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.compute.get_server("0b9b9a49-0000-4000-8000-000000000000")
    r = Nova(cloud)("GET", "/servers/0b9b9a49-0000-4000-8000-000000000000")
    assert r.status_code == 404
    assert r.json()["itemNotFound"]["message"] == (
        "Instance 0b9b9a49-0000-4000-8000-000000000000 could not be found."
    )


def test_bad_requests(cloud: SimProcess) -> None:
    nova = Nova(cloud)
    r = nova("POST", "/servers", content=b"{not json")
    assert r.status_code == 400 and "badRequest" in r.json()
    server = {"name": "x", "imageRef": CIRROS, "flavorRef": "1"}
    r = nova("POST", "/servers", {"server": server}, version="2.37")
    assert r.status_code == 400  # networks are required from 2.37
    assert "'networks' is a required property" in r.json()["badRequest"]["message"]
    r = nova("GET", "/servers", headers={"X-Auth-Token": "garbage"})
    assert r.status_code == 401 and r.json()["unauthorized"]["code"] == 401
    r = nova("DELETE", "/flavors")
    assert r.status_code == 405 and "badMethod" in r.json()
    r = nova("GET", "/no-such-thing")
    assert r.status_code == 404 and "itemNotFound" in r.json()
    r = nova.action(nova.boot(), {"frobnicate": {}})
    assert r.status_code == 400
    demo = Nova(cloud, "east-demo")
    assert demo("GET", "/os-services").status_code == 403


# -- the openstack CLI -------------------------------------------------------------------------------
def test_cli_services_hypervisors_flavors(cloud: SimProcess) -> None:
    services = cloud.openstack("east", "compute", "service", "list", "-f", "json")
    assert {s["Host"] for s in services} == {f"east-compute-{i}" for i in (1, 2, 3)}
    assert {s["State"] for s in services} == {"up"}
    cloud.openstack(
        "east",
        "--os-compute-api-version",
        "2.53",
        "compute",
        "service",
        "set",
        "--down",
        "east-compute-2",
        "nova-compute",
    )
    services = cloud.openstack("east", "compute", "service", "list", "-f", "json")
    state = {s["Host"]: s["State"] for s in services}
    assert state["east-compute-2"] == "down" and state["east-compute-1"] == "up"
    hyps = cloud.openstack("east", "hypervisor", "list", "-f", "json")
    assert {h["Hypervisor Hostname"] for h in hyps} == {f"east-compute-{i}" for i in (1, 2, 3)}
    flavors = cloud.openstack("east", "flavor", "list", "-f", "json")
    assert {f["Name"] for f in flavors} >= {"m1.tiny", "m1.small", "m1.medium", "m1.large"}


def test_cli_keypair_and_server_group(cloud: SimProcess) -> None:
    kp = cloud.openstack(
        "east", "keypair", "create", "mykey", "-f", "json", "--private-key", "/dev/null"
    )
    assert kp["name"] == "mykey" and ":" in kp["fingerprint"]
    listed = cloud.openstack("east", "keypair", "list", "-f", "json")
    assert [k["Name"] for k in listed] == ["mykey"]
    grp = cloud.openstack(
        "east", "server", "group", "create", "--policy", "anti-affinity", "spread", "-f", "json"
    )
    assert grp["name"] == "spread" and grp["policy"] == "anti-affinity"
    nova = Nova(cloud)
    hints = {"group": grp["id"]}
    hosts = set()
    for i in range(3):
        body = {
            "server": {
                "name": f"g{i}",
                "imageRef": CIRROS,
                "flavorRef": "1",
                "networks": "none",
                "key_name": "mykey",
            },
            "OS-SCH-HNT:scheduler_hints": hints,
        }
        r = nova("POST", "/servers", body, version="2.96")
        hosts.add(_host_of(nova, r.json()["server"]["id"]))
    assert len(hosts) == 3  # one per host
    r = nova(
        "POST",
        "/servers",
        {
            "server": {"name": "g4", "imageRef": CIRROS, "flavorRef": "1", "networks": "none"},
            "OS-SCH-HNT:scheduler_hints": hints,
        },
        version="2.96",
    )
    assert nova.server(r.json()["server"]["id"])["status"] == "ERROR"  # no fourth host
    group = nova("GET", f"/os-server-groups/{grp['id']}", version="2.64").json()["server_group"]
    assert len(group["members"]) == 4 and group["rules"] == {}


# -- volumes -------------------------------------------------------------------------------------
def test_boot_from_volume_and_delete_on_termination(cloud: SimProcess) -> None:
    nova = Nova(cloud)
    bdm = {
        "source_type": "image",
        "destination_type": "volume",
        "uuid": CIRROS,
        "boot_index": 0,
        "volume_size": 1,
        "delete_on_termination": True,
    }
    r = nova(
        "POST",
        "/servers",
        {
            "server": {
                "name": "bfv",
                "flavorRef": "1",
                "networks": "none",
                "block_device_mapping_v2": [bdm],
            }
        },
        version="2.96",
    )
    assert r.status_code == 202, r.text
    sid = r.json()["server"]["id"]
    doc = nova.server(sid)
    assert doc["status"] == "ACTIVE", doc.get("fault")
    assert doc["image"] == ""
    (vol,) = doc["os-extended-volumes:volumes_attached"]
    assert vol["delete_on_termination"] is True
    conn = cloud.connect("east")
    volume = conn.block_storage.get_volume(vol["id"])
    assert volume.status == "in-use"
    assert volume.attachments[0]["server_id"] == sid
    assert nova("DELETE", f"/servers/{sid}").status_code == 204
    cloud.advance(5)
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.block_storage.get_volume(vol["id"])


def test_volume_attachments(cloud: SimProcess) -> None:
    nova = Nova(cloud)
    sid = nova.boot()
    conn = cloud.connect("east")
    volume = conn.block_storage.create_volume(size=1, name="data")
    conn.block_storage.wait_for_status(volume, "available", wait=30, interval=0.1)
    r = nova(
        "POST",
        f"/servers/{sid}/os-volume_attachments",
        {"volumeAttachment": {"volumeId": volume.id}},
        version="2.79",
    )
    assert r.status_code == 200, r.text
    att = r.json()["volumeAttachment"]
    assert (att["volumeId"], att["serverId"], att["device"]) == (volume.id, sid, "/dev/vdb")
    assert conn.block_storage.get_volume(volume.id).status == "in-use"
    listed = nova("GET", f"/servers/{sid}/os-volume_attachments").json()["volumeAttachments"]
    assert [a["volumeId"] for a in listed] == [volume.id]
    r = nova(
        "POST",
        f"/servers/{sid}/os-volume_attachments",
        {"volumeAttachment": {"volumeId": volume.id}},
    )
    assert r.status_code == 400  # already attached
    r = nova("DELETE", f"/servers/{sid}/os-volume_attachments/{volume.id}")
    assert r.status_code == 202
    cloud.advance(1)
    assert conn.block_storage.get_volume(volume.id).status == "available"
    assert nova("GET", f"/servers/{sid}/os-volume_attachments").json()["volumeAttachments"] == []


def test_create_image_answer_by_microversion(cloud: SimProcess) -> None:
    nova = Nova(cloud)
    sid = nova.boot()
    r = nova.action(sid, {"createImage": {"name": "snap", "metadata": {"k": "v"}}}, version="2.45")
    assert r.status_code == 202
    image_id = r.json()["image_id"]
    r = nova.action(sid, {"createImage": {"name": "snap2"}}, version="2.44")
    assert r.status_code == 202
    assert r.headers["Location"].endswith("/images/" + r.headers["Location"].rsplit("/", 1)[-1])
    assert r.headers["Location"].rsplit("/", 1)[-1] != image_id
    assert nova.action(sid, {"createImage": {}}).status_code == 400
    actions = nova("GET", f"/servers/{sid}/os-instance-actions").json()["instanceActions"]
    assert [a["action"] for a in actions] == ["createImage", "createImage", "create"]


# -- networks -----------------------------------------------------------------------------------
def test_networks_by_uuid_fixed_ip_and_port_are_cleaned_up_on_delete(cloud: SimProcess) -> None:
    conn = cloud.connect("east")
    net = conn.network.find_network("private")
    assert net is not None
    mine = conn.network.create_port(network_id=net.id, name="mine")
    server = conn.compute.create_server(
        name="nics",
        image_id=CIRROS,
        flavor_id="1",
        networks=[{"uuid": net.id, "fixed_ip": "10.0.0.42"}, {"port": mine.id}],
    )
    server = conn.compute.get_server(server.id)
    addrs = sorted(a["addr"] for a in server.addresses["private"])
    assert "10.0.0.42" in addrs and len(addrs) == 2
    ports = {p.id: p for p in conn.network.ports(device_id=server.id)}
    assert mine.id in ports and len(ports) == 2
    assert {p.binding_host_id for p in ports.values()} == {server.compute_host}
    nova = Nova(cloud)
    body = {
        "server": {
            "name": "thief",
            "imageRef": CIRROS,
            "flavorRef": "1",
            "networks": [{"port": mine.id}],
        }
    }
    r = nova("POST", "/servers", body, version="2.96")
    assert r.status_code == 409 and "in use" in r.json()["conflictingRequest"]["message"]
    body["server"]["networks"] = [{"uuid": "0b9b9a49-0000-4000-8000-000000000000"}]
    r = nova("POST", "/servers", body, version="2.96")
    assert r.status_code == 400
    conn.compute.delete_server(server)
    left = list(conn.network.ports(device_id=server.id))
    assert left == []
    kept = conn.network.get_port(mine.id)
    assert kept.device_id == ""  # the user's port survives, detached


def test_cli_server_create_wait_show_list_delete(cloud: SimProcess) -> None:
    if httpx.get(cloud.sites["east"] + "/image").status_code == 404:
        pytest.skip("the image API is not served yet; the CLI resolves --image through it")
    server = cloud.openstack(
        "east",
        "server",
        "create",
        "--image",
        "cirros",
        "--flavor",
        "m1.tiny",
        "--network",
        "private",
        "--wait",
        "-f",
        "json",
        "web1",
    )
    assert server["status"] == "ACTIVE"
    shown = cloud.openstack("east", "server", "show", "web1", "-f", "json")
    assert shown["id"] == server["id"] and "private" in str(shown["addresses"])
    listed = cloud.openstack("east", "server", "list", "-f", "json")
    assert [s["Name"] for s in listed] == ["web1"]
    cloud.openstack("east", "server", "delete", "--wait", "web1")
    assert cloud.openstack("east", "server", "list", "-f", "json") == []


def test_members_see_no_admin_fields_and_can_reboot_and_lock(cloud: SimProcess) -> None:
    demo = Nova(cloud, "east-demo")
    sid = demo.boot()
    doc = demo.server(sid)
    assert "OS-EXT-SRV-ATTR:host" not in doc and "host_status" not in doc
    assert doc["tenant_id"] == demo.project_id
    assert demo.action(sid, {"reboot": {"type": "SOFT"}}).status_code == 202
    assert demo.server(sid)["status"] == "ACTIVE"
    assert demo.action(sid, {"reboot": {"type": "GENTLY"}}).status_code == 400
    assert demo.action(sid, {"lock": None}).status_code == 202
    r = demo("DELETE", f"/servers/{sid}")
    assert r.status_code == 409 and "locked" in r.json()["conflictingRequest"]["message"]
    assert Nova(cloud)("DELETE", f"/servers/{sid}").status_code == 204  # admins may
    limits = demo("GET", "/limits").json()["limits"]["absolute"]
    assert limits["totalInstancesUsed"] == 0


# Many `openstack` CLI processes (~35 s of CPU): 120 s is not enough with -n 2 on 2 loaded cores.
@pytest.mark.timeout(360)
def test_cli_stop_start_force_down_and_evacuate(cloud: SimProcess) -> None:
    """The unmodified CLI end to end: stop/start, force a compute service down, evacuate."""
    server = cloud.openstack(
        "east",
        "server",
        "create",
        "--image",
        "cirros",
        "--flavor",
        "m1.tiny",
        "--network",
        "private",
        "--wait",
        "-f",
        "json",
        "vm1",
    )
    ip_before = cloud.openstack("east", "server", "show", "vm1", "-f", "json")["addresses"]
    cloud.openstack("east", "server", "stop", "vm1")
    cloud.advance(0)
    assert cloud.openstack("east", "server", "show", "vm1", "-f", "json")["status"] == "SHUTOFF"
    cloud.openstack("east", "server", "start", "vm1")
    cloud.advance(0)
    shown = cloud.openstack("east", "server", "show", "vm1", "-f", "json")
    assert shown["status"] == "ACTIVE"
    host = shown["OS-EXT-SRV-ATTR:host"]
    # Evacuation is refused while the host's compute service is up.
    refused = cloud.openstack("east", "server", "evacuate", "vm1", check=False)
    assert refused.returncode != 0 and "400" in refused.stderr and "still in use" in refused.stderr
    cloud.openstack(
        "east", "--os-compute-api-version", "2.53", "compute", "service", "set", "--down",
        host, "nova-compute",
    )  # fmt: skip
    services = cloud.openstack("east", "compute", "service", "list", "-f", "json")
    assert [s["State"] for s in services if s["Host"] == host] == ["down"]
    cloud.openstack("east", "--os-compute-api-version", "2.29", "server", "evacuate", "vm1")
    cloud.advance(0)
    moved = cloud.openstack("east", "server", "show", "vm1", "-f", "json")
    assert moved["id"] == server["id"]
    assert moved["OS-EXT-SRV-ATTR:host"] != host
    assert moved["status"] == "ACTIVE"  # below 2.95 an evacuated server keeps its state
    assert moved["addresses"] == ip_before  # its port moved with it
