"""A real controller process for crash and leadership tests, against the simulator.

``python -m tests.support.controller --store URL --control-url URL --clouds-yaml PATH
--holder NAME --params JSON [--ttl S] [--exit-when-settled]``

It runs :class:`liferaft.engine.controller.Controller` for the role
``fleet`` with the simulator's clock, and one workflow kind, ``fleet``: N
volumes, N ports and N servers (server ``i`` boots on port ``i``) created
through the real openstacksdk adapter, then a ``verify`` step.  Once it
leads it submits the workflow ``WORKFLOW_ID`` (a no-op if it exists).

It prints one line per event on stdout, which :class:`ControllerProcess`
reads: ``leading <epoch>``, ``lost <epoch>``, ``settled <state>``.  Kill and
pause points come from ``LIFERAFT_KILL_AT`` / ``LIFERAFT_PAUSE_AT``.
"""

from __future__ import annotations

import argparse
import asyncio
import faulthandler
import json
import os
import re
import selectors
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[2]
ROLE = "fleet"
WORKFLOW_ID = "fleet-1"
PREFIX = "lrk"  # every resource the fleet makes is named lrk-<kind>-<i>


def fleet_names(n: int, *, ports: bool = True) -> dict[str, list[str]]:
    """The names the fleet workflow gives its resources, by kind."""
    return {
        kind: [f"{PREFIX}-{kind}-{i}" for i in range(n)] if kind != "port" or ports else []
        for kind in ("volume", "port", "server")
    }


def build_fleet(clouds: dict[str, Any]) -> Any:
    from liferaft.engine import cloudsteps
    from liferaft.engine.executor import StepContext
    from liferaft.engine.workflow import RetryPolicy, StepDef, WorkflowDef

    def build(params: dict[str, Any]) -> WorkflowDef:
        site = params["site"]
        n = int(params["n"])
        names = fleet_names(n, ports=bool(params.get("ports", True)))

        async def undo(ctx: StepContext) -> None:
            await cloudsteps.delete_recorded(ctx, clouds)

        def volume(i: int) -> Any:
            async def run(ctx: StepContext) -> dict[str, str]:
                v = await cloudsteps.ensure_volume(
                    ctx, clouds[site], name=names["volume"][i], size_gb=1
                )
                return {"id": v.id}

            return run

        def port(i: int) -> Any:
            async def run(ctx: StepContext) -> dict[str, str]:
                p = await cloudsteps.ensure_port(
                    ctx, clouds[site], name=names["port"][i], network_id=params["network_id"]
                )
                return {"id": p.id}

            return run

        def server(i: int) -> Any:
            async def run(ctx: StepContext) -> dict[str, str]:
                port = ctx.results.get(f"port-{i}")
                s = await cloudsteps.ensure_server(
                    ctx,
                    clouds[site],
                    name=names["server"][i],
                    flavor=params["flavor"],
                    image_id=params["image_id"],
                    port_ids=[port["id"]] if port else None,
                    network_ids=None if port else [params["network_id"]],
                )
                return {"id": s.id}

            return run

        def verify(ctx: StepContext) -> dict[str, int]:
            return {"steps": len(ctx.results)}

        steps: list[StepDef] = []
        with_ports = bool(params.get("ports", True))
        for i in range(n):
            steps.append(StepDef(f"volume-{i}", volume(i), site=site, undo=undo))
            if with_ports:
                steps.append(StepDef(f"port-{i}", port(i), site=site, undo=undo))
            deps = (f"port-{i}",) if with_ports else ()
            steps.append(StepDef(f"server-{i}", server(i), depends_on=deps, site=site, undo=undo))
        steps.append(StepDef("verify", verify, depends_on=tuple(s.name for s in steps)))
        return WorkflowDef(
            "fleet",
            steps,
            site_concurrency=int(params.get("concurrency", 2)),
            retry=RetryPolicy(max_attempts=3, initial=1.0),
        )

    return build


async def amain(args: argparse.Namespace) -> int:
    from liferaft.clouds import OpenStackCloud
    from liferaft.engine.controller import Controller
    from liferaft.engine.hooks import KillHooks
    from liferaft.engine.simclock import SimulatorClock
    from liferaft.store import Store

    params = json.loads(args.params)
    clock = SimulatorClock(args.control_url, poll_interval=0.02)
    store = Store(args.store)
    clouds = {s: OpenStackCloud(s, clouds_yaml=args.clouds_yaml) for s in ("east", "west")}
    ctl = Controller(
        store, clock=clock, role=ROLE, holder=args.holder, ttl=args.ttl, hooks=KillHooks.from_env()
    )
    ctl.register("fleet", build_fleet(clouds))

    def say(line: str) -> None:
        print(line, flush=True)

    async def report(epoch: int) -> None:
        wf = await ctl.wait_settled(WORKFLOW_ID)
        if ctl.leading and ctl.leadership.epoch == epoch:
            say(f"settled {wf.state} {json.dumps({'epoch': wf.epoch, 'error': wf.error})}")

    def on_lead(epoch: int) -> None:
        say(f"leading {epoch}")
        ctl.submit("fleet", params, workflow_id=WORKFLOW_ID)
        if not args.exit_when_settled:
            asyncio.get_running_loop().create_task(report(epoch))

    ctl.on_lead.append(on_lead)
    ctl.on_lose.append(lambda epoch: say(f"lost {epoch}"))
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    task = ctl.start()
    say("started")
    try:
        if args.exit_when_settled:
            await ctl.wait_leading()
            await report(ctl.leadership.epoch or 0)
        else:
            waiter = asyncio.create_task(stop.wait())
            await asyncio.wait({waiter, task}, return_when=asyncio.FIRST_COMPLETED)
            waiter.cancel()
            if task.done():
                task.result()
    finally:
        await ctl.stop()
        store.close()
        clock.close()
        for c in clouds.values():
            c.close()
    return 0


def main() -> None:
    faulthandler.register(signal.SIGUSR1)  # `kill -USR1` dumps the stacks (debugging a hang)
    ap = argparse.ArgumentParser()
    ap.add_argument("--store", required=True)
    ap.add_argument("--control-url", required=True)
    ap.add_argument("--clouds-yaml", required=True)
    ap.add_argument("--holder", required=True)
    ap.add_argument("--params", required=True)
    ap.add_argument("--ttl", type=float, default=30.0)
    ap.add_argument("--exit-when-settled", action="store_true")
    sys.exit(asyncio.run(amain(ap.parse_args())))


# -- the test side -----------------------------------------------------------------------------
LINE = re.compile(r"^(started|leading|lost|settled)\b ?(.*)$")


class ControllerProcess:
    """One controller process; reads its event lines with a deadline (never sleeps)."""

    def __init__(
        self,
        *,
        store: str,
        sim: Any,
        holder: str,
        params: dict[str, Any],
        log_dir: Path,
        ttl: float = 30.0,
        exit_when_settled: bool = False,
        kill_at: str | None = None,
        pause_at: str | None = None,
    ) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIFERAFT_")}
        env["PYTHONPATH"] = str(ROOT)
        if kill_at:
            env["LIFERAFT_KILL_AT"] = kill_at
        if pause_at:
            env["LIFERAFT_PAUSE_AT"] = pause_at
        cmd = [
            sys.executable,
            "-m",
            "tests.support.controller",
            "--store",
            store,
            "--control-url",
            sim.control_url,
            "--clouds-yaml",
            sim.clouds_yaml,
            "--holder",
            holder,
            "--params",
            json.dumps(params),
            "--ttl",
            str(ttl),
        ]
        if exit_when_settled:
            cmd.append("--exit-when-settled")
        self.holder = holder
        self.log_path = log_dir / f"{holder}.log"
        self._log: IO[str] = open(self.log_path, "a")  # noqa: SIM115
        self.proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=self._log, text=True
        )
        self.lines: list[str] = []
        self._sel = selectors.DefaultSelector()
        assert self.proc.stdout is not None
        self._sel.register(self.proc.stdout, selectors.EVENT_READ)

    def expect(self, prefix: str, timeout: float = 90.0) -> str:
        """Read lines until one starts with ``prefix``; returns the rest of it."""
        for line in self.lines:
            if line.startswith(prefix):
                self.lines.remove(line)
                return line[len(prefix) :].strip()
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self._sel.select(timeout=max(0.0, deadline - time.monotonic())):
                break
            line = self.proc.stdout.readline()
            if not line:
                break
            line = line.rstrip("\n")
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
            self.lines.append(line)
        raise AssertionError(
            f"{self.holder}: no {prefix!r} line (exit {self.proc.poll()}); "
            f"saw {self.lines}; log:\n{self.log_path.read_text()[-4000:]}"
        )

    def wait_stopped(self) -> None:
        """Block until the process stopped itself (SIGSTOP at a pause hook); fail if it exited."""
        info = os.waitid(os.P_PID, self.proc.pid, os.WSTOPPED | os.WEXITED | os.WNOWAIT)
        assert info is not None and info.si_code == os.CLD_STOPPED, (
            f"{self.holder} did not pause: {info}; log:\n{self.log_path.read_text()[-4000:]}"
        )

    def cont(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)

    def wait(self, timeout: float = 120.0) -> int:
        return self.proc.wait(timeout=timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGCONT)
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()
        self._log.close()
        return self.proc.returncode


def port_tags_served(sim: Any, site: str = "east") -> bool:
    """Whether the simulator serves Neutron's tag API on ports (what an idempotent port needs).

    Probed by behaviour: a port is made, tagged and deleted.
    """
    import openstack.exceptions

    conn = sim.connect(site)
    try:
        net = conn.network.find_network("private", ignore_missing=False)
        probe = conn.network.create_port(network_id=net.id, name="lrk-probe")
        try:
            conn.network.set_tags(probe, ["probe"])
            return "probe" in (conn.network.get_port(probe.id).tags or [])
        except openstack.exceptions.HttpException:
            return False
        finally:
            conn.network.delete_port(probe, ignore_missing=True)
    finally:
        conn.close()


def fleet_params(
    sim: Any, n: int, *, concurrency: int = 2, ports: bool | None = None
) -> dict[str, Any]:
    """Workflow params for the simulator's default world (the ``private`` network, ``cirros``).

    ``ports`` (default: whether the simulator serves port tags) makes one port
    per server; without it servers boot on the network directly.
    """
    conn = sim.connect("east")
    try:
        net = conn.network.find_network("private", ignore_missing=False)
        image = conn.image.find_image("cirros", ignore_missing=False)
    finally:
        conn.close()
    return {
        "site": "east",
        "n": n,
        "network_id": net.id,
        "image_id": image.id,
        "flavor": "m1.tiny",
        "concurrency": concurrency,
        "ports": port_tags_served(sim) if ports is None else ports,
    }


def cloud_inventory(sim: Any, site: str = "east") -> dict[str, Counter[str]]:
    """How many servers, volumes and ports of each fleet name the cloud holds (read through its API)."""
    conn = sim.connect(site)
    try:
        servers = [s.name for s in conn.compute.servers(all_projects=True)]
        volumes = [v.name for v in conn.block_storage.volumes(all_projects=True)]
        ports = [p.name for p in conn.network.ports() if p.name != "lrk-probe"]
    finally:
        conn.close()

    def ours(names: list[str]) -> Counter[str]:
        return Counter(n for n in names if n and n.startswith(PREFIX + "-"))

    return {"server": ours(servers), "volume": ours(volumes), "port": ours(ports)}


if __name__ == "__main__":
    main()
