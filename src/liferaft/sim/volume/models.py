"""The volume service's resources: plain objects, rendered by ``views.py``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..disks import Disk

GiB = 1024**3

#: Volume statuses from which Cinder lets a volume be deleted (without force).
DELETABLE = ("available", "error", "error_restoring", "error_extending", "error_managing")


@dataclass
class VolumeType:
    id: str
    name: str
    description: str = ""
    is_public: bool = True
    extra_specs: dict[str, str] = field(default_factory=dict)


@dataclass
class Attachment:
    id: str
    volume_id: str
    server_id: str
    host: str | None
    mountpoint: str | None
    status: str  # reserved, attaching, attached, detached
    attached_at: float | None = None
    mode: str = "rw"
    connector: dict[str, Any] | None = None


@dataclass
class Volume:
    id: str
    project_id: str
    user_id: str
    name: str
    size: int  # GiB
    disk: Disk
    volume_type: VolumeType
    created_at: float
    status: str = "creating"
    description: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    attachments: list[Attachment] = field(default_factory=list)
    snapshot_id: str | None = None
    source_volid: str | None = None
    image_id: str | None = None
    group_id: str | None = None
    bootable: bool = False
    multiattach: bool = False
    previous_status: str | None = None
    migration_status: str | None = None
    updated_at: float | None = None
    #: Changes whenever the disk's write history is replaced (restore), so an
    #: incremental backup never trusts write sequences from another history.
    lineage: str = ""

    @property
    def attach_status(self) -> str:
        if any(a.status == "attached" for a in self.attachments):
            return "attached"
        return "detached"


@dataclass
class Snapshot:
    id: str
    project_id: str
    user_id: str
    volume_id: str
    name: str
    size: int
    disk: Disk
    created_at: float
    lineage: str
    status: str = "creating"
    description: str = ""
    metadata: dict[str, str] = field(default_factory=dict)
    group_snapshot_id: str | None = None
    updated_at: float | None = None


@dataclass
class GroupType:
    id: str
    name: str
    description: str = ""
    is_public: bool = True
    group_specs: dict[str, str] = field(default_factory=dict)


@dataclass
class Group:
    id: str
    project_id: str
    name: str
    group_type: GroupType
    volume_types: list[str]  # type ids
    created_at: float
    status: str = "creating"
    description: str = ""
    group_snapshot_id: str | None = None
    source_group_id: str | None = None


@dataclass
class GroupSnapshot:
    id: str
    project_id: str
    group_id: str
    group_type_id: str
    name: str
    created_at: float
    snapshot_ids: list[str]
    status: str = "creating"
    description: str = ""


@dataclass
class Backup:
    id: str
    project_id: str
    user_id: str
    volume_id: str
    name: str | None
    description: str | None
    container: str
    size: int  # GiB, the volume's size
    created_at: float
    data_timestamp: float
    store_site: str  # the site whose object store holds the objects
    store_project_id: str  # the project whose account (AUTH_<id>) holds them
    prefix: str  # object names start with this
    status: str = "creating"
    snapshot_id: str | None = None
    parent_id: str | None = None
    is_incremental: bool = False
    object_count: int = 0
    data_bytes: int = 0  # bytes of block data this backup shipped
    chain_bytes: int = 0  # bytes of the whole chain a restore reads
    lineage: str = ""
    disk_seq: int = 0  # the source disk's write sequence the data reflects
    fail_reason: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    updated_at: float | None = None
    imported: bool = False
    #: The chain, oldest (full) first, as {"id", "prefix"}; for export records.
    chain: list[dict[str, str]] = field(default_factory=list)


@dataclass
class BackendVolume:
    """A volume on the storage backend that Cinder does not manage (yet)."""

    name: str
    size: int  # GiB
    disk: Disk
    cinder_id: str | None = None
    extra_info: dict[str, Any] = field(default_factory=dict)
