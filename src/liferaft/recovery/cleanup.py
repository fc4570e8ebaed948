"""The cleanup of a test run (kind ``recovery-cleanup``): delete everything the run made.

What a run made is read from the engine's resource ledger (every cloud
create of a step is recorded there under the run's id, also after a
replay), not guessed from names.  Steps, each a set of idempotent deletes
(a resource already gone is success), so a cleanup killed at any instant
resumes where it was, and a second cleanup of the same run does nothing::

    servers ─┬ ports ─┬ subnets ── networks
             │        └ security_groups
             ├ volumes
             ├ images
             ├ server_groups
             └ keypairs

Servers go first (their ports, volumes, server groups and key pairs are in
use until then), ports before the security groups they are in (Neutron
refuses to delete a group a port uses), and each delete is waited on until
the resource is gone.  Security groups, server groups and key pairs are the
ones the ``groundwork`` steps recorded as made by the run; the ones it
adopted (recorded as ``adopted:<kind>``: they existed before) are kept.  The backups the run
imported are left alone: deleting an imported backup would delete its data
in the object store, which is the protection's own copy.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from liferaft.clouds.port import Cloud, ResourceNotFound
from liferaft.engine.clock import Clock
from liferaft.engine.executor import StepContext
from liferaft.engine.workflow import RetryPolicy, StepDef, WorkflowDef
from liferaft.errors import RetryLater
from liferaft.store import Store

KIND = "recovery-cleanup"
#: Step name → the ledger kinds it deletes.
STEPS: dict[str, tuple[str, ...]] = {
    "servers": ("server",),
    "ports": ("port",),
    "volumes": ("volume",),
    "images": ("image",),
    "subnets": ("subnet",),
    "networks": ("network",),
    "security_groups": ("security_group",),
    "server_groups": ("server_group",),
    "keypairs": ("keypair",),
}
DEPENDS: dict[str, tuple[str, ...]] = {
    "servers": (),
    "ports": ("servers",),
    "volumes": ("servers",),
    "images": ("servers",),
    "subnets": ("ports",),
    "networks": ("subnets",),
    "security_groups": ("ports",),
    "server_groups": ("servers",),
    "keypairs": ("servers",),
}


def workflow_id(run_id: str) -> str:
    return f"{run_id}-cleanup"


@dataclass
class CleanupDeps:
    cloud: Cloud
    store: Store
    clock: Clock
    poll: float = 1.0
    timeout: float = 1800.0


def _ops(
    cloud: Cloud, kind: str
) -> tuple[Callable[[str], Awaitable[Any]], Callable[[str], Awaitable[Any]]]:
    return {
        "server": (cloud.delete_server, cloud.get_server),
        "port": (cloud.delete_port, cloud.get_port),
        "volume": (cloud.delete_volume, cloud.get_volume),
        "image": (cloud.delete_image, cloud.get_image),
        "subnet": (cloud.delete_subnet, _no_get),
        "network": (cloud.delete_network, _no_get),
        "security_group": (cloud.delete_security_group, cloud.get_security_group),
        # Nova deletes these at once (no status to wait on); a key pair's id is its name.
        "server_group": (cloud.delete_server_group, _no_get),
        "keypair": (cloud.delete_keypair, _no_get),
    }[kind]


async def _no_get(_id: str) -> Any:
    raise ResourceNotFound("deleted")


async def _gone(
    deps: CleanupDeps, get: Callable[[str], Awaitable[Any]], cid: str, what: str
) -> None:
    start = deps.clock.now()
    while True:
        try:
            obj = await get(cid)
        except ResourceNotFound:
            return
        if str(getattr(obj, "status", "")).lower() == "deleted":
            return
        if deps.clock.now() - start > deps.timeout:
            raise RetryLater(f"{what} {cid} is still there after {deps.timeout:.0f}s")
        await deps.clock.sleep(deps.poll)


async def delete_kind(deps: CleanupDeps, ctx: StepContext, step: str) -> list[str]:
    run_id = ctx.params["run_id"]
    site = deps.cloud.site
    done: list[str] = []
    for kind in STEPS[step]:
        mine = [
            r
            for r in deps.store.list_resources(run_id=run_id)
            if r.kind == kind and (r.site in (None, site))
        ]
        delete, get = _ops(deps.cloud, kind)
        for r in mine:
            if kind == "volume":
                # A volume detaches once its server is gone; Cinder refuses to delete it before.
                await _detached(deps, r.cloud_id)
            await delete(r.cloud_id)
        for r in mine:
            await _gone(deps, get, r.cloud_id, kind)
            done.append(r.cloud_id)
    ctx.note(deleted=len(done), kinds=list(STEPS[step]))
    return done


async def _detached(deps: CleanupDeps, volume_id: str) -> None:
    start = deps.clock.now()
    while True:
        try:
            v = await deps.cloud.get_volume(volume_id)
        except ResourceNotFound:
            return
        if v.status not in ("in-use", "detaching", "attaching", "creating", "restoring-backup"):
            return
        if deps.clock.now() - start > deps.timeout:
            raise RetryLater(f"volume {volume_id} is still {v.status} after {deps.timeout:.0f}s")
        await deps.clock.sleep(deps.poll)


def build(deps: CleanupDeps, params: dict[str, Any]) -> WorkflowDef:
    def bind(step: str) -> Callable[[StepContext], Any]:
        async def run(ctx: StepContext) -> Any:
            return await delete_kind(deps, ctx, step)

        return run

    steps = [
        StepDef(name, bind(name), depends_on=DEPENDS[name], site=deps.cloud.site) for name in STEPS
    ]
    return WorkflowDef(KIND, steps, retry=RetryPolicy(max_attempts=6, initial=2.0, max_delay=60.0))
