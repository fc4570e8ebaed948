"""The built-in logics' decisions on small hand-checked cases."""

from __future__ import annotations

import pytest

from liferaft.logic import (
    KNOWN_CAPABILITIES,
    CheckpointRecord,
    DRLogic,
    FixedInterval,
    GroupState,
    LinkState,
    PerGroupInterval,
    RpoOptimal,
    State,
    TransferState,
)

BIG = LinkState(capacity_bps=1e12, app_traffic_bps=0.0)


def _group(
    gid: str, *, target: float = 3600.0, last: float = 0.0, rp: float = 0.0, rate: float = 1e6
) -> GroupState:
    hist = (CheckpointRecord(last - 3600.0, 3600.0, int(rate * 3600), last, int(rate * 3600 * 10)),)
    return GroupState(
        group_id=gid,
        target_s=target,
        weight=1.0,
        overhead_s=30.0,
        carrier="volume-backup",
        recovery_point_s=rp,
        last_capture_s=last,
        history=hist,
        written_since_capture_bytes=None,
    )


def _state(
    now: float,
    groups: tuple[GroupState, ...],
    link: LinkState = BIG,
    transfers: tuple[TransferState, ...] = (),
    prev: float = 1.0,
) -> State:
    return State(
        now_s=now, tick_s=30.0, groups=groups, transfers=transfers, link=link, previous_ratio=prev
    )


@pytest.mark.parametrize("logic", [FixedInterval(), PerGroupInterval(), RpoOptimal()])
def test_contract(logic: DRLogic) -> None:
    assert isinstance(logic, DRLogic)
    assert logic.name and logic.capabilities <= KNOWN_CAPABILITIES
    d = logic.decide(_state(0.0, (_group("a"),)))
    assert d.ratio >= 1.0


def test_fixed_interval_fires_every_interval() -> None:
    logic = FixedInterval(1800.0)
    groups = (_group("a"), _group("b", last=600.0))
    assert [o.group_id for o in logic.decide(_state(1770.0, groups)).checkpoints] == []
    assert [o.group_id for o in logic.decide(_state(1800.0, groups)).checkpoints] == ["a"]
    assert [o.group_id for o in logic.decide(_state(2400.0, groups)).checkpoints] == ["a", "b"]


def test_per_group_interval_phase_then_period() -> None:
    logic = PerGroupInterval({"a": (600.0, 300.0)})
    assert not logic.decide(_state(270.0, (_group("a"),))).checkpoints
    assert logic.decide(_state(300.0, (_group("a"),))).checkpoints
    assert not logic.decide(_state(870.0, (_group("a", last=300.0),))).checkpoints
    assert logic.decide(_state(900.0, (_group("a", last=300.0),))).checkpoints


def test_per_group_interval_from_history() -> None:
    # 1 MB/s dirty over a 1 MB/s budget: P + 30 + P <= 3600  ->  P = 1785 s
    link = LinkState(capacity_bps=1e6, app_traffic_bps=0.0)
    logic = PerGroupInterval()
    assert not logic.decide(_state(1770.0, (_group("a"),), link)).checkpoints
    assert logic.decide(_state(1800.0, (_group("a"),), link)).checkpoints


def test_rpo_optimal_captures_as_late_as_the_margin_allows() -> None:
    # target 3600 s; the link is idle (load 1 MB/s of a huge budget), so the margin
    # is its floor, 0.15 x 0.4 = 6 %: plan deadline 0.94 x 3600 = 3384. The ~3.3 GB
    # take ~4 ms on this link, so the latest capture is 3384 - 30 s overhead - 4 ms,
    # just before 3354: the decision at 3300 waits (3300 + 30 < 3354), the one at
    # 3330 orders it (waiting for 3360 would be too late).
    logic = RpoOptimal()
    assert not logic.decide(_state(3300.0, (_group("a"),))).checkpoints
    d = logic.decide(_state(3330.0, (_group("a"),)))
    assert [o.group_id for o in d.checkpoints] == ["a"]
    assert d.ratio == 1.0 and not d.misses


def test_rpo_optimal_rates_headroom_first_then_budget() -> None:
    link = LinkState(capacity_bps=100e6, app_traffic_bps=60e6, app_take_share=0.25)
    # budget = 100 - 0.75 * 60 = 55 MB/s, headroom 40 MB/s
    tr = TransferState("a#1", "a", "volume-backup", 3000.0, 0.0, True, 10**9, 10**8)
    g = _group("a", last=3000.0)
    d = RpoOptimal().decide(_state(3000.0, (g,), link, (tr,)))
    # 100 MB left, deadline 0.94 x 3600 = 3384 (margin at its 6 % floor): 384 s of slack
    assert d.flow_rates[0].rate_bps == pytest.approx(1e8 / 384.0)
    assert d.replication_ceiling_bps == pytest.approx(40e6)
    # the same transfer due now gets the whole budget
    late = TransferState("a#1", "a", "volume-backup", 3000.0, 0.0, True, 10**9, 10**10)
    d = RpoOptimal().decide(_state(3300.0, (g,), link, (late,)))
    assert d.replication_ceiling_bps == pytest.approx(55e6)


def test_rpo_optimal_overload_raises_ratio_and_names_misses() -> None:
    # two groups writing 1 MB/s each over a 0.5 MB/s link: no ratio of 1 can hold
    link = LinkState(capacity_bps=0.5e6, app_traffic_bps=0.0)
    groups = (_group("a", last=0.0, rp=-4000.0), _group("b", last=0.0, rp=-4000.0))
    d = RpoOptimal().decide(_state(100.0, groups, link))
    assert d.ratio > 1.0
    assert {m.group_id for m in d.misses} == {"a", "b"}


def test_rpo_optimal_waits_between_captures_unless_due() -> None:
    # a group captured 60 s ago on a link fully spoken for is not captured again
    # before half its target unless its own deadline is near
    link = LinkState(capacity_bps=1e6, app_traffic_bps=0.0)
    busy = tuple(_group(f"b{k}", target=14400.0, last=0.0, rate=5e6) for k in range(4))
    g = _group("a", target=900.0, last=3540.0, rp=3540.0, rate=1e3)
    d = RpoOptimal().decide(_state(3600.0, (g, *busy), link))
    assert "a" not in {o.group_id for o in d.checkpoints}


def test_worst_ratio_first_when_the_budget_is_short() -> None:
    link = LinkState(capacity_bps=1e6, app_traffic_bps=0.0)
    a = _group("a", target=900.0, last=0.0, rp=-900.0)
    b = _group("b", target=900.0, last=0.0, rp=-100.0)
    ta = TransferState("a#1", "a", "volume-backup", 0.0, -900.0, True, 10**9, 10**9)
    tb = TransferState("b#1", "b", "volume-backup", 0.0, -100.0, True, 10**9, 10**9)
    d = RpoOptimal().decide(_state(60.0, (a, b), link, (tb, ta)))
    rates = {f.flow_id: f.rate_bps for f in d.flow_rates}
    assert rates["a#1"] == pytest.approx(1e6) and rates["b#1"] == 0.0


@pytest.mark.parametrize("name", ["fixed-interval", "per-group-interval", "rpo-optimal"])
def test_registered_as_plugins(name: str) -> None:
    from liferaft import plugins

    cls = plugins.load("logics", name, required_capabilities={"checkpoint-schedule"})
    assert cls.name == name
