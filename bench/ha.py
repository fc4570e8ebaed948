"""Benchmark compute-host HA on the simulator's clock: recovery time against the physical limit, and safety.

**Evacuation** (``realistic`` latency profile): hosts carrying 10, 100 and
1,000 instances lose power (1,000: four hosts of 250; a simulated host holds
at most 256).  Measured on the
simulator's clock, from the power loss to every instance running again,
split into detection (to the confirmed failure), fencing (to the power-off
read back from the Redfish BMC) and evacuation (to the last instance
running).  Compared with

* the **physical limit** ``detection window + fence + ceil(N / C) x boot``:
  the detection window is the compute service's down time (60 s, Nova's
  ``service_down_time``) plus the configured re-check (5 s); the fence is
  the BMC's power latency; ``C`` is the concurrency allowed:
  ``max_concurrent_evacuations`` (20) per failed host's recovery -- so 80
  for the 1,000-instance case on four hosts (evacuations are not limited by
  the target hosts' ``max_builds``, 20 each on 6+ targets); ``boot`` is one
  evacuation (evacuate + boot latency of the profile);
* **one-by-one evacuation as freezer-dr does it** (evacuate one instance,
  wait until it runs, then the next): *measured* with the same controller,
  simulator and profile at ``max_concurrent_evacuations = 1`` on other
  hosts of the same cloud, for the sizes up to ``--sequential-max`` (10 with
  ``--quick``, 100 otherwise); above it ``sequential_measured`` is false and
  the figure is the measured detection and fence plus ``N x boot``.

The profile's 50 ms per API call counts: the in-process controller
(:class:`liferaft.ha.simdrive.SimDrive`) moves the stepped clock once every
cloud call in flight sleeps out its latency inside the simulator
(``waiting_calls`` / ``next_call_at`` of ``GET /control/clock``), so every
call on the way -- the listings that detect, the force-down, each evacuate
and the listings that see the instances run -- costs its 50 ms of
simulated time.  The setup's boots pay it too (``ha_trials.waited``).

**Trials** (``ha_trials.py``): randomized single-host faults in lanes that
overlap in simulated time on one simulator and one in-process controller
(healed and rejoined between trials, never restarted), plus targeted ones:
long flapping, isolation and power loss in the lanes; a controller killed
between fence and evacuation, and a leadership change mid-evacuation, as
real processes.  Double-running instances and unfenced evacuations are
counted from the simulator (``GET /control/double-running``,
``GET /control/writelog``), never from the controller's records.

``--quick`` runs 10 and 100 instances (one-by-one from the formula) and 12
randomized + 3 targeted lane trials, without the process-kill trials
(``tests/functional/test_ha_kill.py`` covers them); ``--json`` prints one
JSON object; results also go to ``bench/results/ha.json`` (``ha-quick.json``
with ``--quick``).  Where the real time goes: ``real_seconds_by_phase``.
The evacuations are tracked by one ``changes-since`` listing per look for
all instances in flight (``liferaft.ha.watch``), and listings are parsed
from the JSON (openstacksdk's resource objects cost 20-40 ms of CPU per
server): the 100-instance case takes about 20 s of real time instead of
about 250 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.sim import SimProcess  # noqa: E402

from ha_trials import boot_on as boot_many  # noqa: E402
from ha_trials import kill_trials, lane_trials  # noqa: E402
from liferaft.ha.simdrive import SimDrive, settings_for  # noqa: E402
from liferaft.sim.topology import PROFILES  # noqa: E402

CONCURRENCY = 20
RECHECK = 5.0
SERVICE_DOWN = 60.0


async def recover(
    sim: SimProcess, work: Path, failed: list[str], segment_hosts: list[str], concurrency: int
) -> dict[str, Any]:
    """Power off ``failed`` and let a fresh controller recover them; the phases on the sim clock."""
    cfg = settings_for(
        sim.control_url,
        "east",
        hosts=segment_hosts,
        segment={"shared_storage": True, "max_failed_hosts": len(failed)},
        poll_interval=2.0,
        recheck_delay=RECHECK,
        max_concurrent_evacuations=concurrency,
        breaker_max_hosts=len(segment_hosts),
        breaker_max_share=1.0,
    )
    async with SimDrive(
        control_url=sim.control_url,
        clouds_yaml=sim.clouds_yaml,
        state_dir=work / f"ctl-{sim.state_dir.name}-{failed[0]}-{concurrency}",
        settings=cfg,
    ) as d:
        # Let the controller see every host up once before the failure.
        await d.run_until(lambda: all(d.host_state(h) == "active" for h in segment_hosts))
        t_fail = d.clock.now()
        for h in failed:
            await d.fault("host-power-loss", h)

        def settled() -> bool:
            wfs = [d.workflow(h) for h in failed]
            return all(w is not None and w.state in ("done", "failed", "paused") for w in wfs)

        await d.run_until(settled, max_seconds=200000, max_step=2.0)
        recovered, fences, detects, ats = 0, [], [], []
        for h in failed:
            wf = d.workflow(h)
            assert wf is not None and wf.state == "done", (wf.id, wf.state, wf.error) if wf else h
            recovered += d.store.get_step(wf.id, "report").result["recovered"]
            fences.append(float(d.store.get_step(wf.id, "fence").result["at"]))
            detects.append(float(wf.params["detected_at"]))
            ats += [
                float(s.result["at"])
                for s in d.store.get_steps(wf.id)
                if s.name.startswith("evacuate:")
            ]
    done_at = max(ats)
    return {
        "recovered": recovered,
        "total_s": done_at - t_fail,
        "detect_s": max(detects) - t_fail,
        "fence_s": max(fences) - max(detects),
        "evacuate_s": done_at - max(fences),
    }


async def evacuation_case(n: int, work: Path, *, sequential: bool) -> dict[str, Any]:
    """``n`` instances on the failed host(s): Liferaft, then (on other hosts) one by one."""
    # A simulated host holds at most 256 tiny instances (64 vCPUs at Nova's 4.0 ratio):
    # 1,000 instances sit on four failed hosts of 250.
    k = max(1, math.ceil(n / 250))
    hosts = 6 + 2 * k
    names = [f"east-compute-{i}" for i in range(1, hosts + 1)]
    failed, seq_failed = names[:k], names[k : 2 * k]
    topo = {"latency": "realistic", "sites": {"east": {"hosts": hosts}, "west": {"hosts": 1}}}
    sim = SimProcess(work / f"evac-{n}", topology=topo)
    try:
        per = {h: n // k for h in failed + (seq_failed if sequential else [])}
        boot_many(sim, per)
        # The one-by-one hosts stay out of the first segment (they are not failed yet).
        first = [h for h in names if h not in seq_failed]
        lf = await recover(sim, work, failed, first, CONCURRENCY)
        seq = None
        if sequential:
            # freezer-dr's way: evacuate one instance, wait until it runs, then the next.
            rest = [h for h in names if h not in failed]
            seq = await recover(sim, work, seq_failed, rest, 1)
    finally:
        sim.stop()
    lat = PROFILES["realistic"]
    boot = lat.evacuate + lat.boot
    detect_window = SERVICE_DOWN + RECHECK
    # Each failed host's recovery runs up to CONCURRENCY evacuations at once.
    limit = detect_window + lat.power + math.ceil(n / (CONCURRENCY * k)) * boot
    out: dict[str, Any] = {
        "instances": n,
        "recovered": lf["recovered"],
        "liferaft_s": round(lf["total_s"], 1),
        "limit_s": round(limit, 1),
        "sequential_s": round(seq["total_s"], 1) if seq else None,
        "sequential_measured": seq is not None,
        "ratio_to_limit": round(lf["total_s"] / limit, 3),
        "detect_s": round(lf["detect_s"], 1),
        "fence_s": round(lf["fence_s"], 1),
        "evacuate_s": round(lf["evacuate_s"], 1),
    }
    if seq is None:  # not measured at this size: the same detection and fence, then N boots
        out["sequential_s"] = round(lf["detect_s"] + lf["fence_s"] + n * boot, 1)
    else:
        out["sequential_recovered"] = seq["recovered"]
        out["sequential_evacuate_s"] = round(seq["evacuate_s"], 1)
    return out


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    sizes = [10, 100] if args.quick else [10, 100, 1000]
    seq_max = 0 if args.quick else args.sequential_max
    n_trials = args.trials or (12 if args.quick else 1000)
    started = time.monotonic()
    phases: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ha-") as tmp:
        work = Path(tmp)
        evac = []
        for n in sizes:
            t0 = time.monotonic()
            evac.append(await evacuation_case(n, work, sequential=n <= seq_max))
            phases[f"evacuation_{n}"] = round(time.monotonic() - t0, 1)
        t0 = time.monotonic()
        tri = await lane_trials(n_trials, work, lanes=args.lanes or (12 if args.quick else 40))
        phases["trials"] = round(time.monotonic() - t0, 1)
        kills: dict[str, Any] = {
            "count": 0,
            "outcomes": {},
            "double_running": 0,
            "unfenced_evacuations": 0,
            "evacuations": 0,
        }
        if (
            not args.quick
        ):  # real controller processes: tens of seconds (tests/functional/test_ha_kill.py)
            t0 = time.monotonic()
            kills = await asyncio.to_thread(kill_trials, work)
            phases["kill_trials"] = round(time.monotonic() - t0, 1)
    outcomes = dict(tri["outcomes"])
    outcomes.update(kills["outcomes"])
    trials = {
        "count": tri["count"] + kills["count"],
        "randomized": n_trials,
        "targeted": tri["targeted"] + kills["count"],
        "double_running": tri["double_running"] + kills["double_running"],
        "unfenced_evacuations": tri["unfenced_evacuations"] + kills["unfenced_evacuations"],
        "evacuations": tri["evacuations"] + kills["evacuations"],
        "lanes": tri["lanes"],
        "simulated_s": tri["simulated_s"],
        "outcomes": outcomes,
    }
    return {
        "quick": args.quick,
        "concurrency": CONCURRENCY,
        "evacuation": evac,
        "trials": trials,
        "target_ratio_at_100": 1.3,
        "real_seconds": round(time.monotonic() - started, 1),
        "real_seconds_by_phase": phases,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--quick",
        action="store_true",
        help="10 and 100 instances, 12+3 lane trials, no process-kill trials",
    )
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--trials", type=int, default=0, help="number of randomized fault trials")
    ap.add_argument(
        "--lanes", type=int, default=0, help="trials running side by side (12 quick, 40 full)"
    )
    ap.add_argument(
        "--sequential-max",
        type=int,
        default=100,
        help="largest case whose one-by-one evacuation is measured (full run; --quick: 10)",
    )
    args = ap.parse_args()
    result = asyncio.run(amain(args))
    out = ROOT / "bench" / "results" / ("ha-quick.json" if args.quick else "ha.json")
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
