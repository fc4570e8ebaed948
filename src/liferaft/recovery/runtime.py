"""Protection and recovery inside ``liferaft serve``: the services, their workflows, their loop.

:class:`DrRuntime` builds the protection and recovery services from the
settings (the quiescer and verifier drivers through :mod:`liferaft.plugins`),
registers the ``checkpoint`` and ``recovery`` workflow kinds with the
executor, and :meth:`DrRuntime.run` is the loop ``serve`` runs beside the
API: while this controller leads, every ``protection.schedule_tick``
seconds (injected clock) it starts the checkpoints that are due and drives
every unfinished workflow of the role (after a restart or a takeover too).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from liferaft import plugins
from liferaft.clouds.port import Cloud
from liferaft.config import Settings
from liferaft.engine.clock import Clock
from liferaft.engine.executor import Executor
from liferaft.engine.leadership import Leadership
from liferaft.errors import ConfigError, LiferaftError, NotLeader
from liferaft.protection import checkpoint
from liferaft.protection.catalog import Catalog
from liferaft.protection.checkpoint import ProtectionDeps
from liferaft.protection.service import ProtectionService
from liferaft.store import Store

from . import disaster
from .disaster import RecoveryDeps
from .service import RecoveryService

log = logging.getLogger(__name__)


class DrRuntime:
    def __init__(
        self,
        settings: Settings,
        *,
        store: Store,
        clock: Clock,
        clouds: dict[str, Cloud],
        leadership: Leadership,
        executor: Executor | None = None,
    ) -> None:
        ps = settings.protection
        self.settings = settings
        self.store = store
        self.clock = clock
        self.leadership = leadership
        self.executor = executor or Executor(store, clock=clock, leadership=leadership)
        self.enabled = ps.manifest_key is not None
        key = (ps.manifest_key or "").encode()
        peers = [p.name for p in settings.peers]
        recovery_site = ps.recovery_site or (peers[0] if peers else "")
        if ps.recovery_site and ps.recovery_site not in peers:
            raise ConfigError(
                f"protection.recovery_site: {ps.recovery_site!r} is not a peer "
                f"(peers: {', '.join(peers) or 'none'})"
            )
        quiescer = plugins.create(
            "quiescers",
            ps.quiescer,
            clock=clock,
            command=ps.quiesce_hook,
            required_capabilities=("quiesce",),
        )
        verifier = plugins.create(
            "verifiers",
            ps.verifier,
            url=ps.verifier_url,
            port=ps.verify_port,
            required_capabilities=("verify",),
        )
        self.catalog = Catalog(store)
        site = settings.site.name
        self.deps = ProtectionDeps(
            site=site,
            clouds=clouds,
            catalog=self.catalog,
            key=key,
            container=ps.container,
            quiescer=quiescer,
            clock=clock,
        )
        self.protection = ProtectionService(self.deps, store, recovery_site=recovery_site)
        self.recovery = RecoveryService(
            site=site,
            cloud=clouds[site],
            catalog=self.catalog,
            clock=clock,
            key=key,
            container=ps.container,
            peers=peers,
        )
        rdeps = RecoveryDeps(
            site=site,
            cloud=clouds[site],
            verifier=verifier,
            clock=clock,
            verify_timeout=ps.verify_timeout,
        )
        self.executor.register(checkpoint.KIND, lambda p: checkpoint.build(self.deps, p))
        self.executor.register(disaster.KIND, lambda p: disaster.build(rdeps, p))
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

    def submit(self, kind: str, params: dict[str, Any], workflow_id: str) -> None:
        """Record a workflow (fenced: only the leader) and wake the loop to drive it."""
        self.executor.submit(kind, params, workflow_id=workflow_id)
        self._wake.set()

    def _drive(self) -> None:
        task = asyncio.create_task(self.executor.recover())
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if not isinstance(exc, NotLeader):
                log.error("driving workflows failed: %s", exc)

    async def tick(self) -> None:
        if not self.leadership.is_leader:
            return
        if self.enabled:
            try:
                await asyncio.to_thread(self.protection.schedule, self.submit)
            except NotLeader:
                return
            except LiferaftError as err:
                log.warning("checkpoint schedule: %s", err)
        self._drive()

    async def run(self) -> None:
        tick = self.settings.protection.schedule_tick
        try:
            while True:
                with contextlib.suppress(Exception):
                    await self.tick()
                self._wake.clear()
                sleeper = asyncio.create_task(self.clock.sleep(tick))
                waker = asyncio.create_task(self._wake.wait())
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
                for t in (sleeper, waker):
                    t.cancel()
        finally:
            for t in list(self._tasks):
                t.cancel()
            self.catalog.close()
