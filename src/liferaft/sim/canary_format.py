"""The on-disk format of one canary write: a self-describing, self-checking block.

Every canary write fills exactly one block of a volume.  The block says who
wrote it and when, so the freshness of any copy of the volume (a snapshot, a
backup restored at another site) can be read from its bytes alone, without
trusting anybody's records.

Layout (little-endian), ``block_size`` bytes in all::

    offset  size  field
    0       8     magic  b"LFRCANRY"
    8       2     format version (1)
    10      2     header length in bytes
    12      64    volume id the writer wrote to (UTF-8, NUL-padded)
    76      64    writer id (UTF-8, NUL-padded)
    140     8     role of the volume in the writer ("single", "log", "data")
    148     8     block index the write was aimed at
    156     8     sequence number within the writer (1, 2, ...)
    164     8     simulated time of the write (float seconds since the epoch)
    172     ...   filler: the 16 bytes (seq, time) repeated, cut to fit
    end-4   4     CRC-32 of the header (bytes 0..171)

A block is valid when the header's checksum holds *and* the filler is exactly
the pattern its header's (seq, time) produce.  A torn write (some sectors
new, the rest from an older write) fails one or the other, whichever part is
stale, since no two writes of a writer share a sequence number.  (Checking the
filler by rebuilding it costs a memory compare instead of a CRC over the
whole block, which matters at tens of thousands of writes per simulated hour.)  A block whose magic
is wrong is *foreign* (never written by a canary: zeros, image bytes); a block
with the magic whose checksum or index does not match is *torn*/*misplaced*.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import Literal

MAGIC = b"LFRCANRY"
VERSION = 1
_HEADER = struct.Struct("<8sHH64s64s8sQQd")
HEADER_SIZE = _HEADER.size
_FILL = struct.Struct("<Qd")
_CRC = struct.Struct("<I")
#: The smallest block a canary write fits in (the topology allows >= 4096).
MIN_BLOCK = 512

Role = Literal["single", "log", "data"]
ROLES: tuple[Role, ...] = ("single", "log", "data")
_ROLE_BY_NAME: dict[str, Role] = {r: r for r in ROLES}


@dataclass(frozen=True)
class CanaryBlock:
    """What one decoded canary block says about the write that made it."""

    volume_id: str
    writer_id: str
    role: Role
    index: int
    seq: int
    time: float


class BlockError(ValueError):
    """A block that is not a valid canary write; ``kind`` says why."""

    def __init__(self, kind: Literal["foreign", "torn", "misplaced"], message: str) -> None:
        super().__init__(message)
        self.kind = kind


def _field(text: str, name: str) -> bytes:
    raw = text.encode()
    if len(raw) > 64:
        raise ValueError(f"{name} {text!r} is longer than 64 bytes")
    return raw


def encode_block(block: CanaryBlock, block_size: int) -> bytes:
    """The exact ``block_size`` bytes a canary write puts on the disk."""
    if block_size < MIN_BLOCK:
        raise ValueError(f"a canary block needs at least {MIN_BLOCK} bytes, got {block_size}")
    if block.role not in ROLES:
        raise ValueError(f"unknown canary role {block.role!r}")
    header = _HEADER.pack(
        MAGIC,
        VERSION,
        HEADER_SIZE,
        _field(block.volume_id, "volume id"),
        _field(block.writer_id, "writer id"),
        block.role.encode(),
        block.index,
        block.seq,
        block.time,
    )
    return header + _filler(block.seq, block.time, block_size) + _CRC.pack(zlib.crc32(header))


def _filler(seq: int, time: float, block_size: int) -> bytes:
    fill_len = block_size - HEADER_SIZE - _CRC.size
    unit = _FILL.pack(seq, time)
    return (unit * (fill_len // len(unit) + 1))[:fill_len]


def decode_block(data: bytes, *, index: int | None = None) -> CanaryBlock:
    """Decode one block read from a disk, or raise :class:`BlockError`.

    ``index`` is where the block was read from; a canary block found at
    another index than the one it was written to is rejected as misplaced.
    """
    if len(data) < MIN_BLOCK or not data.startswith(MAGIC):
        raise BlockError("foreign", "not a canary block (no magic)")
    if _CRC.unpack(data[-_CRC.size :])[0] != zlib.crc32(data[:HEADER_SIZE]):
        raise BlockError("torn", "header checksum mismatch: the block is torn or corrupted")
    _magic, version, hlen, vol, writer, role, bindex, seq, t = _HEADER.unpack_from(data)
    if version != VERSION or hlen != HEADER_SIZE:
        raise BlockError("foreign", f"unknown canary format version {version}")
    if data[HEADER_SIZE : -_CRC.size] != _filler(seq, t, len(data)):
        raise BlockError("torn", "the filler is not this write's: the block is torn")
    role_s = _ROLE_BY_NAME.get(role.rstrip(b"\0").decode(errors="replace"))
    if role_s is None:
        raise BlockError("foreign", f"unknown canary role {role!r}")
    if index is not None and bindex != index:
        raise BlockError("misplaced", f"block written for index {bindex} found at index {index}")
    return CanaryBlock(
        volume_id=vol.rstrip(b"\0").decode(errors="replace"),
        writer_id=writer.rstrip(b"\0").decode(errors="replace"),
        role=role_s,
        index=bindex,
        seq=seq,
        time=t,
    )


def try_decode(data: bytes, *, index: int | None = None) -> CanaryBlock | None:
    """Like :func:`decode_block` but ``None`` for anything that is not a valid canary block."""
    try:
        return decode_block(data, index=index)
    except BlockError:
        return None
