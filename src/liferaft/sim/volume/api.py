"""HTTP facade of the simulated Block Storage v3 (Cinder) service.

Version discovery, volume types, volumes and their actions, attachments
(3.27+), managing existing backend volumes, limits and quotas.  Snapshots,
groups and backups are in ``api_data.py``.  Every route is served with and
without a ``{project_id}`` segment after ``/volume/v3``.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from ..http import ApiError, Version, bad_request, body_key, fmt_version, json_response, read_json
from ..identity import Ctx
from ..service import public
from . import api_data, views
from .backups import get_backup, restore_backup
from .common import (
    MAX_VERSION,
    MIN_VERSION,
    bool_field,
    both,
    dict_field,
    handler,
    int_field,
    match_filters,
    owned,
    page,
    sort_items,
    str_field,
    visible,
)
from .upload_image import upload_to_image

if TYPE_CHECKING:
    from ..world import Site

VOLUME_SORT = {"created_at", "updated_at", "id", "name", "size", "status", "bootable"}


def routes(site: Site) -> list[BaseRoute]:
    vs = site.volume

    def version_doc() -> dict[str, Any]:
        return {
            "id": "v3.0",
            "status": "CURRENT",
            "version": fmt_version(MAX_VERSION),
            "min_version": fmt_version(MIN_VERSION),
            "updated": "2023-01-01T00:00:00Z",
            "links": [{"rel": "self", "href": f"{site.url}/volume/v3/"}],
            "media-types": [
                {
                    "base": "application/json",
                    "type": "application/vnd.openstack.volume+json;version=3",
                }
            ],
        }

    @public(site, "cinder")
    async def versions(request: Request) -> Response:
        return json_response({"versions": [version_doc()]})

    def not_found(ident: str) -> ApiError:
        return ApiError(404, f"Volume {ident} could not be found.")

    def get_volume(ident: str, ctx: Ctx) -> Any:
        try:
            vol = vs.get(ident)
        except ApiError:
            raise not_found(ident) from None
        return owned(vol, ctx, not_found(ident))

    def render(vol: Any, v: Version, ctx: Ctx) -> dict[str, Any]:
        return views.volume(vs, vol, v, admin=ctx.is_admin)

    # -- volume types ------------------------------------------------------------------
    @handler(site)
    async def list_types(request: Request, ctx: Ctx, v: Version) -> Response:
        if request.method == "POST":
            if not ctx.is_admin:
                raise ApiError(
                    403, "Policy doesn't allow volume_extension:types_manage to be performed."
                )
            body = body_key(await read_json(request), "volume_type")
            name = str_field(body, "name")
            if not name:
                raise bad_request("Invalid input received: Volume type name can not be empty.")
            vt = vs.add_type(
                name,
                description=str_field(body, "description") or "",
                extra_specs=dict_field(body, "extra_specs"),
            )
            return json_response({"volume_type": views.volume_type(vt)})
        items = sorted(vs.types.values(), key=lambda t: t.name)
        return json_response({"volume_types": [views.volume_type(t) for t in items]})

    @handler(site)
    async def default_type(request: Request, ctx: Ctx, v: Version) -> Response:
        return json_response({"volume_type": views.volume_type(vs.find_type(None))})

    @handler(site)
    async def one_type(request: Request, ctx: Ctx, v: Version) -> Response:
        ident = request.path_params["type_id"]
        vt = vs.types.get(ident)
        if vt is None:
            raise ApiError(404, f"Volume type {ident} could not be found.")
        if request.method == "DELETE":
            if not ctx.is_admin:
                raise ApiError(
                    403, "Policy doesn't allow volume_extension:types_manage to be performed."
                )
            if any(vol.volume_type is vt for vol in vs.volumes.values()):
                raise bad_request(f"Invalid volume type: Volume type {ident} is in use.")
            del vs.types[ident]
            return Response(status_code=202)
        return json_response({"volume_type": views.volume_type(vt)})

    @handler(site)
    async def type_specs(request: Request, ctx: Ctx, v: Version) -> Response:
        ident = request.path_params["type_id"]
        vt = vs.types.get(ident)
        if vt is None:
            raise ApiError(404, f"Volume type {ident} could not be found.")
        if request.method == "POST":
            if not ctx.is_admin:
                raise ApiError(
                    403, "Policy doesn't allow volume_extension:types_manage to be performed."
                )
            vt.extra_specs.update(dict_field(await read_json(request), "extra_specs"))
        return json_response({"extra_specs": dict(vt.extra_specs)})

    # -- volumes ---------------------------------------------------------------------------
    @handler(site)
    async def volumes(request: Request, ctx: Ctx, v: Version) -> Response:
        if request.method == "POST":
            return await create_volume(request, ctx, v)
        detail = request.url.path.endswith("/detail")
        items = visible(list(vs.volumes.values()), request, ctx)
        items = match_filters(
            items,
            request,
            {
                "name": lambda x: x.name,
                "status": lambda x: x.status,
                "bootable": lambda x: str(x.bootable).lower(),
                "group_id": lambda x: x.group_id,
                "availability_zone": lambda x: "nova",
                "volume_type": lambda x: x.volume_type.name,
            },
        )
        meta = request.query_params.get("metadata")
        if meta:
            try:
                want = json.loads(meta.replace("'", '"'))
            except ValueError as exc:
                raise bad_request(
                    "Invalid input received: metadata filter must be a JSON object."
                ) from exc
            if isinstance(want, dict):
                items = [
                    x for x in items if all(x.metadata.get(k) == val for k, val in want.items())
                ]
        items = sort_items(items, request, VOLUME_SORT)
        got, extra = page(items, request, "volumes_links")
        if detail:
            body: dict[str, Any] = {"volumes": [render(x, v, ctx) for x in got]}
        else:
            body = {
                "volumes": [
                    {"id": x.id, "name": x.name, "links": views.links(site.url, "volumes", x.id)}
                    for x in got
                ]
            }
        body.update(extra)
        if v >= (3, 45) and request.query_params.get("with_count", "").lower() in ("1", "true"):
            body["count"] = len(items)
        return json_response(body)

    async def create_volume(request: Request, ctx: Ctx, v: Version) -> Response:
        body = body_key(await read_json(request), "volume")
        size = body.get("size")
        size_gb = None if size is None else int_field(size, "size")
        image_id = body.get("imageRef") or body.get("image_id")
        group_id = body.get("group_id")
        if group_id is not None and v < (3, 13):
            group_id = None
        name = str_field(body, "name") or ""
        description = str_field(body, "description") or ""
        backup_id = body.get("backup_id")
        if backup_id and v >= (3, 47):
            b = get_backup(vs, str(backup_id))
            owned(b, ctx, ApiError(404, f"Backup {backup_id} could not be found."))
            vol = restore_backup(
                vs,
                b,
                volume_id=None,
                name=name,
                project_id=ctx.project_id,
                user_id=ctx.user_id,
            )
            return json_response({"volume": render(vol, v, ctx)}, status=202)
        snapshot_id = body.get("snapshot_id")
        if snapshot_id is not None:
            snap = vs.snapshots.get(str(snapshot_id))
            if snap is None or (snap.project_id != ctx.project_id and not ctx.is_admin):
                raise ApiError(404, f"Snapshot {snapshot_id} could not be found.")
        source = body.get("source_volid")
        if source is not None:
            get_volume(str(source), ctx)
        vol = vs.create_volume(
            project_id=ctx.project_id,
            user_id=ctx.user_id,
            size_gb=size_gb,
            image_id=None if image_id is None else str(image_id),
            volume_type=None if body.get("volume_type") is None else str(body["volume_type"]),
            snapshot_id=None if snapshot_id is None else str(snapshot_id),
            source_volid=None if source is None else str(source),
            metadata=dict_field(body, "metadata"),
            group_id=None if group_id is None else str(group_id),
            multiattach=bool_field(body, "multiattach"),
            name=name,
            description=description,
        )
        return json_response({"volume": render(vol, v, ctx)}, status=202)

    @handler(site)
    async def volume(request: Request, ctx: Ctx, v: Version) -> Response:
        vol = get_volume(request.path_params["volume_id"], ctx)
        if request.method == "DELETE":
            qp = request.query_params
            cascade = qp.get("cascade", "false").lower() in ("1", "true")
            force = qp.get("force", "false").lower() in ("1", "true")
            vs.delete_volume(vol, cascade=cascade, force=force and ctx.is_admin)
            return Response(status_code=202)
        if request.method == "PUT":
            body = body_key(await read_json(request), "volume")
            if not body:
                raise bad_request("Invalid input received: No volume fields to update.")
            if "name" in body or "display_name" in body:
                vol.name = str_field(body, "name" if "name" in body else "display_name") or ""
            if "description" in body or "display_description" in body:
                key = "description" if "description" in body else "display_description"
                vol.description = str_field(body, key) or ""
            if "metadata" in body:
                vol.metadata = dict_field(body, "metadata")
            vol.updated_at = vs.now
        return json_response({"volume": render(vol, v, ctx)})

    @handler(site)
    async def volume_metadata(request: Request, ctx: Ctx, v: Version) -> Response:
        vol = get_volume(request.path_params["volume_id"], ctx)
        if request.method in ("POST", "PUT"):
            meta = dict_field(await read_json(request), "metadata")
            if request.method == "PUT":
                vol.metadata = meta
            else:
                vol.metadata.update(meta)
        return json_response({"metadata": dict(vol.metadata)})

    @handler(site)
    async def volume_action(request: Request, ctx: Ctx, v: Version) -> Response:
        vol = get_volume(request.path_params["volume_id"], ctx)
        body = await read_json(request)
        if not isinstance(body, dict) or len(body) != 1:
            raise bad_request("Invalid input received: exactly one action is expected.")
        ((action, arg),) = body.items()
        arg = arg if isinstance(arg, dict) else {}
        if action == "os-extend":
            vs.extend(vol, int_field(arg.get("new_size"), "new_size"), v)
            return Response(status_code=202)
        if action == "os-reserve":
            vs.reserve(vol, "", status="reserved")
            vs.set_status(vol, "attaching")
            return Response(status_code=202)
        if action == "os-unreserve":
            for a in [a for a in vol.attachments if a.status == "reserved"]:
                vol.attachments.remove(a)
            if vol.status in ("attaching", "reserved"):
                vs.set_status(vol, "in-use" if vol.attachments else "available")
            return Response(status_code=202)
        if action == "os-attach":
            server = arg.get("instance_uuid") or arg.get("host_name")
            mount = arg.get("mountpoint")
            if not server or not mount:
                raise bad_request(
                    "Invalid input received: instance_uuid and mountpoint are required."
                )
            att = next(
                (
                    a
                    for a in vol.attachments
                    if a.server_id in ("", server) and a.status != "attached"
                ),
                None,
            )
            if att is None:
                att = vs.reserve(vol, str(server))
            att.server_id = str(server)
            att.host, att.mountpoint = arg.get("host_name"), str(mount)
            att.mode = str(arg.get("mode", "rw"))
            vs.complete_attach(vol, att)
            return Response(status_code=202)
        if action == "os-begin_detaching":
            if vol.status != "in-use":
                raise bad_request(
                    f"Invalid volume: Unable to detach volume. Volume status must be 'in-use' "
                    f"and attach_status must be 'attached' to detach. (status {vol.status})"
                )
            vs.set_status(vol, "detaching")
            return Response(status_code=202)
        if action == "os-roll_detaching":
            if vol.status == "detaching":
                vs.set_status(vol, "in-use")
            return Response(status_code=202)
        if action in ("os-detach", "os-force_detach"):
            if action == "os-force_detach" and not ctx.is_admin:
                raise ApiError(
                    403,
                    "Policy doesn't allow volume_extension:volume_admin_actions:force_detach to be performed.",
                )
            want = arg.get("attachment_id")
            atts = [a for a in vol.attachments if want is None or a.id == want]
            if not atts:
                raise bad_request("Invalid volume: Volume must be attached in order to detach.")
            vs.remove_attachment(vol, atts[0])
            return Response(status_code=202)
        if action == "os-initialize_connection":
            return json_response({"connection_info": views.connection_info(vol)})
        if action == "os-terminate_connection":
            return Response(status_code=202)
        if action == "os-reset_status":
            if not ctx.is_admin:
                raise ApiError(
                    403,
                    "Policy doesn't allow volume_extension:volume_admin_actions:reset_status to be performed.",
                )
            status = arg.get("status")
            if status is not None:
                vs.set_status(vol, str(status))
            if arg.get("attach_status") == "detached":
                vol.attachments.clear()
            if "migration_status" in arg:
                vol.migration_status = arg["migration_status"]
            return Response(status_code=202)
        if action == "os-volume_upload_image":
            return json_response({action: upload_to_image(site, vol, arg, ctx)}, status=202)
        if action == "os-set_bootable":
            vol.bootable = bool_field(arg, "bootable")
            return Response(status_code=200)
        if action == "os-update_readonly_flag":
            return Response(status_code=202)
        if action == "os-update_snapshot_status":
            return Response(status_code=202)
        raise bad_request(f"Invalid input received: There is no such action: {action}")

    # -- attachments (3.27+) ---------------------------------------------------------------
    @handler(site, since=(3, 27))
    async def attachments(request: Request, ctx: Ctx, v: Version) -> Response:
        if request.method == "POST":
            body = body_key(await read_json(request), "attachment")
            vid = body.get("volume_uuid")
            if not vid:
                raise bad_request("Invalid input received: volume_uuid is required.")
            vol = get_volume(str(vid), ctx)
            att = vs.reserve(vol, str(body.get("instance_uuid") or ""))
            att.mode = str(body.get("mode", "rw"))
            connector = body.get("connector")
            if isinstance(connector, dict):
                att.connector = connector
                vs.set_status(vol, "attaching")
                att.status = "attaching"
            return json_response({"attachment": views.attachment(att, vol)})
        found = [
            (vol, a)
            for vol in visible(list(vs.volumes.values()), request, ctx)
            for a in vol.attachments
        ]
        vid = request.query_params.get("volume_id")
        if vid:
            found = [(vol, a) for vol, a in found if vol.id == vid]
        iid = request.query_params.get("instance_id")
        if iid:
            found = [(vol, a) for vol, a in found if a.server_id == iid]
        detail = request.url.path.endswith("/detail")
        return json_response(
            {
                "attachments": [
                    views.attachment(a, vol)
                    if detail
                    else {
                        "id": a.id,
                        "volume_id": vol.id,
                        "instance": a.server_id,
                        "status": a.status,
                    }
                    for vol, a in found
                ]
            }
        )

    def find_att(ident: str, ctx: Ctx) -> Any:
        vol, att = vs.find_attachment(ident)
        owned(vol, ctx, ApiError(404, f"VolumeAttachment {ident} could not be found."))
        return vol, att

    @handler(site, since=(3, 27))
    async def attachment(request: Request, ctx: Ctx, v: Version) -> Response:
        vol, att = find_att(request.path_params["attachment_id"], ctx)
        if request.method == "DELETE":
            vs.remove_attachment(vol, att)
            rest = [views.attachment(a, vol) for a in vol.attachments if a is not att]
            return json_response({"attachments": rest})
        if request.method == "PUT":
            body = body_key(await read_json(request), "attachment")
            connector = body.get("connector")
            if not isinstance(connector, dict):
                raise bad_request("Invalid input received: connector is required.")
            att.connector = connector
            att.status = "attaching"
            if vol.status in ("reserved", "available"):
                vs.set_status(vol, "attaching")
        return json_response({"attachment": views.attachment(att, vol)})

    @handler(site, since=(3, 44))
    async def attachment_action(request: Request, ctx: Ctx, v: Version) -> Response:
        vol, att = find_att(request.path_params["attachment_id"], ctx)
        body = await read_json(request)
        if not isinstance(body, dict) or "os-complete" not in body:
            raise bad_request("Invalid input received: the only attachment action is os-complete.")
        vs.complete_attach(vol, att)
        return Response(status_code=204)

    # -- manage existing ------------------------------------------------------------------------
    @handler(site, admin=True)
    async def manage(request: Request, ctx: Ctx, v: Version) -> Response:
        body = body_key(await read_json(request), "volume")
        host = body.get("host")
        ref = body.get("ref")
        if not isinstance(host, str) or not isinstance(ref, dict):
            raise bad_request("Invalid input received: host and ref are required.")
        vol = vs.manage(
            host=host,
            ref=ref,
            project_id=ctx.project_id,
            user_id=ctx.user_id,
            name=str_field(body, "name") or "",
            description=str_field(body, "description") or "",
            volume_type=None if body.get("volume_type") is None else str(body["volume_type"]),
            bootable=bool_field(body, "bootable"),
            metadata=dict_field(body, "metadata"),
        )
        return json_response({"volume": render(vol, v, ctx)}, status=202)

    @handler(site, since=(3, 8), admin=True)
    async def manageable(request: Request, ctx: Ctx, v: Version) -> Response:
        if request.method == "POST":
            return await manage(request)
        items = []
        for bv in sorted(vs.backend.values(), key=lambda b: b.name):
            entry: dict[str, Any] = {
                "reference": {"source-name": bv.name},
                "size": bv.size,
                "safe_to_manage": bv.cinder_id is None,
            }
            if request.url.path.endswith("/detail"):
                entry.update(
                    {
                        "reason_not_safe": None if bv.cinder_id is None else "already managed",
                        "cinder_id": bv.cinder_id,
                        "extra_info": dict(bv.extra_info),
                    }
                )
            items.append(entry)
        return json_response({"manageable-volumes": items})

    # -- limits, quotas, zones, services ----------------------------------------------------------
    def usage(project_id: str) -> dict[str, int]:
        vols = [x for x in vs.volumes.values() if x.project_id == project_id]
        snaps = [x for x in vs.snapshots.values() if x.project_id == project_id]
        backs = [x for x in vs.backups.values() if x.project_id == project_id]
        return {
            "volumes": len(vols),
            "gigabytes": sum(x.size for x in vols) + sum(x.size for x in snaps),
            "snapshots": len(snaps),
            "backups": len(backs),
            "backup_gigabytes": sum(x.size for x in backs),
            "groups": sum(1 for g in vs.groups.values() if g.project_id == project_id),
        }

    quota = {
        "volumes": 1000,
        "gigabytes": 100000,
        "snapshots": 1000,
        "backups": 1000,
        "backup_gigabytes": 100000,
        "groups": 100,
        "per_volume_gigabytes": -1,
    }

    @handler(site)
    async def limits(request: Request, ctx: Ctx, v: Version) -> Response:
        u = usage(ctx.project_id)
        return json_response(
            {
                "limits": {
                    "rate": [],
                    "absolute": {
                        "maxTotalVolumes": quota["volumes"],
                        "maxTotalSnapshots": quota["snapshots"],
                        "maxTotalVolumeGigabytes": quota["gigabytes"],
                        "maxTotalBackups": quota["backups"],
                        "maxTotalBackupGigabytes": quota["backup_gigabytes"],
                        "totalVolumesUsed": u["volumes"],
                        "totalGigabytesUsed": u["gigabytes"],
                        "totalSnapshotsUsed": u["snapshots"],
                        "totalBackupsUsed": u["backups"],
                        "totalBackupGigabytesUsed": u["backup_gigabytes"],
                    },
                }
            }
        )

    @handler(site)
    async def quota_set(request: Request, ctx: Ctx, v: Version) -> Response:
        pid = request.path_params["target"]
        if pid != ctx.project_id and not ctx.is_admin:
            raise ApiError(
                403, "Policy doesn't allow volume_extension:quotas:show to be performed."
            )
        if request.method == "PUT":  # an admin raises or lowers the limits (one set per site)
            if not ctx.is_admin:
                raise ApiError(
                    403, "Policy doesn't allow volume_extension:quotas:update to be performed."
                )
            for k, lim in body_key(await read_json(request), "quota_set").items():
                if k in quota:
                    if not isinstance(lim, int) or isinstance(lim, bool) or lim < -1:
                        raise bad_request(f"Invalid input for field/attribute {k}: {lim!r}.")
                    quota[k] = lim
        with_usage = request.query_params.get("usage", "").lower() in ("1", "true")
        u = usage(pid)
        body: dict[str, Any] = {"id": pid}
        for k, lim in quota.items():
            body[k] = (
                {"limit": lim, "in_use": u.get(k, 0), "reserved": 0, "allocated": 0}
                if with_usage
                else lim
            )
        return json_response({"quota_set": body})

    @handler(site)
    async def zones(request: Request, ctx: Ctx, v: Version) -> Response:
        return json_response(
            {"availabilityZoneInfo": [{"zoneName": "nova", "zoneState": {"available": True}}]}
        )

    @handler(site, admin=True)
    async def services(request: Request, ctx: Ctx, v: Version) -> Response:
        host = vs.backend_host.split("#")[0]
        out = []
        for binary, h in (
            ("cinder-scheduler", site.name),
            ("cinder-volume", host),
            ("cinder-backup", site.name),
        ):
            out.append(
                {
                    "binary": binary,
                    "host": h,
                    "zone": "nova",
                    "status": "enabled",
                    "state": "up",
                    "updated_at": views.iso(vs.now),
                    "disabled_reason": None,
                }
            )
        return json_response({"services": out})

    out: list[BaseRoute] = [
        Route("/volume", versions, methods=["GET"]),
        Route("/volume/", versions, methods=["GET"]),
        Route("/volume/v3", versions, methods=["GET"]),
        Route("/volume/v3/", versions, methods=["GET"]),
    ]
    out += both("/types", list_types, ["GET", "POST"])
    out += both("/types/default", default_type, ["GET"])
    out += both("/types/{type_id}", one_type, ["GET", "DELETE"])
    out += both("/types/{type_id}/extra_specs", type_specs, ["GET", "POST"])
    out += both("/volumes", volumes, ["GET", "POST"])
    out += both("/volumes/detail", volumes, ["GET"])
    out += both("/volumes/{volume_id}", volume, ["GET", "PUT", "DELETE"])
    out += both("/volumes/{volume_id}/metadata", volume_metadata, ["GET", "POST", "PUT"])
    out += both("/volumes/{volume_id}/action", volume_action, ["POST"])
    out += both("/attachments", attachments, ["GET", "POST"])
    out += both("/attachments/detail", attachments, ["GET"])
    out += both("/attachments/{attachment_id}", attachment, ["GET", "PUT", "DELETE"])
    out += both("/attachments/{attachment_id}/action", attachment_action, ["POST"])
    out += both("/os-volume-manage", manage, ["POST"])
    out += both("/manageable_volumes", manageable, ["GET", "POST"])
    out += both("/manageable_volumes/detail", manageable, ["GET"])
    out += both("/limits", limits, ["GET"])
    out += both("/os-quota-sets/{target}", quota_set, ["GET", "PUT"])
    out += both("/os-availability-zone", zones, ["GET"])
    out += both("/os-services", services, ["GET"])
    out += api_data.routes(site)
    return out
