"""The simulator's write log: every canary write and every safety-relevant event.

It is the test harness's and the benchmarks' window into what really
happened (which host wrote when, when power went off, when an evacuation
started).  The controller never reads it.
"""

from __future__ import annotations

import json
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
