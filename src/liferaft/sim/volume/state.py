"""State of the simulated volume service (Cinder) of one site.

Volumes, snapshots, groups and group snapshots live here with the
operations other packages call (see ``docs/sim-internals.md``); backups are
in ``backups.py``.  Every status change that takes time is a clock event
whose delay comes from ``site.latency``.  Rules follow Cinder: what may be
deleted, snapshotted, attached or extended in which status.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

from ..disks import Disk
from ..http import ApiError, bad_request
from ..identity import stable_id
from . import replication
from .models import (
    DELETABLE,
    Attachment,
    BackendVolume,
    Backup,
    GiB,
    Group,
    GroupSnapshot,
    GroupType,
    Snapshot,
    Volume,
    VolumeType,
)

if TYPE_CHECKING:
    from ..topology import Topology
    from ..world import Site

DEFAULT_TYPE = "__DEFAULT__"
DEFAULT_GROUP_TYPE = "default_group_type"


class VolumeState:
    def __init__(self, site: Site) -> None:
        self.site = site
        self.types: dict[str, VolumeType] = {}
        self.volumes: dict[str, Volume] = {}
        self.snapshots: dict[str, Snapshot] = {}
        self.group_types: dict[str, GroupType] = {}
        self.groups: dict[str, Group] = {}
        self.group_snapshots: dict[str, GroupSnapshot] = {}
        self.backups: dict[str, Backup] = {}
        self.backend: dict[str, BackendVolume] = {}  # name -> unmanaged backend volume
        self.backend_host = f"{site.name}-volume@lvm#lvm"
        self.service_uuid = stable_id("service", site.name, "cinder-volume")
        self.dir = site.state_dir / "volumes"

    def seed(self, topology: Topology, *args: Any) -> None:
        """The default volume type and the default group type."""
        self.add_type(DEFAULT_TYPE, description="Default Volume Type")
        gt = GroupType(stable_id("group_type", DEFAULT_GROUP_TYPE), DEFAULT_GROUP_TYPE)
        gt.description = "Default group type"
        self.group_types[gt.id] = gt

    # -- helpers -----------------------------------------------------------------
    @property
    def now(self) -> float:
        return self.site.clock.now()

    @property
    def block_size(self) -> int:
        return self.site.world.topology.block_size

    def later(self, seconds: float, fn: Any) -> None:
        self.site.clock.call_later(seconds, fn)

    def new_disk(self, kind: str, ident: str, size_gb: int) -> Disk:
        return Disk(self.dir / kind / f"{ident}.img", size_gb * GiB, self.block_size)

    # -- types -----------------------------------------------------------------------
    def add_type(
        self, name: str, *, description: str = "", extra_specs: dict[str, str] | None = None
    ) -> VolumeType:
        """Add a volume type (same id at every site, derived from the name)."""
        if any(t.name == name for t in self.types.values()):
            raise ApiError(409, f"Volume Type {name} already exists.")
        vt = VolumeType(stable_id("volume_type", name), name, description)
        vt.extra_specs = dict(extra_specs or {})
        replication.check_type(self.site, vt)
        self.types[vt.id] = vt
        return vt

    def find_type(self, ref: str | None) -> VolumeType:
        if ref is None or ref == "":
            ref = DEFAULT_TYPE
        if ref in self.types:
            return self.types[ref]
        for t in self.types.values():
            if t.name == ref:
                return t
        raise ApiError(404, f"Volume type with name {ref} could not be found.")

    def find_group_type(self, ref: str | None) -> GroupType:
        ref = ref or DEFAULT_GROUP_TYPE
        if ref in self.group_types:
            return self.group_types[ref]
        for t in self.group_types.values():
            if t.name == ref:
                return t
        raise ApiError(404, f"Group type with name {ref} could not be found.")

    # -- lookup ------------------------------------------------------------------------
    def get(self, volume_id: str) -> Volume:
        vol = self.volumes.get(volume_id)
        if vol is None:
            raise ApiError(404, f"Volume {volume_id} could not be found.")
        return vol

    def get_snapshot(self, snapshot_id: str) -> Snapshot:
        snap = self.snapshots.get(snapshot_id)
        if snap is None:
            raise ApiError(404, f"Snapshot {snapshot_id} could not be found.")
        return snap

    def get_group(self, group_id: str) -> Group:
        grp = self.groups.get(group_id)
        if grp is None:
            raise ApiError(404, f"Group {group_id} could not be found.")
        return grp

    def get_group_snapshot(self, gs_id: str) -> GroupSnapshot:
        gs = self.group_snapshots.get(gs_id)
        if gs is None:
            raise ApiError(404, f"GroupSnapshot {gs_id} could not be found.")
        return gs

    # -- volumes -------------------------------------------------------------------------
    def create_volume(
        self,
        *,
        project_id: str,
        size_gb: int | None,
        name: str = "",
        image_id: str | None = None,
        volume_type: str | None = None,
        snapshot_id: str | None = None,
        source_volid: str | None = None,
        user_id: str = "",
        description: str = "",
        metadata: dict[str, str] | None = None,
        group_id: str | None = None,
        multiattach: bool = False,
        status: str = "creating",
        ready: bool = True,
    ) -> Volume:
        """Create a volume (empty, from an image, a snapshot or a volume): creating → available.

        With ``ready=False`` the caller (a restore, a manage) makes it available.
        """
        vtype = self.find_type(volume_type)
        replication.check_type(self.site, vtype)
        source_disk: Disk | None = None
        src_size = 0
        if snapshot_id is not None:
            snap = self.get_snapshot(snapshot_id)
            if snap.status != "available":
                raise bad_request(
                    "Invalid snapshot: Originating snapshot status must be one of 'available' values"
                )
            source_disk, src_size = snap.disk, snap.size
            if volume_type is None:
                vtype = (
                    self.get(snap.volume_id).volume_type
                    if snap.volume_id in self.volumes
                    else vtype
                )
        elif source_volid is not None:
            src = self.get(source_volid)
            if src.status not in ("available", "in-use"):
                raise bad_request(
                    f"Invalid volume: Source volume status must be available or in-use, but is {src.status}."
                )
            source_disk, src_size = src.disk, src.size
        image = None
        if image_id is not None:
            try:
                image = self.site.image.get(image_id)
            except ApiError as exc:
                raise bad_request(
                    "Invalid image identifier or unable to access requested image."
                ) from exc
            image_gb = -(-int(getattr(image, "size", 0) or 0) // GiB)
            src_size = max(src_size, image_gb, 1)
        if size_gb is None:
            if not src_size:
                raise bad_request("Invalid input received: Size must be specified.")
            size_gb = src_size
        if size_gb < src_size:
            raise bad_request(
                f"Invalid input received: Volume size '{size_gb}'GB cannot be smaller than "
                f"the source size '{src_size}'GB."
            )
        group = None
        if group_id is not None:
            group = self.get_group(group_id)
            if vtype.id not in group.volume_types:
                raise bad_request(
                    f"Invalid input received: Invalid volume_type provided: {vtype.id} "
                    f"(requested type is not compatible with the group {group_id})."
                )
        vid = self.site.new_id()
        path = self.dir / "vols" / f"{vid}.img"
        if source_disk is not None:
            disk = source_disk.copy_to(path)
            if disk.size < size_gb * GiB:
                disk.resize(size_gb * GiB)
        else:
            disk = Disk(path, size_gb * GiB, self.block_size)
        src_img: Disk | None = getattr(image, "disk", None) if image is not None else None
        if src_img is not None:
            for i, data in src_img.iter_blocks(src_img.written_blocks()):
                # An image whose block size differs is copied byte for byte.
                off = i * src_img.block_size
                for j in range(0, len(data), disk.block_size):
                    chunk = data[j : j + disk.block_size]
                    if chunk.strip(b"\0"):
                        disk.write_block((off + j) // disk.block_size, chunk)
        vol = Volume(
            id=vid,
            project_id=project_id,
            user_id=user_id,
            name=name or "",
            size=size_gb,
            disk=disk,
            volume_type=vtype,
            created_at=self.now,
            status=status,
            description=description or "",
            metadata=dict(metadata or {}),
            snapshot_id=snapshot_id,
            source_volid=source_volid,
            image_id=image_id,
            group_id=group.id if group else None,
            bootable=image is not None,
            multiattach=multiattach,
            lineage=uuid.uuid4().hex,
        )
        if source_disk is not None and snapshot_id is not None:
            vol.lineage = self.snapshots[snapshot_id].lineage
        self.volumes[vid] = vol
        replication.replicator(self.site.world).start(self.site, vol)
        if ready:
            self.later(self.site.latency.volume_create, lambda: self._created(vol))
        return vol

    def _created(self, vol: Volume) -> None:
        if self.volumes.get(vol.id) is vol and vol.status == "creating":
            self.set_status(vol, "available")

    def set_status(self, vol: Volume, status: str) -> None:
        vol.status = status
        vol.updated_at = self.now

    def delete_volume(self, vol: Volume, *, cascade: bool = False, force: bool = False) -> None:
        """Cinder's checks, then deleting → gone (a clock event)."""
        if vol.status not in DELETABLE and not (force and vol.status not in ("deleting",)):
            raise bad_request(
                "Invalid volume: Volume status must be available or error or error_restoring "
                "or error_extending or error_managing and must not be migrating, attached, "
                f"belong to a group, have snapshots or be disassociated from snapshots after "
                f"volume transfer. (status {vol.status})"
            )
        if vol.attach_status == "attached" or vol.attachments:
            raise bad_request(
                f"Invalid volume: Volume {vol.id} is still attached, detach volume first."
            )
        if vol.group_id is not None:
            raise bad_request(
                f"Invalid volume: Volume {vol.id} belongs to group {vol.group_id}; remove it first."
            )
        snaps = [s for s in self.snapshots.values() if s.volume_id == vol.id]
        if snaps and not cascade:
            raise bad_request("Invalid volume: Volume has snapshots; delete them first.")
        if any(s.status not in ("available", "error") for s in snaps):
            raise bad_request("Invalid volume: Snapshots of the volume are busy.")
        for s in snaps:
            self.delete_snapshot(s)
        self.set_status(vol, "deleting")

        def gone() -> None:
            if self.volumes.get(vol.id) is vol:
                del self.volumes[vol.id]
                vol.disk.delete()

        self.later(0.0, gone)

    def extend(self, vol: Volume, new_size: int, version: tuple[int, int]) -> None:
        allowed = ("available", "in-use") if version >= (3, 42) else ("available",)
        if vol.status not in allowed:
            raise bad_request(
                f"Invalid volume: Volume status must be {' or '.join(allowed)} to extend, "
                f"but current status is: {vol.status}."
            )
        if new_size <= vol.size:
            raise bad_request(
                f"Invalid input received: New size for extend must be greater than current "
                f"size. (current: {vol.size}, extended: {new_size})."
            )
        vol.disk.resize(new_size * GiB)
        vol.size = new_size
        vol.updated_at = self.now

    # -- attachments (the contract compute uses, and the two HTTP APIs) ------------
    def attach(self, volume_id: str, server_id: str, host: str, mountpoint: str) -> None:
        """available/reserved → attaching → in-use (after ``latency.attach``)."""
        vol = self.get(volume_id)
        att = self._attachment_for(vol, server_id)
        if att is None:
            att = self.reserve(vol, server_id)
        att.host, att.mountpoint = host, mountpoint
        self.complete_attach(vol, att)

    def detach(self, volume_id: str, server_id: str) -> None:
        """in-use → detaching → available (after ``latency.detach``)."""
        vol = self.get(volume_id)
        att = self._attachment_for(vol, server_id)
        if att is None:
            raise bad_request(f"Invalid volume: Volume {volume_id} is not attached to {server_id}.")
        self.remove_attachment(vol, att)

    def _attachment_for(self, vol: Volume, server_id: str) -> Attachment | None:
        for a in vol.attachments:
            if a.server_id == server_id:
                return a
        return None

    def find_attachment(self, attachment_id: str) -> tuple[Volume, Attachment]:
        for vol in self.volumes.values():
            for a in vol.attachments:
                if a.id == attachment_id:
                    return vol, a
        raise ApiError(404, f"VolumeAttachment {attachment_id} could not be found.")

    def reserve(self, vol: Volume, server_id: str, *, status: str = "reserved") -> Attachment:
        """Claim the volume for a server (attachment ``reserved``, volume ``reserved``)."""
        ok: tuple[str, ...] = ("available", "reserved")
        if vol.multiattach:
            ok = ("available", "reserved", "in-use", "attaching")
        if vol.status not in ok:
            raise bad_request(
                f"Invalid volume: Volume {vol.id} status must be available or downloading "
                f"to reserve, but the current status is {vol.status}."
            )
        att = Attachment(self.site.new_id(), vol.id, server_id, None, None, status)
        vol.attachments.append(att)
        if vol.status == "available":
            self.set_status(vol, "reserved")
        return att

    def complete_attach(self, vol: Volume, att: Attachment) -> None:
        att.status = "attaching"
        if vol.status in ("available", "reserved"):
            self.set_status(vol, "attaching")

        def done() -> None:
            if att in vol.attachments and att.status == "attaching":
                att.status = "attached"
                att.attached_at = self.now
                if vol.status in ("attaching", "reserved", "available"):
                    self.set_status(vol, "in-use")

        self.later(self.site.latency.attach, done)

    def remove_attachment(self, vol: Volume, att: Attachment) -> None:
        if vol.status in ("in-use", "attaching", "reserved"):
            self.set_status(vol, "detaching")

        def done() -> None:
            if att in vol.attachments:
                vol.attachments.remove(att)
                att.status = "detached"
            if vol.status in ("detaching", "in-use", "reserved", "attaching"):
                others = [a for a in vol.attachments if a.status == "attached"]
                self.set_status(vol, "in-use" if others else "available")

        self.later(self.site.latency.detach, done)

    # -- snapshots --------------------------------------------------------------------
    def create_snapshot(
        self,
        vol: Volume,
        *,
        project_id: str,
        user_id: str,
        name: str = "",
        description: str = "",
        force: bool = False,
        metadata: dict[str, str] | None = None,
        group_snapshot_id: str | None = None,
        version: tuple[int, int] = (3, 0),
    ) -> Snapshot:
        """A point-in-time copy of the volume's disk: creating → available after ``latency.snapshot``."""
        allowed = ["available"]
        if force or version >= (3, 66) or group_snapshot_id is not None:
            allowed.append("in-use")
        if vol.status not in allowed:
            raise bad_request(
                f"Invalid volume: Volume {vol.id} status must be available"
                + (
                    ", but current status is: "
                    if "in-use" in allowed
                    else " (or use force for in-use), but current status is: "
                )
                + f"{vol.status}."
            )
        sid = self.site.new_id()
        snap = Snapshot(
            id=sid,
            project_id=project_id,
            user_id=user_id,
            volume_id=vol.id,
            name=name or "",
            size=vol.size,
            disk=vol.disk.copy_to(self.dir / "snaps" / f"{sid}.img"),
            created_at=self.now,
            lineage=vol.lineage,
            description=description or "",
            metadata=dict(metadata or {}),
            group_snapshot_id=group_snapshot_id,
        )
        self.snapshots[sid] = snap
        if group_snapshot_id is None:
            self.later(self.site.latency.snapshot, lambda: self._snap_ready(snap))
        return snap

    def _snap_ready(self, snap: Snapshot) -> None:
        if self.snapshots.get(snap.id) is snap and snap.status == "creating":
            snap.status = "available"
            snap.updated_at = self.now

    def delete_snapshot(self, snap: Snapshot, *, in_group: bool = False) -> None:
        if snap.group_snapshot_id is not None and not in_group:
            raise bad_request(
                f"Invalid snapshot: Snapshot {snap.id} is part of group snapshot "
                f"{snap.group_snapshot_id}; delete the group snapshot instead."
            )
        if snap.status not in ("available", "error", "error_deleting"):
            raise bad_request(
                f"Invalid snapshot: Snapshot status must be available or error, but is {snap.status}."
            )
        if any(b.snapshot_id == snap.id and b.status == "creating" for b in self.backups.values()):
            raise bad_request("Invalid snapshot: Snapshot is being backed up.")
        snap.status = "deleting"

        def gone() -> None:
            if self.snapshots.get(snap.id) is snap:
                del self.snapshots[snap.id]
                snap.disk.delete()

        self.later(0.0, gone)

    # -- groups ----------------------------------------------------------------------
    def create_group(
        self,
        *,
        project_id: str,
        name: str,
        group_type: str | None,
        volume_types: list[str],
        description: str = "",
    ) -> Group:
        gt = self.find_group_type(group_type)
        if not volume_types:
            raise bad_request(
                "Invalid input received: volume_types must be provided to create group."
            )
        type_ids = [self.find_type(t).id for t in volume_types]
        grp = Group(
            self.site.new_id(),
            project_id,
            name or "",
            gt,
            type_ids,
            self.now,
            description=description or "",
        )
        self.groups[grp.id] = grp

        def ready() -> None:
            if grp.status == "creating":
                grp.status = "available"

        self.later(0.0, ready)
        return grp

    def group_volumes(self, grp: Group) -> list[Volume]:
        return sorted(
            (v for v in self.volumes.values() if v.group_id == grp.id), key=lambda v: v.created_at
        )

    def update_group(self, grp: Group, add: list[str], remove: list[str]) -> None:
        if grp.status != "available":
            raise bad_request(
                f"Invalid group: Group status must be available, but is {grp.status}."
            )
        adds = [self.get(v) for v in add]
        rems = [self.get(v) for v in remove]
        for vol in adds:
            if vol.group_id not in (None, grp.id):
                raise bad_request(
                    f"Invalid volume: Volume {vol.id} is already in group {vol.group_id}."
                )
            if vol.status not in ("available", "in-use"):
                raise bad_request(
                    f"Invalid volume: Volume {vol.id} status must be available or in-use, but is {vol.status}."
                )
            if vol.volume_type.id not in grp.volume_types:
                raise bad_request(
                    f"Invalid volume: Volume type {vol.volume_type.name} of volume {vol.id} "
                    f"is not supported by group {grp.id}."
                )
        for vol in rems:
            if vol.group_id != grp.id:
                raise bad_request(f"Invalid volume: Volume {vol.id} is not in group {grp.id}.")
        for vol in adds:
            vol.group_id = grp.id
        for vol in rems:
            vol.group_id = None

    def delete_group(self, grp: Group, *, delete_volumes: bool) -> None:
        vols = self.group_volumes(grp)
        if vols and not delete_volumes:
            raise bad_request(
                f"Invalid group: Group {grp.id} still contains volumes. The delete-volumes "
                "flag is required to delete it."
            )
        if any(gs.group_id == grp.id for gs in self.group_snapshots.values()):
            raise bad_request(f"Invalid group: Group {grp.id} has group snapshots.")
        for vol in vols:
            if vol.attachments:
                raise bad_request(f"Invalid volume: Volume {vol.id} in the group is attached.")
        for vol in vols:
            vol.group_id = None
            self.delete_volume(vol, cascade=True)
        grp.status = "deleting"

        def gone() -> None:
            self.groups.pop(grp.id, None)

        self.later(0.0, gone)

    def create_group_snapshot(
        self, grp: Group, *, project_id: str, user_id: str, name: str, description: str = ""
    ) -> GroupSnapshot:
        """One consistent instant across every volume of the group."""
        if grp.status != "available":
            raise bad_request(
                f"Invalid group: Group status must be available, but is {grp.status}."
            )
        vols = self.group_volumes(grp)
        for vol in vols:
            if vol.status not in ("available", "in-use"):
                raise bad_request(
                    f"Invalid volume: Volume {vol.id} status must be available or in-use, but is {vol.status}."
                )
        gs = GroupSnapshot(
            self.site.new_id(), project_id, grp.id, grp.group_type.id, name or "", self.now, []
        )
        gs.description = description or ""
        for vol in vols:
            snap = self.create_snapshot(
                vol,
                project_id=project_id,
                user_id=user_id,
                name=f"group-snapshot-{gs.id}",
                group_snapshot_id=gs.id,
            )
            gs.snapshot_ids.append(snap.id)
        self.group_snapshots[gs.id] = gs

        def ready() -> None:
            if gs.status != "creating":
                return
            gs.status = "available"
            for sid in gs.snapshot_ids:
                if sid in self.snapshots:
                    self._snap_ready(self.snapshots[sid])

        self.later(self.site.latency.snapshot, ready)
        return gs

    def delete_group_snapshot(self, gs: GroupSnapshot) -> None:
        if gs.status not in ("available", "error"):
            raise bad_request(
                f"Invalid group snapshot: Group snapshot status must be available or error, but is {gs.status}."
            )
        for sid in gs.snapshot_ids:
            if sid in self.snapshots:
                self.delete_snapshot(self.snapshots[sid], in_group=True)
        gs.status = "deleting"
        self.later(0.0, lambda: self.group_snapshots.pop(gs.id, None))

    # -- managing existing backend volumes ---------------------------------------------
    def register_backend_volume(self, name: str, disk: Disk, size_gb: int) -> BackendVolume:
        """Declare a volume that exists on this site's backend but is not managed.

        The storage-replication method puts replicas here; ``manage`` adopts them.
        """
        bv = BackendVolume(name, size_gb, disk)
        self.backend[name] = bv
        return bv

    def manage(
        self,
        *,
        host: str,
        ref: dict[str, Any],
        project_id: str,
        user_id: str,
        name: str = "",
        description: str = "",
        volume_type: str | None = None,
        bootable: bool = False,
        metadata: dict[str, str] | None = None,
    ) -> Volume:
        """Adopt a backend volume: managing → available after ``latency.volume_create``."""
        if host.split("#")[0] != self.backend_host.split("#")[0]:
            raise bad_request(f"Invalid input received: Service {host} not found.")
        key = ref.get("source-name") or ref.get("source-id")
        bv = self.backend.get(str(key)) if key is not None else None
        if bv is None:
            raise bad_request(
                f"Manage existing volume failed due to invalid backend reference {ref}: "
                "volume not found on the backend."
            )
        if bv.cinder_id is not None:
            raise bad_request(
                f"Invalid input received: Backend volume {bv.name} is already managed as {bv.cinder_id}."
            )
        vtype = self.find_type(volume_type)
        vid = self.site.new_id()
        vol = Volume(
            id=vid,
            project_id=project_id,
            user_id=user_id,
            name=name or "",
            size=bv.size,
            disk=bv.disk,
            volume_type=vtype,
            created_at=self.now,
            status="managing",
            description=description or "",
            metadata=dict(metadata or {}),
            bootable=bootable,
            lineage=uuid.uuid4().hex,
        )
        self.volumes[vid] = vol
        bv.cinder_id = vid

        def done() -> None:
            if vol.status == "managing":
                self.set_status(vol, "available")

        self.later(self.site.latency.volume_create, done)
        return vol
