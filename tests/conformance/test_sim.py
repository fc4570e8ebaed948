"""The conformance suite against the simulator (main venv, stepped clock).

Each behaviour runs against a fresh simulator with the ``realistic`` latency
profile (a boot takes 30 simulated seconds, a stop 5 ...), so the transient
states Nova shows (BUILD, REBUILD, ACTIVE while powering off) last long
enough for a 1 s poll to see them; only ``api_call`` is 0, because with a
stepped clock a charged API call would wait for the next step, which this
synchronous client only takes between polls.  Its record is written to
``$LIFERAFT_CONFORMANCE_OUT/sim/<behaviour>.json`` when that variable is set
(``scripts/conformance`` sets it and compares the records with Nova's and
Cinder's).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from liferaft.sim.topology import PROFILES
from tests.conformance import suite
from tests.conformance.pending import SIM_PENDING
from tests.support.sim import SimProcess

TICK_SECONDS = 1.0
LATENCY = PROFILES["realistic"].model_copy(update={"api_call": 0.0}).model_dump()


def sim_target(sim: SimProcess) -> suite.Target:
    conn = sim.connect("east")

    def tick() -> None:
        sim.advance(TICK_SECONDS)

    target = suite.Target(name="sim", conn=conn, tick=tick)

    def lazy_compute_defaults() -> None:
        images = list(conn.image.images())
        flavors = sorted(conn.compute.flavors(), key=lambda f: (f.ram, f.vcpus, f.id))
        target.image_id = images[0].id if images else None
        target.flavor_id = flavors[0].id if flavors else None

    def volume_for_server() -> str:
        v = conn.block_storage.create_volume(size=1, name=f"conf-{uuid.uuid4().hex[:8]}")
        for _ in range(target.max_ticks):
            if conn.block_storage.get_volume(v.id).status == "available":
                return str(v.id)
            target.tick()
        raise suite.Timeout("volume for the server never became available")

    target.volume_for_server = volume_for_server

    def restart_compute(host: str) -> None:
        # The simulator restarts a compute service only with its host's power:
        # a power cycle of the site (its guests come back powered off, and
        # every service of the site restarts, the source's among them).
        sim.control("POST", "/control/faults", {"kind": "site-down", "target": "east"})
        sim.control("POST", "/control/heal", {"kind": "site-down", "target": "east"})

    target.restart_compute = restart_compute
    target.extra["prepare_compute"] = lazy_compute_defaults
    return target


def write_record(name: str, record: dict[str, Any]) -> None:
    out = os.environ.get("LIFERAFT_CONFORMANCE_OUT")
    if not out:
        return
    path = Path(out) / "sim" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2, sort_keys=True))


@pytest.mark.parametrize("name", suite.names())
def test_behaviour_on_sim(name: str, sim_factory: Callable[..., SimProcess]) -> None:
    target = sim_target(sim_factory(topology={"latency": LATENCY}))
    if suite.BEHAVIOURS[name].service == "compute":
        try:
            target.extra["prepare_compute"]()
        except Exception as exc:
            if name not in SIM_PENDING:
                raise
            pytest.xfail(f"pending on the simulator: {SIM_PENDING[name]} ({exc})")
    record = suite.run_behaviour(name, target)
    write_record(name, record)
    passed = record["outcome"] == "ok" and not record["violations"]
    if name in SIM_PENDING:
        if passed:
            print(f"conformance: {name} now passes on the simulator; remove it from SIM_PENDING")
        pytest.xfail(f"pending on the simulator: {SIM_PENDING[name]}")
    assert not record["violations"], record["violations"]
    assert record["outcome"] == "ok", record["outcome"] + record["final"].get("_traceback", {}).get(
        "text", ""
    )
