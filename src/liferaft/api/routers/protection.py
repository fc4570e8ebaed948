"""Protection routes: protect servers and volumes, groups, policies, checkpoints.

=======  ==================================  =============================================
POST     /v1/protect/servers                 ORBIT's protect_vm: ``{"server", "policy", "volumes"}``
POST     /v1/protect/volumes                 ORBIT's protect_volume: ``{"volume", "policy"}``
GET      /v1/groups                          protection groups of this site
POST     /v1/groups                          ``{"name", "policy"}``
GET      /v1/groups/{group}                  one group (name or id)
POST     /v1/groups/{group}/members          ``{"kind": "server"|"volume", "id", "tier", "rank"}``
POST     /v1/groups/{group}/checkpoints      take a checkpoint now
GET      /v1/policies, /v1/policies/{name}   policies (``default`` exists from the start)
PUT      /v1/policies/{name}                 create or replace a policy
GET      /v1/checkpoints?group=              checkpoints, oldest first
POST     /v1/catalog/rebuild                 rebuild this site's catalog from the manifests
=======  ==================================  =============================================
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Literal, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field

from liferaft.api.auth import require_token
from liferaft.errors import GiveUp, LiferaftError, NeedsHuman, NotLeader, RetryLater
from liferaft.protection.model import Conflict, Invalid, Policy, Unknown
from liferaft.protection.rebuild import rebuild
from liferaft.recovery.runtime import DrRuntime

router = APIRouter(prefix="/v1", tags=["protection"], dependencies=[Depends(require_token)])
T = TypeVar("T")


def runtime(request: Request) -> DrRuntime:
    dr: DrRuntime | None = getattr(request.app.state, "dr", None)
    if dr is None:
        raise HTTPException(503, "protection is not running in this controller")
    if not dr.enabled:
        raise HTTPException(
            503, "protection is off: set protection.manifest_key in the controller's config"
        )
    return dr


def status_of(err: LiferaftError) -> int:
    if isinstance(err, Invalid):
        return 400
    if isinstance(err, Unknown):
        return 404
    if isinstance(err, (Conflict, NeedsHuman)):
        return 409
    if isinstance(err, (NotLeader, RetryLater)):
        return 503
    if isinstance(err, GiveUp):
        return 422
    return 500


async def call(fn: Callable[[], Awaitable[T]]) -> T:
    try:
        return await fn()
    except LiferaftError as err:
        raise HTTPException(status_of(err), str(err)) from None


async def blocking(fn: Callable[[], T]) -> T:
    async def run() -> T:
        return await asyncio.to_thread(fn)

    return await call(run)


class ProtectServer(BaseModel):
    server: str = Field(min_length=1, description="Server id at this site.")
    policy: str = Field(default="default", min_length=1)
    volumes: bool = Field(
        default=True, description="Protect the volumes attached to the server with it."
    )


class ProtectVolume(BaseModel):
    volume: str = Field(min_length=1, description="Volume id at this site.")
    policy: str = Field(default="default", min_length=1)


class NewGroup(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    policy: str = Field(default="default", min_length=1)


class NewMember(BaseModel):
    kind: Literal["server", "volume"]
    id: str = Field(min_length=1)
    tier: int = Field(default=0, ge=0, description="Boot tier at recovery (lower first).")
    rank: int = Field(
        default=0, ge=0, description="Position in the quiesce order (0: after the others)."
    )


class PolicyIn(BaseModel):
    rpo_seconds: float
    interval_seconds: float
    retention_count: int = 6
    retention_age_seconds: float = 86400.0
    consistency: str = "ordered-quiesce"
    method: str = "snapshot-backup"
    chain_length: int = 12


@router.post("/protect/servers", status_code=201, summary="Protect a server (protect_vm)")
async def protect_server(body: ProtectServer, request: Request) -> dict[str, Any]:
    dr = runtime(request)
    g = await call(
        lambda: dr.protection.protect(
            "server", body.server, policy=body.policy, volumes=body.volumes
        )
    )
    return g.to_dict()


@router.post("/protect/volumes", status_code=201, summary="Protect a volume (protect_volume)")
async def protect_volume(body: ProtectVolume, request: Request) -> dict[str, Any]:
    dr = runtime(request)
    g = await call(lambda: dr.protection.protect("volume", body.volume, policy=body.policy))
    return g.to_dict()


@router.get("/groups", summary="Protection groups")
async def list_groups(request: Request) -> dict[str, Any]:
    dr = runtime(request)
    groups = await blocking(lambda: dr.catalog.list_groups(site=dr.protection.site))
    return {"groups": [g.to_dict() for g in groups]}


@router.post(
    "/groups",
    status_code=201,
    summary="Create a protection group (the same name and policy again returns it)",
)
async def create_group(body: NewGroup, request: Request) -> dict[str, Any]:
    dr = runtime(request)
    g = await blocking(lambda: dr.protection.create_group(body.name, policy=body.policy))
    return g.to_dict()


@router.get("/groups/{group}", summary="One protection group")
async def show_group(group: str, request: Request) -> dict[str, Any]:
    dr = runtime(request)
    g = await blocking(lambda: dr.catalog.get_group(group))
    cps = await blocking(lambda: dr.catalog.list_checkpoints(group_id=g.id))
    return {**g.to_dict(), "checkpoints": [c.to_dict() for c in cps[-10:]]}


@router.post("/groups/{group}/members", status_code=201, summary="Add a server or volume")
async def add_member(group: str, body: NewMember, request: Request) -> dict[str, Any]:
    dr = runtime(request)
    g = await call(
        lambda: dr.protection.add(group, body.kind, body.id, tier=body.tier, rank=body.rank)
    )
    return g.to_dict()


@router.post("/groups/{group}/checkpoints", status_code=202, summary="Checkpoint a group now")
async def checkpoint_now(group: str, request: Request) -> dict[str, Any]:
    dr = runtime(request)

    def start() -> dict[str, Any]:
        g = dr.catalog.get_group(group)
        return dr.protection.start_checkpoint(g, dr.submit).to_dict()

    return await blocking(start)


@router.get("/policies", summary="Protection policies")
async def list_policies(request: Request) -> dict[str, Any]:
    dr = runtime(request)
    return {"policies": [p.to_dict() for p in await blocking(dr.catalog.list_policies)]}


@router.get("/policies/{name}", summary="One policy")
async def show_policy(name: str, request: Request) -> dict[str, Any]:
    dr = runtime(request)
    return (await blocking(lambda: dr.catalog.get_policy(name))).to_dict()


@router.put("/policies/{name}", summary="Create or replace a policy")
async def set_policy(name: str, body: PolicyIn, request: Request) -> dict[str, Any]:
    dr = runtime(request)
    policy = Policy(name=name, updated_at=dr.clock.now(), **body.model_dump())
    return (await blocking(lambda: dr.catalog.set_policy(policy))).to_dict()


@router.get("/checkpoints", summary="Checkpoints, oldest first")
async def list_checkpoints(
    request: Request, group: str | None = Query(None, description="Group name or id.")
) -> dict[str, Any]:
    dr = runtime(request)

    def rows() -> list[dict[str, Any]]:
        gid = dr.catalog.get_group(group).id if group else None
        return [c.to_dict() for c in dr.catalog.list_checkpoints(group_id=gid)]

    return {"checkpoints": await blocking(rows)}


@router.post(
    "/catalog/rebuild",
    summary="Rebuild this site's protection catalog from the recovery site's manifests",
)
async def rebuild_catalog(request: Request) -> dict[str, Any]:
    dr = runtime(request)
    out = await call(lambda: rebuild(dr.deps, recovery_site=dr.protection.recovery_site))
    return out.to_dict()
