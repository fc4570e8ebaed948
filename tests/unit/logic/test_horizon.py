"""The horizon forecast (``liferaft.logic.horizon``) and rpo-optimal's use of it."""

from __future__ import annotations

import pytest

from liferaft.logic import CheckpointRecord, GroupState, LinkState, RpoOptimal, State
from liferaft.logic.estimate import DirtyCurve
from liferaft.logic.horizon import Need, budget_over, bytes_needed, forecast_ratio

ONE_BPS = LinkState(capacity_bps=1.0, app_traffic_bps=0.0)


def test_budget_over_follows_the_profile() -> None:
    # budget now 100 - 0.75 x 20 = 85 B/s; the profile's second step 100 - 0.75 x 60 = 55 B/s
    link = LinkState(100.0, 20.0, app_take_share=0.25, app_profile_bps=(20.0, 60.0))
    assert budget_over(link, 0.0, 1800.0, 1.0) == pytest.approx(85 * 900 + 55 * 900)
    assert budget_over(link, 0.0, 1350.0, 0.5) == pytest.approx(0.5 * (85 * 900 + 55 * 450))
    # past the profile's end its last step holds
    assert budget_over(link, 0.0, 2700.0, 1.0) == pytest.approx(85 * 900 + 55 * 1800)
    # no profile: the budget now throughout
    assert budget_over(ONE_BPS, 0.0, 3600.0, 1.0) == pytest.approx(3600.0)


def test_bytes_needed_by_the_horizon() -> None:
    g = Need(
        target_s=900.0, recovery_point_s=0.0, last_capture_s=0.0, rate_bps=1.0, in_flight_bytes=0.0
    )
    # ratio 2 over an hour: the recovery point must reach 3600 - 1800 = 1800
    assert bytes_needed([g], 0.0, 3600.0, 2.0) == pytest.approx(1800.0)
    # ratio 4: 3600 - 3600 = 0, the recovery point already there
    assert bytes_needed([g], 0.0, 3600.0, 4.0) == 0.0


def test_forecast_ratio_is_the_smallest_that_fits() -> None:
    g = Need(900.0, 0.0, 0.0, 1.0, 0.0)
    # 1 B/s dirty over a 0.5 B/s link for an hour: 3600 - 900 r <= 1800  ->  r = 2
    half = LinkState(capacity_bps=0.5, app_traffic_bps=0.0)
    assert forecast_ratio([g], half, 0.0, 3600.0) == pytest.approx(2.0, rel=2e-3)
    # an ample link: the targets themselves
    assert forecast_ratio([g], ONE_BPS, 0.0, 3600.0) == 1.0
    # no budget at all and a horizon longer than the ceiling's reach
    dead = LinkState(capacity_bps=0.0, app_traffic_bps=0.0)
    assert forecast_ratio([g], dead, 0.0, 1e7, ceiling=100.0) == 100.0


def test_forecast_counts_bytes_in_flight() -> None:
    # behind since -900 with 1,800 B still in flight over 1 B/s: within the next
    # 900 s the recovery point cannot move, so only r >= (900 + 900) / 900 = 2 holds
    g = Need(900.0, -900.0, 0.0, 0.0, 1800.0)
    assert forecast_ratio([g], ONE_BPS, 0.0, 900.0) == pytest.approx(2.0, rel=2e-3)
    # half of it fits: ratio 1 holds
    g = Need(900.0, -900.0, 0.0, 0.0, 900.0)
    assert forecast_ratio([g], ONE_BPS, 0.0, 900.0) == 1.0


def _group(gid: str, target: float, last: float, rate: float) -> GroupState:
    hist = (CheckpointRecord(last - 3600.0, 3600.0, int(rate * 3600), last),)
    return GroupState(gid, target, 1.0, 30.0, "volume-backup", last, last, hist)


def _overloaded(now: float) -> State:
    # four 4-hour groups writing 5 MB/s each over a 1 MB/s link, none behind yet,
    # and a light 15-minute group captured 600 s ago
    busy = tuple(_group(f"b{k}", 14400.0, 0.0, 5e6) for k in range(4))
    return State(
        now_s=now,
        tick_s=30.0,
        groups=(_group("a", 900.0, now - 600.0, 1e3), *busy),
        transfers=(),
        link=LinkState(capacity_bps=1e6, app_traffic_bps=0.0),
    )


def test_rpo_optimal_horizon_ratio_and_spacing() -> None:
    state = _overloaded(3600.0)
    # without a forecast, 600 s is past half of "a"'s target at ratio 1 and the
    # packed plan wants it now: captured
    d = RpoOptimal().decide(state)
    assert "a" in {o.group_id for o in d.checkpoints} and d.ratio == 1.0
    # over a day the link falls short: by 3600 + 86400 the 4-hour groups'
    # recovery points must reach 90000 - 14400 r, so
    # 2e7 (90000 - 14400 r) + 1e3 (87000 - 900 r) <= 1e6 x 86400  ->  r = 5.950
    d = RpoOptimal(horizons_s=(86400.0,)).decide(state)
    assert d.ratio == pytest.approx(5.950, rel=2e-3)
    # planning at 5.95, "a" waits for half its ratio-scaled target
    assert "a" not in {o.group_id for o in d.checkpoints}
    # "spacing": the forecast only spaces captures (ratio stays the current worst)
    d = RpoOptimal(horizons_s=(86400.0,), forecast_use="spacing").decide(state)
    assert d.ratio == 1.0 and "a" not in {o.group_id for o in d.checkpoints}


def test_rpo_optimal_rejects_bad_forecast_settings() -> None:
    with pytest.raises(ValueError, match="forecast_use"):
        RpoOptimal(forecast_use="mpc")
    with pytest.raises(ValueError, match="horizons_s"):
        RpoOptimal(horizons_s=(0.0,))


def test_bytes_needed_with_a_coalescing_curve() -> None:
    # D(L) = sqrt(L), target 900 s, no overhead, over the next 4,500 s
    g = Need(900.0, 0.0, 0.0, 1.0, 0.0, DirtyCurve(1.0, 0.5), 0.0)
    # ratio 1: 3,600 s to cover in 900 s pieces -> 4 x 30
    assert bytes_needed([g], 0.0, 4500.0, 1.0) == pytest.approx(120.0)
    # ratio 2: 2,700 s in pieces of at most 1,800 s -> 2 x sqrt(1350)
    assert bytes_needed([g], 0.0, 4500.0, 2.0) == pytest.approx(2 * 1350**0.5)
    # the overhead shortens the pieces: ratio 1 with 300 s of it -> 6 x sqrt(600)
    g_o = Need(900.0, 0.0, 0.0, 1.0, 0.0, DirtyCurve(1.0, 0.5), 300.0)
    assert bytes_needed([g_o], 0.0, 4500.0, 1.0) == pytest.approx(6 * 600**0.5)
    # 50 B over the horizon: at r < 2.5 two pieces (>= 67 B), at 2.5 one of 2,250 s (47.4 B)
    link = LinkState(capacity_bps=50.0 / 4500.0, app_traffic_bps=0.0)
    assert forecast_ratio([g], link, 0.0, 4500.0) == pytest.approx(2.5, rel=2e-3)


def test_rpo_optimal_curve_size_model() -> None:
    state = _overloaded(3600.0)
    # one checkpoint per group: no spread, the curve is the rate, the same 5.950
    d = RpoOptimal(horizons_s=(86400.0,), size_model="curve").decide(state)
    assert d.ratio == pytest.approx(5.950, rel=2e-3)
    # the busy groups' checkpoints of 1,800 s and 7,200 s shipped 9 GB and 18 GB:
    # D(L) = 9e9 sqrt(L / 1800); one piece covers 90000 - 14400 r once r >= 3.13, so
    # 4 x 9e9 sqrt((90000 - 14400 r) / 1800) + 1e3 (87000 - 900 r) <= 1e6 x 86400
    busy = tuple(
        g.__class__(
            g.group_id,
            g.target_s,
            g.weight,
            g.overhead_s,
            g.carrier,
            g.recovery_point_s,
            g.last_capture_s,
            (
                CheckpointRecord(-9000.0, 1800.0, int(9e9)),
                CheckpointRecord(-7200.0, 7200.0, int(18e9)),
            ),
        )
        for g in state.groups[1:]
    )
    coalescing = State(state.now_s, state.tick_s, (state.groups[0], *busy), (), state.link)
    d = RpoOptimal(horizons_s=(86400.0,), size_model="curve").decide(coalescing)
    assert d.ratio == pytest.approx(5.531, rel=2e-3)
    # the rate model takes the mean, 27 GB / 9,000 s = 3 MB/s, over the whole span:
    # 1.2e7 (90000 - 14400 r) + 1e3 (87000 - 900 r) <= 8.64e10  ->  r = 5.750
    assert RpoOptimal(horizons_s=(86400.0,)).decide(coalescing).ratio == pytest.approx(
        5.750, rel=2e-3
    )


def test_rpo_optimal_rejects_a_bad_size_model() -> None:
    with pytest.raises(ValueError, match="size_model"):
        RpoOptimal(size_model="oracle")
    with pytest.raises(ValueError, match="curve_b_prior"):
        RpoOptimal(size_model="curve", curve_b_prior=0.0)
