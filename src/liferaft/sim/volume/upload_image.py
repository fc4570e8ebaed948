"""Cinder's ``os-volume_upload_image`` action: a volume's bytes as a new Glance image.

The image holds the volume's bytes as of the request (a point-in-time
copy, as Cinder makes through a temporary snapshot for an attached
volume); it is ``saving`` for ``latency.image_create`` simulated seconds,
then ``active``.  An in-use volume needs ``force`` (Cinder refuses it
otherwise).  The response is Cinder's: the volume's id and status and the
new ``image_id``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..http import ApiError, bad_request
from ..identity import Ctx
from .common import bool_field

if TYPE_CHECKING:
    from ..world import Site
    from .models import Volume

DISK_FORMATS = ("raw",)


def upload_to_image(site: Site, vol: Volume, arg: dict[str, Any], ctx: Ctx) -> dict[str, Any]:
    name = arg.get("image_name")
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise bad_request(f"Invalid input for field/attribute image_name. Value: {name}.")
    force = bool_field(arg, "force")
    if vol.status == "in-use" and not force:
        raise bad_request(
            "Invalid volume: Volume status must be available or in-use (with force) to upload "
            f"to image, but the current status is {vol.status}."
        )
    if vol.status not in ("available", "in-use"):
        raise bad_request(
            f"Invalid volume: Volume {vol.id} status must be available or in-use, "
            f"but current status is: {vol.status}."
        )
    disk_format = str(arg.get("disk_format") or "raw")
    if disk_format not in DISK_FORMATS:
        raise bad_request(f"Invalid disk-format '{disk_format}' (the simulator stores raw only).")
    create_from_disk = getattr(site.image, "create_from_disk", None)
    if create_from_disk is None:
        raise ApiError(503, "The image service is not available.")
    image = create_from_disk(
        name=name,
        disk=vol.disk,
        project_id=ctx.project_id,
        properties={"volume_id": vol.id, "image_type": "volume"},
    )
    return {
        "id": vol.id,
        "updated_at": None,
        "status": vol.status,
        "display_description": vol.description,
        "size": vol.size,
        "volume_type": {"name": vol.volume_type.name} if vol.volume_type else None,
        "image_id": image.id,
        "container_format": image.container_format,
        "disk_format": image.disk_format,
        "image_name": name,
    }
