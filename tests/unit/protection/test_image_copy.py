"""The image-copy method's pure parts: chunk geometry, zero chunks, references, the rate hook."""

from __future__ import annotations

import asyncio

import pytest

from liferaft.errors import GiveUp
from liferaft.protection import image_copy as ic
from liferaft.protection.model import Policy, check_policy
from liferaft.sim.http import ApiError
from liferaft.sim.image.store import parse_range

MIB = 1 << 20


def test_chunk_lengths_cover_the_image_with_a_short_last_chunk() -> None:
    assert ic.chunk_lengths(0, MIB) == []
    assert ic.chunk_lengths(3 * MIB, MIB) == [MIB] * 3
    assert ic.chunk_lengths(2 * MIB + 5, MIB) == [MIB, MIB, 5]


def test_zero_chunks_are_recognised_without_hashing() -> None:
    assert ic.is_zero(bytes(MIB)) and ic.is_zero(b"")
    assert not ic.is_zero(bytes(MIB - 1) + b"\1")


def test_changed_bytes_counts_positions_that_differ_and_ignores_zero_chunks() -> None:
    old = ["a", "b", "", "c"]
    new = ["a", "x", "", "c", "d"]
    # Position 1 changed (1 MiB), position 4 is new (5 bytes); the zero chunk counts nothing.
    assert ic.changed_bytes(old, new, 4 * MIB + 5, MIB) == MIB + 5
    assert ic.changed_bytes(new, new, 4 * MIB + 5, MIB) == 0


def test_referenced_collects_every_volumes_chunks_but_not_zero_ones() -> None:
    doc = {
        "volumes": [
            {"image": {"chunks": ["a", "", "b"]}},
            {"backup": {"backup_id": "x"}},
            {"image": {"chunks": ["b", "c"]}},
        ]
    }
    assert ic.referenced(doc) == {"a", "b", "c"}


def test_chunk_names_are_per_group_and_content_addressed() -> None:
    d = ic.digest(b"hello")
    assert ic.chunk_object("g1", d) == f"chunks/g1/{d}"
    assert ic.chunk_object("g1", d).startswith(ic.chunk_prefix("g1"))
    assert len(d) == 64


def test_policy_method_image_copy_is_valid_and_others_are_named() -> None:
    p = Policy("p", 60, 30, 2, 3600, method="image-copy")
    assert check_policy(p) is p
    with pytest.raises(GiveUp, match="method must be one of snapshot-backup, image-copy"):
        check_policy(Policy("p", 60, 30, 2, 3600, method="image-cpy"))


def test_glance_range_header_parsing() -> None:
    assert parse_range(None, 100) is None
    assert parse_range("bytes=0-9", 100) == (0, 10)
    assert parse_range("bytes=90-", 100) == (90, 100)
    assert parse_range("bytes=-5", 100) == (95, 100)
    assert parse_range("bytes=50-500", 100) == (50, 100)
    for bad in ("bytes=100-", "items=0-1", "bytes=0-1,5-6", "bytes=x-y"):
        with pytest.raises(ApiError) as e:
            parse_range(bad, 100)
        assert e.value.status == 416


class _Store:
    """A recovery site's object store (the Cloud port's object calls), in memory."""

    site = "west"

    def __init__(self) -> None:
        self.objects: dict[str, bytes] = {}

    async def list_objects(self, container: str, *, prefix: str = "") -> list[str]:
        return sorted(n for n in self.objects if n.startswith(prefix))

    async def get_object(self, container: str, name: str) -> bytes:
        return self.objects[name]

    async def delete_object(self, container: str, name: str) -> None:
        self.objects.pop(name, None)


def _gc_world(key: bytes) -> tuple[_Store, object, dict[str, str]]:
    from types import SimpleNamespace

    from liferaft.protection import manifest as mf

    store = _Store()
    chunks = {c: ic.digest(c.encode()) for c in "abcde"}
    kept = [["a", "b"], ["b", "c"]]
    for i, names in enumerate(kept):
        doc = {"volumes": [{"id": "v", "image": {"chunks": [chunks[n] for n in names] + [""]}}]}
        store.objects[mf.object_name("g", 100.0 + i, f"cp{i}")] = mf.sign(doc, key)
    for d in chunks.values():
        store.objects[ic.chunk_object("g", d)] = b"x"
    store.objects[ic.chunk_object("other", chunks["e"])] = b"x"  # another group's: not ours
    deps = SimpleNamespace(cloud=lambda site: store, container="c", key=key)
    return store, deps, chunks


def test_garbage_collection_keeps_every_chunk_a_kept_manifest_needs() -> None:
    key = b"k" * 32
    store, deps, chunks = _gc_world(key)
    gone = asyncio.run(
        ic.collect_garbage(deps, {"recovery_site": "west", "group_id": "g"}, busy=False)
    )
    assert sorted(gone) == sorted(ic.chunk_object("g", chunks[c]) for c in "de")
    left = {n for n in store.objects if n.startswith("chunks/")}
    assert left == {ic.chunk_object("g", chunks[c]) for c in "abc"} | {
        ic.chunk_object("other", chunks["e"])
    }


def test_garbage_collection_deletes_nothing_while_busy_or_when_a_manifest_is_refused() -> None:
    key = b"k" * 32
    store, deps, _ = _gc_world(key)
    before = dict(store.objects)
    params = {"recovery_site": "west", "group_id": "g"}
    assert asyncio.run(ic.collect_garbage(deps, params, busy=True)) == []
    name = next(n for n in store.objects if n.startswith("manifests/"))
    store.objects[name] = store.objects[name][:-20]  # truncated
    assert asyncio.run(ic.collect_garbage(deps, params, busy=False)) == []
    before[name] = store.objects[name]
    assert store.objects == before


def test_referenced_includes_the_servers_copied_root_disks() -> None:
    doc = {
        "volumes": [{"image": {"chunks": ["a"]}}],
        "servers": [
            {"id": "s1", "root_disk": {"method": "image-copy", "image": {"chunks": ["r", ""]}}},
            {"id": "s2", "boot": {"from": "volume"}},
        ],
    }
    assert ic.referenced(doc) == {"a", "r"}


def _copied(sent: int) -> dict[str, object]:
    img = {"container": "c", "prefix": "chunks/g/", "size": 5, "chunk_size": 4, "chunks": ["x", ""]}
    return {"image_id": "i", "image": img, "sent_bytes": sent, "sent_bytes_this_attempt": sent}


def test_the_manifest_and_catalog_record_each_copied_root_disk() -> None:
    """A server whose root disk was copied carries its chunk list in the manifest (what
    recovery boots from); a server that boots from a volume has none; the catalog keeps
    the copy's figures under ``root:<server>`` beside the volumes."""
    from liferaft.protection.checkpoint import build_manifest

    params = {
        "checkpoint_id": "cp1",
        "group_id": "g",
        "group_name": "g",
        "site": "east",
        "recovery_site": "west",
        "policy": "p",
        "chain_id": "cp1",
        "servers": [{"id": "s1"}, {"id": "s2"}],
        "volumes": [{"id": "v1"}],
    }
    results = {
        "describe": {
            "servers": [
                {"id": "s1", "boot": {"from": "image", "image_id": "cirros"}},
                {"id": "s2", "boot": {"from": "volume", "volume_id": "v1"}},
            ],
            "volumes": {"v1": {"id": "v1", "attachments": []}},
        },
        "capture": {"captured_at": 10.0, "consistency": "crash-consistent", "order": []},
        "copy:0": {"volume_id": "v1", **_copied(4)},
        "copy-root:0": {"server_id": "s1", **_copied(3)},
        "copy-root:1": {"server_id": "s2", "image_id": None},
    }
    doc = build_manifest(params, results, 11.0)
    s1, s2 = doc["servers"]
    assert s1["root_disk"] == {"method": "image-copy", "image": results["copy-root:0"]["image"]}
    assert "root_disk" not in s2
    assert ic.referenced(doc) == {"x"}
    roots = ic.root_entries(params, results)
    assert list(roots) == ["s1"] and roots["s1"]["sent_bytes"] == 3
    assert ic.root_key("s1") == "root:s1" and ic.root_step(0) == "copy-root:0"
    assert ic.boots_from_image(s1) and not ic.boots_from_image(s2)


def test_catalog_rebuild_records_copied_root_disks_beside_the_volumes() -> None:
    from liferaft.protection.rebuild import _volume_records

    img = {"size": 5, "chunk_size": 4, "chunks": ["x", ""]}
    doc = {
        "volumes": [{"id": "v1", "image": img}],
        "servers": [
            {"id": "s1", "root_disk": {"method": "image-copy", "image": img}},
            {"id": "s2", "boot": {"from": "volume"}},
        ],
    }
    rec = {"method": "image-copy", "size": 5, "chunks": 2}
    assert _volume_records(doc) == {"v1": rec, "root:s1": {**rec, "server_id": "s1"}}


def test_recovery_boots_a_server_with_a_copied_root_disk_after_its_root_step() -> None:
    """The recovery graph: ``root:<g>:<s>`` only for a server whose root disk was copied,
    right after the capacity check, and that server's boot waits for it."""
    from types import SimpleNamespace
    from typing import Any

    from liferaft.recovery import disaster

    def srv(i: str, root: bool) -> dict[str, Any]:
        s: dict[str, Any] = {
            "id": i,
            "name": i,
            "tier": 0,
            "boot": {"from": "image", "image_id": "cirros", "image_name": "cirros"},
            "ports": [],
            "volumes": [],
        }
        if root:
            s["root_disk"] = {"method": "image-copy", "image": {"chunks": [], "size": 0}}
        return s

    manifest = {"checkpoint_id": "c", "servers": [srv("a", True), srv("b", False)], "volumes": []}
    params = {"run_id": "r" * 32, "mode": "disaster", "groups": [{"manifest": manifest}]}
    deps: Any = SimpleNamespace(site="west", cloud=None)
    dep = {s.name: s.depends_on for s in disaster.build(deps, params).steps}
    assert dep["root:g0:s0"] == ("capacity",) and "root:g0:s1" not in dep
    assert "root:g0:s0" in dep["boot:g0:s0"] and not any(
        d.startswith("root:") for d in dep["boot:g0:s1"]
    )
