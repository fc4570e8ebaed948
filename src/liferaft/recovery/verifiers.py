"""The Verifier port: is a recovered server really working?

Drivers register in the ``liferaft.verifiers`` entry-point group:

* ``tcp`` -- a real site: the server answers a TCP connection on a port
  (``protection.verify_port``) at its first fixed address;
* ``simulator`` -- the demo and tests: the simulated guest's own health
  probe, asked at the simulator's control API
  (``GET /control/health/{site}/{server}``).  This is the only place the
  controller reads the control API, and only to ask what a probe inside
  the guest would see; it never acts on the simulated world.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

import httpx

from liferaft.clouds.model import Server


@dataclass(frozen=True)
class Verdict:
    ok: bool
    detail: str


class Verifier(Protocol):
    capabilities: frozenset[str]

    async def check(self, site: str, server: Server) -> Verdict: ...


class TcpVerifier:
    capabilities = frozenset({"verify"})

    def __init__(self, *, port: int = 22, timeout: float = 3.0, **_: object) -> None:
        self.port = port
        self.timeout = timeout

    async def check(self, site: str, server: Server) -> Verdict:
        fixed = [a.ip for a in server.addresses if a.kind in (None, "fixed")]
        if not fixed:
            return Verdict(False, f"server {server.id} has no fixed address")
        try:
            _r, w = await asyncio.wait_for(
                asyncio.open_connection(fixed[0], self.port), self.timeout
            )
        except (OSError, TimeoutError) as err:
            return Verdict(False, f"{fixed[0]}:{self.port}: {err}")
        w.close()
        return Verdict(True, f"{fixed[0]}:{self.port} answers")


class SimulatorVerifier:
    capabilities = frozenset({"verify"})

    #: Health asks in flight at once, per event loop.
    MAX_IN_FLIGHT = 8

    def __init__(self, *, url: str | None = None, timeout: float = 10.0, **_: object) -> None:
        if not url:
            raise ValueError("the simulator verifier needs protection.verifier_url")
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._client: httpx.AsyncClient | None = None
        self._gate: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        #: Checks waiting for the next batched ask: site → server id → waiters.
        self._pending: dict[str, dict[str, list[asyncio.Future[Verdict]]]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def _async_client(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        # One client per event loop: a new client per check builds an SSL context
        # each time (about 150 ms of CPU), more than the rest of a server's recovery.
        loop = asyncio.get_running_loop()
        if self._client is None or self._gate is None or self._loop is not loop:
            limits = httpx.Limits(max_connections=self.MAX_IN_FLIGHT)
            self._client = httpx.AsyncClient(timeout=self.timeout, limits=limits)
            self._gate = asyncio.Semaphore(self.MAX_IN_FLIGHT)
            self._loop = loop
        return self._client, self._gate

    async def check(self, site: str, server: Server) -> Verdict:
        """The guest's health, asked together with the other checks begun at the same moment.

        A tier's verify steps start together; one ``POST /control/health/{site}``
        for all of them costs the controller one HTTP request instead of one
        per server (about 1 ms of client CPU each on the event loop's thread).
        """
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Verdict] = loop.create_future()
        batch = self._pending.get(site)
        if batch is None:
            batch = self._pending[site] = {}
            task = loop.create_task(self._ask_soon(site))
            self._tasks.add(task)  # held until done: the loop keeps only a weak reference
            task.add_done_callback(self._tasks.discard)
        batch.setdefault(server.id, []).append(fut)
        return await fut

    async def _ask_soon(self, site: str) -> None:
        for _ in range(_GATHER_TURNS):  # let the checks started beside this one join it
            await asyncio.sleep(0)
        batch = self._pending.pop(site, {})
        try:
            verdicts = await self._ask(site, list(batch))
        except asyncio.CancelledError:  # never leave a check waiting
            for futs in batch.values():
                for f in futs:
                    f.cancel()
            raise
        except Exception as err:
            for futs in batch.values():
                for f in futs:
                    if not f.done():
                        f.set_exception(err)
            return
        for sid, futs in batch.items():
            for f in futs:
                if not f.done():
                    f.set_result(verdicts[sid])

    async def _ask(self, site: str, ids: list[str]) -> dict[str, Verdict]:
        # Asks queue here, not in httpx's pool: its queue is scanned against every
        # connection at each request's turn, quadratic in the waiting requests.
        client, gate = self._async_client()
        try:
            async with gate:
                r = await client.post(f"{self.url}/control/health/{site}", json={"servers": ids})
        except httpx.HTTPError as err:
            return dict.fromkeys(ids, Verdict(False, f"health probe unreachable: {err}"))
        if r.status_code != 200:
            bad = Verdict(False, f"health probe answered {r.status_code}: {r.text[:200]}")
            return dict.fromkeys(ids, bad)
        answers = r.json().get("servers") or {}
        return {sid: _verdict(answers.get(sid)) for sid in ids}


#: Event-loop turns a batch of health checks waits for more checks to join it:
#: steps started together reach their check a turn or two apart.
_GATHER_TURNS = 3


def _verdict(h: object) -> Verdict:
    if not isinstance(h, dict):
        return Verdict(False, "health probe: no answer for this server")
    if "error" in h:
        err = h["error"]
        msg = err.get("message") if isinstance(err, dict) else err
        return Verdict(False, f"health probe: {msg}")
    ok = bool(h.get("booted")) and bool(h.get("application_answering"))
    return Verdict(ok, "healthy" if ok else str(h.get("reason")))
