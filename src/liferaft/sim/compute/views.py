"""JSON bodies of the compute API, shaped by the request's microversion."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..http import Version
from .records import Flavor, Host, KeyPair, Server, ServerGroup

if TYPE_CHECKING:
    from ..identity import Ctx
    from .state import ComputeState


def iso(ts: float | None) -> str | None:
    """Nova's timestamp format (``2026-01-01T00:00:00Z``)."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_micro(ts: float | None) -> str | None:
    """The microsecond form Nova uses in services, actions and key pairs."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def links(base: str, kind: str, ident: str) -> list[dict[str, str]]:
    return [
        {"rel": "self", "href": f"{base}/compute/v2.1/{kind}/{ident}"},
        {"rel": "bookmark", "href": f"{base}/compute/{kind}/{ident}"},
    ]


# -- flavors --------------------------------------------------------------------
def flavor_brief(f: Flavor, base: str, mv: Version) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": f.id, "name": f.name, "links": links(base, "flavors", f.id)}
    if mv >= (2, 55):
        doc["description"] = f.description
    return doc


def flavor_detail(f: Flavor, base: str, mv: Version) -> dict[str, Any]:
    doc = flavor_brief(f, base, mv)
    doc.update(
        {
            "ram": f.ram_mb,
            "disk": f.disk_gb,
            "vcpus": f.vcpus,
            "OS-FLV-EXT-DATA:ephemeral": f.ephemeral_gb,
            "OS-FLV-DISABLED:disabled": False,
            "swap": f.swap_mb if (mv >= (2, 75) or f.swap_mb) else "",
            "rxtx_factor": 1.0,
            "os-flavor-access:is_public": f.is_public,
        }
    )
    if mv >= (2, 61):
        doc["extra_specs"] = dict(f.extra_specs)
    return doc


# -- servers -----------------------------------------------------------------------
def server_brief(s: Server, base: str) -> dict[str, Any]:
    return {"id": s.id, "name": s.name, "links": links(base, "servers", s.id)}


def _host_id(s: Server) -> str:
    if not s.host:
        return ""
    return hashlib.sha224((s.project_id + s.host).encode()).hexdigest()


def _host_status(state: ComputeState, s: Server) -> str:
    host = state.hosts.get(s.host or "")
    if host is None:
        return ""
    if host.forced_down or not host.service_up(state.now()):
        return "DOWN"
    if host.disabled:
        return "MAINTENANCE"
    return "UP"


def addresses(state: ComputeState, s: Server) -> dict[str, list[dict[str, Any]]]:
    """``addresses`` from the server's ports, grouped by network name."""
    net = state.site.network
    ports = getattr(net, "ports", None)
    if not isinstance(ports, dict):
        return {}
    out: dict[str, list[dict[str, Any]]] = {}
    for pid in s.ports:
        port = ports.get(pid)
        if port is None or port.device_id != s.id:
            continue  # deleted or detached since
        label = net.network_name(port)
        for ip in getattr(port, "fixed_ips", []) or []:
            addr = ip.get("ip_address")
            out.setdefault(label, []).append(
                {
                    "version": 6 if ":" in str(addr) else 4,
                    "addr": addr,
                    "OS-EXT-IPS:type": "fixed",
                    "OS-EXT-IPS-MAC:mac_addr": getattr(port, "mac_address", ""),
                }
            )
        for fip in (getattr(net, "floating_ips", None) or {}).values():
            if fip.port_id == port.id:
                out.setdefault(label, []).append(
                    {
                        "version": 4,
                        "addr": fip.floating_ip_address,
                        "OS-EXT-IPS:type": "floating",
                        "OS-EXT-IPS-MAC:mac_addr": port.mac_address,
                    }
                )
    return out


def server_detail(
    state: ComputeState, s: Server, ctx: Ctx, mv: Version, base: str
) -> dict[str, Any]:
    f = s.flavor
    if mv >= (2, 47):
        flavor: dict[str, Any] = {
            "original_name": f.name,
            "vcpus": f.vcpus,
            "ram": f.ram_mb,
            "disk": f.disk_gb,
            "ephemeral": f.ephemeral_gb,
            "swap": f.swap_mb,
            "extra_specs": dict(f.extra_specs),
        }
    else:
        flavor = {
            "id": f.id,
            "links": [{"rel": "bookmark", "href": f"{base}/compute/flavors/{f.id}"}],
        }
    image: Any = ""
    if s.image_id:
        image = {
            "id": s.image_id,
            "links": [{"rel": "bookmark", "href": f"{base}/compute/images/{s.image_id}"}],
        }
    doc: dict[str, Any] = {
        "id": s.id,
        "name": s.name,
        "status": s.status,
        "tenant_id": s.project_id,
        "user_id": s.user_id,
        "metadata": dict(s.metadata),
        "hostId": _host_id(s),
        "image": image,
        "flavor": flavor,
        "created": iso(s.created),
        "updated": iso(s.updated),
        "addresses": addresses(state, s),
        "accessIPv4": "",
        "accessIPv6": "",
        "links": links(base, "servers", s.id),
        "OS-DCF:diskConfig": "MANUAL",
        "OS-EXT-AZ:availability_zone": s.availability_zone if s.host else "",
        "config_drive": "",
        "key_name": s.key_name,
        "OS-SRV-USG:launched_at": iso_micro(s.launched_at),
        "OS-SRV-USG:terminated_at": None,
        "OS-EXT-STS:task_state": s.task_state,
        "OS-EXT-STS:vm_state": s.vm_state,
        "OS-EXT-STS:power_state": s.power_state,
        "os-extended-volumes:volumes_attached": [
            {"id": vid, **({"delete_on_termination": dot} if mv >= (2, 3) else {})}
            for vid, _dev, dot in s.volumes
        ],
        "security_groups": [{"name": "default"}],
    }
    if s.status in ("BUILD", "ACTIVE"):
        doc["progress"] = 0 if s.status == "BUILD" else 100
    if s.fault is not None and s.vm_state == "error":
        doc["fault"] = {
            "code": s.fault["code"],
            "message": s.fault["message"],
            "created": iso(s.fault["created"]),
        }
        if ctx.is_admin:
            doc["fault"]["details"] = s.fault["message"]
    if ctx.is_admin:
        doc["OS-EXT-SRV-ATTR:host"] = s.host
        doc["OS-EXT-SRV-ATTR:hypervisor_hostname"] = s.host
        doc["OS-EXT-SRV-ATTR:instance_name"] = "instance-" + s.id[:8]
        if mv >= (2, 3):
            doc.update(
                {
                    "OS-EXT-SRV-ATTR:reservation_id": s.reservation_id,
                    "OS-EXT-SRV-ATTR:launch_index": s.launch_index,
                    "OS-EXT-SRV-ATTR:hostname": s.name,
                    "OS-EXT-SRV-ATTR:kernel_id": "",
                    "OS-EXT-SRV-ATTR:ramdisk_id": "",
                    "OS-EXT-SRV-ATTR:root_device_name": "/dev/vda",
                    "OS-EXT-SRV-ATTR:user_data": None,
                }
            )
        if mv >= (2, 16):
            doc["host_status"] = _host_status(state, s)
    if mv >= (2, 9):
        doc["locked"] = s.locked
    if mv >= (2, 73):
        doc["locked_reason"] = s.locked_reason
    if mv >= (2, 19):
        doc["description"] = s.description
    if mv >= (2, 26):
        doc["tags"] = []
    if mv >= (2, 63):
        doc["trusted_image_certificates"] = None
    if mv >= (2, 71):
        doc["server_groups"] = [s.group_id] if s.group_id else []
    if mv >= (2, 96):
        doc["pinned_availability_zone"] = None
    return doc


# -- services, hypervisors ----------------------------------------------------------
def service(state: ComputeState, h: Host, mv: Version) -> dict[str, Any]:
    now = state.now()
    doc: dict[str, Any] = {
        "id": h.service_id if mv >= (2, 53) else h.index,
        "binary": "nova-compute",
        "host": h.name,
        "zone": "nova",
        "status": "disabled" if h.disabled else "enabled",
        "state": "up" if h.service_up(now) else "down",
        "updated_at": iso_micro(h.updated_at(now)),
        "disabled_reason": h.disabled_reason,
    }
    if mv >= (2, 11):
        doc["forced_down"] = h.forced_down
    return doc


def hypervisor(
    state: ComputeState, h: Host, mv: Version, *, detail: bool, servers: bool = False
) -> dict[str, Any]:
    now = state.now()
    doc: dict[str, Any] = {
        "id": h.hypervisor_id if mv >= (2, 53) else h.index,
        "hypervisor_hostname": h.name,
        "state": "up" if h.service_up(now) else "down",
        "status": "disabled" if h.disabled else "enabled",
    }
    if servers:
        doc["servers"] = [
            {"uuid": sid, "name": state.servers[sid].name}
            for sid in sorted(h.servers)
            if sid in state.servers
        ]
    if not detail:
        return doc
    doc.update(
        {
            "host_ip": f"192.168.{h.index // 250}.{h.index % 250 + 1}",
            "hypervisor_type": "QEMU",
            "hypervisor_version": 8002000,
            "service": {
                "host": h.name,
                "id": h.service_id if mv >= (2, 53) else h.index,
                "disabled_reason": h.disabled_reason,
            },
        }
    )
    if mv < (2, 88):
        doc.update(
            {
                "vcpus": h.vcpus,
                "memory_mb": h.ram_mb,
                "local_gb": h.disk_gb,
                "vcpus_used": h.vcpus_used,
                "memory_mb_used": h.ram_used,
                "local_gb_used": h.disk_used,
                "free_ram_mb": h.ram_mb - h.ram_used,
                "free_disk_gb": h.disk_gb - h.disk_used,
                "current_workload": h.building,
                "running_vms": len(h.servers),
                "disk_available_least": h.disk_gb - h.disk_used,
                "cpu_info": "{}",
            }
        )
    else:
        doc["uptime"] = None
    return doc


# -- key pairs, server groups -----------------------------------------------------------
def keypair(k: KeyPair, mv: Version, *, full: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {"name": k.name, "public_key": k.public_key, "fingerprint": k.fingerprint}
    if mv >= (2, 2):
        doc["type"] = k.type
    if full:
        doc.update(
            {
                "user_id": k.user_id,
                "id": k.id,
                "created_at": iso_micro(k.created_at),
                "deleted": False,
                "deleted_at": None,
                "updated_at": None,
            }
        )
    return doc


def server_group(g: ServerGroup, mv: Version) -> dict[str, Any]:
    doc: dict[str, Any] = {"id": g.id, "name": g.name, "members": list(g.members)}
    if mv >= (2, 64):
        doc["policy"] = g.policy
        doc["rules"] = dict(g.rules)
    else:
        doc["policies"] = [g.policy]
        doc["metadata"] = {}
    if mv >= (2, 13):
        doc["project_id"] = g.project_id
        doc["user_id"] = g.user_id
    return doc
