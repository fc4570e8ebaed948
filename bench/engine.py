"""Benchmark the engine: workflow throughput and controller CPU per cloud call, on the simulator.

A :class:`~liferaft.engine.controller.Controller` (in this process, leading
its role on a SQLite store, reading the simulator's clock) drives ``W``
workflows at once; each creates ``N`` volumes, ``N`` ports and ``N``
servers (each server on its port) through the real openstacksdk adapter
with the engine's idempotent step helpers, at most ``C`` steps per site at a
time per workflow.  The simulator runs in its own process at zero latency,
so what is measured is the controller: its store writes, its lease checks,
openstacksdk and HTTP.

Reported:

* ``steps_per_s``: workflow steps finished per wall-clock second;
* ``cpu_ms_per_cloud_call``: this process's CPU time (user + system, every
  thread) divided by the number of Cloud-port calls it made (each
  ``find_*``/``create_*`` is one; one call may be several HTTP requests);
* the counts and times behind them.

``--quick`` runs a smaller size (named in the output) in well under a
minute.  ``--json`` prints one JSON object; results are also written to
``bench/results/engine.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.sim import SimProcess  # noqa: E402

from liferaft.clouds import OpenStackCloud  # noqa: E402
from liferaft.engine import cloudsteps  # noqa: E402
from liferaft.engine.controller import Controller  # noqa: E402
from liferaft.engine.executor import StepContext  # noqa: E402
from liferaft.engine.simclock import SimulatorClock  # noqa: E402
from liferaft.engine.workflow import StepDef, WorkflowDef  # noqa: E402
from liferaft.store import Store, sqlite_url  # noqa: E402


class CountingCloud:
    """The Cloud port with every call counted (a transparent proxy)."""

    def __init__(self, inner: OpenStackCloud) -> None:
        self._inner = inner
        self.site = inner.site
        self.calls: Counter[str] = Counter()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not callable(attr) or name.startswith("_") or name == "close":
            return attr

        async def call(*args: Any, **kwargs: Any) -> Any:
            self.calls[name] += 1
            return await attr(*args, **kwargs)

        return call


def fleet(cloud: Any, net_id: str, image_id: str, n: int, concurrency: int) -> Any:
    def build(params: dict[str, Any]) -> WorkflowDef:
        tag = params["tag"]

        def volume(i: int) -> Any:
            async def run(ctx: StepContext) -> dict[str, str]:
                return {
                    "id": (
                        await cloudsteps.ensure_volume(ctx, cloud, name=f"{tag}-v{i}", size_gb=1)
                    ).id
                }

            return run

        def port(i: int) -> Any:
            async def run(ctx: StepContext) -> dict[str, str]:
                p = await cloudsteps.ensure_port(ctx, cloud, name=f"{tag}-p{i}", network_id=net_id)
                return {"id": p.id}

            return run

        def server(i: int) -> Any:
            async def run(ctx: StepContext) -> dict[str, str]:
                s = await cloudsteps.ensure_server(
                    ctx,
                    cloud,
                    name=f"{tag}-s{i}",
                    flavor="m1.tiny",
                    image_id=image_id,
                    port_ids=[ctx.results[f"port-{i}"]["id"]],
                )
                return {"id": s.id}

            return run

        steps: list[StepDef] = []
        for i in range(n):
            steps += [
                StepDef(f"volume-{i}", volume(i), site=cloud.site),
                StepDef(f"port-{i}", port(i), site=cloud.site),
                StepDef(f"server-{i}", server(i), depends_on=(f"port-{i}",), site=cloud.site),
            ]
        return WorkflowDef("fleet", steps, site_concurrency=concurrency)

    return build


async def measure(
    sim: SimProcess, state: Path, workflows: int, n: int, concurrency: int
) -> dict[str, Any]:
    conn = sim.connect("east")
    net_id = conn.network.find_network("private", ignore_missing=False).id
    image_id = conn.image.find_image("cirros", ignore_missing=False).id
    conn.close()
    cloud = CountingCloud(OpenStackCloud("east", clouds_yaml=sim.clouds_yaml))
    await cloud.identity()  # log in before measuring
    cloud.calls.clear()
    clock = SimulatorClock(sim.control_url)
    store = Store(sqlite_url(state))
    ctl = Controller(store, clock=clock, role="bench", ttl=60.0)
    ctl.register("fleet", fleet(cloud, net_id, image_id, n, concurrency))
    ctl.start()
    await ctl.wait_leading()
    cpu0, t0 = time.process_time(), time.perf_counter()
    ids = [
        ctl.submit("fleet", {"tag": f"b{w}"}, workflow_id=f"bench-{w}").id for w in range(workflows)
    ]
    states = Counter([(await ctl.wait_settled(i)).state for i in ids])
    wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    await ctl.stop()
    store.close()
    clock.close()
    cloud._inner.close()
    steps = workflows * n * 3
    calls = sum(cloud.calls.values())
    if states != Counter({"done": workflows}):
        raise SystemExit(f"bench: workflows did not all finish: {dict(states)}")
    return {
        "steps_per_s": round(steps / wall, 2),
        "cpu_ms_per_cloud_call": round(cpu * 1000 / calls, 3),
        "workflows": workflows,
        "steps": steps,
        "cloud_calls": calls,
        "cloud_calls_by_method": dict(sorted(cloud.calls.items())),
        "wall_s": round(wall, 3),
        "controller_cpu_s": round(cpu, 3),
        "site_concurrency": concurrency,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smaller run, well under a minute")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    workflows, n, concurrency = (4, 5, 4) if args.quick else (10, 10, 8)
    tmp = Path(tempfile.mkdtemp(prefix="lr-bench-engine-"))
    sim = SimProcess(tmp / "sim", stepped=False)
    try:
        result = asyncio.run(measure(sim, tmp / "state", workflows, n, concurrency))
    finally:
        sim.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    result = {
        "benchmark": "engine",
        "size": "quick" if args.quick else "full",
        **result,
        "cpus": os.cpu_count(),
    }
    out = ROOT / "bench" / "results" / "engine.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:24} {v}")


if __name__ == "__main__":
    main()
