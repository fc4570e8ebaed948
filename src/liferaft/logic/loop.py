"""The DR-Logic control loop: build the state, ask the logic, apply what it decides.

:meth:`LogicLoop.step` is called by the protection service loop
(:class:`~liferaft.recovery.runtime.DrRuntime`) every
``protection.schedule_tick`` while this controller leads. Each call:

1. **Forces** a checkpoint of a group with none in flight that has no
   checkpoint yet, whose policy's ``interval_seconds`` has passed since its
   last one, or that would otherwise pass ``max_protection_interval``
   (forced one ``drlogic_interval`` early, since the next decision may come
   that much later) -- whatever the logic decides. A logic can checkpoint a
   group sooner, never later.
2. Every ``drlogic_interval``: builds the :class:`~liferaft.logic.contract.State`
   from the catalog (past checkpoints' capture and landing times and sizes,
   checkpoints in flight) and the LinkMonitor, calls the logic's ``decide``,
   starts the checkpoints it names while its ``max_concurrent_transfers``
   allows (the others wait for the next decision), and applies the
   replication ceiling (never above the link budget) and the backup flows'
   guaranteed rates through the LinkShaper, and publishes the image-copy
   flows' guaranteed rates with the ceiling's part left to them on the
   copier's live :class:`~liferaft.protection.pacing.RateBoard` (the copier
   re-reads it before every chunk). A logic that raises is logged
   with its error and that decision is taken by ``per-group-interval``;
   the configured logic is asked again at the next decision.
3. Every ``drlogic_clean_up_interval``: submits a ``cleanup`` workflow
   (retention, :mod:`liferaft.protection.cleanup`) for each group with
   something to prune and nothing in flight.

The latest decisions, with their reasons and what was done with each, are
kept for ``liferaft logic status`` and ``GET /v1/logic/status``. They are in
memory only: what matters after a restart (the checkpoints and clean-ups)
is in durable workflows, and the next decision comes within one interval.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from liferaft.config.model import DrLogicSettings
from liferaft.engine.states import WORKFLOW_TERMINAL
from liferaft.errors import LiferaftError, NotFound
from liferaft.links.port import LinkMonitor, LinkSample, LinkShaper, ShapeOrder
from liferaft.protection import cleanup
from liferaft.protection.model import Checkpoint, Group, Policy
from liferaft.protection.pacing import RateBoard
from liferaft.protection.service import ProtectionService, Submit

from .contract import (
    Carrier,
    CheckpointRecord,
    Decisions,
    DRLogic,
    GroupState,
    LinkState,
    State,
    TransferState,
)
from .per_group_interval import PerGroupInterval

log = logging.getLogger(__name__)

#: The logic a failing one falls back to (the best static schedule).
FALLBACK = "per-group-interval"
#: Past checkpoints a logic sees per group (oldest first).
HISTORY = 20
#: Forced checkpoints and clean-ups remembered for the status.
RECENT = 50


@dataclass
class Snapshot:
    """The catalog as one pass reads it: every checkpoint by group (oldest first), the policies.

    Two queries instead of several per group (docs/drlogic.md, bench/drloop.py).
    """

    checkpoints: dict[str, list[Checkpoint]]
    policies: dict[str, Policy]

    def of(self, g: Group) -> list[Checkpoint]:
        return self.checkpoints.setdefault(g.id, [])


class LogicLoop:
    """Runs one DR-Logic for this site's protection groups."""

    def __init__(
        self,
        settings: DrLogicSettings,
        *,
        protection: ProtectionService,
        monitor: LinkMonitor,
        shaper: LinkShaper,
        logic: DRLogic,
        fallback: DRLogic | None = None,
    ) -> None:
        self.settings = settings
        self.protection = protection
        self.catalog = protection.catalog
        self.store = protection.store
        self.site = protection.site
        self.monitor = monitor
        self.shaper = shaper
        self.logic = logic
        #: The copier's live rates (same process: the controller runs the loop and the copies).
        self.rates: RateBoard = protection.deps.rates
        self.fallback: DRLogic = fallback or PerGroupInterval()
        self._lock = threading.Lock()
        self._last_run: float | None = None
        self._last_published: float | None = None
        self._last_cleanup: float | None = None
        self._previous_ratio = 1.0
        self._sample: LinkSample | None = None
        self._cleaning: dict[str, str] = {}  # group id -> clean-up workflow id
        self._record: dict[str, Any] = {
            "logic": logic.name,
            "active": logic.name,
            "fell_back": False,
            "error": None,
            "error_at": None,
            "last_run_at": None,
            "last_cleanup_at": None,
            "link": None,
            "decisions": None,
        }
        self._forced: deque[dict[str, Any]] = deque(maxlen=RECENT)
        self._cleanups: deque[dict[str, Any]] = deque(maxlen=RECENT)

    @property
    def clock(self) -> Any:
        return self.protection.clock

    # -- the loop ------------------------------------------------------------------------
    def step(self, submit: Submit) -> list[Checkpoint]:
        """One pass (see the module docstring); returns the checkpoints started."""
        now = self.clock.now()
        groups = [g for g in self.catalog.list_groups(site=self.site) if g.volumes]
        snap = self.snapshot()
        busy = {g.id: self._busy(g, snap) for g in groups}
        started = []
        for g in groups:
            if busy[g.id]:
                continue
            reason = self._forced_reason(g, now, snap)
            if reason is not None:
                cp = self.protection.start_checkpoint(g, submit)
                started.append(cp)
                snap.of(g).append(cp)
                busy[g.id] = True
                with self._lock:
                    self._forced.append(
                        {"at": now, "group_id": g.id, "group": g.name, "reason": reason}
                    )
        interval = self.settings.drlogic_interval
        if self._last_run is None or now - self._last_run >= interval - 1e-9:
            self._last_run = now
            started += self._decide_and_apply(groups, busy, now, submit, snap)
        every = self.settings.drlogic_clean_up_interval
        if self._last_cleanup is None or now - self._last_cleanup >= every - 1e-9:
            self._last_cleanup = now
            self._clean_up(groups, busy, now, submit)
        return started

    def snapshot(self) -> Snapshot:
        by_group: dict[str, list[Checkpoint]] = defaultdict(list)
        for c in self.catalog.list_checkpoints():
            by_group[c.group_id].append(c)
        return Snapshot(dict(by_group), {p.name: p for p in self.catalog.list_policies()})

    def _policy(self, g: Group, snap: Snapshot) -> Policy:
        return snap.policies.get(g.policy) or self.catalog.get_policy(g.policy)

    def _busy(self, g: Group, snap: Snapshot) -> bool:
        running = False
        if any(c.state == "pending" for c in snap.of(g)):
            # Settles checkpoints whose workflow ended without completing (marked failed).
            running = self.protection.in_flight(g)
            snap.checkpoints[g.id] = self.catalog.list_checkpoints(group_id=g.id)
        wid = self._cleaning.get(g.id)
        if wid is not None:
            try:
                if self.store.get_workflow(wid).state in WORKFLOW_TERMINAL:
                    del self._cleaning[g.id]
                else:
                    running = True
            except NotFound:
                del self._cleaning[g.id]
        return running

    def _forced_reason(self, g: Group, now: float, snap: Snapshot) -> str | None:
        cps = snap.of(g)
        if not cps:
            return "first checkpoint: the group has no recovery point"
        since = now - cps[-1].requested_at
        policy = self._policy(g, snap)
        if since >= policy.interval_seconds:
            return (
                f"policy {policy.name!r}: {policy.interval_seconds:g} s since the last checkpoint"
            )
        limit = self.settings.max_protection_interval
        if since >= max(0.0, limit - self.settings.drlogic_interval):
            return (
                f"max_protection_interval: {since:.0f} s since the last checkpoint, "
                f"{limit:g} s at most"
            )
        return None

    # -- the state -------------------------------------------------------------------------
    def _link(self) -> tuple[LinkState, dict[str, Any]]:
        error = None
        try:
            self._sample = self.monitor.sample()
        except LiferaftError as err:
            error = f"{type(err).__name__}: {err}"
            log.warning("link monitor %s: %s", self.monitor.name, err)
        sample = self._sample or LinkSample(
            self.settings.link_capacity_mbps * 1e6 / 8.0, 0.0, None, "configured capacity"
        )
        state = LinkState(
            capacity_bps=sample.capacity_bps,
            app_traffic_bps=sample.app_traffic_bps,
            replication_bps=sample.replication_bps or 0.0,
            app_take_share=self.settings.app_take_share,
        )
        info = {
            "monitor": self.monitor.name,
            "source": sample.source,
            "capacity_bps": sample.capacity_bps,
            "app_traffic_bps": sample.app_traffic_bps,
            "replication_bps": sample.replication_bps,
            "budget_bps": state.budget_bps,
            "app_take_share": state.app_take_share,
            "error": error,
        }
        return state, info

    def checkpoint_bytes(self, c: Checkpoint) -> int:
        """What a checkpoint shipped.

        An image copy counts the bytes of the chunks it sent (exact). A
        backup: its data objects times the object size -- the backup service
        reports how many objects a backup wrote (one of them its metadata),
        and an incremental backup writes only changed chunks.
        """
        sent, objects = 0, 0
        for v in c.volumes.values():
            if not isinstance(v, dict):
                continue
            if isinstance(v.get("sent_bytes"), int):
                sent += v["sent_bytes"]
                continue
            count = v.get("object_count")
            if isinstance(count, int) and count > 1:
                objects += count - 1
        return sent + objects * self.settings.backup_object_bytes

    def group_state(
        self, g: Group, now: float, snap: Snapshot
    ) -> tuple[GroupState, list[TransferState]]:
        policy = self._policy(g, snap)
        cps = snap.of(g)
        # Who carries the group's data: Liferaft's own copier, or the backup service.
        carrier: Carrier = "image-copy" if policy.method == "image-copy" else "volume-backup"
        landed = sorted(
            (
                c
                for c in cps
                if c.state in ("complete", "pruned")
                and c.captured_at is not None
                and c.completed_at is not None
            ),
            key=lambda c: c.captured_at or 0.0,
        )
        rp = landed[-1].captured_at if landed else g.created_at
        assert rp is not None
        live = [c for c in cps if c.state == "pending"]
        captures = [c.captured_at or c.requested_at for c in cps if c.state != "failed"]
        last_capture = max(captures) if captures else g.created_at
        history = []
        prev = g.created_at
        for c in landed[-(HISTORY + 1) :]:
            cap = c.captured_at or 0.0
            history.append(
                CheckpointRecord(
                    capture_s=cap,
                    interval_s=max(0.0, cap - prev),
                    bytes=self.checkpoint_bytes(c),
                    completed_s=c.completed_at,
                )
            )
            prev = cap
        overheads = [(c.captured_at or 0.0) - c.requested_at for c in landed[-5:]]
        state = GroupState(
            group_id=g.id,
            target_s=policy.rpo_seconds,
            weight=1.0,
            overhead_s=max(0.0, sum(overheads) / len(overheads)) if overheads else 0.0,
            carrier=carrier,
            recovery_point_s=rp,
            last_capture_s=last_capture,
            history=tuple(history[-HISTORY:]),
            in_flight=len(live),
        )
        transfers = [
            TransferState(
                flow_id=c.id,
                group_id=g.id,
                carrier=carrier,
                capture_s=c.captured_at if c.captured_at is not None else now,
                predecessor_capture_s=rp,
                released=c.captured_at is not None,
                bytes_total=None,
                bytes_remaining=None,
            )
            for c in live
        ]
        return state, transfers

    def build_state(
        self, groups: list[Group], now: float, snap: Snapshot
    ) -> tuple[State, dict[str, Any]]:
        link, info = self._link()
        gs: list[GroupState] = []
        trs: list[TransferState] = []
        for g in groups:
            s, t = self.group_state(g, now, snap)
            gs.append(s)
            trs += t
        state = State(
            now_s=now,
            tick_s=self.settings.drlogic_interval,
            groups=tuple(gs),
            transfers=tuple(trs),
            link=link,
            previous_ratio=self._previous_ratio,
        )
        return state, info

    # -- deciding and applying -----------------------------------------------------------
    def _ask(self, state: State) -> tuple[Decisions | None, str]:
        """The configured logic's decisions, or the fallback's if it raises."""
        try:
            d = self.logic.decide(state)
            if not isinstance(d, Decisions):
                raise TypeError(f"decide() returned {type(d).__name__}, not Decisions")
            with self._lock:
                self._record.update(fell_back=False, error=None, error_at=None)
            return d, self.logic.name
        except Exception as err:
            log.error(
                "DR-Logic %r raised %s: %s; this decision falls back to %s",
                self.logic.name,
                type(err).__name__,
                err,
                FALLBACK,
                exc_info=True,
            )
            with self._lock:
                self._record.update(
                    fell_back=True, error=f"{type(err).__name__}: {err}", error_at=state.now_s
                )
        try:
            return self.fallback.decide(state), self.fallback.name
        except Exception:
            log.exception("the fallback DR-Logic %r raised too: only forced checkpoints", FALLBACK)
            return None, "none"

    def _decide_and_apply(
        self, groups: list[Group], busy: dict[str, bool], now: float, submit: Submit, snap: Snapshot
    ) -> list[Checkpoint]:
        state, link = self.build_state(groups, now, snap)
        decisions, used = self._ask(state)
        by_id = {g.id: g for g in groups}
        started: list[Checkpoint] = []
        orders: list[dict[str, Any]] = []
        if decisions is None:
            with self._lock:
                self._record.update(active=used, last_run_at=now, link=link, decisions=None)
            return started
        self._previous_ratio = decisions.ratio
        limit = decisions.max_concurrent_transfers
        running = sum(1 for g in groups for c in snap.of(g) if c.state == "pending")
        for o in decisions.checkpoints:
            g = by_id.get(o.group_id)
            entry = {"group_id": o.group_id, "group": g.name if g else None, "reason": o.reason}
            if g is None:
                entry["applied"] = "ignored: no such protected group at this site"
            elif busy.get(g.id):
                entry["applied"] = "ignored: a checkpoint or clean-up is in flight"
            elif limit is not None and running >= limit:
                entry["applied"] = f"deferred: {running} transfers in flight, at most {limit}"
            else:
                cp = self.protection.start_checkpoint(g, submit)
                started.append(cp)
                busy[g.id] = True
                running += 1
                entry["applied"] = f"started checkpoint {cp.id}"
            orders.append(entry)
        shaped, shape_error, ceiling = self._shape(decisions, state.link)
        own = self._publish(decisions, state, ceiling, used)
        record = {
            "at": now,
            "by": used,
            "checkpoints": orders,
            "flow_rates": [
                {**asdict(f), "applied": self._applied_by(f.carrier)} for f in decisions.flow_rates
            ],
            "image_copy_ceiling_bps": own,
            "replication_ceiling_bps": decisions.replication_ceiling_bps,
            "replication_ceiling_reason": decisions.replication_ceiling_reason,
            "applied_ceiling_bps": ceiling,
            "max_concurrent_transfers": limit,
            "ratio": decisions.ratio,
            "misses": [asdict(m) for m in decisions.misses],
            "shaper": self.shaper.name,
            "shaper_actions": shaped,
            "shaper_error": shape_error,
        }
        with self._lock:
            self._record.update(active=used, last_run_at=now, link=link, decisions=record)
        return started

    def _shape(self, d: Decisions, link: LinkState) -> tuple[list[str], str | None, float | None]:
        """Apply the ceiling (at most the link budget) and the backup flows' guarantees."""
        budget = link.budget_bps
        ceiling = (
            budget if d.replication_ceiling_bps is None else min(d.replication_ceiling_bps, budget)
        )
        reason = d.replication_ceiling_reason or "the link budget"
        order = ShapeOrder(
            ceiling_bps=ceiling,
            guaranteed_bps=tuple(
                (f.flow_id, f.rate_bps) for f in d.flow_rates if f.carrier == "volume-backup"
            ),
            reason=reason,
        )
        try:
            return self.shaper.apply(order), None, ceiling
        except LiferaftError as err:
            log.warning("link shaper %s: %s", self.shaper.name, err)
            return [], f"{type(err).__name__}: {err}", ceiling

    def _applied_by(self, carrier: Carrier) -> str:
        if carrier == "image-copy":
            return "published to the copier (read before every chunk)"
        return f"sent to the link shaper {self.shaper.name}"

    def _publish(
        self, d: Decisions, state: State, ceiling: float | None, used: str
    ) -> float | None:
        """Publish the image-copy flows' rates to the copier; returns their part of the ceiling.

        The ceiling covers every replication flow: the flows the backup service
        carries are guaranteed theirs first (the shaper enforces them), and
        Liferaft's own flows share what is left.
        """
        backup = sum(f.rate_bps for f in d.flow_rates if f.carrier == "volume-backup")
        own = None if ceiling is None else max(0.0, ceiling - backup)
        # Decisions come every drlogic_interval, or every tick if ticks are further apart:
        # a decision stays valid for the spacing actually seen, not one shorter.
        spacing = self.settings.drlogic_interval
        if self._last_published is not None:
            spacing = max(spacing, state.now_s - self._last_published)
        self._last_published = state.now_s
        self.rates.publish(
            at=state.now_s,
            interval_s=spacing,
            by=used,
            flows=[t.flow_id for t in state.transfers if t.carrier == "image-copy"],
            # A rate that is not a number >= 0 (a logic's bug) guarantees nothing.
            guarantees={
                f.flow_id: f.rate_bps if math.isfinite(f.rate_bps) and f.rate_bps > 0 else 0.0
                for f in d.flow_rates
                if f.carrier == "image-copy"
            },
            ceiling_bps=own,
            reason=d.replication_ceiling_reason or "the link budget",
        )
        return own

    def _clean_up(
        self, groups: list[Group], busy: dict[str, bool], now: float, submit: Submit
    ) -> None:
        for g in groups:
            if busy.get(g.id) or not cleanup.has_work(self.catalog, g, now):
                continue
            wid = f"cleanup-{g.id}-{now:.0f}"
            submit(cleanup.KIND, cleanup.params(g), wid)
            self._cleaning[g.id] = wid
            busy[g.id] = True
            with self._lock:
                self._cleanups.append(
                    {"at": now, "group_id": g.id, "group": g.name, "workflow_id": wid}
                )
        with self._lock:
            self._record["last_cleanup_at"] = now

    # -- reporting ---------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """The active logic, the latest decisions with reasons, RPO and compliance per group."""
        now = self.clock.now()
        out_groups = []
        snap = self.snapshot()
        for g in self.catalog.list_groups(site=self.site):
            policy = self._policy(g, snap)
            cps = snap.of(g)
            landed = [
                c.captured_at
                for c in cps
                if c.state in ("complete", "pruned") and c.captured_at is not None
            ]
            rp = max(landed) if landed else None
            rpo = now - (rp if rp is not None else g.created_at)
            out_groups.append(
                {
                    "id": g.id,
                    "name": g.name,
                    "policy": g.policy,
                    "target_s": policy.rpo_seconds,
                    "recovery_point_s": rp,
                    "rpo_s": rpo,
                    "ratio": rpo / policy.rpo_seconds,
                    "compliant": rp is not None and rpo <= policy.rpo_seconds,
                    "in_flight": sum(1 for c in cps if c.state == "pending"),
                    "last_checkpoint_at": cps[-1].requested_at if cps else None,
                }
            )
        with self._lock:
            rec = dict(self._record)
            rec["forced"] = list(self._forced)
            rec["cleanups"] = list(self._cleanups)
        # What the copier applies now (not only what was decided): its pace per flow.
        rec["image_copy"] = self.rates.view()
        rec.update(
            now=now,
            drlogic_interval=self.settings.drlogic_interval,
            drlogic_clean_up_interval=self.settings.drlogic_clean_up_interval,
            max_protection_interval=self.settings.max_protection_interval,
            groups=out_groups,
            compliant=all(g["compliant"] for g in out_groups),
            worst_ratio=max((g["ratio"] for g in out_groups), default=None),
        )
        return rec

    def close(self) -> None:
        for part in (self.monitor, self.shaper):
            try:
                part.close()
            except Exception:  # closing must not hide why we stop
                log.exception("closing %s", part.name)


def make_logic(name: str, create: Callable[..., Any]) -> DRLogic:
    """The configured logic, from the ``liferaft.logics`` plugins (``create`` is plugins.create)."""
    logic: DRLogic = create("logics", name, required_capabilities=("checkpoint-schedule",))
    return logic
