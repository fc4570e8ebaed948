"""Pieces every volume API module shares: the handler wrapper, routes, listing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ..http import ApiError, Version, bad_request, fmt_version, microversion, paginate
from ..identity import Ctx
from ..service import endpoint

if TYPE_CHECKING:
    from ..world import Site

MIN_VERSION: Version = (3, 0)
MAX_VERSION: Version = (3, 71)

VolumeHandler = Callable[[Request, Ctx, Version], Awaitable[Response]]


def handler(
    site: Site, *, since: Version = MIN_VERSION, admin: bool = False
) -> Callable[[VolumeHandler], Callable[[Request], Awaitable[Response]]]:
    """Auth, faults and Cinder error bodies (``endpoint``), plus the microversion.

    A route newer than the requested microversion answers 404, as Cinder's
    ``VersionNotFoundForAPIMethod``; every answer echoes the version.
    """

    def deco(fn: VolumeHandler) -> Callable[[Request], Awaitable[Response]]:
        @endpoint(site, "cinder", admin=admin)
        async def wrapped(request: Request, ctx: Ctx) -> Response:
            v = microversion(request, "volume", MIN_VERSION, MAX_VERSION)
            if v < since:
                raise ApiError(404, "The resource could not be found.")
            resp = await fn(request, ctx, v)
            resp.headers["OpenStack-API-Version"] = f"volume {fmt_version(v)}"
            resp.headers["Vary"] = "OpenStack-API-Version"
            return resp

        wrapped.__name__ = fn.__name__
        return wrapped

    return deco


def both(path: str, fn: Any, methods: list[str]) -> list[Route]:
    """The route with and without a ``{project_id}`` segment after ``/volume/v3``."""
    return [
        Route(f"/volume/v3{path}", fn, methods=methods),
        Route(f"/volume/v3/{{project_id}}{path}", fn, methods=methods),
    ]


def visible(items: Sequence[Any], request: Request, ctx: Ctx) -> list[Any]:
    """Cinder's scoping: your project's items; an admin's ``all_tenants`` sees all."""
    qp = request.query_params
    all_tenants = qp.get("all_tenants", qp.get("all_projects", "0")).lower() in ("1", "true", "yes")
    if ctx.is_admin and all_tenants:
        project = qp.get("project_id")
        return [x for x in items if project is None or x.project_id == project]
    return [x for x in items if x.project_id == ctx.project_id]


def owned(item: Any, ctx: Ctx, err: ApiError) -> Any:
    if item.project_id != ctx.project_id and not ctx.is_admin:
        raise err
    return item


def sort_items(items: list[Any], request: Request, allowed: set[str]) -> list[Any]:
    """``sort=key:dir,...`` or ``sort_key``/``sort_dir``; default newest first, as Cinder."""
    qp = request.query_params
    keys: list[tuple[str, str]] = []
    if qp.get("sort"):
        for part in qp["sort"].split(","):
            k, _, d = part.strip().partition(":")
            keys.append((k, d or "desc"))
    elif qp.get("sort_key"):
        keys.append((qp["sort_key"], qp.get("sort_dir", "desc")))
    keys = keys or [("created_at", "desc")]
    if all(k != "id" for k, _ in keys):
        keys.append(("id", keys[-1][1]))
    for k, d in keys:
        if k not in allowed:
            raise bad_request(f"Invalid input received: Invalid sort key {k}.")
        if d not in ("asc", "desc"):
            raise bad_request(f"Invalid input received: Invalid sort direction {d}.")
    out = list(items)
    for k, d in reversed(keys):

        def key(x: Any, k: str = k) -> tuple[int, Any]:
            return _sort_value(getattr(x, k, None))

        out.sort(key=key, reverse=d == "desc")
    return out


def _sort_value(value: Any) -> tuple[int, Any]:
    if value is None:
        return (0, "")
    if isinstance(value, (int, float)):
        return (1, value)
    return (2, str(value))


def match_filters(
    items: list[Any], request: Request, fields: dict[str, Callable[[Any], Any]]
) -> list[Any]:
    """Exact filters, plus ``name~`` style inexact ones (3.34)."""
    out = items
    for key, value in request.query_params.items():
        inexact = key.endswith("~")
        name = key[:-1] if inexact else key
        getter = fields.get(name)
        if getter is None:
            continue
        if inexact:
            out = [x for x in out if value.lower() in str(getter(x) or "").lower()]
        else:
            out = [x for x in out if str(getter(x)) == value]
    return out


def page(
    items: list[Any], request: Request, links_key: str
) -> tuple[list[Any], dict[str, list[dict[str, str]]]]:
    got, nxt = paginate(items, request, links_key=links_key)
    return got, ({links_key: nxt} if nxt else {})


def int_field(value: Any, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool):
        raise bad_request(f"Invalid input received: {name} must be an integer.")
    try:
        n = int(str(value).strip())
    except (TypeError, ValueError) as exc:
        raise bad_request(
            f"Invalid input for field/attribute {name}. Value: {value}. "
            f"{value!r} is not of type 'integer'"
        ) from exc
    if n < minimum:
        raise bad_request(
            f"Invalid input for field/attribute {name}. Value: {value}. "
            f"{n} is less than the minimum of {minimum}"
        )
    return n


def str_field(body: dict[str, Any], name: str, *, max_len: int = 255) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_len:
        raise bad_request(
            f"Invalid input for field/attribute {name}. Value: {value}. must be a string "
            f"of at most {max_len} characters"
        )
    return value


def bool_field(body: dict[str, Any], name: str, default: bool = False) -> bool:
    value = body.get(name, default)
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.lower() in ("true", "1", "yes")
    raise bad_request(f"Invalid input for field/attribute {name}. Value: {value}. is not a boolean")


def dict_field(body: dict[str, Any], name: str) -> dict[str, str]:
    value = body.get(name) or {}
    if not isinstance(value, dict):
        raise bad_request(
            f"Invalid input for field/attribute {name}. Value: {value}. must be an object"
        )
    return {str(k): str(v) for k, v in value.items()}
