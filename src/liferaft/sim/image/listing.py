"""Glance's ``GET /v2/images`` semantics: filters, sorting and ``next`` pages.

Filters: ``name``, ``id``, ``status``, ``visibility``, ``owner``,
``disk_format``, ``container_format`` (each also as ``in:a,b`` or
``eq:x``), ``os_hidden`` and ``protected`` (booleans), ``tag`` (repeatable,
all must match), ``size_min``/``size_max``, and any other key as an extra
property.  Without ``visibility`` community images of other projects are
left out; without ``os_hidden=true`` hidden images are.  Default order is
newest first (``created_at`` desc, then ``id`` desc); pages hold
``limit`` images (25 by default, 1000 at most) and a full page carries a
relative ``next`` link.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from ..http import ApiError
from .models import Image

DEFAULT_LIMIT = 25
MAX_LIMIT = 1000
_CONTROL = frozenset({"limit", "marker", "sort_key", "sort_dir", "sort", "member_status"})
_STRING_FILTERS = ("name", "id", "status", "visibility", "owner", "disk_format", "container_format")
_SORTABLE = frozenset(
    {
        "name",
        "status",
        "container_format",
        "disk_format",
        "size",
        "id",
        "created_at",
        "updated_at",
        "visibility",
        "owner",
        "min_disk",
        "min_ram",
        "virtual_size",
    }
)


def _values(raw: str) -> set[str]:
    if raw.startswith("in:"):
        return {v.strip('"') for v in raw[3:].split(",")}
    if raw.startswith("eq:"):
        return {raw[3:]}
    return {raw}


def _boolean(key: str, raw: str) -> bool:
    if raw.lower() in ("true", "1", "yes", "on"):
        return True
    if raw.lower() in ("false", "0", "no", "off"):
        return False
    raise ApiError(400, f"Invalid value '{raw}' for '{key}': a boolean is expected.")


def _size(key: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise ApiError(400, f"Invalid value '{raw}' for '{key}': an integer is expected.") from None


def select(
    images: list[Image], params: list[tuple[str, str]], project_id: str, is_admin: bool
) -> list[Image]:
    """The images a filtered listing returns (visibility already checked by the caller)."""
    keys = {k for k, _ in params}
    out = images
    if "visibility" not in keys:
        out = [i for i in out if i.visibility != "community" or i.owner == project_id]
    if "os_hidden" not in keys:
        out = [i for i in out if not i.os_hidden]
    tags = [v for k, v in params if k == "tag"]
    if tags:
        out = [i for i in out if set(tags) <= set(i.tags)]
    for key, raw in params:
        if key in _CONTROL or key == "tag":
            continue
        if key in _STRING_FILTERS:
            wanted = _values(raw)
            if key == "visibility" and raw == "all":
                continue
            out = [i for i in out if str(getattr(i, key)) in wanted]
        elif key in ("os_hidden", "protected"):
            flag = _boolean(key, raw)
            out = [i for i in out if getattr(i, key) is flag]
        elif key == "size_min":
            low = _size(key, raw)
            out = [i for i in out if (i.size or 0) >= low]
        elif key == "size_max":
            high = _size(key, raw)
            out = [i for i in out if i.size is not None and i.size <= high]
        else:
            wanted = _values(raw)
            out = [i for i in out if i.properties.get(key) in wanted]
    return out


def _sort_value(key: str) -> Callable[[Image], tuple[bool, Any]]:
    def get(image: Image) -> tuple[bool, Any]:
        value = getattr(image, key)
        return (value is None, value if value is not None else "")

    return get


def sort(images: list[Image], params: list[tuple[str, str]]) -> list[Image]:
    qp = dict(params)
    order: list[tuple[str, str]] = []
    if "sort" in qp:
        for part in qp["sort"].split(","):
            key, _, direction = part.strip().partition(":")
            order.append((key, direction or "desc"))
    else:
        keys = [v for k, v in params if k == "sort_key"]
        dirs = [v for k, v in params if k == "sort_dir"]
        for n, key in enumerate(keys):
            order.append((key, dirs[n] if n < len(dirs) else (dirs[0] if dirs else "desc")))
    if not order:
        order = [("created_at", "desc")]
    if not any(k == "id" for k, _ in order):
        order.append(("id", order[-1][1]))
    out = list(images)
    for key, direction in reversed(order):
        if key not in _SORTABLE:
            raise ApiError(400, f"Invalid sort key: {key}. It is not in {sorted(_SORTABLE)}")
        if direction not in ("asc", "desc"):
            raise ApiError(400, f"Invalid sort direction: {direction}")
        out.sort(key=_sort_value(key), reverse=direction == "desc")
    return out


def page(images: list[Image], params: list[tuple[str, str]]) -> tuple[list[Image], str | None]:
    """One page and the relative ``next`` link (``None`` on the last page)."""
    qp = dict(params)
    start = 0
    marker = qp.get("marker")
    if marker:
        for n, image in enumerate(images):
            if image.id == marker:
                start = n + 1
                break
        else:
            raise ApiError(400, f"Invalid marker. Image {marker} could not be found.")
    try:
        limit = int(qp.get("limit", DEFAULT_LIMIT))
    except ValueError:
        raise ApiError(400, "limit param must be an integer") from None
    if limit < 0:
        raise ApiError(400, "limit param must be positive")
    limit = min(limit, MAX_LIMIT)
    chunk = images[start : start + limit]
    if chunk and len(chunk) == limit:
        rest = [(k, v) for k, v in params if k != "marker"] + [("marker", chunk[-1].id)]
        return chunk, f"/v2/images?{urlencode(rest)}"
    return chunk, None
