"""Operator APIs: ``os-services`` (incl. force-down), ``os-hypervisors``, ``os-availability-zone``.

Force-down comes in both of Nova's forms: from microversion 2.53
``PUT /os-services/{uuid}`` with ``forced_down``/``status``/``disabled_reason``;
before it ``PUT /os-services/{force-down|enable|disable|disable-log-reason}``
with ``host`` and ``binary`` in the body.  Lifting force-down is refused
(400) while evacuations from the host are ``done`` but the host's compute
service has not restarted since (see ``Host.evacuations``), as Nova does.
"""

from __future__ import annotations

import re
import uuid
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute

from ..http import ApiError, Version, json_response, paginate, read_json
from . import views
from .api import PREFIX, nova, resource
from .records import Host
from .state import ZONE

if TYPE_CHECKING:
    from ..identity import Ctx
    from ..world import Site

BINARY = "nova-compute"


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def routes(site: Site) -> list[BaseRoute]:
    state = site.compute

    def force_down(host: Host, forced: bool) -> None:
        if not forced and "done" in host.evacuations.values():
            # Nova's _check_for_evacuations answers 400 (its own note plans a 409 for a
            # later microversion)
            raise ApiError(
                400,
                f"Unable to force up host {host.name} as `done` evacuation migration records "
                "remain associated with the host. Ensure the compute service has been "
                "restarted, allowing these records to move to `completed` before retrying "
                "this request.",
            )
        if host.forced_down != forced:
            host.forced_down = forced
            site.world.writelog.record(
                state.now(), "force_down", site.name, host=host.name, forced_down=forced
            )

    # -- os-services ------------------------------------------------------------------
    @nova(site, admin=True)
    async def list_services(request: Request, ctx: Ctx, mv: Version) -> Response:
        qp = request.query_params
        binary, host = qp.get("binary"), qp.get("host")
        hosts = [
            h
            for h in state.hosts.values()
            if (host is None or h.name == host) and binary in (None, BINARY)
        ]
        return json_response({"services": [views.service(state, h, mv) for h in hosts]})

    @nova(site, admin=True)
    async def update_service(request: Request, ctx: Ctx, mv: Version) -> Response:
        ident = request.path_params["id"]
        body = await read_json(request)
        if not isinstance(body, dict):
            raise ApiError(400, "Invalid input for field/attribute body: an object is required.")
        if mv >= (2, 53):
            return _update_by_id(ident, body, mv)
        return _legacy_action(ident, body, mv)

    def _update_by_id(ident: str, body: dict[str, Any], mv: Version) -> Response:
        if not _is_uuid(ident):
            raise ApiError(400, f"Invalid uuid {ident}")
        host = state.host_by_service_id(ident)
        extra = set(body) - {"status", "disabled_reason", "forced_down"}
        if extra:
            raise ApiError(
                400,
                "Invalid input for field/attribute service. Additional properties are not "
                f"allowed ({', '.join(repr(k) for k in sorted(extra))} was unexpected)",
            )
        status = body.get("status")
        if status is None and "forced_down" not in body:
            raise ApiError(400, "At least one of 'status' or 'forced_down' should be specified.")
        if status not in (None, "enabled", "disabled"):
            raise ApiError(
                400,
                f"Invalid input for field/attribute status. Value: {status}. '{status}' is not one of ['enabled', 'disabled']",
            )
        reason = body.get("disabled_reason")
        if reason is not None:
            if status != "disabled":
                raise ApiError(
                    400, "Specifying 'disabled_reason' with status 'enabled' is invalid."
                )
            if not isinstance(reason, str) or not 0 < len(reason) <= 255:
                raise ApiError(
                    400, f"Invalid input for field/attribute disabled_reason. Value: {reason}."
                )
        forced = body.get("forced_down")
        if forced is not None and not isinstance(forced, bool):
            raise ApiError(
                400,
                f"Invalid input for field/attribute forced_down. Value: {forced}. {forced!r} is not of type 'boolean'",
            )
        if forced is not None:
            force_down(host, forced)  # first: it may refuse the whole update
        if status is not None:
            host.disabled = status == "disabled"
            host.disabled_reason = reason if host.disabled else None
        return json_response({"service": views.service(state, host, mv)})

    def _legacy_action(action: str, body: dict[str, Any], mv: Version) -> Response:
        actions = {"enable", "disable", "disable-log-reason"}
        if mv >= (2, 11):
            actions.add("force-down")
        if action not in actions:
            raise ApiError(404, "Unknown action")
        host_name, binary = body.get("host"), body.get("binary")
        if not isinstance(host_name, str) or not isinstance(binary, str):
            raise ApiError(
                400,
                "Invalid input for field/attribute: 'host' and 'binary' are required properties",
            )
        host = state.hosts.get(host_name)
        if host is None or binary != BINARY:
            raise ApiError(404, f"Could not find binary {binary} on host {host_name}.")
        doc: dict[str, Any] = {"host": host.name, "binary": binary}
        if action == "force-down":
            forced = body.get("forced_down")
            if not isinstance(forced, bool):
                raise ApiError(
                    400,
                    f"Invalid input for field/attribute forced_down. Value: {forced}. {forced!r} is not of type 'boolean'",
                )
            force_down(host, forced)
            doc["forced_down"] = forced
        elif action == "enable":
            host.disabled, host.disabled_reason = False, None
            doc["status"] = "enabled"
        else:
            reason = body.get("disabled_reason") if action == "disable-log-reason" else None
            if action == "disable-log-reason" and (not isinstance(reason, str) or not reason):
                raise ApiError(400, "Missing disabled reason field")
            host.disabled, host.disabled_reason = True, reason
            doc["status"] = "disabled"
            if reason is not None:
                doc["disabled_reason"] = reason
        return json_response({"service": doc})

    # -- os-hypervisors --------------------------------------------------------------------
    def _hyp_list(request: Request, mv: Version, *, detail: bool) -> Response:
        qp = request.query_params
        hosts = list(state.hosts.values())
        pattern = qp.get("hypervisor_hostname_pattern")
        if pattern is not None:
            if mv < (2, 53):
                raise ApiError(
                    400, "Query parameter hypervisor_hostname_pattern is not supported before 2.53"
                )
            hosts = [h for h in hosts if pattern in h.name]
            if not hosts:
                raise ApiError(404, f"No hypervisor matching '{pattern}' could be found.")
        with_servers = mv >= (2, 53) and qp.get("with_servers", "").lower() in (
            "1",
            "true",
            "yes",
            "on",
        )
        ident = (lambda h: h.hypervisor_id) if mv >= (2, 53) else (lambda h: str(h.index))
        page, nxt = paginate(hosts, request, ident=ident, links_key="hypervisors")
        body: dict[str, Any] = {
            "hypervisors": [
                views.hypervisor(state, h, mv, detail=detail, servers=with_servers) for h in page
            ]
        }
        if nxt and mv >= (2, 33):
            body["hypervisors_links"] = nxt
        return json_response(body)

    @nova(site, admin=True)
    async def hypervisors(request: Request, ctx: Ctx, mv: Version) -> Response:
        return _hyp_list(request, mv, detail=False)

    @nova(site, admin=True)
    async def hypervisors_detail(request: Request, ctx: Ctx, mv: Version) -> Response:
        return _hyp_list(request, mv, detail=True)

    def _hypervisor(ident: str, mv: Version) -> Host:
        for h in state.hosts.values():
            if (mv >= (2, 53) and h.hypervisor_id == ident) or (
                mv < (2, 53) and str(h.index) == ident
            ):
                return h
        if mv >= (2, 53) and not _is_uuid(ident):
            raise ApiError(400, f"Invalid uuid {ident}")
        raise ApiError(404, f"Hypervisor with ID '{ident}' could not be found.")

    @nova(site, admin=True)
    async def show_hypervisor(request: Request, ctx: Ctx, mv: Version) -> Response:
        h = _hypervisor(request.path_params["id"], mv)
        with_servers = mv >= (2, 53) and request.query_params.get("with_servers", "").lower() in (
            "1",
            "true",
        )
        return json_response(
            {"hypervisor": views.hypervisor(state, h, mv, detail=True, servers=with_servers)}
        )

    @nova(site, admin=True)
    async def hypervisor_servers(request: Request, ctx: Ctx, mv: Version) -> Response:
        if mv >= (2, 53):
            raise ApiError(404, "The resource could not be found.")
        pattern = request.path_params["pattern"]
        hosts = [h for h in state.hosts.values() if re.search(re.escape(pattern), h.name)]
        if not hosts:
            raise ApiError(404, f"No hypervisor matching '{pattern}' could be found.")
        servers = request.url.path.endswith("/servers")
        return json_response(
            {
                "hypervisors": [
                    views.hypervisor(state, h, mv, detail=False, servers=servers) for h in hosts
                ]
            }
        )

    @nova(site, admin=True)
    async def statistics(request: Request, ctx: Ctx, mv: Version) -> Response:
        if mv >= (2, 88):
            raise ApiError(404, "The resource could not be found.")
        hs = list(state.hosts.values())
        stats = {
            "count": len(hs),
            "vcpus": sum(h.vcpus for h in hs),
            "memory_mb": sum(h.ram_mb for h in hs),
            "local_gb": sum(h.disk_gb for h in hs),
            "vcpus_used": sum(h.vcpus_used for h in hs),
            "memory_mb_used": sum(h.ram_used for h in hs),
            "local_gb_used": sum(h.disk_used for h in hs),
            "free_ram_mb": sum(h.ram_mb - h.ram_used for h in hs),
            "free_disk_gb": sum(h.disk_gb - h.disk_used for h in hs),
            "current_workload": sum(h.building for h in hs),
            "running_vms": sum(len(h.servers) for h in hs),
            "disk_available_least": sum(h.disk_gb - h.disk_used for h in hs),
        }
        return json_response({"hypervisor_statistics": stats})

    # -- os-availability-zone ---------------------------------------------------------------
    @nova(site)
    async def zones(request: Request, ctx: Ctx, mv: Version) -> Response:
        return json_response(
            {
                "availabilityZoneInfo": [
                    {"zoneName": ZONE, "zoneState": {"available": True}, "hosts": None}
                ]
            }
        )

    @nova(site, admin=True)
    async def zones_detail(request: Request, ctx: Ctx, mv: Version) -> Response:
        now = state.now()
        hosts = {
            h.name: {
                BINARY: {
                    "available": h.service_up(now) and not h.disabled,
                    "active": not h.disabled,
                    "updated_at": views.iso_micro(h.updated_at(now)),
                }
            }
            for h in state.hosts.values()
        }
        return json_response(
            {
                "availabilityZoneInfo": [
                    {"zoneName": ZONE, "zoneState": {"available": True}, "hosts": hosts}
                ]
            }
        )

    return [
        resource(f"{PREFIX}/os-services", GET=list_services),
        resource(f"{PREFIX}/os-services/{{id}}", PUT=update_service),
        resource(f"{PREFIX}/os-hypervisors", GET=hypervisors),
        resource(f"{PREFIX}/os-hypervisors/detail", GET=hypervisors_detail),
        resource(f"{PREFIX}/os-hypervisors/statistics", GET=statistics),
        resource(f"{PREFIX}/os-hypervisors/{{pattern}}/search", GET=hypervisor_servers),
        resource(f"{PREFIX}/os-hypervisors/{{pattern}}/servers", GET=hypervisor_servers),
        resource(f"{PREFIX}/os-hypervisors/{{id}}", GET=show_hypervisor),
        resource(f"{PREFIX}/os-availability-zone", GET=zones),
        resource(f"{PREFIX}/os-availability-zone/detail", GET=zones_detail),
    ]
