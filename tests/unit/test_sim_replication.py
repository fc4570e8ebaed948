"""Storage replication in the simulator, on a stepped clock: lag, last applied point, failover."""

from __future__ import annotations

from pathlib import Path

import pytest

from liferaft.sim.clock import SimClock
from liferaft.sim.http import ApiError
from liferaft.sim.topology import Topology
from liferaft.sim.volume.replication import SPEC_INTERVAL, SPEC_TARGET, replicator
from liferaft.sim.world import World

REPLICATED = {"replication_enabled": "<is> True", SPEC_TARGET: "west", SPEC_INTERVAL: "2"}


def make_world(tmp_path: Path, mbps: float = 1000) -> World:
    topo = Topology.model_validate(
        {
            "sites": {"east": {"hosts": 1}, "west": {"hosts": 1}},
            "links": [{"a": "east", "b": "west", "bandwidth_mbps": mbps, "delay_ms": 20}],
        }
    )
    return World(topo, tmp_path, SimClock("stepped"))


def advance(w: World, seconds: float) -> None:
    w.clock.advance(seconds)


def write(w: World, vid: str, block: int, payload: bytes) -> None:
    """A guest write: the bytes on the disk, and the write log entry a canary would make."""
    vol = w.sites["east"].volume.volumes[vid]
    seq = vol.disk.write_block(block, payload)
    w.writelog.record(w.clock.now(), "write", "east", volume=vid, block=block, seq=seq)


def test_replica_follows_with_lag_and_reports_its_last_applied_write(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    east = w.sites["east"].volume
    east.add_type("repl", extra_specs=REPLICATED)
    vol = east.create_volume(project_id="p", size_gb=1, volume_type="repl")
    rep = replicator(w).get("east", vol.id)
    bv = w.sites["west"].volume.backend[f"replica-{vol.id}"]
    assert bv is rep.backend and bv.cinder_id is None
    advance(w, 0.5)
    assert rep.applied is not None and rep.applied.write is None  # empty volume synced

    write(w, vol.id, 3, b"first")
    t_first = w.clock.now()
    advance(w, 0.1)
    assert bv.disk.read_block(3).rstrip(b"\0") == b""  # not yet: the next cycle ships it
    advance(w, 3.0)
    assert bv.disk.read_block(3).rstrip(b"\0") == b"first"
    assert rep.applied is not None and rep.applied.write is not None
    assert rep.applied.write["time"] == pytest.approx(t_first)
    assert 0 <= rep.describe(w.clock.now())["lag_s"] <= 2.0 + 1e-6

    # The link goes down: nothing applies, the lag grows past the interval.
    link = w.links.find("east-west")
    w.links.set_up(link, False)
    write(w, vol.id, 4, b"second")
    advance(w, 10.0)
    assert bv.disk.read_block(4).rstrip(b"\0") == b""
    assert rep.describe(w.clock.now())["lag_s"] > 8.0
    w.links.set_up(link, True)
    advance(w, 3.0)
    assert bv.disk.read_block(4).rstrip(b"\0") == b"second"

    # The source dies with a cycle in flight: that cycle never applies.
    applied = rep.applied
    w.links.degrade(link, bandwidth_mbps=0.001, delay_ms=None)
    write(w, vol.id, 5, b"lost")
    advance(w, 2.5)
    assert rep.in_flight is not None
    w.sites["east"].faults.down = True
    w.links.restore(link)
    advance(w, 5.0)
    assert rep.applied == applied and rep.state == "source-down"
    assert bv.disk.read_block(5).rstrip(b"\0") == b""

    # Managed at the target: the replica's bytes, and replication into it stops.
    west = w.sites["west"].volume
    managed = west.manage(
        host=west.backend_host, ref={"source-name": bv.name}, project_id="p", user_id="u"
    )
    assert managed.disk is bv.disk and bv.cinder_id == managed.id
    w.sites["east"].faults.down = False
    advance(w, 5.0)
    assert rep.state == "failed-over"
    assert managed.disk.read_block(4).rstrip(b"\0") == b"second"


def test_a_replicated_type_needs_another_site_as_target(tmp_path: Path) -> None:
    w = make_world(tmp_path)
    east = w.sites["east"].volume
    with pytest.raises(ApiError) as e:
        east.add_type("bad", extra_specs={"replication_enabled": "<is> True"})
    assert e.value.status == 400 and SPEC_TARGET in e.value.message and "west" in e.value.message
    with pytest.raises(ApiError):
        east.add_type("self", extra_specs={**REPLICATED, SPEC_TARGET: "east"})
    plain = east.create_volume(project_id="p", size_gb=1)
    with pytest.raises(ApiError) as e2:
        replicator(w).get("east", plain.id)
    assert e2.value.status == 404 and "not replicated" in e2.value.message


def test_replicas_of_one_stream_apply_together(tmp_path: Path) -> None:
    """A log and a data volume: one cycle captures both at one instant, applies both."""
    w = make_world(tmp_path, mbps=1)
    east = w.sites["east"].volume
    east.add_type("repl", extra_specs=REPLICATED)
    log = east.create_volume(project_id="p", size_gb=1, volume_type="repl")
    data = east.create_volume(project_id="p", size_gb=1, volume_type="repl")
    advance(w, 0.5)
    write(w, log.id, 1, b"log")
    write(w, data.id, 1, b"data")
    r_log, r_data = (replicator(w).get("east", v.id) for v in (log, data))
    for _ in range(40):
        advance(w, 0.25)
        got = [r.backend.disk.read_block(1).rstrip(b"\0") for r in (r_log, r_data)]
        assert got in ([b"", b""], [b"log", b"data"]), got
    assert got == [b"log", b"data"]
    assert r_log.applied is not None and r_data.applied is not None
    assert r_log.applied.at == r_data.applied.at
