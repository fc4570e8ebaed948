"""The checkpoint workflow (kind ``checkpoint``): one consistent recovery point of a group.

Steps (each idempotent; cloud creates are found by their run/step tag on replay)::

    describe ─ capture ─┬ backup:<volume> ┬─ export ─ manifest ─ cleanup ─ retention
                        └ backup:<volume> ┘

* ``describe``: what the manifest needs to rebuild the group (servers,
  ports, volumes, attachments), read from the protected site;
* ``capture``: quiesce the servers in the group's order through the
  Quiescer port, snapshot every volume, unquiesce in reverse (always, even
  when a snapshot fails); without a quiescer the snapshots are
  crash-consistent;
* ``backup:<volume>``: an incremental backup of the snapshot (full for the
  first checkpoint of a chain); the site's backup service ships it to the
  recovery site's object store;
* ``export``: each backup's record, which the recovery site imports;
* ``manifest``: the signed manifest, written to the recovery site's object
  store next to the data; the checkpoint becomes ``complete``;
* ``cleanup``: the snapshots at the protected site are deleted;
* with ``method: image-copy`` the capture makes images instead (of the
  volumes, and of the root disks of servers booted from an image), copied
  by ``copy:<i>`` and ``copy-root:<j>`` steps (:mod:`.image_copy`);
* ``retention``: older checkpoints are pruned (:mod:`.retention`).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

from liferaft.clouds.model import Backup, Snapshot
from liferaft.clouds.port import Cloud
from liferaft.engine.clock import Clock
from liferaft.engine.cloudsteps import cloud_tag
from liferaft.engine.executor import StepContext
from liferaft.engine.idempotency import IdempotencyTag
from liferaft.engine.workflow import RetryPolicy, StepDef, WorkflowDef
from liferaft.errors import GiveUp, RetryLater

from . import image_copy
from . import manifest as mf
from .catalog import Catalog
from .inventory import KEYS as ACCESS_KEYS
from .inventory import describe_access
from .pacing import RateBoard
from .quiescers import Quiescer
from .replication_monitors import ReplicationMonitor

KIND = "checkpoint"
T = TypeVar("T")


@dataclass
class ProtectionDeps:
    """What the protection workflows act through (built by the service)."""

    site: str
    clouds: dict[str, Cloud]
    catalog: Catalog
    key: bytes
    container: str
    quiescer: Quiescer | None
    clock: Clock
    #: Reads storage replicas (the storage-replication method); None: not configured.
    replication: ReplicationMonitor | None = None
    #: Simulated seconds between two looks at a resource that is being made.
    poll: float = 1.0
    #: How long one resource may take to become available.
    timeout: float = 3600.0
    #: The image-copy rate without a DR-Logic decision: bytes per second (None: no limit).
    copy_rate: float | None = None
    #: Live image-copy rates (the DR-Logic loop publishes, the copier reads per chunk).
    rates: RateBoard = field(default_factory=RateBoard)

    def cloud(self, site: str) -> Cloud:
        try:
            return self.clouds[site]
        except KeyError:
            raise GiveUp(f"no cloud configured for site {site!r}") from None


async def wait_until(
    clock: Clock,
    get: Callable[[], Awaitable[T]],
    done: Callable[[T], bool],
    *,
    what: str,
    poll: float,
    timeout: float,
    failed: Callable[[T], bool] | None = None,
) -> T:
    """Poll ``get`` on the injected clock until ``done``; GiveUp on ``failed``, RetryLater on timeout."""
    start = clock.now()
    while True:
        obj = await get()
        if done(obj):
            return obj
        if failed is not None and failed(obj):
            raise GiveUp(f"{what} failed: {obj}")
        if clock.now() - start > timeout:
            raise RetryLater(f"{what}: still not ready after {timeout:.0f}s")
        await clock.sleep(poll)


def _status_error(obj: Any) -> bool:
    return str(getattr(obj, "status", "")).startswith("error")


def _snapshot_fns(
    cloud: Cloud, vid: str
) -> tuple[
    Callable[[IdempotencyTag], Awaitable[Snapshot | None]],
    Callable[[IdempotencyTag], Awaitable[Snapshot]],
]:
    async def find(t: IdempotencyTag) -> Snapshot | None:
        return await cloud.find_snapshot(t.name, cloud_tag(t))

    async def create(t: IdempotencyTag) -> Snapshot:
        return await cloud.create_snapshot(vid, name=t.name, tag=cloud_tag(t), force=True)

    return find, create


def _snap_id(s: Snapshot) -> str:
    return s.id


def _backup_id(b: Backup) -> str:
    return b.id


def _vol_key(i: int) -> str:
    return f"backup:{i}"


# -- steps ----------------------------------------------------------------------------
async def describe(deps: ProtectionDeps, ctx: StepContext) -> dict[str, Any]:
    p = ctx.params
    cloud = deps.cloud(p["site"])
    servers: list[dict[str, Any]] = []
    attached: dict[str, tuple[str, str | None]] = {}
    volume_ids = [v["id"] for v in p["volumes"]]
    volumes: dict[str, Any] = {}
    for vid in volume_ids:
        v = await cloud.get_volume(vid)
        volumes[vid] = {
            "id": v.id,
            "name": v.name,
            "size_gb": v.size_gb,
            "volume_type": v.volume_type,
            "bootable": v.bootable,
            "metadata": dict(v.metadata),
            "attachments": [asdict(a) for a in v.attachments],
        }
        for a in v.attachments:
            attached[v.id] = (a.server_id, a.device)
    for m in p["servers"]:
        s = await cloud.get_server(m["id"])
        image_name = None
        if s.image_id:
            try:
                image_name = (await cloud.get_image(s.image_id)).name
            except GiveUp:
                image_name = None
        names = {a.ip: a.network for a in s.addresses}
        ports = []
        for port in await cloud.list_ports(device_id=s.id):
            ips = [{"subnet_id": f.subnet_id, "ip_address": f.ip_address} for f in port.fixed_ips]
            net = next((names[f.ip_address] for f in port.fixed_ips if f.ip_address in names), None)
            if net is None:
                net = await cloud.network_name(port.network_id)
            ports.append(
                {
                    "id": port.id,
                    "name": port.name,
                    "network_id": port.network_id,
                    "network_name": net,
                    "fixed_ips": ips,
                    "mac_address": port.mac_address,
                    "security_group_ids": list(port.security_group_ids),
                }
            )
        mine = sorted(
            ((vid, dev) for vid, (sid, dev) in attached.items() if sid == s.id),
            key=lambda x: x[1] or "",
        )
        boot_volume = None
        if not s.image_id and mine:
            boot_volume = next((vid for vid, dev in mine if dev in ("/dev/vda", "/dev/sda")), None)
            boot_volume = boot_volume or mine[0][0]
        servers.append(
            {
                "id": s.id,
                "name": s.name,
                "flavor": s.flavor,
                "vcpus": s.vcpus,
                "ram_mb": s.ram_mb,
                "image_id": s.image_id,
                "image_name": image_name,
                "key_name": s.key_name,
                "project_id": s.project_id,
                "metadata": {k: v for k, v in s.metadata.items() if not k.startswith("liferaft_")},
                "availability_zone": s.availability_zone,
                "tier": m.get("tier", 0),
                "quiesce_rank": m.get("rank", 0),
                "boot": (
                    {"from": "volume", "volume_id": boot_volume}
                    if boot_volume
                    else {"from": "image", "image_id": s.image_id, "image_name": image_name}
                ),
                "ports": ports,
                "volumes": [
                    {
                        "volume_id": vid,
                        "device": dev,
                        "boot_index": 0 if vid == boot_volume else None,
                    }
                    for vid, dev in mine
                ],
            }
        )
    return {"servers": servers, "volumes": volumes, **await describe_access(cloud, servers)}


async def capture(deps: ProtectionDeps, ctx: StepContext) -> dict[str, Any]:
    p = ctx.params
    cloud = deps.cloud(p["site"])
    order = [m["id"] for m in sorted(p["servers"], key=lambda m: m.get("rank", 0))]
    consistency = p["consistency"]
    q = deps.quiescer
    if consistency == "ordered-quiesce" and (q is None or not await q.available(cloud)):
        consistency = "crash-consistent"
    frozen: list[str] = []
    snaps: dict[str, str] = {}
    if consistency == "ordered-quiesce" and ctx.attempt > 1:
        assert q is not None
        await _thaw(q, cloud, order)
    try:
        if consistency == "ordered-quiesce":
            assert q is not None
            for sid in order:
                await q.quiesce(cloud, sid)
                frozen.append(sid)
        captured_at = deps.clock.now()
        made: list[Snapshot] = []
        images: dict[str, str] | None = None
        roots: dict[str, str] = {}
        if p.get("method") == image_copy.METHOD:
            # Point-in-time images of the volumes instead of snapshots, in the same window,
            # and of the servers' root disks (the guests' writes there, not the base image).
            images = await image_copy.take_images(ctx, cloud, p)
            roots = await image_copy.take_root_images(
                ctx, cloud, p, ctx.results["describe"]["servers"]
            )
        for i, v in enumerate(p["volumes"] if images is None else []):
            vid = v["id"]
            find, create = _snapshot_fns(cloud, vid)
            snap: Snapshot = await ctx.ensure_created(
                kind="snapshot",
                name=f"lr-{p['checkpoint_id'][:12]}-s{i}",
                find=find,
                create=create,
                cloud_id=_snap_id,
                site=cloud.site,
            )
            made.append(snap)
            snaps[vid] = snap.id
        for snap in made:
            await wait_until(
                deps.clock,
                lambda s=snap: cloud.get_snapshot(s.id),  # type: ignore[misc]
                lambda s: s.status == "available",
                failed=_status_error,
                what=f"{cloud.site}: snapshot {snap.id}",
                poll=deps.poll,
                timeout=deps.timeout,
            )
    finally:
        for sid in reversed(frozen):
            await q.unquiesce(cloud, sid)  # type: ignore[union-attr]
    deps.catalog.update_checkpoint(
        p["checkpoint_id"], captured_at=captured_at, consistency=consistency
    )
    if images is not None:
        return {
            "captured_at": captured_at,
            "consistency": consistency,
            "images": images,
            "root_images": roots,
            "order": order,
        }
    return {
        "captured_at": captured_at,
        "consistency": consistency,
        "snapshots": snaps,
        "order": order,
    }


async def _thaw(q: Quiescer, cloud: Cloud, order: list[str]) -> None:
    """Unquiesce every server, in reverse order, before an attempt after the first.

    A controller killed while the guests were frozen never ran the
    ``finally`` that thaws them: left alone they would stay frozen, and the
    replay's quiesce would be refused (already quiesced).  A guest that is
    not frozen refuses the unquiesce; that is what we want, so it is ignored.
    """
    for sid in reversed(order):
        with contextlib.suppress(GiveUp, RetryLater):
            await q.unquiesce(cloud, sid)


async def backup(deps: ProtectionDeps, ctx: StepContext, index: int) -> dict[str, Any]:
    p = ctx.params
    cloud = deps.cloud(p["site"])
    vid = p["volumes"][index]["id"]
    snap_id = ctx.results["capture"]["snapshots"][vid]
    incremental = bool(p.get("parent_id"))

    async def find(t: IdempotencyTag) -> Backup | None:
        return await cloud.find_backup(t.name, cloud_tag(t))

    async def create(t: IdempotencyTag) -> Backup:
        return await cloud.create_backup(
            vid,
            name=t.name,
            tag=cloud_tag(t),
            incremental=incremental,
            snapshot_id=snap_id,
            container=deps.container,
        )

    b: Backup = await ctx.ensure_created(
        kind="backup",
        name=f"lr-{p['checkpoint_id'][:12]}-b{index}",
        find=find,
        create=create,
        cloud_id=_backup_id,
        site=cloud.site,
    )
    b = await wait_until(
        deps.clock,
        lambda: cloud.get_backup(b.id),
        lambda x: x.status == "available",
        failed=_status_error,
        what=f"{cloud.site}: backup {b.id}",
        poll=deps.poll,
        timeout=deps.timeout,
    )
    return {
        "volume_id": vid,
        "backup_id": b.id,
        "incremental": b.is_incremental,
        "size_gb": b.size_gb,
        "object_count": b.object_count,
    }


async def export(deps: ProtectionDeps, ctx: StepContext) -> dict[str, Any]:
    p = ctx.params
    cloud = deps.cloud(p["site"])
    out: dict[str, Any] = {}
    for i, _v in enumerate(p["volumes"]):
        b = ctx.results[_vol_key(i)]
        rec = await cloud.export_backup_record(b["backup_id"])
        out[b["volume_id"]] = {**b, "record": asdict(rec)}
    return out


def build_manifest(p: dict[str, Any], results: dict[str, Any], now: float) -> dict[str, Any]:
    inv = results["describe"]
    cap = results["capture"]
    backups = results["export"] if "export" in results else image_copy.volume_entries(p, results)
    roots = image_copy.root_entries(p, results) if "export" not in results else {}
    servers = [
        # The copied root disk (chunk list) recovery boots from instead of the base image.
        {**s, "root_disk": {"method": image_copy.METHOD, "image": roots[s["id"]]["image"]}}
        if s["id"] in roots
        else s
        for s in inv["servers"]
    ]
    vols = []
    for v in p["volumes"]:
        d = dict(inv["volumes"][v["id"]])
        att = d.pop("attachments", [])
        d["attached_to"] = att[0]["server_id"] if att else None
        d["device"] = att[0]["device"] if att else None
        entry = backups[v["id"]]
        if entry.get("method") == image_copy.METHOD:
            d["image"] = entry["image"]  # the chunk list recovery assembles
        else:
            d["backup"] = entry
        vols.append(d)
    return {
        "checkpoint_id": p["checkpoint_id"],
        "group": {
            "id": p["group_id"],
            "name": p["group_name"],
            "site": p["site"],
            "recovery_site": p["recovery_site"],
            "policy": p["policy"],
            "policy_settings": p.get("policy_settings"),
        },
        "parent_id": p.get("parent_id"),
        "chain_id": p["chain_id"],
        "captured_at": cap["captured_at"],
        "consistency": cap["consistency"],
        "quiesce_order": cap["order"],
        "servers": servers,
        "volumes": vols,
        **{k: inv.get(k, []) for k in ACCESS_KEYS},
        "written_at": now,
    }


async def write_manifest(deps: ProtectionDeps, ctx: StepContext) -> dict[str, Any]:
    p = ctx.params
    target = deps.cloud(p["recovery_site"])
    doc = build_manifest(p, ctx.results, deps.clock.now())
    name = mf.object_name(p["group_id"], doc["captured_at"], p["checkpoint_id"])
    await target.put_object(deps.container, name, mf.sign(doc, deps.key))
    where = {"site": target.site, "container": deps.container, "object": name}
    if "export" in ctx.results:
        volumes = {
            # object_count: what DR-Logic sizes the checkpoint from (absent in older results).
            vid: {k: b.get(k) for k in ("backup_id", "incremental", "size_gb", "object_count")}
            for vid, b in ctx.results["export"].items()
        }
    else:
        volumes = {
            vid: image_copy.catalog_entry(e)
            for vid, e in image_copy.volume_entries(p, ctx.results).items()
        }
        volumes |= {
            image_copy.root_key(sid): {**image_copy.catalog_entry(e), "server_id": sid}
            for sid, e in image_copy.root_entries(p, ctx.results).items()
        }
    deps.catalog.update_checkpoint(
        p["checkpoint_id"],
        state="complete",
        completed_at=deps.clock.now(),
        manifest=where,
        volumes=volumes,
    )
    return where


async def cleanup(deps: ProtectionDeps, ctx: StepContext) -> list[str]:
    cloud = deps.cloud(ctx.params["site"])
    if "images" in ctx.results["capture"]:
        cap = ctx.results["capture"]
        return await image_copy.delete_images(
            cloud, {**cap["images"], **cap.get("root_images", {})}
        )
    snaps = list(ctx.results["capture"]["snapshots"].values())
    for sid in snaps:
        await cloud.delete_snapshot(sid)
    return snaps


def build(deps: ProtectionDeps, params: dict[str, Any]) -> WorkflowDef:
    from .retention import retention_step

    if params.get("method") == "storage-replication":
        from . import replicated

        return replicated.build(deps, params)
    site = params["site"]
    n = len(params["volumes"])

    def bind(fn: Callable[..., Any], *args: Any) -> Callable[[StepContext], Any]:
        async def run(ctx: StepContext) -> Any:
            return await fn(deps, ctx, *args)

        return run

    steps = [
        StepDef("describe", bind(describe), site=site),
        StepDef("capture", bind(capture), depends_on=("describe",), site=site),
    ]
    if params.get("method") == image_copy.METHOD:
        copies = tuple(f"copy:{i}" for i in range(n))
        steps += [
            StepDef(c, bind(image_copy.copy, i), depends_on=("capture",), site=site)
            for i, c in enumerate(copies)
        ]
        roots = tuple(image_copy.root_step(i) for i in range(len(params["servers"])))
        steps += [
            StepDef(r, bind(image_copy.copy_root, i), depends_on=("capture",), site=site)
            for i, r in enumerate(roots)
        ]
        steps.append(
            StepDef("manifest", bind(write_manifest), depends_on=(*copies, *roots) or ("capture",))
        )
    else:
        steps += [
            StepDef(_vol_key(i), bind(backup, i), depends_on=("capture",), site=site)
            for i in range(n)
        ]
        steps += [
            StepDef(
                "export", bind(export), depends_on=tuple(_vol_key(i) for i in range(n)), site=site
            ),
            StepDef("manifest", bind(write_manifest), depends_on=("export",)),
        ]
    steps += [
        StepDef("cleanup", bind(cleanup), depends_on=("manifest",), site=site),
        StepDef("retention", bind(retention_step), depends_on=("cleanup",)),
    ]
    return WorkflowDef(KIND, steps, retry=RetryPolicy(max_attempts=6, initial=2.0, max_delay=60.0))
