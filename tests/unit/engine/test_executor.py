from __future__ import annotations

import asyncio
from typing import Any

import pytest

from liferaft.engine.clock import ManualClock
from liferaft.engine.executor import Executor, StepContext
from liferaft.engine.leadership import Leadership
from liferaft.engine.workflow import RetryPolicy, StepDef, WorkflowDef
from liferaft.errors import FencedOff, GiveUp, IllegalTransition, NeedsHuman, RetryLater
from liferaft.store import Store


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def transitions(store: Store, wid: str) -> list[tuple[str | None, str | None, str | None]]:
    return [(e.step, e.from_state, e.to_state) for e in store.events(workflow_id=wid)]


def test_definition_validation() -> None:
    def noop(ctx: StepContext) -> None:
        return None

    with pytest.raises(ValueError, match="two steps are named 'a'"):
        WorkflowDef("k", [StepDef("a", noop), StepDef("a", noop)])
    with pytest.raises(ValueError, match="unknown step 'zz'"):
        WorkflowDef("k", [StepDef("a", noop, depends_on=("zz",))])
    with pytest.raises(ValueError, match="cycle"):
        WorkflowDef(
            "k", [StepDef("a", noop, depends_on=("b",)), StepDef("b", noop, depends_on=("a",))]
        )
    d = WorkflowDef(
        "k",
        [StepDef("c", noop, depends_on=("a", "b")), StepDef("a", noop), StepDef("b", noop)],
    )
    assert d.order == ["a", "b", "c"]


def test_retry_policy_backoff() -> None:
    p = RetryPolicy(max_attempts=6, initial=1, multiplier=2, max_delay=10)
    assert [p.delay(n) for n in range(1, 7)] == [1, 2, 4, 8, 10, 10]
    assert p.delay(1, asked=30) == 30


def test_diamond_runs_in_dependency_order_and_passes_results(
    executor: Executor, store: Store
) -> None:
    seen: list[str] = []

    def step(name: str) -> Any:
        async def fn(ctx: StepContext) -> dict[str, Any]:
            seen.append(name)
            return {"name": name, "inputs": sorted(ctx.results), "n": ctx.params["n"]}

        return fn

    def build(params: dict[str, Any]) -> WorkflowDef:
        return WorkflowDef(
            "diamond",
            [
                StepDef("a", step("a")),
                StepDef("b", step("b"), depends_on=("a",)),
                StepDef("c", step("c"), depends_on=("a",)),
                StepDef("d", step("d"), depends_on=("b", "c")),
            ],
        )

    executor.register("diamond", build)
    wf = executor.submit("diamond", {"n": 7}, workflow_id="w1")
    assert wf.state == "pending"
    wf = run(executor.run("w1"))
    assert wf.state == "done" and wf.error is None
    assert seen[0] == "a" and seen[-1] == "d" and sorted(seen[1:3]) == ["b", "c"]
    d = store.get_step("w1", "d")
    assert d.result == {"name": "d", "inputs": ["a", "b", "c"], "n": 7}
    assert d.attempts == 1
    trans = transitions(store, "w1")
    assert trans[0] == (None, None, "pending")
    assert trans[1] == (None, "pending", "running")
    assert trans[-1] == (None, "running", "done")
    for name in "abcd":
        assert [(f, t) for s, f, t in trans if s == name] == [
            ("pending", "running"),
            ("running", "done"),
        ]
    # submitting again is a no-op; running a finished workflow changes nothing
    executor.submit("diamond", {"n": 7}, workflow_id="w1")
    n = len(store.events())
    assert run(executor.run("w1")).state == "done"
    assert len(store.events()) == n


def test_retry_later_backs_off_on_the_clock_then_succeeds(
    executor: Executor, store: Store, clock: ManualClock
) -> None:
    times: list[float] = []

    def flaky(ctx: StepContext) -> str:
        times.append(clock.now())
        if ctx.attempt < 4:
            raise RetryLater("cloud busy")
        return "ok"

    executor.register(
        "k",
        lambda p: WorkflowDef(
            "k", [StepDef("s", flaky)], retry=RetryPolicy(max_attempts=5, initial=2)
        ),
    )
    executor.submit("k", {}, workflow_id="w")
    assert run(executor.run("w")).state == "done"
    assert [t - times[0] for t in times] == [0, 2, 6, 14]
    s = store.get_step("w", "s")
    assert s.attempts == 4 and s.result == "ok" and s.error is None
    assert [t for st, _, t in transitions(store, "w") if st == "s"] == [
        "running",
        "retrying",
        "running",
        "retrying",
        "running",
        "retrying",
        "running",
        "done",
    ]


def test_retry_later_exhausted_fails_the_workflow(executor: Executor, store: Store) -> None:
    def always(ctx: StepContext) -> None:
        raise RetryLater("still busy", after=0.5)

    executor.register(
        "k",
        lambda p: WorkflowDef(
            "k",
            [
                StepDef("s", always, retry=RetryPolicy(max_attempts=3)),
                StepDef("t", always, depends_on=("s",)),
            ],
        ),
    )
    executor.submit("k", {}, workflow_id="w")
    wf = run(executor.run("w"))
    assert wf.state == "failed"
    assert "gave up after 3 attempts: RetryLater: still busy" in (wf.error or "")
    assert store.get_step("w", "t").state == "skipped"


def test_give_up_and_unexpected_errors_fail_without_retry(executor: Executor, store: Store) -> None:
    calls: list[str] = []

    def bad(ctx: StepContext) -> None:
        calls.append(ctx.step)
        if ctx.step == "x":
            raise GiveUp("quota exceeded for good")
        raise KeyError("oops")

    executor.register("k", lambda p: WorkflowDef("k", [StepDef("x", bad), StepDef("y", bad)]))
    executor.submit("k", {}, workflow_id="w")
    wf = run(executor.run("w"))
    assert wf.state == "failed"
    assert sorted(calls) == ["x", "y"]
    assert store.get_step("w", "x").error == "GiveUp: quota exceeded for good"
    assert store.get_step("w", "y").error == "unexpected KeyError: 'oops'"


def test_non_json_result_fails_the_step(executor: Executor, store: Store) -> None:
    executor.register("k", lambda p: WorkflowDef("k", [StepDef("s", lambda ctx: object())]))
    executor.submit("k", {}, workflow_id="w")
    assert run(executor.run("w")).state == "failed"
    assert "not JSON-serializable" in (store.get_step("w", "s").error or "")


def test_needs_human_pauses_and_resume_reruns_the_blocked_step(
    executor: Executor, store: Store
) -> None:
    fence_confirmed = {"value": False}
    ran: list[str] = []

    def fence(ctx: StepContext) -> str:
        ran.append("fence")
        if not fence_confirmed["value"]:
            raise NeedsHuman("power-off of host-3 could not be confirmed")
        return "fenced"

    def evacuate(ctx: StepContext) -> str:
        ran.append("evacuate")
        return "evacuated"

    executor.register(
        "ha",
        lambda p: WorkflowDef(
            "ha", [StepDef("fence", fence), StepDef("evacuate", evacuate, depends_on=("fence",))]
        ),
    )
    executor.submit("ha", {}, workflow_id="w")
    wf = run(executor.run("w"))
    assert wf.state == "paused"
    assert "needs an operator: NeedsHuman: power-off of host-3" in (wf.error or "")
    assert store.get_step("w", "fence").state == "blocked"
    assert ran == ["fence"]
    # running a paused workflow does nothing
    assert run(executor.run("w")).state == "paused"
    fence_confirmed["value"] = True
    wf = run(executor.resume("w"))
    assert wf.state == "done" and wf.error is None
    assert ran == ["fence", "fence", "evacuate"]
    assert store.get_step("w", "fence").attempts == 2
    with pytest.raises(GiveUp, match="only a paused workflow"):
        run(executor.resume("w"))


def test_rollback_undoes_in_reverse_order(executor: Executor, store: Store) -> None:
    undone: list[tuple[str, Any]] = []

    def do(ctx: StepContext) -> str:
        if ctx.step == "c":
            raise GiveUp("cannot")
        return f"made-{ctx.step}"

    def undo(ctx: StepContext) -> None:
        undone.append((ctx.step, ctx.result))

    executor.register(
        "k",
        lambda p: WorkflowDef(
            "k",
            [
                StepDef("a", do, undo=undo),
                StepDef("b", do, depends_on=("a",)),  # nothing to undo
                StepDef("c", do, depends_on=("b",), undo=undo),
                StepDef("d", do, depends_on=("c",), undo=undo),
            ],
        ),
    )
    executor.submit("k", {}, workflow_id="w")
    assert run(executor.run("w")).state == "failed"
    wf = run(executor.rollback("w"))
    assert wf.state == "rolled_back"
    # the failed step may have half-acted: its undo runs too (with no result)
    assert undone == [("c", None), ("a", "made-a")]
    states = {s.name: s.state for s in store.get_steps("w")}
    assert states == {"a": "undone", "b": "undone", "c": "undone", "d": "skipped"}
    with pytest.raises(IllegalTransition):
        run(executor.rollback("w"))


def test_failed_undo_fails_the_rollback_and_can_be_retried(
    executor: Executor, store: Store
) -> None:
    broken = {"value": True}

    def undo(ctx: StepContext) -> None:
        if broken["value"]:
            raise GiveUp("volume in use")

    executor.register("k", lambda p: WorkflowDef("k", [StepDef("a", lambda ctx: 1, undo=undo)]))
    executor.submit("k", {}, workflow_id="w")
    assert run(executor.run("w")).state == "done"
    wf = run(executor.rollback("w"))
    assert wf.state == "rollback_failed" and "volume in use" in (wf.error or "")
    broken["value"] = False
    assert run(executor.rollback("w")).state == "rolled_back"


def test_cancel_a_paused_workflow(executor: Executor, store: Store) -> None:
    def blocked(ctx: StepContext) -> None:
        raise NeedsHuman("ask")

    executor.register(
        "k",
        lambda p: WorkflowDef(
            "k",
            [
                StepDef("a", lambda ctx: 1),
                StepDef("b", blocked),
                StepDef("c", lambda ctx: 3, depends_on=("a", "b")),
            ],
        ),
    )
    executor.submit("k", {}, workflow_id="w")
    assert run(executor.run("w")).state == "paused"
    wf = run(executor.cancel("w"))
    assert wf.state == "cancelled"
    assert {s.name: s.state for s in store.get_steps("w")} == {
        "a": "done",
        "b": "failed",
        "c": "skipped",
    }
    executor.submit("k", {}, workflow_id="w2")
    assert run(executor.cancel("w2")).state == "cancelled"


def test_cancel_while_running_lets_in_flight_steps_finish(executor: Executor, store: Store) -> None:
    async def scenario() -> None:
        gate = asyncio.Event()
        started = asyncio.Event()

        async def slow(ctx: StepContext) -> str:
            started.set()
            await gate.wait()
            return "finished"

        executor.register(
            "k",
            lambda p: WorkflowDef(
                "k", [StepDef("slow", slow), StepDef("next", lambda ctx: 1, depends_on=("slow",))]
            ),
        )
        executor.submit("k", {}, workflow_id="w")
        driver = asyncio.create_task(executor.run("w"))
        await started.wait()
        assert (await executor.cancel("w")).state == "cancelling"
        gate.set()
        wf = await driver
        assert wf.state == "cancelled"
        assert store.get_step("w", "slow").state == "done"
        assert store.get_step("w", "next").state == "skipped"

    run(scenario())


def test_per_site_concurrency_limit(executor: Executor) -> None:
    async def scenario() -> dict[str, int]:
        active: dict[str, int] = {"east": 0, "west": 0}
        peak: dict[str, int] = {"east": 0, "west": 0}

        async def work(ctx: StepContext) -> None:
            assert ctx.site is not None
            active[ctx.site] += 1
            peak[ctx.site] = max(peak[ctx.site], active[ctx.site])
            for _ in range(3):
                await asyncio.sleep(0)
            active[ctx.site] -= 1

        steps = [StepDef(f"e{i}", work, site="east") for i in range(6)]
        steps += [StepDef(f"w{i}", work, site="west") for i in range(3)]
        executor.register("k", lambda p: WorkflowDef("k", steps, site_concurrency=2))
        executor.submit("k", {}, workflow_id="w")
        assert (await executor.run("w")).state == "done"
        return peak

    assert run(scenario()) == {"east": 2, "west": 2}


def test_max_parallel_limits_the_steps_in_flight(executor: Executor) -> None:
    """Steps started in one batch count against the limit too (host HA's
    ``max_concurrent_evacuations`` rests on it)."""

    async def scenario() -> tuple[int, int]:
        active = peak = ran = 0

        async def work(ctx: StepContext) -> None:
            nonlocal active, peak, ran
            active += 1
            ran += 1
            peak = max(peak, active)
            for _ in range(3):
                await asyncio.sleep(0)
            active -= 1

        steps = [StepDef(f"s{i}", work) for i in range(10)]
        executor.register("k", lambda p: WorkflowDef("k", steps, max_parallel=3))
        executor.submit("k", {}, workflow_id="w")
        assert (await executor.run("w")).state == "done"
        return peak, ran

    assert run(scenario()) == (3, 10)


def test_replay_reruns_a_step_found_running(
    executor: Executor, store: Store, leader: Leadership
) -> None:
    calls: list[int] = []

    def step(ctx: StepContext) -> int:
        calls.append(ctx.attempt)
        return ctx.attempt

    executor.register("k", lambda p: WorkflowDef("k", [StepDef("s", step)]))
    executor.submit("k", {}, workflow_id="w")
    # as if a controller recorded `running` and died before acting
    store.transition_workflow(leader.fence(), "w", to="running", allowed_from={"pending"}, now=0)
    store.transition_step(
        leader.fence(), "w", "s", to="running", allowed_from={"pending"}, now=0, attempts=1
    )
    [wf] = run(executor.recover())
    assert wf.state == "done"
    assert calls == [2]
    evs = [e for e in store.events(workflow_id="w") if e.step == "s"]
    assert [(e.from_state, e.to_state, e.detail.get("replay")) for e in evs] == [
        ("pending", "running", None),
        ("running", "running", True),
        ("running", "done", None),
    ]


def test_a_deposed_leader_is_fenced_off_and_the_new_one_finishes(
    store: Store, clock: ManualClock
) -> None:
    old = Leadership(store, "ctl", clock=clock, holder="old", ttl=30)
    assert old.try_acquire()
    made: list[str] = []
    frozen = asyncio.Event()
    thawed = asyncio.Event()

    async def step(ctx: StepContext) -> str:
        made.append(f"{ctx.step}@{ctx.attempt}")
        if ctx.attempt == 1:
            frozen.set()
            await thawed.wait()  # the process is paused here, longer than its lease
        return "ok"

    def build(p: dict[str, Any]) -> WorkflowDef:
        return WorkflowDef("k", [StepDef("s", step), StepDef("t", step, depends_on=("s",))])

    # a paused process keeps using the token it had: the store must refuse it
    old_ex = Executor(store, clock=clock, leadership=_Stale(old.fence()))
    old_ex.register("k", build)
    old_ex.submit("k", {}, workflow_id="w")
    new = Leadership(store, "ctl", clock=clock, holder="new", ttl=30)

    async def scenario() -> None:
        driver = asyncio.create_task(old_ex.run("w"))
        await frozen.wait()
        assert not new.try_acquire()
        clock.advance(31)
        assert new.try_acquire() and new.epoch == 2
        thawed.set()
        with pytest.raises(FencedOff):
            await driver

    run(scenario())
    assert store.get_step("w", "s").state == "running"
    new_ex = Executor(store, clock=clock, leadership=new)
    new_ex.register("k", build)
    [wf] = run(new_ex.recover())
    assert wf.state == "done" and wf.epoch == 2
    assert made == ["s@1", "s@2", "t@1"]
    assert {e.epoch for e in store.events(workflow_id="w") if e.step == "t"} == {2}


class _Stale:
    def __init__(self, fence: Any) -> None:
        self._fence = fence

    def fence(self) -> Any:
        return self._fence


def test_changed_definition_pauses_for_an_operator(executor: Executor, store: Store) -> None:
    shape = {"steps": ["a", "b"]}
    executor.register(
        "k", lambda p: WorkflowDef("k", [StepDef(n, lambda ctx: 1) for n in shape["steps"]])
    )
    executor.submit("k", {}, workflow_id="w")
    shape["steps"] = ["a", "c"]
    wf = run(executor.run("w"))
    assert wf.state == "paused" and "no longer match" in (wf.error or "")


def test_unknown_kind_is_refused(executor: Executor) -> None:
    with pytest.raises(GiveUp, match="no workflow kind 'nope'"):
        executor.submit("nope", {})


def test_drive_reads_the_step_rows_once_and_hands_on_results_as_stored(
    executor: Executor, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wide workflow: the step rows are read once, not each time a step finishes, and a
    later step sees an earlier one's result as a restarted controller would read it."""
    n = 60

    async def leaf(ctx: StepContext) -> dict[Any, Any]:
        await ctx.clock.sleep(int(ctx.step[1:]) % 7)  # finish at different instants
        return {1: (ctx.step, ctx.attempt)}  # an int key and a tuple: JSON changes both

    async def join(ctx: StepContext) -> list[Any]:
        return [ctx.results[f"l{i}"] for i in range(n)]

    def build(params: dict[str, Any]) -> WorkflowDef:
        leaves = [StepDef(f"l{i}", leaf) for i in range(n)]
        return WorkflowDef(
            "wide", [*leaves, StepDef("j", join, depends_on=tuple(sd.name for sd in leaves))]
        )

    executor.register("wide", build)
    executor.submit("wide", {}, workflow_id="w1")
    reads: list[str] = []
    get_steps = store.get_steps

    def counting(workflow_id: str) -> Any:
        reads.append(workflow_id)
        return get_steps(workflow_id)

    monkeypatch.setattr(store, "get_steps", counting)
    wf = run(executor.run("w1"))
    assert wf.state == "done"
    assert reads == ["w1"]
    joined = store.get_step("w1", "j").result
    assert joined == [{"1": [f"l{i}", 1]} for i in range(n)]
    # what the executor kept in memory is what the store holds
    assert all(s.state == "done" and s.attempts == 1 for s in get_steps("w1"))
    assert store.get_step("w1", "l3").result == {"1": ["l3", 1]}


def test_a_cancel_recorded_by_another_executor_reaches_the_driving_loop(
    executor: Executor, store: Store, clock: ManualClock, leader: Leadership
) -> None:
    """The driving loop re-reads only the workflow's state, and still sees a cancel."""
    started: list[str] = []

    async def slow(ctx: StepContext) -> None:
        started.append(ctx.step)
        if ctx.step == "a":
            # recorded straight in the store, as another process would
            store.transition_workflow(
                leader.fence(), "w1", to="cancelling", allowed_from={"running"}, now=clock.now()
            )
        await ctx.clock.sleep(5)

    def build(params: dict[str, Any]) -> WorkflowDef:
        return WorkflowDef("two", [StepDef("a", slow), StepDef("b", slow, depends_on=("a",))])

    executor.register("two", build)
    executor.submit("two", {}, workflow_id="w1")
    wf = run(executor.run("w1"))
    assert wf.state == "cancelled"
    assert started == ["a"]
    assert {s.name: s.state for s in store.get_steps("w1")} == {"a": "done", "b": "skipped"}


def test_steps_finishing_together_share_a_commit_and_are_durable_before_dependents(
    executor: Executor, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    n = 20
    seen_by_join: list[str] = []

    async def leaf(ctx: StepContext) -> str:
        await ctx.clock.sleep(3)  # every leaf wakes at the same instant
        return ctx.step

    async def join(ctx: StepContext) -> None:
        # what a restarted controller would find: every dependency is recorded done
        seen_by_join.extend(s.state for s in store.get_steps("w1") if s.name != "j")

    def build(params: dict[str, Any]) -> WorkflowDef:
        leaves = [StepDef(f"l{i}", leaf) for i in range(n)]
        deps = tuple(sd.name for sd in leaves)
        return WorkflowDef("fan", [*leaves, StepDef("j", join, depends_on=deps)])

    executor.register("fan", build)
    executor.submit("fan", {}, workflow_id="w1")
    batches: list[list[tuple[str, str]]] = []
    transition_steps = store.transition_steps

    def counting(fence: Any, workflow_id: str, changes: Any, *, now: float) -> Any:
        batches.append([(c.name, c.to) for c in changes])
        return transition_steps(fence, workflow_id, changes, now=now)

    monkeypatch.setattr(store, "transition_steps", counting)
    assert run(executor.run("w1")).state == "done"
    assert seen_by_join == ["done"] * n
    leaves_done = [b for b in batches if any(to == "done" and name != "j" for name, to in b)]
    assert len(leaves_done) < n  # grouped: fewer commits than steps
    assert sum(len(b) for b in leaves_done) == n
    assert batches[0] == [(f"l{i}", "running") for i in range(n)]  # started in one commit
    assert [s.state for s in store.get_steps("w1")] == ["done"] * (n + 1)
