"""The lower bound never exceeds the true optimum (brute force on small instances)."""

from __future__ import annotations

import itertools
import random

import pytest

from liferaft.logic.bound import BoundGroup, lower_bound, separated_windows
from liferaft.logic.dirty import WindowTrace

from .bruteforce import optimum


def _instance(
    seed: int, window: float = 15.0, targets: tuple[float, ...] = (20.0, 30.0, 40.0)
) -> tuple[list[tuple[float, float, WindowTrace]], float]:
    rng = random.Random(seed)
    groups = []
    n = round(60.0 / window)
    for _ in range(2):
        unique = [rng.choice((0.0, 1.0, rng.uniform(0.5, 8.0))) * 100.0 for _ in range(n)]
        trace = WindowTrace.regular(0.0, window, unique, rng.choice((0.0, 0.5, 0.9)))
        groups.append((rng.choice(targets), rng.choice((0.0, 2.0, 5.0)), trace))
    return groups, rng.uniform(5.0, 60.0)


@pytest.mark.parametrize("seed", range(12))
@pytest.mark.parametrize("short", [False, True])
def test_bound_below_brute_force_optimum(seed: int, short: bool) -> None:
    # short: 30 s windows, 10-20 s targets -- pieces shorter than a window, so
    # the boundary refinement is the binding part of the bound
    groups, rate = _instance(seed, 30.0, (10.0, 15.0, 20.0)) if short else _instance(seed)
    horizon, tick = 60.0, 10.0
    opt = optimum(groups, rate, horizon, tick)
    lb = lower_bound(
        [BoundGroup(t, o, tr) for t, o, tr in groups],
        lambda _t: rate,
        horizon,
        fine_s=1.0,
        window_step_s=5.0,
        budget_step_s=5.0,
    ).max_rpo_ratio
    assert lb <= opt + 1e-6, (lb, opt)
    assert lb > 0


def _skewed(seed: int) -> tuple[list[tuple[float, float, WindowTrace]], float]:
    # quiet 5 s windows with a few heavy ones, pieces several windows long:
    # where the separated-heavy-windows term is the binding part of the bound
    rng = random.Random(seed)
    groups = []
    for _ in range(2):
        unique = [rng.choice((0.0, 0.1, 0.1, rng.uniform(2.0, 10.0))) * 100.0 for _ in range(12)]
        trace = WindowTrace.regular(0.0, 5.0, unique, rng.choice((0.5, 0.9, 1.0)))
        groups.append((rng.choice((15.0, 20.0, 30.0)), rng.choice((0.0, 2.0)), trace))
    return groups, rng.uniform(5.0, 40.0)


@pytest.mark.parametrize("seed", range(8))
def test_bound_below_brute_force_optimum_skewed_windows(seed: int) -> None:
    groups, rate = _skewed(seed)
    opt = optimum(groups, rate, 60.0, 10.0)
    lb = lower_bound(
        [BoundGroup(t, o, tr) for t, o, tr in groups],
        lambda _t: rate,
        60.0,
        fine_s=1.0,
        window_step_s=5.0,
        budget_step_s=5.0,
    ).max_rpo_ratio
    assert lb <= opt + 1e-6, (lb, opt)
    assert lb >= 0.45 * opt  # not vacuous: the heavy windows are counted


@pytest.mark.parametrize("seed", range(20))
def test_separated_windows_bound_any_partition(seed: int) -> None:
    # the relaxation's step: whatever the cut points, pieces no longer than L
    # ship at least (1 - f) S + f W, W the separated windows inside the span
    rng = random.Random(seed)
    n = rng.randint(3, 15)
    lengths = [rng.choice((5.0, 10.0, 30.0)) for _ in range(n)]
    starts, ends = [], []
    t = 0.0
    for w in lengths:  # contiguous, or with a gap (no writes) now and then
        starts.append(t)
        ends.append(t + w)
        t += w + rng.choice((0.0, 0.0, rng.uniform(1.0, 20.0)))
    unique = [rng.choice((0.0, 1.0, rng.uniform(1.0, 50.0))) * 100.0 for _ in range(n)]
    trace = WindowTrace(tuple(starts), tuple(ends), tuple(unique), rng.choice((0.3, 0.5, 1.0)))
    gap = rng.uniform(3.0, 60.0)
    chosen = separated_windows(trace, gap)
    for i, j in itertools.pairwise(chosen):
        assert starts[j] - ends[i] >= gap - 1e-9
    a, x = 0.0, ends[-1]
    w = sum(unique[k] for k in chosen)
    for _ in range(30):
        cuts = [a]
        while cuts[-1] < x:
            cuts.append(min(x, cuts[-1] + rng.uniform(0.1, 1.0) * gap))
        shipped = sum(trace.dirty(p, q) for p, q in itertools.pairwise(cuts))
        f = trace.overwrite
        assert shipped >= (1 - f) * trace.summed(a, x) + f * w - 1e-6


def test_separated_windows_picks_the_heaviest_far_apart() -> None:
    trace = WindowTrace.regular(0.0, 10.0, [5.0, 9.0, 5.0, 1.0, 8.0], 0.5)
    assert separated_windows(trace, 0.0) == [0, 1, 2, 3, 4]
    assert separated_windows(trace, 10.0) == [0, 2, 4]  # 5 + 5 + 8 beats 9 + 8
    assert separated_windows(trace, 20.0) == [1, 4]  # 40 - 20 >= 20: 9 + 8
    assert separated_windows(trace, 30.0) == [0, 4]  # only 0 and 4 are 30 s apart: 13 > 9


def test_bound_binds_when_link_too_small() -> None:
    # one group writing 100 B/s steadily, no overwrite, link 50 B/s: in any window
    # [a, b] it must ship ~100 (b - rT - a) within 50 (b - a), so r T >= (b - a) / 2
    trace = WindowTrace.regular(0.0, 10.0, [1000.0] * 10, 0.0)
    lb = lower_bound(
        [BoundGroup(10.0, 0.0, trace)], lambda _t: 50.0, 100.0, fine_s=0.1, window_step_s=1.0
    )
    assert lb.max_rpo_ratio == pytest.approx(5.0, rel=0.01)
