"""The Placement API of a simulated site (read side), under ``/placement``.

Placement's data here is a view of the compute state, so it can never
drift from where servers really are: one resource provider per compute host
(its UUID is the hypervisor's), inventories of VCPU, MEMORY_MB and DISK_GB
with Nova's allocation ratios, and one consumer per server holding the
resources of its flavor on its host (no DISK_GB for a volume-backed server).
Every claim or release bumps the provider's generation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from .. import service
from ..http import ApiError, Version, error_response, fmt_version, json_response, microversion
from .records import (
    CPU_ALLOCATION_RATIO,
    DISK_ALLOCATION_RATIO,
    RAM_ALLOCATION_RATIO,
    Host,
    Server,
)
from .scheduler import demand

if TYPE_CHECKING:
    from ..identity import Ctx
    from ..world import Site

MIN_VERSION: Version = (1, 0)
MAX_VERSION: Version = (1, 39)
PREFIX = "/placement"

STANDARD_CLASSES = ("VCPU", "MEMORY_MB", "DISK_GB", "PCI_DEVICE", "SRIOV_NET_VF", "IPV4_ADDRESS")

Handler = Callable[[Request, "Ctx", Version], Awaitable[Response]]


def inventories(h: Host) -> dict[str, dict[str, Any]]:
    def inv(total: int, ratio: float) -> dict[str, Any]:
        return {
            "total": total,
            "reserved": 0,
            "min_unit": 1,
            "max_unit": total,
            "step_size": 1,
            "allocation_ratio": ratio,
        }

    return {
        "VCPU": inv(h.vcpus, CPU_ALLOCATION_RATIO),
        "MEMORY_MB": inv(h.ram_mb, RAM_ALLOCATION_RATIO),
        "DISK_GB": inv(h.disk_gb, DISK_ALLOCATION_RATIO),
    }


def usages(h: Host) -> dict[str, int]:
    return {"VCPU": h.vcpus_used, "MEMORY_MB": h.ram_used, "DISK_GB": h.disk_used}


def server_resources(s: Server) -> dict[str, int]:
    cpu, ram, disk = demand(s.flavor, volume_backed=s.booted_from_volume)
    out = {"VCPU": cpu, "MEMORY_MB": ram, "DISK_GB": disk}
    return {k: v for k, v in out.items() if v}


def routes(site: Site) -> list[BaseRoute]:
    state = site.compute

    def api(fn: Handler) -> Callable[[Request], Awaitable[Response]]:
        async def inner(request: Request, ctx: Ctx) -> Response:
            mv = microversion(request, "placement", MIN_VERSION, MAX_VERSION)
            resp = await fn(request, ctx, mv)
            resp.headers["OpenStack-API-Version"] = f"placement {fmt_version(mv)}"
            resp.headers["Vary"] = "openstack-api-version"
            return resp

        inner.__name__ = fn.__name__
        return service.endpoint(site, "placement", admin=True)(inner)

    def rp_doc(h: Host, mv: Version) -> dict[str, Any]:
        base = f"{PREFIX}/resource_providers/{h.hypervisor_id}"
        doc: dict[str, Any] = {
            "uuid": h.hypervisor_id,
            "name": h.name,
            "generation": h.generation,
            "links": [
                {"rel": "self", "href": base},
                {"rel": "inventories", "href": f"{base}/inventories"},
                {"rel": "usages", "href": f"{base}/usages"},
            ],
        }
        if mv >= (1, 11):
            doc["links"].append({"rel": "allocations", "href": f"{base}/allocations"})
        if mv >= (1, 14):
            doc["parent_provider_uuid"] = None
            doc["root_provider_uuid"] = h.hypervisor_id
        return doc

    def provider(uuid: str) -> Host:
        for h in state.hosts.values():
            if h.hypervisor_id == uuid:
                return h
        raise ApiError(404, f"No resource provider with uuid {uuid} found")

    @service.public(site, "placement")
    async def root(request: Request) -> Response:
        doc = {
            "versions": [
                {
                    "id": "v1.0",
                    "max_version": fmt_version(MAX_VERSION),
                    "min_version": fmt_version(MIN_VERSION),
                    "status": "CURRENT",
                    "links": [{"rel": "self", "href": ""}],
                }
            ]
        }
        return json_response(doc)

    @api
    async def list_providers(request: Request, ctx: Ctx, mv: Version) -> Response:
        qp = request.query_params
        hosts = [
            h
            for h in state.hosts.values()
            if qp.get("name") in (None, h.name) and qp.get("uuid") in (None, h.hypervisor_id)
        ]
        return json_response({"resource_providers": [rp_doc(h, mv) for h in hosts]})

    @api
    async def show_provider(request: Request, ctx: Ctx, mv: Version) -> Response:
        return json_response(rp_doc(provider(request.path_params["uuid"]), mv))

    @api
    async def provider_inventories(request: Request, ctx: Ctx, mv: Version) -> Response:
        h = provider(request.path_params["uuid"])
        return json_response(
            {"inventories": inventories(h), "resource_provider_generation": h.generation}
        )

    @api
    async def provider_inventory(request: Request, ctx: Ctx, mv: Version) -> Response:
        h = provider(request.path_params["uuid"])
        rc = request.path_params["rc"]
        inv = inventories(h).get(rc)
        if inv is None:
            raise ApiError(404, f"No inventory of class {rc} for {h.hypervisor_id}")
        return json_response({**inv, "resource_provider_generation": h.generation})

    @api
    async def provider_usages(request: Request, ctx: Ctx, mv: Version) -> Response:
        h = provider(request.path_params["uuid"])
        return json_response({"usages": usages(h), "resource_provider_generation": h.generation})

    @api
    async def provider_allocations(request: Request, ctx: Ctx, mv: Version) -> Response:
        h = provider(request.path_params["uuid"])
        allocs = {
            sid: {"resources": server_resources(state.servers[sid])}
            for sid in sorted(h.servers)
            if sid in state.servers
        }
        return json_response({"allocations": allocs, "resource_provider_generation": h.generation})

    @api
    async def consumer_allocations(request: Request, ctx: Ctx, mv: Version) -> Response:
        s = state.servers.get(request.path_params["consumer"])
        allocs: dict[str, Any] = {}
        body: dict[str, Any] = {"allocations": allocs}
        if s is not None and s.host is not None:
            h = state.hosts[s.host]
            if s.id in h.servers:
                allocs[h.hypervisor_id] = {
                    "generation": h.generation,
                    "resources": server_resources(s),
                }
            if mv >= (1, 12):
                body["project_id"] = s.project_id
                body["user_id"] = s.user_id
            if mv >= (1, 28):
                body["consumer_generation"] = 1
        return json_response(body)

    @api
    async def project_usages(request: Request, ctx: Ctx, mv: Version) -> Response:
        if mv < (1, 9):
            raise ApiError(404, "The resource could not be found.")
        project = request.query_params.get("project_id")
        if not project:
            raise ApiError(
                400, "Invalid query string parameters: 'project_id' is a required property"
            )
        user = request.query_params.get("user_id")
        totals = {"VCPU": 0, "MEMORY_MB": 0, "DISK_GB": 0}
        for s in state.servers.values():
            if s.project_id != project or (user and s.user_id != user):
                continue
            if s.host is None or s.id not in state.hosts[s.host].servers:
                continue
            for k, v in server_resources(s).items():
                totals[k] += v
        return json_response({"usages": {k: v for k, v in totals.items() if v}})

    @api
    async def resource_classes(request: Request, ctx: Ctx, mv: Version) -> Response:
        return json_response(
            {
                "resource_classes": [
                    {
                        "name": rc,
                        "links": [{"rel": "self", "href": f"{PREFIX}/resource_classes/{rc}"}],
                    }
                    for rc in STANDARD_CLASSES
                ]
            }
        )

    async def unknown(request: Request) -> Response:
        return error_response(ApiError(404, "The resource could not be found."), "placement")

    rp = f"{PREFIX}/resource_providers/{{uuid}}"
    return [
        Route(PREFIX, root, methods=["GET"]),
        Route(f"{PREFIX}/", root, methods=["GET"]),
        Route(f"{PREFIX}/resource_providers", list_providers, methods=["GET"]),
        Route(rp, show_provider, methods=["GET"]),
        Route(f"{rp}/inventories", provider_inventories, methods=["GET"]),
        Route(f"{rp}/inventories/{{rc}}", provider_inventory, methods=["GET"]),
        Route(f"{rp}/usages", provider_usages, methods=["GET"]),
        Route(f"{rp}/allocations", provider_allocations, methods=["GET"]),
        Route(f"{PREFIX}/allocations/{{consumer}}", consumer_allocations, methods=["GET"]),
        Route(f"{PREFIX}/usages", project_usages, methods=["GET"]),
        Route(f"{PREFIX}/resource_classes", resource_classes, methods=["GET"]),
        Route(f"{PREFIX}/{{rest:path}}", unknown),
    ]
