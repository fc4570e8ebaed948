"""The clean-up workflow (kind ``cleanup``): retention for a group outside a checkpoint.

Every checkpoint prunes its group's old checkpoints when it ends; a group
that DR-Logic checkpoints rarely (or not at all for a while) still has
checkpoints expiring by age, and failed checkpoints' backups. The DR-Logic
loop submits this workflow every ``drlogic_clean_up_interval`` for each group
that has something to prune and no checkpoint in flight; its one step is the
checkpoint's own retention step (:mod:`.retention`), so the rules are the
same.
"""

from __future__ import annotations

from typing import Any

from liferaft.engine.workflow import RetryPolicy, StepDef, WorkflowDef

from .catalog import Catalog
from .checkpoint import ProtectionDeps
from .model import Group
from .retention import retention_step, to_prune

KIND = "cleanup"


def has_work(catalog: Catalog, g: Group, now: float) -> bool:
    """Whether the group has checkpoints to prune or failed checkpoints' backups to delete."""
    cps = catalog.list_checkpoints(group_id=g.id)
    if to_prune(cps, catalog.get_policy(g.policy), now):
        return True
    return any(c.state == "failed" and catalog.made_backups(c.id) for c in cps)


def params(g: Group) -> dict[str, Any]:
    # No checkpoint of its own: every failed one's backups are deleted.
    return {"group_id": g.id, "policy": g.policy, "site": g.site, "checkpoint_id": ""}


def build(deps: ProtectionDeps, p: dict[str, Any]) -> WorkflowDef:
    async def run(ctx: Any) -> Any:
        return await retention_step(deps, ctx)

    return WorkflowDef(
        KIND,
        [StepDef("retention", run, site=p["site"])],
        retry=RetryPolicy(max_attempts=6, initial=2.0, max_delay=60.0),
    )
