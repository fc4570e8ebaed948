"""Run modes: quarantine state from the runs, stop order, final-sync params, test-mode graph."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import pytest

from liferaft.recovery import cleanup, disaster, groundwork, isolation, planned, quarantine
from liferaft.recovery.modes import MODES, child_workflows


def run(i: str, mode: str, site: str, at: float) -> dict[str, Any]:
    return {"id": i, "mode": mode, "protected_site": site, "requested_at": at, "workflow_id": i}


def test_quarantine_follows_disaster_and_planned_runs_until_release() -> None:
    runs = [
        run("t1", "test", "east", 1),
        run("d1", "disaster", "east", 2),
        run("p1", "planned", "north", 3),
    ]
    q = quarantine.quarantined(runs)
    assert {s: [r["id"] for r in rs] for s, rs in q.items()} == {"east": ["d1"], "north": ["p1"]}
    runs.append(run("r1", "release", "east", 4))
    assert sorted(quarantine.quarantined(runs)) == ["north"]
    # A later disaster run quarantines it again; order is by time, not by list position.
    runs.insert(0, run("d2", "disaster", "east", 5))
    assert [r["id"] for r in quarantine.quarantined(runs)["east"]] == ["d2"]
    assert quarantine.quarantined([run("t", "test", "east", 1)]) == {}


def manifest() -> dict[str, Any]:
    def srv(i: str, rank: int, nets: list[str]) -> dict[str, Any]:
        return {
            "id": i,
            "name": f"n{i}",
            "quiesce_rank": rank,
            "tier": 0,
            "ports": [{"network_name": n} for n in nets],
            "volumes": [],
        }

    return {
        "checkpoint_id": "c1",
        "group": {"id": "g", "name": "vnf", "site": "east", "recovery_site": "west", "policy": "p"},
        "quiesce_order": ["b", "a"],
        "servers": [srv("a", 2, ["private"]), srv("b", 1, ["private", "storage"]), srv("c", 3, [])],
        "volumes": [{"id": "v1"}, {"id": "v2"}],
    }


def test_planned_stops_in_the_quiesce_order_and_syncs_a_full_crash_consistent_checkpoint() -> None:
    m = manifest()
    assert planned.order(m) == [1, 0, 2]  # b, a (the recorded order), then c (not in it)
    p = planned.sync_params(m, "run-sync-0", "default")
    assert p["parent_id"] is None and p["chain_id"] == "run-sync-0"
    assert p["consistency"] == "crash-consistent"
    assert [v["id"] for v in p["volumes"]] == ["v1", "v2"]
    assert [(s["id"], s["rank"]) for s in p["servers"]] == [("a", 2), ("b", 1), ("c", 3)]
    assert (p["site"], p["recovery_site"], p["policy"]) == ("east", "west", "default")


def params(mode: str) -> dict[str, Any]:
    return {"run_id": "r" * 32, "mode": mode, "groups": [{"manifest": manifest()}]}


def test_test_mode_isolates_every_network_before_any_port() -> None:
    assert isolation.networks_of(params("test")) == ["private", "storage"]
    assert isolation.copy_name("r" * 32, "private") == "lr-test-rrrrrrrrrrrr-private"
    deps: Any = SimpleNamespace(site="west", cloud=None)
    d = disaster.build(deps, params("test"))
    names = [s.name for s in d.steps]
    assert isolation.STEP in names
    for s in d.steps:
        if s.name.startswith("ports:"):
            # (and after the group's recreated security groups, which they are put in)
            assert s.depends_on == (isolation.STEP, f"secgroups:{s.name.split(':')[1]}")
    d = disaster.build(deps, params("disaster"))
    assert isolation.STEP not in [s.name for s in d.steps]


def test_planned_graph_chains_stops_then_sync_then_recover() -> None:
    d = planned.build(Any, {**params("planned"), "protected_site": "east"})  # type: ignore[arg-type]
    dep = {s.name: s.depends_on for s in d.steps}
    assert dep["stop:g0:s1"] == ()
    assert dep["stop:g0:s0"] == ("stop:g0:s1",)
    assert dep["stop:g0:s2"] == ("stop:g0:s0",)
    assert dep["sync:g0"] == ("stop:g0:s2",)
    assert dep["recover"] == ("sync:g0",)
    assert {s.site for s in d.steps if s.name.startswith("stop:")} == {"east"}


def test_cleanup_deletes_servers_first_and_networks_last() -> None:
    deps: Any = SimpleNamespace(cloud=SimpleNamespace(site="west"))
    d = cleanup.build(deps, {"run_id": "r"})
    order = [s.name for s in d.steps]
    assert order.index("servers") < order.index("ports") < order.index("subnets")
    assert order.index("subnets") < order.index("networks")
    assert order.index("servers") < order.index("volumes")
    assert cleanup.workflow_id("r") == "r-cleanup"


def test_cleanup_deletes_groups_and_key_pairs_after_what_uses_them() -> None:
    deps: Any = SimpleNamespace(cloud=SimpleNamespace(site="west"))
    dep = {s.name: s.depends_on for s in cleanup.build(deps, {"run_id": "r"}).steps}
    # Neutron refuses to delete a security group a port is in; servers hold their group.
    assert dep["security_groups"] == ("ports",)
    assert dep["server_groups"] == ("servers",) and dep["keypairs"] == ("servers",)
    # Only what the run created: adopted ones (recorded as "adopted:<kind>") are not deleted.
    kinds = {k for ks in cleanup.STEPS.values() for k in ks}
    assert {"security_group", "server_group", "keypair"} <= kinds
    assert not any(k.startswith("adopted:") for k in kinds)


@pytest.mark.parametrize("mode", MODES)
def test_child_workflows(mode: str) -> None:
    r = run("x", mode, "east", 1)
    assert child_workflows(r) == (["x-recover"] if mode in ("planned", "failback") else [])


def test_groundwork_records_what_existed_as_adopted_and_its_own_make_as_made() -> None:
    class Ctx:
        def __init__(self, recorded: list[tuple[str, str]]) -> None:
            self.recorded = recorded

        def resources(self) -> list[Any]:
            return [SimpleNamespace(kind=k, key=n) for k, n in self.recorded]

        def tag(self, name: str) -> Any:
            return SimpleNamespace(name=name)

        def record_intent(self, *, kind: str, name: str, site: str) -> None:
            self.recorded.append((f"intent:{kind}", name))

    async def found(_t: Any) -> object:
        return object()

    async def missing(_t: Any) -> None:
        return None

    kind: Any = groundwork._kind
    # Nothing there yet: the step notes its intent, makes it, cleanup deletes it.
    fresh = Ctx([])
    assert asyncio.run(kind(fresh, "server_group", "g", missing, "west")) == "server_group"
    assert fresh.recorded == [("intent:server_group", "g")]
    # Killed after the create, before the ledger: the replay finds it, and it is the run's.
    assert asyncio.run(kind(fresh, "server_group", "g", found, "west")) == "server_group"
    # There before the run: adopted, kept by cleanup (no intent noted).
    there = Ctx([])
    assert asyncio.run(kind(there, "keypair", "ops", found, "west")) == "adopted:keypair"
    assert there.recorded == []
    # Made and recorded by an earlier attempt of the step, found on replay: still the run's.
    made = Ctx([("keypair", "ops")])
    assert asyncio.run(kind(made, "keypair", "ops", found, "west")) == "keypair"
