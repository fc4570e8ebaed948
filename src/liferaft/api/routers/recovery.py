"""Recovery routes: start a disaster recovery of a failed site, follow its runs.

=======  ==============================  ==========================================
POST     /v1/recovery                    ``{"datacenter", "mode", "declare_down"}``: start
POST     /v1/recovery/runs/{id}/cleanup  delete what a test run made (idempotent)
POST     /v1/recovery/runs/{id}/reprotect protect what a run recovered, towards its origin
GET      /v1/sites/quarantine            quarantined sites and what enforcement saw
POST     /v1/sites/{site}/release        lift a site's quarantine
GET      /v1/recovery/plan/{site}        the checkpoints a recovery of ``site`` would use
GET      /v1/recovery/check/{site}       the plan check: every problem a recovery would meet
GET      /v1/recovery/runs               every run
GET      /v1/recovery/runs/{id}          one run: state, progress, timeline, report
=======  ==============================  ==========================================
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

from liferaft.api.auth import require_token
from liferaft.api.routers.protection import blocking, call, runtime
from liferaft.errors import NotFound
from liferaft.recovery.modes import child_workflows
from liferaft.recovery.runtime import DrRuntime

router = APIRouter(prefix="/v1", tags=["recovery"], dependencies=[Depends(require_token)])


class RecoveryIn(BaseModel):
    datacenter: str = Field(min_length=1, description="The failed (protected) site.")
    mode: Literal["disaster", "test", "planned", "failback"] = Field(
        default="disaster",
        description="disaster (site lost, declared down), test (isolated, production "
        "untouched), planned (stop, final sync, recover: no data lost), failback (a planned "
        "run home of a reprotected workload).",
    )
    declare_down: str | None = Field(
        default=None,
        description="The operator's declaration that this site is down: must name `datacenter`.",
    )


def _exists(dr: DrRuntime, workflow_id: str) -> bool:
    try:
        dr.store.get_workflow(workflow_id)
    except NotFound:
        return False
    return True


def run_view(dr: DrRuntime, run_id: str) -> dict[str, Any]:
    run = dr.catalog.get_run(run_id)
    wf = dr.store.get_workflow(run["workflow_id"])
    # A planned run's own steps, then its recovery workflow's (modes.child_workflows).
    wids = [wf.id] + [w for w in child_workflows(run) if _exists(dr, w)]
    steps = [s for w in wids for s in dr.store.get_steps(w)]
    started: dict[str, float] = {}
    timeline = []
    events = [e for w in wids for e in dr.store.events(workflow_id=w, limit=10000)]
    for e in events:
        if e.subject != "step" or e.step is None:
            continue
        if e.to_state == "running" and e.step not in started:
            started[e.step] = e.at
        if e.to_state in ("done", "failed"):
            timeline.append(
                {
                    "step": e.step,
                    "state": e.to_state,
                    "start_s": started.get(e.step, e.at) - run["requested_at"],
                    "end_s": e.at - run["requested_at"],
                }
            )
    report = next((s.result for s in steps if s.name == "report" and s.state == "done"), None)
    return {
        **run,
        "state": wf.state,
        "error": wf.error,
        "steps_total": len(steps),
        "steps_done": sum(1 for s in steps if s.state == "done"),
        "failed_steps": {s.name: s.error for s in steps if s.state in ("failed", "blocked")},
        "timeline": timeline,
        "report": report,
        "refused_manifests": wf.params.get("refused", []),
        "cleanup": dr.modes.cleanup_state(run_id) if run["mode"] == "test" else None,
    }


@router.post("/recovery", status_code=202, summary="Recover a failed datacenter here")
async def start(body: RecoveryIn, request: Request) -> dict[str, Any]:
    dr = runtime(request)
    run = await call(
        lambda: dr.modes.start(
            body.datacenter, mode=body.mode, declare_down=body.declare_down, submit=dr.submit
        )
    )
    return await blocking(lambda: run_view(dr, run["id"]))


@router.post("/recovery/runs/{run_id}/cleanup", status_code=202, summary="Clean up a test run")
async def cleanup(run_id: str, request: Request) -> dict[str, Any]:
    dr = runtime(request)
    await blocking(lambda: dr.modes.cleanup(run_id, dr.submit))
    return await blocking(lambda: run_view(dr, run_id))


@router.post("/recovery/runs/{run_id}/reprotect", summary="Reprotect a recovered workload")
async def reprotect(run_id: str, request: Request) -> dict[str, Any]:
    dr = runtime(request)
    groups = await blocking(lambda: dr.modes.reprotect(run_id, dr.protection, dr.submit))
    return {"groups": [g.to_dict() for g in groups]}


@router.get("/sites/quarantine", summary="Quarantined sites")
async def quarantined(request: Request) -> dict[str, Any]:
    dr = runtime(request)
    runs = await blocking(dr.catalog.list_runs)
    dr.quarantine.refresh(runs)
    return {"sites": dr.quarantine.status()}


@router.post("/sites/{site}/release", status_code=202, summary="Lift a site's quarantine")
async def release(site: str, request: Request) -> dict[str, Any]:
    dr = runtime(request)
    run = await blocking(lambda: dr.modes.release(site, dr.submit))
    return await blocking(lambda: run_view(dr, run["id"]))


@router.get("/recovery/plan/{site}", summary="What a recovery of a site would use")
async def plan(site: str, request: Request) -> dict[str, Any]:
    dr = runtime(request)
    found = await call(lambda: dr.recovery.plan(site))
    return {
        "groups": [
            {
                "group": g["manifest"]["group"]["name"],
                "checkpoint_id": g["manifest"]["checkpoint_id"],
                "captured_at": g["manifest"]["captured_at"],
                "servers": len(g["manifest"]["servers"]),
                "volumes": len(g["manifest"]["volumes"]),
            }
            for g in found.groups
        ],
        "refused": found.refused,
    }


@router.get("/recovery/check/{site}", summary="Check a recovery plan: every problem at once")
async def check(site: str, request: Request) -> dict[str, Any]:
    dr = runtime(request)
    checked = await call(lambda: dr.recovery.check(site))
    return checked.to_dict()


@router.get("/recovery/runs", summary="Recovery runs")
async def runs(request: Request) -> dict[str, Any]:
    dr = runtime(request)
    return {"runs": await blocking(dr.catalog.list_runs)}


@router.get("/recovery/runs/{run_id}", summary="One recovery run")
async def show(run_id: str, request: Request) -> dict[str, Any]:
    dr = runtime(request)
    return await blocking(lambda: run_view(dr, run_id))
