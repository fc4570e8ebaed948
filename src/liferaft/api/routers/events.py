"""``GET /v1/events?after=ID``: the engine's event log, oldest first (poll with the last id)."""

from __future__ import annotations

import asyncio
from dataclasses import asdict
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from liferaft.api.auth import require_token
from liferaft.api.services import Services

router = APIRouter(prefix="/v1", tags=["events"], dependencies=[Depends(require_token)])


class EventOut(BaseModel):
    id: int
    workflow_id: str | None
    step: str | None
    subject: str = Field(description="`workflow`, `step` or `note`.")
    from_state: str | None
    to_state: str | None
    at: float
    epoch: int
    detail: dict[str, Any]


class Events(BaseModel):
    events: list[EventOut]
    last: int = Field(
        description="Id of the last event returned (or `after`): pass it as `after` next time."
    )


@router.get("/events", response_model=Events, summary="Events after an id")
async def events(
    request: Request,
    after: int = Query(0, ge=0, description="Return events with a larger id."),
    workflow: str | None = Query(None, description="Only this workflow's events."),
    limit: int = Query(100, ge=1, le=1000, description="At most this many."),
) -> Events:
    services: Services = request.app.state.services
    if services.store is None:
        raise HTTPException(503, "no state store configured")
    rows = await asyncio.to_thread(
        services.store.events, after=after, workflow_id=workflow, limit=limit
    )
    out = [EventOut(**asdict(e)) for e in rows]
    return Events(events=out, last=out[-1].id if out else after)
