"""Key pairs, security groups (with rules) and server groups: in the manifest, and rebuilt at
the recovery site, with west's controller killed right after every cloud create of the run.

Two servers at east in an anti-affinity server group, booted with a key pair, their ports in a
security group whose rules include one that names the group itself.  After east is lost, west
recreates all three once each (a replay adopts what a killed attempt made), the servers boot
with the key pair, in the recreated server group (on different hosts), their ports in the
recreated security group.
"""

from __future__ import annotations

import base64
import json
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.drcontroller import MANUAL, DrWorld, until
from tests.support.kills import recover_through_kills

pytestmark = pytest.mark.timeout(900)
_BLOB = b"\x00\x00\x00\x0bssh-ed25519" + b"\x00\x00\x00\x20" + bytes(range(32))
PUBLIC_KEY = f"ssh-ed25519 {base64.b64encode(_BLOB).decode()} ops@east"
RULES = [
    {
        "direction": "ingress",
        "protocol": "tcp",
        "port_range_min": 22,
        "port_range_max": 22,
        "remote_ip_prefix": "10.20.0.0/16",
    },
    {"direction": "ingress", "protocol": "tcp", "port_range_min": 443, "port_range_max": 443},
]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[DrWorld]:
    w = DrWorld(tmp_path)
    try:
        w.start("east")
        w.start("west")
        yield w
    finally:
        w.stop()


def build(w: DrWorld) -> dict[str, Any]:
    """At east: key pair, security group ``web`` with rules, anti-affinity group, two servers."""
    c = w.sim.connect("east")
    try:
        c.compute.create_keypair(name="ops", public_key=PUBLIC_KEY)
        sg = c.network.create_security_group(name="web", description="web tier")
        for r in RULES:
            c.network.create_security_group_rule(security_group_id=sg.id, ether_type="IPv4", **r)
        c.network.create_security_group_rule(
            security_group_id=sg.id, direction="ingress", ether_type="IPv4", remote_group_id=sg.id
        )
        group = c.compute.create_server_group(name="web-anti", policy="anti-affinity")
        image = c.image.find_image("cirros", ignore_missing=False)
        flavor = c.compute.find_flavor("m1.tiny", ignore_missing=False)
        net = c.network.find_network("private", ignore_missing=False)
        servers = []
        for name in ("web1", "web2"):
            port = c.network.create_port(network_id=net.id, security_group_ids=[sg.id])
            servers.append(
                c.compute.create_server(
                    name=name,
                    image_id=image.id,
                    flavor_id=flavor.id,
                    networks=[{"port": port.id}],
                    key_name="ops",
                    scheduler_hints={"group": group.id},
                )
            )
        vol = c.block_storage.create_volume(name="web-data", size=1)
        for s in servers:
            until(f"{s.name} ACTIVE", lambda s=s: c.compute.get_server(s.id).status == "ACTIVE")
        until("web-data", lambda: c.block_storage.get_volume(vol.id).status == "available")
        c.compute.create_volume_attachment(servers[0].id, volume_id=vol.id)
        until("web-data in use", lambda: c.block_storage.get_volume(vol.id).status == "in-use")
        sg = c.network.get_security_group(sg.id)
        return {
            "servers": [str(s.id) for s in servers],
            "sg": str(sg.id),
            "rules": len(sg.security_group_rules),
            "group": str(group.id),
        }
    finally:
        c.close()


@pytest.mark.slow
def test_key_pairs_security_groups_server_groups_rebuilt_once_despite_kills(
    world: DrWorld,
) -> None:
    w = world
    east = build(w)
    w.api("east", "PUT", "/v1/policies/acc", MANUAL)
    g = w.api("east", "POST", "/v1/groups", {"name": "acc", "policy": "acc"})
    for sid in east["servers"]:
        w.api("east", "POST", "/v1/groups/acc/members", {"kind": "server", "id": sid})
    w.api("east", "POST", "/v1/groups/acc/members", {"kind": "volume", "id": _volume(w)})
    # The group's first checkpoint (the controller takes it once the group has a volume)
    # carries the servers' key pair, groups and rules.
    cp = w.wait_settled(g["id"])[-1]
    assert cp["state"] == "complete", cp
    m = json.loads(_object(w, cp["manifest"]["object"]))["manifest"]
    assert m["key_pairs"] == [{"name": "ops", "public_key": PUBLIC_KEY, "type": "ssh"}]
    (sg,) = m["security_groups"]
    assert sg["id"] == east["sg"] and sg["name"] == "web" and len(sg["rules"]) == east["rules"]
    assert any(r["remote_group_id"] == east["sg"] for r in sg["rules"])
    assert m["server_groups"] == [
        {
            "id": east["group"],
            "name": "web-anti",
            "policy": "anti-affinity",
            "members": sorted(east["servers"]),
        }
    ]
    assert {s["server_group_id"] for s in m["servers"]} == {east["group"]}

    w.ctl("POST", "/control/faults", {"kind": "site-down", "target": "east"})
    w.ctls["east"].kill()
    chk = w.api("west", "GET", "/v1/recovery/check/east")
    assert chk["ok"], chk["problems"]
    assert chk["needs"]["compute.key_pairs"] == 1 and chk["needs"]["compute.server_groups"] == 1

    # West dies right after each cloud create of the run (key pair, security group, each rule,
    # server group, volume, ports, servers); each restart is armed again until the run settles.
    got = recover_through_kills(
        w,
        lambda: w.post_once("west", "/v1/recovery", {"datacenter": "east", "declare_down": "east"}),
        "after_cloud_call",
        lambda run: None,  # the access resources are checked one by one below
        max_kills=20,
    )
    # key pair, security group, its 3 own rules (Neutron made the egress ones), server group,
    # the volume, 2 ports, 2 servers: at least one kill each (a create in flight beside the
    # one that killed may land on the same attempt).
    assert got.kills >= 6, got.kills
    final = got.run

    c = w.sim.connect("west")
    try:
        keys = [k for k in c.compute.keypairs() if k.name == "ops"]
        assert len(keys) == 1 and keys[0].public_key == PUBLIC_KEY
        webs = [x for x in c.network.security_groups() if x.name == "web"]
        assert len(webs) == 1, webs
        web = c.network.get_security_group(webs[0].id)
        rules = web.security_group_rules
        assert len(rules) == east["rules"], rules
        assert any(r["remote_group_id"] == web.id for r in rules)
        assert Counter((r["protocol"], r["port_range_min"]) for r in rules)[("tcp", 22)] == 1
        groups = [x for x in c.compute.server_groups() if x.name == "web-anti"]
        assert len(groups) == 1 and groups[0].policy == "anti-affinity"
        by_source = {s["source"]: s["server_id"] for s in final["report"]["servers"]}
        assert sorted(groups[0].member_ids) == sorted(by_source[s] for s in east["servers"])
        names = Counter(s.name for s in c.compute.servers())
        assert names["web1"] == 1 and names["web2"] == 1, names
        hosts = set()
        for sid in east["servers"]:
            s = c.compute.get_server(by_source[sid])
            assert s.status == "ACTIVE" and s.key_name == "ops"
            hosts.add(s.compute_host)
            (port,) = list(c.network.ports(device_id=s.id))
            assert port.security_group_ids == [web.id]
        assert len(hosts) == 2, hosts
    finally:
        c.close()


def _volume(w: DrWorld) -> str:
    c = w.sim.connect("east")
    try:
        (v,) = [v for v in c.block_storage.volumes() if v.name == "web-data"]
        return str(v.id)
    finally:
        c.close()


def _object(w: DrWorld, name: str) -> bytes:
    c = w.sim.connect("west")
    try:
        return bytes(c.object_store.download_object(name, container=w.container))
    finally:
        c.close()
