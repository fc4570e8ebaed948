"""Protection and recovery inside ``liferaft serve``: the services, their workflows, their loop.

:class:`DrRuntime` builds the protection and recovery services from the
settings (the quiescer and verifier drivers through :mod:`liferaft.plugins`),
registers the ``checkpoint`` and ``recovery`` workflow kinds with the
controller's executor, and :meth:`DrRuntime.run` is the service loop
``serve`` runs beside the API: while this controller leads, every
``protection.schedule_tick`` seconds (injected clock) it runs the DR-Logic
loop (:class:`~liferaft.logic.loop.LogicLoop`: forced checkpoints, the
logic's decisions every ``drlogic_interval``, clean-ups), which submits the
checkpoints that are due.  The :class:`~liferaft.engine.controller.Controller`
drives every workflow (and replays them after a restart or a takeover), so
there is one executor and one leadership path for the whole process.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from liferaft import plugins
from liferaft.clouds.port import Cloud
from liferaft.config import Settings
from liferaft.engine.clock import Clock
from liferaft.engine.controller import Controller
from liferaft.errors import ConfigError, LiferaftError, NotLeader
from liferaft.logic.loop import LogicLoop, make_logic
from liferaft.protection import checkpoint, cleanup
from liferaft.protection.catalog import Catalog
from liferaft.protection.checkpoint import ProtectionDeps
from liferaft.protection.service import ProtectionService
from liferaft.store import Store

from . import cleanup as test_cleanup
from . import disaster, planned, quarantine
from .disaster import RecoveryDeps
from .modes import Modes
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
        controller: Controller,
    ) -> None:
        ps = settings.protection
        self.settings = settings
        self.store = store
        self.clock = clock
        self.controller = controller
        self.leadership = controller.leadership
        self.executor = controller.executor
        self.enabled = ps.manifest_key is not None
        key = (ps.manifest_key or "").encode()
        peers = [p.name for p in settings.peers]
        recovery_site = ps.recovery_site or (peers[0] if peers else "")
        if ps.recovery_site and ps.recovery_site not in peers:
            raise ConfigError(
                f"protection.recovery_site: {ps.recovery_site!r} is not a peer "
                f"(peers: {', '.join(peers) or 'none'})"
            )
        strangers = sorted(set(ps.mappings) - set(peers))
        if strangers:
            raise ConfigError(
                f"protection.mappings: {', '.join(strangers)} "
                f"{'is not a peer' if len(strangers) == 1 else 'are not peers'} "
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
        replication = plugins.create(
            "replication_monitors",
            ps.replication_monitor,
            url=ps.replication_monitor_url,
            required_capabilities=("replication-status",),
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
            copy_rate=ps.image_copy_rate,
            replication=replication,
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
            mappings={k: v.model_dump() for k, v in ps.mappings.items()},
        )
        rdeps = RecoveryDeps(
            site=site,
            cloud=clouds[site],
            verifier=verifier,
            clock=clock,
            verify_timeout=ps.verify_timeout,
            replication=replication,
        )
        self.executor.register(checkpoint.KIND, lambda p: checkpoint.build(self.deps, p))
        self.executor.register(cleanup.KIND, lambda p: cleanup.build(self.deps, p))
        # DR-Logic (docs/drlogic.md, "Wiring"): its drivers are loaded here, so an unknown
        # name stops the start with the setting's name.
        self.logic: LogicLoop | None = None
        if self.enabled:
            dl = settings.drlogic
            self.logic = LogicLoop(
                dl,
                protection=self.protection,
                monitor=plugins.create(
                    "link_monitors", dl.link_monitor, dl, site=site, peer=recovery_site
                ),
                shaper=plugins.create(
                    "link_shapers", dl.link_shaper, dl, site=site, peer=recovery_site
                ),
                logic=make_logic(dl.logic_driver, plugins.create),
            )
        self.executor.register(disaster.KIND, lambda p: disaster.build(rdeps, p))
        # Test, planned, cleanup and release (recovery/modes.py); quarantine enforced each tick.
        self.modes = Modes(self.recovery, store, clouds)
        self.quarantine = quarantine.Quarantine(store, clouds, clock.now)
        cdeps = test_cleanup.CleanupDeps(cloud=clouds[site], store=store, clock=clock)
        pdeps = planned.PlannedDeps(
            site=site,
            clouds=clouds,
            catalog=self.catalog,
            store=store,
            clock=clock,
            submit=self.submit,
            newest=self.recovery.plan,
        )
        self.executor.register(test_cleanup.KIND, lambda p: test_cleanup.build(cdeps, p))
        self.executor.register(planned.KIND, lambda p: planned.build(pdeps, p))
        self.executor.register(
            quarantine.RELEASE_KIND, lambda p: quarantine.build_release(clouds, p)
        )
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self._loop = None
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

    def submit(self, kind: str, params: dict[str, Any], workflow_id: str) -> None:
        """Record a workflow (fenced: only the leader); the controller drives it at once.

        Safe from a worker thread (the API and the schedule run store calls
        in threads): the controller is woken on its own event loop.
        """
        self.executor.submit(kind, params, workflow_id=workflow_id)
        try:
            here = asyncio.get_running_loop()
        except RuntimeError:
            here = None
        if self._loop is None or here is self._loop:
            self.controller.wake()
        else:
            self._loop.call_soon_threadsafe(self.controller.wake)

    async def tick(self) -> None:
        """Enforce quarantines, then run the DR-Logic loop (only while leading)."""
        if not self.enabled or not self.leadership.is_leader:
            return
        try:
            runs = await asyncio.to_thread(self.catalog.list_runs)
            await self.quarantine.tick(runs)
        except Exception:  # the checkpoint schedule below must still run
            log.exception("quarantine enforcement failed")
        if self.logic is None:
            return
        try:
            await asyncio.to_thread(self.logic.step, self.submit)
        except NotLeader:
            return
        except LiferaftError as err:
            log.warning("checkpoint schedule: %s", err)

    async def run(self) -> None:
        """Tick every ``protection.schedule_tick`` seconds until cancelled."""
        tick = self.settings.protection.schedule_tick
        self._loop = asyncio.get_running_loop()
        try:
            while True:
                try:
                    await self.tick()
                except Exception:
                    log.exception("checkpoint schedule failed")
                try:
                    await self.clock.sleep(tick)
                except LiferaftError as err:  # the clock cannot be read: back off (real time)
                    log.warning("checkpoint schedule: %s", err)
                    await asyncio.sleep(1.0)
        finally:
            if self.logic is not None:
                self.logic.close()
            self.catalog.close()
