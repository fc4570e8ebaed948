"""``POST /servers/{id}/action``: one handler that dispatches on the action's key."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from ..http import ApiError, Version, json_response, read_json
from . import lifecycle
from .api import PREFIX, nova, resource

if TYPE_CHECKING:
    from ..identity import Ctx
    from ..world import Site

_ADMIN_ACTIONS = {"evacuate"}


def routes(site: Site) -> list[BaseRoute]:
    state = site.compute

    @nova(site)
    async def action(request: Request, ctx: Ctx, mv: Version) -> Response:
        s = state.get_server(request.path_params["id"], ctx)
        body = await read_json(request)
        if not isinstance(body, dict) or len(body) != 1:
            raise ApiError(400, "Malformed request body: exactly one action is expected.")
        name, args = next(iter(body.items()))
        if name in _ADMIN_ACTIONS and not ctx.is_admin:
            raise ApiError(403, f"Policy doesn't allow os_compute_api:os-{name} to be performed.")
        if name == "os-stop":
            lifecycle.stop(state, s, ctx)
        elif name == "os-start":
            lifecycle.start(state, s, ctx)
        elif name == "reboot":
            lifecycle.reboot(state, s, ctx, _obj(args, name).get("type"))
        elif name == "evacuate":
            return _evacuate(s, ctx, mv, _obj(args, name))
        elif name == "createImage":
            args = _obj(args, name)
            image_id = lifecycle.create_image(state, s, ctx, args.get("name"), args.get("metadata"))
            location = f"{site.url}/image/v2/images/{image_id}"
            if mv >= (2, 45):
                return json_response({"image_id": image_id}, status=202)
            return Response(status_code=202, headers={"Location": location})
        elif name == "quiesce":
            lifecycle.quiesce(state, s, ctx)
        elif name == "unquiesce":
            lifecycle.unquiesce(state, s, ctx)
        elif name == "lock":
            reason = _obj(args, name, optional=True).get("locked_reason") if mv >= (2, 73) else None
            lifecycle.lock(state, s, ctx, reason)
        elif name == "unlock":
            lifecycle.unlock(state, s, ctx)
        else:
            raise ApiError(400, f"There is no such action: {name}")
        return Response(status_code=202)

    def _evacuate(s: Any, ctx: Ctx, mv: Version, args: dict[str, Any]) -> Response:
        target = args.get("host")
        if target is not None and not isinstance(target, str):
            raise ApiError(400, f"Invalid input for field/attribute host. Value: {target}.")
        allowed = {"host", "adminPass"}
        if mv < (2, 14):
            allowed.add("onSharedStorage")
        if (2, 29) <= mv < (2, 68):
            allowed.add("force")
        extra = set(args) - allowed
        if extra:
            raise ApiError(
                400,
                "Invalid input for field/attribute evacuate. Additional properties are not "
                f"allowed ({', '.join(repr(k) for k in sorted(extra))} was unexpected)",
            )
        force = bool(args.get("force", False)) if target is not None else False
        lifecycle.evacuate(state, s, ctx, mv, target=target, force=force)
        if mv >= (2, 14):
            return Response(status_code=200)
        return json_response({"adminPass": args.get("adminPass") or lifecycle.new_admin_pass()})

    return [resource(f"{PREFIX}/servers/{{id}}/action", POST=action)]


def _obj(args: Any, name: str, *, optional: bool = False) -> dict[str, Any]:
    if args is None and optional:
        return {}
    if not isinstance(args, dict):
        raise ApiError(
            400,
            f"Invalid input for field/attribute {name}. Value: {args}. {args!r} is not of type 'object'",
        )
    return args
