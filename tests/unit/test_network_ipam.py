"""Address rules of the simulated network service (pools, gateways, MACs)."""

from __future__ import annotations

import ipaddress
import random

import pytest

from liferaft.sim.http import ApiError
from liferaft.sim.network import ipam


def test_default_pool_skips_network_gateway_and_broadcast() -> None:
    net = ipam.parse_cidr("10.0.0.0/24")
    gw = ipam.default_gateway(net)
    assert str(gw) == "10.0.0.1"
    pools = ipam.default_pools(net, gw)
    assert [(str(a), str(b)) for a, b in pools] == [("10.0.0.2", "10.0.0.254")]


def test_gateway_in_the_middle_splits_the_pool() -> None:
    net = ipam.parse_cidr("10.0.0.0/29")
    pools = ipam.default_pools(net, ipaddress.ip_address("10.0.0.3"))
    assert [(str(a), str(b)) for a, b in pools] == [
        ("10.0.0.1", "10.0.0.2"),
        ("10.0.0.4", "10.0.0.6"),
    ]


@pytest.mark.parametrize("cidr", ["10.0.0/24", "nonsense", "10.0.0.5/24", "10.0.0.0/31"])
def test_bad_cidrs_are_400(cidr: str) -> None:
    with pytest.raises(ApiError) as exc:
        ipam.parse_cidr(cidr)
    assert exc.value.status == 400


def test_cidr_version_must_match() -> None:
    with pytest.raises(ApiError) as exc:
        ipam.parse_cidr("fd00::/64", 4)
    assert exc.value.status == 400


def test_pools_are_checked_against_the_subnet() -> None:
    net = ipam.parse_cidr("10.0.0.0/24")
    gw = ipaddress.ip_address("10.0.0.1")
    pools = ipam.parse_pools([{"start": "10.0.0.10", "end": "10.0.0.20"}], net, gw)
    assert [(str(a), str(b)) for a, b in pools] == [("10.0.0.10", "10.0.0.20")]
    with pytest.raises(ApiError) as exc:
        ipam.parse_pools([{"start": "10.0.0.10", "end": "10.0.1.20"}], net, gw)
    assert exc.value.neutron_type == "OutOfBoundsAllocationPool"
    with pytest.raises(ApiError) as exc:
        ipam.parse_pools([{"start": "10.0.0.1", "end": "10.0.0.5"}], net, gw)
    assert exc.value.status == 409
    with pytest.raises(ApiError) as exc:
        ipam.parse_pools(
            [
                {"start": "10.0.0.10", "end": "10.0.0.20"},
                {"start": "10.0.0.15", "end": "10.0.0.30"},
            ],
            net,
            gw,
        )
    assert exc.value.neutron_type == "OverlappingAllocationPools"


def test_allocator_hands_out_the_lowest_free_address() -> None:
    net = ipam.parse_cidr("10.0.0.0/29")
    addrs = ipam.SubnetAddresses(net, ipam.default_pools(net, ipam.default_gateway(net)))
    got = []
    while (ip := addrs.next_free()) is not None:
        addrs.take(ip)
        got.append(str(ip))
    assert got == ["10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.6"]
    addrs.release(ipaddress.ip_address("10.0.0.4"))
    assert str(addrs.next_free()) == "10.0.0.4"


def test_ipv6_pools() -> None:
    net = ipam.parse_cidr("fd00::/64", 6)
    addrs = ipam.SubnetAddresses(net, ipam.default_pools(net, ipam.default_gateway(net)))
    assert str(addrs.next_free()) == "fd00::2"


def test_macs() -> None:
    assert ipam.normalize_mac("FA-16-3E-00-00-01") == "fa:16:3e:00:00:01"
    for bad in ["fa:16:3e:00:00", "zz:16:3e:00:00:01", "01:00:5e:00:00:01", 5]:
        with pytest.raises(ApiError):
            ipam.normalize_mac(bad)
    rng = random.Random(1)
    taken: set[str] = set()
    for _ in range(50):
        mac = ipam.random_mac(rng, taken)
        assert mac.startswith("fa:16:3e:") and mac not in taken
        taken.add(mac)
