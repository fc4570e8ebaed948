"""``/servers``: create, list, show, update, delete; metadata; instance actions; volume attachments."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from ..http import ApiError, Version, body_key, json_response, paginate, read_json
from . import boot, lifecycle, views
from .api import PREFIX, nova, resource
from .records import STATUS_VM_STATES, Server

if TYPE_CHECKING:
    from ..identity import Ctx
    from ..world import Site

#: Nova's ``[api] max_limit``.
MAX_LIMIT = 1000


def _since(text: str, name: str) -> float:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError as exc:
        raise ApiError(400, f"Invalid filter field: {name}.") from exc


def filtered_servers(site: Site, request: Request, ctx: Ctx) -> list[Server]:
    """Servers the caller may see that match the query, newest first (Nova's default order)."""
    qp = request.query_params
    state = site.compute
    all_tenants = qp.get("all_tenants", qp.get("all_projects"))
    everyone = (
        ctx.is_admin
        and all_tenants is not None
        and all_tenants.lower() not in ("0", "false", "off", "no")
    )
    project = qp.get("project_id") or qp.get("tenant_id")
    items: list[Server] = []
    name_re = None
    if qp.get("name"):
        try:
            name_re = re.compile(qp["name"])
        except re.error as exc:
            raise ApiError(400, f"Invalid filter field: name. {exc}") from exc
    status = qp.get("status")
    vm_states: tuple[str, ...] | None = None
    if status:
        vm_states = STATUS_VM_STATES.get(status.upper())
        if vm_states is None:
            return []  # Nova answers an empty list for an unknown status
    host = qp.get("host") if ctx.is_admin else None
    since = _since(qp["changes-since"], "changes-since") if qp.get("changes-since") else None
    flavor = qp.get("flavor")
    image = qp.get("image")
    uuid = qp.get("uuid")
    for s in reversed(list(state.servers.values())):
        if everyone:
            if project and ctx.is_admin and s.project_id != project:
                continue
        elif s.project_id != ctx.project_id:
            continue
        if name_re is not None and not name_re.search(s.name):
            continue
        if vm_states is not None and s.vm_state not in vm_states:
            continue
        if host is not None and s.host != host:
            continue
        if since is not None and s.updated < since:
            continue
        if flavor is not None and s.flavor.id != flavor:
            continue
        if image is not None and s.image_id != image:
            continue
        if uuid is not None and s.id != uuid:
            continue
        items.append(s)
    return items


def routes(site: Site) -> list[BaseRoute]:
    state = site.compute

    async def _list(request: Request, ctx: Ctx, mv: Version, *, detail: bool) -> Response:
        items = filtered_servers(site, request, ctx)
        page, nxt = paginate(items, request, links_key="servers", max_limit=MAX_LIMIT)
        if not nxt and len(page) == MAX_LIMIT and len(items) > MAX_LIMIT:
            nxt = [
                {
                    "rel": "next",
                    "href": f"{str(request.url).split('?')[0]}?limit={MAX_LIMIT}&marker={page[-1].id}",
                }
            ]
        if detail:
            body: dict[str, Any] = {
                "servers": [views.server_detail(state, s, ctx, mv, site.url) for s in page]
            }
        else:
            body = {"servers": [views.server_brief(s, site.url) for s in page]}
        if nxt:
            body["servers_links"] = nxt
        return json_response(body)

    @nova(site)
    async def list_servers(request: Request, ctx: Ctx, mv: Version) -> Response:
        return await _list(request, ctx, mv, detail=False)

    @nova(site)
    async def list_detail(request: Request, ctx: Ctx, mv: Version) -> Response:
        return await _list(request, ctx, mv, detail=True)

    @nova(site)
    async def create(request: Request, ctx: Ctx, mv: Version) -> Response:
        body = await read_json(request)
        server_body = body_key(body, "server")
        hints = body.get("OS-SCH-HNT:scheduler_hints") or body.get("os:scheduler_hints")
        req = boot.parse(server_body, hints, mv, ctx)
        made = boot.create_servers(state, req, ctx)
        if req.return_reservation_id:
            return json_response({"reservation_id": made[0].reservation_id}, status=202)
        first = made[0]
        self_links = views.links(site.url, "servers", first.id)
        doc = {
            "id": first.id,
            "links": self_links,
            "OS-DCF:diskConfig": "MANUAL",
            "security_groups": [{"name": "default"}],
            "adminPass": lifecycle.new_admin_pass(),
        }
        return json_response(
            {"server": doc}, status=202, headers={"Location": self_links[0]["href"]}
        )

    @nova(site)
    async def show(request: Request, ctx: Ctx, mv: Version) -> Response:
        s = state.get_server(request.path_params["id"], ctx)
        return json_response({"server": views.server_detail(state, s, ctx, mv, site.url)})

    @nova(site)
    async def update(request: Request, ctx: Ctx, mv: Version) -> Response:
        s = state.get_server(request.path_params["id"], ctx)
        body = body_key(await read_json(request), "server")
        for key, value in body.items():
            if key == "name":
                if not isinstance(value, str) or not value.strip() or len(value) > 255:
                    raise ApiError(400, f"Invalid input for field/attribute name. Value: {value}.")
                s.name = value
            elif key == "description" and mv >= (2, 19):
                if value is not None and not isinstance(value, str):
                    raise ApiError(
                        400, f"Invalid input for field/attribute description. Value: {value}."
                    )
                s.description = value
            elif key not in ("accessIPv4", "accessIPv6", "hostname"):
                raise ApiError(
                    400,
                    f"Invalid input for field/attribute server. Additional properties are not allowed ('{key}' was unexpected)",
                )
        state.touch(s)
        return json_response({"server": views.server_detail(state, s, ctx, mv, site.url)})

    @nova(site)
    async def delete(request: Request, ctx: Ctx, mv: Version) -> Response:
        s = state.get_server(request.path_params["id"], ctx)
        lifecycle.delete(state, s, ctx)
        return Response(status_code=204)

    # -- metadata -------------------------------------------------------------------
    def _check_meta(ctx: Ctx, meta: Any, existing: int = 0) -> dict[str, str]:
        if not isinstance(meta, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and 0 < len(k) <= 255 and len(v) <= 255
            for k, v in meta.items()
        ):
            raise ApiError(400, f"Invalid input for field/attribute metadata. Value: {meta}.")
        limit = state.quota(ctx.project_id)["metadata_items"]
        if 0 <= limit < len(meta) + existing:
            raise ApiError(
                403,
                f"Quota exceeded for metadata_items: Maximum number of metadata items exceeds {limit}",
            )
        return dict(meta)

    @nova(site)
    async def metadata(request: Request, ctx: Ctx, mv: Version) -> Response:
        s = state.get_server(request.path_params["id"], ctx)
        if request.method == "GET":
            return json_response({"metadata": dict(s.metadata)})
        lifecycle.check_lock(s, ctx)
        meta = _check_meta(ctx, body_key(await read_json(request), "metadata"))
        if request.method == "PUT":
            s.metadata = meta
        else:
            _check_meta(ctx, {**s.metadata, **meta})
            s.metadata.update(meta)
        state.touch(s)
        return json_response({"metadata": dict(s.metadata)})

    @nova(site)
    async def metadata_item(request: Request, ctx: Ctx, mv: Version) -> Response:
        s = state.get_server(request.path_params["id"], ctx)
        key = request.path_params["key"]
        if request.method == "GET":
            if key not in s.metadata:
                raise ApiError(404, "Metadata item was not found")
            return json_response({"meta": {key: s.metadata[key]}})
        lifecycle.check_lock(s, ctx)
        if request.method == "DELETE":
            if key not in s.metadata:
                raise ApiError(404, "Metadata item was not found")
            del s.metadata[key]
            state.touch(s)
            return Response(status_code=204)
        meta = _check_meta(ctx, body_key(await read_json(request), "meta"))
        if len(meta) != 1 or key not in meta:
            raise ApiError(400, "Request body and URI mismatch")
        _check_meta(ctx, {**s.metadata, **meta})
        s.metadata.update(meta)
        state.touch(s)
        return json_response({"meta": meta})

    # -- instance actions --------------------------------------------------------------
    def _action_doc(s: Server, a: Any, mv: Version, *, events: bool) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "action": a.action,
            "instance_uuid": s.id,
            "request_id": a.request_id,
            "user_id": a.user_id,
            "project_id": a.project_id,
            "start_time": views.iso_micro(a.start_time),
            "message": a.message,
        }
        if mv >= (2, 58):
            doc["updated_at"] = views.iso_micro(a.finish_time or a.start_time)
        if events:
            doc["events"] = [
                {
                    "event": f"compute_{a.action}",
                    "start_time": views.iso_micro(a.start_time),
                    "finish_time": views.iso_micro(a.finish_time),
                    "result": a.result,
                    **({"host": s.host, "hostId": ""} if mv >= (2, 62) else {}),
                }
            ]
        return doc

    @nova(site)
    async def instance_actions(request: Request, ctx: Ctx, mv: Version) -> Response:
        s = state.get_server(request.path_params["id"], ctx)
        acts = list(reversed(state.actions.get(s.id, [])))
        return json_response(
            {"instanceActions": [_action_doc(s, a, mv, events=False) for a in acts]}
        )

    @nova(site)
    async def instance_action(request: Request, ctx: Ctx, mv: Version) -> Response:
        s = state.get_server(request.path_params["id"], ctx)
        rid = request.path_params["rid"]
        for a in state.actions.get(s.id, []):
            if a.request_id == rid:
                return json_response({"instanceAction": _action_doc(s, a, mv, events=True)})
        raise ApiError(404, f"Action {rid} on instance {s.id} could not be found.")

    # -- volume attachments ---------------------------------------------------------------
    def _attachment(s: Server, vid: str, dev: str, dot: bool, mv: Version) -> dict[str, Any]:
        doc: dict[str, Any] = {"id": vid, "volumeId": vid, "serverId": s.id, "device": dev}
        if mv >= (2, 70):
            doc["tag"] = None
        if mv >= (2, 79):
            doc["delete_on_termination"] = dot
        if mv >= (2, 89):
            doc["attachment_id"] = vid
            doc["bdm_uuid"] = vid
            del doc["id"]
        return doc

    @nova(site)
    async def attachments(request: Request, ctx: Ctx, mv: Version) -> Response:
        s = state.get_server(request.path_params["id"], ctx)
        if request.method == "GET":
            return json_response(
                {"volumeAttachments": [_attachment(s, v, d, t, mv) for v, d, t in s.volumes]}
            )
        body = body_key(await read_json(request), "volumeAttachment")
        vid = body.get("volumeId")
        if not isinstance(vid, str) or not vid:
            raise ApiError(
                400,
                "Invalid input for field/attribute volumeId. Value: None. 'volumeId' is a required property",
            )
        lifecycle.check_lock(s, ctx)
        lifecycle.check_state(s, "attach_volume", ("active", "stopped", "paused", "suspended"))
        if any(v == vid for v, _d, _t in s.volumes):
            raise ApiError(400, f"Invalid volume: volume {vid} already attached")
        vol_api = site.volume
        try:
            vol = vol_api.get(vid)
        except AttributeError as exc:
            raise ApiError(503, "The block storage service is not available.") from exc
        except ApiError as exc:
            raise ApiError(404, f"Volume {vid} could not be found.") from exc
        if getattr(vol, "status", "available") != "available":
            raise ApiError(
                400,
                f"Invalid volume: volume '{vid}' status must be 'available'. Currently in '{vol.status}'",
            )
        used = {d for _v, d, _t in s.volumes}
        device = body.get("device") or next(
            f"/dev/vd{c}" for c in "bcdefghijklmnopqrstuvwxyz" if f"/dev/vd{c}" not in used
        )
        dot = bool(body.get("delete_on_termination", False)) if mv >= (2, 79) else False
        vol_api.attach(vid, s.id, s.host or "", device)
        s.volumes.append((vid, device, dot))
        state.record_action(s, "attach_volume", ctx)
        state.touch(s)
        return json_response({"volumeAttachment": _attachment(s, vid, device, dot, mv)})

    @nova(site)
    async def attachment(request: Request, ctx: Ctx, mv: Version) -> Response:
        s = state.get_server(request.path_params["id"], ctx)
        vid = request.path_params["vid"]
        found = [(v, d, t) for v, d, t in s.volumes if v == vid]
        if not found:
            raise (
                ApiError(404, f"Volume {vid} is not attached to the instance {s.id}.")
                if request.method != "GET"
                else ApiError(
                    404,
                    f"Volume attachment could not be found with filter: volume_id = {vid} and instance_uuid = {s.id}.",
                )
            )
        if request.method == "GET":
            return json_response({"volumeAttachment": _attachment(s, *found[0], mv)})
        lifecycle.check_lock(s, ctx)
        if s.booted_from_volume and found[0][1] == "/dev/vda":
            raise ApiError(400, "Cannot detach a root device volume")
        site.volume.detach(vid, s.id)
        s.volumes = [x for x in s.volumes if x[0] != vid]
        state.record_action(s, "detach_volume", ctx)
        state.touch(s)
        return Response(status_code=202)

    p = f"{PREFIX}/servers"
    return [
        resource(p, GET=list_servers, POST=create),
        resource(f"{p}/detail", GET=list_detail),
        resource(f"{p}/{{id}}", GET=show, PUT=update, DELETE=delete),
        resource(f"{p}/{{id}}/metadata", GET=metadata, POST=metadata, PUT=metadata),
        resource(
            f"{p}/{{id}}/metadata/{{key}}",
            GET=metadata_item,
            PUT=metadata_item,
            DELETE=metadata_item,
        ),
        resource(f"{p}/{{id}}/os-instance-actions", GET=instance_actions),
        resource(f"{p}/{{id}}/os-instance-actions/{{rid}}", GET=instance_action),
        resource(f"{p}/{{id}}/os-volume_attachments", GET=attachments, POST=attachments),
        resource(f"{p}/{{id}}/os-volume_attachments/{{vid}}", GET=attachment, DELETE=attachment),
    ]
