"""State of the simulated network service of one site (Neutron's model).

Networks, subnets with address pools, ports with fixed IPs and MACs and a
host binding, floating IPs, security groups and minimal routers.  The HTTP
facade (``api.py``) validates requests and calls the operations here; the
compute service calls :meth:`NetworkState.create_port`,
:meth:`~NetworkState.bind_port`, :meth:`~NetworkState.unbind_ports`,
:meth:`~NetworkState.ports_of` and :meth:`~NetworkState.move_ports` (see
``docs/sim-internals.md``).

Ownership and visibility are the facade's business: operations here take a
``project_id`` for what they create and never check who is asking.
"""

from __future__ import annotations

import ipaddress
import random
from typing import TYPE_CHECKING, Any

from ..http import ApiError
from . import errors, ipam
from .agents import AgentTable
from .models import (
    FloatingIP,
    Network,
    Port,
    Router,
    SecurityGroup,
    SecurityGroupRule,
    Subnet,
)

if TYPE_CHECKING:
    from ..topology import Topology
    from ..world import Site

#: Owner of the ports Nova makes for servers (Nova writes ``compute:<zone>``).
COMPUTE_OWNER = "compute:nova"
ROUTER_INTERFACE = "network:router_interface"
ROUTER_GATEWAY = "network:router_gateway"
FLOATINGIP_OWNER = "network:floatingip"

#: The VXLAN VNI of the first network; topology networks get the same VNI at
#: every site (in topology order), so a stretched network can be matched.
FIRST_VNI = 1001

_UNSET: Any = object()


class NetworkState:
    """Every network resource of one site."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.networks: dict[str, Network] = {}
        self.subnets: dict[str, Subnet] = {}
        self.ports: dict[str, Port] = {}
        self.floating_ips: dict[str, FloatingIP] = {}
        self.security_groups: dict[str, SecurityGroup] = {}
        self.routers: dict[str, Router] = {}
        self.agents = AgentTable(site)
        self._addresses: dict[str, ipam.SubnetAddresses] = {}
        self._rng = random.Random(f"macs/{site.name}")
        self._next_vni = FIRST_VNI

    # -- helpers -----------------------------------------------------------------
    def _now(self) -> float:
        return self.site.clock.now()

    def _admin_project(self) -> str:
        for p in self.site.identity.projects.values():
            if p.name == "admin":
                return p.id
        return ""

    # -- seeding -----------------------------------------------------------------
    def seed(self, topology: Topology, *args: Any) -> None:
        """Create the topology's networks (shared, one subnet each) at this site.

        A site whose topology names no external network also gets a
        ``public`` external network with a subnet of its own, so floating IPs
        work out of the box; its range differs per site, as two datacenters'
        provider ranges do.
        """
        admin = self._admin_project()
        for spec in topology.networks:
            net = self.create_network(
                project_id=admin, name=spec.name, shared=spec.shared, external=spec.external
            )
            self.create_subnet(
                project_id=admin, network_id=net.id, cidr=spec.cidr, name=f"{spec.name}-subnet"
            )
        if not any(spec.external for spec in topology.networks):
            index = sorted(topology.sites).index(self.site.name)
            net = self.create_network(project_id=admin, name="public", external=True)
            self.create_subnet(
                project_id=admin,
                network_id=net.id,
                cidr=f"172.24.{4 + index}.0/24",
                name="public-subnet",
                enable_dhcp=False,
            )

    # -- networks ----------------------------------------------------------------
    def get_network(self, network_id: str) -> Network:
        net = self.networks.get(network_id)
        if net is None:
            raise errors.not_found("network", network_id)
        return net

    def create_network(
        self,
        *,
        project_id: str,
        name: str = "",
        shared: bool = False,
        external: bool = False,
        admin_state_up: bool = True,
        mtu: int | None = None,
        port_security_enabled: bool = True,
        description: str = "",
        segmentation_id: int | None = None,
    ) -> Network:
        """A VXLAN network; ``segmentation_id`` picks its VNI (409 if taken)."""
        used = {n.segmentation_id for n in self.networks.values()}
        if segmentation_id is None:
            while self._next_vni in used:
                self._next_vni += 1
            segmentation_id = self._next_vni
            self._next_vni += 1
        elif segmentation_id in used:
            raise errors.conflict(
                f"Unable to create the network. The tunnel ID {segmentation_id} is in use.",
                "TunnelIdInUse",
            )
        now = self._now()
        net = Network(
            id=self.site.new_id(),
            project_id=project_id,
            created_at=now,
            updated_at=now,
            name=name,
            description=description,
            admin_state_up=admin_state_up,
            shared=shared,
            external=external,
            segmentation_id=segmentation_id,
            port_security_enabled=port_security_enabled,
        )
        if mtu is not None:
            net.mtu = mtu
        self.networks[net.id] = net
        return net

    def update_network(self, network_id: str, changes: dict[str, Any]) -> Network:
        """Apply already-validated attribute changes (model attribute names)."""
        net = self.get_network(network_id)
        for key, value in changes.items():
            setattr(net, key, value)
        net.touch(self._now())
        return net

    def delete_network(self, network_id: str) -> None:
        net = self.get_network(network_id)
        in_use = [p for p in self.ports.values() if p.network_id == net.id and p.device_owner != ""]
        if in_use:
            raise errors.conflict(
                f"Unable to complete operation on network {net.id}. "
                "There are one or more ports still in use on the network.",
                "NetworkInUse",
            )
        for port in [p for p in self.ports.values() if p.network_id == net.id]:
            self.delete_port(port.id)
        for subnet_id in list(net.subnets):
            self.delete_subnet(subnet_id)
        del self.networks[net.id]

    # -- subnets -----------------------------------------------------------------
    def get_subnet(self, subnet_id: str) -> Subnet:
        sub = self.subnets.get(subnet_id)
        if sub is None:
            raise errors.not_found("subnet", subnet_id)
        return sub

    def create_subnet(
        self,
        *,
        project_id: str,
        network_id: str,
        cidr: str,
        ip_version: int | None = None,
        name: str = "",
        gateway_ip: Any = _UNSET,
        allocation_pools: Any = None,
        enable_dhcp: bool = True,
        dns_nameservers: list[str] | None = None,
        host_routes: list[dict[str, str]] | None = None,
        description: str = "",
    ) -> Subnet:
        """Add a subnet; ``gateway_ip`` unset means the first address, ``None`` no gateway."""
        net = self.get_network(network_id)
        cidr_net = ipam.parse_cidr(cidr, ip_version)
        for other_id in net.subnets:
            other = ipaddress.ip_network(self.subnets[other_id].cidr)
            if other.version == cidr_net.version and other.overlaps(cidr_net):
                raise errors.bad_request(
                    f"Invalid input for operation: Requested subnet with cidr: {cidr_net} "
                    f"for network: {net.id} overlaps with another subnet.",
                    "InvalidInput",
                )
        gateway = self._parse_gateway(gateway_ip, cidr_net)
        if allocation_pools is None:
            pools = ipam.default_pools(cidr_net, gateway)
        else:
            pools = ipam.parse_pools(allocation_pools, cidr_net, gateway)
        now = self._now()
        sub = Subnet(
            id=self.site.new_id(),
            project_id=project_id,
            created_at=now,
            updated_at=now,
            name=name,
            description=description,
            network_id=net.id,
            cidr=str(cidr_net),
            ip_version=cidr_net.version,
            gateway_ip=str(gateway) if gateway is not None else None,
            allocation_pools=[(str(a), str(b)) for a, b in pools],
            enable_dhcp=enable_dhcp,
            dns_nameservers=list(dns_nameservers or []),
            host_routes=list(host_routes or []),
        )
        self.subnets[sub.id] = sub
        self._addresses[sub.id] = ipam.SubnetAddresses(cidr_net, pools)
        net.subnets.append(sub.id)
        net.touch(now)
        return sub

    @staticmethod
    def _parse_gateway(raw: Any, net: ipam.IPNetwork) -> ipam.IPAddress | None:
        if raw is _UNSET:
            return ipam.default_gateway(net)
        if raw is None:
            return None
        gw = ipam.parse_ip(raw, "gateway_ip")
        if gw not in net or gw == net.network_address:
            raise errors.bad_request(
                f"Invalid input for operation: Gateway is not valid on subnet: {raw}.",
                "InvalidInput",
            )
        return gw

    def update_subnet(self, subnet_id: str, changes: dict[str, Any]) -> Subnet:
        sub = self.get_subnet(subnet_id)
        addrs = self._addresses[sub.id]
        gateway: ipam.IPAddress | None = (
            ipaddress.ip_address(sub.gateway_ip) if sub.gateway_ip else None
        )
        if "gateway_ip" in changes:
            gateway = self._parse_gateway(changes.pop("gateway_ip"), addrs.net)
            sub.gateway_ip = str(gateway) if gateway is not None else None
        if "allocation_pools" in changes:
            pools = ipam.parse_pools(changes.pop("allocation_pools"), addrs.net, gateway)
            addrs.pools = pools
            sub.allocation_pools = [(str(a), str(b)) for a, b in pools]
        for key, value in changes.items():
            setattr(sub, key, value)
        sub.touch(self._now())
        return sub

    def delete_subnet(self, subnet_id: str) -> None:
        sub = self.get_subnet(subnet_id)
        users = [
            p
            for p in self.ports.values()
            if any(f["subnet_id"] == sub.id for f in p.fixed_ips)
            and p.device_owner not in ("", "network:dhcp")
        ]
        if users:
            raise errors.conflict(
                f"Unable to complete operation on subnet {sub.id}: "
                "One or more ports have an IP allocation from this subnet.",
                "SubnetInUse",
            )
        for port in self.ports.values():
            port.fixed_ips = [f for f in port.fixed_ips if f["subnet_id"] != sub.id]
        net = self.networks.get(sub.network_id)
        if net is not None and sub.id in net.subnets:
            net.subnets.remove(sub.id)
            net.touch(self._now())
        del self.subnets[sub.id]
        del self._addresses[sub.id]

    # -- addresses ---------------------------------------------------------------
    def _allocate(
        self, net: Network, requested: list[dict[str, Any]] | None, *, router: bool = False
    ) -> list[dict[str, str]]:
        """Choose fixed IPs for a port and mark them used (all or nothing).

        ``requested`` is Neutron's ``fixed_ips`` list (each with ``subnet_id``
        and/or ``ip_address``); ``None`` means one address per IP version from
        the network's first subnet that has room.
        """
        chosen: list[tuple[str, ipam.IPAddress]] = []
        if requested is None:
            seen_versions: set[int] = set()
            for sub_id in net.subnets:
                sub = self.subnets[sub_id]
                if sub.ip_version in seen_versions:
                    continue
                ip = self._addresses[sub_id].next_free()
                if ip is not None:
                    chosen.append((sub_id, ip))
                    seen_versions.add(sub.ip_version)
            if net.subnets and not chosen:
                raise errors.conflict(
                    f"No more IP addresses available on network {net.id}.",
                    "IpAddressGenerationFailure",
                )
        else:
            for item in requested:
                chosen.append(self._choose(net, item, chosen, router=router))
        for sub_id, ip in chosen:
            self._addresses[sub_id].take(ip)
        return [{"subnet_id": s, "ip_address": str(ip)} for s, ip in chosen]

    def _choose(
        self,
        net: Network,
        item: dict[str, Any],
        already: list[tuple[str, ipam.IPAddress]],
        *,
        router: bool,
    ) -> tuple[str, ipam.IPAddress]:
        sub_id = item.get("subnet_id")
        raw_ip = item.get("ip_address")
        if sub_id is None and raw_ip is None:
            raise errors.bad_request(
                "Invalid input for fixed_ips. Reason: each entry needs a subnet_id or an ip_address.",
            )
        ip = ipam.parse_ip(raw_ip) if raw_ip is not None else None
        if sub_id is not None:
            if not isinstance(sub_id, str) or sub_id not in self.subnets:
                raise errors.not_found("subnet", str(sub_id))
            if self.subnets[sub_id].network_id != net.id:
                raise errors.bad_request(
                    f"Invalid input for operation: Failed to create port on network {net.id}"
                    f", because fixed_ips included invalid subnet {sub_id}.",
                    "InvalidInput",
                )
        else:
            assert ip is not None
            for cand in net.subnets:
                if ip in self._addresses[cand].net:
                    sub_id = cand
                    break
            else:
                raise errors.bad_request(
                    f"IP address {ip} is not a valid IP for any of the subnets on the "
                    "specified network.",
                    "InvalidIpForNetwork",
                )
        addrs = self._addresses[sub_id]
        taken = {i for s, i in already if s == sub_id}
        if ip is None:
            free = ipam.SubnetAddresses(addrs.net, addrs.pools, addrs.used | taken).next_free()
            if free is None:
                raise errors.conflict(
                    f"No more IP addresses available on network {net.id}.",
                    "IpAddressGenerationFailure",
                )
            return sub_id, free
        net_range = addrs.net
        if (
            ip not in net_range
            or ip == net_range.network_address
            or (net_range.version == 4 and ip == net_range.broadcast_address)
        ):
            raise errors.bad_request(
                f"IP address {ip} is not a valid IP for the specified subnet.",
                "InvalidIpForSubnet",
            )
        gateway = self.subnets[sub_id].gateway_ip
        if ip in addrs.used or ip in taken or (str(ip) == gateway and not router):
            raise errors.ip_in_use(str(ip), sub_id)
        return sub_id, ip

    def _release(self, fixed_ips: list[dict[str, str]]) -> None:
        for f in fixed_ips:
            addrs = self._addresses.get(f["subnet_id"])
            if addrs is not None:
                addrs.release(ipaddress.ip_address(f["ip_address"]))

    def _check_mac(self, network_id: str, mac: str, port_id: str | None = None) -> None:
        for p in self.ports.values():
            if p.network_id == network_id and p.mac_address == mac and p.id != port_id:
                raise errors.mac_in_use(mac, network_id)

    # -- ports -------------------------------------------------------------------
    def get_port(self, port_id: str) -> Port:
        port = self.ports.get(port_id)
        if port is None:
            raise errors.not_found("port", port_id)
        return port

    def add_port(
        self,
        *,
        project_id: str,
        network_id: str,
        name: str = "",
        description: str = "",
        fixed_ips: list[dict[str, Any]] | None = None,
        mac_address: str | None = None,
        device_id: str = "",
        device_owner: str = "",
        host: str = "",
        profile: dict[str, Any] | None = None,
        vnic_type: str = "normal",
        admin_state_up: bool = True,
        security_groups: list[str] | None = None,
        port_security_enabled: bool | None = None,
        allowed_address_pairs: list[dict[str, str]] | None = None,
    ) -> Port:
        """Create a port with every attribute Neutron's ``POST /ports`` takes."""
        net = self.get_network(network_id)
        mac = ipam.normalize_mac(mac_address) if mac_address is not None else None
        if mac is not None:
            self._check_mac(net.id, mac)
        else:
            taken = {p.mac_address for p in self.ports.values() if p.network_id == net.id}
            mac = ipam.random_mac(self._rng, taken)
        psec = net.port_security_enabled if port_security_enabled is None else port_security_enabled
        if security_groups is None:
            security_groups = (
                [self.default_security_group(project_id).id]
                if psec and not device_owner.startswith("network:")
                else []
            )
        else:
            for sg_id in security_groups:
                self.get_security_group(sg_id)
        pairs = list(allowed_address_pairs or [])
        self._check_port_security(psec, security_groups, pairs)
        ips = self._allocate(net, fixed_ips, router=device_owner == ROUTER_INTERFACE)
        now = self._now()
        port = Port(
            id=self.site.new_id(),
            project_id=project_id,
            created_at=now,
            updated_at=now,
            name=name,
            description=description,
            network_id=net.id,
            mac_address=mac,
            fixed_ips=ips,
            device_id=device_id,
            device_owner=device_owner,
            host_id=host,
            profile=dict(profile or {}),
            vnic_type=vnic_type,
            admin_state_up=admin_state_up,
            security_groups=list(security_groups),
            port_security_enabled=psec,
            allowed_address_pairs=pairs,
        )
        self.ports[port.id] = port
        return port

    @staticmethod
    def _check_port_security(
        enabled: bool, security_groups: list[str], pairs: list[dict[str, str]]
    ) -> None:
        if not enabled and security_groups:
            raise errors.conflict(
                "Port has security group associated. Cannot disable port security or "
                "IP address until security group is removed.",
                "PortSecurityPortHasSecurityGroup",
            )
        if not enabled and pairs:
            raise errors.conflict(
                "Port Security must be enabled in order to have allowed address pairs on a port.",
                "AddressPairAndPortSecurityRequired",
            )

    def update_port(self, port_id: str, changes: dict[str, Any]) -> Port:
        """Apply validated changes (model attribute names; ``fixed_ips`` in request form)."""
        port = self.get_port(port_id)
        if "mac_address" in changes:
            mac = ipam.normalize_mac(changes.pop("mac_address"))
            if mac != port.mac_address:
                if port.bound:
                    raise errors.conflict(
                        f"Port {port.id} is bound; its MAC address cannot change.", "PortBound"
                    )
                self._check_mac(port.network_id, mac, port.id)
                port.mac_address = mac
        if "security_groups" in changes:
            for sg_id in changes["security_groups"]:
                self.get_security_group(sg_id)
        self._check_port_security(
            changes.get("port_security_enabled", port.port_security_enabled),
            changes.get("security_groups", port.security_groups),
            changes.get("allowed_address_pairs", port.allowed_address_pairs),
        )
        if "fixed_ips" in changes:
            requested = changes.pop("fixed_ips")
            old = port.fixed_ips
            # Addresses the port keeps must not look taken by itself.
            self._release(old)
            try:
                port.fixed_ips = self._allocate(
                    self.get_network(port.network_id),
                    requested,
                    router=port.device_owner == ROUTER_INTERFACE,
                )
            except ApiError:
                for f in old:
                    self._addresses[f["subnet_id"]].take(ipaddress.ip_address(f["ip_address"]))
                raise
        for key, value in changes.items():
            setattr(port, key, value)
        port.touch(self._now())
        return port

    def delete_port(self, port_id: str) -> None:
        port = self.get_port(port_id)
        for fip in self.floating_ips.values():
            if fip.port_id == port.id:
                self._disassociate(fip)
        self._release(port.fixed_ips)
        del self.ports[port.id]

    # -- the compute service's calls (docs/sim-internals.md) ---------------------
    def create_port(
        self,
        *,
        project_id: str,
        network_id: str,
        device_id: str,
        host: str | None,
        fixed_ip: str | None = None,
        mac: str | None = None,
    ) -> Port:
        """A port Nova makes for a server's NIC, bound to ``host`` (ACTIVE at once).

        Raises ``ApiError`` 404 ``NetworkNotFound``, 409
        ``IpAddressAlreadyAllocated`` / ``MacAddressInUse``, 400 for an address
        outside the network.  Such ports are deleted by :meth:`unbind_ports`.
        """
        port = self.add_port(
            project_id=project_id,
            network_id=network_id,
            fixed_ips=[{"ip_address": fixed_ip}] if fixed_ip is not None else None,
            mac_address=mac,
            device_id=device_id,
            device_owner=COMPUTE_OWNER,
            host=host or "",
        )
        port.compute_owned = True
        return port

    def bind_port(self, port_id: str, *, device_id: str, host: str | None) -> Port:
        """Attach a user's existing port to a server on ``host``.

        409 ``PortInUse`` if another device already holds it.
        """
        port = self.get_port(port_id)
        if port.device_id and port.device_id != device_id:
            raise errors.conflict(
                f"Unable to complete operation on port {port.id} for network "
                f"{port.network_id}. Port already has an attached device {port.device_id}.",
                "PortInUse",
            )
        port.device_id = device_id
        port.device_owner = COMPUTE_OWNER
        port.host_id = host or ""
        port.touch(self._now())
        return port

    def unbind_ports(self, device_id: str) -> None:
        """Release a deleted server's ports, as Nova does.

        Ports compute created (:meth:`create_port`) are deleted; ports the user
        made and passed in are kept, detached (no device, no host binding).
        """
        for port in self.ports_of(device_id):
            if port.compute_owned:
                self.delete_port(port.id)
            else:
                port.device_id = ""
                port.device_owner = ""
                port.host_id = ""
                port.profile = {}
                port.touch(self._now())

    def ports_of(self, device_id: str) -> list[Port]:
        """A device's ports, oldest first (the order of the server's NICs)."""
        return [p for p in self.ports.values() if p.device_id == device_id]

    def move_ports(self, device_id: str, host: str | None) -> None:
        """Rebind a server's ports to ``host`` (evacuation, migration)."""
        now = self._now()
        for port in self.ports_of(device_id):
            port.host_id = host or ""
            port.touch(now)

    def network_name(self, port: Port) -> str:
        """The name of the port's network (what Nova keys ``addresses`` by)."""
        net = self.networks.get(port.network_id)
        return net.name if net is not None else ""

    # -- security groups ---------------------------------------------------------
    def get_security_group(self, sg_id: str) -> SecurityGroup:
        sg = self.security_groups.get(sg_id)
        if sg is None:
            raise errors.not_found("security_group", str(sg_id))
        return sg

    def default_security_group(self, project_id: str) -> SecurityGroup:
        """The project's ``default`` group, created on first need as Neutron does."""
        for sg in self.security_groups.values():
            if sg.project_id == project_id and sg.name == "default":
                return sg
        sg = self.create_security_group(
            project_id=project_id, name="default", description="Default security group"
        )
        # Besides the egress rules every group gets, members of the default
        # group accept each other's traffic.
        for ethertype in ("IPv4", "IPv6"):
            self.add_rule(
                project_id=project_id,
                security_group_id=sg.id,
                direction="ingress",
                ethertype=ethertype,
                remote_group_id=sg.id,
            )
        return sg

    def create_security_group(
        self, *, project_id: str, name: str = "", description: str = "", stateful: bool = True
    ) -> SecurityGroup:
        now = self._now()
        sg = SecurityGroup(
            id=self.site.new_id(),
            project_id=project_id,
            created_at=now,
            updated_at=now,
            name=name,
            description=description,
            stateful=stateful,
        )
        self.security_groups[sg.id] = sg
        # Neutron gives every new group two egress rules.
        for ethertype in ("IPv4", "IPv6"):
            self.add_rule(
                project_id=project_id,
                security_group_id=sg.id,
                direction="egress",
                ethertype=ethertype,
            )
        return sg

    def delete_security_group(self, sg_id: str) -> None:
        sg = self.get_security_group(sg_id)
        if sg.name == "default":
            raise errors.conflict(
                "Insufficient rights for removing default security group.",
                "SecurityGroupCannotRemoveDefault",
            )
        if any(sg.id in p.security_groups for p in self.ports.values()):
            raise errors.conflict(f"Security Group {sg.id} in use.", "SecurityGroupInUse")
        del self.security_groups[sg.id]

    def add_rule(
        self,
        *,
        project_id: str,
        security_group_id: str,
        direction: str,
        ethertype: str = "IPv4",
        protocol: str | None = None,
        port_range_min: int | None = None,
        port_range_max: int | None = None,
        remote_ip_prefix: str | None = None,
        remote_group_id: str | None = None,
        description: str = "",
    ) -> SecurityGroupRule:
        sg = self.get_security_group(security_group_id)
        if remote_group_id is not None:
            self.get_security_group(remote_group_id)
        now = self._now()
        rule = SecurityGroupRule(
            id=self.site.new_id(),
            project_id=project_id,
            created_at=now,
            updated_at=now,
            description=description,
            security_group_id=sg.id,
            direction=direction,
            ethertype=ethertype,
            protocol=protocol,
            port_range_min=port_range_min,
            port_range_max=port_range_max,
            remote_ip_prefix=remote_ip_prefix,
            remote_group_id=remote_group_id,
        )
        for other in sg.rules:
            if other.key() == rule.key():
                raise errors.conflict(
                    f"Security group rule already exists. Rule id is {other.id}.",
                    "SecurityGroupRuleExists",
                )
        sg.rules.append(rule)
        sg.touch(now)
        return rule

    def find_rule(self, rule_id: str) -> SecurityGroupRule:
        for sg in self.security_groups.values():
            for rule in sg.rules:
                if rule.id == rule_id:
                    return rule
        raise errors.not_found("security_group_rule", rule_id)

    def all_rules(self) -> list[SecurityGroupRule]:
        return [r for sg in self.security_groups.values() for r in sg.rules]

    def delete_rule(self, rule_id: str) -> None:
        rule = self.find_rule(rule_id)
        sg = self.security_groups[rule.security_group_id]
        sg.rules.remove(rule)
        sg.touch(self._now())

    # -- floating IPs --------------------------------------------------------------
    def get_floating_ip(self, fip_id: str) -> FloatingIP:
        fip = self.floating_ips.get(fip_id)
        if fip is None:
            raise errors.not_found("floatingip", fip_id)
        return fip

    def create_floating_ip(
        self,
        *,
        project_id: str,
        floating_network_id: str,
        floating_ip_address: str | None = None,
        subnet_id: str | None = None,
        port_id: str | None = None,
        fixed_ip_address: str | None = None,
        description: str = "",
    ) -> FloatingIP:
        """Allocate an address on an external network, optionally associated at once."""
        net = self.get_network(floating_network_id)
        if not net.external:
            raise errors.bad_request(
                f"Bad floatingip request: Network {net.id} is not a valid external network.",
                "BadRequest",
            )
        if port_id is not None:
            self.get_port(port_id)  # 404 before anything is allocated
        item: dict[str, Any] = {}
        if subnet_id is not None:
            item["subnet_id"] = subnet_id
        if floating_ip_address is not None:
            item["ip_address"] = floating_ip_address
        v4 = [s for s in net.subnets if self.subnets[s].ip_version == 4]
        if not item and not v4:
            raise errors.bad_request(
                f"Bad floatingip request: Network {net.id} does not contain any IPv4 subnet.",
                "BadRequest",
            )
        if not item:
            requested: list[dict[str, Any]] | None = None
            for sub_id in v4:
                if self._addresses[sub_id].next_free() is not None:
                    requested = [{"subnet_id": sub_id}]
                    break
            if requested is None:
                raise errors.conflict(
                    f"No more IP addresses available on network {net.id}.",
                    "IpAddressGenerationFailure",
                )
        else:
            requested = [item]
        fip_id = self.site.new_id()
        holder = self.add_port(
            project_id="",
            network_id=net.id,
            fixed_ips=requested,
            device_id=fip_id,
            device_owner=FLOATINGIP_OWNER,
        )
        now = self._now()
        fip = FloatingIP(
            id=fip_id,
            project_id=project_id,
            created_at=now,
            updated_at=now,
            description=description,
            floating_network_id=net.id,
            floating_ip_address=holder.fixed_ips[0]["ip_address"],
            fip_port_id=holder.id,
        )
        self.floating_ips[fip.id] = fip
        if port_id is not None:
            try:
                self.associate(fip.id, port_id, fixed_ip_address)
            except ApiError:
                self.delete_floating_ip(fip.id)
                raise
        return fip

    def associate(
        self, fip_id: str, port_id: str | None, fixed_ip_address: str | None = None
    ) -> FloatingIP:
        """Point a floating IP at a port's fixed IP (``port_id=None`` disassociates)."""
        fip = self.get_floating_ip(fip_id)
        if port_id is None:
            self._disassociate(fip)
            return fip
        port = self.get_port(port_id)
        if port.network_id == fip.floating_network_id:
            raise errors.bad_request(
                f"Bad floatingip request: Port {port.id} is on the external network "
                f"{port.network_id}; it cannot have a floating IP.",
                "BadRequest",
            )
        v4 = [
            f["ip_address"]
            for f in port.fixed_ips
            if ipaddress.ip_address(f["ip_address"]).version == 4
        ]
        if fixed_ip_address is None:
            if not v4:
                raise errors.bad_request(
                    f"Bad floatingip request: Port {port.id} does not have any IPv4 address.",
                    "BadRequest",
                )
            fixed = v4[0]
        else:
            if fixed_ip_address not in v4:
                raise errors.bad_request(
                    f"Bad floatingip request: Port {port.id} does not have fixed ip "
                    f"{fixed_ip_address}.",
                    "BadRequest",
                )
            fixed = fixed_ip_address
        for other in self.floating_ips.values():
            if (
                other.id != fip.id
                and other.port_id == port.id
                and other.fixed_ip_address == fixed
                and other.floating_network_id == fip.floating_network_id
            ):
                raise errors.conflict(
                    f"Cannot associate floating IP {fip.floating_ip_address} ({fip.id}) with "
                    f"port {port.id} using fixed IP {fixed}, as that fixed IP already has a "
                    f"floating IP on external network {fip.floating_network_id}.",
                    "FloatingIPPortAlreadyAssociated",
                )
        fip.port_id = port.id
        fip.fixed_ip_address = fixed
        fip.router_id = self._router_for(fip.floating_network_id, port)
        fip.touch(self._now())
        return fip

    def _disassociate(self, fip: FloatingIP) -> None:
        fip.port_id = None
        fip.fixed_ip_address = None
        fip.router_id = None
        fip.touch(self._now())

    def _router_for(self, ext_net_id: str, port: Port) -> str | None:
        """The router joining the port's subnets to the external network, if any.

        Neutron refuses the association without one; the simulator allows it
        (``router_id`` stays null) so recovery can move addresses without
        rebuilding routers first.
        """
        subnets = {f["subnet_id"] for f in port.fixed_ips}
        for router in self.routers.values():
            if not router.gateway or router.gateway.get("network_id") != ext_net_id:
                continue
            for p in self.ports.values():
                if (
                    p.device_id == router.id
                    and p.device_owner == ROUTER_INTERFACE
                    and any(f["subnet_id"] in subnets for f in p.fixed_ips)
                ):
                    return router.id
        return None

    def delete_floating_ip(self, fip_id: str) -> None:
        fip = self.get_floating_ip(fip_id)
        holder = self.ports.get(fip.fip_port_id)
        if holder is not None:
            self._release(holder.fixed_ips)
            del self.ports[holder.id]
        del self.floating_ips[fip.id]

    # -- routers -------------------------------------------------------------------
    def get_router(self, router_id: str) -> Router:
        router = self.routers.get(router_id)
        if router is None:
            raise errors.not_found("router", router_id)
        return router

    def create_router(
        self,
        *,
        project_id: str,
        name: str = "",
        description: str = "",
        admin_state_up: bool = True,
        gateway_network_id: str | None = None,
        enable_snat: bool = True,
    ) -> Router:
        now = self._now()
        router = Router(
            id=self.site.new_id(),
            project_id=project_id,
            created_at=now,
            updated_at=now,
            name=name,
            description=description,
            admin_state_up=admin_state_up,
        )
        self.routers[router.id] = router
        if gateway_network_id is not None:
            try:
                self.set_gateway(router.id, gateway_network_id, enable_snat=enable_snat)
            except ApiError:
                del self.routers[router.id]
                raise
        return router

    def set_gateway(
        self, router_id: str, network_id: str | None, *, enable_snat: bool = True
    ) -> Router:
        """Set (or with ``None`` clear) the router's external gateway."""
        router = self.get_router(router_id)
        if router.gateway_port_id is not None:
            if (
                network_id is not None
                and router.gateway
                and router.gateway["network_id"] == network_id
            ):
                router.gateway["enable_snat"] = enable_snat
                return router
            self.delete_port(router.gateway_port_id)
            router.gateway_port_id = None
            router.gateway = None
        if network_id is not None:
            net = self.get_network(network_id)
            if not net.external:
                raise errors.bad_request(
                    f"Bad router request: Network {net.id} is not an external network.",
                    "BadRequest",
                )
            port = self.add_port(
                project_id="",
                network_id=net.id,
                device_id=router.id,
                device_owner=ROUTER_GATEWAY,
            )
            router.gateway_port_id = port.id
            router.gateway = {
                "network_id": net.id,
                "enable_snat": enable_snat,
                "external_fixed_ips": [dict(f) for f in port.fixed_ips],
            }
        router.touch(self._now())
        return router

    def add_interface(
        self, router_id: str, *, subnet_id: str | None = None, port_id: str | None = None
    ) -> Port:
        """Plug a subnet (taking its gateway address) or an existing port into the router."""
        router = self.get_router(router_id)
        if port_id is not None:
            port = self.get_port(port_id)
            if port.device_id:
                raise errors.conflict(f"Port {port.id} is in use by {port.device_id}.", "PortInUse")
            port.device_id = router.id
            port.device_owner = ROUTER_INTERFACE
            port.touch(self._now())
            return port
        if subnet_id is None:
            raise errors.bad_request(
                "Bad router request: Either subnet_id or port_id must be specified.", "BadRequest"
            )
        sub = self.get_subnet(subnet_id)
        if sub.gateway_ip is None:
            raise errors.bad_request(
                f"Bad router request: Subnet {sub.id} does not have a gateway IP.", "BadRequest"
            )
        for p in self.ports.values():
            if p.device_id == router.id and any(f["subnet_id"] == sub.id for f in p.fixed_ips):
                raise errors.bad_request(
                    f"Bad router request: Router already has a port on subnet {sub.id}.",
                    "BadRequest",
                )
        return self.add_port(
            project_id=router.project_id,
            network_id=sub.network_id,
            fixed_ips=[{"subnet_id": sub.id, "ip_address": sub.gateway_ip}],
            device_id=router.id,
            device_owner=ROUTER_INTERFACE,
        )

    def remove_interface(
        self, router_id: str, *, subnet_id: str | None = None, port_id: str | None = None
    ) -> Port:
        router = self.get_router(router_id)
        for p in list(self.ports.values()):
            if p.device_id != router.id or p.device_owner != ROUTER_INTERFACE:
                continue
            if p.id == port_id or (
                subnet_id is not None and any(f["subnet_id"] == subnet_id for f in p.fixed_ips)
            ):
                self.delete_port(p.id)
                router.touch(self._now())
                return p
        raise errors.not_found("port", str(port_id or subnet_id))

    def delete_router(self, router_id: str) -> None:
        router = self.get_router(router_id)
        if any(
            p.device_id == router.id and p.device_owner == ROUTER_INTERFACE
            for p in self.ports.values()
        ):
            raise errors.conflict(f"Router {router.id} still has ports", "RouterInUse")
        self.set_gateway(router.id, None)
        del self.routers[router.id]

    # -- lookups ---------------------------------------------------------------------
    def ports_on_host(self, host: str) -> list[Port]:
        return [p for p in self.ports.values() if p.host_id == host]
