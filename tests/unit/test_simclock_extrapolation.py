"""SimulatorClock's guesses in a scaled world are never early, and never go back."""

from __future__ import annotations

import time

import httpx

from liferaft.engine.simclock import SimulatorClock

SCALE = 50.0


def world_now(t0: float) -> float:
    return 1000.0 + (time.monotonic() - t0) * SCALE


def test_a_slow_answer_does_not_make_the_guess_early() -> None:
    t0 = time.monotonic()

    def handler(request: httpx.Request) -> httpx.Response:
        now = world_now(t0)  # the simulator reads its clock, then the answer is slow
        time.sleep(0.05)
        return httpx.Response(200, json={"now": now, "mode": "scaled", "scale": SCALE})

    clock = SimulatorClock("http://sim.invalid", resync=5.0)
    clock._client = httpx.Client(transport=httpx.MockTransport(handler))
    clock.read()
    seen = []
    for _ in range(20):
        world = world_now(t0)
        guess = clock.now()
        assert guess >= world  # the world is never ahead of the guess
        seen.append(guess)
    assert seen == sorted(seen)
    # re-read: the fresh reading is behind the last guess (which erred late): no step back
    before = clock.now()
    clock.read()
    assert clock.now() >= before
