"""The recovery workflow (kind ``recovery``), disaster mode: the protected site is gone.

Everything comes from the verified manifests in the run's params (chosen
at submit time from the recovery site's own object store) and the recovery
site's cloud.  Steps::

    capacity ─┬ restore:<g>:<v> ...  (import the backup record, make a tagged
              │                       volume, restore the backup into it)
              ├ ports:<g>:<s> ...    (same fixed IPs and MACs, network mapped by name)
              └ boot:<g>:<s> ...     (after its ports and volumes, and after every
                    │                 server of the lower tiers; attach data volumes)
                    └ verify:<g>:<s> (the Verifier port)  ─ report

Every cloud create is tagged with the run and step, so a replayed step
finds what it made (no second volume, port or server).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from liferaft.clouds.model import BackupRecord, Server
from liferaft.clouds.port import Cloud, ResourceNotFound
from liferaft.engine.clock import Clock
from liferaft.engine.cloudsteps import ensure_port, ensure_server, ensure_volume
from liferaft.engine.executor import StepContext
from liferaft.engine.workflow import RetryPolicy, StepDef, WorkflowDef
from liferaft.errors import GiveUp, RetryLater
from liferaft.protection.checkpoint import wait_until

from . import image_restore
from .plancheck import resolved
from .verifiers import Verifier

KIND = "recovery"


@dataclass
class RecoveryDeps:
    site: str
    cloud: Cloud
    verifier: Verifier
    clock: Clock
    poll: float = 1.0
    timeout: float = 3600.0
    verify_timeout: float = 600.0


def _gk(gi: int) -> str:
    return f"g{gi}"


def _servers(params: dict[str, Any]) -> list[tuple[int, int, dict[str, Any]]]:
    return [
        (gi, si, s)
        for gi, g in enumerate(params["groups"])
        for si, s in enumerate(g["manifest"]["servers"])
    ]


async def capacity(deps: RecoveryDeps, ctx: StepContext) -> dict[str, Any]:
    need_vcpu = sum(int(s.get("vcpus") or 0) for _, _, s in _servers(ctx.params))
    need_ram = sum(int(s.get("ram_mb") or 0) for _, _, s in _servers(ctx.params))
    providers = await deps.cloud.capacity()
    free_vcpu = sum(p.free("VCPU") for p in providers)
    free_ram = sum(p.free("MEMORY_MB") for p in providers)
    if need_vcpu > free_vcpu or need_ram > free_ram:
        raise GiveUp(
            f"{deps.site} lacks room: the plan needs {need_vcpu} VCPU and {need_ram} MB, "
            f"Placement has {free_vcpu:g} VCPU and {free_ram:g} MB free"
        )
    return {"vcpu": [need_vcpu, free_vcpu], "ram_mb": [need_ram, free_ram]}


async def restore(deps: RecoveryDeps, ctx: StepContext, gi: int, vi: int) -> dict[str, Any]:
    vol = ctx.params["groups"][gi]["manifest"]["volumes"][vi]
    if "image" in vol:  # the image-copy method: assembled from chunks
        return await image_restore.restore_from_chunks(deps, ctx, vol, key=f"{_gk(gi)}v{vi}")
    cloud = deps.cloud
    b = vol["backup"]
    try:
        backup = await cloud.get_backup(b["backup_id"])  # imported by an earlier attempt
    except ResourceNotFound:
        rec = b["record"]
        backup = await cloud.import_backup_record(
            BackupRecord(backup_service=rec["backup_service"], backup_url=rec["backup_url"])
        )
    backup = await wait_until(
        deps.clock,
        lambda: cloud.get_backup(backup.id),
        lambda x: x.status == "available",
        failed=lambda x: x.status.startswith("error"),
        what=f"{cloud.site}: imported backup {backup.id}",
        poll=deps.poll,
        timeout=deps.timeout,
    )
    target = await ensure_volume(
        ctx,
        cloud,
        name=f"{vol['name'] or vol['id'][:8]}",
        size_gb=max(int(vol["size_gb"]), backup.size_gb),
        volume_type=resolved(ctx.params, "volume_types", vol.get("volume_type")),
        metadata={"liferaft_source": vol["id"]},
    )
    target = await wait_until(
        deps.clock,
        lambda: cloud.get_volume(target.id),
        lambda x: x.status in ("available", "in-use"),
        failed=lambda x: x.status == "error",
        what=f"{cloud.site}: volume {target.id}",
        poll=deps.poll,
        timeout=deps.timeout,
    )
    if target.status == "available":  # a replay restores again into the same volume
        await cloud.restore_backup(backup.id, volume_id=target.id)
        await wait_until(
            deps.clock,
            lambda: cloud.get_volume(target.id),
            lambda x: x.status == "available",
            failed=lambda x: x.status.startswith("error"),
            what=f"{cloud.site}: restore into {target.id}",
            poll=deps.poll,
            timeout=deps.timeout,
        )
    ctx.note(volume=vol["id"], restored_as=target.id)
    return {"source": vol["id"], "volume_id": target.id, "backup_id": backup.id, "restored": True}


async def ports(deps: RecoveryDeps, ctx: StepContext, gi: int, si: int) -> list[dict[str, Any]]:
    srv = ctx.params["groups"][gi]["manifest"]["servers"][si]
    out = []
    for pi, p in enumerate(srv["ports"]):
        net = resolved(ctx.params, "networks", p["network_name"]) or await deps.cloud.find_network(
            p["network_name"]
        )
        if net is None:
            raise GiveUp(
                f"{deps.site}: no network named {p['network_name']!r} for port {p['id']} "
                f"of server {srv['name']}"
            )
        port = await ensure_port(
            ctx,
            deps.cloud,
            name=f"{srv['name']}-p{pi}",
            network_id=net,
            fixed_ips=[(None, f["ip_address"]) for f in p["fixed_ips"]],
            mac_address=p["mac_address"],
        )
        out.append(
            {
                "source": p["id"],
                "port_id": port.id,
                "mac": port.mac_address,
                "ips": [f.ip_address for f in port.fixed_ips],
            }
        )
    return out


async def boot(deps: RecoveryDeps, ctx: StepContext, gi: int, si: int) -> dict[str, Any]:
    srv = ctx.params["groups"][gi]["manifest"]["servers"][si]
    cloud = deps.cloud
    restored = {
        r["source"]: r["volume_id"]
        for k, r in ctx.results.items()
        if k.startswith(f"restore:{_gk(gi)}:")
    }
    port_ids = [p["port_id"] for p in ctx.results[f"ports:{_gk(gi)}:s{si}"]]
    image_id = boot_volume = None
    if srv["boot"]["from"] == "volume":
        boot_volume = restored[srv["boot"]["volume_id"]]
    else:
        image_id = resolved(
            ctx.params, "images", srv["boot"].get("image_name") or srv["boot"]["image_id"]
        )
        if image_id is None:
            img = await cloud.find_image(srv["boot"].get("image_name") or "")
            image_id = img.id if img is not None else srv["boot"]["image_id"]
    server = await ensure_server(
        ctx,
        cloud,
        name=srv["name"],
        flavor=resolved(ctx.params, "flavors", srv["flavor"]) or srv["flavor"],
        image_id=image_id,
        boot_volume_id=boot_volume,
        port_ids=port_ids,
        metadata={**srv.get("metadata", {}), "liferaft_source": srv["id"]},
    )
    server = await wait_until(
        deps.clock,
        lambda: cloud.get_server(server.id),
        lambda s: s.status == "ACTIVE",
        failed=lambda s: s.status == "ERROR",
        what=f"{cloud.site}: server {srv['name']}",
        poll=deps.poll,
        timeout=deps.timeout,
    )
    attached = []
    for v in srv["volumes"]:
        if v.get("boot_index") == 0:
            continue
        vid = restored[v["volume_id"]]
        cur = await cloud.get_volume(vid)
        if not any(a.server_id == server.id for a in cur.attachments):
            await cloud.attach_volume(server.id, vid, device=v.get("device"))
        await wait_until(
            deps.clock,
            lambda vid=vid: cloud.get_volume(vid),  # type: ignore[misc]
            lambda x: x.status == "in-use",
            failed=lambda x: x.status.startswith("error"),
            what=f"{cloud.site}: attach {vid} to {srv['name']}",
            poll=deps.poll,
            timeout=deps.timeout,
        )
        attached.append(vid)
    return {"source": srv["id"], "server_id": server.id, "name": srv["name"], "attached": attached}


async def verify(deps: RecoveryDeps, ctx: StepContext, gi: int, si: int) -> dict[str, Any]:
    b = ctx.results[f"boot:{_gk(gi)}:s{si}"]
    start = deps.clock.now()
    while True:
        server: Server = await deps.cloud.get_server(b["server_id"])
        verdict = await deps.verifier.check(deps.site, server)
        if verdict.ok:
            return {
                "server_id": server.id,
                "verified_at": deps.clock.now(),
                "detail": verdict.detail,
            }
        if deps.clock.now() - start > deps.verify_timeout:
            raise RetryLater(f"server {b['name']} ({server.id}) fails its check: {verdict.detail}")
        await deps.clock.sleep(deps.poll)


async def report(deps: RecoveryDeps, ctx: StepContext) -> dict[str, Any]:
    p = ctx.params
    done = max(
        (r["verified_at"] for k, r in ctx.results.items() if k.startswith("verify:")),
        default=deps.clock.now(),
    )
    servers = [r for k, r in ctx.results.items() if k.startswith("boot:")]
    volumes = [r for k, r in ctx.results.items() if k.startswith("restore:")]
    return {
        "run_id": p["run_id"],
        "rto_s": done - p["requested_at"],
        "recovered_at": done,
        "servers_recovered": len(servers),
        "volumes_recovered": len(volumes),
        "servers": servers,
        "volumes": volumes,
        "groups": [
            {
                "group": g["manifest"]["group"]["name"],
                "checkpoint_id": g["manifest"]["checkpoint_id"],
                "captured_at": g["manifest"]["captured_at"],
            }
            for g in p["groups"]
        ],
    }


def build(deps: RecoveryDeps, params: dict[str, Any]) -> WorkflowDef:
    def bind(fn: Callable[..., Any], *args: Any) -> Callable[[StepContext], Any]:
        async def run(ctx: StepContext) -> Any:
            return await fn(deps, ctx, *args)

        return run

    site = deps.site
    steps = [StepDef("capacity", bind(capacity), site=site)]
    restore_of: dict[tuple[int, str], str] = {}
    for gi, g in enumerate(params["groups"]):
        for vi, v in enumerate(g["manifest"]["volumes"]):
            name = f"restore:{_gk(gi)}:v{vi}"
            restore_of[(gi, v["id"])] = name
            steps.append(StepDef(name, bind(restore, gi, vi), depends_on=("capacity",), site=site))
    servers = _servers(params)
    tiers = sorted({int(s.get("tier", 0)) for _, _, s in servers})
    for gi, si, _s in servers:
        steps.append(
            StepDef(
                f"ports:{_gk(gi)}:s{si}", bind(ports, gi, si), depends_on=("capacity",), site=site
            )
        )
    for gi, si, s in servers:
        tier = int(s.get("tier", 0))
        lower = [t for t in tiers if t < tier]
        prev = (
            [f"boot:{_gk(g2)}:s{s2}" for g2, s2, x in servers if int(x.get("tier", 0)) == lower[-1]]
            if lower
            else []
        )
        mine = [
            restore_of[(gi, v["volume_id"])]
            for v in s["volumes"]
            if (gi, v["volume_id"]) in restore_of
        ]
        steps.append(
            StepDef(
                f"boot:{_gk(gi)}:s{si}",
                bind(boot, gi, si),
                depends_on=(f"ports:{_gk(gi)}:s{si}", *mine, *prev),
                site=site,
            )
        )
        steps.append(
            StepDef(
                f"verify:{_gk(gi)}:s{si}",
                bind(verify, gi, si),
                depends_on=(f"boot:{_gk(gi)}:s{si}",),
            )
        )
    steps.append(
        StepDef(
            "report",
            bind(report),
            depends_on=tuple(f"verify:{_gk(gi)}:s{si}" for gi, si, _ in servers) or ("capacity",),
        )
    )
    return WorkflowDef(
        KIND,
        steps,
        site_concurrency=8,
        retry=RetryPolicy(max_attempts=6, initial=2.0, max_delay=60.0),
    )
