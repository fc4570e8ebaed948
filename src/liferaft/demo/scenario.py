"""The demo scenario, step by step (``liferaft demo``).

1. start the simulator (east, west; scaled clock, realistic latencies) and one
   controller per site (``liferaft serve``, on the simulator's clock);
2. build a small VNF at east through the OpenStack APIs: a database server
   with a log and a data volume (a write-ahead canary workload writes both),
   two app servers, a load balancer;
3. protect it as one group with ordered quiesce (db first), let checkpoints
   replicate to west;
4. take east down entirely (``site-down``) and kill its controller;
5. at west: declare east down and recover;
6. verify from the restored data itself: canary freshness (data-loss window)
   and the consistency checker.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openstack
import openstack.config
import yaml

from .procs import Child

TIME_SCALE = 20.0
CANARY_RATE = 2.0  # database transactions per simulated second
TOPOLOGY = {
    "sites": {"east": {"hosts": 3, "backup_site": "west"}, "west": {"hosts": 3}},
    "links": [{"a": "east", "b": "west", "bandwidth_mbps": 1000, "delay_ms": 20}],
    "latency": "realistic",
}
POLICY = {
    "rpo_seconds": 120.0,
    "interval_seconds": 60.0,
    "retention_count": 3,
    "retention_age_seconds": 3600.0,
    "consistency": "ordered-quiesce",
    "method": "snapshot-backup",
}
CHECKPOINTS = 3
#: Real seconds any one wait may take before the demo gives up.  Generous: CI runs it on
#: two busy cores; the waits poll a condition, so a fast machine does not pay for them.
PATIENCE = 300.0

Say = Callable[[str], None]


@dataclass
class World:
    state_dir: Path
    sim: Child | None = None
    control: str = ""
    clouds_yaml: str = ""
    controllers: dict[str, Child] = field(default_factory=dict)
    apis: dict[str, str] = field(default_factory=dict)
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=120))
    tokens: dict[str, str] = field(default_factory=dict)

    def ctl(self, method: str, path: str, body: Any = None) -> Any:
        r = self.http.request(method, self.control + path, json=body)
        if r.status_code >= 400:
            raise RuntimeError(f"control {method} {path}: {r.status_code} {r.text}")
        return r.json()

    def now(self) -> float:
        return float(self.ctl("GET", "/control/clock")["now"])

    def connect(self, cloud: str) -> openstack.connection.Connection:
        cfg = openstack.config.OpenStackConfig(config_files=[self.clouds_yaml])
        return openstack.connection.Connection(config=cfg.get_one(cloud=cloud))

    def token(self, site: str, *, fresh: bool = False) -> str:
        if fresh or site not in self.tokens:
            self.tokens[site] = str(self.connect(site).auth_token)
        return self.tokens[site]

    def api(self, site: str, method: str, path: str, body: Any = None) -> Any:
        """Call a controller's API.

        A request that got no answer (connection reset, timeout) or a 503 (the
        controller does not lead yet) is sent again until ``PATIENCE`` runs
        out: every call the demo makes is idempotent (a repeated group create
        returns the group), so a retry of a request that did land is harmless.
        """
        deadline = time.monotonic() + PATIENCE
        fresh = False
        while True:
            headers = {"X-Auth-Token": self.token(site, fresh=fresh)}
            try:
                r = self.http.request(method, self.apis[site] + path, json=body, headers=headers)
            except httpx.TransportError as err:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{site} API {method} {path}: {err!r}") from None
                time.sleep(0.5)
                continue
            if r.status_code == 401 and not fresh:
                fresh = True  # the cached token expired: ask Keystone again, once
                continue
            if r.status_code == 503 and time.monotonic() < deadline:
                time.sleep(0.5)
                continue
            if r.status_code >= 400:
                raise RuntimeError(f"{site} API {method} {path}: {r.status_code} {r.text}")
            return r.json()

    def wait_leading(self, site: str) -> None:
        until(
            f"controller {site} to lead",
            lambda: self.api(site, "GET", "/v1/info")["leader"],
        )

    def stop(self) -> None:
        for c in self.controllers.values():
            c.stop()
        if self.sim is not None:
            self.sim.stop()
        self.http.close()


def until(what: str, check: Callable[[], Any], timeout: float = PATIENCE) -> Any:
    """Poll (real time: the simulated world runs on its own) until ``check`` is truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        time.sleep(0.2)
    raise RuntimeError(f"demo: timed out waiting for {what}")


def start(state_dir: Path, say: Say) -> World:
    w = World(state_dir)
    try:
        _start(w, state_dir, say)
    except BaseException:
        w.stop()
        raise
    return w


def _start(w: World, state_dir: Path, say: Say) -> None:
    state_dir.mkdir(parents=True, exist_ok=True)
    topo = state_dir / "topology.yaml"
    topo.write_text(yaml.safe_dump(TOPOLOGY))
    sim_dir = state_dir / "sim"
    w.sim = Child(
        [
            "sim",
            "serve",
            "--state-dir",
            str(sim_dir),
            "--topology",
            str(topo),
            "--time-scale",
            str(TIME_SCALE),
        ],
        state_dir / "sim.log",
        r"liferaft-sim ready control=(\S+) clouds=(\S+)",
        timeout=PATIENCE,
    )
    w.control, w.clouds_yaml = w.sim.match.group(1), w.sim.match.group(2)
    say(f"simulator ready: sites east, west; clock x{TIME_SCALE:g} ({w.control})")
    key = state_dir / "manifest.key"
    key.write_text(secrets.token_hex(32))
    key.chmod(0o600)
    for site, peer in (("east", "west"), ("west", "east")):
        cfg = {
            "site": {"name": site, "clouds_yaml": w.clouds_yaml},
            "peers": [{"name": peer, "clouds_yaml": w.clouds_yaml}],
            "state_dir": str(state_dir / f"ctl-{site}"),
            "api": {"port": 0},
            "logging": {"level": "warning"},
            "clock": {"source": "simulator", "control_url": w.control},
            "leadership": {"lease_seconds": 30},
            "protection": {
                "manifest_key": {"$file": str(key)},
                "verifier": "simulator",
                "verifier_url": w.control,
                "schedule_tick": 5,
            },
        }
        path = state_dir / f"{site}.yaml"
        path.write_text(yaml.safe_dump(cfg))
        child = Child(
            ["serve", "--config", str(path)],
            state_dir / f"ctl-{site}.log",
            r"liferaft ready api=(\S+)",
            timeout=PATIENCE,
        )
        w.controllers[site] = child
        w.apis[site] = child.match.group(1)
        say(f"controller {site} ready at {w.apis[site]}")
    for site in w.controllers:
        w.wait_leading(site)


@dataclass
class Vnf:
    db: str
    log: str
    data: str
    apps: list[str]
    lb: str
    canary: str


def build_vnf(w: World, say: Say) -> Vnf:
    c = w.connect("east")
    image = c.image.find_image("cirros", ignore_missing=False)
    flavor = c.compute.find_flavor("m1.tiny", ignore_missing=False)
    net = c.network.find_network("private", ignore_missing=False)

    def server(name: str) -> str:
        s = c.compute.create_server(
            name=name, image_id=image.id, flavor_id=flavor.id, networks=[{"uuid": net.id}]
        )
        return str(s.id)

    ids = {n: server(n) for n in ("db", "app-1", "app-2", "lb")}
    vols = {}
    for n in ("db-log", "db-data"):
        vols[n] = str(c.block_storage.create_volume(name=n, size=1).id)
    until(
        "the VNF's servers to be ACTIVE",
        lambda: all(c.compute.get_server(i).status == "ACTIVE" for i in ids.values()),
    )
    until(
        "volumes",
        lambda: all(c.block_storage.get_volume(v).status == "available" for v in vols.values()),
    )
    for v in vols.values():
        c.compute.create_volume_attachment(ids["db"], volume_id=v)
    until(
        "attachments",
        lambda: all(c.block_storage.get_volume(v).status == "in-use" for v in vols.values()),
    )
    canary = w.ctl(
        "POST",
        "/control/canaries",
        {
            "site": "east",
            "server": ids["db"],
            "volumes": [vols["db-log"], vols["db-data"]],
            "kind": "database",
            "rate": CANARY_RATE,
            "seed": 7,
        },
    )["canary"]["id"]
    say("VNF at east: db (+ log, data volumes, database canary), app-1, app-2, lb")
    return Vnf(
        ids["db"], vols["db-log"], vols["db-data"], [ids["app-1"], ids["app-2"]], ids["lb"], canary
    )


def protect(w: World, v: Vnf, say: Say) -> str:
    w.api("east", "PUT", "/v1/policies/vnf", POLICY)
    g = w.api("east", "POST", "/v1/groups", {"name": "vnf", "policy": "vnf"})
    members = [
        ("server", v.db, 0, 1),
        ("server", v.apps[0], 1, 2),
        ("server", v.apps[1], 1, 3),
        ("server", v.lb, 2, 4),
        ("volume", v.log, 0, 0),
        ("volume", v.data, 0, 0),
    ]
    for kind, rid, tier, rank in members:
        w.api(
            "east",
            "POST",
            f"/v1/groups/{g['id']}/members",
            {"kind": kind, "id": rid, "tier": tier, "rank": rank},
        )
    say(
        "protected as group 'vnf': quiesce db → app-1 → app-2 → lb; "
        f"checkpoint every {POLICY['interval_seconds']:g}s, RPO {POLICY['rpo_seconds']:g}s"
    )
    return str(g["id"])


def wait_checkpoints(w: World, gid: str, say: Say, n: int = CHECKPOINTS) -> list[dict[str, Any]]:
    seen: set[str] = set()

    def complete() -> list[dict[str, Any]] | None:
        cps = w.api("east", "GET", f"/v1/checkpoints?group={gid}")["checkpoints"]
        done = [c for c in cps if c["state"] in ("complete", "pruned")]
        for c in done:
            if c["id"] not in seen:
                seen.add(c["id"])
                kind = "incremental" if c["parent_id"] else "full"
                say(f"checkpoint {len(seen)} replicated to west ({kind}, {c['consistency']})")
        failed = [c for c in cps if c["state"] == "failed"]
        if failed:
            raise RuntimeError(f"demo: a checkpoint failed: {failed[-1]['error']}")
        return done if len(done) >= n else None

    return list(until(f"{n} checkpoints", complete))


def fail_east(w: World, say: Say) -> float:
    # Let the workload write past the last checkpoint, then lose the site.
    t0 = w.now()
    until("more writes", lambda: w.now() - t0 >= 20)
    w.ctl("POST", "/control/faults", {"kind": "site-down", "target": "east"})
    failure = w.now()
    w.controllers["east"].kill()
    say("east is DOWN (APIs, hosts, object store) and its controller is gone")
    return failure


def recover(w: World, say: Say) -> dict[str, Any]:
    run = w.api("west", "POST", "/v1/recovery", {"datacenter": "east", "declare_down": "east"})
    say(f"operator declared east down; recovery {run['id'][:12]} started at west")

    def settled() -> dict[str, Any] | None:
        r: dict[str, Any] = w.api("west", "GET", f"/v1/recovery/runs/{run['id']}")
        return r if r["state"] in ("done", "failed", "paused", "cancelled") else None

    final = until("the recovery", settled)
    if final["state"] != "done":
        raise RuntimeError(
            f"demo: recovery ended {final['state']}: {json.dumps(final['failed_steps'])} {final['error']}"
        )
    return final


def verify(w: World, v: Vnf, run: dict[str, Any], failure: float) -> dict[str, Any]:
    restored = {r["source"]: r["volume_id"] for r in run["report"]["volumes"]}
    vols = [restored[v.log], restored[v.data]]
    fresh = [
        w.ctl("GET", f"/control/volumes/west/{x}/freshness?failure_time={failure}") for x in vols
    ]
    newest = max(f["time"] for f in fresh if f.get("time") is not None)
    check = w.ctl(
        "POST", "/control/check-consistency", {"site": "west", "volumes": vols, "writer": v.canary}
    )
    # The simulator's own record: the canary's writes (the group's writer).  The restored
    # data should hold everything it wrote up to the recovery point's capture.
    writes = [
        e
        for e in w.ctl("GET", f"/control/writelog?kind=write&instance={v.db}")["entries"]
        if e["data"].get("writer") == v.canary
    ]
    captured = max(g["captured_at"] for g in run["report"]["groups"])
    last = max((e["time"] for e in writes if e["time"] <= failure), default=None)
    at_capture = max((e["time"] for e in writes if e["time"] <= captured), default=None)
    return {
        "data_verified": all(f.get("writer") == v.canary for f in fresh),
        "consistent": bool(check["consistent"]),
        "consistency_reason": check.get("reason"),
        "newest_canary": newest,
        "data_loss_s": failure - newest,
        "last_write_before_failure": last,
        "last_write_at_capture": at_capture,
        "log_data_loss_s": None if at_capture is None else failure - at_capture,
        "write_interval_s": 1.0 / CANARY_RATE,
        "restored_volumes": vols,
    }


def run_demo(state_dir: Path, say: Say, *, keep: bool) -> dict[str, Any]:
    t_real = time.monotonic()
    w = start(state_dir, say)
    try:
        vnf = build_vnf(w, say)
        gid = protect(w, vnf, say)
        cps = wait_checkpoints(w, gid, say)
        failure = fail_east(w, say)
        run = recover(w, say)
        data = verify(w, vnf, run, failure)
        rep = run["report"]
        out = {
            "servers_recovered": rep["servers_recovered"],
            "volumes_recovered": rep["volumes_recovered"],
            "rto_s": rep["rto_s"],
            **data,
            "failure_time": failure,
            "checkpoints": len(cps),
            "recovery_point": max(g["captured_at"] for g in rep["groups"]),
            "timeline": run["timeline"],
            "run_id": run["id"],
            "canary": vnf.canary,
            "wall_s": time.monotonic() - t_real,
        }
        if keep:
            out.update(
                api_url=w.apis["west"],
                clouds_yaml=w.clouds_yaml,
                control_url=w.control,
                state_dir=str(state_dir),
                pids=[c.pid for c in w.controllers.values() if c.proc.poll() is None]
                + ([w.sim.pid] if w.sim else []),
            )
    except BaseException:
        w.stop()  # a failed demo leaves nothing running, --keep or not
        raise
    if not keep:
        w.stop()
    return out
