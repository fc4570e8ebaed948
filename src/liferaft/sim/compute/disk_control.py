"""Control-API routes for a server's local root disk: a guest writing to it (tests only).

``PUT /control/servers/{site}/{server_id}/disk/blocks/{index}`` with the raw
bytes as the body is the guest writing one block of its root disk (padded
with zeros).  Only a running guest writes: a server that is not ACTIVE on a
live host, or is quiesced, answers 409 (as a frozen file system would
block the write).  Each write goes to the world's write log as
``kind="disk-write"`` (site, host, instance, ``block``, ``seq``), so a test
can tell the data-loss window of a root disk from the log.

``GET`` the same path reads the block back (of any server, running or not);
``GET /control/servers/{site}/{server_id}/disk`` describes the disk (size,
block size, written blocks, write sequence, the image it was made from).

The disk is the one Nova's ``createImage`` snapshots
(:func:`liferaft.sim.compute.lifecycle.create_image`) and an evacuation
without shared storage rebuilds from the image; it is made from the
server's image on first use (:meth:`ComputeState.server_disk`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..http import ApiError, error_response, json_response

if TYPE_CHECKING:
    from ..server import SimServer
    from .records import Server
    from .state import ComputeState


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

    def server_of(request: Request) -> tuple[ComputeState, Server]:
        name = request.path_params["site"]
        if name not in world.sites:
            raise ApiError(404, f"unknown site {name!r}")
        state: ComputeState = world.sites[name].compute
        sid = request.path_params["server_id"]
        s = state.servers.get(sid)
        if s is None or s.vm_state == "deleted":
            raise ApiError(404, f"Instance {sid} could not be found.")
        if s.booted_from_volume:
            raise ApiError(
                409, f"server {sid} boots from a volume: its root disk is a volume (see volumes)"
            )
        return state, s

    @handler
    async def describe(request: Request) -> Response:
        state, s = server_of(request)
        disk = state.server_disk(s)
        return json_response(
            {
                "id": s.id,
                "image_id": s.image_id,
                "size": disk.size,
                "block_size": disk.block_size,
                "blocks": disk.blocks,
                "seq": disk.seq,
                "written_blocks": disk.written_blocks(),
            }
        )

    @handler
    async def block(request: Request) -> Response:
        state, s = server_of(request)
        disk = state.server_disk(s)
        raw = request.path_params["index"]
        try:
            index = int(raw)
        except ValueError:
            raise ApiError(400, f"block index must be an integer, got {raw!r}") from None
        if not 0 <= index < disk.blocks:
            raise ApiError(400, f"block {index} outside the root disk's {disk.blocks} blocks")
        if request.method == "GET":
            return Response(disk.read_block(index), media_type="application/octet-stream")
        data = await request.body()
        if len(data) > disk.block_size:
            raise ApiError(400, f"a block holds at most {disk.block_size} bytes")
        if not state.server_is_running(s.id):
            why = "quiesced" if s.quiesced else f"not running (status {s.vm_state})"
            raise ApiError(409, f"the guest of server {s.id} cannot write: it is {why}")
        seq = disk.write_block(index, data)
        now = state.now()
        world.writelog.record(
            now, "disk-write", state.site.name, host=s.host, instance=s.id, block=index, seq=seq
        )
        return json_response({"index": index, "seq": seq, "time": now})

    base = "/control/servers/{site}/{server_id}/disk"
    return [
        Route(base, describe, methods=["GET"]),
        Route(base + "/blocks/{index}", block, methods=["GET", "PUT"]),
    ]
