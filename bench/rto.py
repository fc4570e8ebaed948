"""Benchmark disaster recovery of a whole site: RTO against the plan's critical-path bound, and CPU.

A protected site ``east`` with 100 (``--quick``) and 1,000 servers in groups
of ten (a database at tier 0 with a 10 GB data volume, six app servers at
tier 1, three load balancers at tier 2; every server boots from its own
1 GB volume and has one port with a fixed IP and MAC) is recovered at
``west`` under the simulator's ``realistic`` latency profile -- API call
50 ms, port 0.5 s, volume restore 20 s + size ÷ 200 MB/s, boot 30 s,
attach 3 s; at most 20 concurrent builds per host (``west`` has one host
per 50 servers) and 50 concurrent restores per site -- on the simulator's
stepped clock.

**What is measured.**  The recovery controller runs in this process (the
real recovery workflow, engine, store, openstacksdk adapter and simulator
verifier), on a clock that moves only when it is idle: once every cloud
call in flight is waiting out its simulated API latency in the simulator
(``waiting_calls`` of ``GET /control/clock``) and nothing else runs, the
clock is advanced to the next instant anything is due (a call's latency
ends, or the controller's own poll sleep).  So the 50 ms of every API call
counts in the simulated RTO, and this machine's speed does not.

* ``rto_s``: the run's own report (the last server verified minus the
  moment the run was asked for), on the simulated clock;
* ``lower_bound_s``: :func:`liferaft.recovery.critical_path.bound` of the
  same plan on the same cloud (its docstring argues why no schedule can
  beat it); target: ``rto_s ≤ 1.2 x lower_bound_s``;
* ``cpu_ms_per_server``: the CPU time of this process (all threads) from
  the request to the run's end, minus the stepping driver's own control
  calls (timed on the loop's thread), divided by the servers; target: 40
  ms.  On a 2-core machine shared with other work, CPU time is stable but
  a little inflated by cache and scheduler contention.

**What is not measured.**  The protected site's checkpoints are made
straight through the Cinder API (a volume, a full backup into ``west``'s
object store, its exported record) and the manifests are written by this
benchmark in the format and signature the checkpoint workflow uses, without
servers at ``east``: recovery reads only the manifests and backups.

``--json`` prints one object whose ``cases`` each have ``servers``,
``rto_s``, ``lower_bound_s``, ``cpu_ms_per_server`` (and more: the
recovery site's cloud calls per server by kind, as adapter operations,
``ops_per_server``, and as HTTP requests, ``http_per_server``; the last
step of each kind per tier, ``timeline_s``); results also go to
``bench/results/rto.json`` (``rto-quick.json`` with ``--quick``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import re
import secrets
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.sim import SimProcess  # noqa: E402

from liferaft.clouds import OpenStackCloud  # noqa: E402
from liferaft.clouds.model import Server, Tag  # noqa: E402
from liferaft.engine.executor import Executor  # noqa: E402
from liferaft.engine.leadership import Leadership  # noqa: E402
from liferaft.protection import manifest as mf  # noqa: E402
from liferaft.protection.catalog import Catalog  # noqa: E402
from liferaft.recovery import disaster  # noqa: E402
from liferaft.recovery.critical_path import CloudLimits, bound, needs_from_params  # noqa: E402
from liferaft.recovery.disaster import RecoveryDeps  # noqa: E402
from liferaft.recovery.service import RecoveryService  # noqa: E402
from liferaft.recovery.verifiers import SimulatorVerifier, Verdict  # noqa: E402
from liferaft.sim.topology import PROFILES  # noqa: E402
from liferaft.store import Store, sqlite_url  # noqa: E402

T = TypeVar("T")
GROUP = 10  # servers per group: 1 database, 6 app, 3 load balancers
BOOT_GB = 1
DATA_GB = 10
SERVERS_PER_HOST = 50
CONTAINER = "liferaft"
TARGET_RATIO = 1.2
TARGET_CPU_MS = 40.0
DEBUG = bool(os.environ.get("RTO_DEBUG"))
PROFILE = os.environ.get("RTO_PROFILE")  # a file for cProfile stats of the loop's thread


class CountingPool(ThreadPoolExecutor):
    """The loop's default executor (``asyncio.to_thread``), counting calls in flight."""

    def __init__(self, workers: int = 64) -> None:
        super().__init__(max_workers=workers, thread_name_prefix="rto-io")
        self.pending = 0
        self.submitted = 0

    def submit(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        self.pending += 1
        self.submitted += 1
        fut = super().submit(fn, *args, **kwargs)

        def done(_f: Any) -> None:
            self.pending -= 1

        fut.add_done_callback(done)
        return fut


_ID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[0-9a-f]{32}")


class CallCounter:
    """Counts a cloud's calls by kind: adapter operations (one worker-thread job each) and
    the HTTP requests they make (method, service and path with ids as ``{id}``)."""

    def __init__(self, cloud: OpenStackCloud) -> None:
        self.ops: Counter[str] = Counter()
        self.http: Counter[str] = Counter()
        self.on = False
        sync = cloud._sync

        def counted_sync(op: str, fn: Any) -> Any:
            if self.on:
                self.ops[" ".join(w for w in op.split() if _opword(w))] += 1
            return sync(op, fn)

        cloud._sync = counted_sync  # type: ignore[method-assign]
        session = cloud.connection().session
        request = session.request

        def counted_request(url: str, method: str, *a: Any, **kw: Any) -> Any:
            if self.on:
                service = (kw.get("endpoint_filter") or {}).get("service_type", "")
                path = _ID.sub("{id}", urlsplit(url).path).strip("/")
                if service == "object-store" and "/" in path:
                    path = path.split("/", 1)[0] + "/{object}"
                self.http[f"{method} {service} /{path}".replace("  ", " ")] += 1
            return request(url, method, *a, **kw)

        session.request = counted_request  # type: ignore[method-assign]

    def per_server(self, servers: int) -> dict[str, Any]:
        def table(c: Counter[str]) -> dict[str, float]:
            return {k: round(n / max(1, servers), 2) for k, n in c.most_common()}

        return {
            "ops_per_server": table(self.ops),
            "http_per_server": table(self.http),
            "ops": sum(self.ops.values()),
            "http_requests": sum(self.http.values()),
        }


def _opword(w: str) -> bool:
    """Whether a word of an adapter operation names its kind (not a name or an id)."""
    return not (w.startswith(("'", '"', "(")) or _ID.search(w) or "=" in w)


class SteppedClock:
    """The controller's clock: the simulator's time, moved only by :class:`Driver`."""

    def __init__(self, now: float) -> None:
        self._now = now
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._sleepers.append((self._now + max(0.0, seconds), fut))
        await fut

    def next_wake(self) -> float | None:
        self._sleepers = [(t, f) for t, f in self._sleepers if not f.done()]
        return min((t for t, _ in self._sleepers), default=None)

    def set(self, now: float) -> None:
        self._now = now
        keep = []
        for t, f in self._sleepers:
            if t <= now + 1e-9:
                if not f.done():
                    f.set_result(None)
            else:
                keep.append((t, f))
        self._sleepers = keep


class CountingVerifier:
    """The simulator verifier, counting checks in flight (they read the control API)."""

    capabilities = frozenset({"verify"})

    def __init__(self, inner: SimulatorVerifier) -> None:
        self.inner = inner
        self.pending = 0

    async def check(self, site: str, server: Server) -> Verdict:
        self.pending += 1
        try:
            return await self.inner.check(site, server)
        finally:
            self.pending -= 1


class Driver:
    """Moves the stepped simulator (and the controller's clock) whenever the controller is idle."""

    def __init__(self, control_url: str, pool: CountingPool, verifier: CountingVerifier) -> None:
        self.http = httpx.Client(base_url=control_url.rstrip("/"), timeout=60)
        self.pool = pool
        self.verifier = verifier
        self.clock = SteppedClock(float(self.http.get("/control/clock").json()["now"]))
        self.cpu = 0.0  # thread CPU seconds spent in this driver's control calls
        self.advances = 0

    def _control(self, method: str, path: str, body: Any = None) -> Any:
        t0 = time.thread_time()
        try:
            r = self.http.request(method, path, json=body)
            r.raise_for_status()
            return r.json()
        finally:
            self.cpu += time.thread_time() - t0

    async def _idle(self, task: asyncio.Future[Any]) -> float | None:
        """Wait until everything in flight waits on simulated time; the simulator's next call wake.

        Idle when every call in flight sleeps out its latency in the simulator,
        or -- a call queued behind another one's client lock (openstacksdk
        authenticates once per connection) -- when some do and nothing has
        moved for a while.
        """
        quiet = stable = 0
        nxt: float | None = None
        last: tuple[int, int, int] | None = None
        while quiet < 3:
            await asyncio.sleep(0.001)
            if task.done():
                return None
            if self.verifier.pending:
                quiet = 0
                continue
            if self.pool.pending == 0:
                nxt = None
                quiet += 1
                continue
            c = self._control("GET", "/control/clock")
            waiting = int(c.get("waiting_calls", 0))
            sig = (self.pool.submitted, self.pool.pending, waiting)
            stable = stable + 1 if sig == last else 0
            last = sig
            if DEBUG:
                print(f"idle? pending={self.pool.pending} sim={c}", file=sys.stderr)
            if waiting >= self.pool.pending or (waiting and stable >= 20):
                nxt = c.get("next_call_at")
                quiet += 1
            else:
                quiet = 0
        return nxt

    async def run(self, coro: Awaitable[T]) -> T:
        task = asyncio.ensure_future(coro)
        while not task.done():
            sim_next = await self._idle(task)
            if task.done():
                break
            cands = [t for t in (sim_next, self.clock.next_wake()) if t is not None]
            if not cands:
                await asyncio.sleep(0.01)  # something is running that we do not see yet
                continue
            step = max(min(cands) - self.clock.now(), 0.0) + 1e-6
            res = self._control("POST", "/control/clock/advance", {"seconds": step})
            self.advances += 1
            if DEBUG:
                print(f"advance {step:.3f} -> {res['now']}", file=sys.stderr)
            self.clock.set(float(res["now"]))
        return task.result()

    def close(self) -> None:
        self.http.close()


def topology(servers: int) -> dict[str, Any]:
    hosts = max(2, math.ceil(servers / SERVERS_PER_HOST))
    return {
        "latency": "realistic",
        "sites": {
            "east": {"hosts": 1, "backup_site": "west"},
            "west": {"hosts": hosts, "max_concurrent_restores": 50},
        },
        "links": [{"a": "east", "b": "west", "bandwidth_mbps": 10000, "delay_ms": 20}],
        "networks": [{"name": "private", "cidr": "10.0.0.0/20"}],
    }


def plan_shape(servers: int) -> list[list[tuple[str, int, bool]]]:
    """Groups of (role, tier, has a data volume)."""
    roles = [("db", 0, True)] + [("app", 1, False)] * 6 + [("lb", 2, False)] * 3
    groups = []
    left = servers
    while left > 0:
        groups.append(roles[: min(GROUP, left)])
        left -= GROUP
    return groups


async def _backed_up(
    cloud: OpenStackCloud, clock: SteppedClock, name: str, gb: int
) -> dict[str, Any]:
    """A volume at east, fully backed up into west's object store; its id, backup and record."""
    tag = Tag(run="bench-rto", step=name)
    vol = await cloud.create_volume(name=name, tag=tag, size_gb=gb)
    while (await cloud.get_volume(vol.id)).status != "available":
        await clock.sleep(1.0)
    b = await cloud.create_backup(
        vol.id, name=f"{name}-b", tag=tag, incremental=False, container=CONTAINER
    )
    while (b := await cloud.get_backup(b.id)).status != "available":
        if b.status.startswith("error"):
            raise RuntimeError(f"backup of {name} failed: {b.status}")
        await clock.sleep(1.0)
    rec = await cloud.export_backup_record(b.id)
    return {
        "id": vol.id,
        "name": name,
        "size_gb": gb,
        "volume_type": None,
        "bootable": False,
        "metadata": {},
        "attached_to": None,
        "device": None,
        "backup": {
            "volume_id": vol.id,
            "backup_id": b.id,
            "incremental": False,
            "size_gb": b.size_gb,
            "record": {"backup_service": rec.backup_service, "backup_url": rec.backup_url},
        },
    }


async def protect(
    east: OpenStackCloud, west: OpenStackCloud, clock: SteppedClock, servers: int, key: bytes
) -> int:
    """Checkpoints of every group at west (backups and signed manifests); returns the volumes."""
    sem = asyncio.Semaphore(48)

    async def one(name: str, gb: int) -> dict[str, Any]:
        async with sem:
            return await _backed_up(east, clock, name, gb)

    n_vol = 0
    ip = 10
    for gi, roles in enumerate(plan_shape(servers)):
        jobs = []
        for si, (role, _tier, data) in enumerate(roles):
            jobs.append(one(f"g{gi}-{role}{si}-boot", BOOT_GB))
            if data:
                jobs.append(one(f"g{gi}-{role}{si}-data", DATA_GB))
        vols = await asyncio.gather(*jobs)
        by_name = {v["name"]: v for v in vols}
        n_vol += len(vols)
        srv = []
        for si, (role, tier, data) in enumerate(roles):
            sid = str(uuid.uuid4())
            boot = by_name[f"g{gi}-{role}{si}-boot"]
            boot.update(attached_to=sid, device="/dev/vda", bootable=True)
            volumes = [{"volume_id": boot["id"], "device": "/dev/vda", "boot_index": 0}]
            if data:
                d = by_name[f"g{gi}-{role}{si}-data"]
                d.update(attached_to=sid, device="/dev/vdb")
                volumes.append({"volume_id": d["id"], "device": "/dev/vdb", "boot_index": None})
            ip += 1
            srv.append(
                {
                    "id": sid,
                    "name": f"g{gi}-{role}{si}",
                    "flavor": "m1.tiny",
                    "vcpus": 1,
                    "ram_mb": 512,
                    "image_id": None,
                    "image_name": None,
                    "key_name": None,
                    "metadata": {"role": role},
                    "availability_zone": None,
                    "tier": tier,
                    "quiesce_rank": tier,
                    "boot": {"from": "volume", "volume_id": boot["id"]},
                    "ports": [
                        {
                            "id": str(uuid.uuid4()),
                            "name": f"g{gi}-{role}{si}-p0",
                            "network_id": "",
                            "network_name": "private",
                            "fixed_ips": [
                                {
                                    "subnet_id": None,
                                    "ip_address": f"10.0.{ip // 250}.{ip % 250 + 2}",
                                }
                            ],
                            "mac_address": f"fa:16:3e:{(ip >> 16) & 255:02x}:{(ip >> 8) & 255:02x}:{ip & 255:02x}",
                            "security_group_ids": [],
                        }
                    ],
                    "volumes": volumes,
                }
            )
        gid = f"group-{gi:04d}"
        cp = uuid.uuid4().hex
        doc = {
            "checkpoint_id": cp,
            "group": {
                "id": gid,
                "name": f"vnf-{gi}",
                "site": "east",
                "recovery_site": "west",
                "policy": {"method": "snapshot-backup", "consistency": "crash-consistent"},
            },
            "parent_id": None,
            "chain_id": cp,
            "captured_at": clock.now(),
            "consistency": "crash-consistent",
            "quiesce_order": [s["id"] for s in srv],
            "servers": srv,
            "volumes": vols,
            "written_at": clock.now(),
        }
        await west.put_object(CONTAINER, mf.object_name(gid, clock.now(), cp), mf.sign(doc, key))
    return n_vol


async def raise_quotas(sim: SimProcess, servers: int) -> None:
    """Room for the plan in both sites' volume and port quotas (Cinder's and Neutron's quota
    updates, as an admin would)."""

    def put() -> None:
        for site in ("east", "west"):
            c = sim.connect(site)
            try:
                pid = c.current_project_id
                lim = 4 * servers + 100
                body = {"quota_set": {"volumes": lim, "backups": lim, "snapshots": lim}}
                r = c.block_storage.put(f"/os-quota-sets/{pid}", json=body)
                r.raise_for_status()
                # One port per server (Neutron's default quota is 500).
                r = c.network.put(f"/quotas/{pid}", json={"quota": {"port": lim}})
                r.raise_for_status()
            finally:
                c.close()

    await asyncio.to_thread(put)


async def case(servers: int, work: Path) -> dict[str, Any]:
    topo = topology(servers)
    hosts = topo["sites"]["west"]["hosts"]
    sim = SimProcess(work / f"sim-{servers}", topology=topo, timeout=120)
    pool = CountingPool()
    loop = asyncio.get_running_loop()
    loop.set_default_executor(pool)
    verifier = CountingVerifier(SimulatorVerifier(url=sim.control_url))
    drv = Driver(sim.control_url, pool, verifier)
    east = OpenStackCloud("east", clouds_yaml=sim.clouds_yaml)
    west = OpenStackCloud("west", clouds_yaml=sim.clouds_yaml)
    (work / f"ctl-{servers}").mkdir(parents=True, exist_ok=True)
    store = Store(sqlite_url(work / f"ctl-{servers}"))
    key = secrets.token_hex(32).encode()
    try:
        t0 = time.monotonic()
        await drv.run(raise_quotas(sim, servers))
        volumes = await drv.run(protect(east, west, drv.clock, servers, key))
        setup_s = time.monotonic() - t0
        leadership = Leadership(store, "controller", clock=drv.clock, holder="bench", ttl=1e9)
        if not leadership.try_acquire():
            raise RuntimeError("the bench controller could not take the leadership")
        executor = Executor(store, clock=drv.clock, leadership=leadership)
        deps = RecoveryDeps(site="west", cloud=west, verifier=verifier, clock=drv.clock)
        executor.register(disaster.KIND, lambda p: disaster.build(deps, p))
        service = RecoveryService(
            site="west",
            cloud=west,
            catalog=Catalog(store),
            clock=drv.clock,
            key=key,
            container=CONTAINER,
            peers=["east"],
        )
        submitted: dict[str, Any] = {}

        def submit(kind: str, params: dict[str, Any], wid: str) -> None:
            executor.submit(kind, params, workflow_id=wid)
            submitted.update(id=wid, params=params)

        counter = CallCounter(west)
        counter.on = True
        calls0 = pool.submitted
        drv_cpu0 = drv.cpu
        cpu0 = time.process_time()
        main0 = time.thread_time()
        w0 = time.monotonic()
        prof = None
        if PROFILE:
            import cProfile

            prof = cProfile.Profile(time.thread_time)  # CPU of the loop thread, not wall time
            prof.enable()

        async def recover() -> Any:
            await service.start_disaster("east", declare_down="east", submit=submit)
            return await executor.run(submitted["id"])

        wf = await drv.run(recover())
        counter.on = False
        if prof is not None and PROFILE:
            prof.disable()
            prof.dump_stats(PROFILE)
        real_s = time.monotonic() - w0
        main_s = time.thread_time() - main0 - (drv.cpu - drv_cpu0)
        cpu_s = time.process_time() - cpu0 - (drv.cpu - drv_cpu0)
        if wf.state != "done":
            raise RuntimeError(f"recovery ended {wf.state}: {wf.error}")
        rep = store.get_step(wf.id, "report").result
        limits = CloudLimits(
            api=PROFILES["realistic"].api_call,
            port=PROFILES["realistic"].port_create,
            restore_base=PROFILES["realistic"].volume_restore_base,
            restore_mb_s=PROFILES["realistic"].volume_restore_mb_s,
            boot=PROFILES["realistic"].boot,
            attach=PROFILES["realistic"].attach,
            hosts=hosts,
            max_builds=20,
            max_restores=50,
        )
        b = bound(needs_from_params(submitted["params"]), limits)
        recovered = int(rep["servers_recovered"])
        req = float(submitted["params"]["requested_at"])
        tier_of = {
            f"g{gi}:s{si}": int(srv.get("tier", 0))
            for gi, g in enumerate(submitted["params"]["groups"])
            for si, srv in enumerate(g["manifest"]["servers"])
        }
        for gi, vi, name in disaster.restore_order(submitted["params"]):
            vid = submitted["params"]["groups"][gi]["manifest"]["volumes"][vi]["id"]
            tier_of[name.partition(":")[2]] = min(
                (
                    int(srv.get("tier", 0))
                    for srv in submitted["params"]["groups"][gi]["manifest"]["servers"]
                    if any(v["volume_id"] == vid for v in srv.get("volumes", []))
                ),
                default=0,
            )
        timeline: dict[str, float] = {}
        for st in store.get_steps(wf.id):
            kind, _, rest = st.name.partition(":")
            slot = f"{kind}:tier{tier_of[rest]}" if rest in tier_of else kind
            timeline[slot] = max(timeline.get(slot, 0.0), round(st.updated_at - req, 2))
        return {
            "servers": servers,
            "servers_recovered": recovered,
            "volumes": volumes,
            "volumes_recovered": int(rep["volumes_recovered"]),
            "hosts": hosts,
            "rto_s": round(float(rep["rto_s"]), 2),
            "lower_bound_s": round(b.bound_s, 2),
            "ratio": round(float(rep["rto_s"]) / b.bound_s, 3),
            "bound": b.as_dict(),
            "timeline_s": dict(sorted(timeline.items(), key=lambda kv: kv[1])),
            "cpu_ms_per_server": round(cpu_s * 1000 / max(1, recovered), 1),
            "cpu_s": round(cpu_s, 2),
            "cpu_loop_thread_s": round(main_s, 2),
            "cloud_calls": pool.submitted - calls0,
            **counter.per_server(servers),
            "clock_advances": drv.advances,
            "real_s": round(real_s, 1),
            "setup_real_s": round(setup_s, 1),
        }
    finally:
        store.close()
        east.close()
        west.close()
        drv.close()
        sim.stop()


async def amain(args: argparse.Namespace) -> dict[str, Any]:
    sizes = args.servers or ([100] if args.quick else [100, 1000])
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="bench-rto-") as tmp:
        cases = [await case(n, Path(tmp)) for n in sizes]
    return {
        "quick": args.quick,
        "profile": "realistic",
        "targets": {"ratio": TARGET_RATIO, "cpu_ms_per_server": TARGET_CPU_MS},
        "cases": cases,
        "real_seconds": round(time.monotonic() - started, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="100 servers only (under a minute)")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--servers", type=int, action="append", help="a case size (repeatable)")
    args = ap.parse_args()
    if DEBUG:
        import faulthandler
        import signal

        faulthandler.register(signal.SIGUSR1, all_threads=True)
    result = asyncio.run(amain(args))
    out = ROOT / "bench" / "results" / ("rto-quick.json" if args.quick else "rto.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result))
        return
    for c in result["cases"]:
        print(
            f"{c['servers']:>5} servers: RTO {c['rto_s']:8.1f} s, bound {c['lower_bound_s']:.1f} s "
            f"(x{c['ratio']}; target {TARGET_RATIO}); CPU {c['cpu_ms_per_server']} ms/server "
            f"(target {TARGET_CPU_MS:g}); {c['cloud_calls']} cloud calls, {c['real_s']} s real"
        )
        for what in ("ops_per_server", "http_per_server"):
            print(f"      {what}: " + ", ".join(f"{k} {v}" for k, v in c[what].items()))


if __name__ == "__main__":
    main()
