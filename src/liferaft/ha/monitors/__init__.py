"""Monitors (``liferaft.monitors``): signals about compute hosts' health.

Each monitor gives its opinion on some hosts; :mod:`liferaft.ha.detector`
combines the opinions with the configured agreement rule and re-checks
before a host is declared failed.
"""

from __future__ import annotations

from .base import Monitor, MonitorContext, Signal

__all__ = ["Monitor", "MonitorContext", "Signal"]
