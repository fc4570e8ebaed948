"""The state store's and leadership's contract, run on SQLite (unit) and PostgreSQL (integration).

A subclass provides the ``store_url`` fixture (an empty database).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from liferaft.engine.clock import ManualClock
from liferaft.engine.leadership import Leadership
from liferaft.errors import FencedOff, IllegalTransition, NotFound, NotLeader
from liferaft.store import Fence, NewStep, Store
from liferaft.store.migrate import HEADS, current_revisions, head_revisions, upgrade

T0 = 1767225600.0


class StoreContract:
    @pytest.fixture
    def store(self, store_url: str) -> Iterator[Store]:
        s = Store(store_url)
        yield s
        s.close()

    def lead(self, store: Store, holder: str = "a", role: str = "ctl", now: float = T0) -> Fence:
        lease = store.try_acquire(role, holder, now=now, ttl=30)
        assert lease is not None
        return lease.fence

    def new_workflow(self, store: Store, fence: Fence, wid: str = "w1") -> None:
        store.create_workflow(
            fence,
            workflow_id=wid,
            kind="demo",
            params={"n": 1},
            steps=[NewStep("a"), NewStep("b", ("a",), site="east")],
            now=T0,
            state="pending",
            step_state="pending",
        )

    # -- migrations --------------------------------------------------------------
    def test_upgrade_is_idempotent_and_records_head(self, store_url: str) -> None:
        upgrade(store_url)
        upgrade(store_url)
        s = Store(store_url)
        try:
            assert current_revisions(s._writer) == head_revisions() == HEADS
        finally:
            s.close()

    def test_models_match_migrations(self, store: Store) -> None:
        from alembic.autogenerate import compare_metadata
        from alembic.runtime.migration import MigrationContext

        from liferaft.store.models import Base

        with store._writer.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []

    # -- leases ------------------------------------------------------------------
    def test_first_contender_wins_the_lease_at_epoch_1(self, store: Store) -> None:
        lease = store.try_acquire("ctl", "a", now=T0, ttl=10)
        assert lease is not None and lease.epoch == 1 and lease.expires_at == T0 + 10
        assert store.try_acquire("ctl", "b", now=T0 + 5, ttl=10) is None
        # asking again while holding it changes nothing
        again = store.try_acquire("ctl", "a", now=T0 + 5, ttl=10)
        assert again == lease
        # roles are independent
        other = store.try_acquire("ha", "b", now=T0, ttl=10)
        assert other is not None and other.epoch == 1

    def test_expired_lease_is_taken_over_under_the_next_epoch(self, store: Store) -> None:
        a = store.try_acquire("ctl", "a", now=T0, ttl=10)
        assert a is not None
        b = store.try_acquire("ctl", "b", now=T0 + 10.5, ttl=10)
        assert b is not None and b.epoch == 2 and b.holder == "b"
        assert store.renew(a.fence, now=T0 + 11, ttl=10) is None
        assert store.get_lease("ctl") == b

    def test_renew_extends_an_unexpired_lease_only(self, store: Store) -> None:
        a = store.try_acquire("ctl", "a", now=T0, ttl=10)
        assert a is not None
        renewed = store.renew(a.fence, now=T0 + 8, ttl=10)
        assert renewed is not None and renewed.expires_at == T0 + 18 and renewed.epoch == 1
        assert store.try_acquire("ctl", "b", now=T0 + 15, ttl=10) is None
        # past expiry: no renewal even though nobody took it
        assert store.renew(a.fence, now=T0 + 19, ttl=10) is None

    def test_release_hands_over_at_once_and_fences_the_releaser(self, store: Store) -> None:
        a = store.try_acquire("ctl", "a", now=T0, ttl=10)
        assert a is not None
        self.new_workflow(store, a.fence)
        assert store.release(a.fence)
        with pytest.raises(FencedOff):
            store.add_note(a.fence, now=T0 + 1, detail={"msg": "late"})
        b = store.try_acquire("ctl", "b", now=T0 + 1, ttl=10)
        assert b is not None and b.epoch == 2

    def test_concurrent_contenders_exactly_one_wins(self, store_url: str) -> None:
        Store(store_url).close()  # migrate once up front
        n = 6
        barrier = threading.Barrier(n)
        won: list[str] = []
        errors: list[BaseException] = []

        def contend(i: int) -> None:
            s = Store(store_url, migrate=False)
            try:
                barrier.wait()
                lease = s.try_acquire("ctl", f"c{i}", now=T0, ttl=10)
                if lease is not None:
                    won.append(lease.holder)
            except BaseException as exc:
                errors.append(exc)
            finally:
                s.close()

        threads = [threading.Thread(target=contend, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert len(won) == 1

    # -- fenced writes -------------------------------------------------------------
    def test_stale_epoch_writes_are_refused_and_change_nothing(self, store: Store) -> None:
        a = store.try_acquire("ctl", "a", now=T0, ttl=10)
        assert a is not None
        self.new_workflow(store, a.fence)
        before = store.events()
        b = store.try_acquire("ctl", "b", now=T0 + 11, ttl=10)
        assert b is not None
        with pytest.raises(FencedOff, match="epoch 2 held by 'b'"):
            store.transition_workflow(
                a.fence, "w1", to="running", allowed_from={"pending"}, now=T0 + 12
            )
        with pytest.raises(FencedOff):
            store.transition_step(
                a.fence, "w1", "a", to="running", allowed_from={"pending"}, now=T0 + 12
            )
        with pytest.raises(FencedOff):
            store.record_resource(
                a.fence,
                run_id="w1",
                step_id="a",
                kind="server",
                key="",
                cloud_id="x",
                site=None,
                now=T0,
            )
        assert store.get_workflow("w1").state == "pending"
        assert store.events() == before
        wf = store.transition_workflow(
            b.fence, "w1", to="running", allowed_from={"pending"}, now=T0 + 12
        )
        assert wf.state == "running" and wf.epoch == 2

    def test_fence_of_another_role_cannot_touch_a_workflow(self, store: Store) -> None:
        fence = self.lead(store)
        self.new_workflow(store, fence)
        other = self.lead(store, holder="x", role="ha")
        with pytest.raises(NotLeader, match="belongs to role 'ctl'"):
            store.transition_workflow(other, "w1", to="running", allowed_from={"pending"}, now=T0)

    # -- workflows, steps, events ---------------------------------------------------
    def test_create_workflow_is_idempotent(self, store: Store) -> None:
        fence = self.lead(store)
        self.new_workflow(store, fence)
        self.new_workflow(store, fence)
        assert [w.id for w in store.list_workflows()] == ["w1"]
        steps = store.get_steps("w1")
        assert [(s.name, s.depends_on, s.site, s.state) for s in steps] == [
            ("a", (), None, "pending"),
            ("b", ("a",), "east", "pending"),
        ]
        with pytest.raises(ValueError, match="already exists"):
            store.create_workflow(
                fence,
                workflow_id="w1",
                kind="demo",
                params={"n": 2},
                steps=[],
                now=T0,
                state="pending",
                step_state="pending",
            )
        assert len(store.events()) == 1

    def test_transitions_are_compare_and_set(self, store: Store) -> None:
        fence = self.lead(store)
        self.new_workflow(store, fence)
        n = len(store.events())
        with pytest.raises(IllegalTransition, match="'pending' -> 'done'"):
            store.transition_workflow(fence, "w1", to="done", allowed_from={"running"}, now=T0)
        with pytest.raises(IllegalTransition):
            store.transition_step(fence, "w1", "a", to="done", allowed_from={"running"}, now=T0)
        assert len(store.events()) == n
        with pytest.raises(NotFound):
            store.transition_step(fence, "w1", "zz", to="done", allowed_from={"running"}, now=T0)
        with pytest.raises(NotFound):
            store.get_workflow("nope")

    def test_step_fields_and_events(self, store: Store) -> None:
        fence = self.lead(store)
        self.new_workflow(store, fence)
        s = store.transition_step(
            fence, "w1", "a", to="running", allowed_from={"pending"}, now=T0 + 1, attempts=1
        )
        assert s.state == "running" and s.attempts == 1
        s = store.transition_step(
            fence,
            "w1",
            "a",
            to="done",
            allowed_from={"running"},
            now=T0 + 2,
            result={"id": "srv-1", "n": [1, 2]},
            error=None,
        )
        assert s.result == {"id": "srv-1", "n": [1, 2]} and s.attempts == 1
        assert store.get_step("w1", "a") == s
        store.add_note(fence, now=T0 + 3, workflow_id="w1", detail={"msg": "hi"})
        evs = store.events(workflow_id="w1")
        assert [e.id for e in evs] == sorted(e.id for e in evs)
        assert [(e.subject, e.step, e.from_state, e.to_state) for e in evs] == [
            ("workflow", None, None, "pending"),
            ("step", "a", "pending", "running"),
            ("step", "a", "running", "done"),
            ("note", None, None, None),
        ]
        assert evs[1].detail == {"attempt": 1}
        assert store.events(after=evs[1].id, limit=1) == [evs[2]]

    def test_resource_ledger_is_idempotent(self, store: Store) -> None:
        fence = self.lead(store)
        kw = {"run_id": "r1", "step_id": "boot", "kind": "server", "key": "web"}
        r1 = store.record_resource(fence, cloud_id="srv-1", site="west", now=T0, **kw)
        r2 = store.record_resource(fence, cloud_id="srv-1", site="west", now=T0 + 1, **kw)
        assert r1 == r2
        with pytest.raises(ValueError, match="already 'srv-1'"):
            store.record_resource(fence, cloud_id="srv-2", site="west", now=T0, **kw)
        assert store.find_resource(**kw) == r1
        assert store.list_resources(run_id="r1") == [r1]
        assert store.find_resource(run_id="r1", step_id="boot", kind="server", key="db") is None

    # -- leadership over the store -----------------------------------------------------
    def test_leadership_one_wins_other_takes_over_and_old_is_fenced(self, store_url: str) -> None:
        clock = ManualClock(T0)
        s1, s2 = Store(store_url), Store(store_url, migrate=False)
        try:
            a = Leadership(s1, "ctl", clock=clock, holder="a", ttl=10)
            b = Leadership(s2, "ctl", clock=clock, holder="b", ttl=10)
            assert a.try_acquire() and not b.try_acquire()
            fa = a.fence()
            self.new_workflow(s1, fa)
            with pytest.raises(NotLeader):
                b.fence()
            # a keeps renewing: b never gets in
            for _ in range(5):
                clock.advance(3)
                assert a.renew()
                assert not b.try_acquire()
            # a is paused (stops renewing); its lease runs out and b takes over
            # (a stops believing it leads `margin` seconds before anyone may take over)
            clock.advance(8.5)
            assert not a.is_leader
            assert not b.try_acquire()
            clock.advance(2)
            assert b.try_acquire() and b.epoch == 2
            # a wakes up and writes with its old token: refused
            with pytest.raises(FencedOff):
                s1.transition_workflow(
                    fa, "w1", to="running", allowed_from={"pending"}, now=clock.now()
                )
            assert not a.renew() and a.lease is None
            s2.transition_workflow(
                b.fence(), "w1", to="running", allowed_from={"pending"}, now=clock.now()
            )
            b.release()
            assert a.try_acquire() and a.epoch == 3
        finally:
            s1.close()
            s2.close()

    def test_campaign_and_keep_on_the_clock(self, store_url: str) -> None:
        async def scenario() -> None:
            clock = ManualClock(T0)
            store = Store(store_url)
            try:
                a = Leadership(store, "ctl", clock=clock, holder="a", ttl=9)
                b = Leadership(store, "ctl", clock=clock, holder="b", ttl=9)
                await a.campaign()
                keeper = asyncio.create_task(a.keep())
                contender = asyncio.create_task(b.campaign())
                for _ in range(10):
                    await asyncio.sleep(0)
                    clock.advance(1)
                    await asyncio.sleep(0)
                assert not contender.done() and a.is_leader
                keeper.cancel()  # a stops renewing (crash / pause)
                for _ in range(30):
                    await asyncio.sleep(0)
                    if contender.done():
                        break
                    clock.advance(1)
                lease = await asyncio.wait_for(contender, 1)
                assert lease.holder == "b" and lease.epoch == 2
                with pytest.raises(NotLeader):
                    a.fence()
            finally:
                store.close()

        asyncio.run(scenario())
