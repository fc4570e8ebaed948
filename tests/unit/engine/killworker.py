"""A controller process for the kill tests: drives one workflow against a fake cloud.

``python -m tests.unit.engine.killworker STATE_DIR CLOUD_DB INCARNATION [forward|rollback]``

The "cloud" is a small SQLite file (:class:`FakeCloud`), a test double for
an abstract cloud that, like OpenStack, has no idempotency keys: a create
that happened is there whether or not the controller lived to record it.
Each incarnation is a new leader (its clock starts far enough after the
previous one's that the dead leader's lease has expired).  The process
prints the workflow's final state as JSON; the tests arm kill hooks with
``LIFERAFT_KILL_AT``.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import uuid
from pathlib import Path
from typing import Any

from liferaft.engine.clock import ManualClock
from liferaft.engine.executor import Executor, StepContext
from liferaft.engine.hooks import KillHooks
from liferaft.engine.idempotency import IdempotencyTag
from liferaft.engine.leadership import Leadership
from liferaft.engine.workflow import RetryPolicy, StepDef, WorkflowDef
from liferaft.errors import RetryLater
from liferaft.store import Store, sqlite_url

T0 = 1767225600.0
RUN_ID = "run-1"


class FakeCloud:
    """Resources in a SQLite file: (id, kind, name, metadata)."""

    def __init__(self, path: Path | str) -> None:
        self.db = sqlite3.connect(str(path), isolation_level=None, timeout=30)
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS resources"
            " (id TEXT PRIMARY KEY, kind TEXT, name TEXT, metadata TEXT)"
        )

    def create(self, kind: str, tag: IdempotencyTag) -> dict[str, Any]:
        rid = uuid.uuid4().hex
        self.db.execute(
            "INSERT INTO resources VALUES (?, ?, ?, ?)",
            (rid, kind, tag.name, json.dumps(tag.metadata)),
        )
        return {"id": rid, "name": tag.name}

    def find(self, kind: str, tag: IdempotencyTag) -> dict[str, Any] | None:
        rows = self.db.execute(
            "SELECT id, name, metadata FROM resources WHERE kind = ? AND name = ?", (kind, tag.name)
        ).fetchall()
        for rid, name, meta in rows:
            if tag.matches(name, json.loads(meta)):
                return {"id": rid, "name": name}
        return None

    def delete(self, rid: str) -> None:
        self.db.execute("DELETE FROM resources WHERE id = ?", (rid,))

    def all(self) -> list[tuple[str, str, str]]:
        return self.db.execute(
            "SELECT id, kind, name FROM resources ORDER BY kind, name"
        ).fetchall()


def build(cloud: FakeCloud) -> Any:
    def creator(kind: str, name: str, *, flaky: bool = False) -> Any:
        async def run(ctx: StepContext) -> dict[str, Any]:
            if flaky and ctx.attempt == 1:
                raise RetryLater("the cloud said 503")
            res = await ctx.ensure_created(
                kind=kind,
                name=name,
                find=lambda tag: cloud.find(kind, tag),
                create=lambda tag: cloud.create(kind, tag),
                cloud_id=lambda r: str(r["id"]),
            )
            return {"id": res["id"]}

        return run

    def undo(ctx: StepContext) -> None:
        for r in ctx.resources():
            cloud.delete(r.cloud_id)

    def verify(ctx: StepContext) -> dict[str, int]:
        return {"resources": len(cloud.all())}

    def make(params: dict[str, Any]) -> WorkflowDef:
        return WorkflowDef(
            "demo",
            [
                StepDef("network", creator("network", "net"), site="east", undo=undo),
                StepDef(
                    "boot_web",
                    creator("server", "web"),
                    depends_on=("network",),
                    site="east",
                    undo=undo,
                ),
                StepDef(
                    "boot_db",
                    creator("server", "db", flaky=True),
                    depends_on=("network",),
                    site="east",
                    undo=undo,
                ),
                StepDef("verify", verify, depends_on=("boot_web", "boot_db")),
            ],
            site_concurrency=1,
            retry=RetryPolicy(initial=5),
        )

    return make


async def main(state_dir: str, cloud_db: str, incarnation: int, mode: str) -> dict[str, Any]:
    store = Store(sqlite_url(state_dir))
    cloud = FakeCloud(cloud_db)
    clock = ManualClock(T0 + incarnation * 1000, auto_advance=True)
    lead = Leadership(store, "ctl", clock=clock, holder=f"worker-{incarnation}", ttl=100)
    if not lead.try_acquire():
        raise RuntimeError("could not lead")
    ex = Executor(store, clock=clock, leadership=lead, hooks=KillHooks.from_env())
    ex.register("demo", build(cloud))
    ex.submit("demo", {}, workflow_id=RUN_ID)
    await ex.recover()
    wf = store.get_workflow(RUN_ID)
    if mode == "rollback" and wf.state == "done":
        wf = await ex.rollback(RUN_ID)
    return {"state": wf.state, "epoch": wf.epoch, "error": wf.error}


if __name__ == "__main__":
    out = asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]))
    print(json.dumps(out))
