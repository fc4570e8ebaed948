"""A :class:`~liferaft.engine.clock.Clock` that follows the simulator's clock.

The simulated world has one clock, owned by the simulator (real, scaled or
stepped).  A controller in the demo or in a test reads it from the
simulator's control API (``GET {control_url}/control/clock`` →
``{"now", "mode", "scale", ...}``) instead of keeping its own notion of
time, so it runs as fast as the world does and a stepped test decides when
anything happens.

* ``now()`` in a stepped world asks the simulator every time (the test may
  have advanced it at any moment); in a real or scaled world it extrapolates
  from the last reading with the published scale and re-reads every
  ``resync`` real seconds, which keeps the hot path free of HTTP calls.
* ``sleep(s)`` reads the simulated time once, then waits until the
  simulator's ``now`` has passed ``start + s``, polling on a short real
  interval (scaled worlds: about the real time the rest should take).

This module reads the simulator's control API only for time; it never acts
on the simulated world.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx

from liferaft.errors import RetryLater


@dataclass(frozen=True)
class SimTime:
    """One reading of the simulator's clock."""

    now: float
    mode: str
    scale: float


def _parse(body: Any, url: str) -> SimTime:
    try:
        return SimTime(
            now=float(body["now"]),
            mode=str(body.get("mode", "stepped")),
            scale=float(body.get("scale") or 1.0),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise RetryLater(f"simulator clock at {url} answered an unexpected body: {err}") from None


class SimulatorClock:
    """The engine's clock port, read from a simulator's control API."""

    def __init__(
        self,
        control_url: str,
        *,
        poll_interval: float = 0.05,
        resync: float = 1.0,
        timeout: float = 5.0,
    ) -> None:
        if poll_interval <= 0:
            raise ValueError(f"poll_interval must be > 0, got {poll_interval}")
        self.url = control_url.rstrip("/") + "/control/clock"
        self.poll_interval = poll_interval
        self.resync = resync
        self.timeout = timeout
        self._client = httpx.Client(timeout=timeout)
        self._last: SimTime | None = None
        self._read_at = 0.0  # time.monotonic() when the last reading was asked for
        self._returned = float("-inf")  # the latest now() answered: time never goes back
        self._aclient: httpx.AsyncClient | None = None
        self._aloop: asyncio.AbstractEventLoop | None = None

    # -- reading ---------------------------------------------------------------
    def read(self) -> SimTime:
        """Ask the simulator for its clock now (blocking, loopback: about a millisecond)."""
        asked = time.monotonic()
        try:
            r = self._client.get(self.url)
        except httpx.HTTPError as err:
            raise RetryLater(f"cannot read the simulator clock at {self.url}: {err}") from None
        if r.status_code != 200:
            raise RetryLater(f"simulator clock at {self.url} answered HTTP {r.status_code}")
        return self._remember(_parse(r.json(), self.url), asked)

    async def aread(self) -> SimTime:
        """:meth:`read` without blocking the event loop."""
        asked = time.monotonic()
        try:
            r = await self._async_client().get(self.url)
        except httpx.HTTPError as err:
            raise RetryLater(f"cannot read the simulator clock at {self.url}: {err}") from None
        if r.status_code != 200:
            raise RetryLater(f"simulator clock at {self.url} answered HTTP {r.status_code}")
        return self._remember(_parse(r.json(), self.url), asked)

    def _async_client(self) -> httpx.AsyncClient:
        # One client per event loop: making one per reading costs an SSL context
        # each time, which an idle controller polling a stepped clock pays often.
        loop = asyncio.get_running_loop()
        if self._aclient is None or self._aloop is not loop:
            self._aclient = httpx.AsyncClient(timeout=self.timeout)
            self._aloop = loop
        return self._aclient

    def _remember(self, t: SimTime, asked: float) -> SimTime:
        # Extrapolate from when the reading was *asked for*: the simulator read its
        # clock at some moment after that, so the guess is never early -- a capture
        # time stamped from it never precedes what the world did before it.  Timed
        # from the answer's arrival instead (which a busy event loop may handle long
        # after), a guess could fall behind the world's time by that delay.
        self._last = t
        self._read_at = asked
        return t

    def _extrapolated(self) -> float | None:
        last = self._last
        if last is None or last.mode == "stepped":
            return None
        elapsed = time.monotonic() - self._read_at
        if elapsed > self.resync:
            return None
        return last.now + elapsed * last.scale

    # -- the Clock protocol ----------------------------------------------------
    def now(self) -> float:
        guess = self._extrapolated()
        t = guess if guess is not None else self.read().now
        # A fresh reading may be behind the last guess (which errs late): never go back.
        self._returned = max(self._returned, t)
        return self._returned

    async def sleep(self, seconds: float) -> None:
        start = await self.aread()
        await self._wait_for(start.now + max(0.0, seconds), start)

    async def sleep_until(self, when: float) -> None:
        """Wait until the simulator's clock reads ``when`` or later."""
        await self._wait_for(when, await self.aread())

    async def _wait_for(self, target: float, start: SimTime) -> None:
        current = start
        while current.now < target:
            if current.mode == "stepped":
                wait = self.poll_interval
            else:
                # Roughly the real time the rest takes, re-checked at least every second.
                wait = min(max((target - current.now) / current.scale, self.poll_interval), 1.0)
            await asyncio.sleep(wait)
            current = await self.aread()

    def close(self) -> None:
        self._client.close()
