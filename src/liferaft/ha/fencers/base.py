"""The fencer port: what every fencer driver offers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

#: Capabilities a fencer may declare.
POWER_OFF = "power_off"
POWER_ON = "power_on"
#: The driver reads the power state back from the BMC, so "off" is a fact, not a hope.
CONFIRMS_POWER_OFF = "confirms_power_off"
#: What the evacuation path requires of every fencing level.
EVACUATION_CAPABILITIES = frozenset({POWER_OFF, CONFIRMS_POWER_OFF})

PowerState = Literal["on", "off", "unknown"]


@dataclass(frozen=True)
class FenceTarget:
    """One fencing level of one host: where its BMC is and how to log in.

    ``password`` never appears in ``repr`` (logs) or in anything the API shows.
    """

    host: str
    driver: str
    address: str | None = None
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    system_id: str | None = None
    verify_tls: bool = True
    timeout: float = 30.0

    def public(self) -> dict[str, object]:
        """What may be shown (API, events): no credentials."""
        return {"host": self.host, "driver": self.driver, "address": self.address}


@runtime_checkable
class Fencer(Protocol):
    """A fencer driver, built with one :class:`FenceTarget`.

    Errors are classified (:mod:`liferaft.errors`): ``RetryLater`` for a BMC
    that does not answer or times out, ``GiveUp`` for one that refuses the
    credentials or answers something that is not Redfish/IPMI.
    """

    capabilities: frozenset[str]
    target: FenceTarget

    async def power_off(self) -> None:
        """Ask for a hard power-off (idempotent: a host already off stays off)."""
        ...

    async def power_on(self) -> None: ...

    async def power_state(self) -> PowerState:
        """Read the power state back from the BMC."""
        ...
