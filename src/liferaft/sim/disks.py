"""Block devices holding real bytes: sparse files with changed-block tracking.

Volumes, snapshots and servers' local disks are :class:`Disk` objects.  Each
block written gets the disk's next write sequence number, so "which blocks
changed since sequence S" (what an incremental backup ships) is a scan of a
dict, and a snapshot records the sequence it was taken at.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

DEFAULT_BLOCK = 65536


class Disk:
    """A sparse file of ``size`` bytes split into fixed-size blocks."""

    def __init__(self, path: Path, size: int, block_size: int = DEFAULT_BLOCK) -> None:
        self.path = path
        self.size = size
        self.block_size = block_size
        self.seq = 0  # write sequence of the newest write
        self.block_seq: dict[int, int] = {}  # block index -> sequence of its last write
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab") as f:
            f.truncate(size)

    @property
    def blocks(self) -> int:
        return (self.size + self.block_size - 1) // self.block_size

    def _check(self, index: int) -> None:
        if not 0 <= index < self.blocks:
            raise IndexError(f"block {index} outside disk of {self.blocks} blocks")

    def write_block(self, index: int, data: bytes) -> int:
        """Write one block (padded with zeros); returns the write's sequence number."""
        self._check(index)
        if len(data) > self.block_size:
            raise ValueError("data larger than a block")
        data = data.ljust(self.block_size, b"\0")
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.pwrite(fd, data, index * self.block_size)
        finally:
            os.close(fd)
        self.seq += 1
        self.block_seq[index] = self.seq
        return self.seq

    def read_block(self, index: int) -> bytes:
        self._check(index)
        fd = os.open(self.path, os.O_RDONLY)
        try:
            data = os.pread(fd, self.block_size, index * self.block_size)
        finally:
            os.close(fd)
        return data.ljust(self.block_size, b"\0")

    def written_blocks(self) -> list[int]:
        return sorted(self.block_seq)

    def changed_since(self, seq: int) -> list[int]:
        """Blocks written after write sequence ``seq`` (0 means every written block)."""
        return sorted(i for i, s in self.block_seq.items() if s > seq)

    def iter_blocks(self, indexes: list[int]) -> Iterator[tuple[int, bytes]]:
        fd = os.open(self.path, os.O_RDONLY)
        try:
            for i in indexes:
                yield (
                    i,
                    os.pread(fd, self.block_size, i * self.block_size).ljust(
                        self.block_size, b"\0"
                    ),
                )
        finally:
            os.close(fd)

    def copy_to(self, path: Path) -> Disk:
        """A point-in-time copy holding the same written blocks (sparse)."""
        other = Disk(path, self.size, self.block_size)
        fd = os.open(path, os.O_WRONLY)
        try:
            for i, data in self.iter_blocks(self.written_blocks()):
                os.pwrite(fd, data, i * self.block_size)
        finally:
            os.close(fd)
        other.block_seq = dict(self.block_seq)
        other.seq = self.seq
        return other

    def resize(self, size: int) -> None:
        if size < self.size:
            raise ValueError("disks only grow")
        with open(self.path, "r+b") as f:
            f.truncate(size)
        self.size = size

    def delete(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def used_bytes(self) -> int:
        return len(self.block_seq) * self.block_size
