"""Control-API routes for canary workloads, health queries and the consistency checker.

========  ============================================  ==========================================
method    path                                          what
========  ============================================  ==========================================
POST      /control/canaries                             start a writer: ``site``, ``server``,
                                                        ``volumes`` (database: ``[log, data]``),
                                                        ``kind`` (``single``/``database``),
                                                        ``rate`` (transactions per simulated
                                                        second), ``locality`` (0..1), ``seed``,
                                                        optional ``hot_blocks``, ``instance``
GET       /control/canaries                             every writer (``?site=``, ``?server=``)
GET       /control/canaries/{id}                        one writer
DELETE    /control/canaries/{id}                        stop and forget a writer
GET       /control/canaries/{id}/history                its global write history (``?since=seq``)
GET       /control/volumes/{site}/{volume}/freshness    newest canary on the volume, from its
                                                        bytes (``?failure_time=`` adds the
                                                        data-loss window)
GET       /control/snapshots/{site}/{snap}/freshness    the same for a volume snapshot
POST      /control/check-consistency                    ``{"site", "volumes": [...], "writer"}``
                                                        (or ``"snapshots": [...]``)
GET       /control/health/{site}/{server}               what the guest's health probe sees
POST      /control/health/{site}                        the same for many servers at once:
                                                        ``{"servers": [...]}`` answers
                                                        ``{"servers": {id: health}}`` (an
                                                        unknown server: ``{"error": ...}``)
GET       /control/double-running                       instances that wrote from two places at
                                                        once (``?gap=`` seconds of silence that
                                                        end a session, default 5)
========  ============================================  ==========================================

Errors are ``{"error": {"code", "message"}}`` like the rest of the control API.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .canary import registry
from .canary_check import check_consistency
from .canary_health import guest_health
from .canary_read import read_freshness
from .disks import Disk
from .http import ApiError, error_response, json_response, read_json
from .writelog import double_running

if TYPE_CHECKING:
    from .server import SimServer
    from .world import Site, World

Endpoint = Callable[[Request], Awaitable[Response]]


def _site(world: World, name: Any) -> Site:
    if not isinstance(name, str) or name not in world.sites:
        raise ApiError(404, f"unknown site {name!r}; sites are {', '.join(sorted(world.sites))}")
    return world.sites[name]


def _volume_disk(site: Site, volume_id: Any) -> Disk:
    if not isinstance(volume_id, str):
        raise ApiError(400, f"a volume id is a string, got {volume_id!r}")
    vol = site.volume.volumes.get(volume_id)
    if vol is None:
        raise ApiError(404, f"volume {volume_id} not found at site {site.name}")
    disk: Disk = vol.disk
    return disk


def _snapshot_disk(site: Site, snapshot_id: Any) -> Disk:
    if not isinstance(snapshot_id, str):
        raise ApiError(400, f"a snapshot id is a string, got {snapshot_id!r}")
    snap = site.volume.snapshots.get(snapshot_id)
    if snap is None:
        raise ApiError(404, f"snapshot {snapshot_id} not found at site {site.name}")
    disk: Disk = snap.disk
    return disk


def _float_param(request: Request, name: str) -> float | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    try:
        return float(raw)
    except ValueError:
        raise ApiError(400, f"'{name}' must be a number, got {raw!r}") from None


def routes(server: SimServer) -> list[BaseRoute]:
    world = server.world
    canaries = registry(world)

    def handler(fn: Endpoint) -> Endpoint:
        async def wrapped(request: Request) -> Response:
            try:
                world.clock.run_due()
                return await fn(request)
            except ApiError as err:
                return error_response(err, "keystone")

        wrapped.__name__ = fn.__name__
        return wrapped

    @handler
    async def create(request: Request) -> Response:
        canary = canaries.create(await read_json(request))
        return json_response({"canary": canary.describe()}, status=201)

    @handler
    async def list_all(request: Request) -> Response:
        qp = request.query_params
        out = [
            c.describe()
            for c in canaries.canaries.values()
            if qp.get("site") in (None, c.spec.site)
            and qp.get("server") in (None, c.spec.server_id)
        ]
        return json_response({"canaries": out})

    @handler
    async def show(request: Request) -> Response:
        return json_response({"canary": canaries.get(request.path_params["id"]).describe()})

    @handler
    async def delete(request: Request) -> Response:
        canary = canaries.delete(request.path_params["id"])
        return json_response({"canary": canary.describe()})

    @handler
    async def history(request: Request) -> Response:
        canary = canaries.get(request.path_params["id"])
        since_s = request.query_params.get("since", "0")
        if not since_s.isdigit():
            raise ApiError(400, f"'since' must be a write sequence number, got {since_s!r}")
        return json_response(
            {
                "writer": canary.id,
                "kind": canary.spec.kind,
                "instance": canary.spec.instance,
                "volumes": [{"id": v, "role": canary.roles[v]} for v in canary.spec.volumes],
                "writes": canary.seq,
                "entries": [w.as_dict() for w in canary.history_since(int(since_s))],
            }
        )

    async def _freshness(request: Request, what: str) -> Response:
        site = _site(world, request.path_params["site"])
        ident = request.path_params["ident"]
        disk = _volume_disk(site, ident) if what == "volume" else _snapshot_disk(site, ident)
        f = read_freshness(disk)
        body: dict[str, Any] = {"site": site.name, f"{what}_id": ident, **f.as_dict()}
        failure = _float_param(request, "failure_time")
        if failure is not None:
            body["failure_time"] = failure
            body["data_loss_window"] = None if f.time is None else failure - f.time
        return json_response(body)

    @handler
    async def volume_freshness(request: Request) -> Response:
        return await _freshness(request, "volume")

    @handler
    async def snapshot_freshness(request: Request) -> Response:
        return await _freshness(request, "snapshot")

    @handler
    async def check(request: Request) -> Response:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise ApiError(400, "check-consistency takes {'site', 'volumes': [...], 'writer'}")
        site = body.get("site")
        if not isinstance(site, str) or site not in world.sites:
            raise ApiError(
                400, f"unknown site {site!r}; sites are {', '.join(sorted(world.sites))}"
            )
        what = "snapshots" if "snapshots" in body and "volumes" not in body else "volumes"
        ids = body.get(what)
        if not isinstance(ids, list) or not ids:
            raise ApiError(400, f"'{what}' must be a non-empty list of {what[:-1]} ids")
        writer_id = body.get("writer")
        if not isinstance(writer_id, str):
            raise ApiError(400, "'writer' must be the id of a canary")
        canary = canaries.get(writer_id)
        get_disk = _volume_disk if what == "volumes" else _snapshot_disk
        disks = {i: get_disk(world.sites[site], i) for i in ids}
        report = check_consistency(disks, canary.history, writer_id=canary.id, group=canary.roles)
        return json_response({"writer": canary.id, **report.as_dict()})

    @handler
    async def health(request: Request) -> Response:
        pp = request.path_params
        return json_response(guest_health(world, pp["site"], pp["server_id"]))

    @handler
    async def health_many(request: Request) -> Response:
        site = request.path_params["site"]
        body = await read_json(request)
        ids = body.get("servers") if isinstance(body, dict) else None
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ApiError(400, "health takes {'servers': [server ids]}")
        if site not in world.sites:
            raise ApiError(
                404, f"unknown site {site!r}; sites are {', '.join(sorted(world.sites))}"
            )
        out: dict[str, Any] = {}
        for sid in ids:  # one unknown server does not hide the others' health
            try:
                out[sid] = guest_health(world, site, sid)
            except ApiError as err:
                out[sid] = {"error": {"code": err.status, "message": str(err)}}
        return json_response({"servers": out})

    @handler
    async def double_runs(request: Request) -> Response:
        gap = _float_param(request, "gap")
        if gap is not None and not gap > 0:
            raise ApiError(400, f"'gap' must be a positive number of seconds, got {gap}")
        runs = double_running(world.writelog.entries, gap=5.0 if gap is None else gap)
        return json_response({"double_running": [r.as_dict() for r in runs]})

    return [
        Route("/control/canaries", create, methods=["POST"]),
        Route("/control/canaries", list_all, methods=["GET"]),
        Route("/control/canaries/{id}", show, methods=["GET"]),
        Route("/control/canaries/{id}", delete, methods=["DELETE"]),
        Route("/control/canaries/{id}/history", history, methods=["GET"]),
        Route("/control/volumes/{site}/{ident}/freshness", volume_freshness, methods=["GET"]),
        Route("/control/snapshots/{site}/{ident}/freshness", snapshot_freshness, methods=["GET"]),
        Route("/control/check-consistency", check, methods=["POST"]),
        Route("/control/health/{site}/{server_id}", health, methods=["GET"]),
        Route("/control/health/{site}", health_many, methods=["POST"]),
        Route("/control/double-running", double_runs, methods=["GET"]),
    ]
