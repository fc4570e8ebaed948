"""The true optimum of tiny instances: every capture schedule on the tick grid, EDF transfers.

Used only to check the lower bound. For a fixed set of capture times a
group's checkpoint ``i`` is released at ``c_i + o`` with
``D(c_{i-1}, c_i)`` bytes and must land by ``c_{i-1} + r T`` (while the
RPO would otherwise exceed ``r T``) when that is before the horizon;
after its last required landing the group needs no more. With one link of
constant rate, preemptive earliest-deadline-first is an optimal
transfer schedule, so it decides feasibility exactly; the smallest ``r``
comes from bisection (feasibility only grows with ``r``).
"""

from __future__ import annotations

import itertools

from liferaft.logic.dirty import WindowTrace

Group = tuple[float, float, WindowTrace]  # target, overhead, trace


def _jobs(groups: list[Group], caps: tuple[tuple[float, ...], ...], r: float, horizon: float):
    jobs = []
    for (target, over, trace), cs in zip(groups, caps, strict=True):
        prev = 0.0
        covered = False
        for c in cs:
            deadline = prev + r * target
            if deadline >= horizon:
                covered = True
                break
            jobs.append((c + over, trace.dirty(prev, c), deadline))
            prev = c
        if not covered and prev + r * target < horizon:
            return None  # the RPO passes r T before the horizon whatever the link does
    return jobs


def _edf_ok(jobs: list[tuple[float, float, float]], rate: float) -> bool:
    pending = sorted(jobs)
    active: list[list[float]] = []  # [deadline, remaining]
    t = 0.0
    i = 0
    while i < len(pending) or active:
        if not active:
            t = max(t, pending[i][0])
        while i < len(pending) and pending[i][0] <= t + 1e-12:
            active.append([pending[i][2], pending[i][1]])
            i += 1
        active.sort()
        nxt = pending[i][0] if i < len(pending) else float("inf")
        job = active[0]
        finish = t + job[1] / rate
        if finish <= nxt:
            t = finish
            if t > job[0] + 1e-9:
                return False
            active.pop(0)
        else:
            job[1] -= (nxt - t) * rate
            t = nxt
    return True


def optimum(groups: list[Group], rate: float, horizon: float, tick: float) -> float:
    """The smallest worst RPO ÷ target of any schedule capturing on the tick grid."""
    points = [k * tick for k in range(1, round(horizon / tick))]
    subsets = [tuple(s) for n in range(len(points) + 1) for s in itertools.combinations(points, n)]
    best = float("inf")
    for caps in itertools.product(subsets, repeat=len(groups)):
        lo, hi = 0.0, min(best, 64.0)

        def ok(r: float, caps=caps) -> bool:
            jobs = _jobs(groups, caps, r, horizon)
            return jobs is not None and _edf_ok(jobs, rate)

        if not ok(hi):
            continue
        for _ in range(40):
            mid = 0.5 * (lo + hi)
            if ok(mid):
                hi = mid
            else:
                lo = mid
        best = min(best, hi)
    return best
