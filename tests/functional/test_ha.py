"""Compute-host HA against the simulator: detection, fencing through the BMCs, evacuation.

Each test runs the HA service in-process (:class:`liferaft.ha.simdrive.SimDrive`)
against a stepped simulator: the clock moves only when the controller is idle,
straight to its next wake-up.  Faults are the simulator's host faults; the
fence goes through the hosts' Redfish BMCs with sushy; servers are read back
through openstacksdk; the write log is the ground truth for "fenced before
evacuated" and for double-running instances.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest

from liferaft.ha.simdrive import SimDrive, settings_for
from tests.support.sim import SimProcess

H1, H2, H3 = "east-compute-1", "east-compute-2", "east-compute-3"


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


def boot(
    sim: SimProcess, n: int, host: str, *, stopped: int = 0, prefix: str = "vm", **kw: Any
) -> list[str]:
    """Boot ``n`` servers on ``host`` (the first ``stopped`` of them then stopped); returns ids."""
    conn = sim.connect("east")
    try:
        image = conn.image.find_image("cirros", ignore_missing=False)
        ids = []
        for i in range(n):
            s = conn.compute.create_server(
                name=f"{prefix}-{i}",
                image_id=image.id,
                flavor_id="1",
                networks="none",
                availability_zone=f"nova:{host}",
                **kw,
            )
            ids.append(s.id)
        sim.advance(60)
        for sid in ids[:stopped]:
            conn.compute.stop_server(sid)
        sim.advance(60)
        for sid in ids:
            s = conn.compute.get_server(sid)
            assert s.compute_host == host and s.status == (
                "SHUTOFF" if sid in ids[:stopped] else "ACTIVE"
            )
        return ids
    finally:
        conn.close()


def servers(sim: SimProcess, ids: list[str]) -> dict[str, Any]:
    conn = sim.connect("east")
    try:
        return {sid: conn.compute.get_server(sid) for sid in ids}
    finally:
        conn.close()


def writelog(sim: SimProcess, kind: str | None = None) -> list[dict[str, Any]]:
    path = "/control/writelog" + (f"?kind={kind}" if kind else "")
    entries: list[dict[str, Any]] = sim.control("GET", path)["entries"]
    return entries


def assert_fenced_before_evacuated(sim: SimProcess, host: str) -> None:
    """Every evacuation from ``host`` started after its power-off was read back from the BMC."""
    log = writelog(sim)
    evacs = [e for e in log if e["kind"] == "evacuate" and e["data"].get("source") == host]
    assert evacs, "nothing was evacuated"
    off_reads = [
        e
        for e in log
        if e["kind"] == "power_read" and e["host"] == host and e["data"].get("on") is False
    ]
    assert off_reads, "the power-off was never read back"
    first_evac = min(e["seq"] for e in evacs)
    assert min(e["seq"] for e in off_reads) < first_evac
    assert sim.control("GET", "/control/double-running")["double_running"] == []


def drive(
    sim: SimProcess,
    tmp_path: Path,
    scenario: Callable[[SimDrive], Coroutine[Any, Any, Any]],
    **settings: Any,
) -> Any:
    async def main() -> Any:
        cfg = settings_for(sim.control_url, "east", **settings)
        async with SimDrive(
            control_url=sim.control_url,
            clouds_yaml=sim.clouds_yaml,
            state_dir=tmp_path / "ctl",
            settings=cfg,
        ) as d:
            return await scenario(d)

    return run(main())


@pytest.mark.timeout(300)
def test_a_powered_off_host_is_fenced_and_its_instances_run_elsewhere(
    sim: SimProcess, tmp_path: Path
) -> None:
    ids = boot(sim, 4, H1, stopped=1)

    async def scenario(d: SimDrive) -> Any:
        await d.fault("host-power-loss", H1)
        t0 = d.clock.now()
        t = await d.run_until(lambda: d.host_state(H1) == "recovered", max_seconds=900)
        wf = d.workflow(H1)
        assert wf is not None and wf.state == "done", wf
        report = d.store.get_step(wf.id, "report").result
        return t - t0, report

    elapsed, report = drive(sim, tmp_path, scenario, segment={"shared_storage": True})
    assert report["recovered"] == 4 and report["failed"] == [], report
    after = servers(sim, ids)
    for i, sid in enumerate(ids):
        s = after[sid]
        assert s.compute_host in (H2, H3), s
        # Each instance in the power state it had before: the stopped one stays stopped.
        assert s.status == ("SHUTOFF" if i == 0 else "ACTIVE"), (i, s.status)
    assert_fenced_before_evacuated(sim, H1)
    # Detection (60 s service down time + re-check) then fence and evacuate: minutes, not hours.
    assert 60 <= elapsed < 300, elapsed
