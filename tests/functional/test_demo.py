"""``liferaft demo --json`` runs end to end and its figures agree with the simulator's write log."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from liferaft.demo.scenario import CANARY_RATE

KEYS = {
    "servers_recovered",
    "volumes_recovered",
    "data_verified",
    "consistent",
    "rto_s",
    "data_loss_s",
    "api_url",
    "clouds_yaml",
}


@pytest.mark.slow
@pytest.mark.timeout(1000)
def test_demo_recovers_east_at_west_and_reads_the_data_loss_from_the_data(tmp_path: Path) -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "liferaft",
            "demo",
            "--json",
            "--keep",
            "--state-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=950,  # generous: CI runs it on two busy cores (it takes about a minute here)
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    try:
        assert set(out) >= KEYS
        assert out["servers_recovered"] == 4 and out["volumes_recovered"] == 2
        assert out["data_verified"] and out["consistent"], out.get("consistency_reason")
        assert out["rto_s"] > 0
        # The simulator's write log, read here independently of the demo: the canary's
        # (the group's writer's) last write at or before the recovery point's capture is
        # what the restored data should hold.
        entries = httpx.get(
            f"{out['control_url']}/control/writelog",
            params={"kind": "write", "site": "east"},
            timeout=60,
        ).json()["entries"]
        writes = [e["time"] for e in entries if e["data"].get("writer") == out["canary"]]
        at_capture = max(t for t in writes if t <= out["recovery_point"])
        interval = 1 / CANARY_RATE
        # The data-loss window the demo reports (read from the restored volumes) matches
        # the write log to within one canary write interval.
        assert abs((out["failure_time"] - at_capture) - out["data_loss_s"]) <= interval, (
            out["failure_time"] - at_capture,
            out["data_loss_s"],
        )
        assert abs(out["failure_time"] - out["data_loss_s"] - out["newest_canary"]) < 1e-6
        # The workload kept writing after the capture: those writes are the loss.
        assert any(out["recovery_point"] < t <= out["failure_time"] for t in writes)
    finally:
        for pid in out.get("pids", []):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
