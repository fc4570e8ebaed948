"""Neutron's resource tags (extension ``standard-attr-tag``).

``GET/PUT/DELETE /v2.0/{collection}/{id}/tags`` and
``GET/PUT/DELETE /v2.0/{collection}/{id}/tags/{tag}``, with Neutron's status
codes: replacing all tags answers 200 with the list, adding one 201, removing
204, and checking one 204 or 404.  Listings already filter on ``tags``,
``tags-any``, ``not-tags`` and ``not-tags-any`` (see :mod:`.listing`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..http import ApiError, json_response
from ..identity import Ctx
from ..service import endpoint
from . import errors
from .facade import PREFIX, body, no_content, owns

if TYPE_CHECKING:
    from ..world import Site
    from .models import _Base

#: URL collection -> (state attribute, resource kind for errors).
COLLECTIONS = {
    "networks": ("networks", "network"),
    "subnets": ("subnets", "subnet"),
    "ports": ("ports", "port"),
    "routers": ("routers", "router"),
    "floatingips": ("floating_ips", "floatingip"),
    "security-groups": ("security_groups", "security_group"),
}
MAX_TAG_LENGTH = 255


def check_tag(tag: Any) -> str:
    if not isinstance(tag, str) or not tag or len(tag) > MAX_TAG_LENGTH or "," in tag or "/" in tag:
        raise errors.bad_request(
            f"Invalid input for operation: '{tag}' is not a valid tag "
            f"(a non-empty string of at most {MAX_TAG_LENGTH} characters without ',' or '/').",
            "InvalidInput",
        )
    return tag


def routes(site: Site) -> list[BaseRoute]:
    state = site.network

    def resource(request: Request, ctx: Ctx) -> _Base:
        collection = request.path_params["collection"]
        ident = request.path_params["id"]
        if collection not in COLLECTIONS:
            raise ApiError(404, "The resource could not be found.", neutron_type="HTTPNotFound")
        attr, kind = COLLECTIONS[collection]
        obj: _Base | None = getattr(state, attr).get(ident)
        if obj is None or not owns(ctx, obj.project_id):
            raise errors.not_found(kind, ident)
        return obj

    @endpoint(site, "neutron")
    async def all_tags(request: Request, ctx: Ctx) -> Response:
        obj = resource(request, ctx)
        if request.method == "GET":
            return json_response({"tags": list(obj.tags)})
        if request.method == "DELETE":
            obj.tags = []
            obj.touch(site.clock.now())
            return no_content()
        raw = await body(request)
        tags = raw.get("tags") if isinstance(raw, dict) else None
        if not isinstance(tags, list):
            raise errors.bad_request("Invalid input: a 'tags' list is required.", "InvalidInput")
        obj.tags = sorted({check_tag(t) for t in tags})
        obj.touch(site.clock.now())
        return json_response({"tags": list(obj.tags)})

    @endpoint(site, "neutron")
    async def one_tag(request: Request, ctx: Ctx) -> Response:
        obj = resource(request, ctx)
        tag = request.path_params["tag"]
        if request.method == "GET":
            if tag not in obj.tags:
                raise ApiError(404, f"Tag {tag} could not be found.", neutron_type="TagNotFound")
            return no_content()
        if request.method == "DELETE":
            if tag not in obj.tags:
                raise ApiError(404, f"Tag {tag} could not be found.", neutron_type="TagNotFound")
            obj.tags = [t for t in obj.tags if t != tag]
            obj.touch(site.clock.now())
            return no_content()
        check_tag(tag)
        if tag not in obj.tags:
            obj.tags = sorted([*obj.tags, tag])
            obj.touch(site.clock.now())
        return Response(status_code=201)

    return [
        Route(f"{PREFIX}/{{collection}}/{{id}}/tags", all_tags, methods=["GET", "PUT", "DELETE"]),
        Route(
            f"{PREFIX}/{{collection}}/{{id}}/tags/{{tag}}",
            one_tag,
            methods=["GET", "PUT", "DELETE"],
        ),
    ]
