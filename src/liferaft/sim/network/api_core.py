"""Neutron's core resources over HTTP: networks, subnets, ports."""

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
from .api_tags import check_tag
from .facade import (
    PREFIX,
    body,
    list_response,
    network_visible,
    no_content,
    one,
    owns,
    visible_network,
)
from .models import Port, Subnet

if TYPE_CHECKING:
    from ..world import Site

_IGNORED_NULLS = frozenset({"dns_domain", "qos_policy_id", "availability_zone_hints", "is_default"})

NETWORK_CREATE = frozenset(
    {
        "name",
        "description",
        "admin_state_up",
        "shared",
        "router:external",
        "mtu",
        "port_security_enabled",
        "project_id",
        "tenant_id",
        "provider:network_type",
        "provider:segmentation_id",
        "provider:physical_network",
        *_IGNORED_NULLS,
    }
)
NETWORK_UPDATE = frozenset(
    {
        "name",
        "description",
        "admin_state_up",
        "shared",
        "router:external",
        "mtu",
        "port_security_enabled",
        *_IGNORED_NULLS,
    }
)
SUBNET_CREATE = frozenset(
    {
        "name",
        "description",
        "network_id",
        "cidr",
        "ip_version",
        "gateway_ip",
        "allocation_pools",
        "enable_dhcp",
        "dns_nameservers",
        "host_routes",
        "project_id",
        "tenant_id",
        "ipv6_address_mode",
        "ipv6_ra_mode",
        "subnetpool_id",
        "segment_id",
        "service_types",
        "dns_publish_fixed_ip",
    }
)
SUBNET_UPDATE = frozenset(
    {
        "name",
        "description",
        "gateway_ip",
        "allocation_pools",
        "enable_dhcp",
        "dns_nameservers",
        "host_routes",
        "service_types",
        "dns_publish_fixed_ip",
    }
)
_PORT_COMMON = frozenset(
    {
        "name",
        "description",
        "fixed_ips",
        "mac_address",
        "device_id",
        "device_owner",
        "admin_state_up",
        "binding:host_id",
        "binding:profile",
        "binding:vnic_type",
        "security_groups",
        "port_security_enabled",
        "allowed_address_pairs",
        "extra_dhcp_opts",
        "dns_name",
        "dns_domain",
        "qos_policy_id",
        "propagate_uplink_status",
    }
)
PORT_CREATE = _PORT_COMMON | {"network_id", "project_id", "tenant_id"}
PORT_UPDATE = _PORT_COMMON
#: A port of a bulk create may carry its tags (extension tag-ports-during-bulk-creation).
PORT_BULK_CREATE = PORT_CREATE | {"tags"}
VNIC_TYPES = ("normal", "direct", "macvtap", "baremetal", "direct-physical", "virtio-forwarder")


def _network_fields(ctx: Ctx, raw: dict[str, Any], action: str) -> dict[str, Any]:
    """Validated network attributes, by model attribute name."""
    out: dict[str, Any] = {}
    if "name" in raw:
        out["name"] = v.to_str("name", raw["name"])
    if "description" in raw:
        out["description"] = v.to_str("description", raw["description"])
    if "admin_state_up" in raw:
        out["admin_state_up"] = v.to_bool("admin_state_up", raw["admin_state_up"])
    if "port_security_enabled" in raw:
        out["port_security_enabled"] = v.to_bool(
            "port_security_enabled", raw["port_security_enabled"]
        )
    if "mtu" in raw:
        out["mtu"] = v.to_int("mtu", raw["mtu"], low=68, high=9000)
    if "shared" in raw:
        out["shared"] = v.to_bool("shared", raw["shared"])
        if out["shared"] and not ctx.is_admin:
            raise v.forbid("shared", action)
    if "router:external" in raw:
        out["external"] = v.to_bool("router:external", raw["router:external"])
        if not ctx.is_admin:
            raise v.forbid("router:external", action)
    for key in ("provider:network_type", "provider:segmentation_id", "provider:physical_network"):
        if raw.get(key) is not None and not ctx.is_admin:
            raise v.forbid(key, action)
    ntype = raw.get("provider:network_type")
    if ntype is not None and ntype != "vxlan":
        raise errors.bad_request(
            f"Invalid input for operation: network_type value '{ntype}' not supported.",
            "InvalidInput",
        )
    if raw.get("provider:segmentation_id") is not None:
        out["segmentation_id"] = v.to_int(
            "provider:segmentation_id", raw["provider:segmentation_id"], low=1, high=2**24 - 1
        )
    return out


def _subnet_visible(site: Site, ctx: Ctx, sub: Subnet) -> bool:
    if owns(ctx, sub.project_id):
        return True
    net = site.network.networks.get(sub.network_id)
    return net is not None and net.shared


def _port_fields(site: Site, ctx: Ctx, raw: dict[str, Any], action: str) -> dict[str, Any]:
    """Validated port attributes by model attribute name (``fixed_ips`` in request form)."""
    out: dict[str, Any] = {}
    for key in ("name", "description", "device_id", "device_owner"):
        if key in raw:
            out[key] = v.to_str(key, raw[key])
    if "admin_state_up" in raw:
        out["admin_state_up"] = v.to_bool("admin_state_up", raw["admin_state_up"])
    if "port_security_enabled" in raw:
        out["port_security_enabled"] = v.to_bool(
            "port_security_enabled", raw["port_security_enabled"]
        )
    if "fixed_ips" in raw:
        out["fixed_ips"] = v.fixed_ips(raw["fixed_ips"])
    if "mac_address" in raw:
        out["mac_address"] = v.to_str("mac_address", raw["mac_address"])
    if "security_groups" in raw:
        groups = v.to_str_list("security_groups", raw["security_groups"] or [])
        for sg_id in groups:
            sg = site.network.security_groups.get(sg_id)
            if sg is None or not owns(ctx, sg.project_id):
                raise errors.not_found("security_group", sg_id)
        out["security_groups"] = list(dict.fromkeys(groups))
    if "allowed_address_pairs" in raw:
        out["allowed_address_pairs"] = v.address_pairs(raw["allowed_address_pairs"] or [])
    if "binding:host_id" in raw:
        if not ctx.is_admin:
            raise v.forbid("binding:host_id", action)
        out["host_id"] = v.to_opt_str("binding:host_id", raw["binding:host_id"]) or ""
    if "binding:profile" in raw:
        if not ctx.is_admin:
            raise v.forbid("binding:profile", action)
        out["profile"] = v.to_dict("binding:profile", raw["binding:profile"])
    if "binding:vnic_type" in raw:
        vnic = raw["binding:vnic_type"]
        if vnic not in VNIC_TYPES:
            raise v.invalid("binding:vnic_type", vnic, f"is not in {list(VNIC_TYPES)}")
        out["vnic_type"] = vnic
    return out


def routes(site: Site) -> list[BaseRoute]:
    state = site.network

    # -- networks ----------------------------------------------------------------
    @endpoint(site, "neutron")
    async def list_networks(request: Request, ctx: Ctx) -> Response:
        docs = [n.doc() for n in state.networks.values() if network_visible(ctx, n)]
        return list_response(request, docs, "networks", "network")

    @endpoint(site, "neutron")
    async def create_network(request: Request, ctx: Ctx) -> Response:
        raw = v.resource(await body(request), "network", NETWORK_CREATE)
        fields = _network_fields(ctx, raw, "create_network")
        project = v.owner_project(ctx, raw)
        net = state.create_network(project_id=project, **fields)
        state.default_security_group(project)
        return one("network", net.doc(), 201)

    @endpoint(site, "neutron")
    async def show_network(request: Request, ctx: Ctx) -> Response:
        net = visible_network(state, ctx, request.path_params["id"])
        return one("network", net.doc())

    @endpoint(site, "neutron")
    async def update_network(request: Request, ctx: Ctx) -> Response:
        net = visible_network(state, ctx, request.path_params["id"])
        raw = v.resource(await body(request), "network", NETWORK_UPDATE)
        if not owns(ctx, net.project_id):
            raise v.forbid("network", "update_network")
        fields = _network_fields(ctx, raw, "update_network")
        return one("network", state.update_network(net.id, fields).doc())

    @endpoint(site, "neutron")
    async def delete_network(request: Request, ctx: Ctx) -> Response:
        net = visible_network(state, ctx, request.path_params["id"])
        if not owns(ctx, net.project_id):
            raise v.forbid("network", "delete_network")
        state.delete_network(net.id)
        return no_content()

    # -- subnets -----------------------------------------------------------------
    @endpoint(site, "neutron")
    async def list_subnets(request: Request, ctx: Ctx) -> Response:
        docs = [s.doc() for s in state.subnets.values() if _subnet_visible(site, ctx, s)]
        return list_response(request, docs, "subnets", "subnet")

    @endpoint(site, "neutron")
    async def create_subnet(request: Request, ctx: Ctx) -> Response:
        raw = v.resource(await body(request), "subnet", SUBNET_CREATE)
        if "network_id" not in raw:
            raise errors.bad_request(
                "Failed to parse request. Required attribute 'network_id' not specified"
            )
        if "cidr" not in raw or raw["cidr"] is None:
            raise errors.bad_request(
                "Bad subnets request: a cidr must be specified in the absence of a subnet pool.",
                "BadRequest",
            )
        net = visible_network(state, ctx, v.to_str("network_id", raw["network_id"]))
        if not owns(ctx, net.project_id):
            raise v.forbid("network_id", "create_subnet")
        kwargs: dict[str, Any] = {
            "project_id": v.owner_project(ctx, raw),
            "network_id": net.id,
            "cidr": raw["cidr"],
        }
        if raw.get("ip_version") is not None:
            ver = v.to_int("ip_version", raw["ip_version"])
            if ver not in (4, 6):
                raise v.invalid("ip_version", ver, "is not in [4, 6]")
            kwargs["ip_version"] = ver
        for key in ("name", "description"):
            if key in raw:
                kwargs[key] = v.to_str(key, raw[key])
        if "gateway_ip" in raw:
            kwargs["gateway_ip"] = raw["gateway_ip"]
        if raw.get("allocation_pools") is not None:
            kwargs["allocation_pools"] = raw["allocation_pools"]
        if "enable_dhcp" in raw:
            kwargs["enable_dhcp"] = v.to_bool("enable_dhcp", raw["enable_dhcp"])
        if raw.get("dns_nameservers") is not None:
            kwargs["dns_nameservers"] = v.to_str_list("dns_nameservers", raw["dns_nameservers"])
        if raw.get("host_routes") is not None:
            if not isinstance(raw["host_routes"], list):
                raise v.invalid("host_routes", raw["host_routes"], "is not a list")
            kwargs["host_routes"] = raw["host_routes"]
        return one("subnet", state.create_subnet(**kwargs).doc(), 201)

    def visible_subnet(ctx: Ctx, subnet_id: str) -> Subnet:
        sub = state.subnets.get(subnet_id)
        if sub is None or not _subnet_visible(site, ctx, sub):
            raise errors.not_found("subnet", subnet_id)
        return sub

    @endpoint(site, "neutron")
    async def show_subnet(request: Request, ctx: Ctx) -> Response:
        return one("subnet", visible_subnet(ctx, request.path_params["id"]).doc())

    @endpoint(site, "neutron")
    async def update_subnet(request: Request, ctx: Ctx) -> Response:
        sub = visible_subnet(ctx, request.path_params["id"])
        raw = v.resource(await body(request), "subnet", SUBNET_UPDATE)
        if not owns(ctx, sub.project_id):
            raise v.forbid("subnet", "update_subnet")
        changes: dict[str, Any] = {}
        for key in ("name", "description"):
            if key in raw:
                changes[key] = v.to_str(key, raw[key])
        if "enable_dhcp" in raw:
            changes["enable_dhcp"] = v.to_bool("enable_dhcp", raw["enable_dhcp"])
        if "dns_nameservers" in raw:
            changes["dns_nameservers"] = v.to_str_list(
                "dns_nameservers", raw["dns_nameservers"] or []
            )
        if "host_routes" in raw:
            changes["host_routes"] = list(raw["host_routes"] or [])
        for key in ("gateway_ip", "allocation_pools"):
            if key in raw:
                changes[key] = raw[key]
        return one("subnet", state.update_subnet(sub.id, changes).doc())

    @endpoint(site, "neutron")
    async def delete_subnet(request: Request, ctx: Ctx) -> Response:
        sub = visible_subnet(ctx, request.path_params["id"])
        if not owns(ctx, sub.project_id):
            raise v.forbid("subnet", "delete_subnet")
        state.delete_subnet(sub.id)
        return no_content()

    # -- ports -------------------------------------------------------------------
    def visible_port(ctx: Ctx, port_id: str) -> Port:
        port = state.ports.get(port_id)
        if port is None or not owns(ctx, port.project_id):
            raise errors.not_found("port", port_id)
        return port

    @endpoint(site, "neutron")
    async def list_ports(request: Request, ctx: Ctx) -> Response:
        docs = [p.doc() for p in state.ports.values() if owns(ctx, p.project_id)]
        return list_response(request, docs, "ports", "port")

    def port_kwargs(ctx: Ctx, raw: dict[str, Any]) -> dict[str, Any]:
        """``add_port``'s arguments for one port of a create request (validated, checked)."""
        if "network_id" not in raw:
            raise errors.bad_request(
                "Failed to parse request. Required attribute 'network_id' not specified"
            )
        net = visible_network(state, ctx, v.to_str("network_id", raw["network_id"]))
        fields = _port_fields(site, ctx, raw, "create_port")
        network_owner = owns(ctx, net.project_id)
        if "mac_address" in fields and not network_owner:
            raise v.forbid("mac_address", "create_port")
        if (
            any("ip_address" in f for f in fields.get("fixed_ips", []))
            and not network_owner
            and not net.shared
        ):
            raise v.forbid("fixed_ips:ip_address", "create_port")
        project = v.owner_project(ctx, raw)
        kwargs: dict[str, Any] = {"project_id": project, "network_id": net.id}
        for key, value in fields.items():
            kwargs["host" if key == "host_id" else key] = value
        return kwargs

    @endpoint(site, "neutron")
    async def create_port(request: Request, ctx: Ctx) -> Response:
        raw_body = await body(request)
        if isinstance(raw_body, dict) and "ports" in raw_body:
            return await create_ports(ctx, raw_body)
        kwargs = port_kwargs(ctx, v.resource(raw_body, "port", PORT_CREATE))
        if site.latency.port_create > 0:  # Neutron's DB and IPAM work for one port
            await site.clock.sleep(site.latency.port_create)
            site.clock.run_due()
        port = state.add_port(**kwargs)
        return one("port", port.doc(), 201)

    async def create_ports(ctx: Ctx, raw_body: dict[str, Any]) -> Response:
        """Neutron's bulk create (``{"ports": [...]}``): all the ports or none.

        Each port may carry ``tags`` (extension ``tag-ports-during-bulk-creation``),
        set in the same transaction as the port.  Neutron does each port's DB and
        IPAM work in turn, so the request costs ``port_create`` per port.
        """
        items = raw_body["ports"]
        if set(raw_body) != {"ports"} or not isinstance(items, list) or not items:
            raise errors.bad_request(
                "Invalid input for ports. Reason: a non-empty list of port objects is expected."
            )
        todo: list[tuple[dict[str, Any], list[str]]] = []
        for i, item in enumerate(items):
            raw = v.resource({"port": item}, "port", PORT_BULK_CREATE)
            tags = raw.pop("tags", [])
            if not isinstance(tags, list):
                raise errors.bad_request(f"Invalid input for ports[{i}].tags: a list is expected.")
            todo.append((port_kwargs(ctx, raw), sorted({check_tag(t) for t in tags})))
        if site.latency.port_create > 0:
            await site.clock.sleep(site.latency.port_create * len(todo))
            site.clock.run_due()
        made: list[Port] = []
        try:
            for kwargs, tags in todo:
                port = state.add_port(**kwargs)
                made.append(port)
                port.tags = tags
        except Exception:
            for port in made:  # atomic, as Neutron's bulk create: none of them stays
                state.delete_port(port.id)
            raise
        return json_response({"ports": [p.doc() for p in made]}, status=201)

    @endpoint(site, "neutron")
    async def show_port(request: Request, ctx: Ctx) -> Response:
        return one("port", visible_port(ctx, request.path_params["id"]).doc())

    @endpoint(site, "neutron")
    async def update_port(request: Request, ctx: Ctx) -> Response:
        port = visible_port(ctx, request.path_params["id"])
        raw = v.resource(await body(request), "port", PORT_UPDATE)
        fields = _port_fields(site, ctx, raw, "update_port")
        if "mac_address" in fields and not ctx.is_admin:
            raise v.forbid("mac_address", "update_port")
        return one("port", state.update_port(port.id, fields).doc())

    @endpoint(site, "neutron")
    async def delete_port(request: Request, ctx: Ctx) -> Response:
        port = visible_port(ctx, request.path_params["id"])
        if port.device_owner == "network:router_interface":
            raise errors.conflict(
                f"Port {port.id} cannot be deleted directly via the port API: has device "
                f"owner network:router_interface.",
                "ServicePortInUse",
            )
        state.delete_port(port.id)
        return no_content()

    return [
        Route(f"{PREFIX}/networks", list_networks, methods=["GET"]),
        Route(f"{PREFIX}/networks", create_network, methods=["POST"]),
        Route(f"{PREFIX}/networks/{{id}}", show_network, methods=["GET"]),
        Route(f"{PREFIX}/networks/{{id}}", update_network, methods=["PUT"]),
        Route(f"{PREFIX}/networks/{{id}}", delete_network, methods=["DELETE"]),
        Route(f"{PREFIX}/subnets", list_subnets, methods=["GET"]),
        Route(f"{PREFIX}/subnets", create_subnet, methods=["POST"]),
        Route(f"{PREFIX}/subnets/{{id}}", show_subnet, methods=["GET"]),
        Route(f"{PREFIX}/subnets/{{id}}", update_subnet, methods=["PUT"]),
        Route(f"{PREFIX}/subnets/{{id}}", delete_subnet, methods=["DELETE"]),
        Route(f"{PREFIX}/ports", list_ports, methods=["GET"]),
        Route(f"{PREFIX}/ports", create_port, methods=["POST"]),
        Route(f"{PREFIX}/ports/{{id}}", show_port, methods=["GET"]),
        Route(f"{PREFIX}/ports/{{id}}", update_port, methods=["PUT"]),
        Route(f"{PREFIX}/ports/{{id}}", delete_port, methods=["DELETE"]),
    ]
