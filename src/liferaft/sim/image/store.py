"""Image bytes on disk: deterministic seed data, hashing, adopting files as disks.

An image's bytes live in one file under ``site.state_dir / "images"``.  The
file is wrapped in a :class:`~liferaft.sim.disks.Disk` so the volume and
compute services can copy it block by block; blocks holding only zeros are
left unmarked (a disk reads them back as zeros anyway), which keeps sparse
snapshots cheap to copy.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

from ..disks import Disk
from ..http import ApiError

CHUNK = 1 << 20


def seed_bytes(name: str, size: int) -> Iterator[bytes]:
    """``size`` pseudo-random bytes derived from ``name`` (the same at every site)."""
    index = 0
    left = size
    while left > 0:
        n = min(CHUNK, left)
        yield hashlib.shake_256(f"liferaft-image/{name}/{index}".encode()).digest(n)
        left -= n
        index += 1


class Hasher:
    """Glance's two digests of an image: legacy md5 ``checksum`` and sha512 multihash."""

    def __init__(self) -> None:
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.sha512 = hashlib.sha512()
        self.size = 0

    def update(self, data: bytes) -> None:
        self.md5.update(data)
        self.sha512.update(data)
        self.size += len(data)

    def result(self) -> tuple[str, str]:
        return self.md5.hexdigest(), self.sha512.hexdigest()


def hash_file(path: Path, size: int) -> tuple[str, str]:
    """The md5 and sha512 of the first ``size`` bytes of ``path``."""
    h = Hasher()
    for chunk in read_chunks(path, size):
        h.update(chunk)
    return h.result()


def read_chunks(path: Path, size: int, chunk: int = CHUNK, *, offset: int = 0) -> Iterator[bytes]:
    """``size`` bytes of ``path`` from ``offset``, in chunks (zeros past the file's end)."""
    with open(path, "rb") as f:
        f.seek(offset)
        left = size
        while left > 0:
            data = f.read(min(chunk, left))
            if not data:
                data = b"\0" * min(chunk, left)
            left -= len(data)
            yield data


def adopt(path: Path, size: int, block_size: int) -> Disk:
    """Wrap a file already holding an image's bytes as a :class:`Disk`.

    Every block with a non-zero byte is marked written, so block copies
    (``Disk.copy_to``, ``iter_blocks(written_blocks())``) carry the data.
    """
    disk = Disk(path, size, block_size)
    zero = bytes(block_size)
    for index in range(disk.blocks):
        if disk.read_block(index) != zero:
            disk.seq += 1
            disk.block_seq[index] = disk.seq
    return disk


def copy_disk(src: Disk, path: Path, block_size: int) -> Disk:
    """A point-in-time copy of ``src``'s written blocks, trimmed after the last one.

    The copy's size is block-aligned: a snapshot of a mostly empty 20 GiB
    disk is as small as its data, like a sparse qcow2 upload.
    """
    written = src.written_blocks()
    size = (written[-1] + 1) * src.block_size if written else 0
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        f.truncate(size)
    fd = os.open(path, os.O_WRONLY)
    try:
        for i, data in src.iter_blocks(written):
            os.pwrite(fd, data, i * src.block_size)
    finally:
        os.close(fd)
    return adopt(path, size, block_size)


def parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The ``[start, end)`` of a single ``Range: bytes=a-b`` (or ``a-``, ``-n``) header.

    ``None`` without a header (the whole image); Glance's 416 for a range
    outside the image or one it cannot serve (several ranges).
    """
    if not header:
        return None
    unit, _, spec = header.partition("=")
    if unit.strip() != "bytes" or "," in spec:
        raise ApiError(416, f"Requested range not satisfiable: {header}")
    first, _, last = spec.strip().partition("-")
    try:
        if first == "":
            n = int(last)
            start, end = max(0, size - n), size
        else:
            start = int(first)
            end = size if last == "" else min(size, int(last) + 1)
    except ValueError:
        raise ApiError(416, f"Requested range not satisfiable: {header}") from None
    if start < 0 or start >= size or end <= start:
        raise ApiError(416, f"Requested range not satisfiable: {header}")
    return start, end
