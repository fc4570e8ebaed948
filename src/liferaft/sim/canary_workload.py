"""What a canary workload writes: which blocks, in which order (pure, seeded).

A workload turns "one more transaction" into the writes it makes, as
``(volume id, role, block index)`` triples; :mod:`liferaft.sim.canary`
decides *when* (clock events) and puts the bytes on the disks.  Keeping this
part free of the world makes it reproducible from a seed and testable on
plain :class:`~liferaft.sim.disks.Disk` objects.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .canary_format import CanaryBlock, Role, encode_block
from .disks import Disk


@dataclass(frozen=True, slots=True)
class PlannedWrite:
    volume: str
    role: Role
    block: int


class BlockPicker:
    """Chooses blocks with locality: a share of writes hits a small hot set.

    ``locality`` is the share of writes that go to the hot set (the first
    ``hot_blocks`` blocks of the volume); the rest are spread uniformly over
    the whole volume.  Locality is what makes incremental backups smaller
    than the bytes written (overwrites), as in the *dirty data* measure.
    """

    def __init__(self, blocks: int, locality: float, hot_blocks: int, rng: random.Random) -> None:
        if blocks < 1:
            raise ValueError("a volume needs at least one block")
        if not 0.0 <= locality <= 1.0:
            raise ValueError(f"locality must be between 0 and 1, got {locality}")
        self.blocks = blocks
        self.locality = locality
        self.hot_blocks = max(1, min(hot_blocks, blocks))
        self._rng = rng

    def next(self) -> int:
        if self._rng.random() < self.locality:
            return self._rng.randrange(self.hot_blocks)
        return self._rng.randrange(self.blocks)


def default_hot_blocks(blocks: int) -> int:
    """1% of the volume, at least one block."""
    return max(1, blocks // 100)


class SingleWorkload:
    """One volume; each transaction is one block write."""

    kind = "single"

    def __init__(
        self,
        volume: str,
        blocks: int,
        *,
        locality: float = 0.9,
        hot_blocks: int | None = None,
        seed: int = 0,
    ) -> None:
        self.volumes = [volume]
        hot = default_hot_blocks(blocks) if hot_blocks is None else hot_blocks
        self._picker = BlockPicker(blocks, locality, hot, random.Random(seed))

    def next_transaction(self) -> list[PlannedWrite]:
        return [PlannedWrite(self.volumes[0], "single", self._picker.next())]


class DatabaseWorkload:
    """A database on two volumes, write-ahead: each transaction writes its log
    record (the log volume, appended as a ring) and then its data block (the
    data volume, chosen with locality).  One sequence numbers both."""

    kind = "database"

    def __init__(
        self,
        log_volume: str,
        log_blocks: int,
        data_volume: str,
        data_blocks: int,
        *,
        locality: float = 0.9,
        hot_blocks: int | None = None,
        seed: int = 0,
    ) -> None:
        if log_volume == data_volume:
            raise ValueError("the log and the data must be on different volumes")
        if log_blocks < 1:
            raise ValueError("the log volume needs at least one block")
        self.volumes = [log_volume, data_volume]
        self._log_blocks = log_blocks
        self._log_next = 0
        hot = default_hot_blocks(data_blocks) if hot_blocks is None else hot_blocks
        self._picker = BlockPicker(data_blocks, locality, hot, random.Random(seed))

    def next_transaction(self) -> list[PlannedWrite]:
        log_block = self._log_next
        self._log_next = (self._log_next + 1) % self._log_blocks
        return [
            PlannedWrite(self.volumes[0], "log", log_block),
            PlannedWrite(self.volumes[1], "data", self._picker.next()),
        ]


Workload = SingleWorkload | DatabaseWorkload


def write_canary(
    disk: Disk, *, volume: str, writer: str, role: Role, block: int, seq: int, time: float
) -> None:
    """Put one canary block on ``disk`` (through :meth:`Disk.write_block`, so
    changed-block tracking sees it like any guest write)."""
    data = encode_block(CanaryBlock(volume, writer, role, block, seq, time), disk.block_size)
    disk.write_block(block, data)
