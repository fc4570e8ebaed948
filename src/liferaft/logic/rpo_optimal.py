"""``rpo-optimal``: as-late-as-possible checkpoints on a deadline plan of the link.

The objective, in order: every group within its RPO target; then the
least link and the least taken from applications; when the link cannot
carry every target, the smallest worst RPO ÷ target, saying who misses.

How, at every decision:

1. **Ratio.** ``r`` is the worst RPO ÷ target some group reaches by the
   next decision, at least 1. Once a group is that late the day's worst
   ratio is at least that, so every group may plan for it: the others
   defer and the link goes to those furthest behind.
2. **Deadlines.** A group whose newest capture is ``c`` must land its next
   checkpoint by ``c + r T (1 - m)``; a checkpoint in flight by its
   predecessor's capture plus the same. The margin ``m`` grows with the
   link's load (``margin`` x the groups' dirty rate over the budget,
   between ``margin_floor`` and 100 % of it): an idle link lands a transfer at once,
   only a busy one needs room for estimates that turn out short.
3. **Plan.** Every such job (the in-flight transfers with their bytes
   left, and each group's next checkpoint sized from the disks' write
   counters times the recent distinct/written ratio -- a burst shows at
   once -- or else from the history's dirty rate, with ``size_safety``)
   is placed **as late as possible** on the link, latest deadline first (a
   backward earliest-deadline-first plan). The plannable rate follows the
   application traffic's forecast profile (the budget, derated by
   ``derate``), minus a fluid reservation of each group's dirty rate after
   its next deadline (its later checkpoints).
4. **Capture** a group when its planned latest capture falls before the
   next decision: checkpoints as far apart as the plan allows, so fewer
   bytes are sent (overwritten pages ship once) and applications are
   quiesced less often. Not sooner than ``min_spacing`` of its
   (ratio-scaled) target after the previous capture unless its own
   deadline is near (a packed plan would otherwise ask for tiny
   increments), and never while one of its increments is still waiting
   and it is behind target.
5. **Rates.** Each transfer is guaranteed what lands it by its deadline,
   worst ratio first; the replication ceiling is the free headroom
   (``capacity - app``, costing applications nothing) unless a transfer is
   due now or the guarantees need more, and never above the budget.

Optional, off by default (measured no better; ``docs/drlogic.md``, "Known
limits"): ``horizons_s`` adds a horizon forecast
(:func:`liferaft.logic.horizon.forecast_ratio`, the smallest ratio whose
needs over each horizon fit the profile's budget); ``forecast_use="ratio"``
plans at the larger of it and the current worst, ``"spacing"`` uses it only
for the minimum spacing between a group's captures. ``size_model="curve"``
sizes the forecast's bytes to come by a curve ``D(L) = a·L^b`` fitted to
each group's checkpoints (:func:`liferaft.logic.estimate.fit_dirty_curve`)
over a steady cadence of pieces ``rT - overhead`` long, so longer pieces
coalesce overwrites (``curve_b_prior``: the exponent assumed while a
group's checkpoint intervals are too alike to learn it); ``"rate"`` (the
default) uses the history's rate.
"""

from __future__ import annotations

import bisect
import math

from liferaft.logic.contract import (
    Carrier,
    CheckpointOrder,
    Decisions,
    FlowRate,
    Miss,
    State,
    budget,
)
from liferaft.logic.estimate import dirty_now_and_rate, fit_dirty_curve
from liferaft.logic.horizon import Need, forecast_ratio


class RpoOptimal:
    """Deadline-planned, as-late-as-possible checkpoints with headroom-first rates."""

    name = "rpo-optimal"
    capabilities: frozenset[str] = frozenset(
        {"checkpoint-schedule", "rate-control", "overload-report"}
    )

    def __init__(
        self,
        *,
        derate: float = 0.9,
        size_safety: float = 1.25,
        margin: float = 0.15,
        min_spacing: float = 0.5,
        tick_margin: float = 0.0,
        margin_floor: float = 0.4,
        horizons_s: tuple[float, ...] = (),
        forecast_use: str = "ratio",
        size_model: str = "rate",
        curve_b_prior: float = 1.0,
    ) -> None:
        if not 0 < derate <= 1:
            raise ValueError(f"derate must be within (0, 1], not {derate}")
        if forecast_use not in ("ratio", "spacing"):
            raise ValueError(f"forecast_use must be 'ratio' or 'spacing', not {forecast_use!r}")
        if size_model not in ("rate", "curve"):
            raise ValueError(f"size_model must be 'rate' or 'curve', not {size_model!r}")
        if not 0 < curve_b_prior <= 1:
            raise ValueError(f"curve_b_prior must be within (0, 1], not {curve_b_prior}")
        if any(h <= 0 for h in horizons_s):
            raise ValueError(f"horizons_s must be positive durations, not {horizons_s}")
        self.derate = derate
        self.size_safety = size_safety
        self.margin = margin
        self.min_spacing = min_spacing
        self.tick_margin = tick_margin
        self.margin_floor = margin_floor
        self.horizons_s = tuple(horizons_s)
        self.forecast_use = forecast_use
        self.size_model = size_model
        self.curve_b_prior = curve_b_prior

    # -- planning ------------------------------------------------------------------------

    def _plan(
        self,
        state: State,
        r: float,
        est: list[tuple[float, float, float]],
        pending: list[list[tuple[str, float, float, float]]],
    ) -> tuple[bool, list[float], dict[str, float]]:
        """Backward EDF plan at ratio ``r``.

        Returns (feasible, latest capture time per group, latest start per flow).
        ``pending[i]`` lists group i's unlanded transfers as
        (flow_id, predecessor capture, bytes left, release time).
        """
        now = state.now_s
        margin = self.tick_margin * state.tick_s
        groups = state.groups
        link = state.link
        jobs: list[tuple[float, float, int, str]] = []  # (deadline, bytes, group index, flow)
        next_deadlines: list[tuple[float, float]] = []
        horizon = now
        late_work = 0.0
        late_flows: list[str] = []
        late_groups: list[int] = []
        soon = now + state.tick_s
        for i, g in enumerate(groups):
            rt = r * g.target_s
            for flow_id, pred, left, _release in pending[i]:
                d = pred + rt - margin
                if d < soon:
                    late_work += left
                    late_flows.append(flow_id)
                    continue
                jobs.append((d, left, i, flow_id))
                if d > horizon:
                    horizon = d
            d = g.last_capture_s + rt - margin
            now_bytes, rate, long_run = est[i]
            next_deadlines.append((d, long_run))
            if d < soon:
                late_work += now_bytes * self.size_safety
                late_groups.append(i)
                continue
            jobs.append((d, -1.0, i, ""))
            if d > horizon:
                horizon = d
        # segments of the plannable rate
        step_s = link.app_profile_step_s
        profile = link.app_profile_bps
        pts = [now]
        k = 1
        while profile and now + k * step_s < horizon and k < len(profile):
            pts.append(now + k * step_s)
            k += 1
        next_deadlines.sort()
        pts.extend(d for d, _ in next_deadlines if now < d < horizon)
        pts.append(horizon + 1.0)
        pts.sort()
        cap = link.capacity_bps
        share = link.app_take_share
        bud_now = link.budget_bps
        seg_rate: list[float] = []
        cum = [0.0]
        reserved = 0.0
        ri = 0
        nd = len(next_deadlines)
        for j in range(len(pts) - 1):
            p = pts[j]
            while ri < nd and next_deadlines[ri][0] <= p:
                reserved += next_deadlines[ri][1]
                ri += 1
            if j == 0 or not profile:
                b = bud_now
            else:
                idx = min(len(profile) - 1, int((p - now) // step_s))
                b = budget(cap, profile[idx], share)
            rate = max(0.0, self.derate * b - reserved)
            seg_rate.append(rate)
            cum.append(cum[-1] + rate * (pts[j + 1] - p))

        def cum_at(t: float) -> float:
            if t <= now:
                return 0.0
            j = bisect.bisect_right(pts, t) - 1
            if j >= len(seg_rate):
                return cum[-1]
            return cum[j] + seg_rate[j] * (t - pts[j])

        def time_at(u: float) -> float:
            j = bisect.bisect_right(cum, u) - 1
            j = min(max(j, 0), len(seg_rate) - 1)
            rate = seg_rate[j]
            if rate <= 0:
                return pts[j]
            return pts[j] + (u - cum[j]) / rate

        # Jobs already past their deadline at this ratio run first, as soon as
        # possible; the rest must fit after them.
        jobs.sort(key=lambda job: job[0], reverse=True)
        frontier = math.inf
        latest_capture = [math.inf] * len(groups)
        latest_start: dict[str, float] = {}
        safety = self.size_safety
        for d, w, i, flow_id in jobs:
            end = min(frontier, cum_at(d))
            if flow_id:
                frontier = end - w
                latest_start[flow_id] = time_at(frontier) if frontier > 0 else now
                continue
            # a checkpoint not yet taken grows until it is captured: size it at
            # its latest capture, found by one fixed-point step from the largest size
            now_bytes, rate, _ = est[i]
            over = groups[i].overhead_s
            w_max = (now_bytes + rate * max(0.0, d - over - now)) * safety
            start = time_at(end - w_max) if end - w_max > 0 else now
            w = (now_bytes + rate * max(0.0, start - over - now)) * safety
            frontier = end - w
            start = time_at(frontier) if frontier > 0 else now
            latest_capture[i] = start - over
        for flow_id in late_flows:
            latest_start[flow_id] = now
        for i in late_groups:
            latest_capture[i] = now - groups[i].overhead_s
        feasible = frontier >= late_work - 1e-6
        return feasible, latest_capture, latest_start

    # -- the decision --------------------------------------------------------------------

    def decide(self, state: State) -> Decisions:
        now = state.now_s
        tick = state.tick_s
        groups = state.groups
        link = state.link
        index = {g.group_id: i for i, g in enumerate(groups)}
        est = [dirty_now_and_rate(g, now) for g in groups]
        pending: list[list[tuple[str, float, float, float]]] = [[] for _ in groups]
        busy = [False] * len(groups)
        for tr in state.transfers:
            i = index.get(tr.group_id)
            if i is None:
                continue
            if tr.released and tr.bytes_remaining is not None:
                left = float(tr.bytes_remaining)
                release = tr.capture_s
            else:
                left = (
                    max(est[i][1], est[i][2])
                    * (tr.capture_s - tr.predecessor_capture_s)
                    * self.size_safety
                )
                release = tr.capture_s + groups[i].overhead_s
                busy[i] = True
            pending[i].append((tr.flow_id, tr.predecessor_capture_s, left, release))

        # The ratio r: the worst RPO / target some group will reach by the next
        # decision (never below 1). Once a group is that late the worst ratio
        # of the day is at least that, so every group may use it: the others
        # then defer, and the link goes to those furthest behind. Decisions
        # follow the plan at r * (1 - margin), so a transient overflow (a
        # burst, an estimate off) eats into the margin before the targets.
        r = 1.0
        for g in groups:
            r = max(r, (now + tick - g.recovery_point_s) / g.target_s)
        # Optional horizon forecast: how far behind the link *will* be.
        r_ahead = 1.0
        if self.horizons_s:
            ahead = [
                Need(
                    g.target_s,
                    g.recovery_point_s,
                    g.last_capture_s,
                    est[i][2],
                    sum(p[2] for p in pending[i]),
                    fit_dirty_curve(g.history, b_prior=self.curve_b_prior)
                    if self.size_model == "curve"
                    else None,
                    g.overhead_s,
                )
                for i, g in enumerate(groups)
            ]
            for h in self.horizons_s:
                r_ahead = max(r_ahead, forecast_ratio(ahead, link, now, h))
            if self.forecast_use == "ratio":
                r = max(r, r_ahead)
        r_space = max(r, r_ahead)
        # The margin grows with the load: an idle link lands a transfer at once,
        # so only a busy one needs room for estimates that turn out short.
        load = sum(e[2] for e in est) / max(1.0, link.budget_bps)
        margin = self.margin * min(1.0, max(self.margin_floor, load))
        keep = 1.0 - margin
        _, latest_capture, latest_start = self._plan(state, r * keep, est, pending)

        orders = []
        for i, g in enumerate(groups):
            # One checkpoint queued behind another at most, and none while
            # behind target: an increment taken while the previous one still
            # waits ships pages the later one would have shipped anyway.
            if busy[i] or len(pending[i]) >= 2 or (pending[i] and r > 1.0):
                continue
            if latest_capture[i] >= now + tick:
                continue
            # A packed plan can ask for a capture right after the previous one
            # (the link is spoken for until the deadlines): unless the group's
            # own deadline is near, wait for at least ``min_spacing`` of its
            # ratio-scaled target -- tiny increments only cost bytes and quiesces.
            since = now - g.last_capture_s
            if since < self.min_spacing * r_space * g.target_s:
                own_latest = (
                    g.last_capture_s
                    + r * keep * g.target_s
                    - 2 * tick
                    - g.overhead_s
                    - est[i][0] * self.size_safety / max(1.0, link.budget_bps)
                )
                if own_latest >= now + tick:
                    continue
            orders.append(
                CheckpointOrder(
                    g.group_id,
                    f"latest safe capture {latest_capture[i] - now:+.0f} s "
                    f"for ratio {r:.2f}; ~{est[i][0]:.3g} B dirty, ~{est[i][1]:.3g} B/s",
                )
            )

        # Rates: each released transfer needs what lands it by its deadline.
        # The ceiling is the free headroom unless a transfer is due now or the
        # needs exceed it; guarantees go out worst ratio first (the group whose
        # RPO / target is highest while this transfer is unlanded), so when the
        # link falls short it is the furthest-behind groups that move.
        needs: list[tuple[float, float, str, Carrier, int]] = []
        need_total = 0.0
        urgent = False
        for tr in state.transfers:
            i = index.get(tr.group_id)
            if i is None or not tr.released or tr.bytes_remaining is None:
                continue
            g = groups[i]
            deadline = tr.predecessor_capture_s + r * keep * g.target_s - self.tick_margin * tick
            slack = max(tick, deadline - now)
            need = tr.bytes_remaining / slack
            if latest_start.get(tr.flow_id, math.inf) < now + tick:
                urgent = True
            need_total += need
            behind = (now - tr.predecessor_capture_s) / g.target_s
            needs.append((behind, need, tr.flow_id, g.carrier, tr.bytes_remaining))
        bud = link.budget_bps
        head = link.headroom_bps
        if urgent:
            ceiling, why = bud, "a transfer is due now: full budget"
        elif need_total * 1.2 > head:
            ceiling, why = min(bud, need_total * 1.2), "guarantees exceed the free headroom"
        else:
            ceiling, why = min(bud, head), "free headroom only"
        needs.sort(key=lambda n: n[0], reverse=True)
        left = ceiling
        flow_rates = []
        for behind, need, flow_id, carrier, remaining in needs:
            give = min(need, left)
            left -= give
            flow_rates.append(
                FlowRate(
                    flow_id,
                    carrier,
                    give,
                    f"{remaining} B left at RPO {behind:.2f}x target",
                )
            )

        dirty_total = sum(e[2] for e in est)
        why_miss = (
            f"groups dirty ~{dirty_total / 1e6:.1f} MB/s against a budget of "
            f"{link.budget_bps / 1e6:.1f} MB/s now; planning every group for "
            f"RPO <= {r:.2f}x target, the furthest behind served first"
        )
        misses = tuple(
            Miss(g.group_id, (now - g.recovery_point_s) / g.target_s, why_miss)
            for g in groups
            if r > 1.0 and now - g.recovery_point_s > g.target_s
        )
        return Decisions(
            checkpoints=tuple(orders),
            flow_rates=tuple(flow_rates),
            replication_ceiling_bps=ceiling,
            replication_ceiling_reason=why,
            ratio=r,
            misses=misses,
        )
