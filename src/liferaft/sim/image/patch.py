"""Glance's JSON-patch image update (``application/openstack-images-v2.1-json-patch``).

Operations are applied to a copy of the image's attributes and written back
only if every one succeeds, so a failing request changes nothing.  Glance's
rules: ``add`` sets (and overwrites) any attribute, ``replace`` of an
absent extra property is 409, ``remove`` of a core attribute is 403 and of
an absent property 409, read-only attributes are 403.
"""

from __future__ import annotations

from typing import Any

from ..http import ApiError
from . import fields
from .models import CORE, Image

MEDIA_TYPES = ("application/openstack-images-v2.1-json-patch",)


def _path_key(op: dict[str, Any]) -> str:
    path = op.get("path")
    if not isinstance(path, str) or not path.startswith("/") or len(path) < 2:
        raise ApiError(400, f"Invalid JSON pointer for this resource: '{path}'")
    key = path[1:]
    if "/" in key:
        raise ApiError(400, f"Nested paths are not allowed: '{path}'")
    return key.replace("~1", "/").replace("~0", "~")


def apply(image: Image, ops: Any, *, is_admin: bool, project_id: str) -> None:
    if not isinstance(ops, list):
        raise ApiError(400, "Request body must be a JSON array of operation objects.")
    core: dict[str, Any] = {k: getattr(image, k) for k in CORE}
    core["tags"] = list(image.tags)
    extra = dict(image.properties)
    for op in ops:
        if not isinstance(op, dict):
            raise ApiError(400, "Operations must be JSON objects.")
        kind = op.get("op")
        if kind not in ("add", "replace", "remove"):
            raise ApiError(
                400, f"Invalid operation: `{kind}`. It must be one of: add, replace, remove."
            )
        key = _path_key(op)
        fields.check_key(key)
        if kind == "remove":
            if key in CORE:
                raise ApiError(403, f"Property {key} may not be removed.")
            if key not in extra:
                raise ApiError(409, f"Property {key} does not exist.")
            del extra[key]
            continue
        if "value" not in op:
            raise ApiError(
                400,
                f"Operation objects must contain exactly one member named 'value' for '{kind}'.",
            )
        value = op["value"]
        if key in CORE:
            frozen = image.status != "queued" and value != core[key]
            if key in ("disk_format", "container_format") and frozen:
                raise ApiError(403, f"Attribute {key} can be only replaced for a queued image.")
            if key == "visibility" and value == core[key]:
                continue  # re-stating public is not publicizing
            core[key] = fields.core_value(key, value, is_admin=is_admin, project_id=project_id)
        else:
            if kind == "replace" and key not in extra:
                raise ApiError(409, f"Property {key} does not exist.")
            extra[key] = fields.extra_value(key, value)
    for key, value in core.items():
        setattr(image, key, value)
    image.properties = extra
