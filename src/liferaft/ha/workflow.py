"""The durable host-recovery and host-rejoin workflows.

``ha-recover`` (one per failure of a host; id ``ha-<site>-<host>-<incarnation>``)::

    fence ──> force_down ──> plan ──> evacuate:<id> (one per instance, priority order,
                                                     restart groups as dependencies) ──> report

* ``fence`` tries each fencing level in order, reads the power state back,
  and records ``confirmed`` -- or alerts and pauses the workflow
  (``NeedsHuman``): nothing is evacuated from a host that was not fenced;
* ``force_down`` forces the compute service down and disables it;
* ``plan`` picks the targets (recovery method, Placement room) and takes
  the reserved hosts it uses out of the pool (enabling them);
* ``evacuate:<id>`` evacuates the instance (only if it is still on the
  failed host -- a replay finds an evacuation already under way or done)
  and tracks it until it runs on its new host in its earlier power state,
  starting it when the compute API left it stopped (microversion 2.95+);
* ``report`` marks the host ``recovered``, notifies tenants and admins.

Each step is idempotent, and every evacuation step depends on ``fence``
through ``force_down`` and ``plan``, so it can only run once the fence is
recorded as confirmed; it checks that record again before acting.

``ha-rejoin`` (an operator's request, after repair)::

    power_on ──> clean ──> unforce ──> enable
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from liferaft.clouds import Cloud, ResourceNotFound
from liferaft.config.model import HaSegmentSettings, HaSettings
from liferaft.engine.clock import Clock
from liferaft.engine.executor import StepContext
from liferaft.engine.workflow import RetryPolicy, StepDef, WorkflowDef
from liferaft.errors import GiveUp, NeedsHuman, RetryLater
from liferaft.store import Store
from liferaft.store import ha as hastore

from . import planner
from .evacuators import Evacuator
from .fencers.base import CONFIRMS_POWER_OFF, Fencer
from .notifiers import Notice, Notifier
from .watch import ServerWatch

log = logging.getLogger(__name__)

RECOVER = "ha-recover"
REJOIN = "ha-rejoin"
RUNNING = 1
#: Simulated/real seconds between two looks at an instance being evacuated.
TRACK_POLL = 2.0
#: Seconds between two power-state readings while a fence is confirmed.
FENCE_POLL = 1.0
#: Rounds over every fencing level before the fence is declared failed.
FENCE_ROUNDS = 2


def workflow_id(site: str, host: str, incarnation: int) -> str:
    return f"ha-{site}-{host}-{incarnation}"[:64]


@dataclass
class HaRuntime:
    """What the HA steps use: clouds, drivers, store, settings (never in the params)."""

    settings: HaSettings
    clouds: Mapping[str, Cloud]
    store: Store
    fencers_for: Callable[[str], list[Fencer]]
    evacuator: Evacuator
    notifier: Notifier
    #: Called for every notification (an event in the API and a metric).
    on_notice: Callable[[StepContext | None, Notice, list[str]], None] = field(
        default=lambda _ctx, _n, _t: None
    )
    #: The clock the watches look on (the engine's).
    clock: Clock | None = None
    _watches: dict[str, ServerWatch] = field(default_factory=dict)

    def watch(self, site: str) -> ServerWatch:
        """The site's shared :class:`ServerWatch` (one listing per look for every step)."""
        w = self._watches.get(site)
        if w is None:
            if self.clock is None:
                raise GiveUp("ha: the runtime has no clock to track evacuations on")
            w = self._watches[site] = ServerWatch(self.clouds[site], self.clock, poll=TRACK_POLL)
        return w

    def segment(self, name: str) -> HaSegmentSettings:
        for s in self.settings.segments:
            if s.name == name:
                return s
        raise GiveUp(f"ha: no segment named {name!r} in the configuration")

    async def tell(self, ctx: StepContext | None, notice: Notice) -> list[str]:
        try:
            told = await self.notifier.notify(notice)
        except Exception as exc:  # a notifier failure never stops a recovery
            log.warning("notification %s failed: %s", notice.kind, exc)
            told = []
        self.on_notice(ctx, notice, told)
        return told


def _confirm_leadership(ctx: StepContext) -> None:
    """The cloud is not fenced by the store: re-check the lease before acting on it."""
    ex = ctx._executor
    if ex is not None:
        ex.confirm_leadership()


def _fence_of(ctx: StepContext) -> dict[str, Any]:
    fence = ctx.results.get("fence") or {}
    if not fence.get("confirmed"):
        raise GiveUp(f"host {ctx.params['host']}: the fence is not confirmed; nothing is evacuated")
    return dict(fence)


async def _groups_of(
    cloud: Cloud, instances: list[dict[str, Any]]
) -> dict[str, planner.GroupPlacement]:
    """The server groups of the instances being evacuated, with where their other members run."""
    moving = {str(i["id"]) for i in instances}
    groups = [g for g in await cloud.list_server_groups() if moving & set(g.members)]
    if not groups:
        return {}
    others = {m for g in groups for m in g.members if m not in moving}
    host_of: dict[str, str | None] = {}
    for m in sorted(others):
        try:
            host_of[m] = (await cloud.get_server(m)).host
        except ResourceNotFound:
            continue  # a member deleted meanwhile no longer counts
    return planner.group_placements(instances, groups, host_of)


def build_recover(rt: HaRuntime) -> Callable[[dict[str, Any]], WorkflowDef]:
    def build(params: dict[str, Any]) -> WorkflowDef:
        site: str = params["site"]
        host: str = params["host"]
        instances: list[dict[str, Any]] = params["instances"]

        def cloud() -> Cloud:
            return rt.clouds[site]

        async def fence(ctx: StepContext) -> dict[str, Any]:
            levels = rt.fencers_for(host)
            problems: list[str] = []
            for _round in range(FENCE_ROUNDS):
                for i, f in enumerate(levels):
                    name = f"level {i + 1} ({f.target.driver})"
                    if CONFIRMS_POWER_OFF not in f.capabilities:
                        problems.append(f"{name}: cannot confirm a power-off")
                        continue
                    try:
                        if await f.power_state() != "off":
                            _confirm_leadership(ctx)
                            await f.power_off()
                        waited = 0.0
                        state = await f.power_state()
                        while state != "off" and waited < f.target.timeout:
                            await ctx.clock.sleep(FENCE_POLL)
                            waited += FENCE_POLL
                            state = await f.power_state()
                    except (RetryLater, GiveUp) as exc:
                        problems.append(f"{name}: {exc.message}")
                        continue
                    if state == "off":
                        at = ctx.clock.now()
                        ctx.note(ha="fenced", host=host, driver=f.target.driver, level=i + 1)
                        return {
                            "confirmed": True,
                            "driver": f.target.driver,
                            "level": i + 1,
                            "at": at,
                        }
                    problems.append(f"{name}: power still {state} after {f.target.timeout:g} s")
            if not levels:
                problems.append("no fencer is configured")
            error = "; ".join(dict.fromkeys(problems))
            hastore.update_host(
                rt.store,
                None,
                site=site,
                host=host,
                now=ctx.clock.now(),
                state="fence_failed",
                reason=error,
            )
            await rt.tell(
                ctx,
                Notice(
                    "fence_failed",
                    {"host": host, "segment": params["segment"], "site": site, "error": error},
                ),
            )
            raise NeedsHuman(f"could not fence host {host}: {error}")

        async def force_down(ctx: StepContext) -> dict[str, Any]:
            fenced = _fence_of(ctx)
            _confirm_leadership(ctx)
            await cloud().force_down_compute(host, down=True)
            await cloud().disable_compute(
                host, reason=f"liferaft: failed, fenced by {fenced['driver']}"
            )
            return {"at": ctx.clock.now()}

        async def plan(ctx: StepContext) -> dict[str, Any]:
            _fence_of(ctx)
            seg = rt.segment(params["segment"])
            rows = {h.host: h for h in hastore.list_hosts(rt.store, site=site)}
            services = {s.host: s for s in await cloud().list_compute_services()}

            def usable(h: str) -> bool:
                svc = services.get(h)
                row = rows.get(h)
                return (
                    h != host
                    and svc is not None
                    and svc.state == "up"
                    and not svc.forced_down
                    and (row is None or (row.state == "active" and not row.maintenance))
                )

            def pooled(h: str) -> bool:
                # A reserved host this very workflow took (a replay of the plan) is still ours.
                row = rows.get(h)
                return row is None or row.in_pool or row.workflow_id == ctx.workflow_id

            reserved_pool = [h for h in seg.reserved_hosts if usable(h) and pooled(h)]
            auto_hosts = [
                h for h in seg.hosts if usable(h) and not (h in seg.reserved_hosts and pooled(h))
            ]
            capacity = await cloud().capacity()
            groups = await _groups_of(cloud(), instances)
            targets, used, unplaced = planner.plan_targets(
                instances,
                method=seg.recovery_method,
                auto_room=planner.rooms(capacity, auto_hosts),
                reserved_room=planner.rooms(capacity, reserved_pool),
                reserved_order=reserved_pool,
                groups=groups,
            )
            for h in used:
                _confirm_leadership(ctx)
                hastore.update_host(
                    rt.store,
                    None,
                    site=site,
                    host=h,
                    now=ctx.clock.now(),
                    in_pool=False,
                    workflow_id=ctx.workflow_id,
                    reason=f"reserved host used to recover {host}",
                )
                await cloud().enable_compute(h)
                ctx.note(ha="reserved_host_used", host=h, for_host=host)
            return {"targets": targets, "reserved_used": used, "unplaced": unplaced}

        def evacuate(inst: dict[str, Any]) -> Callable[[StepContext], Any]:
            async def run(ctx: StepContext) -> dict[str, Any]:
                _fence_of(ctx)
                iid = inst["id"]
                target = ctx.results["plan"]["targets"].get(iid)
                if target is None:
                    return {"ok": False, "error": "no host has room", "at": ctx.clock.now()}
                c = cloud()
                watch = rt.watch(site)
                want_running = inst.get("power_state") == RUNNING
                started = ctx.clock.now()
                asked_start = False
                try:
                    # Read by id before acting: a replay finds the evacuation under way or done.
                    s = await c.get_server(iid)
                    if s.host == host and s.task_state is None:
                        _confirm_leadership(ctx)
                        await rt.evacuator.evacuate(c, iid, target)
                        await watch.wait()
                        s = await watch.get(iid)
                    while True:
                        now = ctx.clock.now()
                        if s.status == "ERROR" and s.task_state is None:
                            return {
                                "ok": False,
                                "error": "instance in ERROR",
                                "host": s.host,
                                "at": now,
                            }
                        if s.host != host and s.task_state is None:
                            running = s.power_state == RUNNING and s.status == "ACTIVE"
                            if want_running and not running:
                                if s.status == "SHUTOFF" and not asked_start:
                                    _confirm_leadership(ctx)
                                    await c.start_server(iid)
                                    asked_start = True
                            else:
                                return {
                                    "ok": True,
                                    "host": s.host,
                                    "power_state": s.power_state,
                                    "at": now,
                                }
                        if now - started > rt.settings.evacuation_timeout:
                            return {"ok": False, "error": "timed out", "host": s.host, "at": now}
                        # Wait on the shared watch: one listing per look serves every step.
                        await watch.wait()
                        s = await watch.get(iid)
                except ResourceNotFound:
                    return {"ok": False, "error": "instance deleted", "at": ctx.clock.now()}

            return run

        async def report(ctx: StepContext) -> dict[str, Any]:
            fenced = ctx.results["fence"]
            ok = [i for i in instances if (ctx.results.get(f"evacuate:{i['id']}") or {}).get("ok")]
            bad = [i for i in instances if i not in ok]
            ats = [float(ctx.results[f"evacuate:{i['id']}"]["at"]) for i in instances]
            done_at = max(ats) if ats else float(fenced["at"])
            now = ctx.clock.now()
            hastore.update_host(
                rt.store, None, site=site, host=host, now=now, state="recovered", reason=None
            )
            names = lambda rs: [f"{r['name']} ({r['id']})" for r in rs]  # noqa: E731
            projects = sorted(
                {str(r["project_id"]) for r in instances + params["skipped"] if r.get("project_id")}
            )
            per_project = {
                p: {
                    "recovered": names([r for r in ok if r.get("project_id") == p]),
                    "failed": names([r for r in bad if r.get("project_id") == p]),
                    "skipped": names([r for r in params["skipped"] if r.get("project_id") == p]),
                }
                for p in projects
            }
            told = await rt.tell(
                ctx,
                Notice(
                    "host_recovered",
                    {
                        "host": host,
                        "segment": params["segment"],
                        "site": site,
                        "fence": fenced["driver"],
                        "recovered": names(ok),
                        "failed": names(bad),
                        "skipped": names(params["skipped"]),
                    },
                    projects=projects,
                    per_project=per_project,
                ),
            )
            failed_at = float(params["failed_at"])
            detected_at = float(params["detected_at"])
            return {
                "recovered": len(ok),
                "failed": [i["id"] for i in bad],
                "skipped": [i["id"] for i in params["skipped"]],
                "detect_s": detected_at - failed_at,
                "fence_s": float(fenced["at"]) - detected_at,
                "evacuate_s": max(0.0, done_at - float(fenced["at"])),
                "total_s": max(done_at, float(fenced["at"])) - failed_at,
                "told": told,
            }

        deps = planner.group_dependencies(instances)
        steps = [
            StepDef("fence", fence, site=None, retry=RetryPolicy(max_attempts=3, initial=2.0)),
            StepDef("force_down", force_down, depends_on=("fence",)),
            StepDef("plan", plan, depends_on=("force_down",)),
        ]
        for inst in instances:
            after = tuple(f"evacuate:{d}" for d in deps.get(inst["id"], []))
            steps.append(
                StepDef(
                    f"evacuate:{inst['id']}",
                    evacuate(inst),
                    depends_on=("plan", *after),
                    retry=RetryPolicy(max_attempts=8, initial=2.0, max_delay=30.0),
                )
            )
        steps.append(
            StepDef(
                "report", report, depends_on=("plan", *(f"evacuate:{i['id']}" for i in instances))
            )
        )
        # The fence, force-down and plan run alone; then at most the allowed
        # number of evacuations are in flight at once (the report waits for all).
        return WorkflowDef(
            RECOVER,
            steps,
            max_parallel=rt.settings.max_concurrent_evacuations,
            retry=RetryPolicy(max_attempts=5, initial=2.0, max_delay=60.0),
        )

    return build


def build_rejoin(rt: HaRuntime) -> Callable[[dict[str, Any]], WorkflowDef]:
    def build(params: dict[str, Any]) -> WorkflowDef:
        site: str = params["site"]
        host: str = params["host"]

        def cloud() -> Cloud:
            return rt.clouds[site]

        async def power_on(ctx: StepContext) -> dict[str, Any]:
            for f in rt.fencers_for(host):
                try:
                    state = await f.power_state()
                    if state != "on":
                        _confirm_leadership(ctx)
                        await f.power_on()
                    return {"driver": f.target.driver, "was": state}
                except (RetryLater, GiveUp) as exc:
                    ctx.note(ha="power_on_failed", host=host, error=exc.message)
            return {"driver": None}

        async def clean(ctx: StepContext) -> dict[str, Any]:
            """Refuse to rejoin while instances evacuated from the host still point at it.

            Only instances the recovery moved count: one it could not move (no room,
            refused, timed out) was never evacuated, still belongs to this host and
            comes back with it -- noted, not a reason to hold the host out.  The
            evacuated instances' remains on the host's disks are Nova's to clean at
            the compute service's start; until it has, Nova refuses the unforce
            (``unforce`` retries).
            """
            evacuated = set(params.get("evacuated", []))
            on_host = await cloud().list_servers(host=host)
            leftovers = [s.id for s in on_host if s.id in evacuated]
            if leftovers:
                raise NeedsHuman(
                    f"host {host} still holds evacuated instances {', '.join(sorted(leftovers))}; "
                    "clean them up, then resume"
                )
            stayed = sorted(s.id for s in on_host if s.id in set(params.get("not_evacuated", [])))
            if stayed:
                ctx.note(ha="rejoin_with_unevacuated", host=host, instances=stayed)
            return {"kept": [s.id for s in on_host], "not_evacuated": stayed}

        async def unforce(ctx: StepContext) -> dict[str, Any]:
            _confirm_leadership(ctx)
            await cloud().force_down_compute(host, down=False)
            found = await cloud().list_compute_services(host=host)
            if not found or found[0].state != "up":
                raise RetryLater(f"the compute service of {host} is not up yet", after=5.0)
            return {"at": ctx.clock.now()}

        async def enable(ctx: StepContext) -> dict[str, Any]:
            _confirm_leadership(ctx)
            await cloud().enable_compute(host)
            row = hastore.get_host(rt.store, site, host)
            hastore.update_host(
                rt.store,
                None,
                site=site,
                host=host,
                now=ctx.clock.now(),
                state="active",
                reason=None,
                workflow_id=None,
                incarnation=(row.incarnation + 1) if row is not None else 1,
            )
            return {"at": ctx.clock.now()}

        return WorkflowDef(
            REJOIN,
            [
                StepDef("power_on", power_on),
                StepDef("clean", clean, depends_on=("power_on",)),
                StepDef(
                    "unforce",
                    unforce,
                    depends_on=("clean",),
                    retry=RetryPolicy(max_attempts=60, initial=5.0, multiplier=1.0),
                ),
                StepDef("enable", enable, depends_on=("unforce",)),
            ],
        )

    return build
