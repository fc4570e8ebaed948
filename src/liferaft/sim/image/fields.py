"""Validation of image attributes against Glance's image schema.

Used by create (``POST /v2/images``) and update (JSON patch).  Core
attributes have types and enums; every other key is an extra property
whose value must be a string.  Errors carry Glance's status codes: 400 for
a schema violation, 403 for a read-only attribute or a forbidden value.
"""

from __future__ import annotations

import uuid
from typing import Any

from ..http import ApiError
from .models import CONTAINER_FORMATS, CORE, DISK_FORMATS, READ_ONLY, VISIBILITIES


def schema_error(message: str) -> ApiError:
    return ApiError(400, f"Provided object does not match schema 'image': {message}")


def read_only(key: str) -> ApiError:
    return ApiError(403, f"Attribute '{key}' is read-only.")


def check_key(key: str) -> None:
    if key in READ_ONLY:
        raise read_only(key)
    if not key or len(key) > 255:
        raise schema_error(f"'{key}' is not a valid property name")


def _opt_enum(key: str, value: Any, allowed: tuple[str, ...]) -> str | None:
    if value is None:
        return None
    if value not in allowed:
        raise schema_error(f"'{value}' is not one of {list(allowed)}")
    return str(value)


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise schema_error(f"{value!r} is not of type 'boolean' (attribute '{key}')")
    return value


def _int(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise schema_error(f"{value!r} is not a non-negative integer (attribute '{key}')")
    return value


def core_value(key: str, value: Any, *, is_admin: bool, project_id: str) -> Any:
    """A validated value for one core attribute."""
    if key == "name":
        if value is not None and (not isinstance(value, str) or len(value) > 255):
            raise schema_error(f"{value!r} is not a valid name")
        return value
    if key == "visibility":
        vis = _opt_enum(key, value, VISIBILITIES)
        if vis is None:
            raise schema_error("None is not one of " + str(list(VISIBILITIES)))
        if vis == "public" and not is_admin:
            raise ApiError(403, "You are not authorized to complete publicize_image action.")
        return vis
    if key in ("protected", "os_hidden"):
        return _bool(key, value)
    if key == "disk_format":
        return _opt_enum(key, value, DISK_FORMATS)
    if key == "container_format":
        return _opt_enum(key, value, CONTAINER_FORMATS)
    if key in ("min_disk", "min_ram"):
        return _int(key, value)
    if key == "tags":
        if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
            raise schema_error(f"{value!r} is not a list of strings (attribute 'tags')")
        return list(dict.fromkeys(value))
    if key == "owner":
        if value is not None and not isinstance(value, str):
            raise schema_error(f"{value!r} is not a valid owner")
        if value != project_id and not is_admin:
            raise ApiError(403, "You are not permitted to set the owner of an image.")
        return value
    raise AssertionError(f"not a core attribute: {key}")


def extra_value(key: str, value: Any) -> str:
    if not isinstance(value, str):
        raise schema_error(f"{value!r} is not of type 'string' (property '{key}')")
    return value


def split(
    body: dict[str, Any], *, is_admin: bool, project_id: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """Core attributes and extra properties of a create request, validated."""
    core: dict[str, Any] = {}
    extra: dict[str, str] = {}
    for key, value in body.items():
        if key == "id":
            try:
                core["image_id"] = str(uuid.UUID(str(value)))
            except ValueError:
                raise schema_error(f"'{value}' is not a 'uuid'") from None
            continue
        check_key(key)
        if key in CORE:
            core[key] = core_value(key, value, is_admin=is_admin, project_id=project_id)
        else:
            extra[key] = extra_value(key, value)
    return core, extra
