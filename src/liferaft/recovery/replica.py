"""Recovering a storage-replicated volume: manage its replica into the recovery site's Cinder.

The ``restore:<g>:<v>`` step of a volume whose manifest entry carries a
``replica`` (the storage-replication method) runs :func:`manage_replica`
instead of a backup restore:

1. ask the ReplicationMonitor for the replica (at this, the recovery, site;
   the protected site may be gone): its reference, the backend that can
   manage it, and its **last applied point** -- the recovery point of this
   volume, reported as such in the step's event and the run's report;
2. Cinder's manage-existing adopts the replica as a volume of this site, of
   the volume type the plan check resolved (mapped or same name), named and
   tagged by the run and step (a replay after a kill finds it by
   its tag; it is never managed twice), with ``liferaft_source`` metadata;
3. wait until it is available.

The replica's bytes are the volume's as of the last applied point: nothing
is copied.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from liferaft.clouds.model import Volume
from liferaft.engine.cloudsteps import cloud_tag
from liferaft.engine.executor import StepContext
from liferaft.engine.idempotency import IdempotencyTag
from liferaft.errors import GiveUp
from liferaft.protection.checkpoint import wait_until

from .plancheck import resolved

if TYPE_CHECKING:
    from .disaster import RecoveryDeps

#: How a recovery point read from a replica is labelled in reports and events.
POINT_KIND = "replica-last-applied-write"


def _vid(v: Volume) -> str:
    return v.id


async def manage_replica(
    deps: RecoveryDeps, ctx: StepContext, vol: dict[str, Any]
) -> dict[str, Any]:
    rep = vol["replica"]
    cloud = deps.cloud
    if deps.replication is None:
        raise GiveUp(
            f"volume {vol['id']} was protected by storage replication, but this controller "
            f"has no replication monitor (protection.replication_monitor)"
        )
    st = await deps.replication.status(rep["source_site"], vol["id"])
    if st.target_site != deps.site:
        raise GiveUp(
            f"the replica of volume {vol['id']} lives at {st.target_site}, not at {deps.site}"
        )
    point = {
        "kind": POINT_KIND,
        "at": st.last_applied_at,
        "write": st.last_applied_write,
        "lag_s": st.lag_s,
        "replica_state": st.state,
    }

    async def find(t: IdempotencyTag) -> Volume | None:
        return await cloud.find_volume(t.name, cloud_tag(t))

    async def create(t: IdempotencyTag) -> Volume:
        return await cloud.manage_volume(
            name=t.name,
            tag=cloud_tag(t),
            host=st.host,
            reference=st.reference,
            volume_type=resolved(ctx.params, "volume_types", vol.get("volume_type")),
            metadata={"liferaft_source": vol["id"]},
            bootable=bool(vol.get("bootable")),
        )

    managed: Volume = await ctx.ensure_created(
        kind="volume",
        name=f"{vol['name'] or vol['id'][:8]}",
        find=find,
        create=create,
        cloud_id=_vid,
        site=cloud.site,
    )
    managed = await wait_until(
        deps.clock,
        lambda: cloud.get_volume(managed.id),
        lambda x: x.status in ("available", "in-use"),
        failed=lambda x: x.status.startswith("error"),
        what=f"{cloud.site}: managed replica {managed.id}",
        poll=deps.poll,
        timeout=deps.timeout,
    )
    ctx.note(volume=vol["id"], managed_as=managed.id, replica=st.reference, recovery_point=point)
    return {
        "source": vol["id"],
        "volume_id": managed.id,
        "replica": st.reference,
        "managed": True,
        "recovery_point": point,
    }


def group_point(results: list[dict[str, Any]]) -> dict[str, Any] | None:
    """A group's recovery point from its managed replicas: the oldest last applied point.

    Replicas of one consistency group share it; replicas that do not are
    only as good as the one furthest behind.
    """
    points = [r["recovery_point"] for r in results if r.get("recovery_point")]
    if not points:
        return None
    known = [p for p in points if p.get("at") is not None]
    if len(known) < len(points):
        return {"kind": POINT_KIND, "at": None, "volumes": len(points)}
    oldest = min(known, key=lambda p: p["at"])
    return {"kind": POINT_KIND, "at": oldest["at"], "write": oldest.get("write")}
