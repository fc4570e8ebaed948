"""Geo-recovery on the simulator for functional tests: a simulator and one real controller per site.

:class:`DrWorld` starts a simulator on a scaled clock and ``liferaft serve``
for ``east`` (protected) and ``west`` (recovery site), both reading the
simulator's clock, sharing one manifest key.  Tests drive the controllers
through their API (real Keystone tokens) and the clouds through openstacksdk;
a controller can be killed (``SIGKILL``, or at an engine kill hook through
``LIFERAFT_KILL_AT``) and started again on the same state directory.
Every wait polls a condition with a real-time deadline; nothing sleeps for
a fixed time to let something happen.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import httpx
import yaml

from tests.support.sim import SimProcess
from tests.support.wait import PATIENCE, wait_for

READY = re.compile(r"liferaft ready api=(\S+)")
SETTLED = ("done", "failed", "paused", "cancelled", "rolled_back", "rollback_failed")
TOPOLOGY: dict[str, Any] = {
    "sites": {"east": {"hosts": 3, "backup_site": "west"}, "west": {"hosts": 3}},
    "links": [{"a": "east", "b": "west", "bandwidth_mbps": 1000, "delay_ms": 20}],
}
#: A policy that never schedules a second checkpoint during a test: tests ask for them.
MANUAL = {
    "rpo_seconds": 1e6,
    "interval_seconds": 1e6,
    "retention_count": 10,
    "retention_age_seconds": 1e7,
    "consistency": "ordered-quiesce",
    "method": "snapshot-backup",
}


def until(what: str, check: Callable[[], Any], timeout: float = PATIENCE) -> Any:
    """Poll ``check`` (real time: the simulated world runs on its own) until it is truthy."""
    return wait_for(check, timeout, what)


class ApiError(AssertionError):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(f"HTTP {status}: {text}")
        self.status = status
        self.text = text


class Serve:
    """One ``liferaft serve`` process (its log goes to a file, appended across restarts)."""

    def __init__(self, config: Path, log: Path, env: dict[str, str] | None = None) -> None:
        self.log_path = log
        self._log: IO[str] = open(log, "a")  # noqa: SIM115 -- closed in stop()
        full = {k: v for k, v in os.environ.items() if not k.startswith("LIFERAFT_")}
        full.update(env or {})
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "liferaft", "serve", "--config", str(config)],
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
            start_new_session=True,
            env=full,
        )
        self.url = self._wait_ready(PATIENCE)

    def _wait_ready(self, timeout: float) -> str:
        assert self.proc.stdout is not None
        sel = selectors.DefaultSelector()
        sel.register(self.proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not sel.select(timeout=max(0.0, deadline - time.monotonic())):
                break
            line = self.proc.stdout.readline()
            if not line:
                break
            m = READY.search(line)
            if m:
                return m.group(1)
        self.stop()
        raise AssertionError(f"liferaft serve not ready:\n{self.log_path.read_text()[-3000:]}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def wait_dead(self, timeout: float = PATIENCE) -> int:
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()


class DrWorld:
    """A simulator (east, west) and a controller per site, on the simulator's scaled clock."""

    def __init__(
        self, tmp: Path, *, time_scale: float = 10.0, topology: dict[str, Any] | None = None
    ) -> None:
        self.tmp = tmp
        self.sim = SimProcess(
            tmp / "sim", stepped=False, time_scale=time_scale, topology=topology or TOPOLOGY
        )
        self.key = tmp / "manifest.key"
        self.key.write_text(secrets.token_hex(32))
        self.key.chmod(0o600)
        self.ctls: dict[str, Serve] = {}
        self.http = httpx.Client(timeout=60)
        self._tokens: dict[str, str] = {}
        self.container = "liferaft"

    # -- controllers ---------------------------------------------------------------------
    def config(self, site: str) -> Path:
        peer = "west" if site == "east" else "east"
        cfg = {
            "site": {"name": site, "clouds_yaml": self.sim.clouds_yaml},
            "peers": [{"name": peer, "clouds_yaml": self.sim.clouds_yaml}],
            "state_dir": str(self.tmp / f"ctl-{site}"),
            "api": {"port": 0},
            "logging": {"level": "warning"},
            "clock": {"source": "simulator", "control_url": self.sim.control_url},
            "leadership": {"lease_seconds": 60},
            # MANUAL policies: no checkpoint forced by DR-Logic's 30-minute bound either.
            "drlogic": {"max_protection_interval": 1e7},
            "protection": {
                "manifest_key": {"$file": str(self.key)},
                "container": self.container,
                "verifier": "simulator",
                "verifier_url": self.sim.control_url,
                "schedule_tick": 5,
            },
        }
        path = self.tmp / f"{site}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        return path

    def start(self, site: str, *, kill_at: str | None = None, wait_lead: bool = True) -> Serve:
        env = {"LIFERAFT_KILL_AT": kill_at} if kill_at else {}
        self.ctls[site] = Serve(self.config(site), self.tmp / f"ctl-{site}.log", env)
        if wait_lead:
            until(f"{site} to lead", lambda: self.api(site, "GET", "/v1/info")["leader"])
        return self.ctls[site]

    def stop(self) -> None:
        for c in self.ctls.values():
            c.stop()
        self.sim.stop()
        self.http.close()

    # -- calls ---------------------------------------------------------------------------
    def token(self, site: str, *, fresh: bool = False) -> str:
        if fresh or site not in self._tokens:
            conn = self.sim.connect(site)
            try:
                self._tokens[site] = str(conn.auth_token)
            finally:
                conn.close()
        return self._tokens[site]

    def call(self, site: str, method: str, path: str, body: Any = None) -> httpx.Response:
        """One API call; an unanswered request or a 503 (not leading yet) is retried."""
        deadline = time.monotonic() + PATIENCE
        fresh = False
        while True:
            headers = {"X-Auth-Token": self.token(site, fresh=fresh)}
            try:
                r = self.http.request(
                    method, self.ctls[site].url + path, json=body, headers=headers
                )
            except httpx.TransportError:
                if time.monotonic() > deadline or not self.ctls[site].alive():
                    raise
                time.sleep(0.3)
                continue
            if r.status_code == 401 and not fresh:
                fresh = True
                continue
            if r.status_code == 503 and time.monotonic() < deadline:
                time.sleep(0.3)
                continue
            return r

    def api(self, site: str, method: str, path: str, body: Any = None) -> Any:
        r = self.call(site, method, path, body)
        if r.status_code >= 400:
            raise ApiError(r.status_code, r.text)
        return r.json()

    def post_once(self, site: str, path: str, body: Any = None) -> Any:
        """One POST, not retried (it is not idempotent); ``None`` if the process died under it."""
        headers = {"X-Auth-Token": self.token(site)}
        try:
            r = self.http.post(self.ctls[site].url + path, json=body, headers=headers)
        except httpx.TransportError:
            return None
        if r.status_code >= 400:
            raise ApiError(r.status_code, r.text)
        return r.json()

    def ctl(self, method: str, path: str, body: Any = None) -> Any:
        return self.sim.control(method, path, body)

    def now(self) -> float:
        return self.sim.now()

    # -- protection ----------------------------------------------------------------------
    def checkpoints(self, group: str) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = self.api("east", "GET", f"/v1/checkpoints?group={group}")[
            "checkpoints"
        ]
        return out

    def checkpoint(self, group: str) -> dict[str, Any]:
        """Take a checkpoint now (after any in flight) and wait until it is complete."""
        until(
            "no checkpoint in flight",
            lambda: not any(c["state"] == "pending" for c in self.checkpoints(group)),
        )
        cp = self.api("east", "POST", f"/v1/groups/{group}/checkpoints")
        return self.wait_checkpoint(group, cp["id"])

    def workflow_state(self, workflow_id: str, site: str = "east") -> str | None:
        """A workflow's state, from the controller's event log (``None`` before it starts)."""
        events = self.api(site, "GET", f"/v1/events?workflow={workflow_id}&limit=1000")["events"]
        states = [e["to_state"] for e in events if e["subject"] == "workflow"]
        return states[-1] if states else None

    def wait_checkpoint(self, group: str, cid: str) -> dict[str, Any]:
        """Wait until the checkpoint's workflow ended (retention included); it must be done."""
        until(f"checkpoint {cid}", lambda: self.workflow_state(cid) in SETTLED)
        c = next(c for c in self.checkpoints(group) if c["id"] == cid)
        assert c["state"] in ("complete", "pruned"), c
        assert self.workflow_state(cid) == "done", c
        return c

    def wait_settled(self, group: str) -> list[dict[str, Any]]:
        """Every checkpoint of the group settled, its workflow ended; oldest first."""

        def settled() -> list[dict[str, Any]] | None:
            cps = self.checkpoints(group)
            if not cps or any(c["state"] == "pending" for c in cps):
                return None
            if any(self.workflow_state(c["workflow_id"]) not in SETTLED for c in cps):
                return None
            return cps

        until("checkpoints to settle", settled)
        return self.checkpoints(group)

    # -- recovery ------------------------------------------------------------------------
    def wait_run(self, run_id: str) -> dict[str, Any]:
        def settled() -> dict[str, Any] | None:
            r: dict[str, Any] = self.api("west", "GET", f"/v1/recovery/runs/{run_id}")
            return r if r["state"] in SETTLED else None

        out: dict[str, Any] = until(f"recovery run {run_id}", settled)
        return out


def build_vm(
    w: DrWorld, name: str, *, volumes: int = 1, canary: str | None = "database", rate: float = 2.0
) -> dict[str, Any]:
    """A server at east with ``volumes`` attached data volumes and a canary writing them."""
    c = w.sim.connect("east")
    try:
        image = c.image.find_image("cirros", ignore_missing=False)
        flavor = c.compute.find_flavor("m1.tiny", ignore_missing=False)
        net = c.network.find_network("private", ignore_missing=False)
        s = c.compute.create_server(
            name=name, image_id=image.id, flavor_id=flavor.id, networks=[{"uuid": net.id}]
        )
        vols = [
            str(c.block_storage.create_volume(name=f"{name}-v{i}", size=1).id)
            for i in range(volumes)
        ]
        until(f"{name} ACTIVE", lambda: c.compute.get_server(s.id).status == "ACTIVE")
        until(
            f"{name}'s volumes",
            lambda: all(c.block_storage.get_volume(v).status == "available" for v in vols),
        )
        for v in vols:
            c.compute.create_volume_attachment(s.id, volume_id=v)
        until(
            f"{name}'s attachments",
            lambda: all(c.block_storage.get_volume(v).status == "in-use" for v in vols),
        )
    finally:
        c.close()
    out: dict[str, Any] = {"id": str(s.id), "name": name, "volumes": vols, "canary": None}
    if canary and vols:
        kind = canary if len(vols) >= 2 or canary == "single" else "single"
        out["canary"] = w.ctl(
            "POST",
            "/control/canaries",
            {
                "site": "east",
                "server": out["id"],
                "volumes": vols if kind == "database" else vols[:1],
                "kind": kind,
                "rate": rate,
                "seed": 7,
            },
        )["canary"]["id"]
    return out


def backups(w: DrWorld, site: str = "east") -> dict[str, Any]:
    """The site's backups, by id, read through the Block Storage API."""
    c = w.sim.connect(site)
    try:
        return {str(b.id): b for b in c.block_storage.backups(details=True, all_projects=True)}
    finally:
        c.close()
