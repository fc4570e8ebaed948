"""JSON bodies of the volume service's resources, shaped by microversion as Cinder's."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..http import Version
from .backups import has_dependents
from .models import (
    Attachment,
    Backup,
    Group,
    GroupSnapshot,
    GroupType,
    Snapshot,
    Volume,
    VolumeType,
)

if TYPE_CHECKING:
    from .state import VolumeState


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def links(base: str, kind: str, ident: str) -> list[dict[str, str]]:
    return [
        {"rel": "self", "href": f"{base}/volume/v3/{kind}/{ident}"},
        {"rel": "bookmark", "href": f"{base}/volume/{kind}/{ident}"},
    ]


def attachment_summary(att: Attachment) -> dict[str, Any]:
    return {
        "id": att.volume_id,
        "attachment_id": att.id,
        "volume_id": att.volume_id,
        "server_id": att.server_id,
        "host_name": att.host,
        "device": att.mountpoint,
        "attached_at": iso(att.attached_at),
    }


def volume(vs: VolumeState, vol: Volume, v: Version, *, admin: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": vol.id,
        "name": vol.name,
        "status": vol.status,
        "size": vol.size,
        "availability_zone": "nova",
        "created_at": iso(vol.created_at),
        "updated_at": iso(vol.updated_at),
        "attachments": [attachment_summary(a) for a in vol.attachments if a.status == "attached"],
        "description": vol.description,
        "volume_type": vol.volume_type.name,
        "snapshot_id": vol.snapshot_id,
        "source_volid": vol.source_volid,
        "metadata": dict(vol.metadata),
        "links": links(vs.site.url, "volumes", vol.id),
        "user_id": vol.user_id,
        "bootable": "true" if vol.bootable else "false",
        "encrypted": False,
        "replication_status": "enabled"
        if vol.volume_type.extra_specs.get("replication_enabled")
        else "disabled",
        "consistencygroup_id": None,
        "multiattach": vol.multiattach,
        "migration_status": vol.migration_status,
        "os-vol-tenant-attr:tenant_id": vol.project_id,
    }
    if vol.image_id:
        body["volume_image_metadata"] = {"image_id": vol.image_id}
    if admin:
        body["os-vol-host-attr:host"] = vs.backend_host
        body["os-vol-mig-status-attr:migstat"] = vol.migration_status
        body["os-vol-mig-status-attr:name_id"] = None
    if v >= (3, 13):
        body["group_id"] = vol.group_id
    if v >= (3, 21):
        body["provider_id"] = None
    if v >= (3, 48):
        body["service_uuid"] = vs.service_uuid
        body["shared_targets"] = False
    if v >= (3, 61):
        body["cluster_name"] = None
    if v >= (3, 63):
        body["volume_type_id"] = vol.volume_type.id
    if v >= (3, 65):
        body["consumes_quota"] = True
    return body


def volume_type(vt: VolumeType) -> dict[str, Any]:
    return {
        "id": vt.id,
        "name": vt.name,
        "description": vt.description,
        "is_public": vt.is_public,
        "os-volume-type-access:is_public": vt.is_public,
        "extra_specs": dict(vt.extra_specs),
        "qos_specs_id": None,
    }


def attachment(att: Attachment, vol: Volume) -> dict[str, Any]:
    return {
        "id": att.id,
        "volume_id": att.volume_id,
        "instance": att.server_id,
        "status": att.status,
        "attach_mode": att.mode,
        "attached_at": iso(att.attached_at),
        "detached_at": None,
        "connection_info": connection_info(vol) if att.connector is not None else {},
    }


def connection_info(vol: Volume) -> dict[str, Any]:
    return {
        "driver_volume_type": "liferaft_sim",
        "data": {"volume_id": vol.id, "device_path": str(vol.disk.path), "access_mode": "rw"},
    }


def snapshot(snap: Snapshot, v: Version) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": snap.id,
        "name": snap.name,
        "status": snap.status,
        "size": snap.size,
        "volume_id": snap.volume_id,
        "description": snap.description,
        "created_at": iso(snap.created_at),
        "updated_at": iso(snap.updated_at),
        "metadata": dict(snap.metadata),
        "os-extended-snapshot-attributes:project_id": snap.project_id,
        "os-extended-snapshot-attributes:progress": "100%" if snap.status == "available" else "0%",
    }
    if v >= (3, 14):
        body["group_snapshot_id"] = snap.group_snapshot_id
    if v >= (3, 41):
        body["user_id"] = snap.user_id
    if v >= (3, 65):
        body["consumes_quota"] = True
    return body


def backup(vs: VolumeState, b: Backup, v: Version, *, admin: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": b.id,
        "name": b.name,
        "status": b.status,
        "size": b.size,
        "volume_id": b.volume_id,
        "description": b.description,
        "availability_zone": "nova",
        "container": b.container,
        "created_at": iso(b.created_at),
        "updated_at": iso(b.updated_at),
        "fail_reason": b.fail_reason,
        "object_count": b.object_count,
        "is_incremental": b.is_incremental,
        "has_dependent_backups": has_dependents(vs, b),
        "snapshot_id": b.snapshot_id,
        "data_timestamp": iso(b.data_timestamp),
        "links": links(vs.site.url, "backups", b.id),
    }
    if admin and v >= (3, 18):
        body["os-backup-project-attr:project_id"] = b.project_id
    if v >= (3, 43):
        body["metadata"] = dict(b.metadata)
    if v >= (3, 56):
        body["user_id"] = b.user_id
    if v >= (3, 64):
        body["encryption_key_id"] = None
    return body


def group_type(gt: GroupType) -> dict[str, Any]:
    return {
        "id": gt.id,
        "name": gt.name,
        "description": gt.description,
        "is_public": gt.is_public,
        "group_specs": dict(gt.group_specs),
    }


def group(vs: VolumeState, g: Group, v: Version, *, with_volumes: bool) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": g.id,
        "name": g.name,
        "status": g.status,
        "availability_zone": "nova",
        "created_at": iso(g.created_at),
        "description": g.description,
        "group_type": g.group_type.id,
        "volume_types": list(g.volume_types),
        "group_snapshot_id": g.group_snapshot_id,
        "source_group_id": g.source_group_id,
    }
    if with_volumes and v >= (3, 25):
        body["volumes"] = [vol.id for vol in vs.group_volumes(g)]
    if v >= (3, 38):
        body["replication_status"] = "disabled"
    if v >= (3, 58):
        body["project_id"] = g.project_id
    return body


def group_snapshot(gs: GroupSnapshot, v: Version) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": gs.id,
        "name": gs.name,
        "status": gs.status,
        "description": gs.description,
        "group_id": gs.group_id,
        "group_type_id": gs.group_type_id,
        "created_at": iso(gs.created_at),
    }
    if v >= (3, 58):
        body["project_id"] = gs.project_id
    return body
