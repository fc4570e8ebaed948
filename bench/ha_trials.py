"""Fault trials of ``bench/ha.py``: randomized and targeted, counted from the simulator's write log.

**Randomized trials** run in *lanes* against one simulator and one
in-process controller on the simulator's clock (:class:`SimDrive`): each
lane owns a few hosts and runs one trial after another on them (a random
fault on a random host of the lane, driven until the host is recovered or
an observation window passes, then healed and, if it was recovered,
rejoined), so several trials overlap in simulated time -- and a lane's
evacuations land on hosts that another lane may be failing, as in a real
segment.  Nothing is restarted between trials: the fault is healed and the
host rejoined through the control API and the controller's rejoin.

**Targeted trials** need a controller that dies, so they run real
controller processes (``python -m liferaft.ha.simdrive``) that ``SIGKILL``
themselves at an engine kill hook, on a small simulator of their own: a kill
right after the fence is recorded (before anything is evacuated), and a
leadership change in the middle of an evacuation (the leader dies after the
cloud accepted an evacuation but before it recorded it; another holder
takes the lease once it expires and finishes).  Long flapping (isolated
long enough to be detected, then back) is a targeted trial of the lanes.

Safety is counted only from the simulator: ``GET /control/writelog``
(unfenced evacuations: an evacuation from a host not read back as powered
off since it last came on) and ``GET /control/double-running``.
"""

from __future__ import annotations

import functools
import json
import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tests.support.sim import SimProcess

from liferaft.ha.simdrive import SimDrive, settings_for

ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")
FAULTS = [
    "host-power-loss",
    "host-mgmt-isolation",
    "host-flapping",
    "compute-hung",
    "host-storage-loss",
]
#: Simulated seconds a fault is watched before it counts as not recovered (undetected).
OBSERVE = 120.0
RECHECK = 5.0
TTL = 30.0


def unfenced_evacuations(entries: list[dict[str, Any]]) -> int:
    """Evacuations from a host not read back as off since it last powered on."""
    off_read: dict[str | None, bool] = {}
    bad = 0
    for e in entries:
        host = e.get("host")
        if e["kind"] == "power" and e["data"].get("on") is True:
            off_read[host] = False
        elif e["kind"] == "power_read" and e["data"].get("on") is False:
            off_read[host] = True
        elif e["kind"] == "evacuate" and not off_read.get(e["data"].get("source"), False):
            bad += 1
    return bad


def safety(sim: SimProcess) -> dict[str, int]:
    log = sim.control("GET", "/control/writelog")["entries"]
    double = sim.control("GET", "/control/double-running")["double_running"]
    return {
        "double_running": len(double),
        "unfenced_evacuations": unfenced_evacuations(log),
        "evacuations": sum(1 for e in log if e["kind"] == "evacuate"),
    }


def waited(sim: SimProcess, fn: Callable[[], T]) -> T:
    """Run one blocking cloud call, moving a stepped clock past its simulated API latency."""
    with ThreadPoolExecutor(max_workers=1) as ex:
        fut = ex.submit(fn)
        while True:
            try:
                return fut.result(timeout=0.005)
            except TimeoutError:
                pass
            c = sim.control("GET", "/control/clock")
            if c.get("waiting_calls") and c.get("next_call_at") is not None:
                sim.advance(max(float(c["next_call_at"]) - float(c["now"]), 0.0) + 1e-6)


def boot_on(sim: SimProcess, per_host: dict[str, int], *, step: float = 30.0) -> list[str]:
    """Boot servers pinned to hosts (``nova:HOST``) and move the clock until all are ACTIVE.

    One multi-create request per host and JSON listings (no openstacksdk resource
    objects: they cost tens of ms of CPU per server).  Ids grouped by host, in
    ``per_host`` order.
    """
    conn = sim.connect("east")
    try:
        image = waited(sim, lambda: conn.image.find_image("cirros", ignore_missing=False))
        for host, n in per_host.items():
            if n <= 0:
                continue
            body = {
                "server": {
                    "name": f"b-{host}",
                    "imageRef": image.id,
                    "flavorRef": "1",
                    "networks": "none",
                    "availability_zone": f"nova:{host}",
                    "min_count": n,
                    "max_count": n,
                }
            }
            r = waited(
                sim,
                functools.partial(conn.compute.post, "/servers", json=body, microversion="2.37"),
            )
            if r.status_code >= 400:
                raise RuntimeError(f"boot on {host}: {r.status_code} {r.text}")

        def listed(**params: str) -> list[dict[str, Any]]:
            q = {"all_tenants": "1", "limit": "1000", **params}
            r = waited(sim, lambda: conn.compute.get("/servers/detail", params=q))
            return list(r.json()["servers"])

        for _ in range(400):
            sim.advance(step)
            if not listed(status="BUILD"):
                break
        else:
            raise RuntimeError("the servers did not all boot")
        ids: list[str] = []
        for host, n in per_host.items():
            mine = sorted(listed(host=host), key=lambda d: (d["created"], d["name"], d["id"]))
            if len(mine) < n or any(d["status"] != "ACTIVE" for d in mine):
                raise RuntimeError(f"{host}: {len(mine)} servers, not all ACTIVE")
            ids += [d["id"] for d in mine]
        return ids
    finally:
        conn.close()


@dataclass
class Lane:
    pool: list[str]
    plan: list[tuple[str, dict[str, Any]]]
    rng: random.Random
    outcomes: dict[str, int] = field(default_factory=dict)
    stuck: list[str] = field(default_factory=list)
    phase: str = "next"
    kind: str = ""
    host: str = ""
    until: float = 0.0

    def ready(self, d: SimDrive) -> bool:
        if self.phase == "idle":
            return False
        if self.phase == "fault":
            state = d.host_state(self.host)
            now = d.clock.now()
            # A recovery under way is let finish (up to 600 s more) before the fault is healed.
            return state in ("recovered", "fence_failed") or (
                now >= self.until and (state != "recovering" or now >= self.until + 600)
            )
        if self.phase == "rejoin":
            return d.host_state(self.host) == "active" or d.clock.now() >= self.until
        if self.phase == "settle":
            return d.clock.now() >= self.until
        return True  # next

    def count(self, key: str) -> None:
        self.outcomes[key] = self.outcomes.get(key, 0) + 1

    async def act(self, d: SimDrive) -> None:
        now = d.clock.now()
        if self.phase == "next":
            if not self.plan or not self.pool:
                self.phase = "idle"
                return
            self.kind, extra = self.plan.pop(0)
            self.host = self.rng.choice(self.pool)
            await d.fault(self.kind, self.host, **extra)
            self.phase, self.until = "fault", now + OBSERVE
        elif self.phase == "fault":
            state = d.host_state(self.host) or "?"
            self.count(f"{self.kind}:{state}")
            await d.heal(self.kind, self.host)
            if state == "recovered":
                d.service.rejoin(self.host)
                self.phase, self.until = "rejoin", now + 600
            elif state == "fence_failed":
                self.pool.remove(self.host)  # needs a human; the lane goes on without it
                self.phase = "next"
            else:  # undetected (storage loss) or under the re-check: let it settle
                self.phase, self.until = "settle", now + 30
        elif self.phase == "rejoin":
            if d.host_state(self.host) != "active":
                wf = d.rejoin_workflow(self.host)
                why = "no workflow" if wf is None else f"{wf.state}: {wf.error}"
                self.count(f"rejoin-stuck:{d.host_state(self.host)}")
                self.stuck.append(f"{self.host} at {now:.0f}: {why}")
                self.pool.remove(self.host)
            self.phase = "next"
        else:  # settle
            self.phase = "next"


async def lane_trials(
    count: int, work: Path, *, seed: int = 7, lanes: int = 12, per_lane: int = 2
) -> dict[str, Any]:
    """``count`` randomized trials (plus three targeted ones) in ``lanes`` lanes of hosts."""
    rng = random.Random(seed)
    n_hosts = lanes * per_lane + 2
    topo = {"sites": {"east": {"hosts": n_hosts}, "west": {"hosts": 1}}}
    sim = SimProcess(work / "trials", topology=topo)
    try:
        hosts = [f"east-compute-{i}" for i in range(1, n_hosts + 1)]
        boot_on(sim, {h: 2 for h in hosts})
        cfg = settings_for(
            sim.control_url,
            "east",
            segment={"shared_storage": True, "max_failed_hosts": lanes},
            poll_interval=5.0,
            recheck_delay=RECHECK,
            breaker_max_hosts=lanes,
        )
        targeted: list[tuple[str, dict[str, Any]]] = [
            ("host-mgmt-isolation", {}),
            ("host-power-loss", {}),
            # Isolated long enough to be declared down, then back: fenced, never run twice.
            ("host-flapping", {"period": 140.0, "isolated_for": 75.0}),
        ]
        plans: list[list[tuple[str, dict[str, Any]]]] = [[] for _ in range(lanes)]
        for i, t in enumerate(targeted):
            plans[i % lanes].append(t)
        for i in range(count):
            kind = rng.choice(FAULTS)
            plans[i % lanes].append((kind, {"period": 40.0} if kind == "host-flapping" else {}))
        lane_list = [
            Lane(hosts[i * per_lane : (i + 1) * per_lane], plans[i], random.Random(seed + i))
            for i in range(lanes)
        ]
        async with SimDrive(
            control_url=sim.control_url,
            clouds_yaml=sim.clouds_yaml,
            state_dir=work / "ctl-trials",
            settings=cfg,
        ) as d:
            t0 = d.clock.now()
            while any(lane.phase != "idle" for lane in lane_list):
                for lane in lane_list:
                    while lane.ready(d):
                        await lane.act(d)
                if any(lane.phase != "idle" for lane in lane_list):
                    await d.run_until(
                        lambda: any(lane.ready(d) for lane in lane_list), max_seconds=5000
                    )
            sim_seconds = d.clock.now() - t0
        outcomes: dict[str, int] = {}
        for lane in lane_list:
            for k, v in lane.outcomes.items():
                outcomes[k] = outcomes.get(k, 0) + v
        return {
            "count": count + len(targeted),
            "targeted": len(targeted),
            "lanes": lanes,
            "simulated_s": round(sim_seconds, 1),
            "outcomes": dict(sorted(outcomes.items())),
            "rejoins_stuck": [x for lane in lane_list for x in lane.stuck],
            **safety(sim),
        }
    finally:
        sim.stop()


def _incarnation(sim: SimProcess, state: Path, host: str, i: int, kill_at: str | None) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFERAFT_")}
    if kill_at:
        env["LIFERAFT_KILL_AT"] = kill_at
    cmd = [
        sys.executable,
        "-m",
        "liferaft.ha.simdrive",
        "--control-url",
        sim.control_url,
        "--clouds-yaml",
        sim.clouds_yaml,
        "--state-dir",
        str(state),
        "--host",
        host,
        "--holder",
        f"ctl-{i}",
        "--ttl",
        str(TTL),
        "--settings",
        json.dumps({"segment": {"shared_storage": True}}),
    ]
    r = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    if r.returncode not in (0, -signal.SIGKILL):
        raise RuntimeError(f"controller {i} ({kill_at}): exit {r.returncode}\n{r.stderr[-2000:]}")
    return r.returncode


def kill_trials(work: Path) -> dict[str, Any]:
    """A kill between fence and evacuation, and a leadership change mid-evacuation."""
    sim = SimProcess(
        work / "kill", topology={"sites": {"east": {"hosts": 4}, "west": {"hosts": 1}}}
    )
    try:
        h1, h2 = "east-compute-1", "east-compute-2"
        ids = boot_on(sim, {h1: 2, h2: 2})
        state = work / "ctl-kill"
        scenarios = [
            (h1, ["after_record@fence"]),  # fenced, recorded, nothing evacuated yet
            (h2, [f"before_record@evacuate:{ids[2]}"]),  # evacuation accepted, not recorded
        ]
        i = 0
        outcomes: dict[str, int] = {}
        for host, kills in scenarios:
            sim.control(
                "POST", "/control/faults", {"kind": "host-mgmt-isolation", "target": f"east/{host}"}
            )
            for spec in [*kills, None]:
                rc = _incarnation(sim, state, host, i, spec)
                i += 1
                sim.advance(TTL + 1)  # the previous leader's lease expires; a new holder leads
                if spec is not None and rc != -signal.SIGKILL:
                    outcomes["kill-not-reached"] = outcomes.get("kill-not-reached", 0) + 1
            key = "kill-after-fence" if host == h1 else "leadership-change-mid-evacuation"
            outcomes[key] = outcomes.get(key, 0) + 1
        return {"count": len(scenarios), "outcomes": outcomes, **safety(sim)}
    finally:
        sim.stop()
