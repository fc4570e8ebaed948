"""Address management for simulated subnets: pools, gateways, MAC addresses.

Pure functions and one small per-subnet allocator, so the rules Neutron
applies (the gateway and the network/broadcast addresses are never handed
out, a requested address must lie in the subnet, pools must not overlap)
can be unit-tested without a site.
"""

from __future__ import annotations

import ipaddress
import itertools
import random
import re
from dataclasses import dataclass, field

from ..http import ApiError

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Neutron's default ``base_mac``: OpenStack's OUI followed by three random octets.
MAC_PREFIX = "fa:16:3e"
_MAC_RE = re.compile(r"^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$")


def bad_input(field_name: str, reason: str) -> ApiError:
    """Neutron's wording for an attribute that fails validation."""
    return ApiError(
        400, f"Invalid input for {field_name}. Reason: {reason}", neutron_type="HTTPBadRequest"
    )


def parse_cidr(text: object, ip_version: int | None = None) -> IPNetwork:
    """A subnet CIDR, host bits not allowed (Neutron refuses ``10.0.0.5/24``)."""
    if not isinstance(text, str):
        raise bad_input("cidr", f"'{text}' is not a valid IP subnet.")
    try:
        net = ipaddress.ip_network(text, strict=True)
    except ValueError:
        try:
            ipaddress.ip_network(text, strict=False)
        except ValueError:
            raise bad_input("cidr", f"'{text}' is not a valid IP subnet.") from None
        raise bad_input(
            "cidr",
            f"'{text}' isn't a recommended CIDR, '{ipaddress.ip_network(text, strict=False)}' should be used instead.",
        ) from None
    if ip_version is not None and net.version != ip_version:
        raise ApiError(
            400,
            "Invalid input for operation: IP version mismatch between cidr and ip_version.",
            neutron_type="InvalidInput",
        )
    if net.num_addresses < (4 if net.version == 4 else 2):
        raise ApiError(
            400,
            f"Invalid input for operation: cidr {text} is too small to hold addresses.",
            neutron_type="InvalidInput",
        )
    return net


def parse_ip(text: object, field_name: str = "ip_address") -> IPAddress:
    if not isinstance(text, str):
        raise bad_input(field_name, f"'{text}' is not a valid IP address.")
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        raise bad_input(field_name, f"'{text}' is not a valid IP address.") from None


def default_gateway(net: IPNetwork) -> IPAddress:
    """The first usable address, as Neutron picks it."""
    return net.network_address + 1


def default_pools(net: IPNetwork, gateway: IPAddress | None) -> list[tuple[IPAddress, IPAddress]]:
    """Every usable address except the gateway, as one or two ranges.

    IPv4 loses the network and broadcast addresses; IPv6 only the subnet-router
    anycast address (the network address).
    """
    first = net.network_address + 1
    last = net.broadcast_address - 1 if net.version == 4 else net.broadcast_address
    if gateway is None or int(gateway) < int(first) or int(gateway) > int(last):
        return [(first, last)]
    pools: list[tuple[IPAddress, IPAddress]] = []
    if int(gateway) > int(first):
        pools.append((first, gateway - 1))
    if int(gateway) < int(last):
        pools.append((gateway + 1, last))
    return pools


def parse_pools(
    raw: object, net: IPNetwork, gateway: IPAddress | None
) -> list[tuple[IPAddress, IPAddress]]:
    """Validate ``allocation_pools`` (a list of ``{"start", "end"}``) against the subnet."""
    if not isinstance(raw, list):
        raise bad_input("allocation_pools", f"'{raw}' is not a list")
    pools: list[tuple[IPAddress, IPAddress]] = []
    for item in raw:
        if not isinstance(item, dict) or set(item) != {"start", "end"}:
            raise bad_input(
                "allocation_pools",
                f"Validation of dictionary's keys failed. Expected keys: {{'start', 'end'}} Provided keys: {item}",
            )
        start = parse_ip(item["start"], "allocation_pools")
        end = parse_ip(item["end"], "allocation_pools")
        if start.version != net.version or end.version != net.version or int(end) < int(start):
            raise ApiError(
                400,
                f"The allocation pool {start}-{end} is not valid.",
                neutron_type="InvalidAllocationPool",
            )
        if start not in net or end not in net:
            raise ApiError(
                400,
                f"The allocation pool {start}-{end} spans beyond the subnet cidr {net}.",
                neutron_type="OutOfBoundsAllocationPool",
            )
        if gateway is not None and int(start) <= int(gateway) <= int(end):
            raise ApiError(
                409,
                f"Gateway ip {gateway} conflicts with allocation pool {start}-{end}.",
                neutron_type="GatewayConflictWithAllocationPools",
            )
        pools.append((start, end))
    ordered = sorted(pools, key=lambda p: int(p[0]))
    for (_, end_a), (start_b, end_b) in itertools.pairwise(ordered):
        if int(start_b) <= int(end_a):
            raise ApiError(
                400,
                f"Found overlapping allocation pools: {start_b}-{end_b} and an earlier pool.",
                neutron_type="OverlappingAllocationPools",
            )
    return pools


@dataclass
class SubnetAddresses:
    """Which addresses of one subnet are handed out, and the lowest free one."""

    net: IPNetwork
    pools: list[tuple[IPAddress, IPAddress]]
    used: set[IPAddress] = field(default_factory=set)

    def in_pools(self, ip: IPAddress) -> bool:
        return any(int(a) <= int(ip) <= int(b) for a, b in self.pools)

    def take(self, ip: IPAddress) -> None:
        self.used.add(ip)

    def release(self, ip: IPAddress) -> None:
        self.used.discard(ip)

    def next_free(self) -> IPAddress | None:
        """The lowest unused pool address (deterministic, so tests can predict it)."""
        for start, end in sorted(self.pools, key=lambda p: int(p[0])):
            ip = start
            while int(ip) <= int(end):
                if ip not in self.used:
                    return ip
                ip = ip + 1
        return None


def normalize_mac(text: object) -> str:
    if not isinstance(text, str) or not _MAC_RE.match(text):
        raise bad_input("mac_address", f"'{text}' is not a valid MAC address.")
    mac = text.lower().replace("-", ":")
    if mac == "00:00:00:00:00:00" or int(mac.split(":")[0], 16) & 1:
        raise bad_input("mac_address", f"'{text}' is not a valid MAC address.")
    return mac


def random_mac(rng: random.Random, taken: set[str]) -> str:
    """A fresh ``fa:16:3e:xx:xx:xx`` not in ``taken``."""
    while True:
        tail = ":".join(f"{rng.randrange(256):02x}" for _ in range(3))
        mac = f"{MAC_PREFIX}:{tail}"
        if mac not in taken:
            return mac
