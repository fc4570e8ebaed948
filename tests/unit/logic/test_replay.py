"""The replay: exact RPO accounting, the budget enforced, and no logic beats the bound."""

from __future__ import annotations

import random

import pytest

from liferaft.logic import FixedInterval, PerGroupInterval, RpoOptimal
from liferaft.logic.bound import BoundGroup, lower_bound
from liferaft.logic.contract import DRLogic, budget
from liferaft.logic.dirty import WindowTrace
from liferaft.logic.replay import SimGroup, SimLink, replay


def _case(seed: int, capacity: float) -> tuple[list[SimGroup], SimLink]:
    rng = random.Random(seed)
    groups = []
    for k in range(4):
        unique = [rng.uniform(0, 2e6) * 60 for _ in range(24)]
        trace = WindowTrace.regular(-120.0, 60.0, unique, rng.choice((0.0, 0.5, 0.9)))
        groups.append(
            SimGroup(f"g{k}", rng.choice((300.0, 600.0)), 1.0, 10.0, "volume-backup", trace)
        )
    n = 40
    app = tuple(capacity * rng.uniform(0.1, 0.6) for _ in range(n))
    return groups, SimLink(capacity, app, 0.25, app * 4, 30.0)


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("capacity", [1e5, 1e6, 1e8])
def test_no_logic_beats_the_bound(seed: int, capacity: float) -> None:
    groups, link = _case(seed, capacity)
    horizon, tick = 1200.0, 30.0

    def bud(t: float) -> float:
        return budget(capacity, link.app_bps[min(39, int(t // tick))], 0.25)

    lb = lower_bound(
        [BoundGroup(g.target_s, g.overhead_s, g.trace) for g in groups],
        bud,
        horizon,
        fine_s=5.0,
        window_step_s=30.0,
        budget_step_s=tick,
    ).max_rpo_ratio
    logics: list[DRLogic] = [FixedInterval(300.0), PerGroupInterval(), RpoOptimal()]
    for logic in logics:
        res = replay(logic, groups, link, horizon, tick)
        assert max(res.ratios) >= lb - 1e-9, (logic.name, max(res.ratios), lb)
        assert res.max_replication_over_budget_bps <= 1e-6
        assert res.app_traffic_lost_share <= res.app_traffic_lost_share_allowed + 1e-9


def test_rpo_accounting_by_hand() -> None:
    # one group writing 1 kB/s, checkpointed every 100 s, overhead 10 s, 1 kB/s
    # link: each 100 kB increment lands 10 + 100 s after capture, so the RPO
    # peaks at 100 + 110 = 210 s just before each landing
    trace = WindowTrace.regular(0.0, 100.0, [1e5] * 10, 0.0)
    g = SimGroup("a", 300.0, 1.0, 10.0, "image-copy", trace)
    link = SimLink(1e3, (0.0,) * 10, 0.25, (0.0,) * 8, 100.0)
    res = replay(FixedInterval(100.0), [g], link, 1000.0, 100.0, report_at=(100.0, 500.0))
    assert res.groups[0].worst_rpo_s == pytest.approx(210.0)
    # by 100 s nothing has landed since the baseline (RPO 100 s); by 500 s the 210 s peak
    assert res.worst_ratio_at == pytest.approx((100.0 / 300.0, 0.7))
    assert res.groups[0].ratio == pytest.approx(0.7)
    assert res.within_target_share == 1.0
