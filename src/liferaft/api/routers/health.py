"""``GET /health``: liveness, and whether the store and the site's identity answer."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from liferaft.api.services import Services
from liferaft.errors import describe

router = APIRouter(tags=["health"])


class Check(BaseModel):
    ok: bool = Field(description="Whether the dependency answered.")
    detail: str = Field(default="", description="What went wrong, when it did.")


class Health(BaseModel):
    status: Literal["ok", "degraded"] = Field(
        description="`ok` when every check passes; the process is alive either way."
    )
    checks: dict[str, Check]


async def _check(coro: Any, timeout: float) -> Check:
    try:
        await asyncio.wait_for(coro, timeout)
        return Check(ok=True)
    except TimeoutError:
        return Check(ok=False, detail=f"no answer within {timeout:g}s")
    except Exception as exc:
        return Check(ok=False, detail=describe(exc))


@router.get("/health", response_model=Health, summary="Liveness and dependency checks")
async def health(request: Request) -> Health:
    services: Services = request.app.state.services
    checks: dict[str, Check] = {}
    if services.store is not None:
        store = services.store
        checks["store"] = await _check(asyncio.to_thread(store.events, after=0, limit=1), 5.0)
    else:
        checks["store"] = Check(ok=False, detail="no state store configured")
    checks["identity"] = await _check(services.cloud.ping(), 10.0)
    ok = all(c.ok for c in checks.values())
    return Health(status="ok" if ok else "degraded", checks=checks)
