"""Networking v2.0 of the simulator, through openstacksdk and the openstack CLI."""

from __future__ import annotations

from typing import Any

import httpx
import openstack.exceptions
import pytest

from tests.support.sim import SimProcess


def _neutron_error(r: httpx.Response) -> dict[str, Any]:
    err: dict[str, Any] = r.json()["NeutronError"]
    return err


def test_seeded_networks_and_version_discovery(sim: SimProcess) -> None:
    r = httpx.get(sim.sites["east"] + "/networking/")
    assert r.status_code == 200
    assert r.json()["versions"][0]["id"] == "v2.0"
    nets = sim.openstack("east", "network", "list", "-f", "json")
    by_name = {n["Name"]: n for n in nets}
    assert {"private", "public"} <= set(by_name)
    assert len(by_name["private"]["Subnets"]) == 1
    conn = sim.connect("west")
    public = conn.network.find_network("public")
    assert public is not None and public.is_router_external
    private = conn.network.find_network("private")
    assert private is not None and private.is_shared
    assert private.provider_network_type == "vxlan" and private.mtu == 1450
    subnet = conn.network.get_subnet(private.subnet_ids[0])
    assert subnet.cidr == "10.0.0.0/24" and subnet.gateway_ip == "10.0.0.1"
    # The two sites' external ranges differ, like two datacenters' provider ranges.
    east_public = sim.connect("east").network.find_network("public")
    assert east_public is not None
    east_sub = sim.connect("east").network.get_subnet(east_public.subnet_ids[0])
    west_sub = conn.network.get_subnet(public.subnet_ids[0])
    assert east_sub.cidr != west_sub.cidr


def test_cli_network_subnet_and_port_with_fixed_ip_and_mac(sim: SimProcess) -> None:
    net = sim.openstack("east", "network", "create", "blue", "-f", "json")
    assert net["name"] == "blue" and net["status"] == "ACTIVE"
    sub = sim.openstack(
        "east",
        "subnet",
        "create",
        "blue-sub",
        "--network",
        "blue",
        "--subnet-range",
        "192.168.10.0/24",
        "--allocation-pool",
        "start=192.168.10.100,end=192.168.10.200",
        "-f",
        "json",
    )
    assert sub["cidr"] == "192.168.10.0/24"
    assert sub["gateway_ip"] == "192.168.10.1"
    port = sim.openstack(
        "east",
        "port",
        "create",
        "p1",
        "--network",
        "blue",
        "--fixed-ip",
        "subnet=blue-sub,ip-address=192.168.10.7",
        "--mac-address",
        "fa:16:3e:aa:bb:cc",
        "-f",
        "json",
    )
    assert port["mac_address"] == "fa:16:3e:aa:bb:cc"
    assert port["fixed_ips"][0]["ip_address"] == "192.168.10.7"
    assert port["status"] == "DOWN"
    conn = sim.connect("east")
    auto = conn.network.create_port(network_id=net["id"])
    assert auto.fixed_ips[0]["ip_address"] == "192.168.10.100"  # lowest pool address
    assert auto.mac_address.startswith("fa:16:3e:") and auto.mac_address != port["mac_address"]


def test_cli_duplicate_ip_and_mac_are_refused(sim: SimProcess) -> None:
    conn = sim.connect("east")
    net = conn.network.find_network("private")
    assert net is not None
    conn.network.create_port(
        network_id=net.id,
        name="taken",
        fixed_ips=[{"ip_address": "10.0.0.7"}],
        mac_address="fa:16:3e:aa:bb:cc",
    )
    dup_ip = sim.openstack(
        "east",
        "port",
        "create",
        "p3",
        "--network",
        "private",
        "--fixed-ip",
        "ip-address=10.0.0.7",
        check=False,
    )
    assert dup_ip.returncode != 0
    assert "IP address 10.0.0.7 already allocated in subnet" in dup_ip.stderr
    dup_mac = sim.openstack(
        "east",
        "port",
        "create",
        "p4",
        "--network",
        "private",
        "--mac-address",
        "fa:16:3e:aa:bb:cc",
        check=False,
    )
    assert dup_mac.returncode != 0
    assert "mac address fa:16:3e:aa:bb:cc is in use" in dup_mac.stderr
    found = sim.openstack("east", "port", "list", "--fixed-ip", "ip-address=10.0.0.7", "-f", "json")
    assert [p["Name"] for p in found] == ["taken"]


def test_duplicate_ip_and_mac_are_409_with_neutron_types(sim: SimProcess) -> None:
    conn = sim.connect("east")
    net = conn.network.find_network("private")
    assert net is not None
    first = conn.network.create_port(
        network_id=net.id, fixed_ips=[{"ip_address": "10.0.0.77"}], mac_address="fa:16:3e:00:00:77"
    )
    assert first.fixed_ips[0]["ip_address"] == "10.0.0.77"
    url = sim.sites["east"] + "/networking/v2.0/ports"
    hdr = {"X-Auth-Token": conn.auth_token}
    r = httpx.post(
        url,
        headers=hdr,
        json={"port": {"network_id": net.id, "fixed_ips": [{"ip_address": "10.0.0.77"}]}},
    )
    assert r.status_code == 409
    assert _neutron_error(r)["type"] == "IpAddressAlreadyAllocated"
    r = httpx.post(
        url, headers=hdr, json={"port": {"network_id": net.id, "mac_address": "fa:16:3e:00:00:77"}}
    )
    assert r.status_code == 409
    assert _neutron_error(r)["type"] == "MacAddressInUse"
    r = httpx.post(
        url,
        headers=hdr,
        json={"port": {"network_id": net.id, "fixed_ips": [{"ip_address": "10.9.9.9"}]}},
    )
    assert r.status_code == 400
    assert _neutron_error(r)["type"] == "InvalidIpForNetwork"
    # Nothing leaked: the failed requests made no port.
    assert [p.id for p in conn.network.ports(network_id=net.id)] == [first.id]


def test_unknown_resources_and_bad_bodies(sim: SimProcess) -> None:
    conn = sim.connect("east")
    base = sim.sites["east"] + "/networking/v2.0"
    hdr = {"X-Auth-Token": conn.auth_token}
    cases = [
        ("networks", "NetworkNotFound"),
        ("ports", "PortNotFound"),
        ("subnets", "SubnetNotFound"),
        ("floatingips", "FloatingIPNotFound"),
    ]
    for collection, ntype in cases:
        r = httpx.get(f"{base}/{collection}/does-not-exist", headers=hdr)
        assert r.status_code == 404
        assert _neutron_error(r)["type"] == ntype
    with pytest.raises(openstack.exceptions.NotFoundException):
        conn.network.get_port("does-not-exist")
    r = httpx.post(f"{base}/networks", headers=hdr, content=b"{not json")
    assert r.status_code == 400
    assert _neutron_error(r)["type"] == "MalformedRequestBody"
    r = httpx.post(f"{base}/networks", headers=hdr, json={"network": {"bogus": 1}})
    assert r.status_code == 400
    assert "Unrecognized attribute" in _neutron_error(r)["message"]
    r = httpx.post(
        f"{base}/subnets", headers=hdr, json={"subnet": {"network_id": "x", "cidr": "1"}}
    )
    assert r.status_code == 404
    r = httpx.get(f"{base}/no-such-collection", headers=hdr)
    assert r.status_code == 404 and "NeutronError" in r.json()
    cli = sim.openstack("east", "network", "show", "nope", check=False)
    assert cli.returncode != 0 and "nope" in cli.stderr


def test_port_listing_pages_with_limit_and_marker(sim: SimProcess) -> None:
    conn = sim.connect("east")
    net = conn.network.create_network(name="paged")
    conn.network.create_subnet(network_id=net.id, cidr="10.20.0.0/24", ip_version=4)
    made = {conn.network.create_port(network_id=net.id, name=f"pp{i}").id for i in range(7)}
    paged = [p.id for p in conn.network.ports(network_id=net.id, limit=2)]
    assert sorted(paged) == sorted(made) and len(paged) == 7
    r = httpx.get(
        sim.sites["east"] + "/networking/v2.0/ports",
        params={"network_id": net.id, "limit": 3},
        headers={"X-Auth-Token": conn.auth_token},
    )
    body = r.json()
    assert len(body["ports"]) == 3
    nxt = next(link for link in body["ports_links"] if link["rel"] == "next")["href"]
    assert "marker=" + body["ports"][-1]["id"] in nxt
    cli = sim.openstack("east", "port", "list", "--network", "paged", "--limit", "2", "-f", "json")
    # The CLI hands --limit to the SDK as a page size and follows every page.
    assert sorted(p["ID"] for p in cli) == sorted(made)


def test_floating_ip_create_associate_and_release(sim: SimProcess) -> None:
    conn = sim.connect("east")
    private = conn.network.find_network("private")
    assert private is not None
    port = conn.network.create_port(network_id=private.id, name="web")
    fip = sim.openstack("east", "floating", "ip", "create", "public", "-f", "json")
    address = fip["floating_ip_address"]
    assert address.startswith("172.24.4.")
    assert fip["status"] == "DOWN" and fip["port_id"] is None
    sim.openstack("east", "floating", "ip", "set", "--port", "web", address)
    shown = conn.network.get_ip(fip["id"])
    assert shown.port_id == port.id
    assert shown.fixed_ip_address == port.fixed_ips[0]["ip_address"]
    assert shown.status == "ACTIVE"
    found = list(conn.network.ips(port_id=port.id))
    assert [f.floating_ip_address for f in found] == [address]
    sim.openstack("east", "floating", "ip", "unset", "--port", address)
    shown = conn.network.get_ip(fip["id"])
    assert shown.port_id is None and shown.status == "DOWN"
    conn.network.delete_ip(shown)
    assert list(conn.network.ips(floating_ip_address=address)) == []
    # The address went back to the pool.
    again = conn.network.create_ip(floating_network_id=fip["floating_network_id"])
    assert again.floating_ip_address == address


def test_floating_ip_follows_a_router_when_there_is_one(sim: SimProcess) -> None:
    conn = sim.connect("east")
    public = conn.network.find_network("public")
    private = conn.network.find_network("private")
    assert public is not None and private is not None
    router = conn.network.create_router(name="r1", external_gateway_info={"network_id": public.id})
    assert router.external_gateway_info["network_id"] == public.id
    conn.network.add_interface_to_router(router, subnet_id=private.subnet_ids[0])
    port = conn.network.create_port(network_id=private.id)
    fip = conn.network.create_ip(floating_network_id=public.id, port_id=port.id)
    assert fip.router_id == router.id and fip.status == "ACTIVE"
    with pytest.raises(openstack.exceptions.ConflictException):
        conn.network.delete_router(router)
    conn.network.delete_port(port)
    assert conn.network.get_ip(fip.id).port_id is None  # deleting the port released it


def test_security_groups(sim: SimProcess) -> None:
    groups = sim.openstack("east-demo", "security", "group", "list", "-f", "json")
    assert [g["Name"] for g in groups] == ["default"]
    sg = sim.openstack("east-demo", "security", "group", "create", "web", "-f", "json")
    rule = sim.openstack(
        "east-demo",
        "security",
        "group",
        "rule",
        "create",
        "--protocol",
        "tcp",
        "--dst-port",
        "80:81",
        "--remote-ip",
        "0.0.0.0/0",
        "web",
        "-f",
        "json",
    )
    assert rule["port_range_min"] == 80 and rule["port_range_max"] == 81
    conn = sim.connect("east-demo")
    with pytest.raises(openstack.exceptions.ConflictException, match="already exists"):
        conn.network.create_security_group_rule(
            security_group_id=sg["id"],
            direction="ingress",
            ethertype="IPv4",
            protocol="tcp",
            port_range_min=80,
            port_range_max=81,
            remote_ip_prefix="0.0.0.0/0",
        )
    got = conn.network.get_security_group(sg["id"])
    assert len(got.security_group_rules) == 3  # two default egress rules and ours
    # A demo port gets the project's default group.
    net = conn.network.find_network("private")
    assert net is not None
    port = conn.network.create_port(network_id=net.id)
    default = conn.network.find_security_group("default")
    assert default is not None and port.security_group_ids == [default.id]
    # The admin project's groups stay out of demo's listing.
    assert all(g.project_id == conn.current_project_id for g in conn.network.security_groups())


def test_port_security_and_address_pairs(sim: SimProcess) -> None:
    conn = sim.connect("east")
    net = conn.network.find_network("private")
    assert net is not None
    port = conn.network.create_port(
        network_id=net.id, allowed_address_pairs=[{"ip_address": "10.0.0.200"}]
    )
    assert port.allowed_address_pairs == [
        {"ip_address": "10.0.0.200", "mac_address": port.mac_address}
    ] or port.allowed_address_pairs == [{"ip_address": "10.0.0.200"}]
    with pytest.raises(openstack.exceptions.ConflictException):
        conn.network.update_port(port, port_security_enabled=False)
    bare = conn.network.update_port(
        port, port_security_enabled=False, security_groups=[], allowed_address_pairs=[]
    )
    assert bare.is_port_security_enabled is False


def test_binding_makes_a_port_active(sim: SimProcess) -> None:
    conn = sim.connect("east")
    net = conn.network.find_network("private")
    assert net is not None
    port = conn.network.create_port(
        network_id=net.id, device_id="vm-1", device_owner="compute:nova"
    )
    assert port.status == "DOWN" and port.binding_vif_type == "unbound"
    bound = conn.network.update_port(port, binding_host_id="east-compute-1")
    assert bound.status == "ACTIVE" and bound.binding_vif_type == "ovs"
    demo = sim.connect("east-demo")
    with pytest.raises(openstack.exceptions.NotFoundException):
        demo.network.get_port(port.id)  # another project's port


def test_network_agents_one_per_host_with_vteps(sim_factory: Any) -> None:
    sim = sim_factory(
        topology={
            "sites": {
                "east": {"hosts": 2},
                "west": {"hosts": 1, "vtep_subnet": "10.99.0.0/24"},
            }
        }
    )
    agents = sim.openstack("east", "network", "agent", "list", "-f", "json")
    assert sorted(a["Host"] for a in agents) == ["east-compute-1", "east-compute-2"]
    assert all(a["Alive"] and a["State"] for a in agents)
    assert {a["Agent Type"] for a in agents} == {"Open vSwitch agent"}
    conn = sim.connect("east")
    vteps = sorted(a.configuration["tunneling_ip"] for a in conn.network.agents())
    assert vteps == ["192.0.2.1", "192.0.2.2"]
    west = [a.configuration["tunneling_ip"] for a in sim.connect("west").network.agents()]
    assert west == ["10.99.0.1"]
    # Demo is not an admin: Neutron's policy hides agents.
    assert list(sim.connect("east-demo").network.agents()) == []
    # Heartbeats follow the clock while hosts live.
    before = {a.id: a.last_heartbeat_at for a in conn.network.agents()}
    sim.advance(120)
    after = {a.id: a.last_heartbeat_at for a in conn.network.agents()}
    assert all(after[k] > before[k] for k in before)


def test_extensions_are_listed(sim: SimProcess) -> None:
    conn = sim.connect("east")
    aliases = {e.alias for e in conn.network.extensions()}
    assert {
        "binding",
        "external-net",
        "router",
        "security-group",
        "agent",
        "allowed-address-pairs",
        "port-security",
    } <= aliases
    assert conn.network.find_extension("router") is not None
    assert conn.network.find_extension("dvr") is None
