from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.sim import SimProcess


@pytest.fixture
def sim_factory(tmp_path: Path) -> Iterator[Callable[..., SimProcess]]:
    """Start simulators with their own state directory; all are stopped at teardown."""
    started: list[SimProcess] = []

    def start(**kwargs: Any) -> SimProcess:
        sim = SimProcess(tmp_path / f"sim{len(started)}", **kwargs)
        started.append(sim)
        return sim

    yield start
    for sim in started:
        sim.stop()


@pytest.fixture
def sim(sim_factory: Callable[..., SimProcess]) -> SimProcess:
    """A stepped-clock simulator with the default topology (east, west)."""
    return sim_factory()
