"""Kill the controller at every instant that matters while it creates servers, volumes and ports.

Each incarnation is a real controller process (``tests/support/controller.py``)
that drives the ``fleet`` workflow against the simulator through the real
openstacksdk adapter and ``SIGKILL``s itself at an armed hook -- including
``after_cloud_call``, after the cloud accepted a create and before the
controller recorded anything.  The test then moves the simulator's clock
past the dead leader's lease and starts the next incarnation, which takes
the lease under a new epoch and replays.  After every kill, and at the end,
the cloud's own API must show no duplicate; at the end it holds exactly the
intended resources, every step is done exactly once, and the ledger and the
step results name exactly those resources.
"""

from __future__ import annotations

import json
import signal
from collections import Counter
from pathlib import Path

import pytest

from liferaft.engine.hooks import HOOKS
from liferaft.store import Store, sqlite_url
from tests.support.controller import (
    WORKFLOW_ID,
    ControllerProcess,
    build_fleet,
    cloud_inventory,
    fleet_names,
    fleet_params,
)
from tests.support.sim import SimProcess

TTL = 30.0
N = 3

#: Every instant that matters, on every kind of resource (sorted into the order
#: the steps run in, one at a time, before use).
KILLS = [
    "before_step@volume-0",
    "before_call@volume-0",
    "before_cloud_call@volume-0",
    "after_cloud_call@volume-0",
    "after_cloud_call@port-0",
    "before_step@server-0",
    "after_cloud_call@server-0",
    "after_ledger@volume-1",
    "before_record@volume-1",
    "after_record@volume-1",
    "after_ledger@port-1",
    "before_cloud_call@server-1",
    "before_record@server-1",
    "after_cloud_call@port-2",
    "after_cloud_call@server-2",
    "before_workflow_record",
]


def assert_no_duplicates(sim: SimProcess) -> None:
    inv = cloud_inventory(sim)
    dups = {kind: {n: c for n, c in names.items() if c > 1} for kind, names in inv.items()}
    assert not any(dups.values()), dups


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_killed_at_every_hook_the_fleet_is_made_exactly_once(
    sim: SimProcess, tmp_path: Path
) -> None:
    kill_at_every_hook(sim, sqlite_url(tmp_path / "state"), tmp_path, KILLS)


def kill_at_every_hook(sim: SimProcess, store_url: str, tmp_path: Path, specs: list[str]) -> None:
    """Kill one incarnation at each of ``specs`` in turn, then let one finish; check everything."""
    params = fleet_params(sim, N, concurrency=1)
    # Ports need the simulator's Neutron tag API (an idempotent port is found by its tags).
    with_ports = params["ports"]
    kinds = ("server", "volume", "port") if with_ports else ("server", "volume")
    # Steps run one at a time, in the definition's topological order: kill in that order.
    order = [*build_fleet({})(params).order, ""]
    kills = sorted(
        (k for k in specs if with_ports or "@port-" not in k),
        key=lambda k: (order.index(k.partition("@")[2]), list(HOOKS).index(k.partition("@")[0])),
    )

    def incarnation(i: int, kill_at: str | None) -> ControllerProcess:
        return ControllerProcess(
            store=store_url,
            sim=sim,
            holder=f"ctl-{i}",
            params=params,
            log_dir=tmp_path,
            ttl=TTL,
            exit_when_settled=True,
            kill_at=kill_at,
        )

    for i, spec in enumerate(kills):
        ctl = incarnation(i, spec)
        try:
            rc = ctl.wait()
        finally:
            ctl.stop()  # never leave a controller behind, whatever failed
        assert rc == -signal.SIGKILL, f"{spec}: expected to die there, exit {rc}\n{ctl.lines}"
        assert_no_duplicates(sim)
        sim.advance(TTL + 1)  # the dead leader's lease expires

    last = incarnation(len(kills), None)
    try:
        out = last.expect("settled")
        assert last.wait() == 0
    finally:
        last.stop()
    state, _, detail = out.partition(" ")
    assert state == "done", out
    assert json.loads(detail)["epoch"] == len(kills) + 1

    # The cloud, read through its own API, holds exactly the intended resources.
    inv = cloud_inventory(sim)
    names = fleet_names(N, ports=with_ports)
    for kind in ("server", "volume", "port"):
        assert inv[kind] == Counter({n: 1 for n in names[kind]}), (kind, inv[kind])

    conn = sim.connect("east")
    try:
        cloud_ids = {
            "server": {s.name: s.id for s in conn.compute.servers(all_projects=True)},
            "volume": {v.name: v.id for v in conn.block_storage.volumes(all_projects=True)},
            "port": {p.name: p.id for p in conn.network.ports()},
        }
        for i, server in enumerate(names["server"]):
            bound = [p.name for p in conn.network.ports(device_id=cloud_ids["server"][server])]
            assert bound == ([names["port"][i]] if with_ports else [""]), (server, bound)
    finally:
        conn.close()

    with Store(store_url, migrate=False) as store:
        ledger = store.list_resources(run_id=WORKFLOW_ID)
        assert len(ledger) == len(kinds) * N
        for r in ledger:
            assert cloud_ids[r.kind][r.key] == r.cloud_id, r
        steps = {s.name: s for s in store.get_steps(WORKFLOW_ID)}
        assert all(s.state == "done" for s in steps.values()), steps
        for kind in kinds:
            for i in range(N):
                assert steps[f"{kind}-{i}"].result == {"id": cloud_ids[kind][names[kind][i]]}
        events = store.events(workflow_id=WORKFLOW_ID, limit=100000)
        done = Counter(e.step for e in events if e.to_state == "done" and e.step)
        assert done == Counter({name: 1 for name in steps}), done
        replays = {e.step for e in events if e.detail.get("replay")}
        # Exactly the steps killed after their `running` record was committed are replayed.
        unrecorded = ("before_step", "after_record", "before_workflow_record")
        hooks = [k.partition("@") for k in kills]
        assert replays == {step for hook, _, step in hooks if step and hook not in unrecorded}
        assert [e.id for e in events] == sorted(e.id for e in events)
        # Each incarnation wrote under its own epoch, never an older one after a newer one.
        epochs = [e.epoch for e in events]
        assert epochs == sorted(epochs)
