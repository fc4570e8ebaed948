"""Shared status polling for a recovery: one listing per poll for every volume or server waited on.

A recovery of a thousand servers has a thousand steps waiting at once for a
volume to be restored or a server to become ``ACTIVE``.  Each polling its
own object costs one API call per object per poll (and, through
openstacksdk, 15-30 ms of client CPU per call); a :class:`StatusWatch`
instead runs one loop per kind while anybody waits, which lists every
volume (``GET /volumes/detail``) or every server (``GET /servers/detail``)
once per poll and wakes the waiters whose object reached the state they
wait for.  The first look at an object is a GET of its own (so a waiter
learns at once what it may already be), and an object missing from a
listing (made after the listing began) is simply looked at again next time.

Only reads are shared: every step still makes its own creates, tagged and
recorded, so the workflow stays durable and idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from liferaft.clouds.model import Server, Volume
from liferaft.clouds.port import Cloud
from liferaft.engine.clock import Clock
from liferaft.errors import GiveUp, RetryLater

T = TypeVar("T", Volume, Server)


@dataclass
class _Waiter(Generic[T]):
    done: Callable[[T], bool]
    failed: Callable[[T], bool]
    what: str
    deadline: float
    future: asyncio.Future[T]


class _Kind(Generic[T]):
    """The waiters on one kind of object, and the loop that lists them."""

    def __init__(
        self,
        clock: Clock,
        poll: float,
        get: Callable[[str], Awaitable[T]],
        listing: Callable[[], Awaitable[list[T]]],
    ) -> None:
        self.clock = clock
        self.poll = poll
        self.get: Callable[[str], Awaitable[T]] = get
        self.listing: Callable[[], Awaitable[list[T]]] = listing
        self.waiters: dict[str, list[_Waiter[T]]] = {}
        self.loop: asyncio.Task[None] | None = None
        self.lists = 0

    def _settle(self, obj: T) -> None:
        keep = []
        for w in self.waiters.get(obj.id, []):
            if w.future.done():
                continue
            if w.done(obj):
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
        for oid in list(self.waiters):
            keep = []
            for w in self.waiters[oid]:
                if w.future.done():
                    continue
                if now > w.deadline:
                    w.future.set_exception(RetryLater(f"{w.what}: still not ready"))
                else:
                    keep.append(w)
            if keep:
                self.waiters[oid] = keep
            else:
                del self.waiters[oid]

    async def _run(self) -> None:
        try:
            while self.waiters:
                await self.clock.sleep(self.poll)
                if not self.waiters:
                    break
                try:
                    objs = await self.listing()
                except (RetryLater, GiveUp) as err:
                    # One failed listing fails nobody; the waiters' deadlines still hold.
                    for ws in self.waiters.values():
                        for w in ws:
                            if not w.future.done() and self.clock.now() > w.deadline:
                                w.future.set_exception(err)
                    self._expire()
                    continue
                self.lists += 1
                for obj in objs:
                    if obj.id in self.waiters:
                        self._settle(obj)
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
    ) -> T:
        if first is None:
            first = await self.get(oid)
        if done(first):
            return first
        if failed(first):
            raise GiveUp(f"{what} failed: {first}")
        fut: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self.waiters.setdefault(oid, []).append(
            _Waiter(done, failed, what, self.clock.now() + timeout, fut)
        )
        if self.loop is None:
            self.loop = asyncio.create_task(self._run(), name=f"watch {what}")
        try:
            return await fut
        finally:
            if not fut.done():  # cancelled: forget this waiter
                fut.cancel()

    async def close(self) -> None:
        if self.loop is not None:
            self.loop.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.loop


class StatusWatch:
    """Waits on volumes and servers of one cloud, with one listing per kind per poll."""

    def __init__(self, cloud: Cloud, clock: Clock, *, poll: float = 1.0) -> None:
        self.cloud = cloud
        self.volumes: _Kind[Volume] = _Kind(clock, poll, cloud.get_volume, cloud.list_volumes)
        self.servers: _Kind[Server] = _Kind(clock, poll, cloud.get_server, cloud.list_servers)

    async def volume(
        self,
        volume_id: str,
        done: Callable[[Volume], bool],
        *,
        failed: Callable[[Volume], bool],
        what: str,
        timeout: float,
        first: Volume | None = None,
    ) -> Volume:
        """Wait for ``done``; ``first``: what the caller just read or made (no GET of its own)."""
        return await self.volumes.wait(
            volume_id, done, failed=failed, what=what, timeout=timeout, first=first
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
