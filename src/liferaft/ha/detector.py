"""From monitors' opinions to "this host failed": agreement, re-check, guards.

Pure logic on the injected time, so it is tested without a cloud:

* **agreement**: a host is *silent* in a round when the configured share of
  monitors (``all``, a ``majority``, ``any``) call it failed; a monitor with
  no opinion on the host counts as "not failed";
* **re-check**: a silent host becomes a *suspect*; it is *confirmed* only
  when it is still silent at a later round at least ``recheck_delay``
  seconds after it was first seen silent;
* **mass-failure breaker**: more than ``breaker_max_hosts`` hosts, or more
  than ``breaker_max_share`` of one segment, silent at once: nothing is
  confirmed (a switch or the controller's own network failed far more
  likely than that many hosts), and the breaker stays tripped until the
  silence is back under the thresholds;
* **per-segment limit**: at most ``max_failed_hosts`` recoveries of one
  segment at once; a further confirmed host waits;
* hosts in maintenance, or already being recovered, are left out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from .monitors.base import Signal

Agreement = Literal["all", "majority", "any"]


def agrees(votes: Sequence[bool], n_monitors: int, rule: Agreement) -> bool:
    """Whether ``votes`` (True: failed) from ``n_monitors`` monitors call the host failed."""
    failed = sum(1 for v in votes if v)
    if n_monitors <= 0:
        return False
    if rule == "any":
        return failed >= 1
    if rule == "majority":
        return failed > n_monitors / 2
    return failed == n_monitors


@dataclass(frozen=True)
class SegmentView:
    name: str
    hosts: tuple[str, ...]
    max_failed_hosts: int
    #: Hosts of the segment under recovery now (count against the limit).
    recovering: frozenset[str] = frozenset()
    #: Hosts left out: maintenance, already recovered and not yet rejoined.
    excluded: frozenset[str] = frozenset()


@dataclass
class Decision:
    """What one round found."""

    silent: dict[str, list[str]] = field(default_factory=dict)  # host -> reasons
    suspects: list[str] = field(default_factory=list)
    confirmed: list[tuple[str, str]] = field(default_factory=list)  # (segment, host)
    waiting: list[str] = field(default_factory=list)  # confirmed, held by the segment limit
    breaker: str | None = None  # why the breaker is tripped


class Detector:
    def __init__(
        self,
        *,
        agreement: Agreement,
        recheck_delay: float,
        breaker_max_share: float,
        breaker_max_hosts: int,
    ) -> None:
        self.agreement: Agreement = agreement
        self.recheck_delay = recheck_delay
        self.breaker_max_share = breaker_max_share
        self.breaker_max_hosts = breaker_max_hosts
        #: host -> when it was first seen silent (reset when it speaks again).
        self.first_silent: dict[str, float] = {}
        self.breaker: str | None = None

    def round(
        self,
        now: float,
        segments: Sequence[SegmentView],
        opinions: Mapping[str, Mapping[str, Signal]],
    ) -> Decision:
        """One observation round; ``opinions`` is monitor name -> host -> signal."""
        d = Decision()
        n = len(opinions)
        for seg in segments:
            for host in seg.hosts:
                if host in seg.excluded:
                    continue
                sigs = [by_host[host] for by_host in opinions.values() if host in by_host]
                votes = [s.failed for s in sigs]
                if agrees(votes, n, self.agreement):
                    d.silent[host] = [s.reason for s in sigs if s.failed]
        for host in list(self.first_silent):
            if host not in d.silent:
                del self.first_silent[host]
        for host in d.silent:
            self.first_silent.setdefault(host, now)

        # The breaker counts every silent host, recovering ones included: a
        # second wave while the first is recovered is a mass failure too.
        total = len(d.silent)
        trip: str | None = None
        if total > self.breaker_max_hosts:
            trip = f"{total} hosts silent at once (more than {self.breaker_max_hosts})"
        for seg in segments:
            count = sum(1 for h in seg.hosts if h in d.silent)
            allowed = math.floor(self.breaker_max_share * len(seg.hosts) + 1e-9)
            if count > max(allowed, 1) and trip is None:
                trip = (
                    f"{count} of {len(seg.hosts)} hosts of segment {seg.name!r} silent at once "
                    f"(more than {self.breaker_max_share:.0%})"
                )
        self.breaker = trip
        d.breaker = trip
        for seg in segments:
            slots = seg.max_failed_hosts - len(seg.recovering)
            for host in seg.hosts:
                if host not in d.silent or host in seg.recovering:
                    continue
                if now - self.first_silent[host] < self.recheck_delay or trip is not None:
                    d.suspects.append(host)
                elif slots > 0:
                    d.confirmed.append((seg.name, host))
                    slots -= 1
                else:
                    d.waiting.append(host)
        return d
