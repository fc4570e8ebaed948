"""The consistency checker on restored copies made from plain disks."""

from __future__ import annotations

from pathlib import Path

from liferaft.sim.canary_check import HistoryWrite, check_consistency
from liferaft.sim.canary_format import CanaryBlock, encode_block
from liferaft.sim.canary_workload import (
    DatabaseWorkload,
    PlannedWrite,
    SingleWorkload,
    write_canary,
)
from liferaft.sim.disks import Disk

BS = 4096
WRITER = "writer-1"


class Db:
    """A database workload written straight onto two disks, with its history."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.disks = {
            "log": Disk(tmp / "log.img", 32 * BS, BS),
            "data": Disk(tmp / "data.img", 256 * BS, BS),
        }
        self.load = DatabaseWorkload("log", 32, "data", 256, locality=0.8, hot_blocks=8, seed=3)
        self.history: list[HistoryWrite] = []
        self.seq = 0
        self.pending: list[PlannedWrite] = []

    def write(self, n: int) -> None:
        """Make ``n`` single writes (a transaction is two: log then data)."""
        for _ in range(n):
            if not self.pending:
                self.pending = self.load.next_transaction()
            w = self.pending.pop(0)
            self.seq += 1
            t = 1000.0 + self.seq * 0.1
            write_canary(
                self.disks[w.volume],
                volume=w.volume,
                writer=WRITER,
                role=w.role,
                block=w.block,
                seq=self.seq,
                time=t,
            )
            self.history.append(HistoryWrite(self.seq, t, w.volume, w.block, w.role))

    def snap(self, name: str) -> Disk:
        return self.disks[name].copy_to(self.tmp / f"{name}-{self.seq}.img")


def test_copies_taken_at_the_same_point_are_consistent(tmp_path: Path) -> None:
    db = Db(tmp_path)
    db.write(200)
    log, data = db.snap("log"), db.snap("data")
    db.write(50)  # the originals move on; the copies do not
    r = check_consistency({"rlog": log, "rdata": data}, db.history, writer_id=WRITER)
    assert r.consistent and r.recoverable, r.reason
    assert r.point == 200
    assert r.newest["rlog"]["volume"] == "log" and r.newest["rlog"]["seq"] == 199
    assert r.newest["rdata"]["seq"] == 200


def test_log_one_record_ahead_is_a_point_in_history(tmp_path: Path) -> None:
    db = Db(tmp_path)
    db.write(201)  # transaction 101's log record is written, its data block is not
    r = check_consistency({"l": db.snap("log"), "d": db.snap("data")}, db.history)
    assert r.consistent, r.reason
    assert r.point == 201


def test_data_ahead_of_log_is_inconsistent(tmp_path: Path) -> None:
    db = Db(tmp_path)
    db.write(100)
    log = db.snap("log")
    db.write(60)
    data = db.snap("data")
    r = check_consistency({"l": log, "d": data}, db.history, writer_id=WRITER)
    assert not r.consistent and not r.recoverable
    assert r.reason is not None
    assert "data volume d" in r.reason and "ahead of log volume l" in r.reason
    assert "lacks write 101" in r.reason


def test_log_many_records_ahead_is_recoverable_but_not_one_point(tmp_path: Path) -> None:
    db = Db(tmp_path)
    db.write(100)
    data = db.snap("data")
    db.write(60)
    log = db.snap("log")
    r = check_consistency({"l": log, "d": data}, db.history)
    assert not r.consistent
    assert r.recoverable  # a database replays its log over the older data
    assert r.reason is not None and "log volume l" in r.reason


def test_a_torn_block_makes_the_set_inconsistent(tmp_path: Path) -> None:
    db = Db(tmp_path)
    db.write(100)
    log, data = db.snap("log"), db.snap("data")
    block = db.history[-1].block
    good = data.read_block(block)
    other = encode_block(CanaryBlock("data", WRITER, "data", block, 999, 5.0), BS)
    data.write_block(block, other[:2048] + good[2048:])
    r = check_consistency({"l": log, "d": data}, db.history)
    assert not r.consistent and r.reason is not None
    assert "torn block" in r.reason


def test_a_copy_missing_an_older_block_is_torn_in_time(tmp_path: Path) -> None:
    """An incremental restore that skipped a changed block is no point in time."""
    db = Db(tmp_path)
    db.write(100)
    stale = db.snap("data")
    db.write(100)
    data = db.snap("data")
    # Put back an older version of one block that changed in between.
    changed = next(w.block for w in reversed(db.history) if w.role == "data" and w.seq < 190)
    data.write_block(changed, stale.read_block(changed))
    r = check_consistency({"l": db.snap("log"), "d": data}, db.history)
    assert not r.consistent and r.reason is not None
    assert f"block {changed}" in r.reason and "torn in time" in r.reason


def test_empty_copy_is_matched_to_the_missing_volume(tmp_path: Path) -> None:
    db = Db(tmp_path)
    db.write(1)  # only the first log record
    empty = Disk(tmp_path / "blank.img", 256 * BS, BS)
    group = {"log": "log", "data": "data"}
    r = check_consistency({"l": db.snap("log"), "d": empty}, db.history, group=group)
    assert r.consistent, r.reason
    assert r.newest["d"] == {"volume": "data", "role": "data", "seq": None, "time": None}
    db.write(2)  # the log moves past a data write the blank copy lacks
    r = check_consistency({"l": db.snap("log"), "d": empty}, db.history, group=group)
    assert not r.consistent


def test_single_writer_copy_and_other_writers_blocks(tmp_path: Path) -> None:
    disk = Disk(tmp_path / "v.img", 64 * BS, BS)
    load = SingleWorkload("v", 64, locality=0.5, hot_blocks=4, seed=1)
    history = []
    for seq in range(1, 40):
        (w,) = load.next_transaction()
        write_canary(
            disk, volume="v", writer=WRITER, role="single", block=w.block, seq=seq, time=float(seq)
        )
        history.append(HistoryWrite(seq, float(seq), "v", w.block, "single"))
    # Another writer's leftovers on a block this writer never touched are ignored.
    free = next(b for b in range(64) if b not in {h.block for h in history})
    write_canary(disk, volume="old", writer="other", role="single", block=free, seq=9, time=0.5)
    r = check_consistency({"copy": disk.copy_to(tmp_path / "c.img")}, history, writer_id=WRITER)
    assert r.consistent and r.point == 39, r.reason


def test_two_copies_of_one_volume_are_refused(tmp_path: Path) -> None:
    db = Db(tmp_path)
    db.write(10)
    r = check_consistency({"a": db.snap("log"), "b": db.snap("log")}, db.history)
    assert not r.consistent and r.reason is not None and "both copies" in r.reason


def test_workloads_are_deterministic_from_the_seed() -> None:
    def blocks(seed: int) -> list[int]:
        load = DatabaseWorkload("l", 4, "d", 1000, locality=0.9, hot_blocks=10, seed=seed)
        return [w.block for _ in range(200) for w in load.next_transaction()]

    assert blocks(5) == blocks(5) != blocks(6)
    b = blocks(5)
    assert b[0::2][:6] == [0, 1, 2, 3, 0, 1]  # the log is a ring
    data = b[1::2]
    assert sum(1 for x in data if x < 10) >= 0.85 * len(data)  # locality
