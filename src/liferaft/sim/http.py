"""HTTP helpers shared by the simulator's OpenStack API facades.

Errors are raised as :class:`ApiError` anywhere in a handler and rendered in
the body shape of the service that raised them (Nova/Cinder, Neutron,
Keystone, Glance, Swift), because the real clients parse those shapes to show
a clean message.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

Style = Literal["nova", "cinder", "neutron", "keystone", "glance", "swift", "placement", "plain"]

# Nova and Cinder name the top-level key after the error class.
_NOVA_KEYS = {
    400: "badRequest",
    401: "unauthorized",
    403: "forbidden",
    404: "itemNotFound",
    405: "badMethod",
    406: "notAcceptable",
    409: "conflictingRequest",
    413: "overLimit",
    415: "badMediaType",
    500: "computeFault",
    501: "notImplemented",
    503: "serviceUnavailable",
}
_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    406: "Not Acceptable",
    409: "Conflict",
    413: "Request Entity Too Large",
    415: "Unsupported Media Type",
    500: "Internal Server Error",
    501: "Not Implemented",
    503: "Service Unavailable",
}


class ApiError(Exception):
    """An OpenStack-style error: HTTP status, message and (for Neutron) a type name."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        neutron_type: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.neutron_type = neutron_type
        self.headers = headers or {}


def not_found(what: str, ident: str) -> ApiError:
    return ApiError(404, f"{what} {ident} could not be found.")


def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def conflict(message: str) -> ApiError:
    return ApiError(409, message)


def error_response(err: ApiError, style: Style) -> Response:
    status, msg = err.status, err.message
    title = _TITLES.get(status, "Error")
    if style in ("nova", "cinder", "placement"):
        if style == "placement":
            body: dict[str, Any] = {
                "errors": [{"status": status, "title": title, "detail": msg, "request_id": _rid()}]
            }
        else:
            body = {_NOVA_KEYS.get(status, "computeFault"): {"code": status, "message": msg}}
        return JSONResponse(body, status_code=status, headers=err.headers)
    if style == "neutron":
        body = {
            "NeutronError": {
                "type": err.neutron_type or title.replace(" ", ""),
                "message": msg,
                "detail": "",
            }
        }
        return JSONResponse(body, status_code=status, headers=err.headers)
    if style == "keystone":
        body = {"error": {"code": status, "message": msg, "title": title}}
        return JSONResponse(body, status_code=status, headers=err.headers)
    # Glance and Swift answer with small HTML/plain bodies.
    html = f"<html><head><title>{status} {title}</title></head><body><h1>{status} {title}</h1>{msg}<br /><br /></body></html>"
    return Response(html, status_code=status, media_type="text/html", headers=err.headers)


def _rid() -> str:
    return "req-" + str(uuid.uuid4())


async def read_json(request: Request, *, required: bool = True) -> Any:
    """Parse a JSON body, answering 400 with a clear message when malformed."""
    raw = await request.body()
    if not raw:
        if required:
            raise bad_request("The request body is empty; a JSON object was expected.")
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"Malformed request body: {exc}") from exc


def body_key(body: Any, key: str) -> dict[str, Any]:
    """Return ``body[key]`` as a dict or answer 400 the way Nova/Cinder do."""
    if not isinstance(body, dict) or not isinstance(body.get(key), dict):
        raise bad_request(f"Invalid input for field/attribute {key}: a '{key}' object is required.")
    value: dict[str, Any] = body[key]
    return value


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        json.dumps(body, separators=(",", ":")),
        status_code=status,
        media_type="application/json",
        headers=headers,
    )


# -- microversions -------------------------------------------------------------
Version = tuple[int, int]


def parse_version(text: str) -> Version:
    major, _, minor = text.strip().partition(".")
    return int(major), int(minor or 0)


def fmt_version(v: Version) -> str:
    return f"{v[0]}.{v[1]}"


def microversion(
    request: Request,
    service: str,
    minimum: Version,
    maximum: Version,
    legacy_header: str | None = None,
) -> Version:
    """The microversion a request asked for (OpenStack-API-Version), checked against the range.

    Absent header: the minimum.  ``latest``: the maximum.  Out of range: 406,
    as Nova and Cinder answer.
    """
    asked: str | None = None
    hdr = request.headers.get("openstack-api-version")
    if hdr:
        for part in hdr.split(","):
            name, _, ver = part.strip().partition(" ")
            if name.lower() == service:
                asked = ver.strip()
    if asked is None and legacy_header:
        asked = request.headers.get(legacy_header)
    if not asked:
        return minimum
    if asked.lower() == "latest":
        return maximum
    try:
        v = parse_version(asked)
    except ValueError as exc:
        raise ApiError(400, f"Invalid API version request string {asked!r}.") from exc
    if not minimum <= v <= maximum:
        raise ApiError(
            406,
            f"Version {asked} is not supported by the API. Minimum is "
            f"{fmt_version(minimum)} and maximum is {fmt_version(maximum)}.",
        )
    return v


# -- pagination -----------------------------------------------------------------
def paginate(
    items: Sequence[Any],
    request: Request,
    *,
    ident: Callable[[Any], str] = lambda x: x.id,
    links_key: str | None = None,
    max_limit: int = 1000,
) -> tuple[list[Any], list[dict[str, str]]]:
    """Apply ``marker``/``limit`` (OpenStack semantics) and build ``*_links``.

    An unknown marker answers 400 as Nova, Cinder and Neutron do.
    """
    qp = request.query_params
    start = 0
    marker = qp.get("marker")
    if marker:
        for i, item in enumerate(items):
            if ident(item) == marker:
                start = i + 1
                break
        else:
            raise ApiError(400, f"marker [{marker}] not found", neutron_type="MarkerNotFound")
    limit_s = qp.get("limit")
    limit = max_limit
    if limit_s is not None:
        try:
            limit = int(limit_s)
        except ValueError as exc:
            raise bad_request(f"limit must be an integer, got {limit_s!r}") from exc
        if limit < 0:
            raise bad_request("limit must be >= 0")
        limit = min(limit, max_limit)
    page = list(items[start : start + limit])
    links: list[dict[str, str]] = []
    if links_key is not None and page and limit_s is not None and len(page) == limit:
        params = dict(qp)
        params["marker"] = ident(page[-1])
        query = "&".join(f"{k}={v}" for k, v in params.items())
        links.append({"rel": "next", "href": f"{str(request.url).split('?')[0]}?{query}"})
    return page, links


def filter_by(
    items: Iterable[Any], request: Request, fields: dict[str, Callable[[Any], Any]]
) -> list[Any]:
    """Keep items whose attribute equals every given query parameter in ``fields``."""
    out = list(items)
    for name, getter in fields.items():
        want = request.query_params.get(name)
        if want is None or want == "None":
            continue
        out = [x for x in out if str(getter(x)) == want]
    return out
