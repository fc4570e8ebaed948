"""The protection service: protect servers and volumes, group them, start checkpoints.

Validation happens here, at the edge, against the protected site's cloud:
an unknown server or volume is :class:`~.model.Unknown`, a resource
protected twice is :class:`~.model.Conflict`, a malformed policy is
:class:`~.model.Invalid`.

The DR-Logic loop (:mod:`liferaft.logic.loop`) decides when checkpoints start
and starts them with :meth:`ProtectionService.start_checkpoint`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from typing import Any

from liferaft.clouds.port import ResourceNotFound
from liferaft.engine.states import WORKFLOW_TERMINAL, WorkflowState
from liferaft.errors import GiveUp, NotFound
from liferaft.store import Store

from . import image_copy
from .checkpoint import KIND, ProtectionDeps
from .model import DEFAULT_POLICY, Checkpoint, Conflict, Group, Member, Unknown
from .replicated import check_replicated

log = logging.getLogger(__name__)

Submit = Callable[[str, dict[str, Any], str], Any]


class ProtectionService:
    def __init__(self, deps: ProtectionDeps, store: Store, *, recovery_site: str) -> None:
        self.deps = deps
        self.store = store
        self.catalog = deps.catalog
        self.site = deps.site
        self.recovery_site = recovery_site

    @property
    def clock(self) -> Any:
        return self.deps.clock

    # -- protecting ----------------------------------------------------------------
    async def _member(self, kind: str, ref: str, *, tier: int = 0, rank: int = 0) -> Member:
        cloud = self.deps.cloud(self.site)
        try:
            if kind == "server":
                s = await cloud.get_server(ref)
                return Member(self.site, "server", s.id, s.name, "", quiesce_rank=rank, tier=tier)
            v = await cloud.get_volume(ref)
            return Member(self.site, "volume", v.id, v.name, "")
        except ResourceNotFound:
            raise Unknown(f"no {kind} {ref!r} at site {self.site}") from None

    def create_group(self, name: str, *, policy: str = DEFAULT_POLICY) -> Group:
        return self.catalog.create_group(
            name,
            site=self.site,
            recovery_site=self.recovery_site,
            policy=policy,
            now=self.clock.now(),
        )

    async def _check_method(self, policy: str, recovery_site: str, m: Member) -> None:
        """A volume protected by storage replication must be replicated to the recovery site."""
        if m.kind == "volume" and self.catalog.get_policy(policy).method == "storage-replication":
            await check_replicated(self.deps, m.site, m.cloud_id, recovery_site)

    async def add(self, group: str, kind: str, ref: str, *, tier: int = 0, rank: int = 0) -> Group:
        g = self.catalog.get_group(group)
        m = await self._member(kind, ref, tier=tier, rank=rank)
        await self._check_method(g.policy, g.recovery_site, m)
        return self.catalog.add_member(g, m, now=self.clock.now())

    async def protect(
        self, kind: str, ref: str, *, policy: str = DEFAULT_POLICY, volumes: bool = True
    ) -> Group:
        """ORBIT's protect_vm / protect_volume: the resource in a group of its own.

        A server is protected with the volumes attached to it (an operator
        protecting a VM expects its data protected too) unless ``volumes`` is
        false.  Every member is checked before anything is recorded: a
        resource already protected is a :class:`~.model.Conflict` naming the
        group that owns it, and no group is left behind.
        """
        m = await self._member(kind, ref)
        self.catalog.get_policy(policy)
        extra = await self._attached_volumes(m.cloud_id) if kind == "server" and volumes else []
        for x in (m, *extra):
            await self._check_method(policy, self.recovery_site, x)
            owner = self.catalog.find_member(self.site, x.kind, x.cloud_id)
            if owner is not None:
                g0 = self.catalog.find_group(owner.group_id)
                raise Conflict(
                    f"{x.kind} {x.name or x.cloud_id} ({x.cloud_id}) is already protected "
                    f"(group {g0.name if g0 else owner.group_id!r})"
                    + (" -- protect the server with --no-volumes" if x is not m else "")
                )
        g = self.create_group(f"{kind}-{m.cloud_id}", policy=policy)
        try:
            for x in (m, *extra):
                g = self.catalog.add_member(g, x, now=self.clock.now())
        except GiveUp:
            self.catalog.forget_group(g.id)
            raise
        return g

    async def _attached_volumes(self, server_id: str) -> list[Member]:
        """The volumes attached to a server of this site, in device order."""
        cloud = self.deps.cloud(self.site)
        mine = [
            (next(a.device or "" for a in v.attachments if a.server_id == server_id), v)
            for v in await cloud.list_volumes()
            if any(a.server_id == server_id for a in v.attachments)
        ]
        return [
            Member(self.site, "volume", v.id, v.name, "")
            for _dev, v in sorted(mine, key=lambda x: x[0])
        ]

    # -- checkpoints ---------------------------------------------------------------
    def checkpoint_params(self, g: Group, checkpoint_id: str) -> dict[str, Any]:
        policy = self.catalog.get_policy(g.policy)
        done = self.catalog.list_checkpoints(group_id=g.id, states=("complete",))
        parent = done[-1] if done else None
        vols = sorted(m.cloud_id for m in g.volumes)
        chain_len = len([c for c in done if parent and c.chain_id == parent.chain_id])
        # The cloud makes an incremental backup on the volume's newest backup, which is
        # the parent's only if no checkpoint since left one: after a failed (or still
        # running) checkpoint a new chain starts, so nothing is ever made on a backup
        # that retention does not know as part of a chain.
        since = [
            c
            for c in self.catalog.list_checkpoints(group_id=g.id)
            if parent is not None and c.requested_at > parent.requested_at
        ]
        if parent is not None and (
            policy.method == image_copy.METHOD  # each image copy is whole (no chain)
            or policy.method == "storage-replication"  # nothing is incremental on anything
            or sorted(parent.volumes) != vols
            or chain_len >= policy.chain_length
            or any(c.state != "complete" for c in since)
        ):
            parent = None
        return {
            "checkpoint_id": checkpoint_id,
            "group_id": g.id,
            "group_name": g.name,
            "site": g.site,
            "recovery_site": g.recovery_site,
            "policy": g.policy,
            # Into the manifest, so `catalog rebuild` restores the policy with the group.
            "policy_settings": policy.to_dict(),
            "consistency": policy.consistency,
            "method": policy.method,
            "servers": [
                {"id": m.cloud_id, "name": m.name, "rank": m.quiesce_rank, "tier": m.tier}
                for m in sorted(g.servers, key=lambda m: m.quiesce_rank)
            ],
            "volumes": [{"id": v} for v in vols],
            "parent_id": parent.id if parent else None,
            "chain_id": parent.chain_id if parent else checkpoint_id,
        }

    def start_checkpoint(self, g: Group, submit: Submit) -> Checkpoint:
        cid = uuid.uuid4().hex
        params = self.checkpoint_params(g, cid)
        cp = self.catalog.create_checkpoint(
            Checkpoint(
                id=cid,
                group_id=g.id,
                state="pending",
                requested_at=self.clock.now(),
                workflow_id=cid,
                chain_id=params["chain_id"],
                parent_id=params["parent_id"],
            )
        )
        submit(KIND, params, cid)
        return cp

    def _settle_pending(self, g: Group) -> bool:
        """Mark checkpoints whose workflow ended without completing as failed; True if one is running."""
        running = False
        for cp in self.catalog.list_checkpoints(group_id=g.id, states=("pending",)):
            try:
                wf = self.store.get_workflow(cp.workflow_id)
            except NotFound:
                self.catalog.update_checkpoint(cp.id, state="failed", error="never submitted")
                continue
            if wf.state in WORKFLOW_TERMINAL or wf.state == WorkflowState.PAUSED:
                if wf.state != WorkflowState.PAUSED:
                    self.catalog.update_checkpoint(
                        cp.id, state="failed", error=wf.error or f"workflow {wf.state}"
                    )
                else:
                    running = True
            else:
                running = True
        return running

    def in_flight(self, g: Group) -> bool:
        """Whether a checkpoint of the group is running (ended ones are settled first)."""
        return self._settle_pending(g)
