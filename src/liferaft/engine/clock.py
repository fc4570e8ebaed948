"""The engine's clock port.

Logic reads time through a :class:`Clock` and waits through ``await
clock.sleep(...)``; nothing in the engine calls ``time.time`` or
``time.sleep`` itself, so tests can drive time and the demo can follow the
simulator's clock.

Implementations:

* :class:`RealClock` -- wall time (production).
* :class:`ManualClock` -- time moves only when a test says so (unit tests).
* a simulator-backed clock (reads ``GET /control/clock`` of the simulator's
  control API) lives next to these once the controller is wired to the
  simulator; it only has to satisfy :class:`Clock`.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Where the engine gets the time from, in seconds since the Unix epoch."""

    def now(self) -> float:
        """The current time."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait until ``now()`` has moved on by at least ``seconds``."""
        ...


async def sleep_until(clock: Clock, when: float) -> None:
    """Wait until ``clock.now() >= when``.

    A deadline, not a duration: a clock read over the network (the
    simulator's) may move between the caller reading it and the sleep
    starting, and ``sleep(when - now)`` would then overshoot by however far
    it moved -- in a stepped world, forever.  Uses the clock's own
    ``sleep_until`` when it has one.
    """
    own = getattr(clock, "sleep_until", None)
    if own is not None:
        await own(when)
        return
    await clock.sleep(max(0.0, when - clock.now()))


class RealClock:
    """Wall-clock time; sleeping yields to the event loop."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


@dataclass(order=True)
class _Sleeper:
    due: float
    seq: int
    future: asyncio.Future[None] = field(compare=False)


class ManualClock:
    """A clock for tests: time moves only through :meth:`advance` (or by sleeping, if auto).

    With ``auto_advance=True`` a ``sleep(s)`` simply moves the clock forward by
    ``s`` and returns, so code full of backoffs runs instantly and
    deterministically.  With ``auto_advance=False`` sleepers wait until a test
    calls :meth:`advance` past their due time, which lets a test interleave
    several tasks (a lease holder and a contender, say) precisely.
    """

    def __init__(self, start: float = 1767225600.0, *, auto_advance: bool = False) -> None:
        self._now = float(start)
        self.auto_advance = auto_advance
        self._sleepers: list[_Sleeper] = []
        self._seq = itertools.count()

    def now(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        if self.auto_advance:
            self._set(self._now + seconds)
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, _Sleeper(self._now + seconds, next(self._seq), fut))
        if seconds == 0:
            self._wake_due()
        await fut

    def advance(self, seconds: float) -> None:
        """Move time forward and wake every sleeper that is now due."""
        if seconds < 0:
            raise ValueError(f"ManualClock.advance({seconds!r}): time does not go backwards")
        self._set(self._now + seconds)

    def set(self, when: float) -> None:
        """Jump to an absolute time (not earlier than now)."""
        if when < self._now:
            raise ValueError(
                f"ManualClock.set({when!r}): time does not go backwards from {self._now}"
            )
        self._set(when)

    @property
    def sleepers(self) -> int:
        """How many tasks are waiting on this clock."""
        return sum(1 for s in self._sleepers if not s.future.done())

    def _set(self, when: float) -> None:
        self._now = when
        self._wake_due()

    def _wake_due(self) -> None:
        while self._sleepers and self._sleepers[0].due <= self._now:
            sleeper = heapq.heappop(self._sleepers)
            if not sleeper.future.done():
                sleeper.future.set_result(None)
