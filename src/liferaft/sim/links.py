"""WAN links between sites: capacity, delay, background traffic, flows.

A fluid model.  Each link is full duplex: each direction offers the link's
bandwidth minus the background (application) traffic.  The active flows of
one direction share that capacity max-min fairly (progressive filling), each
capped by its own rate limit, and the flows of one tag together capped by the
link's limit for that tag (a shaper class).  Shares are recomputed whenever a
flow starts or ends, the link goes down or up, or any limit or capacity
changes; the bytes carried so far are settled first, so a change only
affects the future.  A flow whose last byte has left waits the link's
one-way delay once, then its ``on_done`` runs as a clock event.  While a
link is down its flows make no progress.

Rates: link settings are in megabits per second (as the topology file);
``rate_limit_bps`` arguments are bits per second; counters are bytes.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from .http import ApiError

if TYPE_CHECKING:
    from .clock import SimClock, Timer
    from .topology import LinkSpec


class _HasClock(Protocol):
    @property
    def clock(self) -> SimClock: ...


_ids = itertools.count(1)

#: Relative slack under which a constraint counts as saturated (float noise).
_EPS = 1e-9


def mbps_to_bytes(mbps: float) -> float:
    return mbps * 1e6 / 8.0


class Flow:
    """One transfer of ``nbytes`` from ``src`` to ``dst``."""

    def __init__(
        self,
        link: Link | None,
        src: str,
        dst: str,
        nbytes: int,
        on_done: Callable[[], None],
        rate_limit_bps: float | None,
        tag: str,
        now: float,
    ) -> None:
        self.id = f"flow-{next(_ids)}"
        self.link = link
        self.src = src
        self.dst = dst
        self.nbytes = nbytes
        self.on_done = on_done
        self.rate_limit_bps = rate_limit_bps
        self.tag = tag
        self.started_at = now
        self.sent = 0.0  # bytes that left so far
        self.rate = 0.0  # bytes per second, as last computed
        self.state = "active"  # active -> propagating -> done, or cancelled
        self.data_done_at: float | None = None
        self.done_at: float | None = None
        self.timer: Timer | None = None

    @property
    def remaining(self) -> float:
        return max(0.0, self.nbytes - self.sent)

    @property
    def direction(self) -> str:
        return f"{self.src}->{self.dst}"

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "link": None if self.link is None else self.link.name,
            "src": self.src,
            "dst": self.dst,
            "tag": self.tag,
            "bytes": self.nbytes,
            "sent": round(self.sent),
            "rate_mbps": self.rate * 8 / 1e6,
            "rate_limit_bps": self.rate_limit_bps,
            "state": self.state,
            "started_at": self.started_at,
        }


class Link:
    """One WAN link between sites ``a`` and ``b``, with its flows and counters."""

    def __init__(self, spec: LinkSpec) -> None:
        self.spec = spec
        self.name = f"{spec.a}-{spec.b}"
        self.up = True
        # The configured values (changed by the control API), which a healed
        # ``link-degraded`` fault returns to.
        self.base_bandwidth_mbps = spec.bandwidth_mbps
        self.base_delay_ms = spec.delay_ms
        self.bandwidth_mbps = spec.bandwidth_mbps
        self.delay_ms = spec.delay_ms
        self.background_mbps = spec.background_mbps
        self.tag_limits_bps: dict[str, float] = {}
        self.flows: list[Flow] = []  # active (sending) flows, both directions
        self.bytes_by_direction: dict[str, float] = defaultdict(float)
        self.bytes_by_tag: dict[str, float] = defaultdict(float)
        self.settled_at: float | None = None

    @property
    def capacity(self) -> float:
        """Bytes per second one direction offers to flows (0 while down)."""
        if not self.up:
            return 0.0
        return mbps_to_bytes(max(0.0, self.bandwidth_mbps - self.background_mbps))

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "a": self.spec.a,
            "b": self.spec.b,
            "up": self.up,
            "bandwidth_mbps": self.bandwidth_mbps,
            "delay_ms": self.delay_ms,
            "background_mbps": self.background_mbps,
            "available_mbps": self.capacity * 8 / 1e6,
            "tag_limits_mbps": {t: v / 1e6 for t, v in sorted(self.tag_limits_bps.items())},
            "flows": [f.describe() for f in self.flows],
            "bytes_by_direction": {k: round(v) for k, v in sorted(self.bytes_by_direction.items())},
            "bytes_by_tag": {k: round(v) for k, v in sorted(self.bytes_by_tag.items())},
        }


def max_min_rates(
    flows: list[Flow], capacity: float, tag_limits: dict[str, float]
) -> dict[Flow, float]:
    """Progressive filling: rates in bytes/s for flows sharing one direction.

    Constraints are the direction's capacity (all flows), each tag's limit
    (that tag's flows) and each flow's own limit.  All unfrozen flows grow
    together until a constraint saturates; its flows freeze; repeat.
    """
    constraints: list[tuple[list[Flow], float]] = [(list(flows), capacity)]
    by_tag: dict[str, list[Flow]] = defaultdict(list)
    for f in flows:
        by_tag[f.tag].append(f)
        if f.rate_limit_bps is not None:
            constraints.append(([f], max(0.0, f.rate_limit_bps) / 8.0))
    for tag, members in by_tag.items():
        if tag in tag_limits:
            constraints.append((members, max(0.0, tag_limits[tag]) / 8.0))
    rates = {f: 0.0 for f in flows}
    left = [cap for _, cap in constraints]
    frozen: set[Flow] = set()
    while len(frozen) < len(flows):
        best = None
        for i, (members, _cap) in enumerate(constraints):
            n = sum(1 for f in members if f not in frozen)
            if n:
                inc = left[i] / n
                best = inc if best is None else min(best, inc)
        if best is None:
            break
        best = max(0.0, best)
        for f in flows:
            if f not in frozen:
                rates[f] += best
        for i, (members, _cap) in enumerate(constraints):
            n = sum(1 for f in members if f not in frozen)
            left[i] -= best * n
        for i, (members, cap) in enumerate(constraints):
            if left[i] <= _EPS * max(cap, 1.0) and any(f not in frozen for f in members):
                frozen.update(members)
    return rates


class LinkState:
    """Every WAN link of the world and the flows on them."""

    def __init__(self, world: _HasClock, specs: list[LinkSpec]) -> None:
        self.world = world
        self.links = {f"{s.a}-{s.b}": Link(s) for s in specs}

    @property
    def clock(self) -> SimClock:
        return self.world.clock

    # -- finding -------------------------------------------------------------
    def find(self, target: Any) -> Link:
        if isinstance(target, str):
            if target in self.links:
                return self.links[target]
            a, _, b = target.partition("-")
            if f"{b}-{a}" in self.links:
                return self.links[f"{b}-{a}"]
        names = ", ".join(sorted(self.links)) or "(none)"
        raise ApiError(400, f"unknown link {target!r}; links are {names}")

    def between(self, a: str, b: str) -> Link:
        for link in self.links.values():
            if {link.spec.a, link.spec.b} == {a, b}:
                return link
        raise ApiError(503, f"no WAN link between sites {a} and {b}")

    # -- transfers -----------------------------------------------------------
    def transfer(
        self,
        src_site: str,
        dst_site: str,
        nbytes: int,
        on_done: Callable[[], None],
        *,
        rate_limit_bps: float | None = None,
        tag: str = "",
    ) -> Flow:
        """Carry ``nbytes`` from one site to another; ``on_done`` runs when they arrived."""
        now = self.clock.now()
        if src_site == dst_site:
            flow = Flow(None, src_site, dst_site, nbytes, on_done, rate_limit_bps, tag, now)
            flow.sent = float(nbytes)
            flow.state = "propagating"
            flow.data_done_at = now
            flow.timer = self.clock.call_at(now, lambda: self._deliver(flow))
            return flow
        link = self.between(src_site, dst_site)
        flow = Flow(link, src_site, dst_site, max(0, nbytes), on_done, rate_limit_bps, tag, now)
        self._settle(link)
        link.flows.append(flow)
        self._reschedule(link)
        return flow

    def cancel(self, flow: Flow) -> None:
        """Stop a flow; its ``on_done`` never runs."""
        if flow.state in ("done", "cancelled"):
            return
        if flow.timer is not None:
            flow.timer.cancel()
        link = flow.link
        if link is not None and flow in link.flows:
            self._settle(link)
            link.flows.remove(flow)
            flow.state = "cancelled"
            self._reschedule(link)
        flow.state = "cancelled"

    def active_flows(self) -> list[Flow]:
        return [f for link in self.links.values() for f in link.flows]

    # -- limits and capacity ---------------------------------------------------
    def set_rate_limit(
        self, target: Flow | str, bps: float | None, *, link: Link | None = None
    ) -> None:
        """Cap one flow, or one tag's flows together (on ``link``, or on every link).

        ``None`` removes the limit.
        """
        if isinstance(target, Flow):
            target.rate_limit_bps = bps
            if target.link is not None and target in target.link.flows:
                self._changed(target.link)
            return
        for lk in [link] if link is not None else list(self.links.values()):
            if bps is None:
                lk.tag_limits_bps.pop(target, None)
            else:
                lk.tag_limits_bps[target] = bps
            self._changed(lk)

    def set_background(self, link: Link, mbps: float) -> None:
        """Application traffic on the link (each direction), in megabits per second."""
        self._settle(link)
        link.background_mbps = max(0.0, mbps)
        self._reschedule(link)

    def set_bandwidth(self, link: Link, mbps: float) -> None:
        """Change the link's configured capacity (a healed degradation returns here)."""
        self._settle(link)
        link.base_bandwidth_mbps = mbps
        link.bandwidth_mbps = mbps
        self._reschedule(link)

    def set_up(self, link: Link, up: bool) -> None:
        self._settle(link)
        link.up = up
        self._reschedule(link)

    def degrade(self, link: Link, bandwidth_mbps: float | None, delay_ms: float | None) -> None:
        self._settle(link)
        if bandwidth_mbps is not None:
            link.bandwidth_mbps = bandwidth_mbps
        if delay_ms is not None:
            link.delay_ms = delay_ms
        self._reschedule(link)

    def restore(self, link: Link) -> None:
        self._settle(link)
        link.bandwidth_mbps = link.base_bandwidth_mbps
        link.delay_ms = link.base_delay_ms
        self._reschedule(link)

    # -- the fluid model -------------------------------------------------------
    def _changed(self, link: Link) -> None:
        self._settle(link)
        self._reschedule(link)

    def _settle(self, link: Link) -> None:
        """Account the bytes every flow carried since the last settlement."""
        now = self.clock.now()
        last = link.settled_at
        link.settled_at = now
        if last is None or now <= last:
            return
        dt = now - last
        for f in link.flows:
            moved = min(f.remaining, f.rate * dt)
            if moved > 0:
                self._count(link, f, moved)

    def _count(self, link: Link, flow: Flow, nbytes: float) -> None:
        flow.sent += nbytes
        link.bytes_by_direction[flow.direction] += nbytes
        link.bytes_by_tag[flow.tag] += nbytes

    def _reschedule(self, link: Link) -> None:
        """Recompute every flow's rate on the link and its completion event."""
        now = self.clock.now()
        link.settled_at = now
        by_dir: dict[str, list[Flow]] = defaultdict(list)
        for f in link.flows:
            by_dir[f.direction].append(f)
        for flows in by_dir.values():
            rates = max_min_rates(flows, link.capacity, link.tag_limits_bps)
            for f in flows:
                f.rate = rates[f]
                if f.timer is not None:
                    f.timer.cancel()
                    f.timer = None
                if f.remaining <= 0:
                    f.timer = self.clock.call_at(now, self._finisher(link, f))
                elif f.rate > 0:
                    due = now + f.remaining / f.rate
                    f.timer = self.clock.call_at(due, self._finisher(link, f))

    def _finisher(self, link: Link, flow: Flow) -> Callable[[], None]:
        def finish() -> None:
            if flow.state != "active":
                return
            self._settle(link)
            # The event is due when the last byte leaves; settle float noise.
            if flow.remaining > 0:
                self._count(link, flow, flow.remaining)
            link.flows.remove(flow)
            flow.state = "propagating"
            flow.rate = 0.0
            flow.data_done_at = self.clock.now()
            flow.timer = self.clock.call_later(link.delay_ms / 1000.0, lambda: self._deliver(flow))
            self._reschedule(link)

        return finish

    def _deliver(self, flow: Flow) -> None:
        if flow.state != "propagating":
            return
        flow.state = "done"
        flow.done_at = self.clock.now()
        flow.timer = None
        flow.on_done()

    # -- reporting ---------------------------------------------------------------
    def faults(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for name, link in self.links.items():
            if not link.up:
                out.append({"kind": "link-down", "target": name})
            if (link.bandwidth_mbps, link.delay_ms) != (
                link.base_bandwidth_mbps,
                link.base_delay_ms,
            ):
                out.append(
                    {
                        "kind": "link-degraded",
                        "target": name,
                        "bandwidth_mbps": link.bandwidth_mbps,
                        "delay_ms": link.delay_ms,
                    }
                )
        return out

    def describe(self) -> list[dict[str, Any]]:
        for link in self.links.values():
            self._settle(link)
        return [link.describe() for link in self.links.values()]
