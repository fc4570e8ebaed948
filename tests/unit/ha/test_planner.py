"""Instance selection, priorities, restart groups and targets by recovery method."""

from __future__ import annotations

from liferaft.clouds.model import Inventory, ProviderCapacity, Server, ServerGroup
from liferaft.config.model import HaSegmentSettings
from liferaft.ha import planner


def server(i: int, **kw: object) -> Server:
    args: dict[str, object] = {
        "id": f"id{i}",
        "name": f"vm{i}",
        "status": "ACTIVE",
        "power_state": 1,
        "image_id": None,
        "flavor": "m1.tiny",
        "vcpus": 1,
        "ram_mb": 512,
    }
    args.update(kw)
    return Server(**args)  # type: ignore[arg-type]


def provider(name: str, vcpus: int, ram: int) -> ProviderCapacity:
    return ProviderCapacity(
        id=name,
        name=name,
        inventories={
            "VCPU": Inventory("VCPU", vcpus),
            "MEMORY_MB": Inventory("MEMORY_MB", ram),
        },
    )


def seg(**kw: object) -> HaSegmentSettings:
    args: dict[str, object] = {"name": "s", "hosts": ["a", "b", "c", "r1", "r2"]}
    args.update(kw)
    return HaSegmentSettings(**args)  # type: ignore[arg-type]


def test_selection_priority_and_local_disk() -> None:
    servers = [
        server(1, metadata={"ha_priority": "5"}),
        server(2, metadata={"ha_priority": "10"}),
        server(3, image_id="img"),  # booted from an image: local disk
        server(4, flavor="m1.large"),
    ]
    evac, skipped, ignored = planner.classify(servers, seg(selection={"flavors": ["m1.tiny"]}))
    assert [r["id"] for r in evac] == ["id2", "id1"]
    assert [r["id"] for r in skipped] == ["id3"]
    assert [r["id"] for r in ignored] == ["id4"]
    evac, skipped, _ = planner.classify(servers, seg(shared_storage=True))
    assert "id3" in [r["id"] for r in evac] and skipped == []


def test_restart_groups_become_dependencies() -> None:
    recs = [
        planner.instance_record(server(1, metadata={"ha_group": "db"})),
        planner.instance_record(server(2, metadata={"ha_group": "app", "ha_after": "db"})),
        planner.instance_record(server(3, metadata={"ha_group": "app", "ha_after": "db"})),
    ]
    assert planner.group_dependencies(recs) == {"id2": ["id1"], "id3": ["id1"]}


def _plan(method: str, n: int, auto_ram: int = 4096) -> tuple[dict[str, str], list[str], list[str]]:
    insts = [planner.instance_record(server(i)) for i in range(n)]
    cap = [provider("a", 64, auto_ram), provider("b", 64, auto_ram)] + [
        provider(r, 64, 2048) for r in ("r1", "r2")
    ]
    return planner.plan_targets(
        insts,
        method=method,
        auto_room=planner.rooms(cap, ["a", "b"]),
        reserved_room=planner.rooms(cap, ["r1", "r2"]),
        reserved_order=["r1", "r2"],
    )


def test_auto_spreads_by_room() -> None:
    targets, used, left = _plan("auto", 4)
    assert sorted(targets.values()) == ["a", "a", "b", "b"] and used == [] and left == []


def test_reserved_host_fills_one_after_the_other() -> None:
    targets, used, _left = _plan("reserved_host", 6)
    assert list(targets.values()) == ["r1"] * 4 + ["r2"] * 2 and used == ["r1", "r2"]


def test_auto_priority_falls_back_to_reserved_hosts() -> None:
    targets, used, left = _plan("auto_priority", 3, auto_ram=512)
    assert sorted(targets.values()) == ["a", "b", "r1"] and used == ["r1"] and left == []


def test_rh_priority_falls_back_to_auto() -> None:
    targets, _used, left = _plan("rh_priority", 10)
    assert list(targets.values()).count("r1") == 4 and list(targets.values()).count("r2") == 4
    assert sorted(v for v in targets.values() if v in "ab") == ["a", "b"] and left == []


def test_no_room_is_reported() -> None:
    targets, _, left = _plan("reserved_host", 9)
    assert len(targets) == 8 and left == ["id8"]


def _grouped(policy: str, members: int, *, elsewhere: dict[str, str] | None = None, **rules: int):  # type: ignore[no-untyped-def]
    """Plan ``members`` instances of one server group over hosts a, b, c (plenty of room)."""
    insts = [planner.instance_record(server(i)) for i in range(members)]
    others = elsewhere or {}
    grp = ServerGroup(
        id="g",
        name="g",
        policy=policy,
        members=tuple([r["id"] for r in insts] + list(others)),
        max_server_per_host=rules.get("max_server_per_host"),
    )
    groups = planner.group_placements(insts, [grp], others)
    cap = [provider(h, 64, 65536) for h in ("a", "b", "c")]
    return planner.plan_targets(
        insts,
        method="auto",
        auto_room=planner.rooms(cap, ["a", "b", "c"]),
        reserved_room={},
        reserved_order=[],
        groups=groups,
    )


def test_anti_affinity_puts_members_on_distinct_hosts_and_leaves_the_rest_unplaced() -> None:
    # One member already runs on c: only a and b are left for the three evacuated.
    targets, _used, left = _grouped("anti-affinity", 3, elsewhere={"live": "c"})
    assert sorted(targets.values()) == ["a", "b"] and len(left) == 1
    targets, _used, left = _grouped("anti-affinity", 4, max_server_per_host=2)
    assert sorted(targets.values()).count("a") <= 2 and left == []
    assert all(list(targets.values()).count(h) <= 2 for h in "abc")


def test_affinity_keeps_members_together_where_the_group_runs() -> None:
    targets, _used, left = _grouped("affinity", 3)
    assert len(set(targets.values())) == 1 and left == []
    targets, _used, left = _grouped("affinity", 3, elsewhere={"live": "b"})
    assert set(targets.values()) == {"b"} and left == []


def test_soft_policies_prefer_but_do_not_forbid() -> None:
    # Without the group, auto spreads by free RAM; soft-affinity packs on the member's host.
    targets, _used, left = _grouped("soft-affinity", 5, elsewhere={"live": "c"})
    assert set(targets.values()) == {"c"} and left == []
    targets, _used, left = _grouped("soft-anti-affinity", 5, elsewhere={"live": "c"})
    counts = sorted(list(targets.values()).count(h) for h in "abc")
    assert counts == [1, 2, 2] and left == []
    assert list(targets.values()).count("c") == 1  # c already holds one
