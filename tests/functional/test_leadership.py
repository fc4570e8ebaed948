"""Two controllers for one role on one store: only the leader acts, and a lost leader stays lost.

Both are real controller processes (``tests/support/controller.py``) driving
the ``fleet`` workflow against the simulator, on the simulator's stepped
clock: the lease expires only when the test moves the clock.  A leader is
killed (``SIGKILL`` at a hook) or frozen (``SIGSTOP`` at a hook, the pause
variant) and the other one takes over once the lease has run out; the frozen
one, resumed, creates nothing and writes nothing -- including when it was
frozen between its lease check and its cloud call, and when it was frozen
after the cloud accepted its create but before it recorded it (the new
leader adopts that resource by its tag).

The scenarios take the store URL, so ``tests/integration/test_engine_postgres.py``
runs them on PostgreSQL too.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from liferaft.store import Store, sqlite_url
from tests.support.controller import (
    ROLE,
    WORKFLOW_ID,
    ControllerProcess,
    cloud_inventory,
    fleet_names,
    fleet_params,
)
from tests.support.sim import SimProcess

TTL = 30.0
RENEW = TTL / 3
N = 2


def start(
    sim: SimProcess, store_url: str, tmp: Path, holder: str, params: dict[str, Any], **kw: Any
) -> ControllerProcess:
    return ControllerProcess(
        store=store_url, sim=sim, holder=holder, params=params, log_dir=tmp, ttl=TTL, **kw
    )


def assert_exactly_the_fleet(sim: SimProcess, params: dict[str, Any]) -> dict[str, Any]:
    inv = cloud_inventory(sim)
    names = fleet_names(N, ports=params["ports"])
    for kind, wanted in names.items():
        assert inv[kind] == Counter({n: 1 for n in wanted}), (kind, inv[kind])
    return inv


def check_takeover(store_url: str, old: Any, *, holder: str) -> Any:
    """The new lease is the next epoch, taken after the old one expired and within one campaign period."""
    with Store(store_url, migrate=False) as store:
        new = store.get_lease(ROLE)
    assert new is not None and new.holder == holder and new.epoch == old.epoch + 1
    taken_at = new.expires_at - TTL
    assert old.expires_at <= taken_at <= old.expires_at + RENEW + 1, (old, new)
    return new


def events_by_epoch(store_url: str) -> Counter[int]:
    with Store(store_url, migrate=False) as store:
        return Counter(e.epoch for e in store.events(workflow_id=WORKFLOW_ID, limit=100000))


# -- scenarios (also run on PostgreSQL) -----------------------------------------------------------
def killed_leader_is_replaced(sim: SimProcess, store_url: str, tmp: Path) -> None:
    params = fleet_params(sim, N, concurrency=1)
    a = start(sim, store_url, tmp, "a", params, kill_at="after_cloud_call@volume-1")
    b: ControllerProcess | None = None
    try:
        assert a.expect("leading") == "1"
        a.wait()  # dead at the hook: the cloud has volume-1, nobody recorded it
        with Store(store_url, migrate=False) as store:
            old = store.get_lease(ROLE)
        assert old is not None and old.holder == "a"
        b = start(sim, store_url, tmp, "b", params)
        b.expect("started")
        sim.advance(RENEW)  # b contends; a's lease still holds
        sim.advance(TTL - RENEW + 1)  # now it has expired
        assert b.expect("leading") == "2"
        assert b.expect("settled").split()[0] == "done"
        check_takeover(store_url, old, holder="b")
        assert_exactly_the_fleet(sim, params)
        assert set(events_by_epoch(store_url)) == {1, 2}
        assert "leading" not in " ".join(b.lines)
    finally:
        a.stop()
        if b is not None:
            b.stop()


def paused_leader_creates_nothing(sim: SimProcess, store_url: str, tmp: Path, hook: str) -> None:
    """Freeze leader ``a`` at ``hook`` of step volume-1; ``b`` takes over; ``a`` wakes up."""
    params = fleet_params(sim, N, concurrency=1)
    a = start(sim, store_url, tmp, "a", params, pause_at=f"{hook}@volume-1")
    b: ControllerProcess | None = None
    try:
        assert a.expect("leading") == "1"
        a.wait_stopped()
        made_by_a = [v for v in cloud_inventory(sim)["volume"] if v == "lrk-volume-1"]
        assert made_by_a == ([] if hook == "before_cloud_call" else ["lrk-volume-1"])
        conn = sim.connect("east")
        a_volume = [
            v.id for v in conn.block_storage.volumes(all_projects=True) if v.name == "lrk-volume-1"
        ]
        conn.close()
        with Store(store_url, migrate=False) as store:
            old = store.get_lease(ROLE)
        assert old is not None and old.holder == "a"
        written_by_a = events_by_epoch(store_url)[1]

        b = start(sim, store_url, tmp, "b", params)
        b.expect("started")
        sim.advance(TTL + 1)  # a, frozen, lets its lease run out
        assert b.expect("leading") == "2"
        assert b.expect("settled").split()[0] == "done"
        check_takeover(store_url, old, holder="b")
        inv_before_resume = assert_exactly_the_fleet(sim, params)

        a.cont()  # a wakes up right where it was frozen
        assert a.expect("lost") == "1"
        sim.advance(RENEW)  # a campaigns again and is refused; b renews
        b_lease = None
        with Store(store_url, migrate=False) as store:
            b_lease = store.get_lease(ROLE)
            ledger = {r.key: r for r in store.list_resources(run_id=WORKFLOW_ID)}
        assert b_lease is not None and (b_lease.holder, b_lease.epoch) == ("b", 2)

        # No duplicate, nothing conflicting, nothing more from a.
        assert assert_exactly_the_fleet(sim, params) == inv_before_resume
        assert events_by_epoch(store_url)[1] == written_by_a
        assert ledger["lrk-volume-1"].epoch == 2
        if a_volume:  # a's create was accepted: b adopted that very volume
            assert ledger["lrk-volume-1"].cloud_id == a_volume[0]
        assert not [ln for ln in a.lines if ln.startswith("leading")]
    finally:
        a.stop()
        if b is not None:
            b.stop()


# -- tests -------------------------------------------------------------------------------------------
@pytest.mark.slow
def test_a_killed_leader_is_replaced_within_the_lease(sim: SimProcess, tmp_path: Path) -> None:
    killed_leader_is_replaced(sim, sqlite_url(tmp_path / "state"), tmp_path)


@pytest.mark.slow
def test_a_leader_frozen_between_lease_check_and_cloud_call_creates_nothing(
    sim: SimProcess, tmp_path: Path
) -> None:
    paused_leader_creates_nothing(
        sim, sqlite_url(tmp_path / "state"), tmp_path, "before_cloud_call"
    )


@pytest.mark.slow
def test_a_leader_frozen_after_the_cloud_accepted_its_create_is_adopted_not_duplicated(
    sim: SimProcess, tmp_path: Path
) -> None:
    paused_leader_creates_nothing(sim, sqlite_url(tmp_path / "state"), tmp_path, "after_cloud_call")
