"""The detector: agreement, re-check, mass-failure breaker, per-segment limit."""

from __future__ import annotations

import pytest

from liferaft.ha.detector import Detector, SegmentView, agrees
from liferaft.ha.monitors.base import Signal


def sig(host: str, failed: bool) -> Signal:
    return Signal(host, failed, "down" if failed else "up")


def opinions(failed: set[str], hosts: list[str], monitors: int = 1) -> dict[str, dict[str, Signal]]:
    return {f"m{i}": {h: sig(h, h in failed) for h in hosts} for i in range(monitors)}


HOSTS = [f"h{i}" for i in range(6)]
SEG = SegmentView("s", tuple(HOSTS), max_failed_hosts=1)


def detector(**kw: object) -> Detector:
    args: dict[str, object] = {
        "agreement": "all",
        "recheck_delay": 10.0,
        "breaker_max_share": 0.5,
        "breaker_max_hosts": 3,
    }
    args.update(kw)
    return Detector(**args)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("votes", "n", "rule", "expected"),
    [
        ([True, True], 2, "all", True),
        ([True, False], 2, "all", False),
        ([True], 2, "all", False),  # a monitor with no opinion does not agree
        ([True, True, False], 3, "majority", True),
        ([True, False], 2, "majority", False),
        ([False, True], 2, "any", True),
        ([], 0, "any", False),
    ],
)
def test_agreement(votes: list[bool], n: int, rule: str, expected: bool) -> None:
    assert agrees(votes, n, rule) is expected  # type: ignore[arg-type]


def test_a_host_is_confirmed_only_after_the_recheck() -> None:
    d = detector()
    first = d.round(100.0, [SEG], opinions({"h1"}, HOSTS))
    assert first.suspects == ["h1"] and not first.confirmed
    early = d.round(105.0, [SEG], opinions({"h1"}, HOSTS))
    assert not early.confirmed
    later = d.round(110.0, [SEG], opinions({"h1"}, HOSTS))
    assert later.confirmed == [("s", "h1")]


def test_a_host_that_speaks_again_starts_over() -> None:
    d = detector()
    d.round(100.0, [SEG], opinions({"h1"}, HOSTS))
    d.round(105.0, [SEG], opinions(set(), HOSTS))
    again = d.round(111.0, [SEG], opinions({"h1"}, HOSTS))
    assert not again.confirmed and again.suspects == ["h1"]


def test_monitors_must_agree() -> None:
    d = detector(recheck_delay=0.0)
    ops = opinions(set(), HOSTS, monitors=2)
    ops["m0"]["h2"] = sig("h2", True)
    assert d.round(0.0, [SEG], ops).confirmed == []
    ops["m1"]["h2"] = sig("h2", True)
    assert d.round(1.0, [SEG], ops).confirmed == [("s", "h2")]


def test_the_breaker_trips_on_a_share_of_a_segment() -> None:
    d = detector(recheck_delay=0.0)
    out = d.round(0.0, [SEG], opinions({"h0", "h1", "h2", "h3"}, HOSTS))
    assert out.breaker is not None
    assert out.confirmed == []
    # Back under the thresholds: the breaker resets and one host is recovered.
    calm = d.round(1.0, [SEG], opinions({"h0"}, HOSTS))
    assert calm.breaker is None and calm.confirmed == [("s", "h0")]


def test_the_breaker_trips_on_a_host_count_across_segments() -> None:
    segs = [SegmentView(f"s{i}", (f"a{i}", f"b{i}", f"c{i}"), 1) for i in range(4)]
    hosts = [h for s in segs for h in s.hosts]
    d = detector(recheck_delay=0.0, breaker_max_hosts=3)
    out = d.round(0.0, segs, opinions({"a0", "a1", "a2", "a3"}, hosts))
    assert out.breaker is not None and "4 hosts" in out.breaker and not out.confirmed


def test_the_segment_limit_holds_further_hosts() -> None:
    seg = SegmentView("s", tuple(HOSTS), max_failed_hosts=1, recovering=frozenset({"h0"}))
    d = detector(recheck_delay=0.0, breaker_max_hosts=10, breaker_max_share=1.0)
    out = d.round(0.0, [seg], opinions({"h0", "h1"}, HOSTS))
    assert out.confirmed == [] and out.waiting == ["h1"]


def test_maintenance_hosts_are_left_out() -> None:
    seg = SegmentView("s", tuple(HOSTS), 1, excluded=frozenset({"h1"}))
    d = detector(recheck_delay=0.0)
    out = d.round(0.0, [seg], opinions({"h1"}, HOSTS))
    assert out.silent == {} and out.confirmed == []
