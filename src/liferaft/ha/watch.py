"""Batched tracking of the servers being evacuated: one list call serves every step.

Each evacuation step waits until its instance runs again.  Asking the
compute API about each instance on every look (a GET per instance every
``TRACK_POLL`` seconds) costs one call per instance per look -- thousands
of calls for a 100-instance host, each 15-30 ms of client CPU through
openstacksdk.  Instead the steps of a site share one :class:`ServerWatch`:

* looks happen on a grid of the clock (multiples of ``poll``), so every
  step that looks at the same instant is served by one call;
* a look lists only the servers the compute API changed since the last
  look (``changes-since``, which every Nova release offers to admins);
  the watermark is the newest ``updated`` seen in a listing -- the API's
  own clock, so the controller's clock may be skewed -- and a change made
  after a listing is stamped at or after it, so none is missed;
* the first look lists every server once; an instance never seen is read
  once by id.

A step reads the server by id (authoritative) before it acts on it; the
watch only serves the waiting.
"""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime

from liferaft.clouds import Cloud, ResourceNotFound
from liferaft.clouds.model import Server
from liferaft.engine.clock import Clock


def _stamp(value: str) -> datetime | None:
    try:
        t = datetime.fromisoformat(value)
    except ValueError:
        return None
    return t if t.tzinfo is not None else t.replace(tzinfo=UTC)  # Nova's are UTC


class ServerWatch:
    """The servers of one site as of the latest look; looks coalesced per clock instant."""

    def __init__(self, cloud: Cloud, clock: Clock, *, poll: float) -> None:
        self.cloud = cloud
        self.clock = clock
        self.poll = poll
        self._servers: dict[str, Server] = {}
        self._gone: set[str] = set()
        self._mark: str | None = None
        self._mark_t: datetime | None = None
        self._looked_at: float | None = None
        self._look: asyncio.Future[None] | None = None
        #: List calls made (for tests and the benchmark).
        self.lists = 0

    async def wait(self) -> None:
        """Sleep until the next instant of the grid (strictly later than now)."""
        now = self.clock.now()
        nxt = (math.floor(now / self.poll) + 1) * self.poll
        await self.clock.sleep(nxt - now)

    async def get(self, server_id: str) -> Server:
        """The server as of a look made at this instant or later; ``ResourceNotFound`` if gone."""
        now = self.clock.now()
        if self._looked_at is None or self._looked_at < now:
            await self._refresh(now)
        if server_id in self._gone:
            raise ResourceNotFound(f"server {server_id} was deleted")
        s = self._servers.get(server_id)
        if s is None:
            # Not changed since the watermark and never listed: read it once.  A later
            # change is stamped after this read, so the next listings will carry it.
            s = await self.cloud.get_server(server_id)
            self._servers[server_id] = s
        return s

    def forget(self, server_id: str) -> None:
        """Stop keeping a server no step waits for any more."""
        self._servers.pop(server_id, None)

    async def _refresh(self, now: float) -> None:
        if self._look is not None and not self._look.done():
            await asyncio.shield(self._look)
            if self._looked_at is not None and self._looked_at >= now:
                return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._look = fut
        try:
            servers = await self.cloud.list_servers(changes_since=self._mark)
        except BaseException as exc:
            fut.set_exception(exc)
            fut.exception()  # retrieved: the waiters see their own error on their own call
            raise
        self.lists += 1
        for s in servers:
            if s.status == "DELETED":
                self._gone.add(s.id)
                self._servers.pop(s.id, None)
                continue
            self._servers[s.id] = s
            t = _stamp(s.updated) if s.updated else None
            if t is not None and (self._mark_t is None or t > self._mark_t):
                self._mark, self._mark_t = s.updated, t
        self._looked_at = now
        fut.set_result(None)
