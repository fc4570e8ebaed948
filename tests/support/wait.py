"""Waiting in tests: poll in real time, or step the simulator's clock.

Two kinds of waiting, two helpers:

* :func:`wait_for` polls a predicate in real time until it holds: for what
  runs on its own (a controller process, a simulator on a scaled clock).
* :func:`step_until` advances the simulator's stepped clock a step at a
  time until the predicate holds: for what waits on simulated time (a build,
  a backup, a service going down).  Prefer it whenever the simulator's clock
  is the test's to move: it never sleeps and never depends on machine load.

Both return the predicate's first truthy value and fail with what was
awaited, never hang.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from tests.support.sim import SimProcess

T = TypeVar("T")

#: Real seconds any one wait may take by default (two busy cores; a fast machine does not pay).
PATIENCE = 180.0


def wait_for(
    predicate: Callable[[], T],
    timeout: float = PATIENCE,
    what: str = "a condition",
    *,
    interval: float = 0.2,
    between: Callable[[], object] | None = None,
) -> T:
    """Poll ``predicate`` every ``interval`` real seconds until it returns something truthy.

    ``between`` runs after each miss, before the pause (e.g. nudging the
    simulator's clock along).  Fails with ``timed out waiting for <what>``
    after ``timeout`` real seconds.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = predicate()
        if got:
            return got
        if between is not None:
            between()
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what} ({timeout:g} s)")


def step_until(
    sim: SimProcess,
    predicate: Callable[[], T],
    what: str,
    steps: int = 30,
    seconds: float = 1.0,
) -> T:
    """Advance ``sim``'s stepped clock ``seconds`` at a time until ``predicate`` holds.

    The clock is first advanced by 0 (what is due now happens); the
    predicate is checked then and after each of at most ``steps`` steps.
    """
    sim.advance(0)
    for step in range(steps + 1):
        got = predicate()
        if got:
            return got
        if step < steps:
            sim.advance(seconds)
    raise AssertionError(f"{what} did not happen within {steps * seconds:g} simulated seconds")
