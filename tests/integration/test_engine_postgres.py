"""The controller's crash and leadership guarantees on PostgreSQL (the simulator as the cloud).

The same scenarios as ``tests/functional/test_engine_kill.py`` and
``tests/functional/test_leadership.py``, with the state store in a fresh
PostgreSQL database.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.functional.test_engine_kill import kill_at_every_hook
from tests.functional.test_leadership import (
    killed_leader_is_replaced,
    paused_leader_creates_nothing,
)
from tests.support.sim import SimProcess

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

KILLS = [
    "before_call@volume-0",
    "after_cloud_call@volume-0",
    "after_cloud_call@port-0",
    "after_cloud_call@server-0",
    "before_record@volume-1",
    "after_cloud_call@server-1",
    "before_workflow_record",
]


@pytest.mark.timeout(600)
def test_kill_at_hooks_on_postgres(sim: SimProcess, pg_url: str, tmp_path: Path) -> None:
    kill_at_every_hook(sim, pg_url, tmp_path, KILLS)


def test_killed_leader_is_replaced_on_postgres(
    sim: SimProcess, pg_url: str, tmp_path: Path
) -> None:
    killed_leader_is_replaced(sim, pg_url, tmp_path)


def test_frozen_leader_creates_nothing_on_postgres(
    sim: SimProcess, pg_url: str, tmp_path: Path
) -> None:
    paused_leader_creates_nothing(sim, pg_url, tmp_path, "before_cloud_call")
