"""Idempotent cloud creates: a replayed step finds what it made instead of making another.

OpenStack has no idempotency keys, and a create whose reply was lost (the
controller died, the connection dropped) may or may not have happened.  So
every resource a workflow creates carries an :class:`IdempotencyTag`: the
fixed, deterministic *name* the step gives it, plus *metadata* holding the
run id and the step id.  Before creating, the step looks for a resource
with that name and metadata; a replay finds the one the cloud accepted
before the crash.

Tag format (see ``docs/engine.md``)::

    name:      the name the step chose, e.g. "web-1" (same on every replay)
    metadata:  {"liferaft_run": "<run id>", "liferaft_step": "<step id>"}
    tags:      ["liferaft_run=<run id>", "liferaft_step=<step id>"]   (Neutron-style string tags)
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeAlias, TypeVar, cast

T = TypeVar("T")

META_RUN = "liferaft_run"
META_STEP = "liferaft_step"


@dataclass(frozen=True)
class IdempotencyTag:
    name: str
    run_id: str
    step_id: str

    @property
    def metadata(self) -> dict[str, str]:
        """Key/value metadata to put on the resource (Nova, Cinder, Glance, Swift)."""
        return {META_RUN: self.run_id, META_STEP: self.step_id}

    @property
    def tags(self) -> list[str]:
        """The same as string tags (Neutron)."""
        return [f"{META_RUN}={self.run_id}", f"{META_STEP}={self.step_id}"]

    def matches(
        self,
        name: str | None,
        metadata: Mapping[str, str] | None = None,
        tags: Sequence[str] | None = None,
    ) -> bool:
        """Whether a resource with this name and metadata (or tags) carries this tag."""
        if name != self.name:
            return False
        if metadata is not None and all(metadata.get(k) == v for k, v in self.metadata.items()):
            return True
        return tags is not None and set(self.tags) <= set(tags)


MaybeAwaitable: TypeAlias = Awaitable[T] | T


async def resolve(value: MaybeAwaitable[T]) -> T:
    """Await ``value`` if it is awaitable (step functions and adapters may be sync or async)."""
    if inspect.isawaitable(value):
        return await cast(Awaitable[T], value)
    return value


async def ensure_created(
    find: Callable[[IdempotencyTag], MaybeAwaitable[T | None]],
    create: Callable[[IdempotencyTag], MaybeAwaitable[T]],
    tag: IdempotencyTag,
    *,
    after_create: Callable[[T], None] | None = None,
) -> T:
    """Return the resource carrying ``tag``, creating it only if the cloud has none.

    ``find(tag)`` must look the resource up *in the cloud* (by name and
    metadata), not in the controller's records: the point is to find what
    the cloud accepted when the controller did not live to record it.
    ``create(tag)`` must put ``tag.name`` and ``tag.metadata`` on what it makes.
    """
    found = await resolve(find(tag))
    if found is not None:
        return found
    created = await resolve(create(tag))
    if after_create is not None:
        after_create(created)
    return created
