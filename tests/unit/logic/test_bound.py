"""The lower bound never exceeds the true optimum (brute force on small instances)."""

from __future__ import annotations

import random

import pytest

from liferaft.logic.bound import BoundGroup, lower_bound
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


def test_bound_binds_when_link_too_small() -> None:
    # one group writing 100 B/s steadily, no overwrite, link 50 B/s: in any window
    # [a, b] it must ship ~100 (b - rT - a) within 50 (b - a), so r T >= (b - a) / 2
    trace = WindowTrace.regular(0.0, 10.0, [1000.0] * 10, 0.0)
    lb = lower_bound(
        [BoundGroup(10.0, 0.0, trace)], lambda _t: 50.0, 100.0, fine_s=0.1, window_step_s=1.0
    )
    assert lb.max_rpo_ratio == pytest.approx(5.0, rel=0.01)
