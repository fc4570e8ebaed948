"""Neutron's security groups and their rules over HTTP."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..identity import Ctx
from ..service import endpoint
from . import errors
from . import validate as v
from .facade import PREFIX, body, list_response, no_content, one, owns
from .models import SecurityGroup, SecurityGroupRule

if TYPE_CHECKING:
    from ..world import Site

SG_CREATE = frozenset({"name", "description", "stateful", "project_id", "tenant_id"})
SG_UPDATE = frozenset({"name", "description", "stateful"})
RULE_CREATE = frozenset(
    {
        "security_group_id",
        "direction",
        "ethertype",
        "protocol",
        "port_range_min",
        "port_range_max",
        "remote_ip_prefix",
        "remote_group_id",
        "remote_address_group_id",
        "description",
        "project_id",
        "tenant_id",
    }
)
PROTOCOLS = {
    "tcp": 6,
    "udp": 17,
    "icmp": 1,
    "icmpv6": 58,
    "sctp": 132,
    "gre": 47,
    "esp": 50,
    "ah": 51,
    "ipv6-icmp": 58,
    "vrrp": 112,
    "igmp": 2,
}
_PORTED = ("tcp", "udp", "sctp", "6", "17", "132")


def _protocol(raw: Any) -> str | None:
    if raw is None or raw in ("any", "0"):
        return None
    text = str(raw).lower()
    if text in PROTOCOLS:
        return text
    if text.isdigit() and 0 <= int(text) <= 255:
        return text
    raise errors.bad_request(
        f"Security group rule protocol {raw} not supported. Only protocol values "
        f"{sorted(PROTOCOLS)} and integer representations [0 to 255] are supported.",
        "SecurityGroupRuleInvalidProtocol",
    )


def _rule_fields(raw: dict[str, Any]) -> dict[str, Any]:
    direction = raw.get("direction")
    if direction not in ("ingress", "egress"):
        raise v.invalid("direction", direction, "is not in ['ingress', 'egress']")
    ethertype = raw.get("ethertype") or "IPv4"
    if ethertype not in ("IPv4", "IPv6"):
        raise v.invalid("ethertype", ethertype, "is not in ['IPv4', 'IPv6']")
    protocol = _protocol(raw.get("protocol"))
    low = raw.get("port_range_min")
    high = raw.get("port_range_max")
    low = None if low is None else v.to_int("port_range_min", low, low=0, high=65535)
    high = None if high is None else v.to_int("port_range_max", high, low=0, high=65535)
    if (low is not None or high is not None) and protocol is None:
        raise errors.bad_request(
            "Must also specify protocol if port range is given.",
            "SecurityGroupProtocolRequiredWithPorts",
        )
    if protocol in _PORTED and low is not None and high is not None and low > high:
        raise errors.bad_request(
            "For TCP/UDP protocols, port_range_min must be <= port_range_max",
            "SecurityGroupInvalidPortRange",
        )
    prefix = raw.get("remote_ip_prefix")
    if prefix is not None:
        try:
            net = ipaddress.ip_network(str(prefix), strict=False)
        except ValueError:
            raise v.invalid("remote_ip_prefix", prefix, "is not a valid IP subnet") from None
        if f"IPv{net.version}" != ethertype:
            raise errors.bad_request(
                f"Conflicting value ethertype {ethertype} for CIDR {prefix}",
                "SecurityGroupRuleParameterConflict",
            )
        prefix = str(net)
    if prefix is not None and raw.get("remote_group_id") is not None:
        raise errors.bad_request(
            "Only remote_ip_prefix or remote_group_id may be provided.",
            "SecurityGroupRemoteGroupAndRemoteIpPrefix",
        )
    return {
        "direction": direction,
        "ethertype": ethertype,
        "protocol": protocol,
        "port_range_min": low,
        "port_range_max": high,
        "remote_ip_prefix": prefix,
        "remote_group_id": v.to_opt_str("remote_group_id", raw.get("remote_group_id")),
        "description": v.to_str("description", raw.get("description", "")),
    }


def routes(site: Site) -> list[BaseRoute]:
    state = site.network

    def visible_group(ctx: Ctx, sg_id: str) -> SecurityGroup:
        sg = state.security_groups.get(sg_id)
        if sg is None or not owns(ctx, sg.project_id):
            raise errors.not_found("security_group", sg_id)
        return sg

    def visible_rule(ctx: Ctx, rule_id: str) -> SecurityGroupRule:
        rule = state.find_rule(rule_id)
        if not owns(ctx, state.security_groups[rule.security_group_id].project_id):
            raise errors.not_found("security_group_rule", rule_id)
        return rule

    @endpoint(site, "neutron")
    async def list_groups(request: Request, ctx: Ctx) -> Response:
        state.default_security_group(ctx.project_id)  # made on first look, as Neutron does
        docs = [g.doc() for g in state.security_groups.values() if owns(ctx, g.project_id)]
        return list_response(request, docs, "security_groups", "security_group")

    @endpoint(site, "neutron")
    async def create_group(request: Request, ctx: Ctx) -> Response:
        raw = v.resource(await body(request), "security_group", SG_CREATE)
        project = v.owner_project(ctx, raw)
        name = v.to_str("name", raw.get("name", ""))
        state.default_security_group(project)
        if name == "default":
            raise errors.conflict(
                "Default security group already exists.", "SecurityGroupDefaultAlreadyExists"
            )
        sg = state.create_security_group(
            project_id=project,
            name=name,
            description=v.to_str("description", raw.get("description", "")),
            stateful=v.to_bool("stateful", raw.get("stateful", True)),
        )
        return one("security_group", sg.doc(), 201)

    @endpoint(site, "neutron")
    async def show_group(request: Request, ctx: Ctx) -> Response:
        state.default_security_group(ctx.project_id)
        return one("security_group", visible_group(ctx, request.path_params["id"]).doc())

    @endpoint(site, "neutron")
    async def update_group(request: Request, ctx: Ctx) -> Response:
        sg = visible_group(ctx, request.path_params["id"])
        raw = v.resource(await body(request), "security_group", SG_UPDATE)
        if "name" in raw:
            name = v.to_str("name", raw["name"])
            if sg.name == "default" and name != "default":
                raise errors.conflict(
                    "Updating default security group not allowed.",
                    "SecurityGroupCannotUpdateDefault",
                )
            sg.name = name
        if "description" in raw:
            sg.description = v.to_str("description", raw["description"])
        if "stateful" in raw:
            sg.stateful = v.to_bool("stateful", raw["stateful"])
        sg.touch(site.clock.now())
        return one("security_group", sg.doc())

    @endpoint(site, "neutron")
    async def delete_group(request: Request, ctx: Ctx) -> Response:
        state.delete_security_group(visible_group(ctx, request.path_params["id"]).id)
        return no_content()

    @endpoint(site, "neutron")
    async def list_rules(request: Request, ctx: Ctx) -> Response:
        docs = [
            r.doc()
            for r in state.all_rules()
            if owns(ctx, state.security_groups[r.security_group_id].project_id)
        ]
        return list_response(request, docs, "security_group_rules", "security_group_rule")

    @endpoint(site, "neutron")
    async def create_rule(request: Request, ctx: Ctx) -> Response:
        raw = v.resource(await body(request), "security_group_rule", RULE_CREATE)
        sg_id = raw.get("security_group_id")
        if not sg_id:
            raise errors.bad_request(
                "Failed to parse request. Required attribute 'security_group_id' not specified"
            )
        sg = visible_group(ctx, v.to_str("security_group_id", sg_id))
        fields = _rule_fields(raw)
        if fields["remote_group_id"] is not None:
            visible_group(ctx, fields["remote_group_id"])
        rule = state.add_rule(project_id=sg.project_id, security_group_id=sg.id, **fields)
        return one("security_group_rule", rule.doc(), 201)

    @endpoint(site, "neutron")
    async def show_rule(request: Request, ctx: Ctx) -> Response:
        return one("security_group_rule", visible_rule(ctx, request.path_params["id"]).doc())

    @endpoint(site, "neutron")
    async def delete_rule(request: Request, ctx: Ctx) -> Response:
        state.delete_rule(visible_rule(ctx, request.path_params["id"]).id)
        return no_content()

    return [
        Route(f"{PREFIX}/security-groups", list_groups, methods=["GET"]),
        Route(f"{PREFIX}/security-groups", create_group, methods=["POST"]),
        Route(f"{PREFIX}/security-groups/{{id}}", show_group, methods=["GET"]),
        Route(f"{PREFIX}/security-groups/{{id}}", update_group, methods=["PUT"]),
        Route(f"{PREFIX}/security-groups/{{id}}", delete_group, methods=["DELETE"]),
        Route(f"{PREFIX}/security-group-rules", list_rules, methods=["GET"]),
        Route(f"{PREFIX}/security-group-rules", create_rule, methods=["POST"]),
        Route(f"{PREFIX}/security-group-rules/{{id}}", show_rule, methods=["GET"]),
        Route(f"{PREFIX}/security-group-rules/{{id}}", delete_rule, methods=["DELETE"]),
    ]
