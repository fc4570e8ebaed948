"""Kill the controller at every hook point, restart it, and check exactly-once results.

Each run is a real process that SIGKILLs itself at an armed hook (see
``killworker.py``); the next run is a new leader that replays.  After every
run the fake cloud must hold no duplicate, and at the end every resource
exists exactly once and matches the ledger and the step results.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from liferaft.store import Store, sqlite_url
from tests.unit.engine.killworker import RUN_ID, FakeCloud

ROOT = Path(__file__).resolve().parents[3]

FORWARD_KILLS = [
    "after_cloud_call@network",
    "before_record@network",
    "before_step@boot_web",
    "before_call@boot_web",
    "after_cloud_call@boot_web",
    "after_ledger@boot_web",
    "after_record@boot_web",
    "after_record@boot_db",  # boot_db's first attempt recorded `retrying`
    "before_call@boot_db",
    "after_cloud_call@boot_db",
    "before_workflow_record",
]
ROLLBACK_KILLS = ["before_undo@boot_db", "after_undo@boot_web", "before_workflow_record"]


class Controller:
    def __init__(self, tmp: Path) -> None:
        self.state = tmp / "state"
        self.cloud_db = tmp / "cloud.db"
        self.incarnation = 0

    def run(self, mode: str, kill_at: str | None = None) -> subprocess.CompletedProcess[str]:
        self.incarnation += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIFERAFT_KILL")}
        env["PYTHONPATH"] = str(ROOT)
        if kill_at:
            env["LIFERAFT_KILL_AT"] = kill_at
        cmd = [
            sys.executable,
            "-m",
            "tests.unit.engine.killworker",
            str(self.state),
            str(self.cloud_db),
            str(self.incarnation),
            mode,
        ]
        return subprocess.run(
            cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
        )

    def cloud(self) -> list[tuple[str, str, str]]:
        cloud = FakeCloud(self.cloud_db)
        try:
            return cloud.all()
        finally:
            cloud.db.close()


def assert_no_duplicates(resources: list[tuple[str, str, str]]) -> None:
    counts = Counter((kind, name) for _, kind, name in resources)
    assert all(n == 1 for n in counts.values()), counts


def kill_then_finish(ctl: Controller, mode: str, kills: list[str]) -> dict[str, Any]:
    for spec in kills:
        proc = ctl.run(mode, spec)
        assert proc.returncode == -signal.SIGKILL, (
            f"{spec}: expected to die there, got {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
        assert_no_duplicates(ctl.cloud())
    proc = ctl.run(mode)
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


@pytest.mark.slow
# One subprocess per hook: ~25 s of CPU, several minutes on a loaded 2-core box.
@pytest.mark.timeout(600)
def test_killed_at_every_hook_the_workflow_completes_exactly_once(tmp_path: Path) -> None:
    ctl = Controller(tmp_path)
    out = kill_then_finish(ctl, "forward", FORWARD_KILLS)
    assert out["state"] == "done", out
    assert out["epoch"] == len(FORWARD_KILLS) + 1

    resources = ctl.cloud()
    assert sorted((k, n) for _, k, n in resources) == [
        ("network", "net"),
        ("server", "db"),
        ("server", "web"),
    ]
    cloud_ids = {name: rid for rid, _, name in resources}
    with Store(sqlite_url(ctl.state)) as store:
        ledger = {r.key: r.cloud_id for r in store.list_resources(run_id=RUN_ID)}
        assert ledger == cloud_ids
        steps = {s.name: s for s in store.get_steps(RUN_ID)}
        assert steps["network"].result == {"id": cloud_ids["net"]}
        assert steps["boot_web"].result == {"id": cloud_ids["web"]}
        assert steps["boot_db"].result == {"id": cloud_ids["db"]}
        assert steps["verify"].result == {"resources": 3}
        assert all(s.state == "done" for s in steps.values())
        events = store.events(workflow_id=RUN_ID)
        done = Counter(e.step for e in events if e.to_state == "done" and e.step)
        assert done == {"network": 1, "boot_web": 1, "boot_db": 1, "verify": 1}
        replays = [e.step for e in events if e.detail.get("replay")]
        assert "boot_web" in replays and "network" in replays
        assert [e.id for e in events] == sorted(e.id for e in events)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_killed_during_rollback_it_finishes_the_rollback(tmp_path: Path) -> None:
    ctl = Controller(tmp_path)
    assert kill_then_finish(ctl, "forward", [])["state"] == "done"
    assert len(ctl.cloud()) == 3
    out = kill_then_finish(ctl, "rollback", ROLLBACK_KILLS)
    assert out["state"] == "rolled_back", out
    assert ctl.cloud() == []
    with Store(sqlite_url(ctl.state)) as store:
        states = {s.name: s.state for s in store.get_steps(RUN_ID)}
    assert states == {n: "undone" for n in ("network", "boot_web", "boot_db", "verify")}
