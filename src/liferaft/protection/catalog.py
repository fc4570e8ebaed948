"""The protection catalog: queries on the protection tables of the state store.

Short transactions on the store's database (its own engines, opened from
the store's URL).  Checkpoint rows are written by checkpoint workflow steps;
the step's own outcome is what the engine fences, and every write here is
idempotent (a replayed step writes the same values again).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from liferaft.errors import GiveUp
from liferaft.store import Store
from liferaft.store.db import make_engines
from liferaft.store.models import ResourceRow
from liferaft.store.protection import CheckpointRow, GroupRow, MemberRow, PolicyRow, RunRow

from .model import (
    DEFAULT_POLICY,
    Checkpoint,
    Conflict,
    Group,
    Member,
    Policy,
    Unknown,
    check_name,
    check_policy,
)


def _policy(r: Any) -> Policy:
    return Policy(
        name=r.name,
        rpo_seconds=r.rpo_seconds,
        interval_seconds=r.interval_seconds,
        retention_count=r.retention_count,
        retention_age_seconds=r.retention_age_seconds,
        consistency=r.consistency,
        method=r.method,
        chain_length=r.chain_length,
        updated_at=r.updated_at,
    )


def _member(r: Any) -> Member:
    return Member(
        site=r.site,
        kind=r.kind,
        cloud_id=r.cloud_id,
        name=r.name,
        group_id=r.group_id,
        quiesce_rank=r.quiesce_rank,
        tier=r.tier,
    )


def _checkpoint(r: Any) -> Checkpoint:
    return Checkpoint(
        id=r.id,
        group_id=r.group_id,
        state=r.state,
        requested_at=r.requested_at,
        workflow_id=r.workflow_id,
        chain_id=r.chain_id,
        captured_at=r.captured_at,
        completed_at=r.completed_at,
        parent_id=r.parent_id,
        consistency=r.consistency,
        volumes=dict(r.volumes or {}),
        manifest=r.manifest,
        error=r.error,
    )


class Catalog:
    """Policies, groups, members, checkpoints and recovery runs in the state store."""

    def __init__(self, store: Store | str) -> None:
        url = store.url if isinstance(store, Store) else store
        if not isinstance(store, Store):
            Store(url).close()  # migrate
        self._writer, self._reader = make_engines(url)

    def close(self) -> None:
        self._writer.dispose()
        if self._reader is not self._writer:
            self._reader.dispose()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._writer.begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._reader.begin() as conn:
            yield conn

    # -- policies --------------------------------------------------------------
    def list_policies(self) -> list[Policy]:
        with self._read() as conn:
            rows = conn.execute(select(PolicyRow).order_by(PolicyRow.name)).all()
        return [_policy(r) for r in rows]

    def get_policy(self, name: str) -> Policy:
        with self._read() as conn:
            r = conn.execute(select(PolicyRow).where(PolicyRow.name == name)).one_or_none()
        if r is None:
            known = ", ".join(p.name for p in self.list_policies())
            raise Unknown(f"no policy {name!r} (policies: {known})")
        return _policy(r)

    def set_policy(self, policy: Policy) -> Policy:
        """Create or replace a policy (validated first)."""
        check_policy(policy)
        values = policy.to_dict()
        with self._write() as conn:
            found = conn.execute(
                select(PolicyRow.name).where(PolicyRow.name == policy.name)
            ).one_or_none()
            if found is None:
                conn.execute(insert(PolicyRow).values(**values))
            else:
                conn.execute(
                    update(PolicyRow).where(PolicyRow.name == policy.name).values(**values)
                )
        return policy

    # -- groups ----------------------------------------------------------------
    def create_group(
        self, name: str, *, site: str, recovery_site: str, policy: str, now: float
    ) -> Group:
        check_name("group", name)
        if site == recovery_site:
            raise Conflict(f"group {name!r}: the recovery site must differ from the site {site!r}")
        self.get_policy(policy)
        found = self._same_group(name, site=site, recovery_site=recovery_site, policy=policy)
        if found is not None:
            return found
        gid = uuid.uuid4().hex
        try:
            with self._write() as conn:
                conn.execute(
                    insert(GroupRow).values(
                        id=gid,
                        name=name,
                        site=site,
                        recovery_site=recovery_site,
                        policy=policy,
                        created_at=now,
                    )
                )
        except IntegrityError as err:
            # Only a name taken meanwhile is "exists already"; any other integrity
            # failure is reported as what it is.
            found = self._same_group(name, site=site, recovery_site=recovery_site, policy=policy)
            if found is not None:
                return found
            raise GiveUp(f"group {name!r} could not be recorded: {err.orig}") from None
        return self.get_group(gid)

    def restore_group(self, g: Group) -> Group:
        """Record a group with its known id (``catalog rebuild``); an existing row is kept."""
        check_name("group", g.name)
        if self.find_group(g.id) is None:
            try:
                with self._write() as conn:
                    conn.execute(
                        insert(GroupRow).values(
                            id=g.id,
                            name=g.name,
                            site=g.site,
                            recovery_site=g.recovery_site,
                            policy=g.policy,
                            created_at=g.created_at,
                        )
                    )
            except IntegrityError as err:
                raise Conflict(
                    f"group {g.name!r} ({g.id}) could not be restored: {err.orig}"
                ) from None
        return self.get_group(g.id)

    def _same_group(self, name: str, *, site: str, recovery_site: str, policy: str) -> Group | None:
        """The group named ``name`` if it is the one asked for (a repeated create is idempotent).

        ``None`` if no group has that name; :class:`Conflict` if one does with other settings.
        """
        g = self.find_group(name)
        if g is None or g.name != name:
            return None
        if (g.site, g.recovery_site, g.policy) == (site, recovery_site, policy):
            return g
        raise Conflict(
            f"a group named {name!r} exists already (site {g.site}, recovery site "
            f"{g.recovery_site}, policy {g.policy!r})"
        )

    def find_group(self, ref: str) -> Group | None:
        with self._read() as conn:
            r = conn.execute(
                select(GroupRow).where((GroupRow.id == ref) | (GroupRow.name == ref))
            ).first()
            if r is None:
                return None
            members = conn.execute(
                select(MemberRow).where(MemberRow.group_id == r.id).order_by(MemberRow.id)
            ).all()
        ms = [_member(m) for m in members]
        return Group(
            id=r.id,
            name=r.name,
            site=r.site,
            recovery_site=r.recovery_site,
            policy=r.policy,
            created_at=r.created_at,
            servers=tuple(m for m in ms if m.kind == "server"),
            volumes=tuple(m for m in ms if m.kind == "volume"),
        )

    def get_group(self, ref: str) -> Group:
        g = self.find_group(ref)
        if g is None:
            raise Unknown(f"no protection group {ref!r}")
        return g

    def list_groups(self, *, site: str | None = None) -> list[Group]:
        with self._read() as conn:
            q = select(GroupRow.id).order_by(GroupRow.name)
            if site is not None:
                q = q.where(GroupRow.site == site)
            ids = conn.execute(q).scalars().all()
        return [self.get_group(i) for i in ids]

    def set_group_policy(self, ref: str, policy: str) -> Group:
        g = self.get_group(ref)
        self.get_policy(policy)
        with self._write() as conn:
            conn.execute(update(GroupRow).where(GroupRow.id == g.id).values(policy=policy))
        return self.get_group(g.id)

    def find_member(self, site: str, kind: str, cloud_id: str) -> Member | None:
        with self._read() as conn:
            r = conn.execute(
                select(MemberRow).where(
                    MemberRow.site == site, MemberRow.kind == kind, MemberRow.cloud_id == cloud_id
                )
            ).one_or_none()
        return None if r is None else _member(r)

    def add_member(self, group: Group, member: Member, *, now: float) -> Group:
        """Add a server or volume to a group; a resource is protected by one group only."""
        if member.site != group.site:
            raise Conflict(
                f"{member.kind} {member.name or member.cloud_id} is at site {member.site}, "
                f"group {group.name!r} protects site {group.site}"
            )
        existing = self.find_member(member.site, member.kind, member.cloud_id)
        if existing is not None:
            owner = self.find_group(existing.group_id)
            raise Conflict(
                f"{member.kind} {member.cloud_id} is already protected"
                f" (group {owner.name if owner else existing.group_id!r})"
            )
        values = {**member.to_dict(), "group_id": group.id, "created_at": now}
        if member.kind == "server" and member.quiesce_rank == 0:
            values["quiesce_rank"] = len(group.servers) + 1
        try:
            with self._write() as conn:
                conn.execute(insert(MemberRow).values(**values))
        except IntegrityError:
            raise Conflict(f"{member.kind} {member.cloud_id} is already protected") from None
        return self.get_group(group.id)

    # -- checkpoints -----------------------------------------------------------
    def create_checkpoint(self, cp: Checkpoint) -> Checkpoint:
        values = cp.to_dict()
        with self._write() as conn:
            found = conn.execute(
                select(CheckpointRow.id).where(CheckpointRow.id == cp.id)
            ).one_or_none()
            if found is None:
                conn.execute(insert(CheckpointRow).values(**values))
        return self.get_checkpoint(cp.id)

    def update_checkpoint(self, checkpoint_id: str, **values: Any) -> Checkpoint:
        with self._write() as conn:
            conn.execute(
                update(CheckpointRow).where(CheckpointRow.id == checkpoint_id).values(**values)
            )
        return self.get_checkpoint(checkpoint_id)

    def get_checkpoint(self, checkpoint_id: str) -> Checkpoint:
        with self._read() as conn:
            r = conn.execute(
                select(CheckpointRow).where(CheckpointRow.id == checkpoint_id)
            ).one_or_none()
        if r is None:
            raise Unknown(f"no checkpoint {checkpoint_id!r}")
        return _checkpoint(r)

    def list_checkpoints(
        self, *, group_id: str | None = None, states: tuple[str, ...] | None = None
    ) -> list[Checkpoint]:
        """Oldest first."""
        q = select(CheckpointRow).order_by(CheckpointRow.requested_at, CheckpointRow.id)
        if group_id is not None:
            q = q.where(CheckpointRow.group_id == group_id)
        if states is not None:
            q = q.where(CheckpointRow.state.in_(states))
        with self._read() as conn:
            return [_checkpoint(r) for r in conn.execute(q).all()]

    def latest_checkpoint(self, group_id: str) -> Checkpoint | None:
        cps = self.list_checkpoints(group_id=group_id)
        return cps[-1] if cps else None

    def made_backups(self, checkpoint_id: str) -> list[str]:
        """The backups a checkpoint's workflow made, oldest first (the engine's resource ledger).

        For a checkpoint that failed after some of its backups landed: its row
        records no backups, the ledger does.
        """
        q = (
            select(ResourceRow.cloud_id)
            .where(ResourceRow.run_id == checkpoint_id, ResourceRow.kind == "backup")
            .order_by(ResourceRow.id)
        )
        with self._read() as conn:
            return list(conn.execute(q).scalars())

    # -- recovery runs ---------------------------------------------------------
    def create_run(self, **values: Any) -> dict[str, Any]:
        with self._write() as conn:
            found = conn.execute(select(RunRow.id).where(RunRow.id == values["id"])).one_or_none()
            if found is None:
                conn.execute(insert(RunRow).values(**values))
        return self.get_run(values["id"])

    def get_run(self, run_id: str) -> dict[str, Any]:
        with self._read() as conn:
            r = conn.execute(select(RunRow).where(RunRow.id == run_id)).one_or_none()
        if r is None:
            raise Unknown(f"no recovery run {run_id!r}")
        return dict(r._mapping)

    def list_runs(self) -> list[dict[str, Any]]:
        with self._read() as conn:
            rows = conn.execute(select(RunRow).order_by(RunRow.requested_at)).all()
        return [dict(r._mapping) for r in rows]

    def forget_group(self, ref: str) -> None:
        g = self.get_group(ref)
        with self._write() as conn:
            conn.execute(delete(MemberRow).where(MemberRow.group_id == g.id))
            conn.execute(delete(GroupRow).where(GroupRow.id == g.id))


__all__ = ["DEFAULT_POLICY", "Catalog"]
