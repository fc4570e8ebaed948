"""DR-Logic's rates reach a running image copy: measured on the simulator's clock.

``liferaft serve`` (east, on the simulator's scaled clock) runs a test
logic, ``step-rate``, installed as a distribution of its own (an
``entry_points.txt`` in a ``.dist-info`` on the path, what an installer
writes): every image-copy transfer is guaranteed ``R1`` until ``SWITCH_S``
after its capture, then ``R2`` (a third of it), and the replication ceiling
is the sum of the guarantees (no spare to share). A volume holds ``CHUNKS``
distinct non-zero 1 MiB chunks; its first checkpoint (forced: no recovery
point) copies them to west's object store while the logic changes the rate.
The controller reaches west through the simulator's remote view
``west@east``, so the chunks cross the east-west link model.

The throughput is measured by the simulator: each chunk object's
``last_modified`` at west (the simulator's clock when the chunk was stored).
The copier reports when it read the new rate (``liferaft logic status``);
chunks stored before that are the first phase, the others the second. The
slot of the chunk reserved just before the change still runs at the old
rate, so the gap that spans the change belongs to neither phase. Each
phase's rate is (chunks - 1) MiB over the time between its first and last
chunk: it is exact but for the landing jitter of two chunks (a put's
latency, tens of milliseconds of real time) over at least ten chunk slots,
hence a 15 % tolerance.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.drcontroller import DrWorld, Serve, until

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]

MIB = 1 << 20
R1 = float(MIB)  # bytes per second: one chunk per simulated second
R2 = R1 / 3
SWITCH_S = 10.0  # simulated seconds after the capture when the logic slows the copy down
CHUNKS = 28
DRLOGIC_INTERVAL = 5.0
TICK = 1.0
TIME_SCALE = 2.0  # a chunk slot is 0.5 s of real time at R1: the controller keeps up
TOLERANCE = 0.15
POLICY = {
    "rpo_seconds": 1e6,
    "interval_seconds": 1e6,
    "retention_count": 10,
    "retention_age_seconds": 1e7,
    "consistency": "crash-consistent",
    "method": "image-copy",
}

LOGIC = f'''
"""A test DR-Logic: image copies at R1 until SWITCH_S after their capture, then R2."""
from liferaft.logic.contract import Decisions, FlowRate

R1, R2, SWITCH_S = {R1!r}, {R2!r}, {SWITCH_S!r}


class StepRate:
    name = "step-rate"
    capabilities = frozenset({{"checkpoint-schedule", "rate-control"}})

    def decide(self, state):
        rates = []
        for t in state.transfers:
            if t.carrier != "image-copy":
                continue
            slow = t.released and state.now_s >= t.capture_s + SWITCH_S
            rates.append(FlowRate(t.flow_id, "image-copy", R2 if slow else R1,
                                  "step-rate: slow" if slow else "step-rate: fast"))
        ceiling = sum(r.rate_bps for r in rates) if rates else R1
        return Decisions(flow_rates=tuple(rates), replication_ceiling_bps=ceiling,
                         replication_ceiling_reason="step-rate: the guarantees")
'''


def install_logic(site: Path) -> Path:
    """The logic as an installed distribution: its module and a dist-info with its entry point."""
    site.mkdir(parents=True)
    (site / "lr_step_rate.py").write_text(LOGIC)
    info = site / "lr_step_rate-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lr-step-rate\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(
            """\
            [liferaft.logics]
            step-rate = lr_step_rate:StepRate
            """
        )
    )
    return site


class RateWorld(DrWorld):
    """east's controller with the step-rate logic deciding every DRLOGIC_INTERVAL."""

    def __init__(self, tmp: Path) -> None:
        super().__init__(tmp, time_scale=TIME_SCALE)
        self.site_dir = install_logic(tmp / "site")

    def config(self, site: str) -> Path:
        path = super().config(site)
        cfg = yaml.safe_load(path.read_text())
        cfg["protection"]["schedule_tick"] = TICK
        # east reaches west's services as a controller at east does: across the WAN link
        # (the simulator's remote view, sim/wan_view.py), so the link carries the chunks.
        if site == "east":
            cfg["peers"][0]["cloud"] = "west@east"
        # Before the first decision (and if decisions stopped): the configured rate.
        cfg["protection"]["image_copy_rate"] = R1
        cfg["drlogic"] = {
            "logic_driver": "step-rate",
            "drlogic_interval": DRLOGIC_INTERVAL,
            "max_protection_interval": 1e7,
        }
        path.write_text(yaml.safe_dump(cfg))
        return path

    def start(self, site: str, *, kill_at: str | None = None, wait_lead: bool = True) -> Serve:
        env = {"PYTHONPATH": str(self.site_dir)}  # Liferaft itself is installed in the venv
        self.ctls[site] = Serve(self.config(site), self.tmp / f"ctl-{site}.log", env)
        until(f"{site} to lead", lambda: self.api(site, "GET", "/v1/info")["leader"])
        return self.ctls[site]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[RateWorld]:
    w = RateWorld(tmp_path)
    try:
        w.start("east")
        yield w
    finally:
        w.stop()


def volume_with_chunks(w: DrWorld, n: int) -> str:
    """A volume at east whose first ``n`` MiB are ``n`` distinct non-zero chunks."""
    c = w.sim.connect("east")
    try:
        vid = str(c.block_storage.create_volume(name="rate", size=1).id)
        until("the volume", lambda: c.block_storage.get_volume(vid).status == "available")
    finally:
        c.close()
    block = int(w.ctl("GET", f"/control/volumes/east/{vid}")["block_size"])
    per_chunk = MIB // block
    for i in range(n):
        r = w.sim.http.put(
            f"/control/volumes/east/{vid}/blocks/{i * per_chunk}",
            content=f"chunk {i} of the rate test".encode().ljust(block, b"."),
        )
        assert r.status_code == 200, r.text
    return vid


def chunk_times(w: DrWorld, group: str) -> tuple[list[float], int]:
    """When each of the group's chunks was stored at west (the simulator's clock), in order;
    their bytes."""
    c = w.sim.connect("west")
    try:
        objs = list(c.object_store.objects(w.container, prefix=f"chunks/{group}/"))
    finally:
        c.close()
    times = sorted(
        datetime.fromisoformat(o.last_modified_at).replace(tzinfo=UTC).timestamp() for o in objs
    )
    return times, sum(int(o.content_length) for o in objs)


def rate_of(times: list[float]) -> float:
    """Bytes per second of chunks stored at ``times``: (n - 1) chunks over the span."""
    assert len(times) >= 5, times
    return (len(times) - 1) * MIB / (times[-1] - times[0])


def test_a_rate_decided_mid_copy_reaches_the_copier_and_its_throughput_follows(
    world: RateWorld,
) -> None:
    w = world
    vid = volume_with_chunks(w, CHUNKS)
    w.api("east", "PUT", "/v1/policies/rate", POLICY)
    gid = w.api("east", "POST", "/v1/protect/volumes", {"volume": vid, "policy": "rate"})["id"]

    # The first checkpoint is forced (no recovery point); watch what the copier applies.
    cp = until("the first checkpoint", lambda: (w.checkpoints(gid) or [None])[0])
    seen: dict[str, Any] = {}

    def slowed() -> dict[str, Any] | None:
        s = w.api("east", "GET", "/v1/logic/status")
        flow = next((f for f in s["image_copy"]["flows"] if f["flow_id"] == cp["id"]), None)
        if flow is not None and flow["pace_bps"] == pytest.approx(R2):
            seen.update(status=s, flow=flow)
            return flow
        return None

    until("the copier to apply the slower rate", slowed)
    # Mid-copy, the CLI shows the rate decided and the rate the copier applies.
    env = {**w.sim.cli_env(), "LIFERAFT_TOKEN": w.token("east")}
    base = [sys.executable, "-m", "liferaft", "logic", "status", "--url", w.ctls["east"].url]
    r = subprocess.run(base, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    cli_text = r.stdout
    r = subprocess.run([*base, "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    cli_json = json.loads(r.stdout)

    done = w.wait_checkpoint(gid, cp["id"])
    times, nbytes = chunk_times(w, gid)
    assert len(times) == CHUNKS  # every chunk travelled once
    # ... across the link, east to west, as calls of a client at east.
    link = w.ctl("GET", "/control/links")["links"][0]
    assert nbytes > (CHUNKS - 1) * MIB  # the last chunk ends with the last block written
    assert link["bytes_by_tag"]["client"] >= nbytes
    assert link["bytes_by_direction"]["east->west"] >= nbytes

    # When the copier read the slower rate: after the logic could decide it (SWITCH_S after
    # the capture) and no later than the next decision, the next tick and one chunk slot.
    flow = seen["flow"]
    (_, r_fast), (t_slow, r_slow) = ((c["at"], c["pace_bps"]) for c in flow["changes"])
    assert r_fast == pytest.approx(R1) and r_slow == pytest.approx(R2)
    captured = done["captured_at"]
    assert captured + SWITCH_S <= t_slow <= captured + SWITCH_S + DRLOGIC_INTERVAL + TICK + 2.0
    assert flow["source"] == "decision" and flow["guaranteed_bps"] == pytest.approx(R2)

    # The throughput the simulator saw follows the decisions: R1 before, R2 after.
    fast = [t for t in times if t < t_slow]
    slow = [t for t in times if t >= t_slow]
    measured_fast, measured_slow = rate_of(fast), rate_of(slow)
    assert measured_fast == pytest.approx(R1, rel=TOLERANCE), (fast, t_slow)
    assert measured_slow == pytest.approx(R2, rel=TOLERANCE), (slow, t_slow)
    print(
        f"image-copy rate: decided {R1:.0f} -> {R2:.0f} B/s at {t_slow - captured:.1f} s after "
        f"the capture; measured {measured_fast:.0f} B/s ({len(fast)} chunks) -> "
        f"{measured_slow:.0f} B/s ({len(slow)} chunks)"
    )

    # The status: the rate decided and published, and the rate applied by the copier.
    d = seen["status"]["decisions"]
    mine = [f for f in d["flow_rates"] if f["flow_id"] == cp["id"]]
    assert mine and mine[0]["rate_bps"] == pytest.approx(R2) and mine[0]["carrier"] == "image-copy"
    assert mine[0]["applied"] == "published to the copier (read before every chunk)"
    assert d["image_copy_ceiling_bps"] == pytest.approx(R2)
    assert any(
        line.startswith(
            f"image copy {cp['id']}: pacing at 2.8 Mbit/s (decision: decided by step-rate"
        )
        for line in cli_text.splitlines()
    ), cli_text
    assert f"  flow {cp['id']} (image-copy): 2.8 Mbit/s: step-rate: slow -> published" in cli_text
    assert any(f["flow_id"] == cp["id"] for f in cli_json["image_copy"]["flows"])
