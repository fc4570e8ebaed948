"""Drivers named in the configuration are checked at start: one clear message for every problem."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from liferaft import plugins
from liferaft.config import parse_config
from liferaft.engine.clock import ManualClock
from liferaft.engine.controller import Controller, DriverNeed, check_drivers
from liferaft.errors import PluginError
from liferaft.store import Store, sqlite_url


def test_known_drivers_with_their_capabilities_load() -> None:
    found = check_drivers(
        [
            DriverNeed("fencers", "redfish", "ha.fencers[0].driver", frozenset({"power_off"})),
            DriverNeed("notifiers", "none", "ha.notifier"),
        ]
    )
    assert set(found) == {"ha.fencers[0].driver", "ha.notifier"}
    assert found["ha.notifier"] is plugins.load("notifiers", "none")


def test_an_unknown_driver_name_is_one_clear_error_naming_the_setting(tmp_path: Path) -> None:
    settings = parse_config(
        {"site": {"name": "east"}, "drlogic": {"logic_driver": "mpc-typo"}},
        source="liferaft.yaml",
        base_dir=tmp_path,
    )
    need = DriverNeed("logics", settings.drlogic.logic_driver, "drlogic.logic_driver")
    with pytest.raises(PluginError) as info:
        check_drivers([need])
    msg = str(info.value)
    assert msg.startswith("drlogic.logic_driver: no logic driver named 'mpc-typo' (available: ")
    assert "\n" not in msg


def test_a_driver_lacking_a_capability_and_an_unknown_one_are_reported_together() -> None:
    needs = [
        DriverNeed("fencers", "noop", "ha.fencers[0].driver", frozenset({"confirms_power_off"})),
        DriverNeed("notifiers", "pager-typo", "ha.notifier"),
        DriverNeed("evacuators", "nova", "ha.evacuator"),
    ]
    with pytest.raises(PluginError) as info:
        check_drivers(needs)
    first, second = str(info.value).split("; ")
    assert first.startswith("ha.fencers[0].driver: fencer driver 'noop' (")
    assert first.endswith("lacks the required capabilities confirms_power_off (it has: none)")
    assert second.startswith("ha.notifier: no notifier driver named 'pager-typo' (available: ")
    assert "apprise" in second


def test_the_controller_does_not_start_when_a_driver_check_fails(tmp_path: Path) -> None:
    """What `serve` does: check the drivers, and only then build and start the controller."""
    started: list[Controller] = []

    async def serve() -> None:
        check_drivers([DriverNeed("fencers", "nope", "ha.fencers[0].driver")])
        store = Store(sqlite_url(tmp_path))
        ctl = Controller(store, clock=ManualClock(), role="r")
        started.append(ctl)
        ctl.start()

    with pytest.raises(PluginError, match=r"^ha\.fencers\[0\]\.driver: no fencer driver"):
        asyncio.run(serve())
    assert started == []
