"""A fencer that does nothing: for hosts that cannot be fenced; refused for evacuation."""

from __future__ import annotations

from .base import FenceTarget, PowerState


class NoopFencer:
    #: No ``confirms_power_off``: the evacuation path refuses it at start-up.
    capabilities: frozenset[str] = frozenset()

    def __init__(self, target: FenceTarget) -> None:
        self.target = target

    async def power_off(self) -> None:
        return None

    async def power_on(self) -> None:
        return None

    async def power_state(self) -> PowerState:
        return "unknown"
