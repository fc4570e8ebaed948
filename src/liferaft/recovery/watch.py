"""Shared status polling for a recovery: one listing per poll for every volume or server waited on.

A recovery of a thousand servers has a thousand steps waiting at once for a
volume to be restored or a server to become ``ACTIVE``.  Each polling its
own object costs one API call per object per poll (and, through
openstacksdk, 15-30 ms of client CPU per call); a :class:`StatusWatch`
instead runs one loop per kind while anybody waits, which lists the
volumes (``GET /volumes/detail``) or the servers (``GET /servers/detail``)
once per poll and wakes the waiters whose object reached the state they
wait for.  The first look at an object is a GET of its own (so a waiter
learns at once what it may already be), and an object missing from a
listing (made after the listing began) is simply looked at again next time.

A listing of every object at every poll made a recovery quadratic in its
size (a thousand servers listed at each of ~600 polls); so after the first,
a listing asks only for what changed since the newest change it has seen
(the cloud's own ``updated`` stamps, so the controller's clock plays no
part), less :data:`MARGIN` -- a change made while a waiter's first look
was in flight is seen again -- and every :data:`FULL_EVERY` listings one
lists everything.

Only reads are shared: every step still makes its own creates, tagged and
recorded, so the workflow stays durable and idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

from liferaft.clouds.model import Server, Volume
from liferaft.clouds.port import Cloud
from liferaft.engine.clock import Clock
from liferaft.errors import GiveUp, RetryLater

T = TypeVar("T", Volume, Server)

#: Seconds (of the cloud's clock) an incremental listing reaches back before the newest
#: change already seen: longer than any first look of a waiter may be in flight.
MARGIN = 30.0
#: One listing in this many lists everything (a safety net, not a correctness need).
FULL_EVERY = 60


@functools.lru_cache(maxsize=65536)
def _stamp(text: str | None) -> float | None:
    """A cloud timestamp (ISO 8601, no zone meaning UTC) in epoch seconds; None if unreadable."""
    if not text:
        return None
    try:
        t = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (t if t.tzinfo is not None else t.replace(tzinfo=UTC)).timestamp()


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class _Waiter(Generic[T]):
    done: Callable[[T], bool]
    failed: Callable[[T], bool]
    what: str
    deadline: float
    future: asyncio.Future[T]
    #: The first listing that may settle it: one that began after it started waiting.
    after: int = 0


class _Kind(Generic[T]):
    """The waiters on one kind of object, and the loop that lists them."""

    def __init__(
        self,
        clock: Clock,
        poll: float,
        get: Callable[[str], Awaitable[T]],
        listing: Callable[[str | None], Awaitable[list[T]]],
    ) -> None:
        self.clock = clock
        self.poll = poll
        self.get: Callable[[str], Awaitable[T]] = get
        #: ``listing(changes_since)``: every object, or those changed at or after a stamp.
        self.listing: Callable[[str | None], Awaitable[list[T]]] = listing
        self.waiters: dict[str, list[_Waiter[T]]] = {}
        self.loop: asyncio.Task[None] | None = None
        self.lists = 0
        #: The newest change seen in a listing (the cloud's clock), None before the first.
        self.mark: float | None = None
        #: Objects listed, in all (what the listings cost).
        self.listed = 0
        #: Listings begun (each one's sequence number is the count before it).
        self.begun = 0
        #: What the listing that settled a waiter showed of its object (``seen``).
        self._seen: dict[str, T] = {}
        #: No waiter's deadline is earlier than this (``_expire`` skips until it passes).
        self._first_deadline = float("inf")

    def _since(self) -> str | None:
        if self.mark is None or self.lists % FULL_EVERY == 0:
            return None
        return _iso(self.mark - MARGIN)

    def _settle(self, obj: T, seq: int) -> None:
        keep = []
        for w in self.waiters.get(obj.id, []):
            if w.future.done():
                continue
            if seq < w.after:
                # This listing began before the waiter's own look: it may show the
                # object as it was before what the waiter waits on (a restore just
                # asked for, an attach) -- the volume still "available", say.
                keep.append(w)
            elif w.done(obj):
                self._seen[obj.id] = obj
                w.future.set_result(obj)
            elif w.failed(obj):
                w.future.set_exception(GiveUp(f"{w.what} failed: {obj}"))
            else:
                keep.append(w)
        if keep:
            self.waiters[obj.id] = keep
        else:
            self.waiters.pop(obj.id, None)

    def _expire(self) -> None:
        now = self.clock.now()
        if now <= self._first_deadline:
            return  # nobody's deadline has passed (scanning every waiter each poll cost O(n))
        first = float("inf")
        for oid in list(self.waiters):
            keep = []
            for w in self.waiters[oid]:
                if w.future.done():
                    continue
                if now > w.deadline:
                    w.future.set_exception(RetryLater(f"{w.what}: still not ready"))
                else:
                    keep.append(w)
                    first = min(first, w.deadline)
            if keep:
                self.waiters[oid] = keep
            else:
                del self.waiters[oid]
        self._first_deadline = first

    async def _run(self) -> None:
        try:
            while self.waiters:
                await self.clock.sleep(self.poll)
                if not self.waiters:
                    break
                seq = self.begun
                self.begun += 1
                try:
                    objs = await self.listing(self._since())
                except (RetryLater, GiveUp) as err:
                    # One failed listing fails nobody; the waiters' deadlines still hold.
                    for ws in self.waiters.values():
                        for w in ws:
                            if not w.future.done() and self.clock.now() > w.deadline:
                                w.future.set_exception(err)
                    self._expire()
                    continue
                self.lists += 1
                self.listed += len(objs)
                for obj in objs:
                    t = _stamp(obj.updated)
                    if t is not None and (self.mark is None or t > self.mark):
                        self.mark = t
                    if obj.id in self.waiters:
                        self._settle(obj, seq)
                self._expire()
        finally:
            self.loop = None

    async def wait(
        self,
        oid: str,
        done: Callable[[T], bool],
        *,
        failed: Callable[[T], bool],
        what: str,
        timeout: float,
        first: T | None = None,
        look: bool = True,
    ) -> T:
        if first is not None or look:
            if first is None:
                first = await self.get(oid)
            if done(first):
                self._seen[oid] = first
                return first
            if failed(first):
                raise GiveUp(f"{what} failed: {first}")
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        deadline = self.clock.now() + timeout
        self._first_deadline = min(self._first_deadline, deadline)
        self.waiters.setdefault(oid, []).append(
            _Waiter(done, failed, what, deadline, fut, after=self.begun)
        )
        if self.loop is None:
            self.loop = asyncio.create_task(self._run(), name=f"watch {what}")
        try:
            return await fut
        finally:
            if not fut.done():
                fut.cancel()
            if fut.cancelled():  # forget this waiter (the listing loop ends with the last)
                left = [w for w in self.waiters.get(oid, []) if w.future is not fut]
                if left:
                    self.waiters[oid] = left
                else:
                    self.waiters.pop(oid, None)

    def seen(self, oid: str) -> T | None:
        """The object as it was when a wait on it last ended here, if one did (in memory)."""
        return self._seen.get(oid)

    async def close(self) -> None:
        if self.loop is not None:
            self.loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.loop


class StatusWatch:
    """Waits on volumes and servers of one cloud, with one listing per kind per poll."""

    def __init__(self, cloud: Cloud, clock: Clock, *, poll: float = 1.0) -> None:
        self.cloud = cloud
        self.volumes: _Kind[Volume] = _Kind(
            clock, poll, cloud.get_volume, lambda since: cloud.list_volumes(changes_since=since)
        )
        self.servers: _Kind[Server] = _Kind(
            clock, poll, cloud.get_server, lambda since: cloud.list_servers(changes_since=since)
        )

    async def volume(
        self,
        volume_id: str,
        done: Callable[[Volume], bool],
        *,
        failed: Callable[[Volume], bool],
        what: str,
        timeout: float,
        first: Volume | None = None,
        look: bool = True,
    ) -> Volume:
        """Wait for ``done``; ``first``: what the caller just read or made (no GET of its own).

        ``look=False`` (and no ``first``): no look of its own either -- for a caller
        whose request changed the object's status before the cloud answered (a
        restore puts the volume in ``restoring-backup`` at once): only listings
        begun after the wait started can settle it, so they show that change.
        """
        return await self.volumes.wait(
            volume_id, done, failed=failed, what=what, timeout=timeout, first=first, look=look
        )

    async def server(
        self,
        server_id: str,
        done: Callable[[Server], bool],
        *,
        failed: Callable[[Server], bool],
        what: str,
        timeout: float,
        first: Server | None = None,
    ) -> Server:
        return await self.servers.wait(
            server_id, done, failed=failed, what=what, timeout=timeout, first=first
        )

    async def close(self) -> None:
        await self.volumes.close()
        await self.servers.close()
