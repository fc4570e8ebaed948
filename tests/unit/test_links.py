"""The WAN fluid model on hand-checked cases (stepped clock, no simulator process)."""

from __future__ import annotations

import pytest

from liferaft.sim.clock import STEPPED_EPOCH, SimClock
from liferaft.sim.http import ApiError
from liferaft.sim.links import LinkState, max_min_rates
from liferaft.sim.topology import LinkSpec

MB = 1_000_000  # bytes: 8 Mbit


class _World:
    def __init__(self) -> None:
        self.clock = SimClock("stepped")


def _links(bandwidth_mbps: float = 80.0, delay_ms: float = 0.0, **kw: float) -> LinkState:
    spec = LinkSpec(a="east", b="west", bandwidth_mbps=bandwidth_mbps, delay_ms=delay_ms, **kw)
    return LinkState(_World(), [spec])


def _done_at(links: LinkState, log: dict[str, float], name: str) -> None:
    log[name] = links.clock.now() - STEPPED_EPOCH


def test_single_flow_takes_bytes_over_bandwidth_plus_delay() -> None:
    links = _links(bandwidth_mbps=80.0, delay_ms=250.0)  # 10 MB/s
    done: dict[str, float] = {}
    links.transfer("east", "west", 50 * MB, lambda: _done_at(links, done, "a"))
    links.clock.advance(5.2)
    assert done == {}
    links.clock.advance(0.1)
    assert done["a"] == pytest.approx(5.25)
    link = links.find("east-west")
    assert link.describe()["bytes_by_direction"] == {"east->west": 50 * MB}


def test_same_site_completes_at_once_through_the_clock() -> None:
    links = _links()
    done: dict[str, float] = {}
    flow = links.transfer("east", "east", 10 * MB, lambda: _done_at(links, done, "a"))
    assert done == {}  # not inside transfer(): on the clock, due now
    links.clock.advance(0)
    assert done == {"a": 0.0}
    assert flow.state == "done"


def test_two_flows_share_equally_then_the_survivor_speeds_up() -> None:
    links = _links(bandwidth_mbps=80.0)  # 10 MB/s
    done: dict[str, float] = {}
    links.transfer("east", "west", 10 * MB, lambda: _done_at(links, done, "small"))
    links.transfer("east", "west", 30 * MB, lambda: _done_at(links, done, "big"))
    links.clock.advance(100)
    # Both at 5 MB/s: small done at 2 s (big has 20 MB left), then big alone at 10 MB/s.
    assert done["small"] == pytest.approx(2.0)
    assert done["big"] == pytest.approx(4.0)


def test_rate_limited_flow_leaves_the_rest_to_the_other() -> None:
    links = _links(bandwidth_mbps=80.0)
    done: dict[str, float] = {}
    slow = links.transfer(
        "east", "west", 4 * MB, lambda: _done_at(links, done, "slow"), rate_limit_bps=16e6
    )
    fast = links.transfer("east", "west", 32 * MB, lambda: _done_at(links, done, "fast"))
    assert slow.rate == pytest.approx(2 * MB)
    assert fast.rate == pytest.approx(8 * MB)
    links.clock.advance(100)
    assert done["slow"] == pytest.approx(2.0)
    # fast: 16 MB in 2 s at 8 MB/s, then 16 MB at 10 MB/s.
    assert done["fast"] == pytest.approx(3.6)


def test_link_down_stalls_flows_until_it_is_up() -> None:
    links = _links(bandwidth_mbps=80.0)
    link = links.find("west-east")
    done: dict[str, float] = {}
    flow = links.transfer("west", "east", 20 * MB, lambda: _done_at(links, done, "a"))
    links.clock.advance(1)
    links.set_up(link, False)
    links.clock.advance(60)
    assert done == {}
    assert flow.sent == pytest.approx(10 * MB)
    links.set_up(link, True)
    links.clock.advance(100)
    assert done["a"] == pytest.approx(62.0)


def test_background_traffic_reduces_capacity() -> None:
    links = _links(bandwidth_mbps=100.0, background_mbps=20.0)  # 80 Mbit/s left
    done: dict[str, float] = {}
    links.transfer("east", "west", 10 * MB, lambda: _done_at(links, done, "a"))
    links.transfer("east", "west", 10 * MB, lambda: _done_at(links, done, "b"))
    links.clock.advance(100)
    assert done == {"a": pytest.approx(2.0), "b": pytest.approx(2.0)}


def test_background_change_midway_recomputes_completion() -> None:
    links = _links(bandwidth_mbps=80.0)
    link = links.find("east-west")
    done: dict[str, float] = {}
    links.transfer("east", "west", 20 * MB, lambda: _done_at(links, done, "a"))
    links.clock.advance(1)  # 10 MB sent
    links.set_background(link, 40.0)  # now 5 MB/s
    links.clock.advance(100)
    assert done["a"] == pytest.approx(3.0)


def test_degrade_and_restore_change_rates() -> None:
    links = _links(bandwidth_mbps=80.0)
    link = links.find("east-west")
    done: dict[str, float] = {}
    links.transfer("east", "west", 30 * MB, lambda: _done_at(links, done, "a"))
    links.clock.advance(1)
    links.degrade(link, bandwidth_mbps=8.0, delay_ms=None)  # 1 MB/s
    assert links.faults() == [
        {"kind": "link-degraded", "target": "east-west", "bandwidth_mbps": 8.0, "delay_ms": 0.0}
    ]
    links.clock.advance(10)  # 10 MB more
    links.restore(link)
    links.clock.advance(100)
    assert done["a"] == pytest.approx(12.0)
    assert links.faults() == []


def test_opposite_directions_do_not_share() -> None:
    links = _links(bandwidth_mbps=80.0)
    done: dict[str, float] = {}
    links.transfer("east", "west", 10 * MB, lambda: _done_at(links, done, "e"))
    links.transfer("west", "east", 10 * MB, lambda: _done_at(links, done, "w"))
    links.clock.advance(100)
    assert done == {"e": pytest.approx(1.0), "w": pytest.approx(1.0)}


def test_tag_limit_caps_the_tag_together_and_counts_by_tag() -> None:
    links = _links(bandwidth_mbps=80.0)
    link = links.find("east-west")
    links.set_rate_limit("backup", 16e6)  # 2 MB/s for all backup flows
    flows = [
        links.transfer("east", "west", 2 * MB, lambda: None, tag="backup"),
        links.transfer("east", "west", 2 * MB, lambda: None, tag="backup"),
        links.transfer("east", "west", 16 * MB, lambda: None, tag="image"),
    ]
    assert [f.rate for f in flows] == pytest.approx([1 * MB, 1 * MB, 8 * MB])
    links.clock.advance(100)
    assert link.describe()["bytes_by_tag"] == {"backup": 4 * MB, "image": 16 * MB}
    links.set_rate_limit("backup", None)
    assert link.tag_limits_bps == {}


def test_flow_limit_can_change_while_running() -> None:
    links = _links(bandwidth_mbps=80.0)
    done: dict[str, float] = {}
    flow = links.transfer("east", "west", 20 * MB, lambda: _done_at(links, done, "a"))
    links.set_rate_limit(flow, 8e6)  # 1 MB/s
    links.clock.advance(10)
    links.set_rate_limit(flow, None)
    links.clock.advance(100)
    assert done["a"] == pytest.approx(11.0)


def test_cancelled_flow_never_finishes_and_frees_capacity() -> None:
    links = _links(bandwidth_mbps=80.0)
    done: dict[str, float] = {}
    a = links.transfer("east", "west", 100 * MB, lambda: _done_at(links, done, "a"))
    links.transfer("east", "west", 20 * MB, lambda: _done_at(links, done, "b"))
    links.clock.advance(2)  # each 10 MB
    links.cancel(a)
    links.clock.advance(100)
    assert done == {"b": pytest.approx(3.0)}


def test_max_min_rates_with_no_capacity_is_zero() -> None:
    links = _links(bandwidth_mbps=10.0, background_mbps=10.0)
    flow = links.transfer("east", "west", MB, lambda: None)
    assert flow.rate == 0.0
    assert max_min_rates([flow], 0.0, {}) == {flow: 0.0}


def test_unknown_link_and_unlinked_sites_are_errors() -> None:
    links = _links()
    with pytest.raises(ApiError):
        links.find("east-south")
    with pytest.raises(ApiError):
        links.transfer("east", "south", 1, lambda: None)
