"""Shared status polling and the restore turnstile, on a fake cloud and a hand-moved clock."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from liferaft.clouds.model import Volume
from liferaft.errors import GiveUp, RetryLater
from liferaft.recovery.turns import Turnstile
from liferaft.recovery.watch import FULL_EVERY, MARGIN, StatusWatch


class Clock:
    def __init__(self) -> None:
        self.t = 0.0
        self.sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, s: float) -> None:
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.sleepers.append((self.t + s, fut))
        await fut

    async def advance(self, s: float) -> None:
        self.t += s
        for due, fut in list(self.sleepers):
            if due <= self.t and not fut.done():
                fut.set_result(None)
        self.sleepers = [(d, f) for d, f in self.sleepers if not f.done()]
        for _ in range(20):
            await asyncio.sleep(0)


class Cloud:
    """Volumes whose status a test sets; counts the calls."""

    def __init__(self) -> None:
        self.volumes: dict[str, Volume] = {}
        self.gets = 0
        self.lists = 0
        self.since: list[str | None] = []  # each listing's changes_since
        self.listed = 0
        self.t = 1_800_000_000.0  # the cloud's own clock: one second per change

    def _stamp(self) -> str:
        self.t += 1.0
        return datetime.fromtimestamp(self.t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")

    def add(self, vid: str, status: str) -> None:
        self.volumes[vid] = Volume(id=vid, name=vid, status=status, size_gb=1)

    def set(self, vid: str, status: str, *, stamp: str | None = None) -> None:
        self.volumes[vid] = replace(
            self.volumes[vid], status=status, updated=stamp or self._stamp()
        )

    async def get_volume(self, vid: str) -> Volume:
        self.gets += 1
        return self.volumes[vid]

    async def list_volumes(self, *, changes_since: str | None = None) -> list[Volume]:
        self.lists += 1
        self.since.append(changes_since)
        out = list(self.volumes.values())
        if changes_since is not None:
            t = datetime.fromisoformat(changes_since.replace("Z", "+00:00"))
            out = [
                v
                for v in out
                if v.updated and datetime.fromisoformat(v.updated).replace(tzinfo=UTC) >= t
            ]
        self.listed += len(out)
        return out

    async def get_server(self, sid: str) -> None:  # pragma: no cover - unused
        raise AssertionError

    async def list_servers(self) -> list[object]:  # pragma: no cover - unused
        return []


def watch(cloud: Cloud, clock: Clock) -> StatusWatch:
    return StatusWatch(cloud, clock, poll=1.0)  # type: ignore[arg-type]


def test_many_waiters_share_one_listing_per_poll() -> None:
    async def main() -> None:
        cloud, clock = Cloud(), Clock()
        for i in range(50):
            cloud.add(f"v{i}", "creating")
        w = watch(cloud, clock)
        tasks = [
            asyncio.ensure_future(
                w.volume(
                    f"v{i}",
                    lambda v: v.status == "available",
                    failed=lambda v: v.status == "error",
                    what=f"v{i}",
                    timeout=100,
                )
            )
            for i in range(50)
        ]
        await clock.advance(0)
        assert cloud.gets == 50  # each waiter's own first look
        for i in range(25):
            cloud.set(f"v{i}", "available")
        await clock.advance(1.0)
        assert cloud.lists == 1
        assert sum(t.done() for t in tasks) == 25
        for i in range(25, 50):
            cloud.set(f"v{i}", "available")
        await clock.advance(1.0)
        assert cloud.lists == 2 and all(t.done() for t in tasks)
        assert cloud.gets == 50  # no per-object polling
        await clock.advance(1.0)
        assert w.volumes.loop is None  # the loop ends when nobody waits

    asyncio.run(main())


def test_after_the_first_listing_only_changes_are_listed() -> None:
    """A thousand idle volumes are listed once; then each poll lists what changed since the
    newest change seen (less the margin), and one listing in FULL_EVERY lists everything."""

    async def main() -> None:
        cloud, clock = Cloud(), Clock()
        for i in range(1000):
            cloud.add(f"v{i}", "restoring-backup")
        w = watch(cloud, clock)
        done = lambda v: v.status == "available"  # noqa: E731
        failed = lambda v: v.status == "error"  # noqa: E731
        tasks = {
            i: asyncio.ensure_future(w.volume(f"v{i}", done, failed=failed, what="", timeout=1e6))
            for i in range(1000)
        }
        await clock.advance(0)
        cloud.set("v0", "available")
        await clock.advance(1.0)
        assert cloud.since == [None] and cloud.listed == 1000 and tasks[0].done()
        for poll in range(1, 2 * FULL_EVERY):
            if poll < 900:
                cloud.set(f"v{poll}", "available")
            await clock.advance(1.0)
            assert tasks[poll].done(), poll  # seen at the poll after its change
        assert cloud.since.count(None) == 2  # the first and one full listing
        assert all(s is not None for i, s in enumerate(cloud.since) if i % FULL_EVERY)
        # Each incremental listing: the changes of the last MARGIN seconds of the cloud's clock.
        assert cloud.listed < 2 * 1000 + 2 * FULL_EVERY * (MARGIN + 2)
        # A change stamped a little before the newest one seen (a late commit) is still seen.
        late = datetime.fromtimestamp(cloud.t - MARGIN / 2, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
        cloud.set("v999", "available", stamp=late)
        await clock.advance(1.0)
        assert tasks[999].done()
        for t in tasks.values():
            t.cancel()

    asyncio.run(main())


def test_a_listing_begun_before_a_waiter_looked_does_not_settle_it() -> None:
    """The 1,000-server bench booted a server on a volume still restoring: a listing sent
    before the restore was asked for showed the volume ``available`` and woke its waiter."""

    async def main() -> None:
        cloud, clock = Cloud(), Clock()
        cloud.add("a", "creating")
        cloud.add("b", "available")
        gate = asyncio.Event()
        plain = cloud.list_volumes

        async def slow(*, changes_since: str | None = None) -> list[Volume]:
            got = await plain(changes_since=changes_since)  # read now, answered later
            await gate.wait()
            return got

        cloud.list_volumes = slow  # type: ignore[method-assign]
        w = watch(cloud, clock)
        done = lambda v: v.status == "available"  # noqa: E731
        failed = lambda v: v.status == "error"  # noqa: E731
        ta = asyncio.ensure_future(w.volume("a", done, failed=failed, what="a", timeout=100))
        await clock.advance(0)
        await clock.advance(1.0)  # a listing is in flight: "b" is available in it
        assert cloud.lists == 1
        # Now the restore into "b" is asked for; its waiter's first look says so.
        cloud.set("b", "restoring-backup")
        first = cloud.volumes["b"]
        tb = asyncio.ensure_future(
            w.volume("b", done, failed=failed, what="b", timeout=100, first=first)
        )
        await clock.advance(0)
        gate.set()
        await clock.advance(0)
        assert not tb.done()  # the stale listing did not wake it
        cloud.set("a", "available")
        cloud.set("b", "available")
        await clock.advance(1.0)
        assert ta.done() and tb.done() and tb.result().status == "available"

    asyncio.run(main())


def test_first_look_given_failure_and_timeout() -> None:
    async def main() -> None:
        cloud, clock = Cloud(), Clock()
        cloud.add("a", "creating")
        cloud.add("b", "creating")
        w = watch(cloud, clock)
        done = lambda v: v.status == "available"  # noqa: E731
        failed = lambda v: v.status == "error"  # noqa: E731
        ta = asyncio.ensure_future(
            w.volume("a", done, failed=failed, what="a", timeout=100, first=cloud.volumes["a"])
        )
        tb = asyncio.ensure_future(w.volume("b", done, failed=failed, what="b", timeout=2.5))
        await clock.advance(0)
        assert cloud.gets == 1  # only b's first look
        cloud.set("a", "error")
        await clock.advance(1.0)
        with pytest.raises(GiveUp, match="a failed"):
            ta.result()
        await clock.advance(1.0)
        await clock.advance(1.0)
        with pytest.raises(RetryLater, match="still not ready"):
            tb.result()

    asyncio.run(main())


def test_turnstile_lets_requests_go_in_rank_order() -> None:
    async def main() -> None:
        clock = Clock()
        t = Turnstile(clock, patience=10.0)  # type: ignore[arg-type]
        order: list[int] = []

        async def step(rank: int) -> None:
            await t.turn(rank)
            order.append(rank)
            t.mark([rank])

        tasks = [asyncio.ensure_future(step(r)) for r in (3, 1, 2)]
        await clock.advance(0)
        assert order == []  # rank 0 has not gone yet
        t.mark([0])
        await clock.advance(0)
        assert order == [1, 2, 3] and all(x.done() for x in tasks)

    asyncio.run(main())


def test_turnstile_waits_no_longer_than_its_patience() -> None:
    async def main() -> None:
        clock = Clock()
        t = Turnstile(clock, patience=10.0)  # type: ignore[arg-type]
        late = asyncio.ensure_future(t.turn(5))
        await clock.advance(0)
        await clock.advance(9.0)
        assert not late.done()
        await clock.advance(1.0)
        assert late.done()
        t.mark([0, 1, 2])  # ranks a replay finds done count as through
        assert t.next == 3
        await t.turn(3)  # returns at once

    asyncio.run(main())


def test_a_wait_without_a_look_is_settled_only_by_a_later_listing() -> None:
    """``look=False``: no GET; a listing begun before the wait cannot settle it (it may show
    the volume as it was before the caller's request), one begun after does; the object
    that settled it is kept as ``seen``."""

    async def main() -> None:
        cloud, clock = Cloud(), Clock()
        cloud.add("busy", "creating")
        cloud.add("v", "available")  # as a listing would show it before the restore
        w = watch(cloud, clock)
        done = lambda v: v.status == "available"  # noqa: E731
        failed = lambda v: v.status == "error"  # noqa: E731
        other = asyncio.ensure_future(w.volume("busy", done, failed=failed, what="", timeout=99))
        await clock.advance(0)
        assert w.volumes.seen("v") is None
        # a listing is begun (the loop is running for "busy") before "v"'s wait starts
        await clock.advance(1.0)
        begun = w.volumes.begun
        task = asyncio.ensure_future(
            w.volume("v", done, failed=failed, what="v", timeout=99, look=False)
        )
        await clock.advance(0)
        assert cloud.gets == 1  # only "busy"'s own first look
        assert w.volumes.begun == begun and not task.done()
        cloud.set("v", "restoring-backup")
        await clock.advance(1.0)
        assert not task.done()
        cloud.set("v", "available")
        await clock.advance(1.0)
        assert task.done() and task.result().status == "available"
        assert cloud.gets == 1
        seen = w.volumes.seen("v")
        assert seen is not None and seen.status == "available"
        cloud.set("busy", "available")
        await clock.advance(1.0)
        assert other.done()

    asyncio.run(main())


def test_expiry_follows_each_waiters_own_deadline_and_a_cancelled_waiter_stops_the_polling() -> (
    None
):
    async def main() -> None:
        cloud, clock = Cloud(), Clock()
        for vid in ("a", "b", "c"):
            cloud.add(vid, "creating")
        w = watch(cloud, clock)
        done = lambda v: v.status == "available"  # noqa: E731
        failed = lambda v: v.status == "error"  # noqa: E731
        ta = asyncio.ensure_future(w.volume("a", done, failed=failed, what="a", timeout=5.5))
        tb = asyncio.ensure_future(w.volume("b", done, failed=failed, what="b", timeout=2.5))
        await clock.advance(0)
        for _ in range(3):
            await clock.advance(1.0)
        # b's deadline (2.5) has passed, a's (5.5) has not.
        with pytest.raises(RetryLater, match="b: still not ready"):
            tb.result()
        assert not ta.done()
        # A waiter added later with an earlier deadline than a's is expired on time.
        tc = asyncio.ensure_future(w.volume("c", done, failed=failed, what="c", timeout=0.5))
        await clock.advance(0)
        await clock.advance(1.0)
        with pytest.raises(RetryLater, match="c: still not ready"):
            tc.result()
        assert not ta.done()
        # Cancelling the last waiter forgets it at once: the listing loop ends.
        ta.cancel()
        await clock.advance(0)
        lists = cloud.lists
        for _ in range(3):
            await clock.advance(1.0)
        assert cloud.lists == lists and w.volumes.loop is None and not w.volumes.waiters

    asyncio.run(main())
