"""HTTP facade of the simulated network service (Neutron's Networking v2.0 API).

Routes live under ``/networking``: the catalog gives ``<site>/networking``
and the SDK appends ``/v2.0``.  Resources are split by module: networks,
subnets and ports (``api_core``), floating IPs and routers (``api_l3``),
security groups (``api_security``); agents and extensions are here.
Every error, an unknown path included, is a ``NeutronError`` body.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..http import ApiError, json_response
from ..identity import Ctx
from ..service import endpoint, public
from . import api_core, api_l3, api_quotas, api_security, api_tags, errors
from . import validate as v
from .facade import PREFIX, body, list_response, one

if TYPE_CHECKING:
    from ..world import Site

#: (alias, name, description) of every extension the simulator implements.
EXTENSIONS = [
    ("agent", "agent", "The agent management extension."),
    ("allowed-address-pairs", "Allowed Address Pairs", "Provides allowed address pairs"),
    ("binding", "Port Binding", "Expose port bindings of a virtual port to external application"),
    (
        "external-net",
        "Neutron external network",
        "Adds external network attribute to network resource.",
    ),
    ("net-mtu", "Network MTU", "Provides MTU attribute for a network resource."),
    ("port-security", "Port Security", "Provides port security"),
    ("provider", "Provider Network", "Expose mapping of virtual networks to physical networks"),
    (
        "router",
        "Neutron L3 Router",
        "Router abstraction for basic L3 forwarding between L2 Neutron networks and access to external networks via a NAT gateway.",
    ),
    ("quotas", "Quota management support", "Expose functions for quotas management per project"),
    (
        "quota_details",
        "Quota details extension",
        "Expose functions for quotas usage statistics per project",
    ),
    ("security-group", "security-group", "The security groups extension."),
    (
        "standard-attr-tag",
        "Tag support",
        "Enables to set tag on resources with standard attribute.",
    ),
    (
        "tag-ports-during-bulk-creation",
        "Tag Ports During Bulk Creation",
        "Allow to tag ports during bulk creation",
    ),
    (
        "standard-attr-description",
        "standard-attr-description",
        "Extension to add descriptions to standard attributes",
    ),
    (
        "standard-attr-revisions",
        "Resource revision numbers",
        "This extension will display the revision number of neutron resources.",
    ),
    (
        "standard-attr-timestamp",
        "Resource timestamps",
        "Adds created_at and updated_at fields to all Neutron resources that have Neutron standard attributes.",
    ),
]

AGENT_UPDATE = frozenset({"admin_state_up", "description"})


def _extension_doc(alias: str, name: str, description: str) -> dict[str, Any]:
    return {
        "alias": alias,
        "name": name,
        "description": description,
        "updated": "2013-01-01T00:00:00-00:00",
        "links": [],
    }


def routes(site: Site) -> list[BaseRoute]:
    state = site.network

    @public(site, "neutron")
    async def versions(request: Request) -> Response:
        return json_response(
            {
                "versions": [
                    {
                        "id": "v2.0",
                        "status": "CURRENT",
                        "links": [{"rel": "self", "href": f"{site.url}{PREFIX}/"}],
                    }
                ]
            }
        )

    @endpoint(site, "neutron", latency=False)
    async def root(request: Request, ctx: Ctx) -> Response:
        names = [
            "network",
            "subnet",
            "port",
            "floatingip",
            "router",
            "security_group",
            "security_group_rule",
            "agent",
            "extension",
        ]
        resources = [
            {
                "name": n,
                "collection": n.replace("_", "-") + "s" if "security" in n else n + "s",
                "links": [{"rel": "self", "href": f"{site.url}{PREFIX}/{n.replace('_', '-')}s"}],
            }
            for n in names
        ]
        return json_response({"resources": resources})

    @endpoint(site, "neutron", latency=False)
    async def list_extensions(request: Request, ctx: Ctx) -> Response:
        return json_response({"extensions": [_extension_doc(*e) for e in EXTENSIONS]})

    @endpoint(site, "neutron", latency=False)
    async def show_extension(request: Request, ctx: Ctx) -> Response:
        alias = request.path_params["alias"]
        for ext in EXTENSIONS:
            if ext[0] == alias:
                return one("extension", _extension_doc(*ext))
        raise errors.not_found("extension", alias)

    # -- agents (admin only: others see none, as Neutron's policy filters them) --
    @endpoint(site, "neutron")
    async def list_agents(request: Request, ctx: Ctx) -> Response:
        docs = state.agents.docs() if ctx.is_admin else []
        return list_response(request, docs, "agents", "agent")

    def agent_doc(ctx: Ctx, agent_id: str) -> dict[str, Any]:
        if ctx.is_admin:
            for doc in state.agents.docs():
                if doc["id"] == agent_id:
                    return doc
        raise errors.not_found("agent", agent_id)

    @endpoint(site, "neutron")
    async def show_agent(request: Request, ctx: Ctx) -> Response:
        return one("agent", agent_doc(ctx, request.path_params["id"]))

    @endpoint(site, "neutron")
    async def update_agent(request: Request, ctx: Ctx) -> Response:
        agent_id = request.path_params["id"]
        agent_doc(ctx, agent_id)
        raw = v.resource(await body(request), "agent", AGENT_UPDATE)
        rec = state.agents.find(agent_id)
        if rec is None:
            raise errors.not_found("agent", agent_id)
        if "admin_state_up" in raw:
            rec.admin_state_up = v.to_bool("admin_state_up", raw["admin_state_up"])
        if "description" in raw:
            rec.description = v.to_opt_str("description", raw["description"])
        return one("agent", agent_doc(ctx, agent_id))

    @public(site, "neutron")
    async def unknown(request: Request) -> Response:
        raise ApiError(404, "The resource could not be found.", neutron_type="HTTPNotFound")

    return [
        Route("/networking", versions, methods=["GET"]),
        Route("/networking/", versions, methods=["GET"]),
        Route(PREFIX, root, methods=["GET"]),
        Route(f"{PREFIX}/", root, methods=["GET"]),
        Route(f"{PREFIX}/extensions", list_extensions, methods=["GET"]),
        Route(f"{PREFIX}/extensions/{{alias}}", show_extension, methods=["GET"]),
        Route(f"{PREFIX}/agents", list_agents, methods=["GET"]),
        Route(f"{PREFIX}/agents/{{id}}", show_agent, methods=["GET"]),
        Route(f"{PREFIX}/agents/{{id}}", update_agent, methods=["PUT"]),
        *api_core.routes(site),
        *api_l3.routes(site),
        *api_security.routes(site),
        *api_tags.routes(site),
        *api_quotas.routes(site),
        Route(
            f"{PREFIX}/{{rest:path}}",
            unknown,
            methods=["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD"],
        ),
    ]
