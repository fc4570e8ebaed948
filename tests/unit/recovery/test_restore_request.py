"""A restore asked for right after an import with no read-back (Cinder may still be importing)."""

from __future__ import annotations

import asyncio

import pytest

from liferaft.clouds.model import Backup
from liferaft.errors import GiveUp
from liferaft.recovery.disaster import RecoveryDeps, request_restore


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def now(self) -> float:
        return self.t

    async def sleep(self, s: float) -> None:
        self.t += s


class Cloud:
    """A backup that becomes available after ``ready_at`` seconds; restores refused before."""

    site = "west"

    def __init__(self, clock: Clock, *, ready_at: float, volume_ok: bool = True) -> None:
        self.clock = clock
        self.ready_at = ready_at
        self.volume_ok = volume_ok
        self.restores: list[tuple[str, str]] = []
        self.refused = 0
        self.gets = 0

    async def get_volume(self, vid: str) -> None:  # pragma: no cover - not watched here
        raise AssertionError

    async def get_server(self, sid: str) -> None:  # pragma: no cover - not watched here
        raise AssertionError

    def _status(self) -> str:
        return "available" if self.clock.now() >= self.ready_at else "creating"

    async def get_backup(self, backup_id: str) -> Backup:
        self.gets += 1
        return Backup(id=backup_id, name="b", volume_id="v", status=self._status(), size_gb=1)

    async def request_restore(self, backup_id: str, volume_id: str) -> None:
        if self._status() != "available" or not self.volume_ok:
            self.refused += 1
            raise GiveUp("west: restore backup: 400 Invalid")
        self.restores.append((backup_id, volume_id))


def deps(cloud: Cloud, clock: Clock) -> RecoveryDeps:
    return RecoveryDeps(site="west", cloud=cloud, verifier=None, clock=clock, poll=1.0)  # type: ignore[arg-type]


def test_an_imported_backup_is_not_read_back_when_the_restore_is_accepted() -> None:
    clock = Clock()
    cloud = Cloud(clock, ready_at=0.0)
    asyncio.run(request_restore(deps(cloud, clock), "b1", "v1", checked=False))
    assert cloud.restores == [("b1", "v1")] and cloud.gets == 0 and cloud.refused == 0


def test_a_restore_refused_while_importing_waits_for_the_backup_and_asks_again() -> None:
    clock = Clock()
    cloud = Cloud(clock, ready_at=3.0)
    asyncio.run(request_restore(deps(cloud, clock), "b1", "v1", checked=False))
    assert cloud.refused == 1 and cloud.restores == [("b1", "v1")]
    assert clock.now() == 3.0  # polled on the injected clock until available


@pytest.mark.parametrize("checked", [True, False])
def test_any_other_refusal_stands(checked: bool) -> None:
    """The backup is available (read, or found so after the refusal): the 400 was about
    something else (e.g. the volume), so it is not asked again."""
    clock = Clock()
    cloud = Cloud(clock, ready_at=0.0, volume_ok=False)
    with pytest.raises(GiveUp, match="400"):
        asyncio.run(request_restore(deps(cloud, clock), "b1", "v1", checked=checked))
    assert cloud.refused == 1 and cloud.restores == []
    assert cloud.gets == (0 if checked else 1)
