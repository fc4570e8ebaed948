"""Control-API routes that read and write a volume's blocks directly (tests only).

``PUT /control/volumes/{site}/{volume_id}/blocks/{index}`` with the raw
bytes as the body writes one block (padded with zeros);
``GET`` the same path returns the block's bytes; ``GET
/control/volumes/{site}/{volume_id}`` describes the disk (block size,
written blocks, write sequence).  This stands in for a guest writing to
its disk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .http import ApiError, error_response, json_response

if TYPE_CHECKING:
    from .server import SimServer
    from .volume.models import Volume


def routes(server: SimServer) -> list[BaseRoute]:
    world = server.world

    def handler(fn: Any) -> Any:
        async def wrapped(request: Request) -> Response:
            try:
                world.clock.run_due()
                result: Response = await fn(request)
                return result
            except ApiError as err:
                return error_response(err, "keystone")

        return wrapped

    def volume_of(request: Request) -> Volume:
        name = request.path_params["site"]
        if name not in world.sites:
            raise ApiError(404, f"unknown site {name!r}")
        return world.sites[name].volume.get(request.path_params["volume_id"])

    def index_of(request: Request, vol: Volume) -> int:
        raw = request.path_params["index"]
        try:
            index = int(raw)
        except ValueError:
            raise ApiError(400, f"block index must be an integer, got {raw!r}") from None
        if not 0 <= index < vol.disk.blocks:
            raise ApiError(400, f"block {index} outside the volume's {vol.disk.blocks} blocks")
        return index

    @handler
    async def describe(request: Request) -> Response:
        vol = volume_of(request)
        disk = vol.disk
        return json_response(
            {
                "id": vol.id,
                "status": vol.status,
                "size": disk.size,
                "block_size": disk.block_size,
                "blocks": disk.blocks,
                "seq": disk.seq,
                "written_blocks": disk.written_blocks(),
            }
        )

    @handler
    async def block(request: Request) -> Response:
        vol = volume_of(request)
        index = index_of(request, vol)
        if request.method == "PUT":
            data = await request.body()
            if len(data) > vol.disk.block_size:
                raise ApiError(400, f"a block holds at most {vol.disk.block_size} bytes")
            seq = vol.disk.write_block(index, data)
            return json_response({"index": index, "seq": seq})
        return Response(vol.disk.read_block(index), media_type="application/octet-stream")

    return [
        Route("/control/volumes/{site}/{volume_id}", describe, methods=["GET"]),
        Route("/control/volumes/{site}/{volume_id}/blocks/{index}", block, methods=["GET", "PUT"]),
    ]
