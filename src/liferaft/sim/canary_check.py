"""The consistency checker: do restored volumes agree on one point of a writer's history?

A writer (see :mod:`liferaft.sim.canary`) numbers its writes with one
sequence across all of its volumes.  A set of volumes restored from
snapshots or backups is **consistent** when there is a position ``P`` in that
sequence such that every block of every volume holds exactly the last write
made to it at or before ``P``: the set looks like the disks of a machine that
stopped at ``P``.  In particular no volume is ahead of another.

For a database writer (write-ahead: each transaction's log record is written
before its data block) the checker also says whether the set is
**recoverable**: each volume is a point in time of its own and the log is at
or ahead of every data volume, which a database repairs by replaying its log.
A data volume ahead of its log is neither.

The checker reads the restored volumes' bytes; the history is the writer's
own record of what it wrote.  Restored copies have new volume ids, so each
copy is matched to the original volume its canary headers name.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .canary_format import CanaryBlock, Role
from .canary_read import VolumeScan, scan
from .disks import Disk


@dataclass(frozen=True)
class HistoryWrite:
    """One write of a writer's history, as the writer recorded it."""

    seq: int
    time: float
    volume: str
    block: int
    role: Role

    def as_dict(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "time": self.time,
            "volume": self.volume,
            "block": self.block,
            "role": self.role,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> HistoryWrite:
        return cls(
            seq=int(d["seq"]),
            time=float(d["time"]),
            volume=str(d["volume"]),
            block=int(d["block"]),
            role=d.get("role", "single"),
        )


@dataclass
class ConsistencyReport:
    consistent: bool
    recoverable: bool
    reason: str | None
    point: int | None  # the agreed position P when consistent
    newest: dict[str, dict[str, Any]] = field(default_factory=dict)  # by restored label
    missing: list[str] = field(default_factory=list)  # group volumes no copy was given for

    def as_dict(self) -> dict[str, Any]:
        return {
            "consistent": self.consistent,
            "recoverable": self.recoverable,
            "reason": self.reason,
            "point": self.point,
            "newest": self.newest,
            "missing": self.missing,
        }


class _VolumeHistory:
    """One original volume's writes, indexed for "last write at or before P" questions."""

    def __init__(self, writes: list[HistoryWrite], role: Role | None = None) -> None:
        self.writes = writes  # sorted by seq
        self.seqs = [w.seq for w in writes]
        self.role: Role = role or (writes[0].role if writes else "single")
        by_block: dict[int, list[int]] = {}
        for w in writes:
            by_block.setdefault(w.block, []).append(w.seq)
        self.by_block = by_block

    def first_after(self, lo: int, hi: int) -> HistoryWrite | None:
        """The first write with ``lo < seq <= hi``, if any."""
        i = bisect_right(self.seqs, lo)
        if i < len(self.seqs) and self.seqs[i] <= hi:
            return self.writes[i]
        return None

    def block_at(self, block: int, point: int) -> int:
        """Sequence of the last write to ``block`` at or before ``point`` (0: none)."""
        seqs = self.by_block.get(block, [])
        i = bisect_right(seqs, point)
        return seqs[i - 1] if i else 0

    def contains(self, seq: int) -> bool:
        i = bisect_left(self.seqs, seq)
        return i < len(self.seqs) and self.seqs[i] == seq


def _short(vol: str) -> str:
    return vol[:8]


def check_consistency(
    disks: Mapping[str, Disk],
    history: Sequence[HistoryWrite],
    *,
    writer_id: str | None = None,
    group: Mapping[str, Role] | None = None,
) -> ConsistencyReport:
    """Check restored copies (``label -> Disk``) against a writer's write history.

    ``group`` names the writer's volumes and their roles (volumes the history
    has no write to yet are known only from it).  Canary blocks of other
    writers are ignored when ``writer_id`` is given.
    A copy holding no canary block of the writer is matched to the one group
    volume no other copy stands for, when that pairing is unambiguous.
    """
    ordered = sorted(history, key=lambda w: w.seq)
    per_volume: dict[str, list[HistoryWrite]] = {v: [] for v in group or {}}
    for w in ordered:
        per_volume.setdefault(w.volume, []).append(w)
    hist = {v: _VolumeHistory(ws, (group or {}).get(v)) for v, ws in per_volume.items()}

    scans: dict[str, VolumeScan] = {}
    mine: dict[str, dict[int, CanaryBlock]] = {}
    for label, disk in disks.items():
        s = scan(disk)
        scans[label] = s
        mine[label] = {
            i: b for i, b in s.blocks.items() if writer_id is None or b.writer_id == writer_id
        }

    def fail(reason: str, newest: dict[str, dict[str, Any]] | None = None) -> ConsistencyReport:
        return ConsistencyReport(False, False, reason, None, newest or {}, [])

    # Damaged blocks: a restored copy that holds them is no point in time at all.
    for label, s in scans.items():
        if s.torn:
            return fail(f"volume {label} has {len(s.torn)} torn block(s), first at {s.torn[0]}")
        if s.misplaced:
            return fail(
                f"volume {label} has {len(s.misplaced)} misplaced block(s), first at {s.misplaced[0]}"
            )

    # Which original volume each copy stands for.
    origin: dict[str, str] = {}
    empty: list[str] = []
    for label, blocks in mine.items():
        names = {b.volume_id for b in blocks.values()}
        if not names:
            empty.append(label)
            continue
        if len(names) > 1:
            return fail(f"volume {label} mixes canary blocks of volumes {', '.join(sorted(names))}")
        name = names.pop()
        if name not in hist:
            return fail(
                f"volume {label} holds canary blocks of volume {name}, "
                "which the writer's history never wrote"
            )
        for other, o in origin.items():
            if o == name:
                return fail(f"volumes {other} and {label} are both copies of volume {name}")
        origin[label] = name
    missing = [v for v in hist if v not in origin.values()]
    if len(empty) == 1 and len(missing) == 1:
        origin[empty[0]] = missing.pop()

    newest_seq: dict[str, int] = {}
    newest: dict[str, dict[str, Any]] = {}
    for label in disks:
        blocks = mine[label]
        top = max(blocks.values(), key=lambda b: b.seq, default=None)
        vol = origin.get(label)
        newest_seq[label] = 0 if top is None else top.seq
        newest[label] = {
            "volume": vol,
            "role": hist[vol].role if vol in hist else None,
            "seq": None if top is None else top.seq,
            "time": None if top is None else top.time,
        }

    # Each copy on its own must be one point of its volume's history: every
    # block holds the last write to it at or before the copy's newest write.
    for label, vol in origin.items():
        h = hist[vol]
        n = newest_seq[label]
        blocks = mine[label]
        for b in sorted(set(h.by_block) | set(blocks)):
            want = h.block_at(b, n)
            got = blocks[b].seq if b in blocks else 0
            if got != want:
                if got and not h.contains(got):
                    why = f"holds write {got}, which is not in the writer's history"
                elif got:
                    why = f"holds write {got} but write {want} was the last to it by write {n}"
                else:
                    why = f"lacks write {want} although the volume holds write {n}"
                return fail(f"volume {label} block {b} {why}: the copy is torn in time", newest)

    # The copies together: nobody may lack a write that precedes another's newest.
    top_label = max(origin, key=lambda lab: newest_seq[lab], default=None)
    point = 0 if top_label is None else newest_seq[top_label]
    reason: str | None = None
    for label, vol in origin.items():
        gap = hist[vol].first_after(newest_seq[label], point)
        if gap is not None:
            assert top_label is not None
            lead_vol = origin[top_label]
            reason = (
                f"{hist[lead_vol].role} volume {top_label} (of {_short(lead_vol)}) is ahead of "
                f"{hist[vol].role} volume {label} (of {_short(vol)}): it holds write {point} "
                f"but {label} lacks write {gap.seq} made at {gap.time:.3f}"
            )
            break
    consistent = reason is None
    return ConsistencyReport(
        consistent=consistent,
        recoverable=consistent or _log_covers_data(origin, newest_seq, hist),
        reason=reason,
        point=point if consistent else None,
        newest=newest,
        missing=[v for v in hist if v not in origin.values()],
    )


def _log_covers_data(
    origin: Mapping[str, str], newest_seq: Mapping[str, int], hist: Mapping[str, _VolumeHistory]
) -> bool:
    """Write-ahead recovery: every log copy holds all its records up to each data copy's newest."""
    logs = [lab for lab, v in origin.items() if hist[v].role == "log"]
    data = [lab for lab, v in origin.items() if hist[v].role == "data"]
    if not logs or not data:
        return False
    for d in data:
        for lg in logs:
            if hist[origin[lg]].first_after(newest_seq[lg], newest_seq[d]) is not None:
                return False
    return True
