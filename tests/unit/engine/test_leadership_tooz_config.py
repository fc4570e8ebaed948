"""``leadership.backend: tooz``: the config refuses lock drivers that cannot expire; the factory;
the tooz lock decides who campaigns while the store keeps the epoch (a fake coordinator here;
``tests/integration/test_leadership_tooz.py`` runs real processes on a real Redis)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import tooz

from liferaft.config import load_config, parse_config
from liferaft.engine.clock import ManualClock
from liferaft.engine.leadership import Leadership
from liferaft.engine.leadership_tooz import (
    ToozLeadership,
    check_coordination_url,
    lock_options,
    make_leadership,
    redact,
    with_options,
)
from liferaft.errors import ConfigError, FencedOff
from liferaft.store import Store

T0 = 1767225600.0


def config(tmp_path: Path, leadership: str) -> Path:
    p = tmp_path / "liferaft.yaml"
    p.write_text(f"site: {{name: east}}\nleadership: {leadership}\n")
    return p


@pytest.mark.parametrize(
    "url",
    [
        "file:///var/lib/liferaft/locks",
        "zake://",
        "ipc://",
        "mysql://lr:s3cret-pw@db/liferaft",
        "postgresql://lr:s3cret-pw@db/liferaft",
        "127.0.0.1:6379",
    ],
)
def test_a_driver_that_cannot_expire_a_lease_is_refused(tmp_path: Path, url: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_config(config(tmp_path, f"{{backend: tooz, coordination_url: '{url}'}}"))
    msg = str(err.value)
    assert msg.count("\n") == 0 and "leadership: coordination_url: tooz driver" in msg
    assert "cannot expire a lease" in msg and "redis" in msg
    assert "s3cret-pw" not in msg  # the URL may hold a password: never echoed


def test_tooz_needs_a_url_and_the_default_is_the_store(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"leadership: backend 'tooz' needs coordination_url"):
        load_config(config(tmp_path, "{backend: tooz}"))
    with pytest.raises(ConfigError, match=r"leadership.backend"):
        load_config(config(tmp_path, "{backend: zookeeper}"))
    s = load_config(config(tmp_path, "{lease_seconds: 9}"))
    assert s.leadership.backend == "store" and s.leadership.coordination_url is None
    s = load_config(config(tmp_path, "{backend: tooz, coordination_url: 'redis://10.0.0.5:6379'}"))
    assert s.leadership.coordination_url == "redis://10.0.0.5:6379"


def test_the_module_refuses_the_same_urls_naming_the_key() -> None:
    with pytest.raises(ConfigError, match=r"^leadership.coordination_url: tooz driver 'file'"):
        check_coordination_url("file:///tmp/locks")
    check_coordination_url("redis://127.0.0.1:6379")
    check_coordination_url("etcd3+https://etcd:2379")


def test_factory_picks_the_backend(store: Store) -> None:
    clock = ManualClock(T0)
    s = parse_config({"site": {"name": "east"}, "leadership": {"lease_seconds": 6}})
    lead = make_leadership(s, store, clock, holder="a")
    assert type(lead) is Leadership and lead.ttl == 6 and lead.role == "controller"
    s = parse_config(
        {
            "site": {"name": "east"},
            "leadership": {"backend": "tooz", "coordination_url": "redis://127.0.0.1:1"},
        }
    )
    lead = make_leadership(s, store, clock, holder="a", ttl=3)
    assert isinstance(lead, ToozLeadership) and lead.ttl == 3
    assert lead.coordination_url == "redis://127.0.0.1:1"  # nothing connects until it campaigns


def test_lock_expires_with_the_lease_and_url_options_win() -> None:
    opts = lock_options("redis://h:6379", ttl=2.5, margin=0.5)
    assert opts == {"lock_timeout": "3", "socket_timeout": "0.5", "socket_connect_timeout": "0.5"}
    assert "lock_timeout" not in lock_options("redis://h:6379?lock_timeout=9", ttl=2.5, margin=1)
    assert lock_options("etcd3+http://e:2379", ttl=15, margin=3) == {"lock_timeout": "15"}
    assert with_options("redis://h:1?db=2", {"lock_timeout": "3"}) == (
        "redis://h:1?db=2&lock_timeout=3"
    )
    assert redact("redis://:pw@h:6379/0") == "redis://:***@h:6379/0"
    assert redact("redis://u:pw@h") == "redis://u:***@h"
    assert redact("redis://h:6379") == "redis://h:6379"


# -- the lock decides who campaigns; the store keeps the epoch ------------------------------------
class FakeLock:
    def __init__(self, owners: dict[bytes, str], name: bytes, me: str) -> None:
        self.owners, self.name, self.me = owners, name, me
        self.acquired = False

    def acquire(self, blocking: bool = True) -> bool:
        assert blocking is False
        if self.owners.get(self.name) in (None, self.me):
            self.owners[self.name] = self.me
            self.acquired = True
        return self.acquired

    def heartbeat(self) -> bool:
        if self.owners.get(self.name) != self.me:
            raise tooz.ToozError("Cannot reacquire a lock that's no longer owned")
        return True

    def release(self) -> bool:
        self.acquired = False
        if self.owners.get(self.name) == self.me:
            del self.owners[self.name]
            return True
        return False


class FakeCoordinator:
    def __init__(self, owners: dict[bytes, str], me: str) -> None:
        self.owners, self.me = owners, me
        self.running = False

    def start(self, start_heart: bool = False) -> None:
        self.running = True

    def stop(self) -> None:
        self.running = False

    def get_lock(self, name: bytes) -> Any:
        return FakeLock(self.owners, name, self.me)


def contenders(
    store: Store, clock: ManualClock
) -> tuple[dict[bytes, str], ToozLeadership, ToozLeadership]:
    owners: dict[bytes, str] = {}
    made = [
        ToozLeadership(
            store,
            "ctl",
            clock=clock,
            coordination_url="redis://127.0.0.1:1",
            holder=h,
            ttl=3.0,
            coordinator=FakeCoordinator(owners, h),
        )
        for h in ("a", "b")
    ]
    return owners, made[0], made[1]


def test_only_the_lock_holder_asks_the_store(store: Store) -> None:
    clock = ManualClock(T0)
    owners, a, b = contenders(store, clock)
    owners[b"liferaft-leader-ctl"] = "b"  # b holds the lock but has not taken the lease yet
    assert not a.try_acquire()
    assert store.get_lease("ctl") is None  # a never asked the store
    assert b.try_acquire() and b.epoch == 1
    assert not a.try_acquire()


def test_lost_lock_stops_the_leader_and_the_next_one_takes_the_next_epoch(store: Store) -> None:
    clock = ManualClock(T0)
    owners, a, b = contenders(store, clock)
    assert a.try_acquire() and a.epoch == 1
    stale = a.fence()
    # The lock expired while a was frozen; b took it.  The store's lease still runs for a.
    owners[b"liferaft-leader-ctl"] = "b"
    assert not b.try_acquire()  # lock held, but the lease has not run out: not yet
    assert not a.renew() and not a.is_leader  # a stops acting at once (confirm() fails too)
    clock.advance(3.1)
    assert b.try_acquire() and b.epoch == 2
    with pytest.raises(FencedOff):
        store.add_note(stale, now=clock.now(), detail={"late": True})
    assert not a.try_acquire()
    b.release()  # a clean stop frees the lease and the lock at once
    assert owners == {} and a.try_acquire() and a.epoch == 3


def test_the_controller_leads_through_a_prepared_leadership(store: Store) -> None:
    from liferaft.engine.controller import Controller

    clock = ManualClock(T0, auto_advance=True)
    owners, a, _ = contenders(store, clock)

    async def run() -> None:
        ctl = Controller(store, clock=clock, leadership=a)
        assert ctl.leadership is a and ctl.executor.leadership is a
        ctl.start()
        await asyncio.wait_for(ctl.wait_leading(), 10)
        assert ctl.leading and owners == {b"liferaft-leader-ctl": "a"}
        await ctl.stop()

    asyncio.run(run())
    lease = store.get_lease("ctl")
    assert owners == {} and lease is not None and lease.holder == ""  # both given up on stop
