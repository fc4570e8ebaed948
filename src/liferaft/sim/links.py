"""WAN links between sites: capacity, delay, background traffic, flows.

A fluid model: every active flow on a link progresses at its share of the
link's capacity left after background (application) traffic, capped by the
flow's own rate limit; shares are recomputed whenever a flow starts, ends
or a limit changes, and a flow's completion is a clock event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .http import ApiError

if TYPE_CHECKING:
    from .topology import LinkSpec
    from .world import World


class Link:
    def __init__(self, spec: LinkSpec) -> None:
        self.spec = spec
        self.name = f"{spec.a}-{spec.b}"
        self.up = True
        self.bandwidth_mbps = spec.bandwidth_mbps
        self.delay_ms = spec.delay_ms
        self.background_mbps = spec.background_mbps

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "a": self.spec.a,
            "b": self.spec.b,
            "up": self.up,
            "bandwidth_mbps": self.bandwidth_mbps,
            "delay_ms": self.delay_ms,
            "background_mbps": self.background_mbps,
        }


class LinkState:
    def __init__(self, world: World, specs: list[LinkSpec]) -> None:
        self.world = world
        self.links = {f"{s.a}-{s.b}": Link(s) for s in specs}

    def find(self, target: Any) -> Link:
        if isinstance(target, str):
            if target in self.links:
                return self.links[target]
            a, _, b = target.partition("-")
            if f"{b}-{a}" in self.links:
                return self.links[f"{b}-{a}"]
        names = ", ".join(sorted(self.links)) or "(none)"
        raise ApiError(400, f"unknown link {target!r}; links are {names}")

    def set_up(self, link: Link, up: bool) -> None:
        link.up = up

    def degrade(self, link: Link, bandwidth_mbps: float | None, delay_ms: float | None) -> None:
        if bandwidth_mbps is not None:
            link.bandwidth_mbps = bandwidth_mbps
        if delay_ms is not None:
            link.delay_ms = delay_ms

    def restore(self, link: Link) -> None:
        link.bandwidth_mbps = link.spec.bandwidth_mbps
        link.delay_ms = link.spec.delay_ms

    def faults(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for name, link in self.links.items():
            if not link.up:
                out.append({"kind": "link-down", "target": name})
            if (link.bandwidth_mbps, link.delay_ms) != (
                link.spec.bandwidth_mbps,
                link.spec.delay_ms,
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
        return [link.describe() for link in self.links.values()]
