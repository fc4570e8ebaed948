"""HTTP facade of the simulated image service (Glance's Image v2 API).

The catalog gives ``<site>/image`` (unversioned); the version document's
``self`` link, ``<site>/image/v2/``, is the base of every call.  Errors are
Glance's small HTML bodies (the CLI strips the tags and shows the text).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from ..http import ApiError, json_response
from ..identity import Ctx
from ..service import endpoint, public
from . import fields, listing, patch, store
from .models import Image
from .state import image_not_found

if TYPE_CHECKING:
    from ..world import Site

V2 = "/image/v2"
#: Glance's API versions; the clients pick the highest CURRENT one.
VERSIONS = ["2.9", "2.8", "2.7", "2.6", "2.5", "2.4", "2.3", "2.2", "2.1", "2.0"]


def _visible(ctx: Ctx, image: Image) -> bool:
    return (
        ctx.is_admin or image.visibility in ("public", "community") or image.owner == ctx.project_id
    )


def _schema(name: str) -> dict[str, Any]:
    """A short image schema: enough for clients that fetch it to validate and display."""
    props: dict[str, Any] = {
        "id": {"type": "string", "pattern": "^([0-9a-fA-F]){8}-([0-9a-fA-F]){4}-.*$"},
        "name": {"type": ["null", "string"], "maxLength": 255},
        "status": {"type": "string", "readOnly": True},
        "visibility": {"type": "string", "enum": ["community", "public", "private", "shared"]},
        "protected": {"type": "boolean"},
        "os_hidden": {"type": "boolean"},
        "checksum": {"type": ["null", "string"], "readOnly": True},
        "os_hash_algo": {"type": ["null", "string"], "readOnly": True},
        "os_hash_value": {"type": ["null", "string"], "readOnly": True},
        "owner": {"type": ["null", "string"]},
        "size": {"type": ["null", "integer"], "readOnly": True},
        "virtual_size": {"type": ["null", "integer"], "readOnly": True},
        "container_format": {"type": ["null", "string"]},
        "disk_format": {"type": ["null", "string"]},
        "created_at": {"type": "string", "readOnly": True},
        "updated_at": {"type": "string", "readOnly": True},
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 255}},
        "min_ram": {"type": "integer"},
        "min_disk": {"type": "integer"},
        "self": {"type": "string", "readOnly": True},
        "file": {"type": "string", "readOnly": True},
        "schema": {"type": "string", "readOnly": True},
    }
    image = {
        "name": "image",
        "properties": props,
        "additionalProperties": {"type": "string"},
        "links": [
            {"rel": "self", "href": "{self}"},
            {"rel": "enclosure", "href": "{file}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }
    if name == "image":
        return image
    return {
        "name": "images",
        "properties": {
            "images": {"type": "array", "items": image},
            "schema": {"type": "string"},
            "first": {"type": "string"},
            "next": {"type": "string"},
        },
        "links": [
            {"rel": "first", "href": "{first}"},
            {"rel": "next", "href": "{next}"},
            {"rel": "describedby", "href": "{schema}"},
        ],
    }


def routes(site: Site) -> list[BaseRoute]:
    state = site.image

    def versions_doc() -> dict[str, Any]:
        return {
            "versions": [
                {
                    "id": f"v{v}",
                    "status": "CURRENT" if n == 0 else "SUPPORTED",
                    "links": [{"rel": "self", "href": f"{site.url}{V2}/"}],
                }
                for n, v in enumerate(VERSIONS)
            ]
        }

    @public(site, "glance")
    async def versions(request: Request) -> Response:
        # Glance answers the unversioned root with 300 Multiple Choices.
        return json_response(versions_doc(), status=300)

    @public(site, "glance")
    async def versions_ok(request: Request) -> Response:
        return json_response(versions_doc())

    def visible(ctx: Ctx, image_id: str) -> Image:
        image = state.images.get(image_id)
        if image is None or not _visible(ctx, image):
            raise image_not_found(image_id)
        return image

    def mutable(ctx: Ctx, image_id: str) -> Image:
        image = visible(ctx, image_id)
        if not ctx.is_admin and image.owner != ctx.project_id:
            raise ApiError(403, "You are not permitted to modify this image.")
        return image

    async def json_body(request: Request) -> Any:
        raw = await request.body()
        try:
            return json.loads(raw or b"null")
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, "Malformed JSON in request body.") from None

    @endpoint(site, "glance")
    async def list_images(request: Request, ctx: Ctx) -> Response:
        params = list(request.query_params.multi_items())
        images = [i for i in state.images.values() if _visible(ctx, i)]
        chosen = listing.sort(listing.select(images, params, ctx.project_id, ctx.is_admin), params)
        chunk, nxt = listing.page(chosen, params)
        body: dict[str, Any] = {
            "images": [i.doc() for i in chunk],
            "first": "/v2/images",
            "schema": "/v2/schemas/images",
        }
        if nxt is not None:
            body["next"] = nxt
        return json_response(body)

    @endpoint(site, "glance")
    async def create_image(request: Request, ctx: Ctx) -> Response:
        raw = await json_body(request)
        if not isinstance(raw, dict):
            raise ApiError(400, "Provided object does not match schema 'image': not an object")
        core, extra = fields.split(raw, is_admin=ctx.is_admin, project_id=ctx.project_id)
        owner = core.pop("owner", None) or ctx.project_id
        image = state.create(owner=owner, properties=extra, **core)
        return json_response(image.doc(), status=201)

    @endpoint(site, "glance")
    async def show_image(request: Request, ctx: Ctx) -> Response:
        return json_response(visible(ctx, request.path_params["id"]).doc())

    @endpoint(site, "glance")
    async def update_image(request: Request, ctx: Ctx) -> Response:
        image = mutable(ctx, request.path_params["id"])
        ctype = request.headers.get("content-type", "").split(";")[0].strip()
        if ctype not in patch.MEDIA_TYPES:
            raise ApiError(
                415,
                f"Unsupported Content-Type {ctype or '(none)'}: use "
                "application/openstack-images-v2.1-json-patch",
                headers={"Accept-Patch": ", ".join(patch.MEDIA_TYPES)},
            )
        ops = await json_body(request)
        patch.apply(image, ops, is_admin=ctx.is_admin, project_id=ctx.project_id)
        image.updated_at = site.clock.now()
        return json_response(image.doc())

    @endpoint(site, "glance")
    async def delete_image(request: Request, ctx: Ctx) -> Response:
        image = mutable(ctx, request.path_params["id"])
        state.delete(image.id)
        return Response(status_code=204)

    @endpoint(site, "glance")
    async def upload(request: Request, ctx: Ctx) -> Response:
        image = mutable(ctx, request.path_params["id"])
        ctype = request.headers.get("content-type", "").split(";")[0].strip()
        if ctype != "application/octet-stream":
            raise ApiError(415, f"Unsupported Content-Type {ctype or '(none)'} for image data.")
        await state.upload(image.id, request.stream())
        return Response(status_code=204)

    @endpoint(site, "glance")
    async def download(request: Request, ctx: Ctx) -> Response:
        image = visible(ctx, request.path_params["id"])
        disk = image.disk
        if disk is None or image.status != "active":
            return Response(status_code=204)
        wanted = store.parse_range(request.headers.get("range"), disk.size)
        if wanted is not None:
            start, end = wanted
            return StreamingResponse(
                store.read_chunks(disk.path, end - start, offset=start),
                status_code=206,
                media_type="application/octet-stream",
                headers={
                    "Content-Length": str(end - start),
                    "Content-Range": f"bytes {start}-{end - 1}/{disk.size}",
                },
            )
        headers = {"Content-Length": str(disk.size)}
        if image.checksum:
            headers["Content-MD5"] = image.checksum
        return StreamingResponse(
            store.read_chunks(disk.path, disk.size),
            media_type="application/octet-stream",
            headers=headers,
        )

    @endpoint(site, "glance")
    async def add_tag(request: Request, ctx: Ctx) -> Response:
        image = mutable(ctx, request.path_params["id"])
        tag = request.path_params["tag"]
        if len(tag) > 255:
            raise ApiError(400, "Tag is too long (255 characters at most).")
        if tag not in image.tags:
            image.tags.append(tag)
            image.updated_at = site.clock.now()
        return Response(status_code=204)

    @endpoint(site, "glance")
    async def delete_tag(request: Request, ctx: Ctx) -> Response:
        image = mutable(ctx, request.path_params["id"])
        tag = request.path_params["tag"]
        if tag not in image.tags:
            raise ApiError(404, f"Tag {tag} not found.")
        image.tags.remove(tag)
        image.updated_at = site.clock.now()
        return Response(status_code=204)

    @endpoint(site, "glance", latency=False)
    async def schema(request: Request, ctx: Ctx) -> Response:
        name = request.path_params["name"]
        if name not in ("image", "images"):
            raise ApiError(404, f"Schema {name} not found.")
        return json_response(_schema(name))

    @public(site, "glance")
    async def unknown(request: Request) -> Response:
        raise ApiError(404, "The resource could not be found.")

    return [
        Route("/image", versions, methods=["GET"]),
        Route("/image/", versions, methods=["GET"]),
        Route("/image/versions", versions_ok, methods=["GET"]),
        Route(V2, versions_ok, methods=["GET"]),
        Route(f"{V2}/", versions_ok, methods=["GET"]),
        Route(f"{V2}/images", list_images, methods=["GET"]),
        Route(f"{V2}/images", create_image, methods=["POST"]),
        Route(f"{V2}/images/{{id}}", show_image, methods=["GET"]),
        Route(f"{V2}/images/{{id}}", update_image, methods=["PATCH"]),
        Route(f"{V2}/images/{{id}}", delete_image, methods=["DELETE"]),
        Route(f"{V2}/images/{{id}}/file", upload, methods=["PUT"]),
        Route(f"{V2}/images/{{id}}/file", download, methods=["GET"]),
        Route(f"{V2}/images/{{id}}/tags/{{tag}}", add_tag, methods=["PUT"]),
        Route(f"{V2}/images/{{id}}/tags/{{tag}}", delete_tag, methods=["DELETE"]),
        Route(f"{V2}/schemas/{{name:str}}", schema, methods=["GET"]),
        Route(f"{V2}/{{rest:path}}", unknown, methods=["GET", "POST", "PUT", "PATCH", "DELETE"]),
    ]
