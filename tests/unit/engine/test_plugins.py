"""The driver loader, against real entry points of a throwaway installed distribution."""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from liferaft import plugins
from liferaft.errors import PluginError


@pytest.fixture
def fake_dist(tmp_path: Path) -> Iterator[str]:
    """Install (on sys.path) a distribution with fencer entry points; yields its module name."""
    mod = f"lr_fake_drivers_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{mod}.py").write_text(
        textwrap.dedent(
            """
            class GoodFencer:
                capabilities = frozenset({"power_off", "confirm_power_off"})

                def __init__(self, url: str = "") -> None:
                    self.url = url

            class WeakFencer:
                capabilities = frozenset({"power_off"})

            class Undeclared:
                pass
            """
        )
    )
    info = tmp_path / f"{mod}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {mod}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(
            f"""
            [liferaft.fencers]
            good = {mod}:GoodFencer
            weak = {mod}:WeakFencer
            undeclared = {mod}:Undeclared
            broken = {mod}_missing:Nothing
            """
        )
    )
    sys.path.insert(0, str(tmp_path))
    plugins.refresh()
    try:
        yield mod
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(mod, None)
        plugins.refresh()


def test_every_kind_has_its_group() -> None:
    assert plugins.group("fencers") == "liferaft.fencers"
    assert set(plugins.KINDS) == {
        "monitors",
        "fencers",
        "evacuators",
        "notifiers",
        "logics",
        "quiescers",
        "replication_monitors",
        "verifiers",
        "link_monitors",
        "link_shapers",
    }
    with pytest.raises(PluginError, match="unknown driver kind 'fencer'; the kinds are: monitors"):
        plugins.names("fencer")


def test_load_and_create(fake_dist: str) -> None:
    assert {"good", "weak", "undeclared", "broken"} <= set(plugins.names("fencers"))
    cls = plugins.load("fencers", "good", required_capabilities={"confirm_power_off"})
    assert cls.__name__ == "GoodFencer"
    obj = plugins.create("fencers", "good", url="redfish://x")
    assert obj.url == "redfish://x"


def test_unknown_name_lists_what_is_available(fake_dist: str) -> None:
    with pytest.raises(PluginError) as info:
        plugins.load("fencers", "ipmi-typo")
    msg = str(info.value)
    assert "no fencer driver named 'ipmi-typo'" in msg
    assert "good" in msg and "weak" in msg


def test_missing_capability_is_named(fake_dist: str) -> None:
    with pytest.raises(
        PluginError,
        match=r"fencer driver 'weak' \(.*WeakFencer\) lacks the required capabilities "
        r"confirm_power_off \(it has: power_off\)",
    ):
        plugins.load("fencers", "weak", required_capabilities=["confirm_power_off", "power_off"])


def test_undeclared_capabilities_and_broken_drivers(fake_dist: str) -> None:
    with pytest.raises(PluginError, match="does not declare `capabilities: frozenset"):
        plugins.load("fencers", "undeclared")
    with pytest.raises(PluginError, match=r"'broken' .* could not be loaded: ModuleNotFoundError"):
        plugins.load("fencers", "broken")
