"""DR-Logic routes (``app.state.dr.logic``: the :class:`~liferaft.logic.loop.LogicLoop`).

=======  ===================  =================================================================
GET      /v1/logic/status     the active logic (and whether it fell back), the latest decisions
                              with their reasons and what was done with each, the link as
                              measured, forced checkpoints, clean-ups, and per group its
                              current RPO, RPO ÷ target and compliance
=======  ===================  =================================================================
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Request

from liferaft.api.auth import require_token
from liferaft.errors import LiferaftError
from liferaft.logic.loop import LogicLoop

router = APIRouter(prefix="/v1/logic", tags=["logic"], dependencies=[Depends(require_token)])


def loop(request: Request) -> LogicLoop:
    dr = getattr(request.app.state, "dr", None)
    if dr is None:
        raise HTTPException(503, "protection is not running in this controller")
    found: LogicLoop | None = getattr(dr, "logic", None)
    if found is None:
        raise HTTPException(
            503, "protection is off: set protection.manifest_key in the controller's config"
        )
    return found


@router.get("/status", summary="DR-Logic status: RPO per group, compliance, latest decisions")
async def status(request: Request) -> dict[str, Any]:
    lp = loop(request)
    try:
        return await asyncio.to_thread(lp.status)
    except LiferaftError as err:
        raise HTTPException(503, str(err)) from None
