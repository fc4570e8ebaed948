"""Retention: which checkpoints of a group to prune, and the step that prunes them.

Rules (:func:`to_prune`, a pure function):

* the newest complete checkpoint is never pruned;
* the newest ``retention_count`` complete checkpoints younger than
  ``retention_age_seconds`` are kept;
* an incremental chain is never broken: a kept checkpoint keeps every older
  checkpoint of its chain (the backups it is incremental on).

Pruning deletes a checkpoint's backups at the protected site (newest first,
so no backup with dependents is deleted before them) and its manifest at the
recovery site, then marks it ``pruned``.

A failed checkpoint may have left backups (say its manifest could not be
written).  Nothing is made on them (the next checkpoint starts a new chain),
but they depend on older backups, so they are deleted first, before any
checkpoint they may depend on, and the failed checkpoint is marked
``pruned`` too (its error is kept).
"""

from __future__ import annotations

from typing import Any

from liferaft.clouds.port import ResourceNotFound
from liferaft.engine.executor import StepContext
from liferaft.errors import RetryLater

from . import image_copy
from .model import Checkpoint, Policy


def to_prune(checkpoints: list[Checkpoint], policy: Policy, now: float) -> list[Checkpoint]:
    """The complete checkpoints to prune, newest first."""
    complete = sorted(
        (c for c in checkpoints if c.state == "complete"),
        key=lambda c: (c.captured_at or c.requested_at, c.id),
    )
    if not complete:
        return []
    kept = {complete[-1].id}
    for c in complete[::-1][: policy.retention_count]:
        if now - (c.captured_at or c.requested_at) <= policy.retention_age_seconds:
            kept.add(c.id)
    for c in complete:
        if c.id in kept:
            continue
        t = c.captured_at or c.requested_at
        for k in complete:
            if k.id in kept and k.chain_id == c.chain_id and (k.captured_at or k.requested_at) >= t:
                kept.add(c.id)
                break
    return [c for c in reversed(complete) if c.id not in kept]


async def retention_step(deps: Any, ctx: StepContext) -> list[str]:
    p = ctx.params
    catalog = deps.catalog
    policy = catalog.get_policy(p["policy"])
    cps = catalog.list_checkpoints(group_id=p["group_id"])
    pruned: list[str] = []
    site = deps.cloud(p["site"])
    for cp in reversed(cps):  # newest first
        if cp.state != "failed" or cp.id == p["checkpoint_id"]:
            continue
        for backup_id in reversed(catalog.made_backups(cp.id)):
            await site.delete_backup(backup_id)
            await _gone(deps, site, backup_id)
        catalog.update_checkpoint(cp.id, state="pruned")
        pruned.append(cp.id)
    for cp in to_prune(cps, policy, deps.clock.now()):
        for vol in cp.volumes.values():
            if "backup_id" not in vol:  # image copy (chunks collected below), storage replication
                continue
            await site.delete_backup(vol["backup_id"])
            await _gone(deps, site, vol["backup_id"])
        if cp.manifest:
            target = deps.cloud(cp.manifest["site"])
            await target.delete_object(cp.manifest["container"], cp.manifest["object"])
        catalog.update_checkpoint(cp.id, state="pruned")
        pruned.append(cp.id)
    if p.get("method") == image_copy.METHOD:
        busy = any(
            c.id != p["checkpoint_id"]
            for c in catalog.list_checkpoints(group_id=p["group_id"], states=("pending",))
        )
        ctx.note(chunks_deleted=len(await image_copy.collect_garbage(deps, p, busy=busy)))
    return pruned


async def _gone(deps: Any, cloud: Any, backup_id: str) -> None:
    """Wait until a deleted backup is gone (its parent cannot go before it)."""
    start = deps.clock.now()
    while True:
        try:
            await cloud.get_backup(backup_id)
        except ResourceNotFound:
            return
        if deps.clock.now() - start > deps.timeout:
            raise RetryLater(f"backup {backup_id} is still being deleted")
        await deps.clock.sleep(deps.poll)
