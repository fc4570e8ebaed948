"""Control-API routes for WAN link settings (background traffic, flow limits, usage counters).

``GET /control/links``
    every link: state, capacity, active flows, bytes carried by direction
    and by tag.
``PUT /control/links/{name}``
    ``{"background_mbps": x, "bandwidth_mbps": y}`` (either or both): the
    application traffic and the configured capacity.
``PUT /control/links/{name}/limits``
    ``{"limits_mbps": {"<tag>": x | null}}``: cap every flow of a tag
    together on this link (``null`` removes the cap).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .http import ApiError, error_response, json_response, read_json

if TYPE_CHECKING:
    from .server import SimServer


def _number(value: Any, key: str, *, positive: bool = False) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise ApiError(400, f"'{key}' must be a number")
    if value < 0 or (positive and value == 0):
        raise ApiError(400, f"'{key}' must be {'> 0' if positive else '>= 0'}, got {value}")
    return float(value)


def routes(server: SimServer) -> list[BaseRoute]:
    world = server.world
    links = world.links

    def handler(fn: Any) -> Any:
        async def wrapped(request: Request) -> Response:
            try:
                world.clock.run_due()
                result: Response = await fn(request)
                return result
            except ApiError as err:
                return error_response(err, "keystone")

        return wrapped

    @handler
    async def list_links(request: Request) -> Response:
        return json_response({"links": links.describe()})

    @handler
    async def update_link(request: Request) -> Response:
        link = links.find(request.path_params["name"])
        body = await read_json(request)
        if not isinstance(body, dict) or not ({"background_mbps", "bandwidth_mbps"} & set(body)):
            raise ApiError(400, "give 'background_mbps' and/or 'bandwidth_mbps'")
        unknown = set(body) - {"background_mbps", "bandwidth_mbps"}
        if unknown:
            raise ApiError(400, f"unknown link settings: {', '.join(sorted(unknown))}")
        if "bandwidth_mbps" in body:
            links.set_bandwidth(
                link, _number(body["bandwidth_mbps"], "bandwidth_mbps", positive=True)
            )
        if "background_mbps" in body:
            links.set_background(link, _number(body["background_mbps"], "background_mbps"))
        return json_response({"link": link.describe()})

    @handler
    async def set_limits(request: Request) -> Response:
        link = links.find(request.path_params["name"])
        body = await read_json(request)
        limits = body.get("limits_mbps") if isinstance(body, dict) else None
        if not isinstance(limits, dict):
            raise ApiError(400, "give 'limits_mbps': {tag: megabits per second or null}")
        parsed: dict[str, float | None] = {}
        for tag, value in limits.items():
            parsed[tag] = None if value is None else _number(value, f"limits_mbps.{tag}") * 1e6
        for tag, bps in parsed.items():
            links.set_rate_limit(tag, bps, link=link)
        return json_response({"link": link.describe()})

    return [
        Route("/control/links", list_links, methods=["GET"]),
        Route("/control/links/{name}", update_link, methods=["PUT"]),
        Route("/control/links/{name}/limits", set_limits, methods=["PUT"]),
    ]
