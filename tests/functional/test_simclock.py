"""The controller's simulator-backed clock follows the stepped simulator."""

from __future__ import annotations

import asyncio

import pytest

from liferaft.engine.clock import Clock
from liferaft.engine.simclock import SimTime, SimulatorClock
from liferaft.errors import RetryLater
from tests.support.sim import SimProcess


class CountingClock(SimulatorClock):
    """Counts the readings so a test can wait for the sleeper to have looked again."""

    def __init__(self, url: str) -> None:
        super().__init__(url, poll_interval=0.01)
        self.reads = 0

    async def aread(self) -> SimTime:
        t = await super().aread()
        self.reads += 1
        return t


async def _polls(clock: CountingClock, n: int) -> None:
    target = clock.reads + n
    while clock.reads < target:
        await asyncio.sleep(0.005)


def test_now_is_the_simulators_time(sim: SimProcess) -> None:
    clock = SimulatorClock(sim.control_url)
    assert isinstance(clock, Clock)
    assert clock.now() == sim.now()
    sim.advance(42)
    assert clock.now() == sim.now()
    clock.close()


def test_sleeper_wakes_only_when_the_simulator_passes_the_target(sim: SimProcess) -> None:
    clock = CountingClock(sim.control_url)
    start = sim.now()

    async def scenario() -> None:
        sleeper = asyncio.create_task(clock.sleep(10))
        await asyncio.wait_for(_polls(clock, 2), 10)
        sim.advance(6)
        await asyncio.wait_for(_polls(clock, 3), 10)
        assert not sleeper.done(), "woke before the simulated time passed"
        sim.advance(4)
        await asyncio.wait_for(sleeper, 10)

    asyncio.run(scenario())
    assert clock.now() >= start + 10
    clock.close()


def test_unreachable_simulator_is_retry_later(sim: SimProcess) -> None:
    url = sim.control_url
    sim.stop()
    clock = SimulatorClock(url, timeout=2)
    with pytest.raises(RetryLater, match="cannot read the simulator clock"):
        clock.now()
    clock.close()
