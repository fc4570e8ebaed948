"""Recovery run modes on the simulator: test (isolated, cleaned up), planned (no data lost),
and the quarantine of a site that returns after a disaster run.

Real controllers (``liferaft serve``) for east and west against the simulator over HTTP;
the checks read the clouds through openstacksdk and the data through the simulator's
canary reader, write log and double-running detector.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.drcontroller import DrWorld, build_vm, until
from tests.support.kills import count_recovered, recover_through_kills

from .test_recovery import RATE, addresses, lose_east, protect
from .test_recovery_access import PUBLIC_KEY

pytestmark = pytest.mark.timeout(900)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[DrWorld]:
    w = DrWorld(tmp_path)
    try:
        w.start("east")
        w.start("west")
        yield w
    finally:
        w.stop()


def cli(w: DrWorld, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "liferaft", *args, "--url", w.ctls["west"].url],
        capture_output=True,
        text=True,
        timeout=600,
        env={**w.sim.cli_env(), "LIFERAFT_TOKEN": w.token("west", fresh=True)},
    )


def writes(w: DrWorld, instance: str, writer: str | None = None) -> list[dict[str, Any]]:
    return [
        e
        for e in w.ctl("GET", f"/control/writelog?kind=write&instance={instance}")["entries"]
        if writer is None or e["data"].get("writer") == writer
    ]


def build_app_with_access(w: DrWorld, name: str) -> dict[str, Any]:
    """A server at east booted with key pair ``ops``, its port in security group ``<name>-sg``
    (with a rule), in anti-affinity server group ``<name>-anti``: the run recreates all three."""
    c = w.sim.connect("east")
    try:
        c.compute.create_keypair(name="ops", public_key=PUBLIC_KEY)
        sg = c.network.create_security_group(name=f"{name}-sg", description=name)
        c.network.create_security_group_rule(
            security_group_id=sg.id,
            direction="ingress",
            ether_type="IPv4",
            protocol="tcp",
            port_range_min=22,
            port_range_max=22,
        )
        group = c.compute.create_server_group(name=f"{name}-anti", policy="anti-affinity")
        image = c.image.find_image("cirros", ignore_missing=False)
        flavor = c.compute.find_flavor("m1.tiny", ignore_missing=False)
        net = c.network.find_network("private", ignore_missing=False)
        port = c.network.create_port(network_id=net.id, security_group_ids=[sg.id])
        s = c.compute.create_server(
            name=name,
            image_id=image.id,
            flavor_id=flavor.id,
            networks=[{"port": port.id}],
            key_name="ops",
            scheduler_hints={"group": group.id},
        )
        until(f"{name} ACTIVE", lambda: c.compute.get_server(s.id).status == "ACTIVE")
    finally:
        c.close()
    return {"id": str(s.id), "name": name, "volumes": [], "canary": None}


def run_resources(w: DrWorld, site: str, run_id: str) -> Counter[str]:
    """What the cloud still holds that carries the run's tag (metadata or Neutron tags), and
    the key pair and server group the run recreated for ``app`` (Nova gives them no tags)."""
    tag = f"liferaft_run={run_id}"
    c = w.sim.connect(site)
    try:
        found: Counter[str] = Counter()
        found["server"] = sum(
            1 for s in c.compute.servers() if (s.metadata or {}).get("liferaft_run") == run_id
        )
        found["volume"] = sum(
            1
            for v in c.block_storage.volumes(all_projects=True)
            if (v.metadata or {}).get("liferaft_run") == run_id
        )
        found["port"] = sum(1 for p in c.network.ports() if tag in (p.tags or []))
        found["network"] = sum(1 for n in c.network.networks() if tag in (n.tags or []))
        found["subnet"] = sum(1 for s in c.network.subnets() if tag in (s.tags or []))
        found["security_group"] = sum(
            1 for g in c.network.security_groups() if tag in (g.tags or [])
        )
        found["server_group"] = sum(1 for g in c.compute.server_groups() if g.name == "app-anti")
        found["keypair"] = int(c.compute.find_keypair("ops", ignore_missing=True) is not None)
        return found
    finally:
        c.close()


@pytest.mark.slow
def test_test_mode_isolated_production_untouched_then_cleaned_up(world: DrWorld) -> None:
    w = world
    db = build_vm(w, "db", volumes=2, canary="database", rate=RATE)
    app = build_app_with_access(w, "app")
    g = protect(w, db, [app])
    w.wait_settled(g["id"])
    w.checkpoint(g["id"])  # the newest manifest has every member
    east_addr = {s: addresses(w, "east", s) for s in (db["id"], app["id"])}

    # West dies right after each create of the isolate step (the network, its subnet) and
    # is started again, armed again, until the run settles: no second network or subnet.
    got = recover_through_kills(
        w,
        lambda: w.post_once("west", "/v1/recovery", {"datacenter": "east", "mode": "test"}),
        "after_cloud_call@isolate",
        lambda run: run_resources(w, "west", run["id"]),
        max_kills=4,
    )
    assert got.kills == 2, got.kills  # the network copy, then its subnet copy
    final = got.run
    run_id = got.run_id
    assert got.started is None or got.started["id"] == run_id
    assert final["mode"] == "test" and final["declared_down"] is None
    rep = final["report"]
    assert rep["servers_recovered"] == 2 and rep["volumes_recovered"] == 2

    # Recovered at west on the isolated copy of "private", same IPs and MACs; nothing of
    # the run on west's production network.
    c = w.sim.connect("west")
    try:
        private = c.network.find_network("private", ignore_missing=False)
        copies = [n for n in c.network.networks() if n.name == f"lr-test-{run_id[:12]}-private"]
        assert len(copies) == 1, copies
        subnets = list(c.network.subnets(network_id=copies[0].id))
        assert len(subnets) == 1
        (orig,) = list(c.network.subnets(network_id=private.id))
        assert subnets[0].cidr == orig.cidr
        by_source = {s["source"]: s["server_id"] for s in rep["servers"]}
        for sid in (db["id"], app["id"]):
            assert c.compute.get_server(by_source[sid]).status == "ACTIVE"
            assert addresses(w, "west", by_source[sid]) == east_addr[sid]
            assert {p.network_id for p in c.network.ports(device_id=by_source[sid])} == {
                copies[0].id
            }
        assert not [
            p for p in c.network.ports(network_id=private.id) if p.device_id in by_source.values()
        ]
    finally:
        c.close()
    assert got.resources == Counter(
        server=2, volume=2, port=2, network=1, subnet=1, security_group=1, server_group=1, keypair=1
    )

    # Production untouched: east's servers still ACTIVE, its database still writing after
    # the test run ended, from east only.
    t_done = w.now()
    until(
        "east writes after the test",
        lambda: any(e["time"] > t_done + 2 for e in writes(w, db["id"], db["canary"])),
    )
    c = w.sim.connect("east")
    try:
        assert all(c.compute.get_server(s).status == "ACTIVE" for s in (db["id"], app["id"]))
    finally:
        c.close()
    assert {e["site"] for e in writes(w, db["id"])} == {"east"}
    assert w.ctl("GET", "/control/double-running")["double_running"] == []

    # Cleanup, killed once after the ports were deleted (before that step was recorded),
    # resumed by the restarted controller; then asked again: nothing left, nothing to do.
    w.ctls["west"].stop()
    w.start("west", kill_at="before_record@ports")
    w.post_once("west", f"/v1/recovery/runs/{run_id}/cleanup")
    assert w.ctls["west"].wait_dead() == -9
    w.start("west")
    until(
        "cleanup to settle",
        lambda: (
            (w.api("west", "GET", f"/v1/recovery/runs/{run_id}")["cleanup"] or {}).get("state")
            in ("done", "failed")
        ),
    )
    cleaned = w.api("west", "GET", f"/v1/recovery/runs/{run_id}")["cleanup"]
    assert cleaned["state"] == "done", cleaned
    assert run_resources(w, "west", run_id) == Counter(
        server=0, volume=0, port=0, network=0, subnet=0, security_group=0, server_group=0, keypair=0
    )
    r = cli(w, "recovery-cleanup", run_id, "--json")
    assert r.returncode == 0, r.stderr
    again = json.loads(r.stdout)
    assert again["cleanup"]["state"] == "done"
    # East still runs, and west's production network was never touched.
    c = w.sim.connect("east")
    try:
        assert all(c.compute.get_server(s).status == "ACTIVE" for s in (db["id"], app["id"]))
    finally:
        c.close()


def port_states(w: DrWorld, site: str, server_id: str) -> list[bool]:
    c = w.sim.connect(site)
    try:
        return [bool(p.is_admin_state_up) for p in c.network.ports(device_id=server_id)]
    finally:
        c.close()


def server_state(w: DrWorld, site: str, server_id: str) -> tuple[str, bool]:
    c = w.sim.connect(site)
    try:
        s = c.compute.get_server(server_id)
        return str(s.status), bool(s.is_locked)
    finally:
        c.close()


def quarantine_of(w: DrWorld, site: str) -> dict[str, Any] | None:
    sites = w.api("west", "GET", "/v1/sites/quarantine")["sites"]
    return next((s for s in sites if s["site"] == site), None)


def restored_data(w: DrWorld, rep: dict[str, Any], vm: dict[str, Any]) -> tuple[float, bool]:
    """(newest canary time in the restored volumes, consistent) at west."""
    restored = {v["source"]: v["volume_id"] for v in rep["volumes"]}
    vols = [restored[v] for v in vm["volumes"]]
    fresh = [w.ctl("GET", f"/control/volumes/west/{v}/freshness") for v in vols]
    assert all(f.get("writer") == vm["canary"] for f in fresh), fresh
    check = w.ctl(
        "POST",
        "/control/check-consistency",
        {"site": "west", "volumes": vols, "writer": vm["canary"]},
    )
    return max(f["time"] for f in fresh), bool(check["consistent"])


@pytest.mark.slow
def test_planned_run_loses_nothing_and_quarantines_east_until_released(world: DrWorld) -> None:
    w = world
    db = build_vm(w, "db", volumes=2, canary="database", rate=RATE)
    app = build_vm(w, "app", volumes=0, canary=None)
    g = protect(w, db, [app])
    w.wait_settled(g["id"])
    # A planned run moves the group as its newest manifest describes it: one with every member.
    w.checkpoint(g["id"])
    t0 = w.now()
    until("writes past the checkpoint", lambda: w.now() - t0 >= 10)

    r = cli(w, "recovery", "east", "--mode", "planned", "--json")
    assert r.returncode == 0, r.stderr
    final = json.loads(r.stdout)
    assert final["mode"] == "planned" and final["state"] == "done", final
    steps = [t["step"] for t in final["timeline"]]
    # The stops in the quiesce order (db first), the final sync, then the recovery's steps.
    assert steps.index("stop:g0:s0") < steps.index("stop:g0:s1") < steps.index("sync:g0")
    assert any(s.startswith("boot:") for s in steps) and "recover" in steps
    rep = final["report"]
    assert rep["servers_recovered"] == 2 and rep["volumes_recovered"] == 2
    (grp,) = rep["groups"]
    assert grp["checkpoint_id"] == f"{final['id']}-sync-0"

    # No data lost: the restored volumes hold the database's very last write at east.
    last = max(e["time"] for e in writes(w, db["id"], db["canary"]))
    newest, consistent = restored_data(w, rep, db)
    assert consistent
    assert abs(newest - last) < 1e-6, (newest, last)
    stopped = next(t for t in final["timeline"] if t["step"] == "stop:g0:s0")
    assert last <= final["requested_at"] + stopped["end_s"] + 1e-6

    # East stays quarantined: its servers stopped, locked, their ports down.
    until(
        "east's quarantine enforced",
        lambda: all(
            server_state(w, "east", s) == ("SHUTOFF", True) and port_states(w, "east", s) == [False]
            for s in (db["id"], app["id"])
        ),
    )
    q = quarantine_of(w, "east")
    assert (
        q is not None and q["reachable"] and sorted(q["servers"]) == sorted((db["id"], app["id"]))
    )

    # Someone starts the old database: the controller stops it again.  Counted from the
    # quarantine's own record of what it stopped, not by catching the server running (the
    # controller may stop it before a poll of this test sees it ACTIVE).
    def stops() -> int:
        q = quarantine_of(w, "east")
        assert q is not None
        return sum(f"stopped {db['id']}" in a for a in q["actions"])

    before = stops()
    c = w.sim.connect("east")
    try:
        c.compute.start_server(db["id"])
    finally:
        c.close()
    until(
        "db stopped again by the quarantine",
        lambda: stops() > before and server_state(w, "east", db["id"]) == ("SHUTOFF", True),
    )

    # Released: unlocked, ports up, servers still stopped; no longer quarantined.
    r = cli(w, "site", "release", "east", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["mode"] == "release"
    for s in (db["id"], app["id"]):
        assert server_state(w, "east", s) == ("SHUTOFF", False)
        assert port_states(w, "east", s) == [True]
    assert quarantine_of(w, "east") is None
    r = cli(w, "site", "status", "--json")
    assert r.returncode == 0 and json.loads(r.stdout) == {"sites": []}, r.stdout


@pytest.mark.slow
def test_returning_site_quarantined_after_a_disaster_run_then_failed_back(world: DrWorld) -> None:
    w = world
    db = build_vm(w, "db", volumes=2, canary="database", rate=RATE)
    g = protect(w, db, [])
    w.wait_settled(g["id"])
    w.checkpoint(g["id"])  # the newest manifest has both volumes
    failure = lose_east(w)
    run = w.api("west", "POST", "/v1/recovery", {"datacenter": "east", "declare_down": "east"})
    final = w.wait_run(run["id"])
    assert final["state"] == "done", (final["failed_steps"], final["error"])
    (srv,) = final["report"]["servers"]
    restored = {v["source"]: v["volume_id"] for v in final["report"]["volumes"]}
    # The recovered database runs its workload at west, as the same instance.
    west_canary = w.ctl(
        "POST",
        "/control/canaries",
        {
            "site": "west",
            "server": srv["server_id"],
            "volumes": [restored[v] for v in db["volumes"]],
            "kind": "database",
            "rate": RATE,
            "seed": 8,
            "instance": db["id"],
        },
    )["canary"]["id"]
    q = quarantine_of(w, "east")
    assert q is not None and q["servers"] == [db["id"]]
    until(
        "east seen unreachable", lambda: (quarantine_of(w, "east") or {}).get("reachable") is False
    )

    # East comes back (power and APIs); its old database is kept off, locked, unplugged.
    w.ctl("POST", "/control/heal", {"kind": "site-down", "target": "east"})
    healed = w.now()
    until(
        "east's quarantine enforced",
        lambda: (
            server_state(w, "east", db["id"]) == ("SHUTOFF", True)
            and port_states(w, "east", db["id"]) == [False]
        ),
    )
    until(
        "west writes after east returned",
        lambda: any(e["site"] == "west" and e["time"] > healed + 5 for e in writes(w, db["id"])),
    )
    east_after = [e for e in writes(w, db["id"]) if e["site"] == "east" and e["time"] > failure]
    assert east_after == []
    assert w.ctl("GET", "/control/double-running")["double_running"] == []

    # Started again by an admin at east: stopped again by the quarantine within a tick or two
    # (it runs -- and writes -- only that long).
    c = w.sim.connect("east")
    try:
        manual = w.now()
        c.compute.start_server(db["id"])
    finally:
        c.close()
    until("db stopped again", lambda: server_state(w, "east", db["id"]) == ("SHUTOFF", True))
    restopped = w.now()
    assert restopped - manual <= 30, restopped - manual
    east_again = [
        e["time"] for e in writes(w, db["id"]) if e["site"] == "east" and e["time"] > failure
    ]
    assert all(manual <= t <= restopped for t in east_again), (manual, restopped, east_again)
    assert port_states(w, "east", db["id"]) == [False]
    q = quarantine_of(w, "east")
    assert (
        q is not None and q["reachable"] and any(f"stopped {db['id']}" in a for a in q["actions"])
    )

    east_addr = addresses(w, "west", srv["server_id"])

    # Failback.  Reprotect at west (twice: the same group), a first checkpoint towards east.
    rg = w.api("west", "POST", f"/v1/recovery/runs/{run['id']}/reprotect")["groups"]
    assert w.api("west", "POST", f"/v1/recovery/runs/{run['id']}/reprotect")["groups"] == rg
    ((grp),) = rg
    assert (grp["site"], grp["recovery_site"]) == ("west", "east")
    assert [m["cloud_id"] for m in grp["servers"]] == [srv["server_id"]]
    assert sorted(m["cloud_id"] for m in grp["volumes"]) == sorted(restored.values())

    def west_checkpoints() -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = w.api("west", "GET", f"/v1/checkpoints?group={grp['id']}")[
            "checkpoints"
        ]
        return out

    until(
        "west's first checkpoint", lambda: any(c["state"] == "complete" for c in west_checkpoints())
    )

    # East's controller is back; it runs the failback: west's copy stopped, a final sync, the
    # stopped old db at east retired (it holds the addresses), the db recovered at east.
    w.start("east")
    fb = w.api("east", "POST", "/v1/recovery", {"datacenter": "west", "mode": "failback"})

    def fb_settled() -> dict[str, Any] | None:
        r: dict[str, Any] = w.api("east", "GET", f"/v1/recovery/runs/{fb['id']}")
        return r if r["state"] in ("done", "failed", "paused", "cancelled") else None

    final = until("the failback run", fb_settled)
    assert final["state"] == "done", (final["failed_steps"], final["error"])
    assert final["mode"] == "failback"
    steps = [t["step"] for t in final["timeline"]]
    assert steps.index("stop:g0:s0") < steps.index("sync:g0") < steps.index("retire")
    rep = final["report"]
    (home,) = rep["servers"]
    assert home["source"] == srv["server_id"]
    c = w.sim.connect("east")
    try:
        names = Counter(s.name for s in c.compute.servers())
        assert names["db"] == 1, names  # the old copy retired, the new one in its place
        assert c.compute.get_server(home["server_id"]).status == "ACTIVE"
        assert [s.id for s in c.compute.servers() if s.name == "db"] == [home["server_id"]]
    finally:
        c.close()
    assert addresses(w, "east", home["server_id"]) == east_addr
    # No data lost: east's restored volumes hold west's last write.
    last = max(e["time"] for e in writes(w, db["id"], west_canary))
    back = {v["source"]: v["volume_id"] for v in rep["volumes"]}
    fresh = [w.ctl("GET", f"/control/volumes/east/{back[v]}/freshness") for v in restored.values()]
    assert all(f.get("writer") == west_canary for f in fresh), fresh
    assert abs(max(f["time"] for f in fresh) - last) < 1e-6
    # West's copy is now the stale one: stopped, and quarantined by east's controller.
    until(
        "west's copy quarantined by east",
        lambda: (
            server_state(w, "west", srv["server_id"]) == ("SHUTOFF", True)
            and port_states(w, "west", srv["server_id"]) == [False]
        ),
    )
    # West's quarantine of east has nothing left to guard: the old copy is gone.
    until(
        "west's quarantine of east lifted",
        lambda: (quarantine_of(w, "east") or {}).get("quarantined") is False,
    )
    # The only double run is the admin's start at east, inside the window it was let run.
    doubles = w.ctl("GET", "/control/double-running")["double_running"]
    assert all(manual <= d["start"] and d["end"] <= restopped for d in doubles), doubles


@pytest.mark.slow
def test_planned_run_survives_a_kill_at_each_cloud_create(world: DrWorld) -> None:
    """West killed right after the cloud accepted each create of a planned run: the final
    sync's snapshot and backup (east), then the volume, port and server (west)."""
    w = world
    vm = build_vm(w, "kp", volumes=1, canary="single", rate=RATE)
    g = protect(w, vm, [])
    assert w.wait_settled(g["id"])[-1]["state"] == "complete"

    got = recover_through_kills(
        w,
        lambda: w.post_once("west", "/v1/recovery", {"datacenter": "east", "mode": "planned"}),
        "after_cloud_call",
        lambda _run: count_recovered(w, "kp", vm["volumes"][0]),
        max_kills=6,
    )
    assert got.kills >= 4, got.kills
    final = got.run
    rep = final["report"]
    assert rep["servers_recovered"] == 1 and rep["volumes_recovered"] == 1

    sync = f"{got.run_id}-sync-0"
    servers, volumes, ports = got.resources.servers, got.resources.volumes, got.resources.ports
    assert servers["kp"] == 1, servers
    assert len(volumes) == 1 and volumes[0].status == "in-use", volumes
    assert ports == Counter({"kp-p0": 1}), ports
    c = w.sim.connect("east")
    try:
        made = [
            b
            for b in c.block_storage.backups(details=True, all_projects=True)
            if (getattr(b, "metadata", None) or {}).get("liferaft_run") == sync
        ]
        snaps = [
            s
            for s in c.block_storage.snapshots(details=True, all_projects=True)
            if (s.metadata or {}).get("liferaft_run") == sync
        ]
    finally:
        c.close()
    assert len(made) == 1, made  # one final backup, not one per attempt
    assert snaps == []  # the sync's snapshot made once and cleaned up
    # Nothing lost: the restored volume holds the last write made at east.
    last = max(e["time"] for e in writes(w, vm["id"], vm["canary"]))
    fresh = w.ctl("GET", f"/control/volumes/west/{volumes[0].id}/freshness")
    assert fresh.get("writer") == vm["canary"] and abs(fresh["time"] - last) < 1e-6, fresh
