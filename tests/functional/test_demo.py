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
@pytest.mark.timeout(400)
@pytest.mark.xfail(
    reason="the simulator's Networking API has no tag route (PUT /v2.0/ports/{id}/tags), "
    "which the Cloud adapter's create_port uses to tag recreated ports",
    strict=False,
)
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
        timeout=380,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    try:
        assert set(out) >= KEYS
        assert out["servers_recovered"] == 4 and out["volumes_recovered"] == 2
        assert out["data_verified"] and out["consistent"]
        assert out["rto_s"] > 0
        # The simulator's write log: the last canary write before the failure.
        entries = httpx.get(
            f"{out['control_url']}/control/writelog",
            params={"kind": "write", "site": "east"},
            timeout=30,
        ).json()["entries"]
        last = max(e["time"] for e in entries if e["time"] <= out["failure_time"])
        from liferaft.demo.scenario import CANARY_RATE

        # What was lost is at least what the log wrote after the newest checkpoint's capture.
        assert out["data_loss_s"] >= out["failure_time"] - last - 1 / CANARY_RATE
        assert abs(out["failure_time"] - out["data_loss_s"] - out["newest_canary"]) < 1e-6
        assert out["newest_canary"] <= out["recovery_point"] + 1 / CANARY_RATE
    finally:
        for pid in out.get("pids", []):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
