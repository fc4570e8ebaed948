"""Live image-copy rates: what the DR-Logic decides, read by the copier at every chunk.

The DR-Logic loop (:mod:`liferaft.logic.loop`) decides, every
``drlogic_interval``, a guaranteed rate for each transfer and a ceiling
for all replication flows together (docs/drlogic.md).  Image-copy chunks
are a flow Liferaft carries itself, so the copier applies those rates:

* the loop :meth:`RateBoard.publish`-es each decision -- the image-copy
  flows in flight (a flow is a checkpoint: its id), their guarantees, and
  the part of the ceiling left to Liferaft's own flows (the ceiling less
  the guarantees of the flows the backup service carries);
* every copy step of a checkpoint paces its chunk sends through the
  flow's :class:`Pacer` (one per flow, shared by the checkpoint's
  volumes), which asks the board for the flow's rate **before every
  chunk**, so a new decision reaches a running copy at its next chunk.

A flow's rate under a decision is HTB-like: its guarantee (all guarantees
scaled down together if they exceed the ceiling) plus an equal share of
the spare -- the ceiling less every in-flight flow's guarantee -- between
the image-copy flows in flight.  A flow the decision does not name (it
started after it) has no guarantee and shares the spare with them once its
copier has asked for its rate.  A copy that ends between two decisions
still counts until the next one (its part of the spare idles meanwhile:
at most one interval's worth, never above the ceiling).

The board is in memory, in the controller that runs both the loop and the
copies.  A decision is valid for :data:`VALID_INTERVALS` decision
spacings (``drlogic_interval``, or the time between the last two decisions
when the loop's ticks are further apart): after that (the loop stopped, or the controller restarted and
has not decided yet: the board starts empty) a copy falls back to the
configured rate -- the checkpoint's ``rate_limit``, else
``protection.image_copy_rate``, else none -- until the next decision, which
comes within ``drlogic_interval``.  Nothing needs to survive a restart: a
decision is at most one interval old when it is replaced.

Timing is on the injected clock (the simulator's in tests; no real
sleeps).  A chunk is sent when its slot starts (token bucket: the next
slot begins ``chunk bytes / rate`` after this one), so a rate change takes
effect from the next slot: a copy follows a new rate within one chunk
at the old rate per volume being copied at once.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from liferaft.engine.clock import Clock, sleep_until
from liferaft.errors import GiveUp

#: A published decision stays valid this many decision intervals (one is missed, not two).
VALID_INTERVALS = 2.5
#: Simulated seconds a flow with no rate (no guarantee, no spare) waits before it asks again.
HOLD_S = 1.0


@dataclass(frozen=True)
class Published:
    """One decision as the copier needs it."""

    at: float
    valid_until: float
    by: str
    #: Image-copy flows in flight when the logic decided (they share the spare).
    flows: frozenset[str]
    #: Image-copy flow id -> guaranteed bytes per second.
    guarantees: dict[str, float]
    #: Bytes per second for Liferaft's own flows together (None: no ceiling).
    ceiling_bps: float | None
    reason: str = ""


@dataclass(frozen=True)
class Rate:
    """A flow's rate now and where it comes from."""

    bps: float | None  # None: as fast as the link allows
    source: str  # "decision" | "configured" | "unlimited"
    guaranteed_bps: float | None = None
    detail: str = ""


def share(p: Published, flow_id: str, running: Iterable[str] = ()) -> float | None:
    """A flow's rate under a decision: guarantee (scaled to fit) + an equal share of the spare.

    The spare is shared by the flows in flight when the logic decided, the
    copies ``running`` since (started after it) and this one.
    """
    active = set(p.flows) | set(running) | {flow_id}
    g = p.guarantees.get(flow_id, 0.0)
    if p.ceiling_bps is None:
        return None
    promised = sum(p.guarantees.get(f, 0.0) for f in active)
    own = max(0.0, p.ceiling_bps)
    scale = min(1.0, own / promised) if promised > 0 else 1.0
    spare = max(0.0, own - promised)
    return g * scale + spare / len(active)


class RateBoard:
    """Where the DR-Logic loop publishes image-copy rates and the copier reads them (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._published: Published | None = None
        self._pacers: dict[str, Pacer] = {}

    # -- the loop's side -------------------------------------------------------------
    def publish(
        self,
        *,
        at: float,
        interval_s: float,
        by: str,
        flows: Iterable[str],
        guarantees: dict[str, float],
        ceiling_bps: float | None,
        reason: str = "",
    ) -> Published:
        """Record a decision; valid for :data:`VALID_INTERVALS` times ``interval_s`` from ``at``."""
        for f, bps in guarantees.items():
            if bps < 0:
                raise GiveUp(f"image-copy flow {f}: a guaranteed rate must be >= 0, not {bps}")
        p = Published(
            at=at,
            valid_until=at + VALID_INTERVALS * interval_s,
            by=by,
            flows=frozenset(flows) | frozenset(guarantees),
            guarantees=dict(guarantees),
            ceiling_bps=ceiling_bps,
            reason=reason,
        )
        with self._lock:
            self._published = p
            # Forget the pacers of flows that ended (idle and no longer in flight).
            for f, pacer in list(self._pacers.items()):
                if f not in p.flows and pacer.idle_since(at) > VALID_INTERVALS * interval_s:
                    del self._pacers[f]
        return p

    def published(self) -> Published | None:
        with self._lock:
            return self._published

    # -- the copier's side -----------------------------------------------------------
    def rate(self, flow_id: str, now: float, fallback_bps: float | None) -> Rate:
        """The flow's rate now: the latest decision's while valid, else the configured one."""
        with self._lock:
            p = self._published
            # Copies that started after the decision share its spare too.
            running = [
                f
                for f, x in self._pacers.items()
                if p and x.read_at is not None and x.read_at >= p.at
            ]
        if p is not None and now <= p.valid_until:
            return Rate(
                share(p, flow_id, running),
                "decision",
                p.guarantees.get(flow_id),
                f"decided by {p.by} at {p.at:.1f}",
            )
        why = "no decision yet" if p is None else f"the decision of {p.at:.1f} expired"
        if fallback_bps is None:
            return Rate(None, "unlimited", None, f"{why}; no rate configured")
        return Rate(fallback_bps, "configured", None, f"{why}; the configured rate")

    def pacer(self, flow_id: str, clock: Clock, fallback_bps: float | None) -> Pacer:
        """The flow's pacer (one per flow: a checkpoint's volumes share its rate)."""
        if fallback_bps is not None and fallback_bps <= 0:
            raise GiveUp(f"image-copy rate limit must be > 0 bytes/s, not {fallback_bps}")
        with self._lock:
            pacer = self._pacers.get(flow_id)
            if pacer is None or pacer.clock is not clock:
                pacer = self._pacers[flow_id] = Pacer(self, flow_id, clock, fallback_bps)
            else:
                pacer.fallback_bps = fallback_bps
            return pacer

    def view(self) -> dict[str, Any]:
        """What is applied: the published decision and, per flow, the rate its copier paces at."""
        with self._lock:
            p = self._published
            pacers = list(self._pacers.values())
        return {
            "published": None
            if p is None
            else {
                "at": p.at,
                "valid_until": p.valid_until,
                "by": p.by,
                "flows": sorted(p.flows),
                "guarantees_bps": dict(p.guarantees),
                "ceiling_bps": p.ceiling_bps,
                "reason": p.reason,
            },
            "flows": [x.describe() for x in sorted(pacers, key=lambda x: x.flow_id)],
        }


@dataclass
class Pacer:
    """Paces one flow's chunk sends on the injected clock at the board's rate, re-read per chunk."""

    board: RateBoard
    flow_id: str
    clock: Clock
    fallback_bps: float | None
    _free_at: float | None = None
    #: What the copier applied last: the rate, when it read it, bytes sent through this pacer.
    applied: Rate | None = None
    read_at: float | None = None
    sent_bytes: int = 0
    first_at: float | None = None
    last_at: float | None = None
    changes: list[tuple[float, float | None]] = field(default_factory=list)

    async def take(self, nbytes: int) -> None:
        """Wait until ``nbytes`` more may be sent (the slot starts now or when the last one ends)."""
        while True:
            now = self.clock.now()
            r = self.board.rate(self.flow_id, now, self.fallback_bps)
            self._note(r, now)
            if r.bps is None:
                self._free_at = None
                break
            if r.bps <= 0:  # no guarantee and no spare: ask again shortly
                self._free_at = None
                await sleep_until(self.clock, now + HOLD_S)
                continue
            start = now if self._free_at is None else max(now, self._free_at)
            self._free_at = start + nbytes / r.bps
            if start > now:
                await sleep_until(self.clock, start)
            break
        self.sent_bytes += nbytes
        t = self.clock.now()
        self.first_at = t if self.first_at is None else self.first_at
        self.last_at = t

    def _note(self, r: Rate, now: float) -> None:
        if self.applied is None or self.applied.bps != r.bps:
            self.changes.append((now, r.bps))
            del self.changes[:-10]
        self.applied, self.read_at = r, now

    def idle_since(self, now: float) -> float:
        last = self.last_at if self.last_at is not None else self.read_at
        return float("inf") if last is None else now - last

    def describe(self) -> dict[str, Any]:
        r = self.applied
        return {
            "flow_id": self.flow_id,
            "pace_bps": None if r is None else r.bps,
            "source": None if r is None else r.source,
            "guaranteed_bps": None if r is None else r.guaranteed_bps,
            "detail": None if r is None else r.detail,
            "read_at": self.read_at,
            "sent_bytes": self.sent_bytes,
            "first_send_at": self.first_at,
            "last_send_at": self.last_at,
            "changes": [{"at": at, "pace_bps": bps} for at, bps in self.changes],
        }
