"""``GET /control/bmcs``: every BMC's addresses and credentials (as in ``STATE_DIR/bmcs.yaml``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..http import json_response

if TYPE_CHECKING:
    from ..server import SimServer


def routes(server: SimServer) -> list[BaseRoute]:
    async def bmcs(request: Request) -> Response:
        return json_response(server.bmcs.describe())

    return [Route("/control/bmcs", bmcs, methods=["GET"])]
