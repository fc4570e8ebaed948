"""Every registered driver passes its kind's conformance suite; the suite catches bad drivers."""

from __future__ import annotations

import sys
import textwrap
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from liferaft import plugins
from liferaft.testing.conformance import SPECS, assert_conforms, check_driver, registered


def test_every_kind_has_a_suite() -> None:
    assert set(SPECS) == set(plugins.KINDS)


@pytest.mark.parametrize(("kind", "name"), registered(), ids=lambda v: str(v))
def test_registered_driver_conforms(kind: str, name: str) -> None:
    assert_conforms(kind, name)


def test_built_in_drivers_are_found() -> None:
    kinds = {kind for kind, _ in registered()}
    # Every kind that has a port and built-in drivers is exercised above.
    assert {"fencers", "notifiers", "evacuators"} <= kinds


@pytest.fixture
def bad_dist(tmp_path: Path) -> Iterator[str]:
    """A throwaway installed distribution with drivers that break the contract in known ways."""
    mod = f"lr_bad_drivers_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{mod}.py").write_text(
        textwrap.dedent(
            """
            class SyncFencer:
                capabilities = frozenset({"power_off", "teleport"})

                def power_off(self):
                    pass

                async def power_on(self):
                    pass

            class GoodEvacuator:
                capabilities = frozenset({"targeted"})

                async def evacuate(self, cloud, server_id, target=None, *, force=False):
                    pass

            class RudeEvacuator:
                capabilities = frozenset({"targeted"})

                async def evacuate(self, cloud, server, *, target, priority):
                    pass

            class Empty:
                capabilities = frozenset()

                async def notify(self, notice):
                    return []
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
            lr-test-sync = {mod}:SyncFencer
            [liferaft.evacuators]
            lr-test-good = {mod}:GoodEvacuator
            lr-test-rude = {mod}:RudeEvacuator
            [liferaft.notifiers]
            lr-test-empty = {mod}:Empty
            lr-test-missing = {mod}_nowhere:Nothing
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


def test_the_suite_names_every_problem(bad_dist: str) -> None:
    assert check_driver("evacuators", "lr-test-good") == []
    problems = check_driver("fencers", "lr-test-sync")
    assert "power_off() must be async, as in Fencer" in problems
    assert "lacks the method power_state() of Fencer" in problems
    assert any(p.startswith("declares unknown capabilities teleport") for p in problems)
    rude = check_driver("evacuators", "lr-test-rude")
    assert "evacuate(): lacks the port's parameter 'server_id'" in rude
    assert "evacuate(): 'target' must be positional, as in the port" in rude
    assert "evacuate(): extra parameter 'priority' needs a default" in rude
    assert "evacuate(): extra parameter 'server' needs a default" in rude
    assert check_driver("notifiers", "lr-test-empty") == []
    missing = check_driver("notifiers", "lr-test-missing")
    assert len(missing) == 1 and "could not be loaded: ModuleNotFoundError" in missing[0]
    with pytest.raises(
        AssertionError, match="fencer driver 'lr-test-sync' does not conform:\n  - "
    ):
        assert_conforms("fencers", "lr-test-sync")
