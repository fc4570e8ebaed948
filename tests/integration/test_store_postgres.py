"""The state store and leadership contract on a real PostgreSQL 15."""

from __future__ import annotations

import pytest

from liferaft.store import Store
from tests.unit.store.contract import StoreContract

pytestmark = pytest.mark.postgres


class TestStorePostgres(StoreContract):
    @pytest.fixture
    def store_url(self, pg_url: str) -> str:
        return pg_url


def test_plain_postgresql_url_uses_psycopg3(pg_url: str) -> None:
    plain = pg_url.replace("postgresql+psycopg://", "postgresql://")
    with Store(plain) as store:
        assert store.dialect == "postgresql"
        assert store._writer.dialect.driver == "psycopg"


def test_executor_runs_a_workflow_on_postgres(pg_url: str) -> None:
    import asyncio

    from liferaft.engine.clock import ManualClock
    from liferaft.engine.executor import Executor, StepContext
    from liferaft.engine.leadership import Leadership
    from liferaft.engine.workflow import StepDef, WorkflowDef
    from liferaft.errors import RetryLater

    def step(ctx: StepContext) -> int:
        if ctx.step == "b" and ctx.attempt == 1:
            raise RetryLater("busy")
        return len(ctx.results)

    with Store(pg_url) as store:
        clock = ManualClock(auto_advance=True)
        lead = Leadership(store, "ctl", clock=clock, ttl=1e6)
        assert lead.try_acquire()
        ex = Executor(store, clock=clock, leadership=lead)
        ex.register(
            "k",
            lambda p: WorkflowDef(
                "k", [StepDef("a", step), StepDef("b", step, depends_on=("a",), site="east")]
            ),
        )
        ex.submit("k", {"x": [1, 2]}, workflow_id="w")
        wf = asyncio.run(ex.run("w"))
        assert wf.state == "done"
        assert [s.result for s in store.get_steps("w")] == [0, 1]
        ids = [e.id for e in store.events(workflow_id="w")]
        assert ids == sorted(ids) and len(ids) == 9
