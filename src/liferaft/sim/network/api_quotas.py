"""Neutron's quotas over HTTP: ``GET/PUT /v2.0/quotas/{project}`` and, with the
``quota_details`` extension (Pike), ``GET /v2.0/quotas/{project}/details``
(limit, used and reserved per resource).

The simulator counts what a project has but does not refuse a create over
its quota: the limits are there for clients that check before they act
(Liferaft's recovery plan check).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..http import ApiError, json_response
from ..identity import Ctx
from ..service import endpoint
from .facade import PREFIX, body

if TYPE_CHECKING:
    from ..world import Site

#: Neutron's default quotas (neutron.conf [quotas]).
DEFAULTS = {
    "network": 100,
    "subnet": 100,
    "port": 500,
    "router": 10,
    "floatingip": 50,
    "security_group": 10,
    "security_group_rule": 100,
}


def routes(site: Site) -> list[BaseRoute]:
    state = site.network
    limits: dict[str, dict[str, int]] = {}

    def allowed(ctx: Ctx, project: str) -> None:
        if project != ctx.project_id and not ctx.is_admin:
            raise ApiError(403, "Not authorized.", neutron_type="HTTPForbidden")

    def used(project: str) -> dict[str, int]:
        def count(items: Any) -> int:
            return sum(1 for x in items if x.project_id == project)

        groups = [g for g in state.security_groups.values() if g.project_id == project]
        return {
            "network": count(state.networks.values()),
            "subnet": count(state.subnets.values()),
            "port": count(state.ports.values()),
            "router": count(state.routers.values()),
            "floatingip": count(state.floating_ips.values()),
            "security_group": len(groups),
            "security_group_rule": sum(len(g.rules) for g in groups),
        }

    def quota(project: str) -> dict[str, int]:
        return {**DEFAULTS, **limits.get(project, {})}

    @endpoint(site, "neutron")
    async def show(request: Request, ctx: Ctx) -> Response:
        project = request.path_params["project"]
        allowed(ctx, project)
        if request.method == "PUT":
            if not ctx.is_admin:
                raise ApiError(403, "Not authorized.", neutron_type="HTTPForbidden")
            raw = (await body(request)).get("quota")
            if not isinstance(raw, dict):
                raise ApiError(
                    400, "Invalid input: body needs a 'quota' object", neutron_type="HTTPBadRequest"
                )
            for k, val in raw.items():
                if (
                    k not in DEFAULTS
                    or not isinstance(val, int)
                    or isinstance(val, bool)
                    or val < -1
                ):
                    raise ApiError(
                        400,
                        f"Invalid input for {k}. Reason: '{val}' is not a valid quota.",
                        neutron_type="HTTPBadRequest",
                    )
            limits.setdefault(project, {}).update(raw)
        return json_response({"quota": quota(project)})

    @endpoint(site, "neutron")
    async def details(request: Request, ctx: Ctx) -> Response:
        project = request.path_params["project"]
        allowed(ctx, project)
        u = used(project)
        doc = {
            k: {"limit": v, "used": u.get(k, 0), "reserved": 0} for k, v in quota(project).items()
        }
        return json_response({"quota": doc})

    return [
        Route(f"{PREFIX}/quotas/{{project}}/details", details, methods=["GET"]),
        Route(f"{PREFIX}/quotas/{{project}}", show, methods=["GET", "PUT"]),
    ]
