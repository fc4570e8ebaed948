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

from liferaft.ha.notifiers import Notice
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


class Recorder:
    """A notifier that keeps what it was asked to send (the SMTP path has its own test)."""

    capabilities = frozenset({"record"})

    def __init__(self) -> None:
        self.notices: list[Notice] = []

    async def notify(self, notice: Notice) -> list[str]:
        self.notices.append(notice)
        return ["admins"]

    def kinds(self) -> list[str]:
        return [n.kind for n in self.notices]


def drive(
    sim: SimProcess,
    tmp_path: Path,
    scenario: Callable[[SimDrive], Coroutine[Any, Any, Any]],
    *,
    notifier: Recorder | None = None,
    **settings: Any,
) -> Any:
    async def main() -> Any:
        cfg = settings_for(sim.control_url, "east", **settings)
        async with SimDrive(
            control_url=sim.control_url,
            clouds_yaml=sim.clouds_yaml,
            state_dir=tmp_path / "ctl",
            settings=cfg,
            notifier=notifier,
        ) as d:
            return await scenario(d)

    return run(main())


def settled(d: SimDrive, host: str) -> bool:
    """The host is recovered and its workflow is done (see :meth:`SimDrive.settled`)."""
    wf = d.workflow(host)
    return d.settled(host) and wf is not None and wf.state == "done"


@pytest.mark.timeout(300)
def test_a_powered_off_host_is_fenced_and_its_instances_run_elsewhere(
    sim: SimProcess, tmp_path: Path
) -> None:
    ids = boot(sim, 4, H1, stopped=1)

    async def scenario(d: SimDrive) -> Any:
        await d.fault("host-power-loss", H1)
        t0 = d.clock.now()
        t = await d.run_until(lambda: settled(d, H1), max_seconds=900)
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


def evacuations(sim: SimProcess, host: str) -> list[dict[str, Any]]:
    return [e for e in writelog(sim, "evacuate") if e["data"].get("source") == host]


@pytest.mark.timeout(300)
def test_an_isolated_host_is_fenced_before_anything_is_evacuated(
    sim: SimProcess, tmp_path: Path
) -> None:
    ids = boot(sim, 3, H1)

    async def scenario(d: SimDrive) -> None:
        # The management network is cut: the guests still run and write, the BMC answers On.
        await d.fault("host-mgmt-isolation", H1)
        await d.run_until(lambda: settled(d, H1), max_seconds=900)

    drive(sim, tmp_path, scenario, segment={"shared_storage": True})
    actions = [e for e in writelog(sim, "bmc_action") if e["host"] == H1]
    assert [e["data"]["action"] for e in actions] == ["ForceOff"]
    assert actions[0]["seq"] < min(e["seq"] for e in evacuations(sim, H1))
    assert_fenced_before_evacuated(sim, H1)
    assert all(s.compute_host != H1 and s.status == "ACTIVE" for s in servers(sim, ids).values())


@pytest.mark.timeout(300)
def test_a_failed_fence_evacuates_nothing_and_raises_an_alert(
    sim: SimProcess, tmp_path: Path
) -> None:
    ids = boot(sim, 2, H1)
    rec = Recorder()

    def wrong_password(host: str, bmc: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            {
                "driver": "redfish",
                "address": bmc["redfish"]["url"],
                "system_id": bmc["redfish"]["system_id"],
                "username": bmc["username"],
                "password": "not-the-password",
                "verify_tls": False,
            }
        ]

    async def scenario(d: SimDrive) -> Any:
        await d.fault("host-mgmt-isolation", H1)
        await d.run_until(lambda: d.settled(H1, "fence_failed"), max_seconds=900)
        t_end = d.clock.now() + 120
        await d.run_until(lambda: d.clock.now() >= t_end, max_seconds=200)
        return d.workflow(H1)

    wf = drive(
        sim,
        tmp_path,
        scenario,
        notifier=rec,
        fencing=wrong_password,
        segment={"shared_storage": True},
    )
    assert wf is not None and wf.state in ("paused", "running")
    assert evacuations(sim, H1) == []
    assert "fence_failed" in rec.kinds()
    alert = next(n for n in rec.notices if n.kind == "fence_failed")
    title, body = alert.render()
    assert H1 in title and "not-the-password" not in body
    assert all(s.compute_host == H1 for s in servers(sim, ids).values())


@pytest.mark.timeout(300)
def test_a_mass_failure_trips_the_breaker(sim: SimProcess, tmp_path: Path) -> None:
    boot(sim, 1, H1)
    rec = Recorder()

    async def scenario(d: SimDrive) -> Any:
        await d.fault("host-power-loss", H1)
        await d.fault("host-power-loss", H2)
        await d.run_until(lambda: d.service.detector.breaker is not None, max_seconds=600)
        # It stays tripped: nobody is recovered while two of three hosts are silent.
        t_end = d.clock.now() + 120
        await d.run_until(lambda: d.clock.now() >= t_end, max_seconds=200)
        return d.workflow(H1), d.workflow(H2), d.service.status()

    wf1, wf2, status = drive(sim, tmp_path, scenario, notifier=rec)
    assert wf1 is None and wf2 is None
    assert status["breaker"] and "2 of 3" in status["breaker"]
    assert rec.kinds().count("breaker") == 1
    assert evacuations(sim, H1) == [] and writelog(sim, "bmc_action") == []


@pytest.mark.timeout(300)
def test_maintenance_mode_blocks_recovery(sim: SimProcess, tmp_path: Path) -> None:
    boot(sim, 1, H1)

    async def scenario(d: SimDrive) -> Any:
        d.service.set_maintenance(H1, True, reason="firmware upgrade")
        await d.fault("host-power-loss", H1)
        t_end = d.clock.now() + 300
        await d.run_until(lambda: d.clock.now() >= t_end, max_seconds=400)
        return d.workflow(H1), d.host_state(H1)

    wf, state = drive(sim, tmp_path, scenario)
    assert wf is None and state == "active"
    assert evacuations(sim, H1) == [] and writelog(sim, "bmc_action") == []


@pytest.mark.timeout(300)
def test_a_repaired_host_rejoins_cleanly(sim: SimProcess, tmp_path: Path) -> None:
    ids = boot(sim, 2, H1)

    async def scenario(d: SimDrive) -> Any:
        await d.fault("host-power-loss", H1)
        await d.run_until(lambda: settled(d, H1), max_seconds=900)
        await d.heal("host-power-loss", H1)  # repaired: power is back (the host stays off)
        d.service.rejoin(H1)
        await d.run_until(lambda: d.host_state(H1) == "active", max_seconds=900)
        svc = (await d.cloud.list_compute_services(host=H1))[0]
        return svc

    svc = drive(sim, tmp_path, scenario, segment={"shared_storage": True})
    assert svc.state == "up" and svc.status == "enabled" and not svc.forced_down
    # The evacuated instances stay where they run now; nothing runs twice.
    assert all(s.compute_host != H1 and s.status == "ACTIVE" for s in servers(sim, ids).values())
    assert sim.control("GET", "/control/double-running")["double_running"] == []


@pytest.mark.timeout(300)
def test_a_reserved_host_is_used_and_leaves_the_pool(
    sim_factory: Callable[..., SimProcess], tmp_path: Path
) -> None:
    topo = {
        "sites": {
            "east": {
                "hosts": [
                    {"name": H1},
                    {"name": H2},
                    {"name": "east-reserve-1", "reserved": True},
                ]
            },
            "west": {"hosts": 1},
        }
    }
    sim = sim_factory(topology=topo)
    ids = boot(sim, 3, H1)

    async def scenario(d: SimDrive) -> Any:
        await d.fault("host-power-loss", H1)
        await d.run_until(lambda: settled(d, H1), max_seconds=900)
        rows = {h["host"]: h for h in d.service.hosts()}
        svc = (await d.cloud.list_compute_services(host="east-reserve-1"))[0]
        return rows, svc

    rows, svc = drive(
        sim,
        tmp_path,
        scenario,
        segment={
            "shared_storage": True,
            "recovery_method": "reserved_host",
            "reserved_hosts": ["east-reserve-1"],
        },
    )
    assert {s.compute_host for s in servers(sim, ids).values()} == {"east-reserve-1"}
    assert rows["east-reserve-1"]["in_pool"] is False and svc.status == "enabled"
    assert rows[H2]["in_pool"] is False  # never a reserved host
