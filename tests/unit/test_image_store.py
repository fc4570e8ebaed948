"""Image bytes: deterministic seed data, hashing, block marking, snapshot copies."""

from __future__ import annotations

import hashlib
from pathlib import Path

from liferaft.sim.disks import Disk
from liferaft.sim.image import store


def test_seed_bytes_are_deterministic_and_sized() -> None:
    a = b"".join(store.seed_bytes("cirros", 3 << 20 | 5))
    b = b"".join(store.seed_bytes("cirros", 3 << 20 | 5))
    assert a == b and len(a) == (3 << 20 | 5)
    assert a != b"".join(store.seed_bytes("other", len(a)))


def test_hash_file_matches_hashlib(tmp_path: Path) -> None:
    data = b"hello image" * 1000
    path = tmp_path / "img"
    path.write_bytes(data)
    md5, sha = store.hash_file(path, len(data))
    assert md5 == hashlib.md5(data).hexdigest()
    assert sha == hashlib.sha512(data).hexdigest()


def test_adopt_marks_only_nonzero_blocks(tmp_path: Path) -> None:
    path = tmp_path / "img"
    path.write_bytes(bytes(4096) + b"x" + bytes(4095) + b"tail")
    disk = store.adopt(path, 8196, 4096)
    assert disk.written_blocks() == [1, 2]
    assert disk.read_block(2).startswith(b"tail")


def test_copy_disk_trims_after_last_written_block(tmp_path: Path) -> None:
    src = Disk(tmp_path / "src", 1 << 30, 4096)
    src.write_block(3, b"data")
    copy = store.copy_disk(src, tmp_path / "copy", 4096)
    assert copy.size == 4 * 4096
    assert copy.written_blocks() == [3]
    assert copy.read_block(3) == src.read_block(3)
    empty = store.copy_disk(Disk(tmp_path / "e", 1 << 20, 4096), tmp_path / "ec", 4096)
    assert empty.size == 0
