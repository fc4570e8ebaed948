"""An image of the simulated image service and how Glance v2 renders it."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from ..disks import Disk
from . import store

DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
VISIBILITIES = ("public", "private", "shared", "community")

#: Attributes Glance computes; a request may never set them.
READ_ONLY = frozenset(
    {
        "id",
        "status",
        "checksum",
        "os_hash_algo",
        "os_hash_value",
        "size",
        "virtual_size",
        "created_at",
        "updated_at",
        "self",
        "file",
        "schema",
        "direct_url",
        "locations",
        "stores",
    }
)
#: Core attributes a request may set (everything else is an extra property).
CORE = frozenset(
    {
        "name",
        "visibility",
        "protected",
        "os_hidden",
        "disk_format",
        "container_format",
        "min_disk",
        "min_ram",
        "tags",
        "owner",
    }
)


def ts(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Image:
    """An image.  ``disk`` holds its bytes once uploaded (``None`` while queued)."""

    id: str
    owner: str
    created_at: float
    updated_at: float
    name: str | None = None
    status: str = "queued"
    visibility: str = "shared"
    protected: bool = False
    os_hidden: bool = False
    disk_format: str | None = None
    container_format: str | None = None
    min_disk: int = 0
    min_ram: int = 0
    tags: list[str] = field(default_factory=list)
    properties: dict[str, str] = field(default_factory=dict)
    disk: Disk | None = None
    virtual_size: int | None = None
    _hashes: tuple[str, str] | None = None

    @property
    def size(self) -> int | None:
        """Bytes of image data (``None`` until data is uploaded)."""
        return self.disk.size if self.disk is not None else None

    def hashes(self) -> tuple[str, str] | None:
        """``(md5, sha512)`` of the data, computed on first need for copied snapshots."""
        if self.disk is None or self.status != "active":
            return self._hashes
        if self._hashes is None:
            self._hashes = store.hash_file(self.disk.path, self.disk.size)
        return self._hashes

    def set_hashes(self, md5: str, sha512: str) -> None:
        self._hashes = (md5, sha512)

    @property
    def checksum(self) -> str | None:
        h = self.hashes()
        return h[0] if h else None

    def doc(self) -> dict[str, Any]:
        h = self.hashes()
        body: dict[str, Any] = dict(self.properties)
        body.update(
            {
                "id": self.id,
                "name": self.name,
                "status": self.status,
                "visibility": self.visibility,
                "protected": self.protected,
                "os_hidden": self.os_hidden,
                "owner": self.owner,
                "disk_format": self.disk_format,
                "container_format": self.container_format,
                "min_disk": self.min_disk,
                "min_ram": self.min_ram,
                "size": self.size,
                "virtual_size": self.virtual_size,
                "checksum": h[0] if h else None,
                "os_hash_algo": "sha512" if h else None,
                "os_hash_value": h[1] if h else None,
                "tags": list(self.tags),
                "created_at": ts(self.created_at),
                "updated_at": ts(self.updated_at),
                "self": f"/v2/images/{self.id}",
                "file": f"/v2/images/{self.id}/file",
                "schema": "/v2/schemas/image",
            }
        )
        return body
