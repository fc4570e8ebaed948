"""The drivers for a link nobody measures or shapes.

``static`` (monitor): the configured ``link_capacity_mbps``, no application
traffic and no replication use known -- DR-Logic then plans on the whole
capacity times nothing displaced. ``none`` (shaper): nothing is enforced;
the decisions are still recorded and shown.
"""

from __future__ import annotations

from liferaft.config.model import DrLogicSettings

from .port import LinkSample, ShapeOrder


class StaticMonitor:
    name = "static"
    capabilities: frozenset[str] = frozenset({"capacity"})

    def __init__(self, settings: DrLogicSettings, *, site: str = "", peer: str = "") -> None:
        self.capacity_bps = settings.link_capacity_mbps * 1e6 / 8.0

    def sample(self) -> LinkSample:
        return LinkSample(self.capacity_bps, 0.0, None, source="configured capacity")

    def close(self) -> None:
        pass


class NoShaper:
    name = "none"
    capabilities: frozenset[str] = frozenset()

    def __init__(self, settings: DrLogicSettings, *, site: str = "", peer: str = "") -> None:
        pass

    def apply(self, order: ShapeOrder) -> list[str]:
        return []

    def close(self) -> None:
        pass
