"""ServerWatch: one listing per look for every waiting step, changes-since watermark."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import pytest

from liferaft.clouds import ResourceNotFound
from liferaft.clouds.model import Server
from liferaft.engine.clock import ManualClock
from liferaft.ha.watch import ServerWatch


def iso(t: int) -> str:
    return f"2026-01-01T00:{t // 60:02d}:{t % 60:02d}Z"


class FakeNova:
    """Servers with an ``updated`` stamp; ``changes-since`` as Nova applies it (>=)."""

    def __init__(self) -> None:
        self.servers: dict[str, Server] = {}
        self.calls: list[tuple[str, Any]] = []

    def put(self, sid: str, t: int, **kw: Any) -> None:
        old = self.servers.get(sid) or Server(id=sid, name=sid, status="ACTIVE")
        self.servers[sid] = replace(old, updated=iso(t), **kw)

    async def list_servers(self, *, changes_since: str | None = None, **_: Any) -> list[Server]:
        self.calls.append(("list", changes_since))
        await asyncio.sleep(0)
        return [
            s
            for s in self.servers.values()
            if changes_since is None or (s.updated or "") >= changes_since
        ]

    async def get_server(self, sid: str) -> Server:
        self.calls.append(("get", sid))
        return self.servers[sid]


def test_steps_looking_at_one_instant_share_one_listing_and_miss_no_change() -> None:
    async def main() -> None:
        nova = FakeNova()
        for i in range(5):
            nova.put(f"s{i}", 1, host="a", task_state="rebuilding")
        clock = ManualClock(start=10.0)
        w = ServerWatch(nova, clock, poll=2.0)  # type: ignore[arg-type]
        got = await asyncio.gather(*(w.get(f"s{i}") for i in range(5)))
        assert [s.host for s in got] == ["a"] * 5
        assert nova.calls == [("list", None)]  # one full listing for five steps
        assert w.lists == 1
        # A change made after the listing, stamped at the watermark's second, is seen.
        nova.put("s3", 1, host="b", task_state=None)
        nova.put("s4", 12, host="b", task_state=None)
        clock.advance(2.0)
        got = await asyncio.gather(*(w.get(f"s{i}") for i in range(5)))
        assert [s.host for s in got] == ["a", "a", "a", "b", "b"]
        assert nova.calls[1] == ("list", iso(1))
        assert len([c for c in nova.calls if c[0] == "list"]) == 2
        # The watermark moves to the newest stamp seen; the same instant is not listed again.
        await w.get("s0")
        clock.advance(2.0)
        await w.get("s0")
        assert nova.calls[-1] == ("list", iso(12))

    asyncio.run(main())


def test_a_server_never_listed_is_read_once_by_id_and_a_deleted_one_is_gone() -> None:
    async def main() -> None:
        nova = FakeNova()
        nova.put("old", 1)
        clock = ManualClock(start=10.0)
        w = ServerWatch(nova, clock, poll=2.0)  # type: ignore[arg-type]
        await w.get("old")
        nova.put("new", 0)  # changed before the watermark: not in the next listing
        clock.advance(2.0)
        assert (await w.get("new")).id == "new"
        assert ("get", "new") in nova.calls
        nova.put("old", 5, status="DELETED")
        clock.advance(2.0)
        with pytest.raises(ResourceNotFound):
            await w.get("old")

    asyncio.run(main())


def test_wait_sleeps_to_the_next_instant_of_the_grid() -> None:
    async def main() -> None:
        clock = ManualClock(start=11.5)
        w = ServerWatch(FakeNova(), clock, poll=2.0)  # type: ignore[arg-type]
        task = asyncio.create_task(w.wait())
        await asyncio.sleep(0)
        clock.advance(0.4)
        await asyncio.sleep(0)
        assert not task.done()
        clock.advance(0.1)  # 12.0
        await asyncio.sleep(0)
        assert task.done()

    asyncio.run(main())
