"""The simulator's control API: clock, faults, status, write log, canaries.

For tests, the demo and benchmarks only — never a path the controller uses
to act on a cloud.  Errors are JSON ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from . import canary_api, faults, heartbeat, links_api, replication_api, volume_control
from .bmc import control as bmc_control
from .compute import disk_control
from .http import ApiError, error_response, json_response, read_json

if TYPE_CHECKING:
    from .server import SimServer


def control_app(server: SimServer) -> Starlette:
    world = server.world
    clock = world.clock

    def handler(fn: Any) -> Any:
        async def wrapped(request: Request) -> Response:
            try:
                clock.run_due()
                result: Response = await fn(request)
                return result
            except ApiError as err:
                return error_response(err, "keystone")
            except (KeyError, ValueError) as err:
                return error_response(ApiError(400, str(err).strip("'\"")), "keystone")

        return wrapped

    @handler
    async def status(request: Request) -> Response:
        return json_response(
            {
                **world.describe(),
                "control_url": server.control_url,
                "clouds_yaml": str(server.state_dir / "clouds.yaml"),
            }
        )

    @handler
    async def get_clock(request: Request) -> Response:
        return json_response(clock.describe())

    @handler
    async def advance(request: Request) -> Response:
        body = await read_json(request)
        seconds = body.get("seconds") if isinstance(body, dict) else None
        if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or seconds < 0:
            raise ApiError(400, "advance needs 'seconds', a number >= 0")
        if clock.mode != "stepped":
            raise ApiError(409, f"the clock is {clock.mode}; only a stepped clock can be advanced")
        ran = clock.advance(float(seconds))
        return json_response({**clock.describe(), "events_ran": ran})

    @handler
    async def inject(request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise ApiError(400, "a fault is a JSON object with 'kind' and 'target'")
        result = await faults.inject(server, body)
        return json_response({"fault": result}, status=201)

    @handler
    async def heal(request: Request) -> Response:
        body = await read_json(request, required=False)
        if not isinstance(body, dict):
            raise ApiError(400, "heal takes a JSON object, optionally with 'kind' and 'target'")
        healed = await faults.heal(server, body)
        return json_response({"healed": healed})

    @handler
    async def list_faults(request: Request) -> Response:
        return json_response({"faults": faults.active(server)})

    @handler
    async def writelog(request: Request) -> Response:
        qp = request.query_params
        entries = world.writelog.query(
            kind=qp.get("kind"),
            site=qp.get("site"),
            instance=qp.get("instance"),
            volume=qp.get("volume"),
            since_seq=int(qp.get("since", "0")),
        )
        return json_response({"entries": [asdict(e) for e in entries]})

    routes: list[BaseRoute] = [
        Route("/control/status", status, methods=["GET"]),
        Route("/control/clock", get_clock, methods=["GET"]),
        Route("/control/clock/advance", advance, methods=["POST"]),
        Route("/control/faults", list_faults, methods=["GET"]),
        Route("/control/faults", inject, methods=["POST"]),
        Route("/control/heal", heal, methods=["POST"]),
        Route("/control/writelog", writelog, methods=["GET"]),
    ]
    routes += links_api.routes(server)
    routes += volume_control.routes(server)
    routes += disk_control.routes(server)
    routes += replication_api.routes(server)
    routes += canary_api.routes(server)
    routes += bmc_control.routes(server)
    routes += heartbeat.routes(server)
    return Starlette(routes=routes)
