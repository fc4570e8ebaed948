"""Compute-host HA routes (``app.state.ha``: the :class:`~liferaft.ha.service.HaService`).

=======  ===================================  ===========================================
GET      /v1/ha/status                        monitors, breaker, silent hosts, counts
GET      /v1/ha/segments                      failover segments
GET      /v1/ha/hosts                         every watched host and its lifecycle
POST     /v1/ha/hosts/{host}/maintenance      ``{"on": bool, "reason"}``: no recovery while on
POST     /v1/ha/hosts/{host}/rejoin           a repaired (recovered) host rejoins
GET      /v1/ha/events                        HA events (notifications, fences, breaker ...)
=======  ===================================  ===========================================

Fencing credentials never appear: the fencers are shown by driver and address only.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from liferaft.api.auth import require_token
from liferaft.errors import GiveUp, LiferaftError, NotFound, NotLeader, RetryLater
from liferaft.ha.service import HaService, fencer_summary

router = APIRouter(prefix="/v1/ha", tags=["ha"], dependencies=[Depends(require_token)])


def status_of(err: LiferaftError) -> int:
    if isinstance(err, NotFound):
        return 404
    if isinstance(err, (NotLeader, RetryLater)):
        return 503
    if isinstance(err, GiveUp):
        return 409
    return 400


def service(request: Request) -> HaService:
    ha: HaService | None = getattr(request.app.state, "ha", None)
    if ha is None:
        raise HTTPException(503, "host HA is off: set ha.enabled in the controller's config")
    return ha


class MaintenanceIn(BaseModel):
    on: bool = Field(description="Put the host in maintenance (true) or take it out (false).")
    reason: str | None = Field(default=None, max_length=500, description="Why, for the record.")


async def _blocking(fn: Any, *args: Any, **kwargs: Any) -> Any:
    try:
        return await asyncio.to_thread(fn, *args, **kwargs)
    except LiferaftError as err:
        raise HTTPException(status_of(err), str(err)) from None


@router.get("/status", summary="HA status")
async def status(request: Request) -> dict[str, Any]:
    ha = service(request)
    return dict(await _blocking(ha.status))


@router.get("/segments", summary="Failover segments and their fencing")
async def segments(request: Request) -> dict[str, Any]:
    ha = service(request)
    return {"segments": ha.segments(), "fencing": fencer_summary(ha.settings)}


@router.get("/hosts", summary="Watched hosts")
async def hosts(request: Request) -> dict[str, Any]:
    ha = service(request)
    return {"hosts": await _blocking(ha.hosts)}


@router.post("/hosts/{host}/maintenance", summary="Set or clear maintenance mode")
async def maintenance(request: Request, host: str, body: MaintenanceIn) -> dict[str, Any]:
    ha = service(request)
    row = await _blocking(ha.set_maintenance, host, body.on, reason=body.reason)
    return dict(row.as_dict())


@router.post("/hosts/{host}/rejoin", status_code=202, summary="Rejoin a repaired host")
async def rejoin(request: Request, host: str) -> dict[str, Any]:
    ha = service(request)
    try:
        wf_id = ha.rejoin(host)
    except LiferaftError as err:
        raise HTTPException(status_of(err), str(err)) from None
    return {"host": host, "workflow_id": wf_id}


@router.get("/events", summary="HA events, oldest first")
async def events(
    request: Request,
    after: int = Query(0, ge=0, description="Return events with a larger id."),
    limit: int = Query(100, ge=1, le=1000),
) -> dict[str, Any]:
    ha = service(request)
    rows = await _blocking(ha.store.events, after=after, limit=100000)
    out = [asdict(e) for e in rows if "ha" in e.detail or (e.workflow_id or "").startswith("ha-")][
        :limit
    ]
    return {"events": out, "last": out[-1]["id"] if out else after}
