"""The tc shaper's command lines (built and checked, never run: the runner records them)."""

from __future__ import annotations

import pytest

from liferaft.config.model import DrLogicSettings
from liferaft.errors import ConfigError
from liferaft.links.port import ShapeOrder
from liferaft.links.tc import TcShaper, commands


def settings(**kw: object) -> DrLogicSettings:
    base: dict[str, object] = {
        "link_shaper": "tc",
        "link_capacity_mbps": 100.0,
        "tc_device": "wan0",
        "tc_match": ["192.0.2.0/24", "2001:db8::/64"],
        "tc_command": ["sudo", "-n", "tc"],
    }
    return DrLogicSettings(**{**base, **kw})


def test_first_apply_builds_the_htb_tree_then_only_the_classes_change() -> None:
    ran: list[list[str]] = []
    shaper = TcShaper(settings(), runner=ran.append)
    assert ran == []  # nothing runs at construction
    # 40 Mbit/s ceiling, guarantees 1 + 2 Mbit/s (bytes/s in, bits/s in tc).
    order = ShapeOrder(5e6, (("f1", 125_000.0), ("f2", 250_000.0)), "leave room")
    done = shaper.apply(order)
    tc = "sudo -n tc"
    assert (
        [" ".join(c) for c in ran]
        == done
        == [
            f"{tc} qdisc replace dev wan0 root handle 1: htb default 20",
            f"{tc} class replace dev wan0 parent 1: classid 1:1 htb rate 100000000bit ceil 100000000bit",
            f"{tc} filter replace dev wan0 parent 1: protocol ip prio 10 handle 800::1 u32 "
            "match ip dst 192.0.2.0/24 flowid 1:10",
            f"{tc} filter replace dev wan0 parent 1: protocol ipv6 prio 11 handle 800::2 u32 "
            "match ip6 dst 2001:db8::/64 flowid 1:10",
            f"{tc} class replace dev wan0 parent 1:1 classid 1:10 htb rate 3000000bit ceil 40000000bit",
            f"{tc} class replace dev wan0 parent 1:1 classid 1:20 htb rate 97000000bit ceil 100000000bit",
        ]
    )
    ran.clear()
    shaper.apply(ShapeOrder(None))
    assert [" ".join(c) for c in ran] == [
        f"{tc} class replace dev wan0 parent 1:1 classid 1:10 htb rate 8000bit ceil 100000000bit",
        f"{tc} class replace dev wan0 parent 1:1 classid 1:20 htb rate 100000000bit ceil 100000000bit",
    ]


def test_the_ceiling_is_at_most_the_link_and_guarantees_at_most_the_ceiling() -> None:
    cmds = commands(settings(), ShapeOrder(1e12, (("f", 1e12),)), first=False)
    assert cmds[0][-4:] == ["rate", "100000000bit", "ceil", "100000000bit"]
    assert cmds[1][-4:] == ["rate", "8000bit", "ceil", "100000000bit"]


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"tc_device": None}, "drlogic.tc_device"),
        ({"tc_match": []}, "drlogic.tc_match: the tc shaper needs"),
        ({"tc_match": ["not-a-net"]}, "drlogic.tc_match: 'not-a-net' is not a network"),
    ],
)
def test_a_bad_configuration_is_refused_at_start_naming_the_setting(
    kw: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        TcShaper(settings(**kw), runner=lambda c: None)
