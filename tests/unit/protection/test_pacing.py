"""Live image-copy rates: the board's shares, the pacer re-reading them per chunk, the fallback."""

from __future__ import annotations

import asyncio

import pytest

from liferaft.engine.clock import ManualClock
from liferaft.errors import GiveUp
from liferaft.protection.pacing import HOLD_S, VALID_INTERVALS, RateBoard, share


def sends(board: RateBoard, clock: ManualClock, flow: str, n: int, nbytes: int) -> list[float]:
    """When each of ``n`` sends of ``nbytes`` may start (the clock moves as the pacer sleeps)."""

    async def run() -> list[float]:
        pacer = board.pacer(flow, clock, None)
        out = []
        for _ in range(n):
            await pacer.take(nbytes)
            out.append(clock.now())
        return out

    return asyncio.run(run())


def test_the_configured_rate_paces_sends_on_the_injected_clock() -> None:
    clock = ManualClock(start=0.0, auto_advance=True)
    board = RateBoard()

    async def run() -> list[float]:
        pacer = board.pacer("cp", clock, 1000.0)
        times = []
        for _ in range(4):
            await pacer.take(500)
            times.append(clock.now())
        return times

    # 500 bytes at 1000 B/s: each send may start 0.5 s after the previous one.
    assert asyncio.run(run()) == [0.0, 0.5, 1.0, 1.5]
    (flow,) = board.view()["flows"]
    assert flow["source"] == "configured" and flow["pace_bps"] == 1000.0
    assert flow["detail"] == "no decision yet; the configured rate"
    assert flow["sent_bytes"] == 2000


def test_no_rate_never_sleeps_and_a_bad_one_is_refused() -> None:
    clock = ManualClock(start=0.0, auto_advance=True)
    assert sends(RateBoard(), clock, "cp", 10, 10**9)[-1] == 0.0
    with pytest.raises(GiveUp, match="rate limit"):
        RateBoard().pacer("cp", clock, 0.0)


def test_a_new_decision_reaches_a_running_copy_at_its_next_chunk() -> None:
    clock = ManualClock(start=0.0, auto_advance=True)
    board = RateBoard()
    board.publish(
        at=0.0, interval_s=30, by="t", flows=["cp"], guarantees={"cp": 100.0}, ceiling_bps=100.0
    )

    async def run() -> list[float]:
        pacer = board.pacer("cp", clock, 1e9)
        times = []
        for i in range(6):
            if i == 3:  # mid-copy: four times the rate
                board.publish(
                    at=clock.now(),
                    interval_s=30,
                    by="t",
                    flows=["cp"],
                    guarantees={"cp": 400.0},
                    ceiling_bps=400.0,
                )
            await pacer.take(100)
            times.append(clock.now())
        return times

    # One second per chunk; the slot reserved before the change still ends at the old rate
    # (t=3), then a quarter of a second per chunk.
    assert asyncio.run(run()) == [0.0, 1.0, 2.0, 3.0, 3.25, 3.5]
    (flow,) = board.view()["flows"]
    assert [c["pace_bps"] for c in flow["changes"]] == [100.0, 400.0]


def test_shares_guarantee_plus_spare_scaled_to_the_ceiling() -> None:
    board = RateBoard()
    p = board.publish(
        at=0.0,
        interval_s=30,
        by="t",
        flows=["a", "b"],
        guarantees={"a": 1.0, "b": 3.0},
        ceiling_bps=10.0,
    )
    # Spare 6 shared by a and b, and by a copy started after the decision once it runs.
    assert (share(p, "a"), share(p, "b")) == (1 + 3, 3 + 3)
    assert share(p, "a", ["late"]) == pytest.approx(1 + 6 / 3)
    assert share(p, "late") == pytest.approx(6 / 3)
    clock = ManualClock(start=0.0, auto_advance=True)
    asyncio.run(board.pacer("late", clock, None).take(1))  # the late copy asks for its rate
    assert board.rate("a", 0.0, None).bps == pytest.approx(1 + 6 / 3)
    assert board.rate("late", 0.0, None).bps == pytest.approx(6 / 3)
    # Guarantees above the ceiling are scaled down together; no spare.
    p = board.publish(
        at=0.0, interval_s=30, by="t", flows=["a", "b"], guarantees={"a": 4, "b": 12}, ceiling_bps=8
    )
    assert (share(p, "a"), share(p, "b")) == (2.0, 6.0)
    assert sum(share(p, f) or 0 for f in ("a", "b")) == 8
    p = board.publish(at=0.0, interval_s=30, by="t", flows=["a"], guarantees={}, ceiling_bps=None)
    assert share(p, "a") is None  # no ceiling: as fast as the link allows


def test_a_stale_decision_falls_back_to_the_configured_rate() -> None:
    board = RateBoard()
    assert board.rate("cp", 0.0, 5.0).source == "configured"
    board.publish(at=100.0, interval_s=30, by="t", flows=["cp"], guarantees={}, ceiling_bps=50.0)
    assert board.rate("cp", 100.0 + 30 * VALID_INTERVALS, 5.0).bps == 50.0
    r = board.rate("cp", 100.0 + 30 * VALID_INTERVALS + 0.1, 5.0)
    assert (r.bps, r.source) == (5.0, "configured")
    assert r.detail == "the decision of 100.0 expired; the configured rate"
    assert board.rate("cp", 1e6, None).source == "unlimited"


def test_a_flow_with_no_guarantee_and_no_spare_waits_for_the_next_decision() -> None:
    clock = ManualClock(start=0.0, auto_advance=False)
    board = RateBoard()
    board.publish(at=0.0, interval_s=30, by="t", flows=["x"], guarantees={"x": 10}, ceiling_bps=10)

    async def run() -> float:
        pacer = board.pacer("cp", clock, None)
        task = asyncio.create_task(pacer.take(100))
        await asyncio.sleep(0)
        assert not task.done()  # held: nothing for it under this decision
        clock.advance(HOLD_S)
        await asyncio.sleep(0)
        assert not task.done()
        board.publish(
            at=clock.now(), interval_s=30, by="t", flows=["cp"], guarantees={}, ceiling_bps=10
        )
        clock.advance(HOLD_S)
        await asyncio.wait_for(task, 1)
        return clock.now()

    assert asyncio.run(run()) == 2 * HOLD_S


def test_a_checkpoints_volumes_share_one_pacer_and_ended_flows_are_forgotten() -> None:
    clock = ManualClock(start=0.0, auto_advance=True)
    board = RateBoard()
    a = board.pacer("cp", clock, 10.0)
    assert board.pacer("cp", clock, 10.0) is a
    asyncio.run(a.take(10))
    board.publish(at=10.0, interval_s=30, by="t", flows=["cp"], guarantees={}, ceiling_bps=1)
    assert [f["flow_id"] for f in board.view()["flows"]] == ["cp"]
    board.publish(at=200.0, interval_s=30, by="t", flows=[], guarantees={}, ceiling_bps=1)
    assert board.view()["flows"] == []
    with pytest.raises(GiveUp, match=">= 0"):
        board.publish(at=0.0, interval_s=30, by="t", flows=[], guarantees={"x": -1}, ceiling_bps=1)
