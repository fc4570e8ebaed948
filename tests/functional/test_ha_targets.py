"""Targets honour server-group policy and room; rejoin after a partial recovery.

Nova's 400 on an early unforce is retry-later; a host whose recovery could
not move every instance (no room) still rejoins, keeping those instances.

Against a stepped simulator (whose scheduler refuses an evacuation target that
breaks the instance's server-group policy, as Nova's filters do, and whose
compute API refuses to lift force-down while evacuation records the host's
compute service has not cleaned remain).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from liferaft.errors import RetryLater
from liferaft.ha.simdrive import SimDrive
from tests.functional.test_ha import H1, H2, H3, boot, drive, servers
from tests.support.sim import SimProcess


@pytest.mark.timeout(300)
def test_anti_affinity_target_and_an_early_unforce_is_retried(
    sim: SimProcess, tmp_path: Path
) -> None:
    conn = sim.connect("east")
    try:
        group = conn.compute.create_server_group(name="web", policies=["anti-affinity"])
    finally:
        conn.close()
    hint = {"scheduler_hints": {"group": group.id}}
    (a,) = boot(sim, 1, H1, prefix="web-a", **hint)
    (b,) = boot(sim, 1, H2, prefix="web-b", **hint)
    # H3 gets busier than H2: by free room alone the plan would send web-a next to web-b.
    boot(sim, 3, H3, prefix="filler")

    async def scenario(d: SimDrive) -> Any:
        await d.fault("host-power-loss", H1)
        await d.run_until(lambda: d.settled(H1), max_seconds=900)
        wf = d.workflow(H1)
        assert wf is not None
        plan = d.store.get_step(wf.id, "plan").result
        # H1 is still off: its compute service has not restarted, the evacuation
        # records are not cleaned, and Nova answers 400 -- classified retry-later.
        with pytest.raises(RetryLater, match="not restarted"):
            await d.cloud.force_down_compute(H1, down=False)
        await d.heal("host-power-loss", H1)
        d.service.rejoin(H1)
        await d.run_until(lambda: d.host_state(H1) == "active", max_seconds=900)
        return plan

    plan = drive(sim, tmp_path, scenario, segment={"shared_storage": True})
    assert plan["targets"] == {a: H3} and plan["unplaced"] == []
    got = servers(sim, [a, b])
    assert got[a].compute_host == H3 and got[a].status == "ACTIVE"
    assert got[b].compute_host == H2
    assert sim.control("GET", "/control/double-running")["double_running"] == []


@pytest.mark.timeout(300)
def test_a_host_whose_recovery_left_an_instance_unplaced_still_rejoins(
    sim_factory: Callable[..., SimProcess], tmp_path: Path
) -> None:
    # H2 has room for two tiny instances only: the third of H1 cannot be placed.
    topo = {
        "sites": {
            "east": {"hosts": [{"name": H1}, {"name": H2, "ram_mb": 1024}]},
            "west": {"hosts": 1},
        }
    }
    sim = sim_factory(topology=topo)
    ids = boot(sim, 3, H1)

    async def scenario(d: SimDrive) -> Any:
        await d.fault("host-power-loss", H1)
        await d.run_until(lambda: d.settled(H1), max_seconds=900)
        wf = d.workflow(H1)
        assert wf is not None
        unplaced = d.store.get_step(wf.id, "plan").result["unplaced"]
        await d.heal("host-power-loss", H1)
        rejoin_id = d.service.rejoin(H1)
        await d.run_until(lambda: d.host_state(H1) == "active", max_seconds=900)
        return unplaced, d.store.get_workflow(rejoin_id), d.store.get_step(rejoin_id, "clean")

    unplaced, rejoin, clean = drive(sim, tmp_path, scenario, segment={"shared_storage": True})
    assert len(unplaced) == 1 and rejoin.state == "done"
    # The instance that was never moved stays with its host and is named, not held against it.
    assert clean.result["not_evacuated"] == unplaced
    got = servers(sim, ids)
    assert got[unplaced[0]].compute_host == H1
    assert sorted(s.compute_host for s in got.values()) == [H1, H2, H2]
    assert sim.control("GET", "/control/double-running")["double_running"] == []
