"""The host-HA service: watch, decide, and submit durable recoveries.

One :class:`HaService` per controller.  Every ``poll_interval`` (on the
injected clock), while this controller leads, :meth:`HaService.tick`:

1. asks every configured monitor about the segments' hosts; if a monitor
   that reads the control plane cannot (``RetryLater``), nothing is
   decided this round and an alert is raised once (the controller might be
   the one cut off);
2. lets the :class:`~liferaft.ha.detector.Detector` apply the agreement
   rule, the re-check, the mass-failure breaker and the per-segment limit,
   leaving out hosts in maintenance and hosts already recovered;
3. for each confirmed host: lists its instances, marks it ``recovering``
   and submits its ``ha-recover`` workflow (id from the host's incarnation,
   so a restarted controller finds the one it submitted instead of making
   a second), then drives the workflows.

Operators put hosts in maintenance and ask a repaired host to rejoin
(:meth:`set_maintenance`, :meth:`rejoin`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge

from liferaft import plugins
from liferaft.clouds import Cloud
from liferaft.config.model import HaSegmentSettings, HaSettings
from liferaft.engine.clock import Clock
from liferaft.engine.controller import DriverNeed, check_drivers
from liferaft.engine.executor import Executor, StepContext
from liferaft.engine.leadership import Leadership
from liferaft.errors import ConfigError, GiveUp, LiferaftError, NotFound, NotLeader, RetryLater
from liferaft.store import Store
from liferaft.store import ha as hastore

from . import planner
from .detector import Decision, Detector, SegmentView
from .fencers.base import EVACUATION_CAPABILITIES, Fencer, FenceTarget
from .monitors.base import CONTROL_PLANE, Monitor, MonitorContext, Signal
from .notifiers import Notice, Notifier
from .workflow import RECOVER, REJOIN, HaRuntime, build_recover, build_rejoin, workflow_id

log = logging.getLogger(__name__)

#: Host states whose host is being recovered (counts against the segment limit).
RECOVERING = frozenset({"recovering", "fence_failed"})
#: Host states left out of detection (nothing more to do until an operator acts).
SETTLED = frozenset({"recovered", "rejoining"})


class HaMetrics:
    def __init__(self, registry: CollectorRegistry | None) -> None:
        kw: dict[str, Any] = {"registry": registry} if registry is not None else {"registry": None}
        self.failures = Counter(
            "liferaft_ha_host_failures_total", "Hosts declared failed (recoveries submitted).", **kw
        )
        self.notices = Counter(
            "liferaft_ha_notifications_total", "HA notifications by kind.", ["kind"], **kw
        )
        self.breaker = Gauge(
            "liferaft_ha_breaker_tripped",
            "1 while the mass-failure breaker holds recoveries.",
            **kw,
        )
        self.silent = Gauge("liferaft_ha_silent_hosts", "Hosts the monitors call silent now.", **kw)
        self.hosts = Gauge(
            "liferaft_ha_hosts", "Watched hosts by lifecycle state.", ["state"], **kw
        )


class HaService:
    def __init__(
        self,
        settings: HaSettings,
        *,
        site: str,
        store: Store,
        clock: Clock,
        clouds: Mapping[str, Cloud],
        leadership: Leadership,
        executor: Executor | None = None,
        notifier: Notifier | None = None,
        registry: CollectorRegistry | None = None,
        drive: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.site = site
        self.store = store
        self.clock = clock
        self.clouds = clouds
        self.leadership = leadership
        self.executor = executor or Executor(store, clock=clock, leadership=leadership)
        #: Under ``serve`` the engine's Controller drives every workflow: ``drive`` wakes it.
        self._drive = drive
        self.metrics = HaMetrics(registry)
        for seg in settings.segments:
            if (seg.site or site) not in clouds:
                raise ConfigError(f"ha.segments[{seg.name}].site: no site named {seg.site!r}")
        needs = [DriverNeed("monitors", m, f"ha.monitors[{m}]") for m in settings.monitors]
        needs += [DriverNeed("evacuators", settings.evacuator, "ha.evacuator")]
        for h in settings.hosts:
            for i, f in enumerate(h.fencers):
                needs.append(
                    DriverNeed(
                        "fencers",
                        f.driver,
                        f"ha.hosts[{h.name}].fencers[{i}]",
                        EVACUATION_CAPABILITIES,
                    )
                )
        drivers = check_drivers(needs)
        self._fencer_classes = {k: v for k, v in drivers.items() if k.startswith("ha.hosts[")}
        self.monitors: list[Monitor] = [
            drivers[f"ha.monitors[{m}]"](MonitorContext(site, clouds[site], clock, settings))
            for m in settings.monitors
        ]
        self.notifier: Notifier = notifier or plugins.create(
            "notifiers",
            settings.notifier,
            [u.get_secret_value() for u in settings.admin_urls],
            {p: [u.get_secret_value() for u in us] for p, us in settings.tenant_urls.items()},
        )
        self.detector = Detector(
            agreement=settings.agreement,
            recheck_delay=settings.recheck_delay,
            breaker_max_share=settings.breaker_max_share,
            breaker_max_hosts=settings.breaker_max_hosts,
        )
        self.runtime = HaRuntime(
            settings=settings,
            clouds=clouds,
            store=store,
            fencers_for=self.fencers_for,
            evacuator=drivers["ha.evacuator"](),
            notifier=self.notifier,
            on_notice=self._noticed,
            clock=clock,
        )
        self.executor.register(RECOVER, build_recover(self.runtime))
        self.executor.register(REJOIN, build_rejoin(self.runtime))
        self.last_decision: Decision | None = None
        self.control_plane_error: str | None = None
        self._breaker_told: str | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._wake = asyncio.Event()

    # -- drivers ---------------------------------------------------------------------
    def fencers_for(self, host: str) -> list[Fencer]:
        """The host's fencing levels, in order (credentials only inside the drivers)."""
        for h in self.settings.hosts:
            if h.name != host:
                continue
            out: list[Fencer] = []
            for i, f in enumerate(h.fencers):
                cls = self._fencer_classes[f"ha.hosts[{host}].fencers[{i}]"]
                target = FenceTarget(
                    host=host,
                    driver=f.driver,
                    address=f.address,
                    username=f.username,
                    password=f.password.get_secret_value() if f.password else None,
                    system_id=f.system_id,
                    verify_tls=f.verify_tls,
                    timeout=f.timeout,
                )
                out.append(cls(target))
            return out
        return []

    def segment_of(self, host: str) -> HaSegmentSettings:
        for seg in self.settings.segments:
            if host in seg.hosts:
                return seg
        raise NotFound(f"host {host!r} is in no HA segment")

    # -- events ------------------------------------------------------------------------
    def event(self, kind: str, **detail: Any) -> None:
        """An HA event in the engine's event log (``GET /v1/events``); only while leading."""
        with contextlib.suppress(NotLeader):
            self.store.add_note(
                self.leadership.fence(), now=self.clock.now(), detail={"ha": kind, **detail}
            )

    def _noticed(self, ctx: StepContext | None, notice: Notice, told: list[str]) -> None:
        self.metrics.notices.labels(notice.kind).inc()
        detail = {
            "ha": "notified",
            "kind": notice.kind,
            "told": told,
            "host": notice.values.get("host"),
        }
        if ctx is not None:
            ctx.note(**detail)
        else:
            with contextlib.suppress(NotLeader):
                self.store.add_note(self.leadership.fence(), now=self.clock.now(), detail=detail)

    async def _tell(self, notice: Notice) -> None:
        await self.runtime.tell(None, notice)

    # -- the loop ---------------------------------------------------------------------
    async def start(self) -> None:
        try:
            await self.check_hosts()
        except (RetryLater, GiveUp) as exc:  # the cloud cannot say now; the monitors will
            log.warning("could not check the segments' hosts: %s", exc)
        for m in self.monitors:
            await m.start()

    async def check_hosts(self) -> None:
        """Refuse (``ConfigError``) segments naming hosts the site's compute API does not know.

        A host the cloud does not know would never be watched: no monitor has an
        opinion about it, so it could never be declared failed.
        """
        known = {s.host for s in await self.clouds[self.site].list_compute_services()}
        problems = []
        for seg in self.settings.segments:
            if (seg.site or self.site) != self.site:
                continue
            unknown = [h for h in seg.hosts if h not in known]
            if unknown:
                problems.append(
                    f"ha.segments[{seg.name}].hosts: no compute host named "
                    f"{', '.join(repr(h) for h in unknown)} at site {self.site}"
                )
        if problems:
            names = sorted(known)
            shown = ", ".join(names[:10]) + (
                f" and {len(names) - 10} more" if len(names) > 10 else ""
            )
            raise ConfigError(f"{'; '.join(problems)} (its compute hosts: {shown or 'none'})")

    async def stop(self) -> None:
        for m in self.monitors:
            with contextlib.suppress(Exception):
                await m.stop()
        for t in list(self._tasks):
            t.cancel()
        if self._tasks:
            # asyncio.wait: a cancellation of stop() itself is not swallowed.
            await asyncio.wait(list(self._tasks))

    def _ensure_rows(self) -> dict[str, hastore.HaHost]:
        now = self.clock.now()
        # One read per round; a write only for a host first seen or moved to another
        # segment (a write per host per round cost most of a round's time).
        have = {r.host: r for r in hastore.list_hosts(self.store, site=self.site)}
        rows: dict[str, hastore.HaHost] = {}
        for seg in self.settings.segments:
            if (seg.site or self.site) != self.site:
                continue
            for h in seg.hosts:
                known = have.get(h)
                if known is not None and known.segment == seg.name:
                    rows[h] = known
                    continue
                rows[h] = hastore.ensure_host(
                    self.store,
                    site=self.site,
                    host=h,
                    segment=seg.name,
                    reserved=h in seg.reserved_hosts,
                    now=now,
                )
        return rows

    async def tick(self) -> Decision | None:
        """One round: observe, decide, submit.  ``None`` when not leading or blind."""
        if not self.leadership.is_leader:
            return None
        rows = await asyncio.to_thread(self._ensure_rows)
        for state in hastore.HOST_STATES:
            self.metrics.hosts.labels(state).set(sum(1 for r in rows.values() if r.state == state))
        hosts = sorted(rows)
        opinions: dict[str, dict[str, Signal]] = {}
        for m in self.monitors:
            try:
                opinions[m.name] = await m.observe(hosts)
            except (RetryLater, GiveUp) as exc:
                if CONTROL_PLANE in m.capabilities:
                    if self.control_plane_error is None:
                        self.control_plane_error = exc.message
                        self.event("control_plane_unreachable", error=exc.message)
                        await self._tell(
                            Notice("control_plane", {"site": self.site, "error": exc.message})
                        )
                    return None
                log.warning("monitor %s: %s", m.name, exc)
        if self.control_plane_error is not None:
            self.control_plane_error = None
            self.event("control_plane_reachable")
        views = []
        for seg in self.settings.segments:
            if (seg.site or self.site) != self.site:
                continue
            views.append(
                SegmentView(
                    seg.name,
                    tuple(seg.hosts),
                    seg.max_failed_hosts,
                    recovering=frozenset(h for h in seg.hosts if rows[h].state in RECOVERING),
                    excluded=frozenset(
                        h for h in seg.hosts if rows[h].maintenance or rows[h].state in SETTLED
                    ),
                )
            )
        now = self.clock.now()
        d = self.detector.round(now, views, opinions)
        self.last_decision = d
        self.metrics.silent.set(len(d.silent))
        self.metrics.breaker.set(1.0 if d.breaker else 0.0)
        if d.breaker and d.breaker != self._breaker_told:
            self._breaker_told = d.breaker
            self.event("breaker_tripped", reason=d.breaker, hosts=sorted(d.silent))
            await self._tell(Notice("breaker", {"reason": d.breaker, "hosts": sorted(d.silent)}))
        elif not d.breaker and self._breaker_told:
            self._breaker_told = None
            self.event("breaker_reset")
        for seg_name, host in d.confirmed:
            try:
                await self.submit_recovery(seg_name, host, d.silent.get(host, []))
            except NotLeader:
                return d
            except LiferaftError as exc:
                log.warning("recovery of %s not submitted: %s", host, exc)
                self.event("recovery_not_submitted", host=host, error=exc.message)
        self.drive()
        return d

    async def submit_recovery(self, segment: str, host: str, reasons: list[str]) -> str:
        seg = next(s for s in self.settings.segments if s.name == segment)
        row = hastore.get_host(self.store, self.site, host)
        if row is None or row.state != "active" or row.maintenance:
            raise GiveUp(f"host {host} is not active (or in maintenance)")
        wf_id = workflow_id(self.site, host, row.incarnation)
        servers = await self.clouds[self.site].list_servers(host=host)
        evac, skipped, ignored = planner.classify(servers, seg)
        now = self.clock.now()
        failed_at = self.detector.first_silent.get(host, now)
        params = {
            "site": self.site,
            "segment": segment,
            "host": host,
            "reasons": reasons,
            "failed_at": failed_at,
            "detected_at": now,
            "instances": evac,
            "skipped": skipped,
            "not_selected": [r["id"] for r in ignored],
        }
        self.leadership.confirm()
        updated = hastore.update_host(
            self.store,
            self.leadership.fence(),
            site=self.site,
            host=host,
            now=now,
            expect_state=("active",),
            state="recovering",
            workflow_id=wf_id,
            reason="; ".join(reasons),
        )
        if updated is None:
            raise GiveUp(f"host {host} changed state meanwhile")
        self.executor.submit(RECOVER, params, workflow_id=wf_id)
        self.metrics.failures.inc()
        self.event("host_failed", host=host, segment=segment, reasons=reasons, workflow=wf_id)
        await self._tell(
            Notice(
                "host_failed",
                {"host": host, "segment": segment, "site": self.site, "reasons": reasons},
            )
        )
        return wf_id

    def drive(self) -> None:
        """Drive every unfinished workflow (those already driven are skipped)."""
        if self._drive is not None:
            self._drive()
            return
        task = asyncio.create_task(self.executor.recover())
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            exc = task.exception()
            if not isinstance(exc, NotLeader):
                log.error("driving HA workflows failed: %s", exc)

    @property
    def busy(self) -> bool:
        """Whether workflows are being driven now."""
        return bool(self._tasks)

    async def run(self) -> None:
        """Tick every ``poll_interval`` for ever (cancel to stop)."""
        await self.start()
        try:
            while True:
                try:
                    await self.tick()
                except NotLeader:
                    pass
                except Exception:
                    log.exception("HA tick failed")
                self._wake.clear()
                sleeper = asyncio.create_task(self.clock.sleep(self.settings.poll_interval))
                waker = asyncio.create_task(self._wake.wait())
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
                for t in (sleeper, waker):
                    t.cancel()
        finally:
            await self.stop()

    # -- operators ------------------------------------------------------------------------
    def set_maintenance(self, host: str, on: bool, *, reason: str | None = None) -> hastore.HaHost:
        seg = self.segment_of(host)
        hastore.ensure_host(
            self.store,
            site=self.site,
            host=host,
            segment=seg.name,
            reserved=host in seg.reserved_hosts,
            now=self.clock.now(),
        )
        row = hastore.update_host(
            self.store,
            None,
            site=self.site,
            host=host,
            now=self.clock.now(),
            maintenance=on,
            reason=reason if on else None,
        )
        assert row is not None
        self.event("maintenance", host=host, on=on)
        return row

    def rejoin(self, host: str) -> str:
        """Submit the rejoin of a repaired host (it must be ``recovered``)."""
        self.segment_of(host)
        row = hastore.get_host(self.store, self.site, host)
        if row is None or row.state not in ("recovered", "rejoining"):
            state = "unknown" if row is None else row.state
            raise GiveUp(f"host {host} is {state}; only a recovered host can rejoin")
        # Only the instances the recovery really moved: one it could not (no room, refused,
        # timed out) still belongs to this host and comes back with it.
        evacuated: list[str] = []
        stayed: list[str] = []
        if row.workflow_id:
            with contextlib.suppress(NotFound):
                wf = self.store.get_workflow(row.workflow_id)
                steps = {s.name: s for s in self.store.get_steps(wf.id)}
                for inst in wf.params.get("instances", []):
                    step = steps.get(f"evacuate:{inst['id']}")
                    ok = step is not None and bool((step.result or {}).get("ok"))
                    (evacuated if ok else stayed).append(str(inst["id"]))
        wf_id = f"ha-rejoin-{self.site}-{host}-{row.incarnation}"[:64]
        hastore.update_host(
            self.store,
            self.leadership.fence(),
            site=self.site,
            host=host,
            now=self.clock.now(),
            state="rejoining",
        )
        self.executor.submit(
            REJOIN,
            {"site": self.site, "host": host, "evacuated": evacuated, "not_evacuated": stayed},
            workflow_id=wf_id,
        )
        self.event("rejoin", host=host, workflow=wf_id)
        self._wake.set()
        self.drive()
        return wf_id

    # -- views ---------------------------------------------------------------------------
    def hosts(self) -> list[dict[str, Any]]:
        d = self.last_decision
        out = []
        for r in hastore.list_hosts(self.store, site=self.site):
            doc = r.as_dict()
            doc["silent"] = bool(d and r.host in d.silent)
            doc["suspect"] = bool(d and r.host in d.suspects)
            out.append(doc)
        return out

    def segments(self) -> list[dict[str, Any]]:
        return [
            {
                "name": s.name,
                "site": s.site or self.site,
                "hosts": list(s.hosts),
                "recovery_method": s.recovery_method,
                "reserved_hosts": list(s.reserved_hosts),
                "max_failed_hosts": s.max_failed_hosts,
                "local_disk": s.local_disk,
                "shared_storage": s.shared_storage,
            }
            for s in self.settings.segments
        ]

    def status(self) -> dict[str, Any]:
        d = self.last_decision
        rows = hastore.list_hosts(self.store, site=self.site)
        return {
            "enabled": self.settings.enabled,
            "leading": self.leadership.is_leader,
            "monitors": [m.name for m in self.monitors],
            "agreement": self.settings.agreement,
            "breaker": d.breaker if d else None,
            "control_plane_error": self.control_plane_error,
            "silent": sorted(d.silent) if d else [],
            "suspects": sorted(d.suspects) if d else [],
            "hosts": {s: sum(1 for r in rows if r.state == s) for s in hastore.HOST_STATES},
            "maintenance": sorted(r.host for r in rows if r.maintenance),
        }


def fencer_summary(settings: HaSettings) -> list[dict[str, Any]]:
    """Each host's fencing levels as the API shows them: never a credential."""
    return [
        {
            "host": h.name,
            "levels": [{"driver": f.driver, "address": f.address} for f in h.fencers],
        }
        for h in settings.hosts
    ]


Factory = Callable[..., HaService]
