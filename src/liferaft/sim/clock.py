"""The simulated world's one clock and its event scheduler.

Every latency and every transfer in the simulator is charged on this clock.
Three modes:

* ``real``    -- simulated time is wall time.
* ``scaled``  -- simulated time runs ``scale`` times faster than wall time
  (the demo uses this so a 30 s boot takes a fraction of a second).
* ``stepped`` -- simulated time moves only when somebody calls :meth:`advance`
  (tests use this; nothing depends on how fast the machine is).

Events are callbacks due at a simulated instant.  In ``stepped`` mode
:meth:`advance` runs them in time order, setting ``now`` to each event's due
time before calling it, so an event that schedules another event inside the
stepped window sees it run too.  In the other modes a background task (see
:meth:`run_forever`) wakes up for the next due event; every API request also
calls :meth:`run_due` first so state is never stale.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

log = logging.getLogger(__name__)

ClockMode = Literal["real", "scaled", "stepped"]

#: Simulated time in ``stepped`` mode starts here (2026-01-01T00:00:00Z), so
#: timestamps look like real ones and tests are reproducible.
STEPPED_EPOCH = 1767225600.0


@dataclass(order=True)
class _Event:
    due: float
    seq: int
    fn: Callable[[], None] = field(compare=False)
    cancelled: bool = field(default=False, compare=False)


class Timer:
    """Handle returned by :meth:`SimClock.call_at`; ``cancel()`` drops the event."""

    def __init__(self, event: _Event) -> None:
        self._event = event

    @property
    def due(self) -> float:
        return self._event.due

    def cancel(self) -> None:
        self._event.cancelled = True


class SimClock:
    """The simulator's clock: ``now()`` in simulated seconds since the Unix epoch."""

    def __init__(
        self,
        mode: ClockMode = "real",
        scale: float = 1.0,
        start: float | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if mode not in ("real", "scaled", "stepped"):
            raise ValueError(f"unknown clock mode {mode!r}: use real, scaled or stepped")
        if mode == "scaled" and scale <= 0:
            raise ValueError(f"time scale must be positive, got {scale}")
        self.mode: ClockMode = mode
        self.scale = scale if mode == "scaled" else 1.0
        self._wall = wall
        self._wall0 = wall()
        if start is None:
            start = STEPPED_EPOCH if mode == "stepped" else self._wall0
        self._sim0 = start
        self._stepped_now = start
        self._heap: list[_Event] = []
        self._seq = itertools.count()
        self._running_due = False
        self._wakeup: asyncio.Event | None = None
        self._waiters: list[tuple[float, asyncio.Future[None]]] = []

    # -- reading -------------------------------------------------------------
    def now(self) -> float:
        if self.mode == "stepped":
            return self._stepped_now
        return self._sim0 + (self._wall() - self._wall0) * self.scale

    def describe(self) -> dict[str, object]:
        return {
            "mode": self.mode,
            "scale": self.scale,
            "now": self.now(),
            "pending_events": sum(1 for e in self._heap if not e.cancelled),
            "next_event_at": self.next_due(),
            # Requests sleeping on simulated time (an API call's latency): a driver
            # of a stepped clock moves it when all it waits for is these.
            "waiting_calls": len(self._waiters),
            "next_call_at": min((t for t, _ in self._waiters), default=None),
        }

    # -- scheduling ----------------------------------------------------------
    def call_at(self, due: float, fn: Callable[[], None]) -> Timer:
        ev = _Event(due, next(self._seq), fn)
        heapq.heappush(self._heap, ev)
        if self._wakeup is not None:
            self._wakeup.set()
        return Timer(ev)

    def call_later(self, delay: float, fn: Callable[[], None]) -> Timer:
        return self.call_at(self.now() + max(0.0, delay), fn)

    def next_due(self) -> float | None:
        while self._heap and self._heap[0].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0].due if self._heap else None

    def run_due(self) -> int:
        """Run every event due by ``now()``; returns how many ran."""
        if self._running_due:  # an event that reads state must not recurse
            return 0
        self._running_due = True
        ran = 0
        try:
            limit = self.now()
            while True:
                due = self.next_due()
                if due is None or due > limit:
                    break
                ev = heapq.heappop(self._heap)
                self._fire(ev)
                ran += 1
        finally:
            self._running_due = False
        self._release_waiters()
        return ran

    def advance(self, seconds: float) -> int:
        """Move a stepped clock forward, running events in order; returns how many ran."""
        if self.mode != "stepped":
            raise RuntimeError(f"only a stepped clock can be advanced (this one is {self.mode})")
        if seconds < 0:
            raise ValueError("cannot move the clock backwards")
        target = self._stepped_now + seconds
        ran = 0
        self._running_due = True
        try:
            while True:
                due = self.next_due()
                if due is None or due > target:
                    break
                ev = heapq.heappop(self._heap)
                self._stepped_now = max(self._stepped_now, ev.due)
                self._fire(ev)
                ran += 1
            self._stepped_now = target
        finally:
            self._running_due = False
        self._release_waiters()
        return ran

    def _fire(self, ev: _Event) -> None:
        try:
            ev.fn()
        except Exception:  # one broken event must not stop the world's clock
            log.exception("simulator event %r failed", ev.fn)

    # -- waiting (async) -----------------------------------------------------
    async def sleep_until(self, t: float) -> None:
        """Wait until simulated time ``t`` (works in every mode)."""
        if self.now() >= t:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append((t, fut))
        if self._wakeup is not None:
            self._wakeup.set()
        await fut

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self.now() + seconds)

    def _release_waiters(self) -> None:
        if not self._waiters:
            return
        now = self.now()
        keep = []
        for t, fut in self._waiters:
            if t <= now:
                if not fut.done():
                    fut.set_result(None)
            else:
                keep.append((t, fut))
        self._waiters = keep

    def _next_wake(self) -> float | None:
        cands = [t for t, _ in self._waiters]
        due = self.next_due()
        if due is not None:
            cands.append(due)
        return min(cands) if cands else None

    async def run_forever(self) -> None:
        """Background task for ``real`` and ``scaled`` clocks: fire events when due."""
        self._wakeup = asyncio.Event()
        while True:
            self.run_due()
            nxt = self._next_wake()
            if self.mode == "stepped" or nxt is None:
                timeout = None
            else:
                timeout = max(0.0, (nxt - self.now()) / self.scale)
            self._wakeup.clear()
            try:
                if timeout is None:
                    await self._wakeup.wait()
                else:
                    await asyncio.wait_for(self._wakeup.wait(), timeout=min(timeout, 1.0))
            except TimeoutError:
                pass
