"""HTTP facade of the simulated compute service (Nova v2.1) and Placement.

Routes live in small modules by resource (`servers_api`, `actions_api`,
`admin_api`, `resources_api`); this one holds version discovery, the
extension list (where the simulator's quiesce action is advertised), the
handler wrapper that negotiates the microversion and echoes it, and the
route table.  The catalog URL is ``<site>/compute/v2.1`` with no project id.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .. import service
from ..http import ApiError, Version, error_response, fmt_version, json_response, microversion

if TYPE_CHECKING:
    from ..identity import Ctx
    from ..world import Site

MIN_VERSION: Version = (2, 1)
MAX_VERSION: Version = (2, 96)
PREFIX = "/compute/v2.1"

NovaHandler = Callable[[Request, "Ctx", Version], Awaitable[Response]]
Endpoint = Callable[[Request], Awaitable[Response]]

#: The extensions Nova still lists, plus the simulator's quiesce action.
EXTENSIONS: list[dict[str, str]] = [
    {
        "alias": "os-server-quiesce",
        "name": "ServerQuiesce",
        "description": "Quiesce and unquiesce a server: POST /servers/{id}/action with "
        '{"quiesce": null} freezes the guest file systems so a consistent snapshot can be '
        'taken; {"unquiesce": null} thaws them. Modelled on the OPNFV multisite '
        "geo-site disaster recovery proposal.",
    },
    {"alias": "os-evacuate", "name": "Evacuate", "description": "Enables server evacuation."},
    {"alias": "os-services", "name": "Services", "description": "Services support."},
    {
        "alias": "os-hypervisors",
        "name": "Hypervisors",
        "description": "Admin-only hypervisor administration.",
    },
    {"alias": "os-server-groups", "name": "ServerGroups", "description": "Server group support."},
    {"alias": "os-keypairs", "name": "Keypairs", "description": "Keypair Support."},
    {"alias": "os-volumes", "name": "Volumes", "description": "Volumes support."},
    {
        "alias": "os-availability-zone",
        "name": "AvailabilityZone",
        "description": "1. Add availability_zone to the Create Server API.",
    },
    {"alias": "os-quota-sets", "name": "Quotas", "description": "Quotas management support."},
    {
        "alias": "os-instance-actions",
        "name": "InstanceActions",
        "description": "View a log of actions and events taken on an instance.",
    },
]


def nova(site: Site, *, admin: bool = False) -> Callable[[NovaHandler], Endpoint]:
    """Wrap ``handler(request, ctx, microversion)``: auth, faults, microversion, Nova errors."""

    def deco(fn: NovaHandler) -> Endpoint:
        async def inner(request: Request, ctx: Ctx) -> Response:
            mv = microversion(
                request,
                "compute",
                MIN_VERSION,
                MAX_VERSION,
                legacy_header="x-openstack-nova-api-version",
            )
            resp = await fn(request, ctx, mv)
            resp.headers["OpenStack-API-Version"] = f"compute {fmt_version(mv)}"
            resp.headers["X-OpenStack-Nova-API-Version"] = fmt_version(mv)
            resp.headers["Vary"] = "OpenStack-API-Version, X-OpenStack-Nova-API-Version"
            return resp

        inner.__name__ = fn.__name__
        return service.endpoint(site, "nova", admin=admin)(inner)

    return deco


def resource(path: str, **methods: Endpoint) -> Route:
    """One route for a path that dispatches on the method; others get Nova's 405."""

    async def dispatch(request: Request) -> Response:
        method = request.method if request.method != "HEAD" else "GET"
        fn = methods.get(method)
        if fn is None:
            return error_response(
                ApiError(405, "The method specified is not allowed for this resource."), "nova"
            )
        return await fn(request)

    # Every method reaches ``dispatch`` so the 405 has Nova's body, not Starlette's.
    return Route(path, dispatch, methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"])


def both(path: str, **methods: Endpoint) -> list[Route]:
    """The route with and without a trailing slash (clients use both, no redirects)."""
    return [resource(path, **methods), resource(path + "/", **methods)]


def version_doc(site: Site) -> dict[str, Any]:
    return {
        "id": "v2.1",
        "status": "CURRENT",
        "version": fmt_version(MAX_VERSION),
        "min_version": fmt_version(MIN_VERSION),
        "updated": "2013-07-23T11:33:21Z",
        "links": [
            {"rel": "self", "href": f"{site.url}{PREFIX}/"},
            {"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
        ],
        "media-types": [
            {
                "base": "application/json",
                "type": "application/vnd.openstack.compute+json;version=2.1",
            }
        ],
    }


def routes(site: Site) -> list[BaseRoute]:
    from . import actions_api, admin_api, placement, resources_api, servers_api

    @service.public(site, "nova")
    async def versions(request: Request) -> Response:
        return json_response({"versions": [version_doc(site)]})

    @service.public(site, "nova")
    async def v21(request: Request) -> Response:
        return json_response({"version": version_doc(site)})

    @nova(site)
    async def list_extensions(request: Request, ctx: Ctx, mv: Version) -> Response:
        return json_response({"extensions": [_ext(e) for e in EXTENSIONS]})

    @nova(site)
    async def get_extension(request: Request, ctx: Ctx, mv: Version) -> Response:
        alias = request.path_params["alias"]
        for e in EXTENSIONS:
            if e["alias"] == alias:
                return json_response({"extension": _ext(e)})
        raise ApiError(404, f"Extension {alias} could not be found.")

    @service.public(site, "nova")
    async def unknown(request: Request) -> Response:
        raise ApiError(404, "The resource could not be found.")

    out: list[BaseRoute] = [
        *both("/compute", GET=versions),
        *both(PREFIX, GET=v21),
        resource(f"{PREFIX}/extensions", GET=list_extensions),
        resource(f"{PREFIX}/extensions/{{alias}}", GET=get_extension),
    ]
    out += servers_api.routes(site)
    out += actions_api.routes(site)
    out += admin_api.routes(site)
    out += resources_api.routes(site)
    out.append(
        Route(f"{PREFIX}/{{rest:path}}", unknown, methods=["GET", "POST", "PUT", "DELETE", "PATCH"])
    )
    out += placement.routes(site)
    return out


def _ext(e: dict[str, str]) -> dict[str, Any]:
    return {
        **e,
        "namespace": f"http://docs.openstack.org/compute/ext/{e['alias']}/api/v1.1",
        "updated": "2014-12-03T00:00:00Z",
        "links": [],
    }
