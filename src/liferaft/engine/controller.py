"""The controller's main loop: lead the role, drive its workflows, stop the moment leadership is lost.

One :class:`Controller` per process and role.  :meth:`Controller.run`:

1. campaigns for the role's lease (on the injected clock);
2. once leading, renews the lease every ``ttl/3`` (:meth:`Leadership.keep`)
   and, beside it, drives every unfinished workflow of the role
   (:meth:`Executor.recover`) -- after a start or a takeover that is where
   the replay of a dead or frozen leader's work happens -- then waits for a
   new submission (or polls the store every ``poll`` seconds, for workflows
   submitted by another process);
3. when the lease is lost (renewal refused, or a write refused with
   ``FencedOff``/``NotLeader``), cancels everything it was driving and goes
   back to 1.  Nothing is lost: the next leader replays;
4. :meth:`Controller.stop` ends the loop and releases the lease, so another
   controller can take over at once instead of waiting for the expiry.

``liferaft serve`` builds one with :meth:`Controller.start` / ``stop`` and
calls :func:`check_drivers` at start, so an unknown driver or one lacking a
required capability stops the service with one clear message before it
leads anything.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from liferaft import plugins
from liferaft.engine.clock import Clock
from liferaft.engine.executor import Executor
from liferaft.engine.hooks import KillHooks
from liferaft.engine.leadership import Leadership
from liferaft.engine.states import WORKFLOW_TERMINAL, WorkflowState
from liferaft.engine.workflow import Builder
from liferaft.errors import NotLeader, PluginError, RetryLater
from liferaft.store import Store, Workflow

log = logging.getLogger(__name__)

#: Workflow states in which nobody drives a workflow until an operator acts.
SETTLED = frozenset({*WORKFLOW_TERMINAL, WorkflowState.PAUSED})
#: Real seconds between two campaigns when the store or the clock cannot be reached.
RETRY_BACKOFF = 1.0
#: Workflow states the leader drives.
UNFINISHED = (
    WorkflowState.PENDING,
    WorkflowState.RUNNING,
    WorkflowState.CANCELLING,
    WorkflowState.ROLLING_BACK,
)


@dataclass(frozen=True)
class DriverNeed:
    """A driver the configuration asks for: which setting names it, and what it must be able to do."""

    kind: str
    name: str
    setting: str
    required_capabilities: frozenset[str] = field(default_factory=frozenset)


def check_drivers(needs: Iterable[DriverNeed]) -> dict[str, type[Any]]:
    """Load every configured driver; one :class:`PluginError` listing every problem, by setting.

    Returns the driver classes by setting.  Called at start-up, before the
    controller leads anything.
    """
    found: dict[str, type[Any]] = {}
    problems: list[str] = []
    for need in needs:
        try:
            found[need.setting] = plugins.load(
                need.kind, need.name, required_capabilities=need.required_capabilities
            )
        except PluginError as err:
            problems.append(f"{need.setting}: {err.message}")
    if problems:
        raise PluginError("; ".join(problems))
    return found


class Controller:
    """Leads one role and drives its workflows while (and only while) it leads."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock,
        role: str = "controller",
        holder: str | None = None,
        ttl: float = 15.0,
        hooks: KillHooks | None = None,
        poll: float | None = None,
        leadership: Leadership | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        # A prepared one (leadership_tooz.make_leadership) brings its own role, holder and ttl.
        self.leadership = leadership or Leadership(store, role, clock=clock, holder=holder, ttl=ttl)
        self.executor = Executor(store, clock=clock, leadership=self.leadership, hooks=hooks)
        #: Seconds between looks at the store for work submitted by another process.
        self.poll = poll if poll is not None else self.leadership.renew_every
        self.terms = 0  # how many times this process became leader
        #: Called with the epoch when this controller starts leading / stops acting.
        self.on_lead: list[Callable[[int], None]] = []
        self.on_lose: list[Callable[[int], None]] = []
        self._wake = asyncio.Event()
        self._pass = asyncio.Event()
        self._leading = asyncio.Event()
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # -- what serve and the API use ----------------------------------------------------
    @property
    def role(self) -> str:
        return self.leadership.role

    @property
    def holder(self) -> str:
        return self.leadership.holder

    @property
    def leading(self) -> bool:
        """Whether this controller leads now (and so may act)."""
        return self._leading.is_set() and self.leadership.is_leader

    def register(self, kind: str, build: Builder) -> None:
        """Say how to build workflows of ``kind`` (before :meth:`start`)."""
        self.executor.register(kind, build)

    def submit(
        self, kind: str, params: dict[str, Any], *, workflow_id: str | None = None
    ) -> Workflow:
        """Record a workflow (idempotent by id) and wake the loop; ``NotLeader`` if not leading."""
        wf = self.executor.submit(kind, params, workflow_id=workflow_id)
        self._wake.set()
        return wf

    def start(self) -> asyncio.Task[None]:
        """Run :meth:`run` in the background; returns its task."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name=f"controller:{self.role}")
        return self._task

    async def stop(self) -> None:
        """Stop acting and release the lease (a clean shutdown)."""
        self._stop.set()
        if self._task is not None:
            await asyncio.wait({self._task})

    async def wait_leading(self) -> None:
        """Return once this controller leads."""
        await self._leading.wait()

    async def wait_settled(self, workflow_id: str) -> Workflow:
        """Return the workflow once it is done, failed, cancelled, rolled back or paused."""
        while True:
            self._pass.clear()
            wf = self.store.get_workflow(workflow_id)
            if wf.state in SETTLED:
                return wf
            await self._pass.wait()

    # -- the loop ----------------------------------------------------------------------
    async def run(self) -> None:
        """Campaign, lead, lose, campaign again ... until :meth:`stop`."""
        stopping = asyncio.create_task(self._stop.wait())
        try:
            while not self._stop.is_set():
                campaign = asyncio.create_task(self.leadership.campaign())
                await asyncio.wait({campaign, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not campaign.done():
                    await _cancel(campaign)
                    break
                try:
                    campaign.result()
                    await self._lead(stopping)
                except RetryLater as err:
                    # The store or the clock cannot be reached now: nobody acts on our
                    # behalf meanwhile; back off (real time: the clock may be what fails).
                    log.warning("%s: cannot lead %r now: %s", self.holder, self.role, err)
                    self.leadership.lease = None
                    await asyncio.wait({stopping}, timeout=RETRY_BACKOFF)
        finally:
            await _cancel(stopping)
            self._leading.clear()
            if self.leadership.lease is not None:
                with contextlib.suppress(Exception):
                    self.leadership.release()
            self._pass.set()

    async def _lead(self, stopping: asyncio.Task[bool]) -> None:
        self.terms += 1
        epoch = self.leadership.epoch or 0
        log.info("%s leads %r (epoch %s)", self.holder, self.role, epoch)
        self._leading.set()
        for cb in self.on_lead:
            cb(epoch)
        keeper = asyncio.create_task(self.leadership.keep(), name="lease")
        worker = asyncio.create_task(self._work(), name="workflows")
        try:
            done, _ = await asyncio.wait(
                {keeper, worker, stopping}, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            self._leading.clear()
            await _cancel(keeper)
            await _cancel(worker)
            self._pass.set()
        for cb in self.on_lose:
            cb(epoch)
        for task in (keeper, worker):
            if task in done and not task.cancelled():
                exc = task.exception()
                if isinstance(exc, NotLeader):
                    log.warning("%s stops acting: %s", self.holder, exc)
                elif exc is not None:
                    raise exc
        # The lease is gone (or we stop): forget it so campaign() starts afresh.
        if not self._stop.is_set():
            self.leadership.lease = None

    def wake(self) -> None:
        """Look at the store for new work now (a service submitted through the executor)."""
        self._wake.set()

    async def _work(self) -> None:
        """Drive each unfinished workflow of the role as its own task while leading.

        One task per workflow, not one ``recover()`` for all: a long recovery
        run must not hold back a checkpoint submitted beside it.  Leaving this
        coroutine (lease lost, stop) cancels every one of them.
        """
        driving: dict[str, asyncio.Task[Any]] = {}
        try:
            while True:
                self._wake.clear()
                for wf_id, task in list(driving.items()):
                    if task.done():
                        del driving[wf_id]
                        self._settle(wf_id, task)
                try:
                    self.leadership.fence()
                    todo = self.store.list_workflows(role=self.role, states=list(UNFINISHED))
                except (NotLeader, RetryLater):
                    # Lost, or the clock/store cannot be read: stop acting (run() backs off).
                    raise
                except Exception:
                    # A store hiccup outside any step: keep leading, try again.
                    log.exception("%s: listing the workflows of %r failed", self.holder, self.role)
                    todo = []
                for wf in todo:
                    if wf.id not in driving and not self.executor.driving(wf.id):
                        driving[wf.id] = asyncio.create_task(
                            self.executor.run(wf.id), name=f"workflow:{wf.id}"
                        )
                        driving[wf.id].add_done_callback(lambda _t: self._wake.set())
                self._pass.set()
                waker = asyncio.create_task(self._wake.wait())
                ticker = asyncio.create_task(self.clock.sleep(self.poll))
                try:
                    await asyncio.wait({waker, ticker}, return_when=asyncio.FIRST_COMPLETED)
                    failed = (
                        ticker.exception() if ticker.done() and not ticker.cancelled() else None
                    )
                    if failed is not None:
                        # The clock failed (e.g. the simulator is gone): never spin on it.
                        raise failed
                finally:
                    await _cancel(waker)
                    await _cancel(ticker)
        finally:
            for task in driving.values():
                await _cancel(task)

    def _settle(self, wf_id: str, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if isinstance(exc, NotLeader):
            raise exc
        if exc is not None:
            log.error("%s: driving workflow %s failed: %s", self.holder, wf_id, exc)


async def _cancel(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` and wait for it to end.

    ``asyncio.wait`` rather than ``await task`` under ``suppress(CancelledError)``:
    the latter also swallows a cancellation aimed at the *caller* while it waits,
    and a controller told to stop would then go on driving workflows forever.
    """
    if not task.done():
        task.cancel()
    await asyncio.wait({task})
    if not task.cancelled():
        task.exception()  # retrieved here; callers look at the task when it matters


__all__ = ["SETTLED", "Controller", "DriverNeed", "check_drivers"]
