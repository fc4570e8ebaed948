"""The recovery workflow (kind ``recovery``), disaster mode: the protected site is gone.

Everything comes from the verified manifests in the run's params (chosen
at submit time from the recovery site's own object store) and the recovery
site's cloud.  Steps::

    capacity ─┬ restore:<g>:<v> ...  (import the backup record, make a tagged
              │                       volume, restore the backup into it)
              ├ root:<g>:<s> ...     (image-copy: the server's copied root disk as an
              │                       image, :mod:`.image_restore`)
              ├ keypairs, secgroups:<g>, servergroups:<g>  (:mod:`.groundwork`)
              ├ ports:<g>:<s> ...    (same fixed IPs and MACs, network mapped by name;
              │                       after secgroups:<g>, in the recreated groups)
              └ boot:<g>:<s> ...     (after its ports and volumes, and after every
                    │                 server of the lower tiers -- their tier:<t>
                    │                 barrier step; attach data volumes)
                    └ verify:<g>:<s> (the Verifier port)  ─ report

Flavors, images, volume types and networks are the ones the plan check
resolved at submit time (``params["resolved"]``, :mod:`.plancheck`).
Every cloud create is tagged with the run and step, so a replayed step
finds what it made (no second volume, port or server).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from liferaft.clouds.model import Backup, BackupRecord, Server
from liferaft.clouds.port import Cloud, ResourceNotFound
from liferaft.engine.clock import Clock
from liferaft.engine.cloudsteps import ensure_port, ensure_server, ensure_volume
from liferaft.engine.executor import StepContext
from liferaft.engine.workflow import RetryPolicy, StepDef, WorkflowDef
from liferaft.errors import GiveUp, RetryLater
from liferaft.protection.checkpoint import wait_until
from liferaft.protection.replication_monitors import ReplicationMonitor

from . import image_restore, isolation, replica
from .groundwork import boot_access, groundwork_steps, port_security_groups
from .plancheck import resolved
from .turns import Turnstile
from .verifiers import Verifier
from .watch import StatusWatch

KIND = "recovery"
#: Steps of one run acting on the recovery site at once.
SITE_CONCURRENCY = 2000


@dataclass
class RecoveryDeps:
    site: str
    cloud: Cloud
    verifier: Verifier
    clock: Clock
    poll: float = 1.0
    timeout: float = 3600.0
    verify_timeout: float = 600.0
    #: Reads storage replicas (volumes protected by storage replication).
    replication: ReplicationMonitor | None = None
    #: Shared status polling (one listing per poll for all the run's waiters).
    watch: StatusWatch | None = None

    def __post_init__(self) -> None:
        if self.watch is None:
            self.watch = StatusWatch(self.cloud, self.clock, poll=self.poll)

    #: Per run: the restore turnstile and each restore step's rank.
    turns: dict[str, tuple[Turnstile, dict[str, int]]] = field(default_factory=dict)

    @property
    def watching(self) -> StatusWatch:
        assert self.watch is not None
        return self.watch

    def turnstile(self, params: dict[str, Any]) -> tuple[Turnstile, dict[str, int]]:
        run = str(params.get("run_id", ""))
        if run not in self.turns:
            ranks = {name: r for r, (_g, _v, name) in enumerate(restore_order(params))}
            self.turns[run] = (Turnstile(self.clock), ranks)
        return self.turns[run]


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
    turns, ranks = deps.turnstile(ctx.params)
    turns.mark(ranks[n] for n in ctx.results if n in ranks)  # done in an earlier attempt
    try:
        return await _restore(deps, ctx, gi, vi, turns, ranks[ctx.step])
    finally:
        turns.mark([ranks[ctx.step]])


async def _restore(
    deps: RecoveryDeps, ctx: StepContext, gi: int, vi: int, turns: Turnstile, rank: int
) -> dict[str, Any]:
    vol = ctx.params["groups"][gi]["manifest"]["volumes"][vi]
    if "image" in vol:  # the image-copy method: assembled from chunks
        return await image_restore.restore_from_chunks(deps, ctx, vol, key=f"{_gk(gi)}v{vi}")
    if "replica" in vol:  # storage replication: manage the replica, copy nothing
        return await replica.manage_replica(deps, ctx, vol)
    cloud = deps.cloud
    b = vol["backup"]
    rec = b["record"]
    record = BackupRecord(backup_service=rec["backup_service"], backup_url=rec["backup_url"])
    # The backup as last read, or None when only imported: no read-back after the
    # import (one GET per volume); its size comes from the manifest, and a restore
    # asked for before Cinder finished importing is answered below.
    backup: Backup | None = None
    backup_id = str(b["backup_id"])
    if ctx.attempt == 1:  # nothing imported by this step yet: import straight away
        try:
            backup_id = await cloud.request_import(record)
        except GiveUp as err:  # already here (an earlier run imported it): use it
            try:
                backup = await cloud.get_backup(b["backup_id"])
            except ResourceNotFound:
                raise err from None
    else:
        try:
            backup = await cloud.get_backup(b["backup_id"])  # imported by an earlier attempt
        except ResourceNotFound:
            backup_id = await cloud.request_import(record)
    if backup is None and b.get("size_gb") is None:  # an old manifest: ask the cloud
        backup = await cloud.get_backup(backup_id)
    if backup is not None:
        backup_id = backup.id
        if backup.status != "available":
            backup = await _backup_available(deps, backup_id)
    size_gb = backup.size_gb if backup is not None else int(b["size_gb"])
    target = await ensure_volume(
        ctx,
        cloud,
        name=f"{vol['name'] or vol['id'][:8]}",
        size_gb=max(int(vol["size_gb"]), size_gb),
        volume_type=resolved(ctx.params, "volume_types", vol.get("volume_type")),
        metadata={"liferaft_source": vol["id"]},
    )
    target = await deps.watching.volume(
        target.id,
        lambda x: x.status in ("available", "in-use"),
        first=target,
        failed=lambda x: x.status == "error",
        what=f"{cloud.site}: volume {target.id}",
        timeout=deps.timeout,
    )
    if target.status == "available":  # a replay restores again into the same volume
        await turns.turn(rank)  # the cloud queues restores: critical path first
        await request_restore(deps, backup_id, target.id, checked=backup is not None)
        turns.mark([rank])
        await deps.watching.volume(
            target.id,
            lambda x: x.status == "available",
            look=False,  # the volume is restoring-backup before the cloud answers
            failed=lambda x: x.status.startswith("error"),
            what=f"{cloud.site}: restore into {target.id}",
            timeout=deps.timeout,
        )
    # No progress note: the result below says the same, and a note is one more store
    # commit per volume on the controller's loop.
    return {"source": vol["id"], "volume_id": target.id, "backup_id": backup_id, "restored": True}


async def request_restore(
    deps: RecoveryDeps, backup_id: str, volume_id: str, *, checked: bool
) -> None:
    """Ask the cloud to restore ``backup_id`` into ``volume_id``.

    ``checked``: the backup was read and is ``available``.  If not (imported with no
    read-back), a refusal may only mean Cinder is still importing (a 400: the backup
    is not available yet): wait for the backup and ask once more.  Any other
    refusal stands.
    """
    cloud = deps.cloud
    try:
        await cloud.request_restore(backup_id, volume_id)
    except GiveUp:
        if checked or (await cloud.get_backup(backup_id)).status == "available":
            raise
        await _backup_available(deps, backup_id)
        await cloud.request_restore(backup_id, volume_id)


async def _backup_available(deps: RecoveryDeps, backup_id: str) -> Backup:
    cloud = deps.cloud
    return await wait_until(
        deps.clock,
        lambda: cloud.get_backup(backup_id),
        lambda x: x.status == "available",
        failed=lambda x: x.status.startswith("error"),
        what=f"{cloud.site}: imported backup {backup_id}",
        poll=deps.poll,
        timeout=deps.timeout,
    )


async def ports(deps: RecoveryDeps, ctx: StepContext, gi: int, si: int) -> list[dict[str, Any]]:
    srv = ctx.params["groups"][gi]["manifest"]["servers"][si]
    out = []
    for pi, p in enumerate(srv["ports"]):
        net = await isolation.network_for(deps.cloud, ctx, p["network_name"])
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
            security_group_ids=port_security_groups(ctx, gi, p),
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
    restored = _restored(ctx, gi)
    port_ids = [p["port_id"] for p in ctx.results[f"ports:{_gk(gi)}:s{si}"]]
    image_id = boot_volume = None
    if srv["boot"]["from"] == "volume":
        boot_volume = restored[srv["boot"]["volume_id"]]
    elif srv.get("root_disk"):  # image-copy: the guest's root disk as of the checkpoint
        image_id = ctx.results[_root_step(gi, si)]["image_id"]
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
        **boot_access(ctx, gi, srv),
    )
    server = await deps.watching.server(
        server.id,
        lambda s: s.status == "ACTIVE",
        first=server,
        failed=lambda s: s.status == "ERROR",
        what=f"{cloud.site}: server {srv['name']}",
        timeout=deps.timeout,
    )
    return {"source": srv["id"], "server_id": server.id, "name": srv["name"]}


def _root_step(gi: int, si: int) -> str:
    return f"root:{_gk(gi)}:s{si}"


async def root(deps: RecoveryDeps, ctx: StepContext, gi: int, si: int) -> dict[str, Any]:
    srv = ctx.params["groups"][gi]["manifest"]["servers"][si]
    return await image_restore.restore_root_disk(deps, ctx, srv, key=f"{_gk(gi)}s{si}")


def _restored(ctx: StepContext, gi: int) -> dict[str, str]:
    """Group ``gi``'s restored volumes so far: source volume id -> restored volume id.

    Read by step name (a group has a few volumes), not by a scan of every result of
    the run, which each boot and attach step of a large run would repeat.
    """
    out = {}
    for vi in range(len(ctx.params["groups"][gi]["manifest"]["volumes"])):
        r = ctx.results.get(f"restore:{_gk(gi)}:v{vi}")
        if r is not None:
            out[r["source"]] = r["volume_id"]
    return out


def _data_volumes(srv: dict[str, Any]) -> list[dict[str, Any]]:
    return [v for v in srv["volumes"] if v.get("boot_index") != 0]


async def attach(deps: RecoveryDeps, ctx: StepContext, gi: int, si: int) -> dict[str, Any]:
    """Attach a booted server's restored data volumes (a step of its own, so that a server
    boots as soon as its boot volume is restored, while its data volumes still restore)."""
    srv = ctx.params["groups"][gi]["manifest"]["servers"][si]
    cloud = deps.cloud
    restored = _restored(ctx, gi)
    server_id = ctx.results[f"boot:{_gk(gi)}:s{si}"]["server_id"]
    attached = []
    for v in _data_volumes(srv):
        vid = restored[v["volume_id"]]
        cur = await cloud.get_volume(vid)
        if not any(a.server_id == server_id for a in cur.attachments):
            await cloud.attach_volume(server_id, vid, device=v.get("device"))
        await deps.watching.volume(
            vid,
            lambda x: x.status == "in-use",
            failed=lambda x: x.status.startswith("error"),
            what=f"{cloud.site}: attach {vid} to {srv['name']}",
            timeout=deps.timeout,
        )
        attached.append(vid)
    return {"server_id": server_id, "attached": attached}


async def verify(deps: RecoveryDeps, ctx: StepContext, gi: int, si: int) -> dict[str, Any]:
    b = ctx.results[f"boot:{_gk(gi)}:s{si}"]
    start = deps.clock.now()
    # The first look comes from the watch's listing that saw the server boot (when
    # this controller waited for it); later looks, after a failed check, read it anew.
    seen = deps.watching.servers.seen(b["server_id"])
    while True:
        server: Server = seen or await deps.cloud.get_server(b["server_id"])
        seen = None
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
    # Each group's restore results, in one pass (a pass over every result per group was
    # quadratic: 100 groups x 15,000 results at 1,000 servers).
    restored: dict[str, list[Any]] = {}
    for k, r in ctx.results.items():
        if k.startswith("restore:"):
            restored.setdefault(k.split(":", 2)[1], []).append(r)
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
                **_replica_point(restored.get(_gk(gi), [])),
            }
            for gi, g in enumerate(p["groups"])
        ],
    }


def restore_order(params: dict[str, Any]) -> list[tuple[int, int, str]]:
    """The restores, critical path first: lower tiers first, and within a tier the largest first.

    The executor starts ready steps in their order and the cloud restores a
    bounded number of volumes at once, first come first served: a volume of
    the first tier waited on behind the last tier's would hold every tier up,
    and in a tier the longest restore finishing last sets the tier's end.
    """
    tier_of: dict[tuple[int, str], int] = {}
    for gi, _si, s in _servers(params):
        for v in s.get("volumes", []):
            key = (gi, v["volume_id"])
            tier_of[key] = min(tier_of.get(key, 1 << 30), int(s.get("tier", 0)))
        boot = s.get("boot") or {}
        if boot.get("from") == "volume":
            key = (gi, boot["volume_id"])
            tier_of[key] = min(tier_of.get(key, 1 << 30), int(s.get("tier", 0)))
    todo = [
        (tier_of.get((gi, v["id"]), 1 << 30), -int(v.get("size_gb") or 0), gi, vi)
        for gi, g in enumerate(params["groups"])
        for vi, v in enumerate(g["manifest"]["volumes"])
    ]
    return [(gi, vi, f"restore:{_gk(gi)}:v{vi}") for _t, _sz, gi, vi in sorted(todo)]


def tier_step(tier: int) -> str:
    """The barrier step after which every server of ``tier`` is up (booted, volumes attached)."""
    return f"tier:{tier}"


def _tier_up(ctx: StepContext) -> dict[str, Any]:
    return {"up_at": ctx.clock.now()}


def _replica_point(restored: list[Any]) -> dict[str, Any]:
    """A storage-replicated group's recovery point: its replicas' last applied write."""
    point = replica.group_point(restored)
    return {} if point is None else {"recovery_point": point}


def build(deps: RecoveryDeps, params: dict[str, Any]) -> WorkflowDef:
    def bind(fn: Callable[..., Any], *args: Any) -> Callable[[StepContext], Any]:
        async def run(ctx: StepContext) -> Any:
            return await fn(deps, ctx, *args)

        return run

    site = deps.site
    steps = [StepDef("capacity", bind(capacity), site=site)]
    steps += groundwork_steps(deps.cloud, params, site)
    restore_of: dict[tuple[int, str], str] = {}
    servers = _servers(params)
    for gi, vi, name in restore_order(params):
        restore_of[(gi, params["groups"][gi]["manifest"]["volumes"][vi]["id"])] = name
        steps.append(StepDef(name, bind(restore, gi, vi), depends_on=("capacity",), site=site))
    tiers = sorted({int(s.get("tier", 0)) for _, _, s in servers})
    before_ports: tuple[str, ...] = ("capacity",)
    if params.get("mode") == "test":  # isolated copies of the networks (isolation.py)
        steps.append(
            StepDef(
                isolation.STEP,
                lambda ctx: isolation.isolate(deps.cloud, ctx),
                depends_on=("capacity",),
                site=site,
            )
        )
        before_ports = (isolation.STEP,)
    for gi, si, _s in servers:
        steps.append(
            StepDef(
                f"ports:{_gk(gi)}:s{si}",
                bind(ports, gi, si),
                depends_on=(*before_ports, f"secgroups:{_gk(gi)}"),
                site=site,
            )
        )

    def up(gi: int, si: int, s: dict[str, Any]) -> str:
        """The step after which a server is up: booted, its data volumes attached."""
        return f"{'attach' if _data_volumes(s) else 'boot'}:{_gk(gi)}:s{si}"

    # One barrier step per tier that has a next one (every server of it up): the next
    # tier's boots wait on it, not on each server of the tier -- that made the step
    # graph quadratic in the servers (300 boots x 600 dependencies at 1,000 servers).
    for lower_tier in tiers[:-1]:
        steps.append(
            StepDef(
                tier_step(lower_tier),
                _tier_up,
                depends_on=tuple(
                    up(gi, si, s) for gi, si, s in servers if int(s.get("tier", 0)) == lower_tier
                ),
            )
        )
    for gi, si, s in servers:
        if s.get("root_disk") and s["boot"]["from"] == "image":  # image-copy's root disk
            steps.append(
                StepDef(_root_step(gi, si), bind(root, gi, si), depends_on=("capacity",), site=site)
            )
    for gi, si, s in servers:
        tier = int(s.get("tier", 0))
        lower = [t for t in tiers if t < tier]
        prev = [tier_step(lower[-1])] if lower else []
        data = {v["volume_id"] for v in _data_volumes(s)}
        boots = [
            restore_of[(gi, v["volume_id"])]
            for v in s["volumes"]
            if (gi, v["volume_id"]) in restore_of and v["volume_id"] not in data
        ]
        steps.append(
            StepDef(
                f"boot:{_gk(gi)}:s{si}",
                bind(boot, gi, si),
                depends_on=(
                    f"ports:{_gk(gi)}:s{si}",
                    "keypairs",
                    f"servergroups:{_gk(gi)}",
                    *boots,
                    *((_root_step(gi, si),) if s.get("root_disk") else ()),
                    *prev,
                ),
                site=site,
            )
        )
        if data:
            steps.append(
                StepDef(
                    f"attach:{_gk(gi)}:s{si}",
                    bind(attach, gi, si),
                    depends_on=(
                        f"boot:{_gk(gi)}:s{si}",
                        *(restore_of[(gi, v)] for v in sorted(data) if (gi, v) in restore_of),
                    ),
                    site=site,
                )
            )
        steps.append(
            StepDef(
                f"verify:{_gk(gi)}:s{si}",
                bind(verify, gi, si),
                depends_on=(up(gi, si, s),),
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
        # Steps mostly wait on the cloud (restores, builds), which queues what it cannot
        # start yet: a low bound here would serialize a large recovery for nothing.
        site_concurrency=SITE_CONCURRENCY,
        retry=RetryPolicy(max_attempts=6, initial=2.0, max_delay=60.0),
    )
