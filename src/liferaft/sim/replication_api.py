"""Control-API routes for storage replication (see :mod:`liferaft.sim.volume.replication`).

========  ==========================================  ==========================================
method    path                                        what
========  ==========================================  ==========================================
GET       /control/replication                        every replica (``?source=`` site,
                                                      ``?target=`` site)
GET       /control/replication/{site}/{volume_id}     the replica of one volume of ``site``:
                                                      state, target site, backend reference
                                                      (``source-name`` for manage-existing),
                                                      lag, last applied point and write
========  ==========================================  ==========================================

This is what the replication target's storage array would report about a
replica (an array's own API, not OpenStack's): the controller's simulator
ReplicationMonitor adapter reads it, and nothing here changes the world.
It answers while the source site is down: the target's array still knows
its replicas.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .http import ApiError, error_response, json_response
from .volume.replication import replicator

if TYPE_CHECKING:
    from .server import SimServer


def routes(server: SimServer) -> list[BaseRoute]:
    world = server.world
    reps = replicator(world)

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
    async def list_all(request: Request) -> Response:
        qp = request.query_params
        now = world.clock.now()
        out = [
            r.describe(now)
            for r in reps.replicas.values()
            if qp.get("source") in (None, r.source) and qp.get("target") in (None, r.target)
        ]
        return json_response({"replicas": out})

    @handler
    async def one(request: Request) -> Response:
        site = request.path_params["site"]
        if site not in world.sites:
            raise ApiError(
                404, f"unknown site {site!r}; sites are {', '.join(sorted(world.sites))}"
            )
        rep = reps.get(site, request.path_params["volume_id"])
        return json_response({"replication": rep.describe(world.clock.now())})

    return [
        Route("/control/replication", list_all, methods=["GET"]),
        Route("/control/replication/{site}/{volume_id}", one, methods=["GET"]),
    ]
