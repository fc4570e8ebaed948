"""HTTP routes for snapshots, groups, group types, group snapshots and backups."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from ..http import ApiError, Version, bad_request, body_key, json_response, read_json
from ..identity import Ctx
from . import backups as bk
from . import views
from .common import (
    bool_field,
    both,
    dict_field,
    handler,
    match_filters,
    owned,
    page,
    sort_items,
    str_field,
    visible,
)

if TYPE_CHECKING:
    from ..world import Site

SORT = {"created_at", "updated_at", "id", "name", "size", "status"}


def _ids(value: Any, name: str) -> list[str]:
    if value is None or value == "":
        return []
    if not isinstance(value, str):
        raise bad_request(f"Invalid input received: {name} must be a comma-separated string.")
    return [x.strip() for x in value.split(",") if x.strip()]


def routes(site: Site) -> list[BaseRoute]:
    vs = site.volume

    def get_volume(ident: Any, ctx: Ctx) -> Any:
        err = ApiError(404, f"Volume {ident} could not be found.")
        vol = vs.volumes.get(str(ident))
        if vol is None:
            raise err
        return owned(vol, ctx, err)

    # -- snapshots ---------------------------------------------------------------------
    def get_snapshot(ident: str, ctx: Ctx) -> Any:
        err = ApiError(404, f"Snapshot {ident} could not be found.")
        snap = vs.snapshots.get(ident)
        if snap is None:
            raise err
        return owned(snap, ctx, err)

    @handler(site)
    async def snapshots(request: Request, ctx: Ctx, v: Version) -> Response:
        if request.method == "POST":
            body = body_key(await read_json(request), "snapshot")
            if not body.get("volume_id"):
                raise bad_request("Invalid input received: volume_id is required.")
            vol = get_volume(body["volume_id"], ctx)
            snap = vs.create_snapshot(
                vol,
                project_id=ctx.project_id,
                user_id=ctx.user_id,
                name=str_field(body, "name") or str_field(body, "display_name") or "",
                description=str_field(body, "description") or "",
                force=bool_field(body, "force"),
                metadata=dict_field(body, "metadata"),
                version=v,
            )
            return json_response({"snapshot": views.snapshot(snap, v)}, status=202)
        items = visible(list(vs.snapshots.values()), request, ctx)
        items = match_filters(
            items,
            request,
            {
                "name": lambda x: x.name,
                "status": lambda x: x.status,
                "volume_id": lambda x: x.volume_id,
                "group_snapshot_id": lambda x: x.group_snapshot_id,
            },
        )
        items = sort_items(items, request, SORT)
        got, extra = page(items, request, "snapshots_links")
        out = [views.snapshot(s, v) for s in got]
        return json_response({"snapshots": out, **extra})

    @handler(site)
    async def snapshot(request: Request, ctx: Ctx, v: Version) -> Response:
        snap = get_snapshot(request.path_params["snapshot_id"], ctx)
        if request.method == "DELETE":
            vs.delete_snapshot(snap)
            return Response(status_code=202)
        if request.method == "PUT":
            body = body_key(await read_json(request), "snapshot")
            if "name" in body:
                snap.name = str_field(body, "name") or ""
            if "description" in body:
                snap.description = str_field(body, "description") or ""
            snap.updated_at = vs.now
        return json_response({"snapshot": views.snapshot(snap, v)})

    @handler(site)
    async def snapshot_action(request: Request, ctx: Ctx, v: Version) -> Response:
        snap = get_snapshot(request.path_params["snapshot_id"], ctx)
        body = await read_json(request)
        if isinstance(body, dict) and "os-reset_status" in body:
            if not ctx.is_admin:
                raise ApiError(403, "Policy doesn't allow this operation to be performed.")
            arg = body["os-reset_status"] if isinstance(body["os-reset_status"], dict) else {}
            if not arg.get("status"):
                raise bad_request("Invalid input received: status is required.")
            snap.status = str(arg["status"])
            return Response(status_code=202)
        if isinstance(body, dict) and "os-force_delete" in body:
            if not ctx.is_admin:
                raise ApiError(403, "Policy doesn't allow this operation to be performed.")
            snap.status = "available"
            vs.delete_snapshot(snap, in_group=True)
            return Response(status_code=202)
        raise bad_request("Invalid input received: unknown snapshot action.")

    # -- group types (3.11+) -------------------------------------------------------------
    @handler(site, since=(3, 11))
    async def group_types(request: Request, ctx: Ctx, v: Version) -> Response:
        items = sorted(vs.group_types.values(), key=lambda t: t.name)
        return json_response({"group_types": [views.group_type(t) for t in items]})

    @handler(site, since=(3, 11))
    async def group_type(request: Request, ctx: Ctx, v: Version) -> Response:
        ident = request.path_params["gt_id"]
        gt = vs.find_group_type(ident if ident != "default" else None)
        return json_response({"group_type": views.group_type(gt)})

    # -- groups (3.13+) ------------------------------------------------------------------
    def get_group(ident: str, ctx: Ctx) -> Any:
        err = ApiError(404, f"Group {ident} could not be found.")
        grp = vs.groups.get(ident)
        if grp is None:
            raise err
        return owned(grp, ctx, err)

    def list_volumes_flag(request: Request) -> bool:
        return request.query_params.get("list_volume", "").lower() in ("1", "true")

    @handler(site, since=(3, 13))
    async def groups(request: Request, ctx: Ctx, v: Version) -> Response:
        if request.method == "POST":
            body = body_key(await read_json(request), "group")
            types = body.get("volume_types")
            if not isinstance(types, list) or not all(isinstance(t, str) for t in types):
                raise bad_request("Invalid input received: volume_types must be a list of types.")
            grp = vs.create_group(
                project_id=ctx.project_id,
                name=str_field(body, "name") or "",
                group_type=None if body.get("group_type") is None else str(body["group_type"]),
                volume_types=types,
                description=str_field(body, "description") or "",
            )
            return json_response(
                {
                    "group": {
                        "id": grp.id,
                        "name": grp.name,
                        "links": views.links(site.url, "groups", grp.id),
                    }
                },
                status=202,
            )
        items = visible(list(vs.groups.values()), request, ctx)
        items = match_filters(
            items, request, {"name": lambda x: x.name, "status": lambda x: x.status}
        )
        items = sort_items(items, request, SORT)
        got, extra = page(items, request, "groups_links")
        if request.url.path.endswith("/detail"):
            out = [views.group(vs, g, v, with_volumes=list_volumes_flag(request)) for g in got]
        else:
            out = [{"id": g.id, "name": g.name} for g in got]
        return json_response({"groups": out, **extra})

    @handler(site, since=(3, 13))
    async def group(request: Request, ctx: Ctx, v: Version) -> Response:
        grp = get_group(request.path_params["group_id"], ctx)
        if request.method == "PUT":
            body = body_key(await read_json(request), "group")
            add = _ids(body.get("add_volumes"), "add_volumes")
            remove = _ids(body.get("remove_volumes"), "remove_volumes")
            if not (add or remove or "name" in body or "description" in body):
                raise bad_request(
                    "Invalid input received: Name, description, add_volumes, and "
                    "remove_volumes can not be all empty in the request body."
                )
            for ident in add + remove:
                get_volume(ident, ctx)
            vs.update_group(grp, add, remove)
            if "name" in body:
                grp.name = str_field(body, "name") or ""
            if "description" in body:
                grp.description = str_field(body, "description") or ""
            return Response(status_code=202)
        return json_response(
            {"group": views.group(vs, grp, v, with_volumes=list_volumes_flag(request))}
        )

    @handler(site, since=(3, 13))
    async def group_action(request: Request, ctx: Ctx, v: Version) -> Response:
        grp = get_group(request.path_params["group_id"], ctx)
        body = await read_json(request)
        if isinstance(body, dict) and "delete" in body:
            arg = body["delete"] if isinstance(body["delete"], dict) else {}
            vs.delete_group(grp, delete_volumes=bool_field(arg, "delete-volumes"))
            return Response(status_code=202)
        if isinstance(body, dict) and "reset_status" in body:
            if not ctx.is_admin:
                raise ApiError(403, "Policy doesn't allow this operation to be performed.")
            arg = body["reset_status"] if isinstance(body["reset_status"], dict) else {}
            grp.status = str(arg.get("status") or grp.status)
            return Response(status_code=202)
        raise bad_request("Invalid input received: unknown group action.")

    # -- group snapshots (3.14+) -----------------------------------------------------------
    def get_gs(ident: str, ctx: Ctx) -> Any:
        err = ApiError(404, f"GroupSnapshot {ident} could not be found.")
        gs = vs.group_snapshots.get(ident)
        if gs is None:
            raise err
        return owned(gs, ctx, err)

    @handler(site, since=(3, 14))
    async def group_snapshots(request: Request, ctx: Ctx, v: Version) -> Response:
        if request.method == "POST":
            body = body_key(await read_json(request), "group_snapshot")
            if not body.get("group_id"):
                raise bad_request("Invalid input received: group_id is required.")
            grp = get_group(str(body["group_id"]), ctx)
            gs = vs.create_group_snapshot(
                grp,
                project_id=ctx.project_id,
                user_id=ctx.user_id,
                name=str_field(body, "name") or "",
                description=str_field(body, "description") or "",
            )
            return json_response(
                {
                    "group_snapshot": {
                        "id": gs.id,
                        "name": gs.name,
                        "group_type_id": gs.group_type_id,
                    }
                },
                status=202,
            )
        items = visible(list(vs.group_snapshots.values()), request, ctx)
        items = match_filters(
            items,
            request,
            {
                "name": lambda x: x.name,
                "status": lambda x: x.status,
                "group_id": lambda x: x.group_id,
            },
        )
        items = sort_items(items, request, SORT)
        got, extra = page(items, request, "group_snapshots_links")
        if request.url.path.endswith("/detail"):
            out = [views.group_snapshot(g, v) for g in got]
        else:
            out = [{"id": g.id, "name": g.name} for g in got]
        return json_response({"group_snapshots": out, **extra})

    @handler(site, since=(3, 14))
    async def group_snapshot(request: Request, ctx: Ctx, v: Version) -> Response:
        gs = get_gs(request.path_params["gs_id"], ctx)
        if request.method == "DELETE":
            vs.delete_group_snapshot(gs)
            return Response(status_code=202)
        return json_response({"group_snapshot": views.group_snapshot(gs, v)})

    # -- backups -------------------------------------------------------------------------------
    def get_backup(ident: str, ctx: Ctx) -> Any:
        err = ApiError(404, f"Backup {ident} could not be found.")
        b = vs.backups.get(ident)
        if b is None:
            raise err
        return owned(b, ctx, err)

    @handler(site)
    async def backups(request: Request, ctx: Ctx, v: Version) -> Response:
        if request.method == "POST":
            body = body_key(await read_json(request), "backup")
            if not body.get("volume_id"):
                raise bad_request("Invalid input received: volume_id is required.")
            vol = get_volume(body["volume_id"], ctx)
            snapshot_id = body.get("snapshot_id")
            if snapshot_id is not None:
                get_snapshot(str(snapshot_id), ctx)
            b = bk.create_backup(
                vs,
                vol,
                project_id=ctx.project_id,
                user_id=ctx.user_id,
                name=str_field(body, "name"),
                description=str_field(body, "description"),
                container=str_field(body, "container"),
                incremental=bool_field(body, "incremental"),
                force=bool_field(body, "force"),
                snapshot_id=None if snapshot_id is None else str(snapshot_id),
                metadata=dict_field(body, "metadata") if v >= (3, 43) else None,
            )
            return json_response(
                {
                    "backup": {
                        "id": b.id,
                        "name": b.name,
                        "links": views.links(site.url, "backups", b.id),
                    }
                },
                status=202,
            )
        items = visible(list(vs.backups.values()), request, ctx)
        items = match_filters(
            items,
            request,
            {
                "name": lambda x: x.name,
                "status": lambda x: x.status,
                "volume_id": lambda x: x.volume_id,
            },
        )
        items = sort_items(items, request, SORT | {"data_timestamp"})
        got, extra = page(items, request, "backups_links")
        if request.url.path.endswith("/detail"):
            out = [views.backup(vs, b, v, admin=ctx.is_admin) for b in got]
        else:
            out = [
                {"id": b.id, "name": b.name, "links": views.links(site.url, "backups", b.id)}
                for b in got
            ]
        body_out: dict[str, Any] = {"backups": out, **extra}
        if v >= (3, 45) and request.query_params.get("with_count", "").lower() in ("1", "true"):
            body_out["count"] = len(items)
        return json_response(body_out)

    @handler(site)
    async def backup(request: Request, ctx: Ctx, v: Version) -> Response:
        b = get_backup(request.path_params["backup_id"], ctx)
        if request.method == "DELETE":
            bk.delete_backup(vs, b)
            return Response(status_code=202)
        if request.method == "PUT":
            if v < (3, 9):
                raise ApiError(404, "The resource could not be found.")
            body = body_key(await read_json(request), "backup")
            if "name" in body:
                b.name = str_field(body, "name")
            if "description" in body:
                b.description = str_field(body, "description")
            if "metadata" in body and v >= (3, 43):
                b.metadata = dict_field(body, "metadata")
            b.updated_at = vs.now
        return json_response({"backup": views.backup(vs, b, v, admin=ctx.is_admin)})

    @handler(site)
    async def restore(request: Request, ctx: Ctx, v: Version) -> Response:
        b = get_backup(request.path_params["backup_id"], ctx)
        body = body_key(await read_json(request), "restore")
        vid = body.get("volume_id")
        if vid is not None:
            get_volume(vid, ctx)
        vol = bk.restore_backup(
            vs,
            b,
            volume_id=None if vid is None else str(vid),
            name=str_field(body, "name"),
            project_id=ctx.project_id,
            user_id=ctx.user_id,
        )
        return json_response(
            {"restore": {"backup_id": b.id, "volume_id": vol.id, "volume_name": vol.name}},
            status=202,
        )

    @handler(site, admin=True)
    async def export_record(request: Request, ctx: Ctx, v: Version) -> Response:
        b = get_backup(request.path_params["backup_id"], ctx)
        return json_response({"backup-record": bk.export_record(b)})

    @handler(site, admin=True)
    async def import_record(request: Request, ctx: Ctx, v: Version) -> Response:
        body = body_key(await read_json(request), "backup-record")
        b = bk.import_record(
            vs,
            body.get("backup_service"),
            body.get("backup_url"),
            project_id=ctx.project_id,
            user_id=ctx.user_id,
        )
        return json_response(
            {
                "backup": {
                    "id": b.id,
                    "name": b.name,
                    "links": views.links(site.url, "backups", b.id),
                }
            },
            status=201,
        )

    @handler(site)
    async def backup_action(request: Request, ctx: Ctx, v: Version) -> Response:
        b = get_backup(request.path_params["backup_id"], ctx)
        body = await read_json(request)
        if not ctx.is_admin:
            raise ApiError(403, "Policy doesn't allow this operation to be performed.")
        if isinstance(body, dict) and "os-reset_status" in body:
            arg = body["os-reset_status"] if isinstance(body["os-reset_status"], dict) else {}
            if arg.get("status") not in ("available", "error"):
                raise bad_request("Invalid input received: status must be available or error.")
            b.status = str(arg["status"])
            return Response(status_code=202)
        if isinstance(body, dict) and "os-force_delete" in body:
            bk.delete_backup(vs, b, force=True)
            return Response(status_code=202)
        raise bad_request("Invalid input received: unknown backup action.")

    out: list[BaseRoute] = []
    out += both("/snapshots", snapshots, ["GET", "POST"])
    out += both("/snapshots/detail", snapshots, ["GET"])
    out += both("/snapshots/{snapshot_id}", snapshot, ["GET", "PUT", "DELETE"])
    out += both("/snapshots/{snapshot_id}/action", snapshot_action, ["POST"])
    out += both("/group_types", group_types, ["GET"])
    out += both("/group_types/{gt_id}", group_type, ["GET"])
    out += both("/groups", groups, ["GET", "POST"])
    out += both("/groups/detail", groups, ["GET"])
    out += both("/groups/{group_id}", group, ["GET", "PUT"])
    out += both("/groups/{group_id}/action", group_action, ["POST"])
    out += both("/group_snapshots", group_snapshots, ["GET", "POST"])
    out += both("/group_snapshots/detail", group_snapshots, ["GET"])
    out += both("/group_snapshots/{gs_id}", group_snapshot, ["GET", "DELETE"])
    out += both("/backups", backups, ["GET", "POST"])
    out += both("/backups/detail", backups, ["GET"])
    out += both("/backups/import_record", import_record, ["POST"])
    out += both("/backups/{backup_id}", backup, ["GET", "PUT", "DELETE"])
    out += both("/backups/{backup_id}/restore", restore, ["POST"])
    out += both("/backups/{backup_id}/export_record", export_record, ["GET"])
    out += both("/backups/{backup_id}/action", backup_action, ["POST"])
    return out
