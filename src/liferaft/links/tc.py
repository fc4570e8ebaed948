"""A LinkShaper on Linux traffic control (``tc``, HTB), the documented adapter for real sites.

On the gateway (or the backup host) facing the WAN link, an HTB tree::

    1:   htb qdisc on the device, unclassified traffic to 1:20
    1:1  the link: rate = ceil = link_capacity_mbps
    1:10 replication: rate = the guaranteed rates' sum, ceil = the ceiling
    1:20 everything else: rate = capacity - guarantees, ceil = capacity

and one u32 filter per ``tc_match`` destination network sending the
replication traffic (the recovery site's object store, where the backup
service writes) to 1:10. The first apply builds the tree (``replace`` is
idempotent, so a restarted controller re-applies it); later applies change
the two classes only. HTB shares spare capacity on top of the guarantees up
to each class's ceil -- exactly the contract's "spare is shared on top of
the guarantees". Per-flow guarantees need per-flow filters, which need the
flows' addresses and ports (unknown to Liferaft for backups the backup
service makes): the class guarantees their sum.

:func:`commands` builds the command lines (unit-tested); :class:`TcShaper`
runs them with ``tc_command`` (e.g. ``sudo -n tc``).
"""

from __future__ import annotations

import ipaddress
import subprocess
from collections.abc import Callable, Sequence

from liferaft.config.model import DrLogicSettings
from liferaft.errors import ConfigError, RetryLater

from .port import ShapeOrder

#: tc's HTB refuses a rate of 0; the smallest rate we ever ask for (bits/s).
MIN_RATE_BIT = 8000

Runner = Callable[[list[str]], None]


def _bit(bps: float) -> str:
    return f"{max(MIN_RATE_BIT, round(bps * 8))}bit"


def setup_commands(
    tc: Sequence[str], device: str, capacity_bps: float, match: Sequence[str]
) -> list[list[str]]:
    """The HTB tree and the replication filters (idempotent: ``replace``)."""
    cap = _bit(capacity_bps)
    out = [
        [*tc, "qdisc", "replace", "dev", device, "root", "handle", "1:", "htb", "default", "20"],
        [
            *tc,
            "class",
            "replace",
            "dev",
            device,
            "parent",
            "1:",
            "classid",
            "1:1",
            "htb",
            "rate",
            cap,
            "ceil",
            cap,
        ],
    ]
    for i, net in enumerate(match, start=1):
        v6 = ipaddress.ip_network(net, strict=False).version == 6
        # IPv4 and IPv6 filters live in separate u32 instances (protocol and priority).
        proto, prio, key = ("ipv6", "11", "ip6") if v6 else ("ip", "10", "ip")
        out.append(
            [*tc, "filter", "replace", "dev", device, "parent", "1:", "protocol", proto,
             "prio", prio, "handle", f"800::{i:x}", "u32", "match", key, "dst", net,
             "flowid", "1:10"]
        )  # fmt: skip
    return out


def class_commands(
    tc: Sequence[str], device: str, capacity_bps: float, order: ShapeOrder
) -> list[list[str]]:
    """The two classes for one decision: replication's guarantee and ceiling, and the rest."""
    ceiling = capacity_bps if order.ceiling_bps is None else min(order.ceiling_bps, capacity_bps)
    guaranteed = min(order.guaranteed_total_bps, ceiling)
    return [
        [
            *tc,
            "class",
            "replace",
            "dev",
            device,
            "parent",
            "1:1",
            "classid",
            "1:10",
            "htb",
            "rate",
            _bit(guaranteed),
            "ceil",
            _bit(ceiling),
        ],
        [
            *tc,
            "class",
            "replace",
            "dev",
            device,
            "parent",
            "1:1",
            "classid",
            "1:20",
            "htb",
            "rate",
            _bit(capacity_bps - guaranteed),
            "ceil",
            _bit(capacity_bps),
        ],
    ]


def commands(settings: DrLogicSettings, order: ShapeOrder, *, first: bool) -> list[list[str]]:
    """Every command line one apply runs (the tree too when ``first``)."""
    if not settings.tc_device:
        raise ConfigError("drlogic.tc_device: the tc shaper needs the WAN interface's name")
    if not settings.tc_match:
        raise ConfigError(
            "drlogic.tc_match: the tc shaper needs the replication traffic's destination networks"
        )
    for net in settings.tc_match:
        try:
            ipaddress.ip_network(net, strict=False)
        except ValueError:
            raise ConfigError(f"drlogic.tc_match: {net!r} is not a network (CIDR)") from None
    capacity = settings.link_capacity_mbps * 1e6 / 8.0
    tc = settings.tc_command
    out = setup_commands(tc, settings.tc_device, capacity, settings.tc_match) if first else []
    return out + class_commands(tc, settings.tc_device, capacity, order)


def _run(cmd: list[str]) -> None:
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise RetryLater(f"tc: {' '.join(cmd)}: {err}") from err
    if r.returncode != 0:
        raise RetryLater(f"tc: {' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()[:300]}")


class TcShaper:
    name = "tc"
    capabilities: frozenset[str] = frozenset({"ceiling", "guarantee"})

    def __init__(
        self, settings: DrLogicSettings, *, site: str = "", peer: str = "", runner: Runner = _run
    ) -> None:
        self.settings = settings
        self.runner = runner
        self._built = False
        commands(settings, ShapeOrder(None), first=True)  # refuse a bad configuration at start

    def apply(self, order: ShapeOrder) -> list[str]:
        done = []
        for cmd in commands(self.settings, order, first=not self._built):
            self.runner(cmd)
            done.append(" ".join(cmd))
        self._built = True
        return done

    def close(self) -> None:
        pass
