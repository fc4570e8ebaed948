"""Pieces every Neutron route shares: body parsing, visibility, list answers."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response

from ..http import json_response
from ..identity import Ctx
from . import errors, listing

if TYPE_CHECKING:
    from .models import Network
    from .state import NetworkState

PREFIX = "/networking/v2.0"


async def body(request: Request) -> Any:
    """The JSON body, or Neutron's ``MalformedRequestBody`` (400)."""
    raw = await request.body()
    if not raw:
        raise errors.bad_request("Resource body required", "HTTPBadRequest")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise errors.bad_request(
            "Malformed request body: Cannot understand JSON.", "MalformedRequestBody"
        ) from None


def owns(ctx: Ctx, project_id: str) -> bool:
    return ctx.is_admin or project_id == ctx.project_id


def network_visible(ctx: Ctx, net: Network) -> bool:
    """Owners, admins, and everyone for shared or external networks."""
    return owns(ctx, net.project_id) or net.shared or net.external


def visible_network(state: NetworkState, ctx: Ctx, network_id: str) -> Network:
    net = state.networks.get(network_id)
    if net is None or not network_visible(ctx, net):
        raise errors.not_found("network", network_id)
    return net


def list_response(
    request: Request, docs: list[dict[str, Any]], collection: str, member: str
) -> Response:
    base = str(request.url).split("?", 1)[0]
    params = list(request.query_params.multi_items())
    return json_response(listing.neutron_list(docs, params, base, collection, member))


def one(member: str, doc: dict[str, Any], status: int = 200) -> Response:
    return json_response({member: doc}, status=status)


def no_content() -> Response:
    return Response(status_code=204)
