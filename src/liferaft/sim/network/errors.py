"""Neutron's error types for the simulated network service (the ``NeutronError.type``)."""

from __future__ import annotations

from ..http import ApiError

#: Resource kind -> (Neutron exception type, message template).
_NOT_FOUND = {
    "network": ("NetworkNotFound", "Network {id} could not be found."),
    "subnet": ("SubnetNotFound", "Subnet {id} could not be found."),
    "port": ("PortNotFound", "Port {id} could not be found."),
    "floatingip": ("FloatingIPNotFound", "Floating IP {id} could not be found"),
    "security_group": ("SecurityGroupNotFound", "Security group {id} does not exist"),
    "security_group_rule": (
        "SecurityGroupRuleNotFound",
        "Security group rule {id} does not exist",
    ),
    "router": ("RouterNotFound", "Router {id} could not be found"),
    "agent": ("AgentNotFound", "Agent {id} could not be found."),
    "extension": ("NotFound", "Extension with alias {id} does not exist"),
}


def not_found(kind: str, ident: str) -> ApiError:
    ntype, msg = _NOT_FOUND[kind]
    return ApiError(404, msg.format(id=ident), neutron_type=ntype)


def bad_request(message: str, ntype: str = "HTTPBadRequest") -> ApiError:
    return ApiError(400, message, neutron_type=ntype)


def conflict(message: str, ntype: str) -> ApiError:
    return ApiError(409, message, neutron_type=ntype)


def ip_in_use(ip: str, subnet_id: str) -> ApiError:
    return conflict(
        f"IP address {ip} already allocated in subnet {subnet_id}", "IpAddressAlreadyAllocated"
    )


def mac_in_use(mac: str, network_id: str) -> ApiError:
    return conflict(
        f"Unable to complete operation for network {network_id}. The mac address {mac} is in use.",
        "MacAddressInUse",
    )
