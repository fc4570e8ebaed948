"""The simulator's write log: every canary write and every safety-relevant event.

It is the test harness's and the benchmarks' window into what really
happened (which host wrote when, when power went off, when an evacuation
started).  The controller never reads it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class LogEntry:
    seq: int
    time: float
    kind: str  # "write", "power", "force_down", "evacuate", "restore", ...
    site: str
    host: str | None = None
    instance: str | None = None
    volume: str | None = None
    data: dict[str, Any] = field(default_factory=dict)


class WriteLog:
    """Append-only, in memory, mirrored to ``writelog.jsonl`` in the state directory."""

    def __init__(self, path: Path | None = None) -> None:
        self.entries: list[LogEntry] = []
        self._path = path
        self._fh = open(path, "a", buffering=1) if path else None  # noqa: SIM115

    def record(
        self,
        time: float,
        kind: str,
        site: str,
        *,
        host: str | None = None,
        instance: str | None = None,
        volume: str | None = None,
        **data: Any,
    ) -> LogEntry:
        entry = LogEntry(len(self.entries) + 1, time, kind, site, host, instance, volume, data)
        self.entries.append(entry)
        if self._fh is not None:
            self._fh.write(json.dumps(asdict(entry), separators=(",", ":")) + "\n")
        return entry

    def query(
        self,
        *,
        kind: str | None = None,
        site: str | None = None,
        instance: str | None = None,
        volume: str | None = None,
        since_seq: int = 0,
    ) -> list[LogEntry]:
        out = []
        for e in self.entries[since_seq:]:
            if kind is not None and e.kind != kind:
                continue
            if site is not None and e.site != site:
                continue
            if instance is not None and e.instance != instance:
                continue
            if volume is not None and e.volume != volume:
                continue
            out.append(e)
        return out

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None


@dataclass(frozen=True)
class DoubleRun:
    """One instance writing from two places (hosts or sites) at overlapping times."""

    instance: str
    first: tuple[str, str | None]  # (site, host) of one copy
    second: tuple[str, str | None]  # (site, host) of the other
    start: float  # the overlap: both copies wrote within [start, end]
    end: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "instance": self.instance,
            "first": {"site": self.first[0], "host": self.first[1]},
            "second": {"site": self.second[0], "host": self.second[1]},
            "start": self.start,
            "end": self.end,
        }


def double_running(entries: Iterable[LogEntry], *, gap: float = 5.0) -> list[DoubleRun]:
    """Instances whose workload wrote from two places at overlapping instants.

    Each place's ``write`` entries for an instance are cut into *sessions*
    wherever it went silent for more than ``gap`` seconds; two sessions of
    different places that overlap in time are a double run.  A clean move
    (the old host stops writing before the new one starts, as after a fenced
    evacuation or a recovery at another site) is not.  ``gap`` should exceed
    the canaries' write interval.
    """
    by_place: dict[str, dict[tuple[str, str | None], list[float]]] = {}
    for e in entries:
        if e.kind != "write" or e.instance is None:
            continue
        by_place.setdefault(e.instance, {}).setdefault((e.site, e.host), []).append(e.time)
    found: list[DoubleRun] = []
    for instance, places in sorted(by_place.items()):
        sessions: list[tuple[float, float, tuple[str, str | None]]] = []
        for place, times in places.items():
            times.sort()
            start = prev = times[0]
            for t in times[1:]:
                if t - prev > gap:
                    sessions.append((start, prev, place))
                    start = t
                prev = t
            sessions.append((start, prev, place))
        sessions.sort(key=lambda s: (s[0], s[1]))
        for i, (_s1, e1, p1) in enumerate(sessions):
            for s2, e2, p2 in sessions[i + 1 :]:
                if s2 > e1:
                    break  # sorted by start: no later session overlaps this one
                if p1 != p2:
                    found.append(DoubleRun(instance, p1, p2, s2, min(e1, e2)))
    return found
