"""Canary workloads in the real simulator: writers, freshness, consistency, health."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from openstack.connection import Connection

from tests.support.sim import SimProcess
from tests.support.wait import step_until


def _call(sim: SimProcess, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    r = sim.http.request(method, path, json=body)
    return r.status_code, r.json()


BAD_REQUESTS: list[tuple[str, str, Any, int, str]] = [
    (
        "POST",
        "/control/canaries",
        {"site": "mars", "server": "x", "volumes": ["v"]},
        400,
        "unknown site",
    ),
    (
        "POST",
        "/control/canaries",
        {"site": "east", "server": "x", "volumes": ["v"]},
        404,
        "server x not found",
    ),
    ("POST", "/control/canaries", [1, 2], 400, "JSON object"),
    ("GET", "/control/canaries/nope", None, 404, "canary nope not found"),
    ("DELETE", "/control/canaries/nope", None, 404, "canary nope not found"),
    ("GET", "/control/canaries/nope/history", None, 404, "canary nope not found"),
    ("GET", "/control/volumes/mars/v1/freshness", None, 404, "unknown site"),
    ("GET", "/control/volumes/east/v1/freshness", None, 404, "volume v1 not found"),
    ("GET", "/control/health/east/s1", None, 404, "server s1 not found"),
    ("GET", "/control/snapshots/east/s1/freshness", None, 404, "snapshot s1 not found"),
    (
        "POST",
        "/control/check-consistency",
        {"site": "east", "volumes": ["v"], "writer": "w"},
        404,
        "canary w not found",
    ),
    (
        "POST",
        "/control/check-consistency",
        {"site": "east", "volumes": [], "writer": "w"},
        400,
        "'volumes'",
    ),
    ("GET", "/control/double-running?gap=-1", None, 400, "'gap'"),
    ("POST", "/control/health/mars", {"servers": ["s1"]}, 404, "unknown site"),
    ("POST", "/control/health/east", {"servers": "s1"}, 400, "'servers'"),
]


def test_bad_requests_get_clear_errors(sim: SimProcess) -> None:
    """One simulator for every case: each starts a process, which is slow."""
    for method, path, body, status, text in BAD_REQUESTS:
        code, answer = _call(sim, method, path, body)
        assert (code, answer["error"]["code"]) == (status, status), (method, path)
        assert text in answer["error"]["message"], (method, path)


def test_nothing_runs_twice_in_an_empty_world(sim: SimProcess) -> None:
    assert sim.control("GET", "/control/canaries") == {"canaries": []}
    assert sim.control("GET", "/control/double-running") == {"double_running": []}


# -- a database server with two volumes, built through openstacksdk ---------------------
RATE = 10  # transactions per simulated second
# A fixed image id: the server is booted without asking the image service.
IMAGE_ID = "5c4b7a3e-2f1d-4e8a-9b6c-0d1e2f3a4b5c"
TOPOLOGY = {"images": [{"name": "cirros", "size_mb": 1, "id": IMAGE_ID}]}


def _volume_status(conn: Connection, vid: str) -> str:
    return str(conn.block_storage.get_volume(vid).status)


def _new_volume(sim: SimProcess, conn: Connection, name: str, **kw: Any) -> str:
    vol = conn.block_storage.create_volume(name=name, size=1, **kw)
    step_until(sim, lambda: _volume_status(conn, vol.id) == "available", f"volume {name}")
    return str(vol.id)


@dataclass
class Database:
    conn: Connection
    server: str
    log: str
    data: str
    canary: str


@pytest.fixture
def dbsim(sim_factory: Callable[..., SimProcess]) -> SimProcess:
    return sim_factory(topology=TOPOLOGY)


def _database(sim: SimProcess, *, rate: float = RATE) -> Database:
    conn = sim.connect("east")
    flavor = conn.compute.find_flavor("m1.tiny")
    # No network: the canary needs only the server and its volumes.
    server = conn.compute.create_server(
        name="db", image_id=IMAGE_ID, flavor_id=flavor.id, networks="none"
    )
    step_until(sim, lambda: conn.compute.get_server(server.id).status == "ACTIVE", "boot")
    log, data = _new_volume(sim, conn, "db-log"), _new_volume(sim, conn, "db-data")
    for vid in (log, data):
        conn.compute.create_volume_attachment(server.id, volume_id=vid)
    step_until(
        sim,
        lambda: all(_volume_status(conn, v) == "in-use" for v in (log, data)),
        "attachments",
    )
    canary = sim.control(
        "POST",
        "/control/canaries",
        {
            "site": "east",
            "server": server.id,
            "volumes": [log, data],
            "kind": "database",
            "rate": rate,
            "seed": 7,
        },
    )["canary"]
    assert canary["status"] == "writing"
    return Database(conn, server.id, log, data, canary["id"])


def _action(db: Database, action: str) -> None:
    """A server action by POST /servers/{id}/action, as a real client sends it."""
    r = db.conn.compute.post(f"/servers/{db.server}/action", json={action: None})
    assert r.status_code in (200, 202), r.text


def _snapshot(sim: SimProcess, db: Database, vid: str) -> str:
    snap = db.conn.block_storage.create_snapshot(volume_id=vid, force=True, name=f"s-{vid[:8]}")
    step_until(
        sim, lambda: db.conn.block_storage.get_snapshot(snap.id).status == "available", "snapshot"
    )
    return str(snap.id)


def _writes(sim: SimProcess, **query: str) -> list[dict[str, Any]]:
    qs = "&".join(f"{k}={v}" for k, v in {"kind": "write", **query}.items())
    entries: list[dict[str, Any]] = sim.control("GET", f"/control/writelog?{qs}")["entries"]
    return entries


def _check(sim: SimProcess, db: Database, volumes: list[str]) -> dict[str, Any]:
    body = {"site": "east", "volumes": volumes, "writer": db.canary}
    result: dict[str, Any] = sim.control("POST", "/control/check-consistency", body)
    return result


def test_restored_snapshots_tell_their_freshness_and_agree(dbsim: SimProcess) -> None:
    sim = dbsim
    db = _database(sim)
    sim.advance(30)
    # Quiesce, snapshot the log, let time pass, snapshot the data, thaw.
    _action(db, "quiesce")
    step_until(sim, lambda: db.conn.compute.get_server(db.server).task_state is None, "quiesce")
    snap_time = sim.now()
    log_snap = _snapshot(sim, db, db.log)
    sim.advance(5)
    data_snap = _snapshot(sim, db, db.data)
    _action(db, "unquiesce")
    sim.advance(10)

    restored = [
        _new_volume(sim, db.conn, f"r-{s[:8]}", snapshot_id=s) for s in (log_snap, data_snap)
    ]
    # Freshness from the restored bytes matches the write log's last write before the snapshot.
    fresh = sim.control("GET", f"/control/volumes/east/{restored[1]}/freshness")
    before = [e for e in _writes(sim, volume=db.data) if e["time"] <= snap_time]
    assert fresh["volume"] == db.data and fresh["writer"] == db.canary
    assert abs(fresh["time"] - before[-1]["time"]) <= 1 / RATE
    assert fresh["seq"] == before[-1]["data"]["seq"]

    # The snapshot itself reads the same as the volume restored from it.
    snap_fresh = sim.control("GET", f"/control/snapshots/east/{data_snap}/freshness")
    assert (snap_fresh["seq"], snap_fresh["time"]) == (fresh["seq"], fresh["time"])

    result = _check(sim, db, restored)
    assert result["consistent"], result["reason"]
    assert result["newest"][restored[0]]["volume"] == db.log
    # The originals moved on after the thaw.
    assert sim.control("GET", f"/control/canaries/{db.canary}")["canary"]["writes"] > fresh["seq"]


def test_snapshots_taken_apart_while_running_are_inconsistent(dbsim: SimProcess) -> None:
    sim = dbsim
    db = _database(sim)
    sim.advance(20)
    log_snap = _snapshot(sim, db, db.log)
    sim.advance(5)
    data_snap = _snapshot(sim, db, db.data)
    restored = [
        _new_volume(sim, db.conn, f"r-{s[:8]}", snapshot_id=s) for s in (log_snap, data_snap)
    ]
    result = _check(sim, db, restored)
    assert not result["consistent"] and not result["recoverable"]
    on_snapshots = sim.control(
        "POST",
        "/control/check-consistency",
        {"site": "east", "snapshots": [log_snap, data_snap], "writer": db.canary},
    )
    assert not on_snapshots["consistent"]
    assert f"data volume {restored[1]}" in result["reason"]
    assert f"ahead of log volume {restored[0]}" in result["reason"]


def test_quiesce_pauses_writes_and_the_application_stops_answering(dbsim: SimProcess) -> None:
    sim = dbsim
    db = _database(sim)
    sim.advance(5)
    _action(db, "quiesce")
    step_until(sim, lambda: db.conn.compute.get_server(db.server).task_state is None, "quiesce")
    frozen = sim.now()
    health = sim.control("GET", f"/control/health/east/{db.server}")
    assert health["booted"] and not health["application_answering"]
    # The batched ask answers the same, and an unknown server beside it gets its own error.
    many = sim.control("POST", "/control/health/east", {"servers": [db.server, "s1"]})
    assert many["servers"][db.server] == health
    assert many["servers"]["s1"]["error"]["code"] == 404
    sim.advance(30)
    _action(db, "unquiesce")
    step_until(sim, lambda: db.conn.compute.get_server(db.server).task_state is None, "unquiesce")
    thawed = sim.now()
    sim.advance(5)
    times = [e["time"] for e in _writes(sim, instance=db.server)]
    assert not [t for t in times if frozen < t <= thawed]
    assert [t for t in times if t > thawed]
    assert sim.control("GET", f"/control/health/east/{db.server}")["application_answering"]


def test_site_down_stops_writes(dbsim: SimProcess) -> None:
    sim = dbsim
    db = _database(sim)
    sim.advance(5)
    sim.control("POST", "/control/faults", {"kind": "site-down", "target": "east"})
    down = sim.now()
    sim.advance(30)
    assert not [e for e in _writes(sim, instance=db.server) if e["time"] > down]
    health = sim.control("GET", f"/control/health/east/{db.server}")
    assert not health["booted"] and not health["application_answering"]
    fresh = sim.control("GET", f"/control/volumes/east/{db.data}/freshness?failure_time={down}")
    assert 0 <= fresh["data_loss_window"] <= 1 / RATE
    history = sim.control("GET", f"/control/canaries/{db.canary}/history")
    assert history["entries"][-1]["seq"] == history["writes"]
    assert history["volumes"] == [{"id": db.log, "role": "log"}, {"id": db.data, "role": "data"}]


def _wait_backup(sim: SimProcess, conn: Connection, bid: str) -> None:
    step_until(sim, lambda: conn.block_storage.get_backup(bid).status == "available", "backup")


def test_group_snapshot_backed_up_and_restored_at_the_other_site(dbsim: SimProcess) -> None:
    """The geo-recovery path: a crash-consistent group snapshot at east, backups
    in west's object store, records imported and restored at west, east lost."""
    sim = dbsim
    db = _database(sim)
    bs = db.conn.block_storage
    gtype = next(iter(bs.group_types()))
    vtype = next(iter(bs.types()))
    group = bs.create_group(name="db", group_type=gtype.id, volume_types=[vtype.id])
    step_until(sim, lambda: bs.get_group(group.id).status == "available", "group")
    bs.update_group(group, add_volumes=f"{db.log},{db.data}")
    sim.advance(40)
    gs = bs.create_group_snapshot(group_id=group.id, name="cp1")
    taken = sim.now()
    step_until(sim, lambda: bs.get_group_snapshot(gs.id).status == "available", "group snapshot")
    snaps = {s.volume_id: s.id for s in bs.snapshots(details=True) if s.group_snapshot_id == gs.id}
    assert set(snaps) == {db.log, db.data}
    sim.advance(20)  # the originals move on

    records = []
    for vid in (db.log, db.data):
        b = bs.create_backup(volume_id=vid, snapshot_id=snaps[vid], force=True, name=f"b-{vid[:8]}")
        _wait_backup(sim, db.conn, b.id)
        records.append(bs.export_backup(b.id)["backup-record"])
    sim.advance(10)
    sim.control("POST", "/control/faults", {"kind": "site-down", "target": "east"})
    failure = sim.now()

    west = sim.connect("west").block_storage
    restored = []
    for rec in records:
        # openstacksdk's import_backup posts the wrong URL (its ``url`` argument is
        # shadowed), so send Cinder's import_record request through the same session.
        resp = west.post("/backups/import_record", json={"backup-record": rec})
        assert resp.status_code in (200, 201), resp.text
        imported = resp.json()["backup"]["id"]
        _wait_backup(sim, sim.connect("west"), imported)
        r = west.restore_backup(imported, name=f"restored-{imported[:8]}")
        vid = r.volume_id
        step_until(sim, lambda v=vid: west.get_volume(v).status == "available", "restore at west")
        restored.append(vid)

    result = sim.control(
        "POST",
        "/control/check-consistency",
        {"site": "west", "volumes": restored, "writer": db.canary},
    )
    assert result["consistent"], result["reason"]
    assert [result["newest"][v]["volume"] for v in restored] == [db.log, db.data]
    # The data-loss window, read from the restored bytes at west.
    fresh = sim.control(
        "GET", f"/control/volumes/west/{restored[1]}/freshness?failure_time={failure}"
    )
    assert fresh["data_loss_window"] == pytest.approx(failure - taken, abs=1 / RATE)


def test_unfenced_evacuation_is_counted_as_double_running(dbsim: SimProcess) -> None:
    """Force the host's service down without powering it off, then evacuate:
    the old guest keeps writing from its host while the new one writes too."""
    sim = dbsim
    db = _database(sim, rate=2)
    sim.advance(5)
    assert sim.control("GET", "/control/double-running") == {"double_running": []}
    source = db.conn.compute.get_server(db.server).compute_host
    db.conn.compute.update_service_forced_down(None, host=source, binary="nova-compute")
    db.conn.compute.evacuate_server(db.server)
    # From microversion 2.95 an evacuated server arrives stopped; start it.
    step_until(sim, lambda: db.conn.compute.get_server(db.server).task_state is None, "evacuation")
    if db.conn.compute.get_server(db.server).status == "SHUTOFF":
        db.conn.compute.start_server(db.server)
    step_until(sim, lambda: db.conn.compute.get_server(db.server).status == "ACTIVE", "start")
    target = db.conn.compute.get_server(db.server).compute_host
    assert target != source
    sim.advance(10)
    runs = sim.control("GET", "/control/double-running")["double_running"]
    assert [(r["instance"], r["first"]["host"], r["second"]["host"]) for r in runs] == [
        (db.server, source, target)
    ]
    ghost = [e for e in _writes(sim, instance=db.server) if e["data"].get("ghost")]
    assert ghost and {e["host"] for e in ghost} == {source}
