"""State of the simulated image service of one site (Glance v2's model).

Images hold real bytes in ``site.state_dir / "images" / <id>``.  Other
services use :meth:`ImageState.get` (``Image.disk``, ``Image.size``) and
:meth:`ImageState.create_from_disk` (see ``docs/sim-internals.md``).  The
HTTP facade (``api.py``) checks who may see or change what.
"""

from __future__ import annotations

import math
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..http import ApiError
from . import store
from .models import Image

if TYPE_CHECKING:
    from ..disks import Disk
    from ..topology import Topology
    from ..world import Site

GIB = 1 << 30


def image_not_found(image_id: str) -> ApiError:
    return ApiError(404, f"No image found with ID {image_id}")


class ImageState:
    """Every image of one site."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.images: dict[str, Image] = {}
        self.dir = site.state_dir / "images"
        self.dir.mkdir(parents=True, exist_ok=True)

    @property
    def block_size(self) -> int:
        return self.site.world.topology.block_size

    def _now(self) -> float:
        return self.site.clock.now()

    def _path(self, image_id: str) -> Path:
        return self.dir / image_id

    # -- seeding -----------------------------------------------------------------
    def seed(self, topology: Topology, *args: Any) -> None:
        """The topology's images: public, active, ``size_mb`` of deterministic bytes.

        The bytes derive from the image name, so an image has the same data
        and checksum at every site.
        """
        owner = next((p.id for p in self.site.identity.projects.values() if p.name == "admin"), "")
        for spec in topology.images:
            image = self.create(
                owner=owner,
                image_id=spec.id,
                name=spec.name,
                visibility="public",
                disk_format="raw",
                container_format="bare",
            )
            path = self._path(image.id)
            h = store.Hasher()
            with open(path, "wb") as f:
                for chunk in store.seed_bytes(spec.name, spec.size_mb << 20):
                    h.update(chunk)
                    f.write(chunk)
            self._activate(image, store.adopt(path, h.size, self.block_size), h)

    # -- the Python API other services use --------------------------------------------
    def get(self, image_id: str) -> Image:
        """The image, or ``ApiError(404)``."""
        image = self.images.get(image_id)
        if image is None:
            raise image_not_found(image_id)
        return image

    def create_from_disk(
        self, *, name: str, disk: Disk, project_id: str, properties: dict[str, Any]
    ) -> Image:
        """A snapshot image holding ``disk``'s bytes as of now (Nova's ``createImage``).

        The bytes are copied at once (point in time); the image is ``saving``
        for ``latency.image_create`` simulated seconds, then ``active``
        (at once with the zero latency profile).  ``properties`` become extra
        properties, with ``image_type: snapshot`` added.
        """
        props = {k: str(v) for k, v in properties.items()}
        props.setdefault("image_type", "snapshot")
        image = self.create(
            owner=project_id,
            name=name,
            visibility="private",
            disk_format="raw",
            container_format="bare",
            properties=props,
        )
        image.min_disk = math.ceil(disk.size / GIB)
        image.status = "saving"
        copy = store.copy_disk(disk, self._path(image.id), self.block_size)
        virtual = disk.size

        def done() -> None:
            if self.images.get(image.id) is image and image.status == "saving":
                self._activate(image, copy, None, virtual_size=virtual)

        delay = self.site.latency.image_create
        if delay > 0:
            self.site.clock.call_later(delay, done)
        else:
            done()
        return image

    # -- operations ----------------------------------------------------------------
    def create(
        self,
        *,
        owner: str,
        image_id: str | None = None,
        name: str | None = None,
        visibility: str = "shared",
        protected: bool = False,
        os_hidden: bool = False,
        disk_format: str | None = None,
        container_format: str | None = None,
        min_disk: int = 0,
        min_ram: int = 0,
        tags: list[str] | None = None,
        properties: dict[str, str] | None = None,
    ) -> Image:
        """A new ``queued`` image record without data (Glance's ``POST /v2/images``)."""
        if image_id is not None and image_id in self.images:
            raise ApiError(409, f"Image with identifier {image_id} already exists!")
        now = self._now()
        image = Image(
            id=image_id or self.site.new_id(),
            owner=owner,
            created_at=now,
            updated_at=now,
            name=name,
            visibility=visibility,
            protected=protected,
            os_hidden=os_hidden,
            disk_format=disk_format,
            container_format=container_format,
            min_disk=min_disk,
            min_ram=min_ram,
            tags=list(dict.fromkeys(tags or [])),
            properties=dict(properties or {}),
        )
        self.images[image.id] = image
        return image

    def _activate(
        self,
        image: Image,
        disk: Disk,
        hasher: store.Hasher | None,
        *,
        virtual_size: int | None = None,
    ) -> None:
        image.disk = disk
        image.virtual_size = virtual_size if virtual_size is not None else disk.size
        if hasher is not None:
            image.set_hashes(*hasher.result())
        image.status = "active"
        image.updated_at = self._now()

    async def upload(self, image_id: str, chunks: AsyncIterator[bytes]) -> Image:
        """Store uploaded bytes: ``queued`` → ``saving`` → ``active``.

        The bytes go to a temporary file renamed into place when complete; an
        upload that breaks off leaves the image ``queued`` again, as Glance does.
        """
        image = self.get(image_id)
        if image.status != "queued":
            raise ApiError(
                409, f"Image status transition from {image.status} to saving is not allowed"
            )
        if not image.disk_format or not image.container_format:
            raise ApiError(
                400, "Properties disk_format, container_format must be set prior to saving data."
            )
        image.status = "saving"
        image.updated_at = self._now()
        path = self._path(image.id)
        part = path.with_name(path.name + ".part")
        h = store.Hasher()
        try:
            with open(part, "wb") as f:
                async for chunk in chunks:
                    if chunk:
                        h.update(chunk)
                        f.write(chunk)
        except BaseException:
            part.unlink(missing_ok=True)
            if self.images.get(image.id) is image:
                image.status = "queued"
            raise
        if self.images.get(image.id) is not image:  # deleted while uploading
            part.unlink(missing_ok=True)
            raise image_not_found(image_id)
        os.replace(part, path)
        self._activate(image, store.adopt(path, h.size, self.block_size), h)
        return image

    def delete(self, image_id: str) -> None:
        image = self.get(image_id)
        if image.protected:
            raise ApiError(403, f"Image {image.id} is protected and cannot be deleted.")
        del self.images[image.id]
        image.status = "deleted"
        if image.disk is not None:
            image.disk.delete()
        self._path(image.id).with_name(image.id + ".part").unlink(missing_ok=True)
