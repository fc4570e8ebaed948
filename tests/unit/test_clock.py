from __future__ import annotations

import pytest

from liferaft.sim.clock import STEPPED_EPOCH, SimClock


def test_stepped_clock_runs_events_in_order_at_their_time() -> None:
    clock = SimClock("stepped")
    seen: list[tuple[str, float]] = []
    clock.call_later(5, lambda: seen.append(("b", clock.now())))
    clock.call_later(2, lambda: seen.append(("a", clock.now())))

    def chain() -> None:
        seen.append(("c", clock.now()))
        clock.call_later(1, lambda: seen.append(("d", clock.now())))

    clock.call_later(6, chain)
    assert clock.advance(10) == 4
    assert seen == [
        ("a", STEPPED_EPOCH + 2),
        ("b", STEPPED_EPOCH + 5),
        ("c", STEPPED_EPOCH + 6),
        ("d", STEPPED_EPOCH + 7),
    ]
    assert clock.now() == STEPPED_EPOCH + 10


def test_cancelled_event_does_not_run() -> None:
    clock = SimClock("stepped")
    ran: list[int] = []
    t = clock.call_later(1, lambda: ran.append(1))
    t.cancel()
    clock.advance(2)
    assert ran == []


def test_scaled_clock_runs_faster_than_wall() -> None:
    wall = [100.0]
    clock = SimClock("scaled", scale=10, start=0.0, wall=lambda: wall[0])
    wall[0] += 1.5
    assert clock.now() == pytest.approx(15.0)


def test_only_stepped_clock_advances() -> None:
    with pytest.raises(RuntimeError):
        SimClock("real").advance(1)
    with pytest.raises(ValueError):
        SimClock("stepped").advance(-1)
