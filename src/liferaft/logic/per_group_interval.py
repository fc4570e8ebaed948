"""``per-group-interval``: each group on its own fixed period -- the best static schedule.

Each group is checkpointed every ``P_g`` seconds, at phase ``phi_g``
(first capture at ``phi_g``, then every ``P_g``). The period is meant to be
the longest that keeps the group within its target on its own trace with
the link uncontended; the benchmark computes it from the trace
(:func:`calibrate_period`) and passes it in. Without one the logic derives
it from the group's history: the longest ``P`` with
``P + overhead + rate * P / budget <= target``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from liferaft.logic.contract import CheckpointOrder, Decisions, State
from liferaft.logic.dirty import WindowTrace
from liferaft.logic.estimate import dirty_rate


class PerGroupInterval:
    """Checkpoint each group on its own period (``periods``: group -> (period_s, phase_s))."""

    name = "per-group-interval"
    capabilities: frozenset[str] = frozenset({"checkpoint-schedule"})

    def __init__(self, periods: Mapping[str, tuple[float, float]] | None = None) -> None:
        self.periods = dict(periods or {})

    def decide(self, state: State) -> Decisions:
        now = state.now_s
        orders = []
        bud = max(1.0, state.link.budget_bps)
        for g in state.groups:
            if g.group_id in self.periods:
                period, phase = self.periods[g.group_id]
            else:
                rate = dirty_rate(g.history)
                period = max(state.tick_s, (g.target_s - g.overhead_s) / (1.0 + rate / bud))
                phase = period
            due = phase if g.last_capture_s <= 0.0 else g.last_capture_s + period
            if now >= due - 1e-9:
                orders.append(CheckpointOrder(g.group_id, f"period {period:g} s is due"))
        return Decisions(checkpoints=tuple(orders))


def calibrate_period(
    trace: WindowTrace,
    target_s: float,
    overhead_s: float,
    budget_bps: Callable[[float], float],
    horizon_s: float,
    tick_s: float,
    phase_fraction: float,
) -> tuple[float, float]:
    """The longest period (whole ticks) keeping the group within target alone on the link.

    Checkpoints at ``phase, phase + P, ...`` (``phase`` = ``phase_fraction``
    of ``P``, rounded to a tick); each ships ``D`` since the previous one at
    the budget in force when it is released, and must land before the RPO
    exceeds the target. Returns ``(period_s, phase_s)``.
    """
    p_ticks = int((target_s - overhead_s) // tick_s)
    while p_ticks > 1:
        period = p_ticks * tick_s
        phase = max(1, round(phase_fraction * p_ticks)) * tick_s
        if _fits(trace, target_s, overhead_s, budget_bps, horizon_s, period, phase):
            return period, phase
        p_ticks -= 1
    return tick_s, tick_s


def _fits(
    trace: WindowTrace,
    target_s: float,
    overhead_s: float,
    budget_bps: Callable[[float], float],
    horizon_s: float,
    period: float,
    phase: float,
) -> bool:
    prev = 0.0
    c = phase
    while c < horizon_s:
        release = c + overhead_s
        rate = budget_bps(release)
        if rate <= 0:
            return False
        landed = release + trace.dirty(prev, c) / rate
        if landed - prev > target_s and prev + target_s < horizon_s:
            return False
        prev = c
        c += period
    return horizon_s - prev <= target_s
