"""Errors, the clock port and the idempotency helper."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from liferaft.engine.clock import Clock, ManualClock, RealClock
from liferaft.engine.idempotency import IdempotencyTag, ensure_created
from liferaft.errors import (
    ConfigError,
    FencedOff,
    GiveUp,
    NeedsHuman,
    NotLeader,
    PluginError,
    RetryLater,
    classify,
    describe,
)


def test_errors_are_classified_by_what_to_do() -> None:
    assert classify(RetryLater("busy")) == "retry"
    assert classify(GiveUp("no")) == "give_up"
    assert classify(NeedsHuman("ask")) == "needs_human"
    assert classify(ValueError("bug")) == "give_up"
    assert issubclass(FencedOff, NotLeader)
    assert str(ConfigError("store.url: not a URL")) == "store.url: not a URL"
    assert describe(PluginError("x")) == "PluginError: x"
    assert describe(KeyError("k")) == "unexpected KeyError: 'k'"
    assert RetryLater("busy", after=3).after == 3
    with pytest.raises(ValueError):
        RetryLater("busy", after=-1)


def test_clocks_satisfy_the_port() -> None:
    assert isinstance(RealClock(), Clock)
    assert isinstance(ManualClock(), Clock)
    assert abs(RealClock().now() - ManualClock(RealClock().now()).now()) < 5


def test_manual_clock_wakes_sleepers_in_order() -> None:
    async def scenario() -> list[tuple[str, float]]:
        clock = ManualClock(100.0)
        woke: list[tuple[str, float]] = []

        async def sleeper(name: str, s: float) -> None:
            await clock.sleep(s)
            woke.append((name, clock.now()))

        tasks = [asyncio.create_task(sleeper(n, s)) for n, s in (("b", 5), ("a", 2), ("c", 9))]
        await asyncio.sleep(0)
        assert clock.sleepers == 3
        clock.advance(5)
        await asyncio.sleep(0)
        assert clock.sleepers == 1
        with pytest.raises(ValueError):
            clock.advance(-1)
        clock.set(200.0)
        await asyncio.gather(*tasks)
        return woke

    assert asyncio.run(scenario()) == [("a", 105.0), ("b", 105.0), ("c", 200.0)]


def test_auto_advancing_clock_moves_on_sleep() -> None:
    clock = ManualClock(0.0, auto_advance=True)
    asyncio.run(clock.sleep(7.5))
    assert clock.now() == 7.5


def test_tag_format_and_matching() -> None:
    tag = IdempotencyTag(name="web-1", run_id="r1", step_id="boot")
    assert tag.metadata == {"liferaft_run": "r1", "liferaft_step": "boot"}
    assert tag.tags == ["liferaft_run=r1", "liferaft_step=boot"]
    assert tag.matches("web-1", {"liferaft_run": "r1", "liferaft_step": "boot", "other": "x"})
    assert not tag.matches("web-1", {"liferaft_run": "r2", "liferaft_step": "boot"})
    assert not tag.matches("web-2", tag.metadata)
    assert tag.matches("web-1", None, ["x", *tag.tags])


def test_ensure_created_finds_instead_of_creating_again() -> None:
    cloud: list[dict[str, Any]] = []
    created: list[str] = []

    def find(tag: IdempotencyTag) -> dict[str, Any] | None:
        return next((r for r in cloud if tag.matches(r["name"], r["metadata"])), None)

    async def create(tag: IdempotencyTag) -> dict[str, Any]:
        r = {"id": f"id{len(cloud)}", "name": tag.name, "metadata": tag.metadata}
        cloud.append(r)
        return r

    tag = IdempotencyTag("web", "r1", "boot")
    first = asyncio.run(
        ensure_created(find, create, tag, after_create=lambda r: created.append(r["id"]))
    )
    # a replay (the reply was lost, the step runs again) finds the same resource
    again = asyncio.run(ensure_created(find, create, tag))
    assert first == again and len(cloud) == 1 and created == ["id0"]
    other = asyncio.run(ensure_created(find, create, IdempotencyTag("web", "r2", "boot")))
    assert other["id"] == "id1"
