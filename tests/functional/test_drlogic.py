"""DR-Logic wired into the controller: a third-party logic, installed as a package, in charge.

``tests/fixtures/thirdparty_logic`` is a separate package (its own
pyproject.toml and ``liferaft.logics`` entry point, the logic ``paced``:
every group once half its target has passed since its last capture, one
transfer at a time, replication capped at 40 % of the link). The module
installs it offline into a directory of its own and runs ``liferaft serve``
(east, against the simulator on a scaled clock) with that directory on its
path and ``drlogic.logic_driver: paced``, the simulator's LinkMonitor and
LinkShaper. Checked from the checkpoints' own times, the simulator's link
and the API/CLI: the controller starts checkpoints when the logic says and
never sooner, never runs two transfers at once, and the backup flows'
ceiling on the simulator's link is the logic's. Then the same controller is
restarted with ``explosive`` (same package), whose every decision raises:
the error is logged, ``per-group-interval`` decides, protection goes on.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.drcontroller import DrWorld, Serve, until

pytestmark = [pytest.mark.timeout(600), pytest.mark.slow]

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "thirdparty_logic"
UV = Path.home() / ".cache" / "liferaft" / "tools" / "bin" / "uv"
TARGET_S = 120.0  # the groups' RPO target; paced checkpoints every 60 s
DRLOGIC_INTERVAL = 10.0
TICK = 2.0
POLICY = {
    "rpo_seconds": TARGET_S,
    "interval_seconds": TARGET_S,  # the longest a policy allows: the logic decides sooner
    "retention_count": 20,
    "retention_age_seconds": 1e7,
    "consistency": "crash-consistent",
    "method": "snapshot-backup",
}


def install(tmp: Path) -> Path:
    """Install the fixture package (offline: no index, this venv's setuptools) into ``tmp/site``."""
    src = tmp / "src"
    shutil.copytree(FIXTURE, src)  # setuptools builds in the source tree: build a copy
    target = tmp / "site"
    if UV.exists():
        cmd = [str(UV), "pip", "install", "--python", sys.executable]
    else:
        cmd = [sys.executable, "-m", "pip", "install", "--quiet"]
    cmd += ["--no-index", "--no-build-isolation", "--no-deps", "--target", str(target), str(src)]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=180, check=False)
    assert r.returncode == 0, r.stderr
    assert (target / "lr_paced_logic-0.1.0.dist-info" / "entry_points.txt").exists()
    return target


def with_path(target: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIFERAFT_")}
    env["PYTHONPATH"] = os.pathsep.join([str(target), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return env


@pytest.fixture(scope="module")
def site_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install(tmp_path_factory.mktemp("thirdparty"))


CHECK = """
import json, sys
from liferaft import plugins
from liferaft.cli.serve import driver_needs
from liferaft.config.model import Settings
from liferaft.engine.controller import check_drivers
from liferaft.errors import PluginError
from liferaft.logic.contract import GroupState, LinkState, State
from liferaft.logic.loop import make_logic

settings = Settings(site={"name": "east"}, drlogic={"logic_driver": "paced"})
try:
    check_drivers(driver_needs(settings))  # what `liferaft serve` checks at start
except PluginError as err:
    print(json.dumps({"error": str(err)}))
    sys.exit(0)
logic = make_logic("paced", plugins.create)
g = GroupState("g", 120.0, 1.0, 5.0, "volume-backup", 0.0, 0.0)
d = logic.decide(State(70.0, 30.0, (g,), (), LinkState(1e6, 0.0)))
print(json.dumps({"names": plugins.names("logics"), "cls": type(logic).__module__,
                  "orders": [o.reason for o in d.checkpoints], "ceiling": d.replication_ceiling_bps,
                  "limit": d.max_concurrent_transfers}))
"""


def test_a_thirdparty_logic_installed_as_a_package_is_picked_up_by_name(site_dir: Path) -> None:
    run = [sys.executable, "-c", CHECK]
    got = json.loads(
        subprocess.run(
            run, capture_output=True, text=True, env=with_path(site_dir), timeout=120, check=True
        ).stdout
    )
    assert "paced" in got["names"] and got["cls"] == "lr_paced_logic"
    assert got["orders"] == ["paced: half the target (60 s) passed"]
    assert got["ceiling"] == pytest.approx(0.4e6) and got["limit"] == 1
    # Without the package on the path the same start check names the setting and the logics.
    env = with_path(site_dir)
    env.pop("PYTHONPATH")
    got = json.loads(
        subprocess.run(run, capture_output=True, text=True, env=env, timeout=120, check=True).stdout
    )
    assert got["error"].startswith(
        "drlogic.logic_driver: no logic driver named 'paced' (available: "
    )
    assert "per-group-interval" in got["error"] and "rpo-optimal" in got["error"]


class LogicWorld(DrWorld):
    """east's controller with the paced logic and the simulator's link drivers."""

    def __init__(self, tmp: Path, site_dir: Path) -> None:
        super().__init__(tmp)
        self.site_dir = site_dir
        self.logic = "paced"

    def config(self, site: str) -> Path:
        path = super().config(site)
        cfg = yaml.safe_load(path.read_text())
        cfg["protection"]["schedule_tick"] = TICK
        cfg["drlogic"] = {
            "logic_driver": self.logic,
            "drlogic_interval": DRLOGIC_INTERVAL,
            "link_monitor": "simulator",
            "link_shaper": "simulator",
            "link_url": self.sim.control_url,
        }
        path.write_text(yaml.safe_dump(cfg))
        return path

    def start(self, site: str, *, kill_at: str | None = None, wait_lead: bool = True) -> Serve:
        env = with_path(self.site_dir)
        self.ctls[site] = Serve(self.config(site), self.tmp / f"ctl-{site}.log", env)
        until(f"{site} to lead", lambda: self.api(site, "GET", "/v1/info")["leader"])
        return self.ctls[site]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, site_dir: Path) -> Iterator[LogicWorld]:
    w = LogicWorld(tmp_path_factory.mktemp("drlogic"), site_dir)
    try:
        # Application traffic on the link, measured by the LinkMonitor.
        w.ctl("PUT", "/control/links/east-west", {"background_mbps": 100})
        w.start("east")
        yield w
    finally:
        w.stop()


def volumes(w: DrWorld, n: int) -> list[str]:
    c = w.sim.connect("east")
    try:
        ids = [str(c.block_storage.create_volume(name=f"lg-{i}", size=1).id) for i in range(n)]
        until(
            "volumes", lambda: all(c.block_storage.get_volume(v).status == "available" for v in ids)
        )
        return ids
    finally:
        c.close()


def test_the_controller_follows_the_logics_decisions(world: LogicWorld) -> None:
    w = world
    w.api("east", "PUT", "/v1/policies/lg", POLICY)
    groups = [
        w.api("east", "POST", "/v1/protect/volumes", {"volume": v, "policy": "lg"})["id"]
        for v in volumes(w, 2)
    ]

    def landed(gid: str) -> list[dict[str, Any]]:
        return [c for c in w.checkpoints(gid) if c["state"] in ("complete", "pruned")]

    until("four checkpoints of each group", lambda: all(len(landed(g)) >= 4 for g in groups))
    status = w.api("east", "GET", "/v1/logic/status")

    # Checkpoint times: the first is forced (no recovery point); every later one is the
    # logic's, started once half the target has passed since the group's last capture --
    # never sooner, and no later than the next decision, plus one transfer it had to wait for.
    spans: list[tuple[float, float, str]] = []
    longest = 0.0
    for gid in groups:
        cps = w.checkpoints(gid)
        assert all(c["state"] in ("complete", "pruned", "pending") for c in cps), cps
        done = [c for c in cps if c["completed_at"] is not None]
        longest = max(longest, *(c["completed_at"] - c["requested_at"] for c in done))
        for prev, nxt in itertools.pairwise(done):
            assert nxt["requested_at"] >= prev["captured_at"] + TARGET_S / 2 - 1e-6, (prev, nxt)
            spans.append((nxt["requested_at"], nxt["completed_at"], gid))
    for gid in groups:
        done = [c for c in w.checkpoints(gid) if c["completed_at"] is not None]
        for prev, nxt in itertools.pairwise(done):
            late = nxt["requested_at"] - (prev["captured_at"] + TARGET_S / 2)
            assert late <= DRLOGIC_INTERVAL + TICK + longest + 1.0, (late, prev, nxt)
    reasons = {f["reason"] for f in status["forced"]}
    assert reasons == {"first checkpoint: the group has no recovery point"}, status["forced"]

    # Concurrency: the logic allows one transfer at a time; no two of its checkpoints overlap.
    spans.sort()
    for (s1, e1, g1), (s2, _e2, g2) in itertools.pairwise(spans):
        assert s2 >= e1 - 1e-6, f"{g1} [{s1}, {e1}] overlaps {g2} from {s2}"

    # Rates: the backup flows' ceiling on the simulator's link is the logic's 40 % of 1000 Mbit/s
    # (within the budget: 1000 - 75 % of the 100 Mbit/s of application traffic).
    link = next(lk for lk in w.ctl("GET", "/control/links")["links"] if lk["name"] == "east-west")
    assert link["tag_limits_mbps"] == {"backup": pytest.approx(400.0)}

    # The status: the active logic, its decisions with reasons, the link as measured, RPO per group.
    assert status["logic"] == "paced" and status["active"] == "paced"
    assert status["fell_back"] is False and status["error"] is None
    d = status["decisions"]
    assert d["by"] == "paced" and d["max_concurrent_transfers"] == 1
    assert d["replication_ceiling_reason"] == "paced: 40% of the link"
    assert d["applied_ceiling_bps"] == pytest.approx(0.4 * 1000e6 / 8)
    assert status["link"]["monitor"] == "simulator"
    assert status["link"]["capacity_bps"] == pytest.approx(1000e6 / 8)
    assert status["link"]["app_traffic_bps"] == pytest.approx(100e6 / 8)
    mine = {g["id"]: g for g in status["groups"] if g["id"] in groups}
    assert len(mine) == 2
    for g in mine.values():
        assert g["target_s"] == TARGET_S and g["recovery_point_s"] is not None
        assert 0 <= g["rpo_s"] <= TARGET_S and g["compliant"] is True, g

    # The CLI shows the same, as JSON and as text.
    env = {**w.sim.cli_env(), "LIFERAFT_TOKEN": w.token("east")}
    base = [sys.executable, "-m", "liferaft", "logic", "status", "--url", w.ctls["east"].url]
    r = subprocess.run([*base, "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["logic"] == "paced"
    r = subprocess.run(base, capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("logic paced;") and "latest decision at" in r.stdout
    assert "replication ceiling 400.0 Mbit/s (paced: 40% of the link)" in r.stdout


def test_a_logic_that_raises_is_logged_and_per_group_interval_keeps_protecting(
    world: LogicWorld,
) -> None:
    """The same controller restarted with a logic that raises at every decision."""
    w = world
    groups = [g["id"] for g in w.api("east", "GET", "/v1/groups")["groups"] if g["policy"] == "lg"]
    assert groups, "runs after the paced test's groups exist"
    w.ctls["east"].stop()
    w.logic = "explosive"
    w.start("east")
    t0 = w.now()

    def fell_back() -> dict[str, Any] | None:
        s: dict[str, Any] = w.api("east", "GET", "/v1/logic/status")
        return s if s["fell_back"] else None

    status = until("the fallback", fell_back)
    assert status["logic"] == "explosive" and status["active"] == "per-group-interval"
    assert status["error"] == "RuntimeError: explosive: cannot decide for 2 groups"
    assert status["decisions"]["by"] == "per-group-interval"
    # Protection goes on: every group gets a new checkpoint after the restart.
    until(
        "a checkpoint of each group after the restart",
        lambda: all(
            any(c["requested_at"] > t0 and c["completed_at"] for c in w.checkpoints(g))
            for g in groups
        ),
    )
    assert w.ctls["east"].alive()
    log = w.ctls["east"].log_path.read_text()
    assert "DR-Logic 'explosive' raised RuntimeError: explosive: cannot decide for 2 groups" in log
    assert "falls back to per-group-interval" in log and "Traceback" in log
