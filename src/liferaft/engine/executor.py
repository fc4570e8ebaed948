"""The durable workflow executor.

Drives workflows recorded in the :class:`~liferaft.store.Store` to the end,
and survives being killed at any instant:

* a step's ``running`` record (with its attempt number) is committed
  *before* the step acts, and its outcome (``done`` with the result,
  ``failed``/``blocked`` with the classified error, ``retrying`` with the
  time of the next attempt) *after*;
* on replay a step found ``running`` is run again (``running -> running``,
  next attempt), so steps must be idempotent -- :meth:`StepContext.ensure_created`
  makes cloud creates so;
* every write carries the leader's fencing token, so a controller that lost
  leadership cannot change anything;
* every transition appends an event.

Errors are handled by class (:mod:`liferaft.errors`): ``RetryLater`` is
retried with exponential backoff on the injected clock, ``GiveUp`` (and any
unexpected exception) fails the step and then the workflow, ``NeedsHuman``
blocks the step and pauses the workflow until an operator resumes it,
cancels it or rolls it back.  ``NotLeader`` stops the executor and leaves
everything as it is for the next leader.

The executor knows nothing about clouds: it calls step functions.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from liferaft.engine.clock import Clock
from liferaft.engine.hooks import KillHooks
from liferaft.engine.idempotency import (
    IdempotencyTag,
    MaybeAwaitable,
    ensure_created,
    resolve,
)
from liferaft.engine.states import (
    WORKFLOW_TERMINAL,
    StepState,
    WorkflowState,
    step_sources,
    workflow_sources,
)
from liferaft.engine.workflow import Builder, StepDef, StepFn, WorkflowDef
from liferaft.errors import GiveUp, NeedsHuman, NotLeader, RetryLater, describe
from liferaft.store import KEEP, Fence, NewStep, Resource, Step, StepChange, Store, Workflow

log = logging.getLogger(__name__)

T = TypeVar("T")
S = StepState
W = WorkflowState


class FenceSource(Protocol):
    """Where the executor gets the fencing token for each write (a :class:`Leadership`)."""

    def fence(self) -> Fence: ...


@dataclass
class StepContext:
    """What a step function gets: its identity, inputs, and the idempotency helpers."""

    workflow_id: str
    step: str
    attempt: int
    params: dict[str, Any]
    #: Results of the steps that are done (every dependency's is there); read-only
    #: (steps started together share it).
    results: dict[str, Any]
    clock: Clock
    site: str | None = None
    #: For an undo: this step's own recorded result (None if it failed).
    result: Any = None
    _executor: Executor | None = field(default=None, repr=False)

    @property
    def _ex(self) -> Executor:
        assert self._executor is not None, "StepContext is not bound to an executor"
        return self._executor

    def tag(self, name: str) -> IdempotencyTag:
        """The idempotency tag for a resource this step names ``name``."""
        return IdempotencyTag(name=name, run_id=self.workflow_id, step_id=self.step)

    async def ensure_created(
        self,
        *,
        kind: str,
        name: str,
        find: Callable[[IdempotencyTag], MaybeAwaitable[T | None]],
        create: Callable[[IdempotencyTag], MaybeAwaitable[T]],
        cloud_id: Callable[[T], str],
        site: str | None = None,
    ) -> T:
        """Find-or-create a cloud resource tagged for this run and step, and note it in the ledger.

        The kill hook ``after_cloud_call`` sits between the cloud accepting the
        create and anything being recorded: the instant where a naive
        controller would create a duplicate on replay.
        """
        ex = self._ex
        tag = self.tag(name)

        async def guarded_create(t: IdempotencyTag) -> T:
            # The cloud is not fenced by the store's epoch, so a leader that
            # was frozen here must not wake up and create: re-check the lease
            # in the store, then, right before sending, check locally that
            # the lease still has `margin` seconds to run (a frozen leader
            # finds it has not, and stops).  What a leader sent just before
            # losing the lease carries the tag, so the next leader's replay
            # adopts it instead of making another.
            ex.confirm_leadership()
            ex.hooks.point("before_cloud_call", self.step)
            ex.fence()
            return await resolve(create(t))

        def created(_res: T) -> None:
            ex.hooks.point("after_cloud_call", self.step)

        res = await ensure_created(find, guarded_create, tag, after_create=created)
        ex.store.record_resource(
            ex.fence(),
            run_id=self.workflow_id,
            step_id=self.step,
            kind=kind,
            key=name,
            cloud_id=cloud_id(res),
            site=site if site is not None else self.site,
            now=ex.clock.now(),
        )
        ex.hooks.point("after_ledger", self.step)
        return res

    def record_intent(self, *, kind: str, name: str, site: str | None = None) -> None:
        """Note in the ledger, before a create of a resource with no tag, that this step is
        about to make ``name`` (kind ``intent:<kind>``): a replay that then finds it knows it
        is the run's own, not one that existed before."""
        ex = self._ex
        ex.store.record_resource(
            ex.fence(),
            run_id=self.workflow_id,
            step_id=self.step,
            kind=f"intent:{kind}",
            key=name,
            cloud_id=name,
            site=site if site is not None else self.site,
            now=ex.clock.now(),
        )

    def resources(self) -> list[Resource]:
        """What this step recorded in the resource ledger (for an undo)."""
        return self._ex.store.list_resources(run_id=self.workflow_id, step_id=self.step)

    def note(self, **detail: Any) -> None:
        """Append a progress event for this step."""
        ex = self._ex
        ex.store.add_note(
            ex.fence(),
            now=ex.clock.now(),
            workflow_id=self.workflow_id,
            step=self.step,
            detail=detail,
        )


class Executor:
    """Runs the workflows of one leadership role."""

    def __init__(
        self,
        store: Store,
        *,
        clock: Clock,
        leadership: FenceSource,
        hooks: KillHooks | None = None,
    ) -> None:
        self.store = store
        self.clock = clock
        self.leadership = leadership
        self.hooks = hooks if hooks is not None else KillHooks()
        self._builders: dict[str, Builder] = {}
        self._active: set[str] = set()
        #: The step records of each workflow this executor drives, kept in step with
        #: the store: loaded once when driving starts (so a restarted controller
        #: reloads them), then replaced by what each committed transition returns.
        #: Only the leader writes steps, and only through :meth:`_set_step`.
        self._steps: dict[str, dict[str, Step]] = {}
        #: ``done`` records waiting for the next group commit (see :meth:`_record_done`).
        self._done_queue: list[tuple[str, StepChange, asyncio.Future[Step]]] = []

    # -- registry ------------------------------------------------------------------
    def register(self, kind: str, build: Builder) -> None:
        """Say how to build workflows of ``kind`` from their params."""
        if kind in self._builders:
            raise ValueError(f"workflow kind {kind!r} is already registered")
        self._builders[kind] = build

    def definition(self, kind: str, params: dict[str, Any]) -> WorkflowDef:
        try:
            build = self._builders[kind]
        except KeyError:
            known = ", ".join(sorted(self._builders)) or "none"
            raise GiveUp(f"no workflow kind {kind!r} is registered (known: {known})") from None
        d = build(params)
        if d.kind != kind:
            raise ValueError(f"the builder for {kind!r} returned a {d.kind!r} workflow")
        return d

    def fence(self) -> Fence:
        return self.leadership.fence()

    def confirm_leadership(self) -> None:
        """Re-check the lease in the store before an unfenced action (a cloud create).

        Uses the fence source's ``confirm()`` when it has one (:class:`Leadership`
        does); raises :class:`~liferaft.errors.NotLeader` if the lease is lost.
        """
        confirm = getattr(self.leadership, "confirm", None)
        if confirm is not None:
            confirm()

    # -- operator / service API ----------------------------------------------------
    def submit(
        self, kind: str, params: dict[str, Any], *, workflow_id: str | None = None
    ) -> Workflow:
        """Record a new workflow (pending). Submitting the same id again is a no-op."""
        _check_json(params, f"params of a {kind!r} workflow")
        d = self.definition(kind, params)
        return self.store.create_workflow(
            self.fence(),
            workflow_id=workflow_id or uuid.uuid4().hex,
            kind=kind,
            params=params,
            steps=[NewStep(n, d.step(n).depends_on, d.step(n).site) for n in d.order],
            now=self.clock.now(),
            state=W.PENDING,
            step_state=S.PENDING,
        )

    def driving(self, workflow_id: str) -> bool:
        """Whether this executor drives ``workflow_id`` now."""
        return workflow_id in self._active

    async def run(self, workflow_id: str) -> Workflow:
        """Drive a workflow until it is done, failed, cancelled, paused or rolled back."""
        if workflow_id in self._active:
            raise RuntimeError(f"workflow {workflow_id} is already being driven by this executor")
        self._active.add(workflow_id)
        try:
            wf = self.store.get_workflow(workflow_id)
            if wf.state == W.ROLLING_BACK:
                return await self._rollback(wf)
            if wf.state == W.PENDING:
                wf = self._set_workflow(wf.id, W.RUNNING)
            if wf.state in (W.RUNNING, W.CANCELLING):
                return await self._drive(wf)
            return wf
        finally:
            self._active.discard(workflow_id)

    async def recover(self) -> list[Workflow]:
        """Drive every workflow of this role that was left unfinished (after start or takeover)."""
        fence = self.fence()
        todo = self.store.list_workflows(
            role=fence.role,
            states=[W.PENDING, W.RUNNING, W.CANCELLING, W.ROLLING_BACK],
        )
        todo = [w for w in todo if w.id not in self._active]
        return list(await asyncio.gather(*(self.run(w.id) for w in todo)))

    async def resume(self, workflow_id: str) -> Workflow:
        """An operator resumes a paused workflow: blocked steps run again."""
        wf = self.store.get_workflow(workflow_id)
        if wf.state != W.PAUSED:
            raise GiveUp(f"workflow {workflow_id} is {wf.state}, only a paused workflow can resume")
        for s in self.store.get_steps(workflow_id):
            if s.state == S.BLOCKED:
                self._set_step(workflow_id, s.name, S.PENDING, detail={"by": "operator"})
        self._set_workflow(workflow_id, W.RUNNING, error=None, detail={"by": "operator"})
        return await self.run(workflow_id)

    async def cancel(self, workflow_id: str) -> Workflow:
        """Stop starting steps; in-flight ones finish; the rest are skipped."""
        wf = self.store.get_workflow(workflow_id)
        if wf.state == W.PENDING:
            for s in self.store.get_steps(workflow_id):
                self._set_step(workflow_id, s.name, S.SKIPPED)
            return self._set_workflow(workflow_id, W.CANCELLED, detail={"by": "operator"})
        wf = self._set_workflow(workflow_id, W.CANCELLING, detail={"by": "operator"})
        if workflow_id in self._active:
            return wf  # the loop driving it sees the request at its next turn
        return await self.run(workflow_id)

    async def rollback(self, workflow_id: str) -> Workflow:
        """Undo what the workflow did, newest step first (steps without ``undo`` are skipped)."""
        if workflow_id in self._active:
            raise GiveUp(f"workflow {workflow_id} is running; cancel it before rolling it back")
        wf = self._set_workflow(workflow_id, W.ROLLING_BACK, detail={"by": "operator"})
        return await self.run(wf.id)

    # -- recording -------------------------------------------------------------
    def _set_workflow(
        self,
        workflow_id: str,
        to: WorkflowState,
        *,
        error: str | Any | None = KEEP,
        detail: dict[str, Any] | None = None,
    ) -> Workflow:
        wf = self.store.transition_workflow(
            self.fence(),
            workflow_id,
            to=to,
            allowed_from=workflow_sources(to),
            now=self.clock.now(),
            error=error,
            detail=detail,
        )
        log.info("workflow %s -> %s", workflow_id, to)
        return wf

    def _set_step(
        self,
        workflow_id: str,
        name: str,
        to: StepState,
        *,
        attempts: int | None = None,
        result: Any = KEEP,
        error: Any = KEEP,
        retry_at: Any = KEEP,
        detail: dict[str, Any] | None = None,
    ) -> Step:
        step = self.store.transition_step(
            self.fence(),
            workflow_id,
            name,
            to=to,
            allowed_from=step_sources(to),
            now=self.clock.now(),
            attempts=attempts,
            result=result,
            error=error,
            retry_at=retry_at,
            detail=detail,
        )
        log.debug("workflow %s step %s -> %s", workflow_id, name, to)
        held = self._steps.get(workflow_id)
        if held is not None:
            held[name] = step
        return step

    def _set_steps(self, workflow_id: str, changes: list[StepChange]) -> list[Step]:
        """Several step transitions of one workflow in one transaction."""
        steps = self.store.transition_steps(
            self.fence(), workflow_id, changes, now=self.clock.now()
        )
        held = self._steps.get(workflow_id)
        for step in steps:
            log.debug("workflow %s step %s -> %s", workflow_id, step.name, step.state)
            if held is not None:
                held[step.name] = step
        return steps

    async def _record_done(self, workflow_id: str, name: str, result: Any) -> Step:
        """Record a step ``done`` in a group commit; return once the record is durable.

        Steps that finish in the same turn of the event loop (many do: sleepers
        on the stepped clock wake together) share one transaction.  The caller
        goes on -- and the drive loop learns the step is done -- only after the
        commit, so nothing is acknowledged before its record is durable.
        """
        loop = asyncio.get_running_loop()
        if self._done_queue and self._done_queue[0][2].get_loop() is not loop:
            self._done_queue = []  # left by an event loop that ended before committing
        fut: asyncio.Future[Step] = loop.create_future()
        if not self._done_queue:
            loop.call_soon(self._commit_done)
        change = StepChange(name, S.DONE, step_sources(S.DONE), result=result, error=None)
        self._done_queue.append((workflow_id, change, fut))
        return await fut

    def _commit_done(self) -> None:
        queued, self._done_queue = self._done_queue, []
        by_workflow: dict[str, list[tuple[StepChange, asyncio.Future[Step]]]] = {}
        for workflow_id, change, fut in queued:
            if not fut.cancelled():  # its task was cancelled: the step stays `running`
                by_workflow.setdefault(workflow_id, []).append((change, fut))
        for workflow_id, items in by_workflow.items():
            try:
                steps = self._set_steps(workflow_id, [c for c, _ in items])
            except Exception as exc:  # NotLeader, a store error: every waiter raises it
                for _, fut in items:
                    fut.set_exception(exc)
                continue
            for (_, fut), step in zip(items, steps, strict=True):
                fut.set_result(step)

    def _definition_for(self, wf: Workflow, steps: list[Step] | None = None) -> WorkflowDef:
        d = self.definition(wf.kind, wf.params)
        if steps is None:
            steps = self.store.get_steps(wf.id)
        recorded = [(s.name, s.depends_on, s.site) for s in steps]
        rebuilt = [(n, d.step(n).depends_on, d.step(n).site) for n in d.order]
        if recorded != rebuilt:
            raise NeedsHuman(
                f"workflow {wf.id} ({wf.kind}): the steps built from its params no longer match "
                f"the recorded ones (code changed?): recorded {recorded}, built {rebuilt}"
            )
        return d

    # -- forward ---------------------------------------------------------------------
    async def _drive(self, wf: Workflow) -> Workflow:
        # The step rows are read once here; from then on each transition's
        # committed record replaces its entry (re-reading every row whenever a
        # step finished made a workflow of n steps cost O(n^2) row decodes).
        loaded = self.store.get_steps(wf.id)
        try:
            d = self._definition_for(wf, loaded)
        except (GiveUp, NeedsHuman) as exc:
            to = W.PAUSED if isinstance(exc, NeedsHuman) else W.FAILED
            return self._set_workflow(wf.id, to, error=describe(exc))
        steps = self._steps[wf.id] = {s.name: s for s in loaded}
        # The steps not started yet by this loop, in definition order (a started
        # one is never started again by it: retries happen inside its task), so
        # each turn looks only at these.
        todo = [n for n in d.order if steps[n].state in (S.PENDING, S.RUNNING, S.RETRYING)]
        inflight: dict[asyncio.Task[None], StepDef] = {}
        try:
            while True:
                # Only the workflow's state can change behind this loop (an
                # operator's cancel); its params are not re-read.
                if self.store.get_workflow_state(wf.id) != wf.state:
                    wf = self.store.get_workflow(wf.id)
                states = Counter(s.state for s in steps.values())
                if not inflight:
                    final = self._settle(wf, steps, states)
                    if final is not None:
                        return final
                if wf.state == W.RUNNING and not (states[S.FAILED] or states[S.BLOCKED]):
                    todo = self._start_ready(wf, d, steps, todo, inflight)
                if not inflight:
                    raise RuntimeError(
                        f"workflow {wf.id}: no step can start and none is running: "
                        f"{ {n: s.state for n, s in steps.items()} }"
                    )
                done, _ = await asyncio.wait(inflight, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    inflight.pop(task)
                    task.result()  # NotLeader and store errors stop the executor
        except BaseException:
            for task in inflight:
                task.cancel()
            await asyncio.gather(*inflight, return_exceptions=True)
            raise
        finally:
            self._steps.pop(wf.id, None)

    def _settle(
        self, wf: Workflow, steps: Mapping[str, Step], states: Counter[str]
    ) -> Workflow | None:
        """With nothing in flight: record the workflow's outcome if it has one."""
        if wf.state == W.CANCELLING:
            for s in steps.values():
                if s.state in (S.PENDING, S.BLOCKED):
                    to = S.SKIPPED if s.state == S.PENDING else S.FAILED
                    self._set_step(wf.id, s.name, to, error=KEEP)
                elif s.state in (S.RUNNING, S.RETRYING):
                    self._set_step(
                        wf.id, s.name, S.FAILED, error="interrupted; the workflow was cancelled"
                    )
            self.hooks.point("before_workflow_record")
            return self._set_workflow(wf.id, W.CANCELLED)
        if wf.state != W.RUNNING:
            return wf
        if states[S.FAILED]:
            first = next(s for s in steps.values() if s.state == S.FAILED)
            for s in steps.values():
                if s.state == S.PENDING:
                    self._set_step(wf.id, s.name, S.SKIPPED)
            self.hooks.point("before_workflow_record")
            return self._set_workflow(
                wf.id, W.FAILED, error=f"step {first.name!r} failed: {first.error}"
            )
        if states[S.BLOCKED]:
            first = next(s for s in steps.values() if s.state == S.BLOCKED)
            self.hooks.point("before_workflow_record")
            return self._set_workflow(
                wf.id, W.PAUSED, error=f"step {first.name!r} needs an operator: {first.error}"
            )
        if states[S.DONE] == len(steps):
            self.hooks.point("before_workflow_record")
            return self._set_workflow(wf.id, W.DONE, error=None)
        return None

    def _start_ready(
        self,
        wf: Workflow,
        d: WorkflowDef,
        steps: Mapping[str, Step],
        todo: list[str],
        inflight: dict[asyncio.Task[None], StepDef],
    ) -> list[str]:
        """Start the steps of ``todo`` that can start; return those still to start."""
        running = {sd.name for sd in inflight.values()}
        per_site = Counter(sd.site for sd in inflight.values() if sd.site is not None)
        starting: list[tuple[StepDef, Step]] = []
        for name in todo:
            rec = steps[name]
            if name in running or rec.state not in (S.PENDING, S.RUNNING, S.RETRYING):
                continue
            if any(steps[dep].state != S.DONE for dep in rec.depends_on):
                continue
            if d.max_parallel is not None and len(inflight) + len(starting) >= d.max_parallel:
                break
            sd = d.step(name)
            if sd.site is not None and d.site_concurrency is not None:
                if per_site[sd.site] >= d.site_concurrency:
                    continue
                per_site[sd.site] += 1
            starting.append((sd, rec))
            running.add(name)
        if not starting:
            return todo
        # The `running` records of the steps that start now are committed in one
        # transaction before any of them acts (record-act-record is kept; a step
        # waiting out a retry delay records its own after the delay).
        batch = [(sd, rec) for sd, rec in starting if rec.state != S.RETRYING]
        for sd, _rec in batch:
            self.hooks.point("before_step", sd.name)
        recorded: dict[str, Step] = {}
        if batch:
            changes = [
                StepChange(
                    sd.name,
                    S.RUNNING,
                    step_sources(S.RUNNING),
                    attempts=rec.attempts + 1,
                    retry_at=None,
                    detail={"replay": True} if rec.state == S.RUNNING else None,
                )
                for sd, rec in batch
            ]
            recorded = {s.name: s for s in self._set_steps(wf.id, changes)}
        # One snapshot for the steps started together, not a copy per step (that
        # was O(n) each); steps only read it.
        results = {n: s.result for n, s in steps.items() if s.state == S.DONE}
        for sd, rec in starting:
            now_rec = recorded.get(sd.name)
            task = asyncio.create_task(
                self._run_step(wf, d, sd, now_rec or rec, results, recorded=now_rec is not None),
                name=f"{wf.id}/{sd.name}",
            )
            inflight[task] = sd
        return [n for n in todo if n not in running]

    async def _run_step(
        self,
        wf: Workflow,
        d: WorkflowDef,
        sd: StepDef,
        rec: Step,
        results: dict[str, Any],
        *,
        recorded: bool = False,
    ) -> None:
        """Run one step to an outcome; ``recorded``: ``rec`` is this attempt's committed
        ``running`` record already (made by :meth:`_start_ready`)."""
        policy = d.retry_for(sd.name)
        attempts = rec.attempts
        state = rec.state
        if state == S.RETRYING and rec.retry_at is not None:
            await self.clock.sleep(rec.retry_at - self.clock.now())
        while True:
            if recorded:
                recorded = False
            else:
                if state == S.RETRYING and self.store.get_workflow_state(wf.id) != W.RUNNING:
                    return  # cancelled while waiting; settled by the drive loop
                attempts += 1
                self.hooks.point("before_step", sd.name)
                self._set_step(
                    wf.id,
                    sd.name,
                    S.RUNNING,
                    attempts=attempts,
                    retry_at=None,
                    detail={"replay": True} if state == S.RUNNING else None,
                )
            self.hooks.point("before_call", sd.name)
            ctx = StepContext(
                workflow_id=wf.id,
                step=sd.name,
                attempt=attempts,
                params=wf.params,
                results=results,
                clock=self.clock,
                site=sd.site,
                _executor=self,
            )
            try:
                result = _as_stored(await resolve(sd.run(ctx)), f"the result of step {sd.name!r}")
            except NotLeader:
                raise
            except RetryLater as exc:
                self.hooks.point("before_record", sd.name)
                if attempts >= policy.max_attempts:
                    self._set_step(
                        wf.id,
                        sd.name,
                        S.FAILED,
                        error=f"gave up after {attempts} attempts: {describe(exc)}",
                    )
                    self.hooks.point("after_record", sd.name)
                    return
                delay = policy.delay(attempts, exc.after)
                self._set_step(
                    wf.id,
                    sd.name,
                    S.RETRYING,
                    error=describe(exc),
                    retry_at=self.clock.now() + delay,
                    detail={"delay": delay},
                )
                self.hooks.point("after_record", sd.name)
                state = S.RETRYING
                await self.clock.sleep(delay)
                continue
            except NeedsHuman as exc:
                self.hooks.point("before_record", sd.name)
                self._set_step(wf.id, sd.name, S.BLOCKED, error=describe(exc))
                self.hooks.point("after_record", sd.name)
                return
            except Exception as exc:
                if not isinstance(exc, GiveUp):
                    log.exception("workflow %s step %s: unexpected error", wf.id, sd.name)
                self.hooks.point("before_record", sd.name)
                self._set_step(wf.id, sd.name, S.FAILED, error=describe(exc))
                self.hooks.point("after_record", sd.name)
                return
            self.hooks.point("before_record", sd.name)
            await self._record_done(wf.id, sd.name, result)
            self.hooks.point("after_record", sd.name)
            return

    # -- backward --------------------------------------------------------------------
    async def _rollback(self, wf: Workflow) -> Workflow:
        d = self._definition_for(wf)
        steps = {s.name: s for s in self.store.get_steps(wf.id)}
        # Settle what never finished: it may have half-acted, so it is undone too.
        for s in steps.values():
            if s.state == S.PENDING:
                steps[s.name] = self._set_step(wf.id, s.name, S.SKIPPED)
            elif s.state in (S.RUNNING, S.RETRYING, S.BLOCKED):
                steps[s.name] = self._set_step(
                    wf.id, s.name, S.FAILED, error="interrupted; the workflow is rolled back"
                )
        results = {n: s.result for n, s in steps.items() if s.state == S.DONE}
        for name in reversed(d.order):
            rec = steps[name]
            if rec.state not in (S.DONE, S.FAILED, S.UNDOING, S.UNDO_FAILED):
                continue
            sd = d.step(name)
            if sd.undo is None:
                if rec.state in (S.DONE, S.FAILED):
                    self._set_step(wf.id, name, S.UNDONE, detail={"undo": "none declared"})
                continue
            ok = await self._undo_step(wf, d, sd, rec, sd.undo, results)
            if not ok:
                self.hooks.point("before_workflow_record")
                return self._set_workflow(
                    wf.id,
                    W.ROLLBACK_FAILED,
                    error=f"undo of step {name!r} failed: {self.store.get_step(wf.id, name).error}",
                )
        self.hooks.point("before_workflow_record")
        return self._set_workflow(wf.id, W.ROLLED_BACK)

    async def _undo_step(
        self,
        wf: Workflow,
        d: WorkflowDef,
        sd: StepDef,
        rec: Step,
        undo: StepFn,
        results: dict[str, Any],
    ) -> bool:
        policy = d.retry_for(sd.name)
        tries = 0
        while True:
            tries += 1
            self._set_step(
                wf.id, sd.name, S.UNDOING, attempts=rec.attempts, detail={"undo_attempt": tries}
            )
            self.hooks.point("before_undo", sd.name)
            ctx = StepContext(
                workflow_id=wf.id,
                step=sd.name,
                attempt=tries,
                params=wf.params,
                results=results,
                clock=self.clock,
                site=sd.site,
                result=rec.result,
                _executor=self,
            )
            try:
                await resolve(undo(ctx))
            except NotLeader:
                raise
            except RetryLater as exc:
                if tries < policy.max_attempts:
                    await self.clock.sleep(policy.delay(tries, exc.after))
                    continue
                self._set_step(
                    wf.id, sd.name, S.UNDO_FAILED, error=f"gave up after {tries}: {describe(exc)}"
                )
                return False
            except Exception as exc:
                if not isinstance(exc, (GiveUp, NeedsHuman)):
                    log.exception("workflow %s undo of %s: unexpected error", wf.id, sd.name)
                self._set_step(wf.id, sd.name, S.UNDO_FAILED, error=describe(exc))
                return False
            self.hooks.point("after_undo", sd.name)
            self._set_step(wf.id, sd.name, S.UNDONE)
            return True


def is_terminal(wf: Workflow) -> bool:
    return wf.state in WORKFLOW_TERMINAL


def _check_json(value: Any, what: str) -> None:
    _encode(value, what)


def _encode(value: Any, what: str) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise GiveUp(f"{what} is not JSON-serializable: {exc}") from None


def _as_stored(value: Any, what: str) -> Any:
    """``value`` as the store gives it back (tuples become lists, keys strings).

    The executor keeps the record it wrote instead of reading it back, so the
    results later steps see must be what a restarted controller would read.
    """
    return json.loads(_encode(value, what))
