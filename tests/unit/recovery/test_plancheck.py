"""The recovery plan check lists every problem at once and resolves names through the mappings."""

from __future__ import annotations

import asyncio
from typing import Any

from liferaft.clouds.model import (
    Flavor,
    IdentityInfo,
    Image,
    Inventory,
    KeyPair,
    ProviderCapacity,
    Quota,
)
from liferaft.clouds.port import ResourceNotFound
from liferaft.recovery.plancheck import PlanCheck, PlanRefused, check_plan, resolved


class West:
    """The recovery site, as the plan check reads it."""

    site = "west"

    def __init__(self, *, cores: int = 100, hosts: int = 2, vcpu: int = 8) -> None:
        self.flavors = [Flavor("f1", "m1.tiny", 1, 512), Flavor("f2", "m1.small", 2, 2048)]
        self.images = {"i1": Image("i1", "cirros", "active")}
        self.networks = {"n1": "private", "n2": "west-net"}
        self.types = ["__DEFAULT__", "ssd"]
        self.quota = [
            Quota("compute", "instances", 10, 0),
            Quota("compute", "cores", cores, 0),
            Quota("compute", "ram", 51200, 0),
            Quota("volume", "volumes", 10, 0),
            Quota("volume", "gigabytes", 1000, 0),
        ]
        inv = {
            "VCPU": Inventory("VCPU", vcpu),
            "MEMORY_MB": Inventory("MEMORY_MB", 8192),
        }
        self.providers = [ProviderCapacity(f"h{i}", f"h{i}", inv, {}) for i in range(hosts)]

    async def list_flavors(self) -> list[Flavor]:
        return self.flavors

    async def list_volume_types(self) -> list[str]:
        return self.types

    async def find_image(self, name: str) -> Image | None:
        return next((i for i in self.images.values() if i.name == name), None)

    async def get_image(self, image_id: str) -> Image:
        if image_id not in self.images:
            raise ResourceNotFound(image_id)
        return self.images[image_id]

    async def find_network(self, name: str) -> str | None:
        return next((k for k, v in self.networks.items() if v == name), None)

    async def network_name(self, network_id: str) -> str:
        if network_id not in self.networks:
            raise ResourceNotFound(network_id)
        return self.networks[network_id]

    async def identity(self) -> IdentityInfo:
        return IdentityInfo("http://keystone", None, "u", "proj-west")

    async def quotas(self) -> list[Quota]:
        return self.quota

    async def capacity(self) -> list[ProviderCapacity]:
        return self.providers

    async def find_keypair(self, name: str) -> KeyPair | None:
        return KeyPair("ops", "ssh-ed25519 AAAA west", fingerprint="fp") if name == "ops" else None


def server(
    name: str, flavor: str, *, net: str = "private", image: str = "cirros", vcpus: int = 1
) -> dict[str, Any]:
    return {
        "id": f"id-{name}",
        "name": name,
        "flavor": flavor,
        "vcpus": vcpus,
        "ram_mb": 512,
        "project_id": "proj-east",
        "boot": {"from": "image", "image_id": "east-image-id", "image_name": image},
        "ports": [{"id": f"p-{name}", "network_name": net, "network_id": "east-net-id"}],
        "volumes": [],
    }


def group(gid: str, servers: list[dict[str, Any]], volumes: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "object": f"manifests/{gid}/x.json",
        "manifest": {
            "checkpoint_id": f"cp-{gid}",
            "captured_at": 100.0,
            "group": {"id": gid, "name": f"name-{gid}", "site": "east"},
            "servers": servers,
            "volumes": volumes,
        },
    }


def check(
    cloud: West,
    groups: list[dict[str, Any]],
    mappings: dict[str, Any] | None = None,
    unverified: dict[str, list[str]] | None = None,
) -> PlanCheck:
    return asyncio.run(
        check_plan(
            cloud,  # type: ignore[arg-type]
            protected_site="east",
            groups=groups,
            unverified=unverified or {},
            mappings=mappings or {},
            container="c",
        )
    )


def test_a_plan_that_fits_resolves_every_name_here() -> None:
    g = group(
        "g1",
        [server("db", "m1.small", net="east-net"), server("app", "big")],
        [{"id": "v1", "name": "data", "volume_type": "fast", "size_gb": 10}],
    )
    maps = {
        "networks": {"east-net": "west-net"},
        "flavors": {"big": "m1.small"},
        "volume_types": {"fast": "ssd"},
    }
    chk = check(West(), [g], maps)
    assert chk.ok, chk.problems
    assert chk.resolved["flavors"] == {"m1.small": "f2", "big": "f2"}
    assert chk.resolved["networks"] == {"east-net": "n2", "private": "n1"}
    assert chk.resolved["images"] == {"cirros": "i1"}
    assert chk.resolved["volume_types"] == {"fast": "ssd"}
    assert chk.resolved["projects"] == {"proj-east": "proj-west"}
    assert chk.needs["compute.cores"] == 4 and chk.needs["volume.gigabytes"] == 10
    params = {"resolved": chk.resolved}
    assert resolved(params, "flavors", "big") == "f2" and resolved(params, "flavors", "x") is None


def test_every_problem_is_listed_at_once() -> None:
    g = group(
        "g1",
        [server(f"s{i}", "m1.small", net="east-net", image="ubuntu") for i in range(6)]
        + [server("huge", "m1.huge")],
        [{"id": "v1", "name": "data", "volume_type": "fast", "size_gb": 10}],
    )
    maps = {"volume_types": {"fast": "gold"}, "projects": {"proj-east": "other"}}
    west = West(cores=4, hosts=2, vcpu=4)
    chk = check(west, [g], maps, unverified={"g2": ["c/manifests/g2/y.json: refused: tampered"]})
    assert not chk.ok
    text = "\n".join(str(p) for p in chk.problems)
    kinds = sorted({p.kind for p in chk.problems})
    assert kinds == ["capacity", "manifest", "mapping", "project", "quota", "volume_type"], text
    # Unmapped names say what to add and where.
    assert (
        "no flavor 'm1.huge' at west and no mapping for it: add protection.mappings.east.flavors"
        in text
    )
    assert "no image 'ubuntu' at west" in text and "no network 'east-net' at west" in text
    assert "volume type 'fast' is mapped (protection.mappings.east.volume_types) to 'gold'" in text
    assert "compute quota cores: the plan needs 13, west's project has 4 free" in text
    assert "servers do not fit on 2 compute hosts of west" in text
    assert "group g2: c/manifests/g2/y.json: refused: tampered; no older manifest" in text
    # One problem per name, naming the first servers that use it.
    nets = [p for p in chk.problems if "'east-net'" in p.message]
    assert len(nets) == 1 and nets[0].subject.endswith("(and 3 more)")
    err = PlanRefused(chk)
    assert "refused before anything changed" in str(err) and "(1)" in str(err)


def test_a_refused_newest_manifest_with_an_older_one_used_is_a_warning() -> None:
    g = group("g1", [server("db", "m1.tiny")], [])
    chk = check(West(), [g], unverified={"g1": ["c/manifests/g1/z.json: truncated"]})
    assert chk.ok and [w.kind for w in chk.warnings] == ["manifest"]


def test_no_checkpoint_at_all_is_a_problem() -> None:
    chk = check(West(), [])
    assert not chk.ok and "no verified checkpoint of east" in chk.problems[0].message


def test_key_pairs_that_clash_or_cannot_be_made_are_problems() -> None:
    g = group("g1", [server("db", "m1.tiny")], [])
    g["manifest"]["key_pairs"] = [
        {"name": "ops", "public_key": "ssh-ed25519 AAAA east"},
        {"name": "lost", "public_key": None},
        {"name": "new", "public_key": "ssh-ed25519 BBBB"},
    ]
    chk = check(West(), [g])
    text = "\n".join(str(p) for p in chk.problems)
    assert "key pair ops: west has a key pair 'ops' with another public key" in text
    assert "key pair lost: its public key was not readable at east" in text
    assert len(chk.problems) == 2 and chk.needs["compute.key_pairs"] == 1


def test_a_server_with_a_copied_root_disk_needs_no_base_image_here() -> None:
    """Image-copy copied the server's root disk: it boots from that, so a base image that
    west lacks is not a problem (the other server, without one, still needs its image)."""
    copied = {
        **server("db", "m1.small", image="ubuntu"),
        "root_disk": {"method": "image-copy", "image": {"chunks": [], "size": 0}},
    }
    chk = check(West(), [group("g1", [copied], [])])
    assert chk.ok, chk.problems
    assert "ubuntu" not in chk.resolved["images"]
    chk = check(West(), [group("g1", [copied, server("app", "m1.small", image="ubuntu")], [])])
    assert [p.kind for p in chk.problems] == ["mapping"], chk.problems
