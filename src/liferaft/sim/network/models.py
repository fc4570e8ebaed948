"""The simulated network service's resources and how Neutron renders them.

Each resource is a plain dataclass; ``doc()`` gives the dict Neutron's API
returns for it (attribute names with their extension prefixes, such as
``router:external`` and ``binding:host_id``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any


def ts(t: float) -> str:
    """Neutron's timestamp format (seconds, UTC, ``Z``)."""
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class _Base:
    id: str
    project_id: str
    created_at: float
    updated_at: float
    name: str = ""
    description: str = ""
    revision_number: int = 0
    tags: list[str] = field(default_factory=list)

    def common(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": self.description,
            "project_id": self.project_id,
            "tenant_id": self.project_id,
            "created_at": ts(self.created_at),
            "updated_at": ts(self.updated_at),
            "revision_number": self.revision_number,
            "tags": list(self.tags),
        }

    def touch(self, now: float) -> None:
        self.updated_at = now
        self.revision_number += 1


@dataclass
class Network(_Base):
    admin_state_up: bool = True
    shared: bool = False
    external: bool = False
    mtu: int = 1450  # 1500 less the VXLAN overhead, as Neutron computes for vxlan
    segmentation_id: int = 0
    port_security_enabled: bool = True
    subnets: list[str] = field(default_factory=list)

    def doc(self) -> dict[str, Any]:
        return {
            **self.common(),
            "status": "ACTIVE",
            "admin_state_up": self.admin_state_up,
            "shared": self.shared,
            "router:external": self.external,
            "provider:network_type": "vxlan",
            "provider:physical_network": None,
            "provider:segmentation_id": self.segmentation_id,
            "mtu": self.mtu,
            "subnets": list(self.subnets),
            "port_security_enabled": self.port_security_enabled,
            "availability_zone_hints": [],
            "availability_zones": ["nova"],
            "ipv4_address_scope": None,
            "ipv6_address_scope": None,
            "is_default": False,
            "l2_adjacency": True,
        }


@dataclass
class Subnet(_Base):
    network_id: str = ""
    cidr: str = ""
    ip_version: int = 4
    gateway_ip: str | None = None
    allocation_pools: list[tuple[str, str]] = field(default_factory=list)
    enable_dhcp: bool = True
    dns_nameservers: list[str] = field(default_factory=list)
    host_routes: list[dict[str, str]] = field(default_factory=list)

    def doc(self) -> dict[str, Any]:
        return {
            **self.common(),
            "network_id": self.network_id,
            "cidr": self.cidr,
            "ip_version": self.ip_version,
            "gateway_ip": self.gateway_ip,
            "allocation_pools": [{"start": a, "end": b} for a, b in self.allocation_pools],
            "enable_dhcp": self.enable_dhcp,
            "dns_nameservers": list(self.dns_nameservers),
            "host_routes": list(self.host_routes),
            "ipv6_address_mode": None,
            "ipv6_ra_mode": None,
            "subnetpool_id": None,
            "segment_id": None,
            "service_types": [],
            "dns_publish_fixed_ip": False,
        }


@dataclass
class Port(_Base):
    """A port.  ``fixed_ips`` holds ``{"subnet_id", "ip_address"}`` dicts."""

    network_id: str = ""
    mac_address: str = ""
    fixed_ips: list[dict[str, str]] = field(default_factory=list)
    device_id: str = ""
    device_owner: str = ""
    host_id: str = ""
    profile: dict[str, Any] = field(default_factory=dict)
    vnic_type: str = "normal"
    admin_state_up: bool = True
    security_groups: list[str] = field(default_factory=list)
    port_security_enabled: bool = True
    allowed_address_pairs: list[dict[str, str]] = field(default_factory=list)
    #: Made by compute for a server (Nova deletes such ports with the server).
    compute_owned: bool = False

    @property
    def bound(self) -> bool:
        return bool(self.host_id)

    @property
    def status(self) -> str:
        """ACTIVE once bound to a host (the agent wired it) and administratively up."""
        return "ACTIVE" if self.bound and self.admin_state_up else "DOWN"

    @property
    def vif_type(self) -> str:
        return "ovs" if self.bound else "unbound"

    def ip_addresses(self) -> list[str]:
        return [f["ip_address"] for f in self.fixed_ips]

    def doc(self) -> dict[str, Any]:
        return {
            **self.common(),
            "network_id": self.network_id,
            "mac_address": self.mac_address,
            "fixed_ips": [dict(f) for f in self.fixed_ips],
            "device_id": self.device_id,
            "device_owner": self.device_owner,
            "status": self.status,
            "admin_state_up": self.admin_state_up,
            "binding:host_id": self.host_id,
            "binding:vif_type": self.vif_type,
            "binding:vif_details": (
                {"port_filter": True, "ovs_hybrid_plug": False, "connectivity": "l2"}
                if self.bound
                else {}
            ),
            "binding:vnic_type": self.vnic_type,
            "binding:profile": dict(self.profile),
            "security_groups": list(self.security_groups),
            "port_security_enabled": self.port_security_enabled,
            "allowed_address_pairs": [dict(p) for p in self.allowed_address_pairs],
            "extra_dhcp_opts": [],
            "dns_name": "",
            "dns_assignment": [],
            "propagate_uplink_status": False,
        }


@dataclass
class FloatingIP(_Base):
    floating_network_id: str = ""
    floating_ip_address: str = ""
    #: The port on the external network that holds the address (``network:floatingip``).
    fip_port_id: str = ""
    port_id: str | None = None
    fixed_ip_address: str | None = None
    router_id: str | None = None

    @property
    def status(self) -> str:
        return "ACTIVE" if self.port_id else "DOWN"

    def doc(self) -> dict[str, Any]:
        d = self.common()
        d.pop("name")
        return {
            **d,
            "floating_network_id": self.floating_network_id,
            "floating_ip_address": self.floating_ip_address,
            "port_id": self.port_id,
            "fixed_ip_address": self.fixed_ip_address,
            "router_id": self.router_id,
            "status": self.status,
            "port_details": None,
            "dns_domain": "",
            "dns_name": "",
            "qos_policy_id": None,
            "port_forwardings": [],
        }


@dataclass
class SecurityGroupRule(_Base):
    security_group_id: str = ""
    direction: str = "ingress"
    ethertype: str = "IPv4"
    protocol: str | None = None
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None
    remote_group_id: str | None = None

    def key(self) -> tuple[Any, ...]:
        """What makes two rules duplicates of each other."""
        return (
            self.security_group_id,
            self.direction,
            self.ethertype,
            self.protocol,
            self.port_range_min,
            self.port_range_max,
            self.remote_ip_prefix,
            self.remote_group_id,
        )

    def doc(self) -> dict[str, Any]:
        d = self.common()
        d.pop("name")
        return {
            **d,
            "security_group_id": self.security_group_id,
            "direction": self.direction,
            "ethertype": self.ethertype,
            "protocol": self.protocol,
            "port_range_min": self.port_range_min,
            "port_range_max": self.port_range_max,
            "remote_ip_prefix": self.remote_ip_prefix,
            "remote_group_id": self.remote_group_id,
            "remote_address_group_id": None,
            "normalized_cidr": self.remote_ip_prefix,
            "belongs_to_default_sg": False,
        }


@dataclass
class SecurityGroup(_Base):
    rules: list[SecurityGroupRule] = field(default_factory=list)
    stateful: bool = True
    shared: bool = False

    def doc(self) -> dict[str, Any]:
        return {
            **self.common(),
            "security_group_rules": [r.doc() for r in self.rules],
            "stateful": self.stateful,
            "shared": self.shared,
        }


@dataclass
class Router(_Base):
    admin_state_up: bool = True
    #: ``{"network_id", "enable_snat", "external_fixed_ips"}`` or None.
    gateway: dict[str, Any] | None = None
    gateway_port_id: str | None = None

    def doc(self) -> dict[str, Any]:
        return {
            **self.common(),
            "status": "ACTIVE",
            "admin_state_up": self.admin_state_up,
            "external_gateway_info": dict(self.gateway) if self.gateway else None,
            "distributed": False,
            "ha": False,
            "routes": [],
            "availability_zone_hints": [],
            "availability_zones": ["nova"],
            "flavor_id": None,
        }
