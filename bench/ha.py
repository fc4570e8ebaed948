"""Benchmark compute-host HA on the simulator's clock: recovery time against the physical limit, and safety.

**Evacuation** (``realistic`` latency profile): hosts carrying 10, 100 and
1,000 instances lose power (1,000: two hosts of 500).  Measured on the
simulator's clock, from the power loss to every instance running again,
split into detection (to the confirmed failure), fencing (to the power-off
read back from the Redfish BMC) and evacuation (to the last instance
running).  Compared with

* the **physical limit** ``detection window + fence + ceil(N / C) x boot``:
  the detection window is the compute service's down time (60 s, Nova's
  ``service_down_time``) plus the configured re-check (5 s); the fence is
  the BMC's power latency; ``C`` is the concurrency the cloud allows
  (``max_concurrent_evacuations``, 20); ``boot`` is one evacuation
  (evacuate + boot latency of the profile);
* **one-by-one evacuation as freezer-dr does it** (evacuate, wait until
  the instance runs, next): the same detection and fence, then ``N x boot``.

**Trials**: randomized single-host faults (power loss, management
isolation, flapping, hung compute, storage loss) on random hosts with
instances, each driven until the host is recovered (or 300 s without a
recovery), then healed and rejoined; plus targeted trials (isolation with
running guests, fence on an already dead host).  Afterwards the write log
(``GET /control/writelog``) is checked for **unfenced evacuations** (an
evacuation from a host not read back as powered off since it last came on)
and ``GET /control/double-running`` for **double-running instances**.

``--quick`` runs 10 and 100 instances and 20 trials (under a minute);
``--json`` prints one JSON object; results also go to ``bench/results/ha.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.sim import SimProcess  # noqa: E402

from liferaft.ha.simdrive import SimDrive, settings_for  # noqa: E402
from liferaft.sim.topology import PROFILES  # noqa: E402

CONCURRENCY = 20
RECHECK = 5.0
SERVICE_DOWN = 60.0
FAULTS = [
    "host-power-loss",
    "host-mgmt-isolation",
    "host-flapping",
    "compute-hung",
    "host-storage-loss",
]


def boot_many(sim: SimProcess, per_host: dict[str, int]) -> list[str]:
    conn = sim.connect("east")
    try:
        image = conn.image.find_image("cirros", ignore_missing=False)
        ids: list[str] = []
        for host, n in per_host.items():
            for i in range(n):
                s = conn.compute.create_server(
                    name=f"b-{host}-{i}",
                    image_id=image.id,
                    flavor_id="1",
                    networks="none",
                    availability_zone=f"nova:{host}",
                )
                ids.append(s.id)
        for _ in range(400):
            sim.advance(30)
            active = sum(1 for s in conn.compute.servers(all_projects=True) if s.status == "ACTIVE")
            if active >= len(ids):
                return ids
        raise RuntimeError("the servers did not all boot")
    finally:
        conn.close()


async def evacuation_case(n: int, work: Path) -> dict[str, Any]:
    hosts = 8
    failed = ["east-compute-1"] if n <= 500 else ["east-compute-1", "east-compute-2"]
    # The realistic profile, except the 50 ms per API call: on a stepped clock a call
    # would wait for somebody to move the clock, and it is noise next to 35 s boots.
    latency = PROFILES["realistic"].model_dump() | {"api_call": 0.0}
    topo = {"latency": latency, "sites": {"east": {"hosts": hosts}, "west": {"hosts": 1}}}
    sim = SimProcess(work / f"evac-{n}", topology=topo)
    try:
        per = {h: n // len(failed) for h in failed}
        boot_many(sim, per)
        cfg = settings_for(
            sim.control_url,
            "east",
            segment={"shared_storage": True, "max_failed_hosts": len(failed)},
            poll_interval=2.0,
            recheck_delay=RECHECK,
            max_concurrent_evacuations=CONCURRENCY,
            breaker_max_hosts=hosts,
        )
        async with SimDrive(
            control_url=sim.control_url,
            clouds_yaml=sim.clouds_yaml,
            state_dir=work / f"ctl-{n}",
            settings=cfg,
        ) as d:
            t_fail = d.clock.now()
            for h in failed:
                await d.fault("host-power-loss", h)

            def settled() -> bool:
                wfs = [d.workflow(h) for h in failed]
                return all(w is not None and w.state in ("done", "failed", "paused") for w in wfs)

            await d.run_until(settled, max_seconds=20000, max_step=2.0)
            reports, fences, detects = [], [], []
            for h in failed:
                wf = d.workflow(h)
                assert wf is not None and wf.state == "done", (
                    (wf.id, wf.state, wf.error) if wf else h
                )
                reports.append(d.store.get_step(wf.id, "report").result)
                fences.append(float(d.store.get_step(wf.id, "fence").result["at"]))
                detects.append(float(wf.params["detected_at"]))
            recovered = sum(r["recovered"] for r in reports)
            done_at = max(
                float(s.result["at"])
                for h in failed
                for s in d.store.get_steps(d.workflow(h).id)  # type: ignore[union-attr]
                if s.name.startswith("evacuate:")
            )
        lat = PROFILES["realistic"]
        boot = lat.evacuate + lat.boot
        detect_window = SERVICE_DOWN + RECHECK
        limit = detect_window + lat.power + math.ceil(n / CONCURRENCY) * boot
        sequential = detect_window + lat.power + n * boot
        return {
            "instances": n,
            "recovered": recovered,
            "liferaft_s": round(done_at - t_fail, 1),
            "limit_s": round(limit, 1),
            "sequential_s": round(sequential, 1),
            "ratio_to_limit": round((done_at - t_fail) / limit, 3),
            "detect_s": round(max(detects) - t_fail, 1),
            "fence_s": round(max(fences) - max(detects), 1),
            "evacuate_s": round(done_at - max(fences), 1),
        }
    finally:
        sim.stop()


def unfenced_evacuations(entries: list[dict[str, Any]]) -> int:
    """Evacuations from a host not read back as off since it last powered on."""
    off_read: dict[str, bool] = {}
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


async def trials(count: int, work: Path, seed: int = 7) -> dict[str, Any]:
    rng = random.Random(seed)
    topo = {"sites": {"east": {"hosts": 6}, "west": {"hosts": 1}}}
    sim = SimProcess(work / "trials", topology=topo)
    try:
        pool = [f"east-compute-{i}" for i in range(1, 7)]
        boot_many(sim, {h: 2 for h in pool})
        cfg = settings_for(
            sim.control_url,
            "east",
            segment={"shared_storage": True},
            poll_interval=5.0,
            recheck_delay=RECHECK,
            breaker_max_hosts=2,
        )
        outcomes: dict[str, int] = {}
        async with SimDrive(
            control_url=sim.control_url,
            clouds_yaml=sim.clouds_yaml,
            state_dir=work / "ctl-trials",
            settings=cfg,
        ) as d:
            targeted = [("host-mgmt-isolation", pool[0]), ("host-power-loss", pool[1])]
            plan = targeted + [
                (rng.choice(FAULTS), rng.choice(pool)) for _ in range(max(0, count - len(targeted)))
            ]
            for kind, host in plan:
                extra = {"period": 40.0} if kind == "host-flapping" else {}
                await d.fault(kind, host, **extra)
                t_end = d.clock.now() + 300
                await d.run_until(
                    lambda h=host, t=t_end: (
                        d.host_state(h) in ("recovered", "fence_failed") or d.clock.now() >= t
                    ),  # type: ignore[misc]
                    max_seconds=400,
                )
                state = d.host_state(host) or "?"
                outcomes[f"{kind}:{state}"] = outcomes.get(f"{kind}:{state}", 0) + 1
                await d.heal(kind, host)
                if state == "recovered":
                    d.service.rejoin(host)
                    await d.run_until(lambda h=host: d.host_state(h) == "active", max_seconds=600)  # type: ignore[misc]
                else:
                    # Undetected (storage loss) or under the re-check: let it settle before the next.
                    t2 = d.clock.now() + 30
                    await d.run_until(lambda t=t2: d.clock.now() >= t, max_seconds=60)  # type: ignore[misc]
        log = sim.control("GET", "/control/writelog")["entries"]
        double = sim.control("GET", "/control/double-running")["double_running"]
        return {
            "count": len(plan),
            "targeted": len(targeted),
            "double_running": len(double),
            "unfenced_evacuations": unfenced_evacuations(log),
            "evacuations": sum(1 for e in log if e["kind"] == "evacuate"),
            "outcomes": outcomes,
        }
    finally:
        sim.stop()


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    sizes = [10, 100] if args.quick else [10, 100, 1000]
    n_trials = args.trials or (20 if args.quick else 1000)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-ha-") as tmp:
        work = Path(tmp)
        evac = [await evacuation_case(n, work) for n in sizes]
        tri = await trials(n_trials, work)
    return {
        "quick": args.quick,
        "concurrency": CONCURRENCY,
        "evacuation": evac,
        "trials": tri,
        "target_ratio_at_100": 1.3,
        "real_seconds": round(time.monotonic() - started, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="10 and 100 instances, 20 trials")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--trials", type=int, default=0, help="number of fault trials")
    args = ap.parse_args()
    result = asyncio.run(amain(args))
    out = ROOT / "bench" / "results" / "ha.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result))
        return
    for e in result["evacuation"]:
        print(
            f"{e['instances']:>5} instances: {e['liferaft_s']:8.1f} s (limit {e['limit_s']:.1f} s, "
            f"x{e['ratio_to_limit']}; one-by-one {e['sequential_s']:.1f} s) "
            f"detect {e['detect_s']} fence {e['fence_s']} evacuate {e['evacuate_s']}"
        )
    t = result["trials"]
    print(
        f"trials: {t['count']} ({t['targeted']} targeted), double-running {t['double_running']}, "
        f"unfenced evacuations {t['unfenced_evacuations']}, evacuations {t['evacuations']}"
    )


if __name__ == "__main__":
    main()
