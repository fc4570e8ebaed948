"""A horizon forecast of the worst RPO ÷ target a link can hold.

Model-predictive in spirit: at a decision, for a horizon ``H`` ahead, the
smallest ratio ``r`` such that what every group must land by ``now + H``
fits the link's forecast budget over ``[now, now + H]``. A group whose
recovery point must reach ``now + H - rT`` by then has to ship its bytes
in flight and what it dirties from its newest capture up to that point,
at its dirty rate (from its history); a group with ``now + H - rT`` before
its recovery point needs nothing. The budget over the horizon follows the
application profile. This is the lower bound's window test
(:mod:`liferaft.logic.bound`) applied to the forecast from ``now`` instead
of the trace -- what a controller knows: history, transfers in flight and
the profile.

It says how far behind the link *will* be, not only how far behind it is:
a logic that plans for the current worst ratio while the deficit builds
keeps cutting short pieces (every overwritten page shipped again) at a
fraction of the ratio the horizon ends at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from liferaft.logic.contract import LinkState, budget
from liferaft.logic.estimate import DirtyCurve

#: Shortest checkpoint piece the cadence forecast assumes (seconds).
MIN_PIECE_S = 60.0


@dataclass(frozen=True, slots=True)
class Need:
    """One group as the forecast sees it.

    ``rate_bps`` is its dirty rate, ``in_flight_bytes`` what its unlanded
    transfers still carry (or are estimated to carry). With a ``curve``
    (and the checkpoint ``overhead_s``) its bytes to come are those of a
    steady cadence of pieces ``rT - overhead`` long, sized by the curve
    (longer pieces coalesce overwrites) instead of the rate x the span.
    """

    target_s: float
    recovery_point_s: float
    last_capture_s: float
    rate_bps: float
    in_flight_bytes: float
    curve: DirtyCurve | None = None
    overhead_s: float = 0.0


def budget_over(link: LinkState, now_s: float, horizon_s: float, derate: float) -> float:
    """Bytes the link's budget carries over ``[now, now + horizon]`` (profile-following).

    The first profile step uses the measured budget; later ones the profile
    (the current budget throughout when there is no profile).
    """
    if horizon_s <= 0:
        return 0.0
    step = link.app_profile_step_s
    profile = link.app_profile_bps
    if not profile or step <= 0:
        return derate * link.budget_bps * horizon_s
    total = 0.0
    t = 0.0
    k = 0
    while t < horizon_s:
        dt = min(step, horizon_s - t)
        if k == 0:
            b = link.budget_bps
        else:
            b = budget(link.capacity_bps, profile[min(k, len(profile) - 1)], link.app_take_share)
        total += b * dt
        t += dt
        k += 1
    return derate * total


def bytes_needed(needs: Sequence[Need], now_s: float, horizon_s: float, ratio: float) -> float:
    """Bytes that must land by ``now + horizon`` for every group to be within ``ratio``."""
    end = now_s + horizon_s
    total = 0.0
    for n in needs:
        due = end - ratio * n.target_s
        if due <= n.recovery_point_s:
            continue
        span = max(0.0, due - n.last_capture_s)
        if n.curve is None:
            total += n.in_flight_bytes + n.rate_bps * span
        else:
            # The pieces are at least a minute long: a cadence never cuts finer.
            piece = max(MIN_PIECE_S, ratio * n.target_s - n.overhead_s)
            total += n.in_flight_bytes + n.curve.cadence_bytes(span, piece)
    return total


def forecast_ratio(
    needs: Sequence[Need],
    link: LinkState,
    now_s: float,
    horizon_s: float,
    *,
    derate: float = 1.0,
    ceiling: float = 1000.0,
) -> float:
    """The smallest ratio (at least 1) whose needs over the horizon fit the budget.

    Bisection: the bytes needed fall as the ratio grows. ``ceiling`` when
    even that ratio does not fit.
    """
    have = budget_over(link, now_s, horizon_s, derate)
    if bytes_needed(needs, now_s, horizon_s, 1.0) <= have:
        return 1.0
    if bytes_needed(needs, now_s, horizon_s, ceiling) > have:
        return ceiling
    lo, hi = 1.0, ceiling
    while hi - lo > 1e-3 * lo:
        mid = 0.5 * (lo + hi)
        if bytes_needed(needs, now_s, horizon_s, mid) <= have:
            hi = mid
        else:
            lo = mid
    return hi
