"""The canary block format and reading freshness back from a disk's bytes."""

from __future__ import annotations

import zlib
from pathlib import Path

import pytest

from liferaft.sim.canary_format import (
    HEADER_SIZE,
    MAGIC,
    BlockError,
    CanaryBlock,
    decode_block,
    encode_block,
    try_decode,
)
from liferaft.sim.canary_read import allocated_blocks, data_loss_window, read_freshness, scan
from liferaft.sim.canary_workload import write_canary
from liferaft.sim.disks import Disk

BS = 4096
VOL = "6f1c0c3e-5b1a-4a53-9d55-0d7f8e1d2a01"
WRITER = "0a8f7b52-4c1e-4c7a-b1c3-1f2e3d4c5b6a"


def _block(seq: int = 7, index: int = 3, t: float = 1767225600.25) -> CanaryBlock:
    return CanaryBlock(VOL, WRITER, "data", index, seq, t)


def test_block_round_trips_and_fills_the_block() -> None:
    raw = encode_block(_block(), BS)
    assert len(raw) == BS
    assert raw.startswith(MAGIC)
    assert decode_block(raw, index=3) == _block()


def test_block_format_is_pinned() -> None:
    raw = encode_block(_block(), BS)
    # Fixed offsets other tools (and older copies) rely on.
    assert HEADER_SIZE == 172
    assert raw[8:10] == b"\x01\x00"  # version 1, little-endian
    assert raw[12 : 12 + len(VOL)] == VOL.encode()
    assert raw[140:144] == b"data"
    assert int.from_bytes(raw[148:156], "little") == 3
    assert int.from_bytes(raw[156:164], "little") == 7
    assert raw[-4:] == zlib.crc32(raw[:HEADER_SIZE]).to_bytes(4, "little")
    assert raw[HEADER_SIZE : HEADER_SIZE + 8] == (7).to_bytes(8, "little")  # filler: (seq, time)...


def test_torn_block_is_rejected_whichever_half_is_stale() -> None:
    old = encode_block(_block(seq=7), BS)
    new = encode_block(_block(seq=8), BS)
    middle = new[:2048] + old[2048:2560] + new[2560:]  # one stale sector inside the filler
    for torn in (
        new[:512] + old[512:],
        old[:512] + new[512:],
        new[: BS - 1] + old[BS - 1 :],
        middle,
    ):
        with pytest.raises(BlockError) as err:
            decode_block(torn)
        assert err.value.kind == "torn"


def test_foreign_and_misplaced_blocks_are_rejected() -> None:
    with pytest.raises(BlockError) as err:
        decode_block(bytes(BS))
    assert err.value.kind == "foreign"
    with pytest.raises(BlockError) as err:
        decode_block(b"\x7fELF" + bytes(BS - 4))
    assert err.value.kind == "foreign"
    raw = encode_block(_block(index=3), BS)
    with pytest.raises(BlockError) as err:
        decode_block(raw, index=4)
    assert err.value.kind == "misplaced"
    assert try_decode(raw, index=4) is None


def test_bad_inputs_to_encode() -> None:
    with pytest.raises(ValueError, match="at least"):
        encode_block(_block(), 256)
    with pytest.raises(ValueError, match="longer than 64"):
        encode_block(CanaryBlock("x" * 65, WRITER, "data", 0, 1, 0.0), BS)


def test_freshness_is_the_newest_write_on_the_disk(tmp_path: Path) -> None:
    disk = Disk(tmp_path / "v.img", 1 << 30, BS)  # 1 GiB sparse, mostly holes
    assert read_freshness(disk).seq is None
    times = {1: 100.0, 2: 100.5, 3: 101.0}
    for seq, block in ((1, 5), (2, 200_000), (3, 5)):  # seq 3 overwrites block 5
        write_canary(
            disk, volume=VOL, writer=WRITER, role="single", block=block, seq=seq, time=times[seq]
        )
    f = read_freshness(disk)
    assert (f.seq, f.time) == (3, 101.0)
    assert f.volume_id == VOL and f.writer_id == WRITER
    assert f.canary_blocks == 2
    assert allocated_blocks(disk) == [5, 200_000]


def test_freshness_survives_a_copy_and_ignores_foreign_bytes(tmp_path: Path) -> None:
    disk = Disk(tmp_path / "v.img", 64 * BS, BS)
    disk.write_block(0, b"an image's boot sector")
    write_canary(disk, volume=VOL, writer=WRITER, role="single", block=9, seq=1, time=50.0)
    copy = disk.copy_to(tmp_path / "copy.img")
    write_canary(disk, volume=VOL, writer=WRITER, role="single", block=10, seq=2, time=51.0)
    f = read_freshness(copy)
    assert (f.seq, f.time, f.foreign_blocks) == (1, 50.0, 1)
    assert data_loss_window(60.0, [copy]) == pytest.approx(10.0)
    assert data_loss_window(60.0, [copy, disk]) == pytest.approx(9.0)
    assert data_loss_window(60.0, [Disk(tmp_path / "empty.img", BS, BS)]) is None


def test_scan_reports_torn_blocks(tmp_path: Path) -> None:
    disk = Disk(tmp_path / "v.img", 16 * BS, BS)
    write_canary(disk, volume=VOL, writer=WRITER, role="single", block=2, seq=1, time=1.0)
    good = disk.read_block(2)
    newer = encode_block(CanaryBlock(VOL, WRITER, "single", 2, 2, 2.0), BS)
    disk.write_block(2, newer[:1024] + good[1024:])
    s = scan(disk)
    assert s.torn == [2]
    assert s.blocks == {}
    assert read_freshness(disk).torn_blocks == 1
