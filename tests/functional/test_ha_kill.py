"""A controller killed between fence and evacuation resumes without fencing or evacuating twice.

Each incarnation is a real process (``python -m liferaft.ha.simdrive``) that
drives the recovery of an isolated host on the simulator's clock and
``SIGKILL``s itself at an engine kill hook: after the fence is recorded
(before anything is evacuated), and after an evacuation was accepted by the
cloud but before its step recorded it.  The next incarnation takes the
lease once the dead one's expired and finishes the work; the write log shows
one power-off and one evacuation per instance, and no double-running instance.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.functional.test_ha import H1, boot, evacuations, servers, writelog
from tests.support.sim import SimProcess

ROOT = Path(__file__).resolve().parents[2]
TTL = 30.0


def incarnation(
    sim: SimProcess, state: Path, i: int, kill_at: str | None
) -> subprocess.CompletedProcess[str]:
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
        H1,
        "--holder",
        f"ctl-{i}",
        "--ttl",
        str(TTL),
        "--settings",
        json.dumps({"segment": {"shared_storage": True}}),
    ]
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_killed_between_fence_and_evacuation_resumes_without_a_duplicate(
    sim: SimProcess, tmp_path: Path
) -> None:
    ids = boot(sim, 3, H1)
    sim.control("POST", "/control/faults", {"kind": "host-mgmt-isolation", "target": f"east/{H1}"})
    state = tmp_path / "ctl"
    kills = ["after_record@fence", "before_step@plan", f"before_record@evacuate:{ids[1]}"]
    for i, spec in enumerate(kills):
        r = incarnation(sim, state, i, spec)
        assert r.returncode == -signal.SIGKILL, f"{spec}: exit {r.returncode}\n{r.stderr[-3000:]}"
        sim.advance(TTL + 1)  # the dead leader's lease expires
    last = incarnation(sim, state, len(kills), None)
    assert last.returncode == 0, last.stderr[-3000:]
    assert json.loads(last.stdout.strip().splitlines()[-1])["state"] == "done"

    # One power-off, read back before the first evacuation; one evacuation per instance.
    actions = [e for e in writelog(sim, "bmc_action") if e["host"] == H1]
    assert [e["data"]["action"] for e in actions] == ["ForceOff"]
    evacs = evacuations(sim, H1)
    assert Counter(e["instance"] for e in evacs) == Counter({sid: 1 for sid in ids})
    assert actions[0]["seq"] < min(e["seq"] for e in evacs)
    assert sim.control("GET", "/control/double-running")["double_running"] == []
    assert all(s.compute_host != H1 and s.status == "ACTIVE" for s in servers(sim, ids).values())
