"""Reading canary blocks back from a disk: freshness and the data-loss window.

Everything here reads the disk's bytes and nothing else (not the disk's
changed-block map, not the write log): a volume restored from a backup at
another site is judged by what it holds.  Allocated extents are found with
``SEEK_DATA``/``SEEK_HOLE`` so a mostly empty 10 GB sparse volume is not read
end to end.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .canary_format import BlockError, CanaryBlock, decode_block
from .disks import Disk


def allocated_blocks(disk: Disk) -> list[int]:
    """Indexes of the blocks that hold data in the disk's file (holes skipped)."""
    bs = disk.block_size
    out: list[int] = []
    fd = os.open(disk.path, os.O_RDONLY)
    try:
        end = min(os.fstat(fd).st_size, disk.size)
        pos = 0
        while pos < end:
            try:
                start = os.lseek(fd, pos, os.SEEK_DATA)
            except OSError as exc:
                if exc.errno == errno.ENXIO:  # no data after pos
                    break
                return list(range(disk.blocks))  # no hole support: read everything
            stop = min(os.lseek(fd, start, os.SEEK_HOLE), end)
            first, last = start // bs, (stop - 1) // bs
            if out and out[-1] >= first:
                first = out[-1] + 1
            out.extend(range(first, last + 1))
            pos = max(stop, (last + 1) * bs)
    finally:
        os.close(fd)
    return [i for i in out if i < disk.blocks]


def _read(disk: Disk, indexes: Iterable[int]) -> Iterator[tuple[int, bytes]]:
    fd = os.open(disk.path, os.O_RDONLY)
    try:
        for i in indexes:
            yield (
                i,
                os.pread(fd, disk.block_size, i * disk.block_size).ljust(disk.block_size, b"\0"),
            )
    finally:
        os.close(fd)


@dataclass
class VolumeScan:
    """Every canary block found on a disk, and the blocks that failed to decode."""

    blocks: dict[int, CanaryBlock] = field(default_factory=dict)
    torn: list[int] = field(default_factory=list)  # checksum failed
    misplaced: list[int] = field(default_factory=list)  # valid block at the wrong index
    foreign: int = 0  # non-zero blocks that are not canary writes (image bytes, ...)

    def newest(self, writer_id: str | None = None) -> CanaryBlock | None:
        """The newest write (by time, then sequence), optionally of one writer only."""
        best: CanaryBlock | None = None
        for b in self.blocks.values():
            if writer_id is not None and b.writer_id != writer_id:
                continue
            if best is None or (b.time, b.seq) > (best.time, best.seq):
                best = b
        return best


def scan(disk: Disk) -> VolumeScan:
    """Decode every allocated block of ``disk``."""
    out = VolumeScan()
    zero = bytes(disk.block_size)
    for i, data in _read(disk, allocated_blocks(disk)):
        if data == zero:
            continue
        try:
            out.blocks[i] = decode_block(data, index=i)
        except BlockError as err:
            if err.kind == "torn":
                out.torn.append(i)
            elif err.kind == "misplaced":
                out.misplaced.append(i)
            else:
                out.foreign += 1
    return out


@dataclass(frozen=True)
class Freshness:
    """How fresh a volume's canary data is, read from its bytes.

    ``seq``/``time`` are those of the newest canary write found (``None``
    when the volume holds none); ``volume_id`` and ``writer_id`` are what
    that block's header says (for a restored copy, the *original* volume).
    """

    seq: int | None
    time: float | None
    volume_id: str | None
    writer_id: str | None
    canary_blocks: int
    torn_blocks: int
    misplaced_blocks: int
    foreign_blocks: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": self.time,
            "volume": self.volume_id,
            "writer": self.writer_id,
            "canary_blocks": self.canary_blocks,
            "torn_blocks": self.torn_blocks,
            "misplaced_blocks": self.misplaced_blocks,
            "foreign_blocks": self.foreign_blocks,
        }


def freshness_of(s: VolumeScan, writer_id: str | None = None) -> Freshness:
    newest = s.newest(writer_id)
    return Freshness(
        seq=None if newest is None else newest.seq,
        time=None if newest is None else newest.time,
        volume_id=None if newest is None else newest.volume_id,
        writer_id=None if newest is None else newest.writer_id,
        canary_blocks=len(s.blocks),
        torn_blocks=len(s.torn),
        misplaced_blocks=len(s.misplaced),
        foreign_blocks=s.foreign,
    )


def read_freshness(disk: Disk, writer_id: str | None = None) -> Freshness:
    """The newest canary write (seq, time) on ``disk``, from its bytes alone."""
    return freshness_of(scan(disk), writer_id)


def data_loss_window(failure_time: float, disks: Iterable[Disk]) -> float | None:
    """Failure time minus the newest canary time in a restored set (``None``: no canary found).

    This is the *Measures* definition: read from the data, never from the
    controller's records.  Negative values mean the set holds writes made
    after the stated failure time (the failure time was wrong, or the
    workload kept running).
    """
    newest: float | None = None
    for d in disks:
        f = read_freshness(d)
        if f.time is not None and (newest is None or f.time > newest):
            newest = f.time
    return None if newest is None else failure_time - newest
