"""The controller's configuration: typed settings, loaded from a YAML file.

``load_config(path)`` returns :class:`Settings` or raises
:class:`~liferaft.errors.ConfigError` naming the file, the key and the
problem.  Nothing here runs at import time.
"""

from __future__ import annotations

from .load import load_config, parse_config
from .model import (
    ApiSettings,
    ClockSettings,
    DrLogicSettings,
    HaSettings,
    LeadershipSettings,
    LoggingSettings,
    MetricsSettings,
    ProtectionSettings,
    Settings,
    SiteSettings,
    StoreSettings,
)

__all__ = [
    "ApiSettings",
    "ClockSettings",
    "DrLogicSettings",
    "HaSettings",
    "LeadershipSettings",
    "LoggingSettings",
    "MetricsSettings",
    "ProtectionSettings",
    "Settings",
    "SiteSettings",
    "StoreSettings",
    "load_config",
    "parse_config",
]
