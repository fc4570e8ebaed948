"""Drive an HA controller against a stepped simulator, on the simulator's clock (tests, bench).

The controller runs in this process with :class:`SteppedClock`: every
``sleep`` registers a wake-up time, and :meth:`SimDrive.run_until` moves the
simulator's clock (``POST /control/clock/advance``) straight to the next
wake-up once the controller is idle (no cloud or BMC call in flight), so
the simulated time a recovery takes is what the controller's logic costs,
not what this machine's speed costs.  It reads the simulator only through
its HTTP APIs: the OpenStack APIs (through the real adapter), the BMCs
(sushy / pyghmi) and the control API (clock, BMC list).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx

from liferaft.clouds import Cloud, OpenStackCloud
from liferaft.config.model import HaSettings
from liferaft.engine.executor import Executor
from liferaft.engine.hooks import KillHooks
from liferaft.engine.leadership import Leadership
from liferaft.store import Store, Workflow, sqlite_url

from .notifiers import Notifier
from .service import HaService

T = TypeVar("T")


class _CountingPool(ThreadPoolExecutor):
    """The loop's default executor, counting calls in flight (``asyncio.to_thread``)."""

    def __init__(self) -> None:
        super().__init__(max_workers=32, thread_name_prefix="ha-io")
        self.pending = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.pending += 1
        fut = super().submit(fn, *args, **kwargs)

        def done(_f: Any) -> None:
            self.pending -= 1

        fut.add_done_callback(done)
        return fut


class SteppedClock:
    """A Clock whose time is the simulator's, moved only by :meth:`SimDrive.advance_to`."""

    def __init__(self, now: float) -> None:
        self._now = now
        self._seq = itertools.count()
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + max(0.0, seconds), next(self._seq), fut))
        await fut

    def next_wake(self) -> float | None:
        while self._sleepers and self._sleepers[0][2].done():
            heapq.heappop(self._sleepers)  # cancelled
        return self._sleepers[0][0] if self._sleepers else None

    def _set(self, now: float) -> None:
        self._now = now
        while self._sleepers and self._sleepers[0][0] <= now:
            _, _, fut = heapq.heappop(self._sleepers)
            if not fut.done():
                fut.set_result(None)


def settings_for(
    control_url: str, site: str, *, hosts: list[str] | None = None, **overrides: Any
) -> HaSettings:
    """HA settings for a simulated site: one segment of its hosts, Redfish fencing from its BMC list."""
    bmcs = httpx.get(control_url.rstrip("/") + "/control/bmcs", timeout=30).json()["bmcs"]
    mine = {b["host"]: b for b in bmcs.values() if b["site"] == site}
    names = hosts if hosts is not None else sorted(mine)
    segment: dict[str, Any] = {"name": f"{site}-all", "hosts": names}
    segment.update(overrides.pop("segment", {}))
    fencing = overrides.pop("fencing", None)
    data: dict[str, Any] = {
        "enabled": True,
        "segments": [segment],
        "hosts": [
            {
                "name": h,
                "fencers": fencing(h, mine[h])
                if fencing is not None
                else [
                    {
                        "driver": "redfish",
                        "address": mine[h]["redfish"]["url"],
                        "system_id": mine[h]["redfish"]["system_id"],
                        "username": mine[h]["username"],
                        "password": mine[h]["password"],
                        "verify_tls": False,
                    }
                ],
            }
            for h in segment["hosts"]
        ],
        "poll_interval": 5.0,
        "recheck_delay": 5.0,
        "notifier": "none",
    }
    data.update(overrides)
    return HaSettings.model_validate(data)


class SimDrive:
    """One HA controller in this process against a stepped simulator."""

    def __init__(
        self,
        *,
        control_url: str,
        clouds_yaml: str,
        state_dir: Path,
        settings: HaSettings,
        site: str = "east",
        notifier: Notifier | None = None,
        holder: str = "ha-test",
        hooks: KillHooks | None = None,
        ttl: float = 1e6,
    ) -> None:
        self.control_url = control_url.rstrip("/")
        self.http = httpx.AsyncClient(base_url=self.control_url, timeout=60)
        now = float(httpx.get(self.control_url + "/control/clock", timeout=30).json()["now"])
        self.clock = SteppedClock(now)
        state_dir.mkdir(parents=True, exist_ok=True)
        self.store = Store(sqlite_url(state_dir))
        self.cloud = OpenStackCloud(site, clouds_yaml=clouds_yaml)
        clouds: dict[str, Cloud] = {site: self.cloud}
        self.leadership = Leadership(
            self.store, "controller", clock=self.clock, holder=holder, ttl=ttl
        )
        self.executor = Executor(
            self.store, clock=self.clock, leadership=self.leadership, hooks=hooks
        )
        self.service = HaService(
            settings,
            site=site,
            store=self.store,
            clock=self.clock,
            clouds=clouds,
            leadership=self.leadership,
            executor=self.executor,
            notifier=notifier,
        )
        self.pool = _CountingPool()
        self._next_tick = now
        self.ticks = 0

    async def __aenter__(self) -> SimDrive:
        asyncio.get_running_loop().set_default_executor(self.pool)
        if not self.leadership.try_acquire():
            raise RuntimeError("the test controller could not take the leadership")
        await self.drive(self.service.start())
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.service.stop()
        await self.http.aclose()
        self.cloud.close()
        self.store.close()

    # -- the simulator's control API --------------------------------------------------
    async def control(self, method: str, path: str, body: Any = None) -> Any:
        r = await self.http.request(method, path, json=body)
        if r.status_code >= 400:
            raise RuntimeError(f"control {method} {path}: {r.status_code} {r.text}")
        return r.json()

    async def fault(self, kind: str, host: str, site: str = "east", **extra: Any) -> Any:
        return await self.control(
            "POST", "/control/faults", {"kind": kind, "target": f"{site}/{host}", **extra}
        )

    async def heal(self, kind: str, host: str, site: str = "east") -> Any:
        return await self.control(
            "POST", "/control/heal", {"kind": kind, "target": f"{site}/{host}"}
        )

    async def advance_to(self, t: float) -> None:
        if t > self.clock.now():
            res = await self.control(
                "POST", "/control/clock/advance", {"seconds": t - self.clock.now()}
            )
            self.clock._set(float(res.get("now", t)))

    async def idle(self, task: asyncio.Future[Any] | None = None) -> float | None:
        """Wait (real time) until the controller can only go on once the clock moves.

        That is when nothing it started is still running, or when every call
        in flight sleeps out its simulated API latency inside the simulator
        (``waiting_calls`` of ``GET /control/clock``) -- or, for a call queued
        behind another's client lock (openstacksdk authenticates once per
        connection), when some do and nothing has moved for a while.  Returns
        the simulator's next call wake-up (``None`` when no call waits), or
        ``None`` as soon as ``task`` is done.
        """
        quiet = busy = stable = 0
        nxt: float | None = None
        last: tuple[int, int] | None = None
        while quiet < 3:
            await asyncio.sleep(0.002)
            if task is not None and task.done():
                return None
            if self.pool.pending == 0:
                nxt, busy = None, 0
                quiet += 1
                continue
            busy += 1
            if busy < 5:  # a call that costs no simulated time is over in a few ms
                quiet = 0
                continue
            c = await self.control("GET", "/control/clock")
            waiting = int(c.get("waiting_calls", 0))
            sig = (self.pool.pending, waiting)
            stable = stable + 1 if sig == last else 0
            last = sig
            if waiting and (waiting >= self.pool.pending or stable >= 20):
                nxt = c.get("next_call_at")
                quiet += 1
            else:
                quiet = 0
        return nxt

    # -- driving ------------------------------------------------------------------------
    async def drive(self, aw: Awaitable[T]) -> T:
        """Await ``aw`` (which may make cloud calls), moving the clock past their API latency."""
        task = asyncio.ensure_future(aw)
        while not task.done():
            sim_next = await self.idle(task)
            if task.done():
                break
            cands = [t for t in (sim_next, self.clock.next_wake()) if t is not None]
            if not cands:
                await asyncio.sleep(0.01)  # running, not waiting on the clock yet
                continue
            await self.advance_to(max(min(cands), self.clock.now() + 0.001))
        return task.result()

    async def run_until(
        self,
        done: Callable[[], bool | Awaitable[bool]],
        *,
        max_seconds: float = 3600.0,
        max_step: float = 5.0,
    ) -> float:
        """Tick the HA service and move the clock until ``done()``; returns the simulated time.

        A tick runs as a task beside the clock: with the profile's API latency
        its cloud calls finish only once the clock has moved past their wake-up.
        """
        deadline = self.clock.now() + max_seconds
        tick: asyncio.Future[Any] | None = None
        try:
            while True:
                sim_next = await self.idle(tick)
                if tick is not None and tick.done():
                    tick.result()  # a tick that raised fails the run
                    tick = None
                    continue
                if not self.leadership.renew():
                    raise RuntimeError("the test controller lost its lease")
                res = done()
                if tick is None and (res if isinstance(res, bool) else await res):
                    return self.clock.now()
                now = self.clock.now()
                if tick is None and now >= self._next_tick:
                    self._next_tick = now + self.service.settings.poll_interval
                    self.ticks += 1
                    tick = asyncio.ensure_future(self.service.tick())
                    continue
                if now >= deadline:
                    raise TimeoutError(f"not done after {max_seconds:g} simulated seconds")
                wake = self.clock.next_wake()
                cands = (wake, sim_next, self._next_tick, now + max_step, deadline)
                target = min(x for x in cands if x is not None)
                await self.advance_to(max(target, now + 0.001))
        finally:
            if tick is not None and not tick.done():
                tick.cancel()

    def workflow(self, host: str) -> Workflow | None:
        from liferaft.store import ha as hastore

        row = hastore.get_host(self.store, self.service.site, host)
        if row is None or row.workflow_id is None:
            return None
        return self.store.get_workflow(row.workflow_id)

    def rejoin_workflow(self, host: str) -> Workflow | None:
        """The newest rejoin workflow of ``host`` (its id names the incarnation)."""
        found = [
            w for w in self.store.list_workflows(kind="ha-rejoin") if w.params.get("host") == host
        ]
        return max(found, key=lambda w: w.created_at) if found else None

    def host_state(self, host: str) -> str | None:
        from liferaft.store import ha as hastore

        row = hastore.get_host(self.store, self.service.site, host)
        return None if row is None else row.state

    def settled(self, host: str, state: str = "recovered") -> bool:
        """``host`` is in ``state`` and its recovery workflow's outcome is recorded.

        The workflow's report step sets the host's state; the workflow's own
        done record follows a moment later, so waiting on the host's state
        alone can stop in between (seen under load in CI).
        """
        if self.host_state(host) != state:
            return False
        wf = self.workflow(host)
        return wf is not None and wf.state not in ("pending", "running", "cancelling")


# -- a controller process for crash tests -------------------------------------------------------
async def _amain(args: Any) -> int:
    import json

    cfg = settings_for(args.control_url, args.site, **json.loads(args.settings))
    async with SimDrive(
        control_url=args.control_url,
        clouds_yaml=args.clouds_yaml,
        state_dir=Path(args.state_dir),
        settings=cfg,
        site=args.site,
        holder=args.holder,
        hooks=KillHooks.from_env(),
        ttl=args.ttl,
    ) as d:
        # A new incarnation takes over at once (the dead one's lease is forgotten).
        await d.run_until(lambda: d.settled(args.host, args.until), max_seconds=args.max_seconds)
        wf = d.workflow(args.host)
        print(json.dumps({"state": wf.state if wf else None, "now": d.clock.now()}), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m liferaft.ha.simdrive``: drive one host's recovery (kill hooks from the env)."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m liferaft.ha.simdrive")
    ap.add_argument("--control-url", required=True)
    ap.add_argument("--clouds-yaml", required=True)
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--site", default="east")
    ap.add_argument("--host", required=True)
    ap.add_argument("--until", default="recovered")
    ap.add_argument("--holder", default="ha-proc")
    ap.add_argument("--settings", default="{}", help="HA settings overrides (JSON)")
    ap.add_argument("--max-seconds", type=float, default=3600.0)
    ap.add_argument("--ttl", type=float, default=30.0)
    return asyncio.run(_amain(ap.parse_args(argv)))


if __name__ == "__main__":
    raise SystemExit(main())
