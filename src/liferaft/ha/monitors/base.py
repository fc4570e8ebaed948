"""The monitor port."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from liferaft.clouds import Cloud
from liferaft.config.model import HaSettings
from liferaft.engine.clock import Clock

#: Capability of a monitor that reads the cloud's control plane (so its failure
#: to answer means the controller cannot see the control plane).
CONTROL_PLANE = "control_plane"
#: Capability of a monitor that listens for the hosts themselves.
HOST_SIGNAL = "host_signal"


@dataclass(frozen=True)
class Signal:
    """One monitor's opinion of one host."""

    host: str
    failed: bool
    reason: str


@dataclass
class MonitorContext:
    """What a monitor is built with."""

    site: str
    cloud: Cloud
    clock: Clock
    settings: HaSettings


@runtime_checkable
class Monitor(Protocol):
    capabilities: frozenset[str]
    name: str

    async def start(self) -> None:
        """Begin listening (monitors that receive rather than ask); a no-op for the others."""
        ...

    async def stop(self) -> None: ...

    async def observe(self, hosts: Sequence[str]) -> dict[str, Signal]:
        """An opinion on each of ``hosts`` the monitor knows (missing: no opinion).

        Raises ``RetryLater`` when it cannot tell (the control plane does not
        answer): then nobody is declared failed this round.
        """
        ...
