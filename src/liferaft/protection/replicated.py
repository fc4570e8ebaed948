"""The checkpoint workflow of the storage-replication method (OPNFV method 3).

The storage already copies each volume to the recovery site (asynchronously,
with lag); a checkpoint copies no data.  It records what is needed to rebuild
the group there -- servers, ports, and for each volume its replica's
reference at the recovery site's backend (what Cinder's manage-existing
adopts at failover) -- in a signed manifest, and checks the replicas' lag
against the policy's RPO target.  Steps::

    describe ─ replicas ─ manifest ─ retention

* ``describe``: as for snapshot-backup (:func:`.checkpoint.describe`);
* ``replicas``: each volume's replica through the ReplicationMonitor port:
  it must exist and live at the group's recovery site (a clear error
  otherwise); a lag beyond the RPO target raises an alert event
  (``replication-lag``);
* ``manifest``: the signed manifest at the recovery site (volumes carry
  ``replica`` instead of ``backup``); the checkpoint is ``complete``;
* ``retention``: older checkpoints' manifests are pruned.

The recovery point of a failover is not the manifest's time: it is each
replica's last applied point, read at failover (:mod:`liferaft.recovery.replica`).
No step creates a cloud resource, so a replay after a kill repeats reads and
rewrites the same manifest object.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from liferaft.engine.executor import StepContext
from liferaft.engine.workflow import RetryPolicy, StepDef, WorkflowDef
from liferaft.errors import GiveUp

from . import manifest as mf
from .checkpoint import KIND, ProtectionDeps, build_manifest, describe
from .model import Invalid
from .replication_monitors import NotReplicated, ReplicaStatus

METHOD = "storage-replication"
#: The event a lag beyond the RPO target raises (a note of the checkpoint workflow).
ALERT = "replication-lag"


async def check_replicated(
    deps: ProtectionDeps, site: str, volume_id: str, recovery_site: str
) -> ReplicaStatus:
    """The replica of a volume, or :class:`~.model.Invalid` saying why it cannot be protected."""
    if deps.replication is None:
        raise Invalid(
            f"volume {volume_id}: the storage-replication method needs a replication monitor "
            f"(protection.replication_monitor)"
        )
    try:
        st = await deps.replication.status(site, volume_id)
    except NotReplicated as err:
        raise Invalid(f"storage-replication cannot protect {err}") from None
    if st.target_site != recovery_site:
        raise Invalid(
            f"volume {volume_id} of {site} replicates to {st.target_site}, not to the "
            f"group's recovery site {recovery_site}"
        )
    return st


async def replicas(deps: ProtectionDeps, ctx: StepContext) -> dict[str, Any]:
    p = ctx.params
    rpo = deps.catalog.get_policy(p["policy"]).rpo_seconds
    out: dict[str, Any] = {}
    for v in p["volumes"]:
        try:
            st = await check_replicated(deps, p["site"], v["id"], p["recovery_site"])
        except Invalid as err:
            raise GiveUp(str(err)) from None
        out[v["id"]] = {
            "source_site": st.source_site,
            "site": st.target_site,
            "host": st.host,
            "reference": st.reference,
            "size_gb": st.size_gb,
            "state": st.state,
            "lag_s": st.lag_s,
            "last_applied_at": st.last_applied_at,
        }
        if st.lag_s > rpo:
            ctx.note(
                alert=ALERT,
                group=p["group_name"],
                volume=v["id"],
                lag_s=st.lag_s,
                rpo_s=rpo,
                message=(
                    f"group {p['group_name']}: the replica of volume {v['id']} is "
                    f"{st.lag_s:.1f}s behind, beyond the RPO target of {rpo:g}s"
                ),
            )
    return {"captured_at": deps.clock.now(), "replicas": out}


async def write_manifest(deps: ProtectionDeps, ctx: StepContext) -> dict[str, Any]:
    p = ctx.params
    target = deps.cloud(p["recovery_site"])
    reps = ctx.results["replicas"]
    results = {
        "describe": ctx.results["describe"],
        # The data point is each replica's last applied write, known at failover.
        "capture": {
            "captured_at": reps["captured_at"],
            "consistency": "crash-consistent",
            "order": [m["id"] for m in sorted(p["servers"], key=lambda m: m.get("rank", 0))],
        },
        "export": {v["id"]: {} for v in p["volumes"]},  # no backups: replaced below
    }
    doc = build_manifest(p, results, deps.clock.now())
    doc["method"] = METHOD
    for vol in doc["volumes"]:
        vol.pop("backup", None)
        r = reps["replicas"][vol["id"]]
        vol["replica"] = {k: r[k] for k in ("source_site", "site", "host", "reference", "size_gb")}
    name = mf.object_name(p["group_id"], doc["captured_at"], p["checkpoint_id"])
    await target.put_object(deps.container, name, mf.sign(doc, deps.key))
    where = {"site": target.site, "container": deps.container, "object": name}
    deps.catalog.update_checkpoint(
        p["checkpoint_id"],
        state="complete",
        captured_at=reps["captured_at"],
        consistency="crash-consistent",
        completed_at=deps.clock.now(),
        manifest=where,
        volumes={
            vid: {"replica": r["reference"], "lag_s": r["lag_s"]}
            for vid, r in reps["replicas"].items()
        },
    )
    return where


def build(deps: ProtectionDeps, params: dict[str, Any]) -> WorkflowDef:
    from .retention import retention_step

    site = params["site"]

    def bind(fn: Callable[..., Any]) -> Callable[[StepContext], Any]:
        async def run(ctx: StepContext) -> Any:
            return await fn(deps, ctx)

        return run

    steps = [
        StepDef("describe", bind(describe), site=site),
        StepDef("replicas", bind(replicas), depends_on=("describe",), site=site),
        StepDef("manifest", bind(write_manifest), depends_on=("replicas",)),
        StepDef("retention", bind(retention_step), depends_on=("manifest",)),
    ]
    return WorkflowDef(KIND, steps, retry=RetryPolicy(max_attempts=6, initial=2.0, max_delay=60.0))
