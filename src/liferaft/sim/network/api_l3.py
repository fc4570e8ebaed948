"""Neutron's L3 resources over HTTP: floating IPs and (minimal) routers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..http import json_response
from ..identity import Ctx
from ..service import endpoint
from . import errors
from . import validate as v
from .facade import PREFIX, body, list_response, no_content, one, owns, visible_network
from .models import FloatingIP, Router

if TYPE_CHECKING:
    from ..world import Site

FIP_CREATE = frozenset(
    {
        "floating_network_id",
        "floating_ip_address",
        "subnet_id",
        "port_id",
        "fixed_ip_address",
        "description",
        "project_id",
        "tenant_id",
        "dns_domain",
        "dns_name",
        "qos_policy_id",
    }
)
FIP_UPDATE = frozenset({"port_id", "fixed_ip_address", "description", "qos_policy_id"})
ROUTER_CREATE = frozenset(
    {
        "name",
        "description",
        "admin_state_up",
        "external_gateway_info",
        "project_id",
        "tenant_id",
        "distributed",
        "ha",
        "availability_zone_hints",
        "flavor_id",
    }
)
ROUTER_UPDATE = frozenset(
    {"name", "description", "admin_state_up", "external_gateway_info", "routes"}
)


def routes(site: Site) -> list[BaseRoute]:
    state = site.network

    def visible_fip(ctx: Ctx, fip_id: str) -> FloatingIP:
        fip = state.floating_ips.get(fip_id)
        if fip is None or not owns(ctx, fip.project_id):
            raise errors.not_found("floatingip", fip_id)
        return fip

    def port_for(ctx: Ctx, port_id: Any) -> str | None:
        if port_id is None:
            return None
        pid = v.to_str("port_id", port_id)
        port = state.ports.get(pid)
        if port is None or not owns(ctx, port.project_id):
            raise errors.not_found("port", pid)
        return pid

    # -- floating IPs ------------------------------------------------------------
    @endpoint(site, "neutron")
    async def list_fips(request: Request, ctx: Ctx) -> Response:
        docs = [f.doc() for f in state.floating_ips.values() if owns(ctx, f.project_id)]
        return list_response(request, docs, "floatingips", "floatingip")

    @endpoint(site, "neutron")
    async def create_fip(request: Request, ctx: Ctx) -> Response:
        raw = v.resource(await body(request), "floatingip", FIP_CREATE)
        if not raw.get("floating_network_id"):
            raise errors.bad_request(
                "Failed to parse request. Required attribute 'floating_network_id' not specified"
            )
        net = visible_network(
            state, ctx, v.to_str("floating_network_id", raw["floating_network_id"])
        )
        address = v.to_opt_str("floating_ip_address", raw.get("floating_ip_address"))
        if address is not None and not ctx.is_admin:
            raise v.forbid("floating_ip_address", "create_floatingip")
        fip = state.create_floating_ip(
            project_id=v.owner_project(ctx, raw),
            floating_network_id=net.id,
            floating_ip_address=address,
            subnet_id=v.to_opt_str("subnet_id", raw.get("subnet_id")),
            port_id=port_for(ctx, raw.get("port_id")),
            fixed_ip_address=v.to_opt_str("fixed_ip_address", raw.get("fixed_ip_address")),
            description=v.to_str("description", raw.get("description", "")),
        )
        return one("floatingip", fip.doc(), 201)

    @endpoint(site, "neutron")
    async def show_fip(request: Request, ctx: Ctx) -> Response:
        return one("floatingip", visible_fip(ctx, request.path_params["id"]).doc())

    @endpoint(site, "neutron")
    async def update_fip(request: Request, ctx: Ctx) -> Response:
        fip = visible_fip(ctx, request.path_params["id"])
        raw = v.resource(await body(request), "floatingip", FIP_UPDATE)
        if "description" in raw:
            fip.description = v.to_str("description", raw["description"])
        if "port_id" in raw:
            state.associate(
                fip.id,
                port_for(ctx, raw["port_id"]),
                v.to_opt_str("fixed_ip_address", raw.get("fixed_ip_address")),
            )
        fip.touch(site.clock.now())
        return one("floatingip", fip.doc())

    @endpoint(site, "neutron")
    async def delete_fip(request: Request, ctx: Ctx) -> Response:
        state.delete_floating_ip(visible_fip(ctx, request.path_params["id"]).id)
        return no_content()

    # -- routers -----------------------------------------------------------------
    def visible_router(ctx: Ctx, router_id: str) -> Router:
        router = state.routers.get(router_id)
        if router is None or not owns(ctx, router.project_id):
            raise errors.not_found("router", router_id)
        return router

    def gateway_of(ctx: Ctx, raw: Any) -> tuple[str | None, bool]:
        if raw is None or raw == {}:
            return None, True
        if not isinstance(raw, dict):
            raise v.invalid("external_gateway_info", raw, "is not a dictionary")
        net_id = raw.get("network_id")
        if not net_id:
            raise errors.bad_request(
                "Invalid input for external_gateway_info. Reason: network_id is required."
            )
        net = visible_network(state, ctx, v.to_str("network_id", net_id))
        return net.id, v.to_bool("enable_snat", raw.get("enable_snat", True))

    @endpoint(site, "neutron")
    async def list_routers(request: Request, ctx: Ctx) -> Response:
        docs = [r.doc() for r in state.routers.values() if owns(ctx, r.project_id)]
        return list_response(request, docs, "routers", "router")

    @endpoint(site, "neutron")
    async def create_router(request: Request, ctx: Ctx) -> Response:
        raw = v.resource(await body(request), "router", ROUTER_CREATE)
        gw, snat = gateway_of(ctx, raw.get("external_gateway_info"))
        router = state.create_router(
            project_id=v.owner_project(ctx, raw),
            name=v.to_str("name", raw.get("name", "")),
            description=v.to_str("description", raw.get("description", "")),
            admin_state_up=v.to_bool("admin_state_up", raw.get("admin_state_up", True)),
            gateway_network_id=gw,
            enable_snat=snat,
        )
        return one("router", router.doc(), 201)

    @endpoint(site, "neutron")
    async def show_router(request: Request, ctx: Ctx) -> Response:
        return one("router", visible_router(ctx, request.path_params["id"]).doc())

    @endpoint(site, "neutron")
    async def update_router(request: Request, ctx: Ctx) -> Response:
        router = visible_router(ctx, request.path_params["id"])
        raw = v.resource(await body(request), "router", ROUTER_UPDATE)
        if raw.get("routes"):
            raise errors.bad_request("Static routes are not supported by the simulator.")
        if "external_gateway_info" in raw:
            gw, snat = gateway_of(ctx, raw["external_gateway_info"])
            state.set_gateway(router.id, gw, enable_snat=snat)
        for key in ("name", "description"):
            if key in raw:
                setattr(router, key, v.to_str(key, raw[key]))
        if "admin_state_up" in raw:
            router.admin_state_up = v.to_bool("admin_state_up", raw["admin_state_up"])
        router.touch(site.clock.now())
        return one("router", router.doc())

    @endpoint(site, "neutron")
    async def delete_router(request: Request, ctx: Ctx) -> Response:
        state.delete_router(visible_router(ctx, request.path_params["id"]).id)
        return no_content()

    def interface_args(ctx: Ctx, raw: Any) -> tuple[str | None, str | None]:
        if not isinstance(raw, dict) or not (raw.get("subnet_id") or raw.get("port_id")):
            raise errors.bad_request(
                "Bad router request: Either subnet_id or port_id must be specified.",
                "BadRequest",
            )
        if raw.get("subnet_id") and raw.get("port_id"):
            raise errors.bad_request(
                "Bad router request: Cannot specify both subnet-id and port-id.", "BadRequest"
            )
        subnet_id = v.to_opt_str("subnet_id", raw.get("subnet_id"))
        if subnet_id is not None:
            sub = state.subnets.get(subnet_id)
            if sub is None or not (owns(ctx, sub.project_id) or ctx.is_admin):
                raise errors.not_found("subnet", subnet_id)
        return subnet_id, port_for(ctx, raw.get("port_id"))

    def interface_doc(router: Router, port_id: str, network_id: str, subnets: list[str]) -> Any:
        return {
            "id": router.id,
            "tenant_id": router.project_id,
            "project_id": router.project_id,
            "port_id": port_id,
            "network_id": network_id,
            "subnet_id": subnets[0] if subnets else None,
            "subnet_ids": subnets,
        }

    @endpoint(site, "neutron")
    async def add_interface(request: Request, ctx: Ctx) -> Response:
        router = visible_router(ctx, request.path_params["id"])
        subnet_id, port_id = interface_args(ctx, await body(request))
        port = state.add_interface(router.id, subnet_id=subnet_id, port_id=port_id)
        router.touch(site.clock.now())
        subnets = [f["subnet_id"] for f in port.fixed_ips]
        return json_response(interface_doc(router, port.id, port.network_id, subnets))

    @endpoint(site, "neutron")
    async def remove_interface(request: Request, ctx: Ctx) -> Response:
        router = visible_router(ctx, request.path_params["id"])
        subnet_id, port_id = interface_args(ctx, await body(request))
        port = state.remove_interface(router.id, subnet_id=subnet_id, port_id=port_id)
        subnets = [f["subnet_id"] for f in port.fixed_ips]
        return json_response(interface_doc(router, port.id, port.network_id, subnets))

    return [
        Route(f"{PREFIX}/floatingips", list_fips, methods=["GET"]),
        Route(f"{PREFIX}/floatingips", create_fip, methods=["POST"]),
        Route(f"{PREFIX}/floatingips/{{id}}", show_fip, methods=["GET"]),
        Route(f"{PREFIX}/floatingips/{{id}}", update_fip, methods=["PUT"]),
        Route(f"{PREFIX}/floatingips/{{id}}", delete_fip, methods=["DELETE"]),
        Route(f"{PREFIX}/routers", list_routers, methods=["GET"]),
        Route(f"{PREFIX}/routers", create_router, methods=["POST"]),
        Route(f"{PREFIX}/routers/{{id}}", show_router, methods=["GET"]),
        Route(f"{PREFIX}/routers/{{id}}", update_router, methods=["PUT"]),
        Route(f"{PREFIX}/routers/{{id}}", delete_router, methods=["DELETE"]),
        Route(f"{PREFIX}/routers/{{id}}/add_router_interface", add_interface, methods=["PUT"]),
        Route(
            f"{PREFIX}/routers/{{id}}/remove_router_interface", remove_interface, methods=["PUT"]
        ),
    ]
