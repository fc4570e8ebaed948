"""The lease guard around cloud creates, and the pause (SIGSTOP) hook variant.

The store refuses a stale epoch, but the cloud is not fenced: a create is
only sent after the lease was re-checked in the store and, right before
sending, found to still have ``margin`` seconds left.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from typing import Any

import pytest

from liferaft.engine.clock import ManualClock
from liferaft.engine.executor import Executor, StepContext
from liferaft.engine.hooks import HOOKS, KillHooks
from liferaft.engine.idempotency import IdempotencyTag
from liferaft.engine.leadership import Leadership
from liferaft.engine.workflow import StepDef, WorkflowDef
from liferaft.errors import NotLeader
from liferaft.store import Store

T0 = 1767225600.0


class Cloud:
    def __init__(self) -> None:
        self.made: list[str] = []

    def find(self, tag: IdempotencyTag) -> str | None:
        return tag.name if tag.name in self.made else None

    def create(self, tag: IdempotencyTag) -> str:
        self.made.append(tag.name)
        return tag.name


class TakeoverAt(KillHooks):
    """At one hook, time jumps past the lease and another controller takes over."""

    def __init__(self, hook: str, clock: ManualClock, rival: Leadership) -> None:
        super().__init__()
        self.hook, self.clock, self.rival = hook, clock, rival

    def point(self, hook: str, step: str | None = None) -> None:
        if hook == self.hook:
            self.clock.advance(11)
            assert self.rival.try_acquire()


def one_create(cloud: Cloud) -> WorkflowDef:
    async def make(ctx: StepContext) -> str:
        return await ctx.ensure_created(
            kind="volume", name="v", find=cloud.find, create=cloud.create, cloud_id=str
        )

    return WorkflowDef("one", [StepDef("make", make)])


def setup(store: Store, hooks_for: Any) -> tuple[Executor, Leadership, Leadership, Cloud]:
    clock = ManualClock(T0)
    a = Leadership(store, "ctl", clock=clock, holder="a", ttl=10)
    b = Leadership(store, "ctl", clock=clock, holder="b", ttl=10)
    assert a.try_acquire()
    cloud = Cloud()
    ex = Executor(store, clock=clock, leadership=a, hooks=hooks_for(clock, b))
    ex.register("one", lambda p: one_create(cloud))
    ex.submit("one", {}, workflow_id="w")
    return ex, a, b, cloud


def test_the_hook_order_has_the_guard_between_the_call_and_the_create() -> None:
    names = list(HOOKS)
    assert names.index("before_call") < names.index("before_cloud_call")
    assert names.index("before_cloud_call") < names.index("after_cloud_call")


def test_a_leader_frozen_before_its_cloud_call_does_not_create(store: Store) -> None:
    ex, _a, _b, cloud = setup(store, lambda c, b: TakeoverAt("before_cloud_call", c, b))
    with pytest.raises(NotLeader):
        asyncio.run(ex.run("w"))
    assert cloud.made == []
    assert store.get_lease("ctl").holder == "b"  # type: ignore[union-attr]
    assert store.get_step("w", "make").state == "running"  # for b to replay


def test_a_lost_lease_is_seen_in_the_store_before_the_create(store: Store) -> None:
    # The takeover happens while the step runs (before ensure_created):
    # confirm() asks the store, which says no.
    ex, _a, _b, cloud = setup(store, lambda c, b: TakeoverAt("before_call", c, b))
    with pytest.raises(NotLeader):
        asyncio.run(ex.run("w"))
    assert cloud.made == []


def test_the_guard_renews_the_lease_and_then_creates_once(store: Store) -> None:
    ex, _a, _b, cloud = setup(store, lambda c, b: KillHooks())
    before = store.get_lease("ctl")
    asyncio.run(ex.run("w"))
    assert cloud.made == ["v"]
    assert store.get_workflow("w").state == "done"
    after = store.get_lease("ctl")
    assert before is not None and after is not None
    assert (after.holder, after.epoch) == ("a", before.epoch)


PAUSE_CODE = """
from liferaft.engine.hooks import KillHooks
h = KillHooks.from_env()
for i in range(3):
    h.point("before_cloud_call", "s")
    print("passed", i, flush=True)
"""


def test_pause_hook_stops_the_process_at_the_point_and_it_runs_on_after_sigcont() -> None:
    env = {"LIFERAFT_PAUSE_AT": "before_cloud_call@s#2", "PATH": "/usr/bin:/bin"}
    proc = subprocess.Popen(
        [sys.executable, "-c", PAUSE_CODE], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WSTOPPED | os.WEXITED | os.WNOWAIT)
        assert info is not None and info.si_code == os.CLD_STOPPED
        assert info.si_status == signal.SIGSTOP
        os.kill(proc.pid, signal.SIGCONT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0
    assert out.splitlines() == ["passed 0", "passed 1", "passed 2"]


def test_sleep_until_is_a_deadline_not_a_duration() -> None:
    from liferaft.engine.clock import sleep_until

    async def scenario() -> list[float]:
        clock = ManualClock(T0)
        woke: list[float] = []

        async def sleeper() -> None:
            await sleep_until(clock, T0 + 10)
            woke.append(clock.now())

        task = asyncio.create_task(sleeper())
        await asyncio.sleep(0)
        clock.advance(4)
        await asyncio.sleep(0)
        assert woke == []
        clock.advance(6)
        await task
        await sleep_until(clock, T0)  # already passed: returns at once
        return woke

    assert asyncio.run(scenario()) == [T0 + 10]


def test_confirm_writes_only_when_the_last_renewal_is_older_than_half_the_margin(
    store: Store,
) -> None:
    clock = ManualClock(T0)
    a = Leadership(store, "ctl", clock=clock, holder="a", ttl=10)  # margin 2 s
    assert a.try_acquire()
    first = store.get_lease("ctl")
    assert first is not None and first.expires_at == T0 + 10
    clock.advance(0.9)  # renewed 0.9 s ago: nobody can hold it before T0 + 10
    assert a.confirm().expires_at == T0 + 10
    assert store.get_lease("ctl") == first  # no write
    clock.advance(0.2)  # 1.1 s > margin / 2: confirmed in the store, and extended
    assert a.confirm().expires_at == pytest.approx(T0 + 11.1)
    assert store.get_lease("ctl").expires_at == pytest.approx(T0 + 11.1)  # type: ignore[union-attr]
    # A lease taken over behind a's back is seen at the next write.
    clock.advance(20)
    b = Leadership(store, "ctl", clock=clock, holder="b", ttl=10)
    assert b.try_acquire()
    with pytest.raises(NotLeader):
        a.confirm()
