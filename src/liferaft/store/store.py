"""The state store: workflows, steps, events, leases and the resource ledger.

Every method is one short transaction.  Every write that changes what a
controller does next takes a :class:`~liferaft.store.records.Fence` and
checks it *in the same transaction* with a compare-and-set on the lease row
(``UPDATE leases ... WHERE role = ? AND holder = ? AND epoch = ?``): if
another controller has taken the lease since, the write is refused with
:class:`~liferaft.errors.FencedOff` and nothing is changed.  The same
row lock serializes one role's writers, so on PostgreSQL event ids are
committed in increasing order and a reader that follows ``id > last`` never
skips an event.

State changes are compare-and-set too: the caller passes the states a
transition may start from (the engine's transition table); a record found
in any other state raises :class:`~liferaft.errors.IllegalTransition`.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NoReturn

from sqlalchemy import Connection, Row, Update, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from liferaft.errors import FencedOff, IllegalTransition, NotFound, NotLeader
from liferaft.store.db import make_engines, normalize_url
from liferaft.store.migrate import upgrade_engine
from liferaft.store.models import EventRow, LeaseRow, ResourceRow, StepRow, WorkflowRow
from liferaft.store.records import (
    KEEP,
    Event,
    Fence,
    Lease,
    NewStep,
    Resource,
    Step,
    StepChange,
    Workflow,
    _Keep,
)

# The statements of the hot paths (a step transition, its event, the fence
# check, a ledger entry) are built once: a statement object memoizes its
# cache key, so executing it again skips building and keying the SQL, which
# otherwise costs more CPU than SQLite takes to run it.
_FENCE = (
    update(LeaseRow)
    .where(
        LeaseRow.role == bindparam("f_role"),
        LeaseRow.holder == bindparam("f_holder"),
        LeaseRow.epoch == bindparam("f_epoch"),
    )
    .values(epoch=LeaseRow.epoch)
)
# (Renewing is done before every cloud create, to confirm leadership.)
_RENEW = (
    update(LeaseRow)
    .where(
        LeaseRow.role == bindparam("f_role"),
        LeaseRow.holder == bindparam("f_holder"),
        LeaseRow.epoch == bindparam("f_epoch"),
        LeaseRow.expires_at >= bindparam("l_now"),
    )
    .values(expires_at=bindparam("l_expires"))
)
_EVENT = insert(EventRow).values(
    workflow_id=bindparam("e_workflow_id"),
    step=bindparam("e_step"),
    subject=bindparam("e_subject"),
    from_state=bindparam("e_from"),
    to_state=bindparam("e_to"),
    at=bindparam("e_at"),
    epoch=bindparam("e_epoch"),
    detail=bindparam("e_detail", type_=EventRow.__table__.c.detail.type),
)
_STEP_WHERE = (StepRow.workflow_id == bindparam("s_wid"), StepRow.name == bindparam("s_name"))
# A step's row without its workflow's: the workflow's role is immutable and cached
# (reading it from the workflows table walks past the row's params, a plan of a
# thousand servers, on every transition: 0.14 -> 1.0 ms a transition at 3 MB).
_STEP_FOR_UPDATE = select(StepRow).where(*_STEP_WHERE).with_for_update()
_STEP_FOR_UPDATE_NO_RESULT = (
    select(*(c for c in StepRow.__table__.c if c.name != "result"))
    .where(*_STEP_WHERE)
    .with_for_update()
)
_WORKFLOW_ROLE = select(WorkflowRow.role).where(WorkflowRow.id == bindparam("w_id"))
_RESOURCE_WHERE = (
    ResourceRow.run_id == bindparam("r_run"),
    ResourceRow.step_id == bindparam("r_step"),
    ResourceRow.kind == bindparam("r_kind"),
    ResourceRow.key == bindparam("r_key"),
)
_RESOURCE_GET = select(ResourceRow).where(*_RESOURCE_WHERE)
_RESOURCE_ADD = insert(ResourceRow).values(
    run_id=bindparam("r_run"),
    step_id=bindparam("r_step"),
    kind=bindparam("r_kind"),
    key=bindparam("r_key"),
    cloud_id=bindparam("r_cloud_id"),
    site=bindparam("r_site"),
    created_at=bindparam("r_at"),
    epoch=bindparam("r_epoch"),
)
_WORKFLOW_STATE = select(WorkflowRow.state).where(WorkflowRow.id == bindparam("w_id"))


def _step_update(fields: frozenset[str]) -> Update:
    """``UPDATE steps SET <fields>`` for one step (built once per set of fields)."""
    stmt = _STEP_UPDATES.get(fields)
    if stmt is None:
        stmt = (
            update(StepRow)
            .where(*_STEP_WHERE)
            .values({f: bindparam(f"v_{f}", type_=StepRow.__table__.c[f].type) for f in fields})
        )
        _STEP_UPDATES[fields] = stmt
    return stmt


_STEP_UPDATES: dict[frozenset[str], Update] = {}


class Store:
    """The controller's durable state (SQLite file or PostgreSQL database).

    ``Store(url)`` migrates the schema to the newest revision unless
    ``migrate=False``.
    """

    def __init__(self, url: str, *, migrate: bool = True) -> None:
        self.url = normalize_url(url)
        self._writer, self._reader = make_engines(self.url)
        #: Each workflow's role, once read (it never changes after creation).
        self._roles: dict[str, str] = {}
        if migrate:
            upgrade_engine(self._writer)

    @property
    def dialect(self) -> str:
        return self._writer.dialect.name

    def close(self) -> None:
        self._writer.dispose()
        if self._reader is not self._writer:
            self._reader.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with self._writer.begin() as conn:
            yield conn

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with self._reader.begin() as conn:
            yield conn

    # -- fencing -------------------------------------------------------------
    def _check_fence(self, conn: Connection, fence: Fence) -> None:
        res = conn.execute(
            _FENCE, {"f_role": fence.role, "f_holder": fence.holder, "f_epoch": fence.epoch}
        )
        if res.rowcount == 1:
            return
        current = conn.execute(select(LeaseRow).where(LeaseRow.role == fence.role)).one_or_none()
        now_held = (
            "nobody holds it"
            if current is None or not current.holder
            else f"it is now epoch {current.epoch} held by {current.holder!r}"
        )
        raise FencedOff(
            f"write refused: leadership of {fence.role!r} at epoch {fence.epoch} "
            f"({fence.holder!r}) is no longer current; {now_held}"
        )

    # -- leases --------------------------------------------------------------
    def get_lease(self, role: str) -> Lease | None:
        with self._read() as conn:
            row = conn.execute(select(LeaseRow).where(LeaseRow.role == role)).one_or_none()
        return None if row is None else Lease(row.role, row.holder, row.epoch, row.expires_at)

    def try_acquire(self, role: str, holder: str, *, now: float, ttl: float) -> Lease | None:
        """Take the lease of ``role`` if it is free or expired; ``None`` if someone else holds it.

        Taking it bumps the epoch.  Asking again while holding it returns the
        current lease unchanged (use :meth:`renew` to extend it).
        """
        if not holder:
            raise ValueError("a lease holder needs a non-empty name")
        if ttl <= 0:
            raise ValueError(f"lease ttl must be > 0, not {ttl!r}")
        with self._write() as conn:
            row = conn.execute(
                select(LeaseRow).where(LeaseRow.role == role).with_for_update()
            ).one_or_none()
            if row is None:
                values = {"role": role, "holder": holder, "epoch": 1, "expires_at": now + ttl}
                ins = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
                conn.execute(
                    ins(LeaseRow).values(**values).on_conflict_do_nothing(index_elements=["role"])
                )
                # (rowcount is not reliable for INSERT .. ON CONFLICT on every driver.)
                won = conn.execute(select(LeaseRow).where(LeaseRow.role == role)).one()
                if won.holder == holder and won.epoch == 1:
                    return Lease(role, holder, 1, won.expires_at)
                return None
            if row.holder == holder and row.expires_at >= now:
                return Lease(row.role, row.holder, row.epoch, row.expires_at)
            if row.holder and row.expires_at >= now:
                return None
            res = conn.execute(
                update(LeaseRow)
                .where(
                    LeaseRow.role == role,
                    LeaseRow.epoch == row.epoch,
                    (LeaseRow.holder == "") | (LeaseRow.expires_at < now),
                )
                .values(holder=holder, epoch=row.epoch + 1, expires_at=now + ttl)
            )
            return Lease(role, holder, row.epoch + 1, now + ttl) if res.rowcount == 1 else None

    def renew(self, fence: Fence, *, now: float, ttl: float) -> Lease | None:
        """Extend a lease that is still held and unexpired; ``None`` if it was lost.

        An expired lease is not renewed even if nobody took it: its holder
        must acquire it again under a new epoch (and replay what it was doing).
        """
        with self._write() as conn:
            res = conn.execute(
                _RENEW,
                {
                    "f_role": fence.role,
                    "f_holder": fence.holder,
                    "f_epoch": fence.epoch,
                    "l_now": now,
                    "l_expires": now + ttl,
                },
            )
        if res.rowcount != 1:
            return None
        return Lease(fence.role, fence.holder, fence.epoch, now + ttl)

    def release(self, fence: Fence) -> bool:
        """Give the lease up (a clean shutdown) so another controller need not wait for expiry."""
        with self._write() as conn:
            res = conn.execute(
                update(LeaseRow)
                .where(
                    LeaseRow.role == fence.role,
                    LeaseRow.holder == fence.holder,
                    LeaseRow.epoch == fence.epoch,
                )
                .values(holder="", expires_at=0.0)
            )
        return res.rowcount == 1

    # -- workflows -----------------------------------------------------------
    def create_workflow(
        self,
        fence: Fence,
        *,
        workflow_id: str,
        kind: str,
        params: dict[str, Any],
        steps: Sequence[NewStep],
        now: float,
        state: str,
        step_state: str,
    ) -> Workflow:
        """Record a new workflow and its steps (in ``state`` / ``step_state``), or return it if it exists.

        Creating the same ``workflow_id`` twice with the same kind and params
        is a no-op, so a caller that lost the reply can simply ask again.
        """
        with self._write() as conn:
            self._check_fence(conn, fence)
            existing = conn.execute(
                select(WorkflowRow).where(WorkflowRow.id == workflow_id)
            ).one_or_none()
            if existing is not None:
                if existing.kind != kind or existing.params != params:
                    raise ValueError(
                        f"workflow {workflow_id!r} already exists as a {existing.kind!r} "
                        "with other parameters"
                    )
                return _workflow(existing)
            conn.execute(
                insert(WorkflowRow).values(
                    id=workflow_id,
                    kind=kind,
                    state=state,
                    params=params,
                    role=fence.role,
                    created_at=now,
                    updated_at=now,
                    epoch=fence.epoch,
                    error=None,
                )
            )
            if steps:
                conn.execute(
                    insert(StepRow),
                    [
                        {
                            "workflow_id": workflow_id,
                            "name": s.name,
                            "position": i,
                            "state": step_state,
                            "attempts": 0,
                            "depends_on": list(s.depends_on),
                            "site": s.site,
                            "result": None,
                            "error": None,
                            "retry_at": None,
                            "updated_at": now,
                            "epoch": fence.epoch,
                        }
                        for i, s in enumerate(steps)
                    ],
                )
            self._event(
                conn, fence, now, workflow_id, None, "workflow", None, state, {"kind": kind}
            )
            row = conn.execute(select(WorkflowRow).where(WorkflowRow.id == workflow_id)).one()
            return _workflow(row)

    def get_workflow(self, workflow_id: str) -> Workflow:
        with self._read() as conn:
            row = conn.execute(
                select(WorkflowRow).where(WorkflowRow.id == workflow_id)
            ).one_or_none()
        if row is None:
            raise NotFound(f"no workflow {workflow_id!r}")
        return _workflow(row)

    def list_workflows(
        self,
        *,
        states: Collection[str] | None = None,
        kind: str | None = None,
        role: str | None = None,
    ) -> list[Workflow]:
        q = select(WorkflowRow).order_by(WorkflowRow.created_at, WorkflowRow.id)
        if states is not None:
            q = q.where(WorkflowRow.state.in_(list(states)))
        if kind is not None:
            q = q.where(WorkflowRow.kind == kind)
        if role is not None:
            q = q.where(WorkflowRow.role == role)
        with self._read() as conn:
            return [_workflow(r) for r in conn.execute(q)]

    def transition_workflow(
        self,
        fence: Fence,
        workflow_id: str,
        *,
        to: str,
        allowed_from: Collection[str],
        now: float,
        error: str | _Keep | None = KEEP,
        detail: dict[str, Any] | None = None,
    ) -> Workflow:
        """Move a workflow to ``to`` if it is in one of ``allowed_from``; record an event."""
        with self._write() as conn:
            self._check_fence(conn, fence)
            row = conn.execute(
                select(WorkflowRow).where(WorkflowRow.id == workflow_id).with_for_update()
            ).one_or_none()
            if row is None:
                raise NotFound(f"no workflow {workflow_id!r}")
            if row.role != fence.role:
                raise NotLeader(
                    f"workflow {workflow_id!r} belongs to role {row.role!r}, not {fence.role!r}"
                )
            if row.state not in allowed_from:
                raise IllegalTransition(f"workflow {workflow_id}", row.state, to)
            values: dict[str, Any] = {"state": to, "updated_at": now, "epoch": fence.epoch}
            if not isinstance(error, _Keep):
                values["error"] = error
            conn.execute(update(WorkflowRow).where(WorkflowRow.id == workflow_id).values(**values))
            ev = dict(detail or {})
            if not isinstance(error, _Keep) and error is not None:
                ev.setdefault("error", error)
            self._event(conn, fence, now, workflow_id, None, "workflow", row.state, to, ev)
            new = conn.execute(select(WorkflowRow).where(WorkflowRow.id == workflow_id)).one()
            return _workflow(new)

    # -- steps ---------------------------------------------------------------
    def get_steps(self, workflow_id: str) -> list[Step]:
        with self._read() as conn:
            rows = conn.execute(
                select(StepRow).where(StepRow.workflow_id == workflow_id).order_by(StepRow.position)
            )
            return [_step(r) for r in rows]

    def get_step(self, workflow_id: str, name: str) -> Step:
        with self._read() as conn:
            row = conn.execute(
                select(StepRow).where(StepRow.workflow_id == workflow_id, StepRow.name == name)
            ).one_or_none()
        if row is None:
            raise NotFound(f"workflow {workflow_id!r} has no step {name!r}")
        return _step(row)

    def transition_step(
        self,
        fence: Fence,
        workflow_id: str,
        name: str,
        *,
        to: str,
        allowed_from: Collection[str],
        now: float,
        attempts: int | None = None,
        result: Any = KEEP,
        error: str | _Keep | None = KEEP,
        retry_at: float | _Keep | None = KEEP,
        detail: dict[str, Any] | None = None,
    ) -> Step:
        """Move a step to ``to`` if it is in one of ``allowed_from``; record an event."""
        change = StepChange(name, to, allowed_from, attempts, result, error, retry_at, detail)
        return self.transition_steps(fence, workflow_id, [change], now=now)[0]

    def transition_steps(
        self, fence: Fence, workflow_id: str, changes: Sequence[StepChange], *, now: float
    ) -> list[Step]:
        """Apply several step transitions of one workflow in one transaction (all or none).

        Per step: one read (the step; its workflow's role is cached), one update of
        the fields that change, one event; the returned records are built from
        what was read and written, not read back, and a result passed in is
        encoded once (a kept one is not decoded unless it is read).
        """
        with self._write() as conn:
            self._check_fence(conn, fence)
            return [self._transition_step(conn, fence, workflow_id, c, now) for c in changes]

    def _transition_step(
        self, conn: Connection, fence: Fence, workflow_id: str, c: StepChange, now: float
    ) -> Step:
        name, to = c.name, c.to
        keep_result = isinstance(c.result, _Keep)
        stmt = _STEP_FOR_UPDATE if keep_result else _STEP_FOR_UPDATE_NO_RESULT
        row = conn.execute(stmt, {"s_wid": workflow_id, "s_name": name}).one_or_none()
        if row is None:
            self._step_missing(conn, workflow_id, name)
        role = self._role_of(conn, workflow_id)
        if role != fence.role:
            raise NotLeader(
                f"workflow {workflow_id!r} belongs to role {role!r}, not {fence.role!r}"
            )
        if row.state not in c.allowed_from:
            raise IllegalTransition(f"step {name!r} of workflow {workflow_id}", row.state, to)
        values: dict[str, Any] = {"state": to, "updated_at": now, "epoch": fence.epoch}
        ev = dict(c.detail or {})
        if c.attempts is not None:
            values["attempts"] = c.attempts
            ev.setdefault("attempt", c.attempts)
        if not keep_result:
            values["result"] = c.result
        if not isinstance(c.error, _Keep):
            values["error"] = c.error
            if c.error is not None:
                ev.setdefault("error", c.error)
        if not isinstance(c.retry_at, _Keep):
            values["retry_at"] = c.retry_at
            if c.retry_at is not None:
                ev.setdefault("retry_at", c.retry_at)
        params: dict[str, Any] = {f"v_{k}": v for k, v in values.items()}
        params.update(s_wid=workflow_id, s_name=name)
        conn.execute(_step_update(frozenset(values)), params)
        self._event(conn, fence, now, workflow_id, name, "step", row.state, to, ev)
        return Step(
            workflow_id,
            name,
            row.position,
            to,
            values.get("attempts", row.attempts),
            tuple(row.depends_on or ()),
            row.site,
            row.result if keep_result else c.result,
            values.get("error", row.error),
            values.get("retry_at", row.retry_at),
            now,
            fence.epoch,
        )

    def _role_of(self, conn: Connection, workflow_id: str) -> str:
        role = self._roles.get(workflow_id)
        if role is None:
            role = str(conn.execute(_WORKFLOW_ROLE, {"w_id": workflow_id}).scalar_one())
            self._roles[workflow_id] = role
        return role

    def _step_missing(self, conn: Connection, workflow_id: str, name: str) -> NoReturn:
        owner = conn.execute(
            select(WorkflowRow.role).where(WorkflowRow.id == workflow_id)
        ).scalar_one_or_none()
        if owner is None:
            raise NotFound(f"no workflow {workflow_id!r}")
        raise NotFound(f"workflow {workflow_id!r} has no step {name!r}")

    def get_workflow_state(self, workflow_id: str) -> str:
        """Only the state of a workflow (cheap: its params are not read)."""
        with self._read() as conn:
            state = conn.execute(_WORKFLOW_STATE, {"w_id": workflow_id}).scalar_one_or_none()
        if state is None:
            raise NotFound(f"no workflow {workflow_id!r}")
        return str(state)

    # -- events --------------------------------------------------------------
    def _event(
        self,
        conn: Connection,
        fence: Fence,
        now: float,
        workflow_id: str | None,
        step: str | None,
        subject: str,
        from_state: str | None,
        to_state: str | None,
        detail: dict[str, Any],
    ) -> None:
        conn.execute(
            _EVENT,
            {
                "e_workflow_id": workflow_id,
                "e_step": step,
                "e_subject": subject,
                "e_from": from_state,
                "e_to": to_state,
                "e_at": now,
                "e_epoch": fence.epoch,
                "e_detail": detail,
            },
        )

    def add_note(
        self,
        fence: Fence,
        *,
        now: float,
        detail: dict[str, Any],
        workflow_id: str | None = None,
        step: str | None = None,
    ) -> None:
        """Append an event that is not a transition (a progress message, a warning)."""
        with self._write() as conn:
            self._check_fence(conn, fence)
            self._event(conn, fence, now, workflow_id, step, "note", None, None, detail)

    def events(
        self, *, after: int = 0, workflow_id: str | None = None, limit: int = 1000
    ) -> list[Event]:
        """Events with ``id > after`` in id order (poll with the last id seen to stream)."""
        q = select(EventRow).where(EventRow.id > after).order_by(EventRow.id).limit(limit)
        if workflow_id is not None:
            q = q.where(EventRow.workflow_id == workflow_id)
        with self._read() as conn:
            return [
                Event(
                    r.id,
                    r.workflow_id,
                    r.step,
                    r.subject,
                    r.from_state,
                    r.to_state,
                    r.at,
                    r.epoch,
                    dict(r.detail or {}),
                )
                for r in conn.execute(q)
            ]

    # -- resource ledger -----------------------------------------------------
    def record_resource(
        self,
        fence: Fence,
        *,
        run_id: str,
        step_id: str,
        kind: str,
        key: str,
        cloud_id: str,
        site: str | None,
        now: float,
    ) -> Resource:
        """Note that ``(run_id, step_id, kind, key)`` is the cloud's ``cloud_id``; idempotent.

        Recording the same tag again with the same cloud id returns the
        existing entry; with another cloud id it is refused (that would be a
        duplicate the idempotency helper should have prevented).
        """
        tag = {"r_run": run_id, "r_step": step_id, "r_kind": kind, "r_key": key}
        with self._write() as conn:
            self._check_fence(conn, fence)
            row = conn.execute(_RESOURCE_GET, tag).one_or_none()
            if row is None:
                res = conn.execute(
                    _RESOURCE_ADD,
                    {
                        **tag,
                        "r_cloud_id": cloud_id,
                        "r_site": site,
                        "r_at": now,
                        "r_epoch": fence.epoch,
                    },
                )
                pk = res.inserted_primary_key
                assert pk is not None
                return Resource(
                    int(pk[0]), run_id, step_id, kind, key, cloud_id, site, now, fence.epoch
                )
            if row.cloud_id != cloud_id:
                raise ValueError(
                    f"resource ledger: {kind} {key!r} of run {run_id} step {step_id} is already "
                    f"{row.cloud_id!r}, refusing to record {cloud_id!r}"
                )
            return _resource(row)

    def find_resource(self, *, run_id: str, step_id: str, kind: str, key: str) -> Resource | None:
        with self._read() as conn:
            row = conn.execute(
                select(ResourceRow).where(
                    ResourceRow.run_id == run_id,
                    ResourceRow.step_id == step_id,
                    ResourceRow.kind == kind,
                    ResourceRow.key == key,
                )
            ).one_or_none()
        return None if row is None else _resource(row)

    def list_resources(
        self, *, run_id: str | None = None, step_id: str | None = None
    ) -> list[Resource]:
        q = select(ResourceRow).order_by(ResourceRow.id)
        if run_id is not None:
            q = q.where(ResourceRow.run_id == run_id)
        if step_id is not None:
            q = q.where(ResourceRow.step_id == step_id)
        with self._read() as conn:
            return [_resource(r) for r in conn.execute(q)]


def _workflow(r: Row[Any]) -> Workflow:
    return Workflow(
        r.id,
        r.kind,
        r.state,
        dict(r.params or {}),
        r.role,
        r.created_at,
        r.updated_at,
        r.epoch,
        r.error,
    )


def _step(r: Row[Any]) -> Step:
    return Step(
        r.workflow_id,
        r.name,
        r.position,
        r.state,
        r.attempts,
        tuple(r.depends_on or ()),
        r.site,
        r.result,
        r.error,
        r.retry_at,
        r.updated_at,
        r.epoch,
    )


def _resource(r: Row[Any]) -> Resource:
    return Resource(
        r.id, r.run_id, r.step_id, r.kind, r.key, r.cloud_id, r.site, r.created_at, r.epoch
    )
