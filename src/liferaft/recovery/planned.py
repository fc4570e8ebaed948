"""A planned run (kind ``recovery-planned``): move a healthy site's groups here with no data lost.

Runs on the recovery site's controller while the protected site is up.
Steps::

    stop:<g>:<s> ─ stop:<g>:<s> ... (each group's servers, in its quiesce order;
                     │               each waited on until SHUTOFF, its writes ended)
                   sync:<g>         (a final checkpoint of the stopped group: the
                     │               checkpoint workflow, submitted here and waited on)
                   recover          (the newest verified manifests -- the final syncs --
                                     recovered by the ``recovery`` workflow, waited on)

The final checkpoint is taken after the servers stopped, so it holds their
last write: the data loss is none.  Its id is fixed by the run
(``<run>-sync-<g>``), and the recovery workflow's is ``<run>-recover``, so
a replayed step submits nothing twice.  The protected site stays
quarantined afterwards (:mod:`.quarantine`) until released or failed back.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from liferaft.clouds.port import Cloud
from liferaft.engine.clock import Clock
from liferaft.engine.executor import StepContext
from liferaft.engine.states import WORKFLOW_TERMINAL, WorkflowState
from liferaft.engine.workflow import RetryPolicy, StepDef, WorkflowDef
from liferaft.errors import GiveUp, NotFound, RetryLater
from liferaft.protection import checkpoint
from liferaft.protection.catalog import Catalog
from liferaft.protection.checkpoint import wait_until
from liferaft.protection.model import DEFAULT_POLICY, Checkpoint, Unknown
from liferaft.store import Store

from . import disaster

KIND = "recovery-planned"

Submit = Callable[[str, dict[str, Any], str], Any]
Newest = Callable[[str], Any]


@dataclass
class PlannedDeps:
    site: str
    clouds: dict[str, Cloud]
    catalog: Catalog
    store: Store
    clock: Clock
    submit: Submit
    #: ``newest(protected_site)``: the newest verified manifests (service.newest_verified).
    newest: Newest
    poll: float = 1.0
    timeout: float = 3600.0


def sync_id(run_id: str, gi: int) -> str:
    return f"{run_id}-sync-{gi}"


def recover_id(run_id: str) -> str:
    return f"{run_id}-recover"


def order(manifest: dict[str, Any]) -> list[int]:
    """Indexes of the manifest's servers in its quiesce order (the stop order)."""
    servers = manifest["servers"]
    rank = {sid: i for i, sid in enumerate(manifest.get("quiesce_order") or [])}
    return sorted(
        range(len(servers)),
        key=lambda i: (rank.get(servers[i]["id"], len(rank)), servers[i].get("quiesce_rank", 0), i),
    )


def _protected(deps: PlannedDeps, ctx: StepContext) -> Cloud:
    site = ctx.params["protected_site"]
    try:
        return deps.clouds[site]
    except KeyError:
        raise GiveUp(f"no cloud configured for {site}: a planned run stops its servers") from None


async def stop(deps: PlannedDeps, ctx: StepContext, gi: int, si: int) -> dict[str, Any]:
    srv = ctx.params["groups"][gi]["manifest"]["servers"][si]
    cloud = _protected(deps, ctx)
    s = await cloud.get_server(srv["id"])
    if s.status == "ACTIVE" and s.task_state is None:
        try:
            await cloud.stop_server(srv["id"])
        except GiveUp:
            # Stopped meanwhile by someone else (the quarantine of this very run, which
            # holds from the moment the run exists, or an operator): fine if it is.
            s = await cloud.get_server(srv["id"])
            if s.status != "SHUTOFF" and s.task_state is None:
                raise
    s = await wait_until(
        deps.clock,
        lambda: cloud.get_server(srv["id"]),
        lambda x: x.status == "SHUTOFF",
        failed=lambda x: x.status == "ERROR",
        what=f"{cloud.site}: stop {srv['name']}",
        poll=deps.poll,
        timeout=deps.timeout,
    )
    return {"server_id": s.id, "name": srv["name"], "stopped_at": deps.clock.now()}


def sync_params(manifest: dict[str, Any], checkpoint_id: str, policy: str) -> dict[str, Any]:
    """Checkpoint workflow params for a final full checkpoint of a manifest's group."""
    g = manifest["group"]
    return {
        "checkpoint_id": checkpoint_id,
        "group_id": g["id"],
        "group_name": g["name"],
        "site": g["site"],
        "recovery_site": g["recovery_site"],
        "policy": policy,
        # The servers are stopped: their disks are consistent without a quiesce.
        "consistency": "crash-consistent",
        "servers": [
            {
                "id": s["id"],
                "name": s["name"],
                "rank": s.get("quiesce_rank", 0),
                "tier": s.get("tier", 0),
            }
            for s in manifest["servers"]
        ],
        "volumes": [{"id": v["id"]} for v in manifest["volumes"]],
        "parent_id": None,  # full: this controller knows no chain of the group
        "chain_id": checkpoint_id,
    }


async def _follow(deps: PlannedDeps, workflow_id: str, what: str) -> None:
    start = deps.clock.now()
    while True:
        try:
            wf = deps.store.get_workflow(workflow_id)
        except NotFound:
            wf = None
        if wf is not None and wf.state in WORKFLOW_TERMINAL:
            if wf.state != WorkflowState.DONE:
                raise GiveUp(f"{what} {workflow_id} ended {wf.state}: {wf.error or ''}".strip())
            return
        if deps.clock.now() - start > deps.timeout:
            raise RetryLater(f"{what} {workflow_id} still running after {deps.timeout:.0f}s")
        await deps.clock.sleep(deps.poll)


async def sync(deps: PlannedDeps, ctx: StepContext, gi: int) -> dict[str, Any]:
    manifest = ctx.params["groups"][gi]["manifest"]
    cid = sync_id(ctx.params["run_id"], gi)
    try:
        policy = deps.catalog.get_policy(manifest["group"]["policy"]).name
    except Unknown:
        policy = DEFAULT_POLICY  # the group's policy lives at the protected site's controller
    params = sync_params(manifest, cid, policy)
    deps.catalog.create_checkpoint(
        Checkpoint(
            id=cid,
            group_id=params["group_id"],
            state="pending",
            requested_at=deps.clock.now(),
            workflow_id=cid,
            chain_id=cid,
        )
    )
    deps.submit(checkpoint.KIND, params, cid)
    await _follow(deps, cid, "final sync checkpoint")
    cp = deps.catalog.get_checkpoint(cid)
    return {"checkpoint_id": cid, "captured_at": cp.captured_at, "manifest": cp.manifest}


async def recover(deps: PlannedDeps, ctx: StepContext) -> dict[str, Any]:
    p = ctx.params
    found = await deps.newest(p["protected_site"])
    want = {sync_id(p["run_id"], gi) for gi in range(len(p["groups"]))}
    got = {g["manifest"]["checkpoint_id"] for g in found.groups}
    if not want <= got:
        raise GiveUp(
            f"the final sync checkpoints are not the newest verified at {deps.site}: "
            f"want {sorted(want)}, found {sorted(got)}; refused: {found.refused}"
        )
    wid = recover_id(p["run_id"])
    params = {
        "run_id": p["run_id"],
        "mode": p["mode"],
        "protected_site": p["protected_site"],
        "recovery_site": p["recovery_site"],
        "declared_down": None,
        "requested_at": p["requested_at"],
        "groups": [g for g in found.groups if g["manifest"]["checkpoint_id"] in want],
        "refused": found.refused,
        "resolved": p.get("resolved") or {},  # the plan check's, at the run's start
    }
    deps.submit(disaster.KIND, params, wid)
    await _follow(deps, wid, "recovery")
    report = deps.store.get_step(wid, "report").result
    return {"workflow_id": wid, "report": report}


async def retire(deps: PlannedDeps, ctx: StepContext) -> dict[str, Any]:
    from .failback import retire as retire_old

    return await retire_old(deps.clouds[deps.site], deps.catalog, ctx, deps.clock, deps.poll)


def build(deps: PlannedDeps, params: dict[str, Any]) -> WorkflowDef:
    def bind(fn: Callable[..., Any], *args: Any) -> Callable[[StepContext], Any]:
        async def run(ctx: StepContext) -> Any:
            return await fn(deps, ctx, *args)

        return run

    psite = params["protected_site"]
    steps: list[StepDef] = []
    syncs = []
    for gi, g in enumerate(params["groups"]):
        prev: tuple[str, ...] = ()
        for si in order(g["manifest"]):
            name = f"stop:g{gi}:s{si}"
            steps.append(StepDef(name, bind(stop, gi, si), depends_on=prev, site=psite))
            prev = (name,)
        steps.append(StepDef(f"sync:g{gi}", bind(sync, gi), depends_on=prev))
        syncs.append(f"sync:g{gi}")
    before = tuple(syncs)
    if params.get("mode") == "failback":  # the old copies here give up their addresses
        steps.append(StepDef("retire", bind(retire), depends_on=before, site=deps.site))
        before = ("retire",)
    steps.append(StepDef("recover", bind(recover), depends_on=before))
    return WorkflowDef(KIND, steps, retry=RetryPolicy(max_attempts=6, initial=2.0, max_delay=60.0))
