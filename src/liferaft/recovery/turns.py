"""Issue a run's restore requests in critical-path order.

A cloud restores a bounded number of volumes at once and queues the rest
first come, first served (Cinder's backup workers).  The restore steps of a
run all start together and reach their restore call at about the same
moment, in whatever order their earlier calls happened to return, so the
volume a first-tier server waits on could be queued behind the last tier's.
A :class:`Turnstile` lets restore number ``r`` (its rank in
:func:`liferaft.recovery.disaster.restore_order`) send its request only
once every lower rank has sent its own, failed, or was done in an earlier
attempt.  It only orders requests: it never waits longer than ``patience``
(simulated seconds) for a slower lower rank, so a step that is stuck or
retrying holds nobody up for long, and it keeps no state that a restart
would need (a replayed step marks the ranks it finds done).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

from liferaft.engine.clock import Clock


class Turnstile:
    def __init__(self, clock: Clock, *, patience: float = 10.0) -> None:
        self.clock = clock
        self.patience = patience
        self._through: set[int] = set()
        self._next = 0  # every rank below this one is through
        self._waiters: dict[int, list[asyncio.Future[None]]] = {}

    @property
    def next(self) -> int:
        return self._next

    def mark(self, ranks: Iterable[int]) -> None:
        """These ranks sent their request (or never will): the ones after them may go."""
        self._through.update(ranks)
        while self._next in self._through:
            self._next += 1
        for r in [r for r in self._waiters if r <= self._next]:
            for fut in self._waiters.pop(r):
                if not fut.done():
                    fut.set_result(None)

    async def turn(self, rank: int) -> None:
        """Wait until every rank below ``rank`` is through, or ``patience`` has passed."""
        if rank <= self._next:
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.setdefault(rank, []).append(fut)
        timer = asyncio.ensure_future(self.clock.sleep(self.patience))
        try:
            await asyncio.wait({fut, timer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await timer
            if not fut.done():
                fut.cancel()
