"""A minimal Swift (Object Storage v1) facade over the site's object store.

Served under ``/object-store/v1/AUTH_{project_id}``: account GET/HEAD
(containers), container PUT/POST/GET/HEAD/DELETE, object
PUT/POST/GET/HEAD/DELETE with ETag (md5), ``X-*-Meta-*`` metadata and
``prefix``/``delimiter``/``marker``/``end_marker``/``limit`` listings in
plain text or JSON.  ``/object-store/info`` gives the capabilities the SDK
asks for before uploading a file.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from email.utils import formatdate
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..http import ApiError, json_response
from ..identity import Ctx
from ..service import endpoint, public
from .state import Container, StoredObject

if TYPE_CHECKING:
    from ..world import Site

MAX_FILE_SIZE = 5 * 1024**3 + 2
LISTING_LIMIT = 10000


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _http_date(ts: float) -> str:
    return formatdate(ts, usegmt=True)


def _meta_from(request: Request, kind: str) -> dict[str, str]:
    prefix = f"x-{kind}-meta-"
    return {k[len(prefix) :]: v for k, v in request.headers.items() if k.lower().startswith(prefix)}


def _meta_headers(meta: dict[str, str], kind: str) -> dict[str, str]:
    return {f"X-{kind.capitalize()}-Meta-{k}": v for k, v in meta.items()}


def _wants_json(request: Request) -> bool:
    fmt = request.query_params.get("format")
    if fmt is not None:
        return fmt == "json"
    return "application/json" in request.headers.get("accept", "")


def _listing(request: Request, names: list[str]) -> list[str | tuple[str]]:
    """Apply prefix/delimiter/marker/end_marker/limit; subdirs come back as 1-tuples."""
    qp = request.query_params
    prefix = qp.get("prefix", "")
    delimiter = qp.get("delimiter") or ""
    marker = qp.get("marker") or ""
    end_marker = qp.get("end_marker") or ""
    try:
        limit = int(qp.get("limit", LISTING_LIMIT))
    except ValueError as exc:
        raise ApiError(412, "Value of limit must be an integer.") from exc
    if limit < 0 or limit > LISTING_LIMIT:
        raise ApiError(412, f"Maximum limit is {LISTING_LIMIT}.")
    out: list[str | tuple[str]] = []
    seen_dirs: set[str] = set()
    for name in sorted(names):
        if not name.startswith(prefix) or (marker and name <= marker):
            continue
        if end_marker and name >= end_marker:
            break
        if delimiter:
            cut = name.find(delimiter, len(prefix))
            if cut >= 0:
                sub = name[: cut + len(delimiter)]
                if sub not in seen_dirs and not (marker and sub <= marker):
                    seen_dirs.add(sub)
                    out.append((sub,))
                if len(out) >= limit:
                    break
                continue
        out.append(name)
        if len(out) >= limit:
            break
    return out


def routes(site: Site) -> list[BaseRoute]:
    store = site.objects

    def account_of(request: Request, ctx: Ctx) -> str:
        account: str = request.path_params["account"]
        if account != f"AUTH_{ctx.project_id}" and not ctx.is_admin:
            raise ApiError(403, "Access was denied to this resource.")
        if not account.startswith("AUTH_"):
            raise ApiError(404, f"Account {account} not found.")
        return account

    @public(site, "swift")
    async def info(request: Request) -> Response:
        return json_response(
            {
                "swift": {
                    "version": "2.34.0",
                    "max_file_size": MAX_FILE_SIZE,
                    "container_listing_limit": LISTING_LIMIT,
                    "max_object_name_length": 1024,
                },
            }
        )

    @endpoint(site, "swift")
    async def account(request: Request, ctx: Ctx) -> Response:
        acct = account_of(request, ctx)
        conts = store.containers(acct)
        headers = {
            "X-Account-Container-Count": str(len(conts)),
            "X-Account-Object-Count": str(sum(len(c.objects) for c in conts.values())),
            "X-Account-Bytes-Used": str(sum(c.bytes_used for c in conts.values())),
            "X-Timestamp": f"{site.clock.now():.5f}",
        }
        if request.method == "HEAD":
            return Response(status_code=204, headers=headers)
        if request.method == "POST":
            return Response(status_code=204, headers=headers)
        listed = [x for x in _listing(request, list(conts)) if isinstance(x, str)]
        if _wants_json(request):
            body = [
                {
                    "name": n,
                    "count": len(conts[n].objects),
                    "bytes": conts[n].bytes_used,
                    "last_modified": _iso(conts[n].created_at),
                }
                for n in listed
            ]
            return json_response(body, headers=headers)
        if not listed:
            return Response(status_code=204, headers=headers)
        return Response("".join(n + "\n" for n in listed), headers=headers, media_type="text/plain")

    def container_headers(cont: Container) -> dict[str, str]:
        return {
            "X-Container-Object-Count": str(len(cont.objects)),
            "X-Container-Bytes-Used": str(cont.bytes_used),
            "X-Timestamp": f"{cont.created_at:.5f}",
            "X-Storage-Policy": "Policy-0",
            **_meta_headers(cont.meta, "container"),
        }

    @endpoint(site, "swift")
    async def container(request: Request, ctx: Ctx) -> Response:
        acct = account_of(request, ctx)
        name = request.path_params["container"]
        if request.method == "PUT":
            _cont, created = store.create_container(acct, name, _meta_from(request, "container"))
            return Response(status_code=201 if created else 202)
        if request.method == "DELETE":
            store.delete_container(acct, name)
            return Response(status_code=204)
        cont = store.container(acct, name)
        if request.method == "POST":
            cont.meta.update(_meta_from(request, "container"))
            return Response(status_code=204)
        headers = container_headers(cont)
        if request.method == "HEAD":
            return Response(status_code=204, headers=headers)
        listed = _listing(request, list(cont.objects))
        if _wants_json(request):
            body: list[dict[str, Any]] = []
            for item in listed:
                if isinstance(item, tuple):
                    body.append({"subdir": item[0]})
                    continue
                o = cont.objects[item]
                body.append(
                    {
                        "name": o.name,
                        "hash": o.etag,
                        "bytes": o.size,
                        "content_type": o.content_type,
                        "last_modified": _iso(o.last_modified),
                    }
                )
            return json_response(body, headers=headers)
        if not listed:
            return Response(status_code=204, headers=headers)
        text = "".join((x[0] if isinstance(x, tuple) else x) + "\n" for x in listed)
        return Response(text, headers=headers, media_type="text/plain")

    def object_headers(o: StoredObject) -> dict[str, str]:
        return {
            "ETag": o.etag,
            "Content-Type": o.content_type,
            "Last-Modified": _http_date(o.last_modified),
            "X-Timestamp": f"{o.last_modified:.5f}",
            "Accept-Ranges": "bytes",
            **_meta_headers(o.meta, "object"),
        }

    @endpoint(site, "swift")
    async def obj(request: Request, ctx: Ctx) -> Response:
        acct = account_of(request, ctx)
        cname = request.path_params["container"]
        name = request.path_params["obj"]
        if request.method == "PUT":
            data = await request.body()
            want = request.headers.get("etag")
            if want and want.strip('"').lower() != hashlib.md5(data).hexdigest():
                raise ApiError(422, "Unprocessable Entity: the ETag does not match the data.")
            stored = store.store(
                acct,
                cname,
                name,
                data,
                content_type=request.headers.get("content-type") or "application/octet-stream",
                meta=_meta_from(request, "object"),
            )
            return Response(
                status_code=201,
                headers={"ETag": stored.etag, "Last-Modified": _http_date(stored.last_modified)},
            )
        if request.method == "DELETE":
            store.remove(acct, cname, name)
            return Response(status_code=204)
        if request.method == "POST":
            found = store.obj(acct, cname, name)
            found.meta = _meta_from(request, "object")
            return Response(status_code=202)
        if request.method == "HEAD":
            found = store.obj(acct, cname, name)
            return Response(
                status_code=200,
                headers={**object_headers(found), "Content-Length": str(found.size)},
            )
        found, data = store.read(acct, cname, name)
        return Response(data, status_code=200, headers=object_headers(found))

    base = "/object-store/v1/{account}"
    return [
        Route("/object-store/info", info, methods=["GET"]),
        Route(base, account, methods=["GET", "HEAD", "POST"]),
        Route(base + "/", account, methods=["GET", "HEAD", "POST"]),
        Route(base + "/{container}", container, methods=["GET", "HEAD", "PUT", "POST", "DELETE"]),
        Route(base + "/{container}/", container, methods=["GET", "HEAD", "PUT", "POST", "DELETE"]),
        Route(
            base + "/{container}/{obj:path}",
            obj,
            methods=["GET", "HEAD", "PUT", "POST", "DELETE"],
        ),
    ]
