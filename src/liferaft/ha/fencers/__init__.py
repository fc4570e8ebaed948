"""Fencers (``liferaft.fencers``): make sure a host can no longer run or write anything.

A fencer powers a host off through its BMC and reads the power state back.
Only a driver with the ``confirms_power_off`` capability may fence a host
before its instances are evacuated; the ``noop`` fencer lacks it and is
refused for evacuation at start-up.
"""

from __future__ import annotations

from .base import (
    CONFIRMS_POWER_OFF,
    EVACUATION_CAPABILITIES,
    POWER_OFF,
    POWER_ON,
    Fencer,
    FenceTarget,
    PowerState,
)

__all__ = [
    "CONFIRMS_POWER_OFF",
    "EVACUATION_CAPABILITIES",
    "POWER_OFF",
    "POWER_ON",
    "FenceTarget",
    "Fencer",
    "PowerState",
]
