"""``GET /v1/info``: which site this controller serves, its version, whether it leads."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, Field

import liferaft
from liferaft.api.auth import require_token
from liferaft.api.services import Services
from liferaft.config import Settings

router = APIRouter(prefix="/v1", tags=["info"], dependencies=[Depends(require_token)])


class Info(BaseModel):
    site: str = Field(description="The site this controller serves.")
    peers: list[str] = Field(description="The other sites it knows.")
    version: str = Field(description="Liferaft's version.")
    leader: bool = Field(description="Whether this controller holds the leadership and may act.")
    role: str = Field(description="The leadership role it contends for.")
    epoch: int | None = Field(description="Epoch of its lease while it leads.")
    clock: str = Field(description="Where it reads time: `real` or `simulator`.")
    now: float = Field(description="The controller's current time (seconds since the epoch).")


@router.get("/info", response_model=Info, summary="This controller")
async def info(request: Request) -> Info:
    services: Services = request.app.state.services
    settings: Settings = request.app.state.settings
    lead = services.leadership
    return Info(
        site=settings.site.name,
        peers=[p.name for p in settings.peers],
        version=liferaft.__version__,
        leader=bool(lead is not None and lead.is_leader),
        role=settings.leadership.role,
        epoch=lead.epoch if lead is not None and lead.is_leader else None,
        clock=settings.clock.source,
        now=services.clock.now(),
    )
