from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from liferaft.engine.clock import ManualClock
from liferaft.engine.executor import Executor
from liferaft.engine.leadership import Leadership
from liferaft.store import Store, sqlite_url

T0 = 1767225600.0


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(sqlite_url(tmp_path / "state"))
    yield s
    s.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0, auto_advance=True)


@pytest.fixture
def leader(store: Store, clock: ManualClock) -> Leadership:
    lead = Leadership(store, "ctl", clock=clock, holder="test", ttl=1e9)
    assert lead.try_acquire()
    return lead


@pytest.fixture
def executor(store: Store, clock: ManualClock, leader: Leadership) -> Executor:
    return Executor(store, clock=clock, leadership=leader)
