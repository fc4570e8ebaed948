"""Replay a DR-Logic over a simulated day: a deterministic discrete-event simulation.

Time is virtual. Every ``tick_s`` (the controller's ``drlogic_interval``)
the simulator builds a :class:`~liferaft.logic.contract.State` from what a
controller could measure, calls the logic, and applies its decisions;
between decisions the link is a fluid model advanced event by event
(transfers released, transfers landed), so landing times are exact.

Model, the same for every logic:

* A checkpoint ordered at ``t`` is **captured at** ``t``. Its quiesce and
  snapshot take the group's ``overhead_s``; then its transfer of
  ``D(previous capture, t)`` bytes (:mod:`liferaft.logic.dirty`) is
  released. A group's checkpoints land in capture order (each is an
  increment on the previous one); only the oldest unlanded one of a group
  moves. An order for a group whose previous checkpoint is still in its
  overhead is ignored.
* The **link budget** at each tick is ``capacity - (1 - take_share) * app``
  for the application demand ``app`` of that tick; replication flows
  together never exceed it, nor the logic's ceiling. Each transfer gets its
  guaranteed rate (scaled down if they add up to more than the ceiling);
  the rest of the ceiling is shared equally among the running transfers
  (at most ``max_concurrent_transfers``: listed flows first, then the
  oldest). Replication beyond ``capacity - app`` is taken from the
  applications: ``app_traffic_lost_share`` is those bytes over the
  application demand.
* The **RPO** of a group at ``t`` is ``t -`` the capture time of its newest
  landed checkpoint; a baseline is landed at time 0. Its worst value comes
  just before a landing or at the end of the day.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from liferaft.logic.contract import (
    Carrier,
    CheckpointRecord,
    Decisions,
    DRLogic,
    GroupState,
    LinkState,
    State,
    TransferState,
    budget,
)
from liferaft.logic.dirty import WindowTrace

HISTORY = 8


@dataclass(frozen=True)
class SimGroup:
    """A protection group of the simulation (units: seconds)."""

    group_id: str
    target_s: float
    weight: float
    overhead_s: float
    carrier: Carrier
    trace: WindowTrace


@dataclass(frozen=True)
class SimLink:
    """The link: capacity, application demand per tick, take share and a daily forecast.

    ``app_bps[i]`` is the application demand during tick ``i``;
    ``app_profile_bps`` a forecast in steps of ``profile_step_s`` from time 0
    covering at least the horizon plus a day.
    """

    capacity_bps: float
    app_bps: tuple[float, ...]
    app_take_share: float
    app_profile_bps: tuple[float, ...]
    profile_step_s: float

    def budget_at_tick(self, i: int) -> float:
        return budget(self.capacity_bps, self.app_bps[i], self.app_take_share)


@dataclass
class _Ckpt:
    flow_id: str
    capture: float
    pred: float
    release: float
    total: float = -1.0
    remaining: float = -1.0
    record_index: int = -1
    state: TransferState | None = None


@dataclass
class _G:
    spec: SimGroup
    rp: float = 0.0
    last_capture: float = 0.0
    seq: int = 0
    queue: deque[_Ckpt] = field(default_factory=deque)
    records: list[CheckpointRecord] = field(default_factory=list)
    worst_rpo: float = 0.0
    bytes_sent: float = 0.0
    checkpoints: int = 0
    violations: list[tuple[float, float]] = field(default_factory=list)
    cached: tuple[CheckpointRecord, ...] | None = None
    written_at_capture: float = 0.0
    written_prev: float = 0.0
    written_prev_next: float = 0.0


@dataclass(frozen=True)
class GroupOutcome:
    group_id: str
    worst_rpo_s: float
    ratio: float
    checkpoints: int
    bytes_sent: float


@dataclass(frozen=True)
class SimResult:
    """What one replay measured (see :func:`replay`)."""

    logic: str
    groups: tuple[GroupOutcome, ...]
    within_target_share: float
    bytes_sent: float
    app_traffic_lost_share: float
    app_traffic_lost_share_allowed: float
    max_replication_over_budget_bps: float
    ignored_orders: int
    final_ratio: float
    #: The worst RPO ÷ target reached by each time of ``report_at`` (any group).
    worst_ratio_at: tuple[float, ...] = ()

    @property
    def ratios(self) -> list[float]:
        return [g.ratio for g in self.groups]


def percentile(values: list[float], q: float) -> float:
    """The ``q``-quantile (0..1) by the nearest-rank method."""
    if not values:
        return 0.0
    s = sorted(values)
    k = min(len(s) - 1, max(0, int(-(-q * len(s) // 1)) - 1))
    return s[k]


def replay(
    logic: DRLogic,
    groups: list[SimGroup],
    link: SimLink,
    horizon_s: float,
    tick_s: float,
    initial_history: dict[str, tuple[CheckpointRecord, ...]] | None = None,
    report_at: tuple[float, ...] = (),
) -> SimResult:
    """Run ``logic`` over ``[0, horizon_s]`` and measure RPOs, bytes and application loss.

    ``report_at``: times (on tick boundaries) at which to note the worst
    RPO ÷ target reached so far, to compare with the bound of a shorter day.
    """
    n_ticks = round(horizon_s / tick_s)
    if abs(n_ticks * tick_s - horizon_s) > 1e-6 or len(link.app_bps) < n_ticks:
        raise ValueError("horizon must be whole ticks and app_bps must cover every tick")
    gs = [_G(spec=g) for g in groups]
    for g in gs:
        g.written_at_capture = g.spec.trace.written_upto(0.0)
        g.written_prev = g.spec.trace.written_upto(-tick_s)
        if initial_history and g.spec.group_id in initial_history:
            g.records = list(initial_history[g.spec.group_id])
    by_id = {g.spec.group_id: g for g in gs}
    cap = link.capacity_bps
    app_total = app_lost = app_lost_allowed = 0.0
    over_budget = 0.0
    ignored = 0
    ratio = 1.0
    last_repl = 0.0
    steps_per_profile = link.profile_step_s
    profile_len = max(1, round(86400.0 / steps_per_profile))

    report = {round(x / tick_s): x for x in report_at}
    worst_at: list[float] = []
    for i in range(n_ticks):
        t = i * tick_s
        if i in report:
            worst_at.append(max(max(g.worst_rpo, t - g.rp) / g.spec.target_s for g in gs))
        app = link.app_bps[i]
        bud = link.budget_at_tick(i)
        # --- state
        group_states = []
        transfers: list[TransferState] = []
        for g in gs:
            for c in g.queue:
                if c.release <= t and c.total < 0:
                    _materialize(g, c)
            if g.cached is None:
                g.cached = tuple(g.records[-HISTORY:])
            w_now = g.spec.trace.written_upto(t)
            g.written_prev_next = w_now
            group_states.append(
                GroupState(
                    g.spec.group_id,
                    g.spec.target_s,
                    g.spec.weight,
                    g.spec.overhead_s,
                    g.spec.carrier,
                    g.rp,
                    g.last_capture,
                    g.cached,
                    len(g.queue),
                    round(w_now - g.written_at_capture),
                    (w_now - g.written_prev) / tick_s,
                )
            )
            for c in g.queue:
                released = c.release <= t
                ts = c.state
                if (
                    ts is None
                    or ts.released != released
                    or (released and ts.bytes_remaining != round(c.remaining))
                ):
                    ts = c.state = TransferState(
                        flow_id=c.flow_id,
                        group_id=g.spec.group_id,
                        carrier=g.spec.carrier,
                        capture_s=c.capture,
                        predecessor_capture_s=c.pred,
                        released=released,
                        bytes_total=round(c.total) if released else None,
                        bytes_remaining=round(c.remaining) if released else None,
                    )
                transfers.append(ts)
        p0 = int(t // steps_per_profile)
        profile = link.app_profile_bps[p0 : p0 + profile_len]
        state = State(
            now_s=t,
            tick_s=tick_s,
            groups=tuple(group_states),
            transfers=tuple(transfers),
            link=LinkState(
                capacity_bps=cap,
                app_traffic_bps=app,
                replication_bps=last_repl,
                app_take_share=link.app_take_share,
                app_profile_bps=tuple(profile),
                app_profile_step_s=steps_per_profile,
            ),
            previous_ratio=ratio,
        )
        dec: Decisions = logic.decide(state)
        ratio = dec.ratio
        # --- checkpoints
        for order in dec.checkpoints:
            og = by_id.get(order.group_id)
            if og is None or (og.queue and og.queue[-1].release > t):
                ignored += 1
                continue
            g = og
            g.seq += 1
            g.queue.append(
                _Ckpt(
                    flow_id=f"{g.spec.group_id}#{g.seq}",
                    capture=t,
                    pred=g.last_capture,
                    release=t + g.spec.overhead_s,
                )
            )
            g.last_capture = t
            g.written_at_capture = g.written_prev_next
            g.checkpoints += 1
            g.cached = None
        # --- fluid advance over [t, t + tick)
        ceiling = (
            bud if dec.replication_ceiling_bps is None else min(bud, dec.replication_ceiling_bps)
        )
        ceiling = max(0.0, ceiling)
        guaranteed = {fr.flow_id: max(0.0, fr.rate_bps) for fr in dec.flow_rates}
        order_rank = {fr.flow_id: k for k, fr in enumerate(dec.flow_rates)}
        limit = dec.max_concurrent_transfers
        now = t
        end = t + tick_s
        repl_bytes_tick = 0.0
        while now < end - 1e-9:
            # release what is due and pick the running transfers
            heads: list[tuple[_G, _Ckpt]] = []
            next_release = end
            for g in gs:
                if not g.queue:
                    continue
                c = g.queue[0]
                if c.release <= now + 1e-9:
                    if c.total < 0:
                        _materialize(g, c)
                    heads.append((g, c))
                elif c.release < next_release:
                    next_release = c.release
            # zero-byte transfers land at once
            landed_now = [(g, c) for g, c in heads if c.remaining <= 1e-6]
            for g, c in landed_now:
                _land(g, c, now)
            if landed_now:
                continue
            if limit is not None and len(heads) > limit:
                heads.sort(key=lambda gc: (order_rank.get(gc[1].flow_id, 1 << 30), gc[1].release))
                heads = heads[: max(0, limit)]
            rates: list[float] = []
            if heads and ceiling > 0:
                gsum = sum(guaranteed.get(c.flow_id, 0.0) for _, c in heads)
                scale = 1.0 if gsum <= ceiling else ceiling / gsum
                spare = max(0.0, ceiling - gsum * scale) / len(heads)
                rates = [guaranteed.get(c.flow_id, 0.0) * scale + spare for _, c in heads]
            else:
                rates = [0.0] * len(heads)
            dt = min(end, next_release) - now
            for (_, c), r in zip(heads, rates, strict=True):
                if r > 0 and c.remaining / r < dt:
                    dt = c.remaining / r
            dt = max(dt, 0.0)
            total_rate = sum(rates)
            for (g, c), r in zip(heads, rates, strict=True):
                moved = r * dt
                c.remaining -= moved
                g.bytes_sent += moved
            repl_bytes_tick += total_rate * dt
            app_total += app * dt
            app_lost += max(0.0, app + total_rate - cap) * dt
            app_lost_allowed += min(app, max(0.0, app + bud - cap)) * dt
            over_budget = max(over_budget, total_rate - bud)
            now += dt
            for g, c in heads:
                if c.remaining <= 1e-6 * max(1.0, c.total):
                    _land(g, c, now)
        last_repl = repl_bytes_tick / tick_s
        for g in gs:
            g.written_prev = g.written_prev_next

    outcomes = []
    for g in gs:
        rpo_end = horizon_s - g.rp
        g.worst_rpo = max(g.worst_rpo, rpo_end)
        if rpo_end > g.spec.target_s:
            g.violations.append((g.rp + g.spec.target_s, horizon_s))
        outcomes.append(
            GroupOutcome(
                group_id=g.spec.group_id,
                worst_rpo_s=g.worst_rpo,
                ratio=g.worst_rpo / g.spec.target_s,
                checkpoints=g.checkpoints,
                bytes_sent=g.bytes_sent,
            )
        )
    intervals = sorted(v for g in gs for v in g.violations)
    violated = 0.0
    cur_s = cur_e = -1.0
    for s, e in intervals:
        if s > cur_e:
            violated += max(0.0, cur_e - cur_s)
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    violated += max(0.0, cur_e - cur_s)
    return SimResult(
        logic=logic.name,
        groups=tuple(outcomes),
        within_target_share=1.0 - violated / horizon_s,
        bytes_sent=sum(g.bytes_sent for g in gs),
        app_traffic_lost_share=app_lost / app_total if app_total else 0.0,
        app_traffic_lost_share_allowed=app_lost_allowed / app_total if app_total else 0.0,
        max_replication_over_budget_bps=max(0.0, over_budget),
        ignored_orders=ignored,
        final_ratio=ratio,
        worst_ratio_at=tuple(worst_at),
    )


def _materialize(g: _G, c: _Ckpt) -> None:
    """The snapshot is taken: its incremental size is now known."""
    c.total = g.spec.trace.dirty(c.pred, c.capture)
    c.remaining = c.total
    g.records.append(
        CheckpointRecord(
            capture_s=c.capture,
            interval_s=c.capture - c.pred,
            bytes=round(c.total),
            written_bytes=round(g.spec.trace.written_between(c.pred, c.capture)),
        )
    )
    c.record_index = len(g.records) - 1
    g.cached = None


def _land(g: _G, c: _Ckpt, when: float) -> None:
    rpo = when - g.rp
    if rpo > g.worst_rpo:
        g.worst_rpo = rpo
    if rpo > g.spec.target_s:
        g.violations.append((g.rp + g.spec.target_s, when))
    g.rp = c.capture
    g.queue.popleft()
    if c.record_index >= 0:
        r = g.records[c.record_index]
        g.records[c.record_index] = CheckpointRecord(
            r.capture_s, r.interval_s, r.bytes, when, r.written_bytes
        )
    g.cached = None
