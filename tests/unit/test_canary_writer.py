"""Canary writers on a stepped clock, against a minimal stand-in for a site.

The stand-in has only what the contract in docs/sim-internals.md promises
canaries (servers, hosts, volumes with disks and attachments,
``server_is_running``, ``ghost_running``); the functional tests run the same
writers inside the real simulator.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest

from liferaft.sim.canary import MIN_TICK, CanaryRegistry, registry
from liferaft.sim.canary_check import check_consistency
from liferaft.sim.canary_health import guest_health
from liferaft.sim.canary_read import read_freshness
from liferaft.sim.clock import STEPPED_EPOCH, SimClock
from liferaft.sim.disks import Disk
from liferaft.sim.http import ApiError
from liferaft.sim.world import World
from liferaft.sim.writelog import WriteLog, double_running

BS = 4096


@dataclass
class Host:
    name: str
    powered_on: bool = True

    def alive(self) -> bool:
        return self.powered_on


@dataclass
class Server:
    id: str
    host: str | None
    status: str = "ACTIVE"
    power_state: int = 1
    quiesced: bool = False


@dataclass
class Attachment:
    server_id: str


@dataclass
class Volume:
    id: str
    disk: Disk
    attachments: list[Attachment] = field(default_factory=list)


class Compute:
    def __init__(self) -> None:
        self.hosts = {"h1": Host("h1"), "h2": Host("h2")}
        self.servers = {"vm": Server("vm", "h1")}
        self.ghosts: dict[str, str] = {}

    def server_is_running(self, sid: str) -> bool:
        s = self.servers.get(sid)
        return (
            s is not None
            and s.host is not None
            and not s.quiesced
            and s.power_state == 1
            and self.hosts[s.host].alive()
        )

    def ghost_running(self, sid: str) -> str | None:
        host = self.ghosts.get(sid)
        return host if host and self.hosts[host].alive() else None


class VolumeService:
    def __init__(self, tmp: Path) -> None:
        self.volumes = {
            name: Volume(name, Disk(tmp / f"{name}.img", 64 * BS, BS), [Attachment("vm")])
            for name in ("log", "data")
        }


class FakeSite:
    def __init__(self, tmp: Path) -> None:
        self.name = "east"
        self.compute = Compute()
        self.volume = VolumeService(tmp)
        self._n = 0

    def new_id(self) -> str:
        self._n += 1
        return f"canary-{self._n}"


class FakeWorld:
    def __init__(self, tmp: Path) -> None:
        self.clock = SimClock("stepped")
        self.writelog = WriteLog()
        self.sites = {"east": FakeSite(tmp)}


@pytest.fixture
def fw(tmp_path: Path) -> FakeWorld:
    return FakeWorld(tmp_path)


def _reg(fw: FakeWorld) -> CanaryRegistry:
    return registry(cast(World, fw))


def _db(fw: FakeWorld, **kw: Any) -> Any:
    body = {"site": "east", "server": "vm", "volumes": ["log", "data"], "kind": "database"}
    return _reg(fw).create({**body, **kw})


def test_writes_at_the_rate_with_exact_timestamps(fw: FakeWorld) -> None:
    c = _db(fw, rate=10, seed=1)
    fw.clock.advance(3)
    assert c.seq == 60  # 30 transactions, each a log write and a data write
    times = [w.time for w in c.history]
    assert times[:4] == pytest.approx([STEPPED_EPOCH + 0.1] * 2 + [STEPPED_EPOCH + 0.2] * 2)
    assert times[-1] == pytest.approx(STEPPED_EPOCH + 3)
    assert [w.role for w in c.history[:4]] == ["log", "data", "log", "data"]
    log = fw.writelog.query(kind="write")
    assert len(log) == 60
    e = log[-1]
    assert (e.site, e.host, e.instance, e.volume) == ("east", "h1", "vm", "data")
    assert e.data["seq"] == 60 and e.data["writer"] == c.id
    f = read_freshness(fw.sites["east"].volume.volumes["data"].disk)
    assert (f.seq, f.time) == (60, pytest.approx(STEPPED_EPOCH + 3))


def test_high_rates_are_batched(fw: FakeWorld) -> None:
    c = _reg(fw).create({"site": "east", "server": "vm", "volumes": ["data"], "rate": 1000})
    ran = fw.clock.advance(2)
    assert c.seq == 2000
    assert ran == pytest.approx(2 / MIN_TICK, abs=1)


def test_quiesce_pauses_and_unquiesce_resumes(fw: FakeWorld) -> None:
    c = _db(fw, rate=2)
    server = fw.sites["east"].compute.servers["vm"]
    fw.clock.advance(5)
    server.quiesced = True
    t_q = fw.clock.now()
    fw.clock.advance(10)
    assert c.describe()["status"] == "paused"
    assert "quiesced" in c.describe()["reason"]
    server.quiesced = False
    t_u = fw.clock.now()
    fw.clock.advance(5)
    times = [w.time for w in c.history]
    assert not [t for t in times if t_q < t <= t_u]
    assert len(times) == 2 * 2 * 10  # 10 s of writing at 2 transactions/s
    assert c.describe()["status"] == "writing"


def test_dead_host_stops_writes_and_health_follows(fw: FakeWorld) -> None:
    c = _db(fw, rate=1)
    world = cast(World, fw)
    fw.clock.advance(2)
    h = guest_health(world, "east", "vm")
    assert h["booted"] and h["application_answering"]
    fw.sites["east"].compute.hosts["h1"].powered_on = False
    fw.clock.advance(5)
    assert c.seq == 4
    h = guest_health(world, "east", "vm")
    assert not h["booted"] and not h["application_answering"]
    assert h["reason"] == "host h1 is down"


def test_unfenced_evacuation_leaves_a_ghost_writing_from_the_old_host(fw: FakeWorld) -> None:
    _db(fw, rate=1)
    compute = fw.sites["east"].compute
    fw.clock.advance(2)
    compute.servers["vm"].host = "h2"  # evacuated while h1 still runs the old guest
    compute.ghosts["vm"] = "h1"
    fw.clock.advance(2)
    hosts = {(e.time, e.host) for e in fw.writelog.query(kind="write")}
    assert {h for t, h in hosts if t > STEPPED_EPOCH + 2} == {"h1", "h2"}
    compute.hosts["h1"].powered_on = False  # the fence finally lands
    fw.clock.advance(2)
    last = fw.writelog.query(kind="write")[-4:]
    assert {e.host for e in last} == {"h2"}
    runs = double_running(fw.writelog.entries)
    assert [(r.instance, r.first, r.second) for r in runs] == [
        ("vm", ("east", "h1"), ("east", "h2"))
    ]
    assert (runs[0].start, runs[0].end) == pytest.approx((STEPPED_EPOCH + 3, STEPPED_EPOCH + 4))


def test_a_clean_move_is_not_a_double_run(fw: FakeWorld) -> None:
    _db(fw, rate=1)
    compute = fw.sites["east"].compute
    fw.clock.advance(3)
    compute.hosts["h1"].powered_on = False  # fenced first
    fw.clock.advance(10)
    compute.servers["vm"].host = "h2"  # then evacuated
    fw.clock.advance(3)
    assert {e.host for e in fw.writelog.query(kind="write")} == {"h1", "h2"}
    assert double_running(fw.writelog.entries, gap=5) == []


def test_detached_volume_blocks_and_deleted_server_stops(fw: FakeWorld) -> None:
    c = _db(fw, rate=1)
    site = fw.sites["east"]
    site.volume.volumes["data"].attachments.clear()
    fw.clock.advance(3)
    assert c.seq == 0
    assert c.describe()["status"] == "blocked"
    h = guest_health(cast(World, fw), "east", "vm")
    assert h["booted"] and not h["application_answering"]
    del site.compute.servers["vm"]
    fw.clock.advance(3)
    assert c.status == "stopped" and fw.clock.next_due() is None


def test_a_snapshot_between_ticks_is_consistent(fw: FakeWorld, tmp_path: Path) -> None:
    c = _db(fw, rate=7, seed=4)
    fw.clock.advance(12.34)
    vols = fw.sites["east"].volume.volumes
    copies = {n: vols[n].disk.copy_to(tmp_path / f"copy-{n}.img") for n in ("log", "data")}
    fw.clock.advance(3)
    r = check_consistency(copies, c.history, writer_id=c.id, group=c.roles)
    assert r.consistent, r.reason


@pytest.mark.parametrize(
    "change, status, text",
    [
        ({"site": "nowhere"}, 400, "unknown site"),
        ({"server": "nope"}, 404, "server nope not found"),
        ({"volumes": ["log", "gone"]}, 404, "volume gone not found"),
        ({"volumes": ["log"]}, 400, "needs 'volumes'"),
        ({"rate": 0}, 400, "'rate' must be > 0"),
        ({"rate": "fast"}, 400, "'rate' must be a number"),
        ({"locality": 1.5}, 400, "'locality'"),
        ({"kind": "cache"}, 400, "'kind'"),
    ],
)
def test_bad_requests_are_refused(
    fw: FakeWorld, change: dict[str, Any], status: int, text: str
) -> None:
    with pytest.raises(ApiError) as err:
        _db(fw, **change)
    assert err.value.status == status
    assert text in err.value.message


def test_unattached_volume_is_a_conflict(fw: FakeWorld) -> None:
    fw.sites["east"].volume.volumes["log"].attachments.clear()
    with pytest.raises(ApiError) as err:
        _db(fw)
    assert err.value.status == 409
