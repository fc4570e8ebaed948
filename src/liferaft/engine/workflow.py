"""Workflow definitions: a graph of named steps with dependencies.

A definition is code, rebuilt from the workflow's recorded ``params`` every
time the workflow is driven (after a restart too), so a builder must be
deterministic: the same params give the same steps.  The executor checks
the rebuilt graph against the recorded one and refuses to go on if they
differ.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    from liferaft.engine.executor import StepContext

#: A step's action (or undo): sync or async, returns a JSON-serializable result.
StepFn: TypeAlias = Callable[["StepContext"], Awaitable[Any] | Any]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff for :class:`~liferaft.errors.RetryLater`, on the injected clock.

    Attempt ``n`` (1-based) that fails waits ``min(max_delay, initial *
    multiplier ** (n - 1))`` seconds (at least what the error asked for)
    before attempt ``n + 1``; after ``max_attempts`` attempts the step fails.
    """

    max_attempts: int = 5
    initial: float = 1.0
    multiplier: float = 2.0
    max_delay: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError(f"RetryPolicy.max_attempts must be >= 1, not {self.max_attempts}")
        if self.initial < 0 or self.multiplier < 1 or self.max_delay < 0:
            raise ValueError(f"RetryPolicy: bad backoff {self!r}")

    def delay(self, attempt: int, asked: float | None = None) -> float:
        backoff = min(self.max_delay, self.initial * self.multiplier ** max(0, attempt - 1))
        return max(backoff, asked or 0.0)


@dataclass(frozen=True)
class StepDef:
    """One step: what it does, what it waits for, where it acts, how to undo it."""

    name: str
    run: StepFn
    depends_on: tuple[str, ...] = ()
    #: The site it acts on; steps on one site share the per-site concurrency limit.
    site: str | None = None
    #: Called (newest first) when the workflow is rolled back after this step ran.
    undo: StepFn | None = None
    retry: RetryPolicy | None = None


@dataclass
class WorkflowDef:
    """A validated step graph; ``order`` is a topological order (definition order kept)."""

    kind: str
    steps: Sequence[StepDef]
    #: How many steps may act on one site at once (None: no limit).
    site_concurrency: int | None = None
    #: How many steps may run at once overall (None: no limit).
    max_parallel: int | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    order: list[str] = field(init=False)

    def __post_init__(self) -> None:
        self._by_name: dict[str, StepDef] = {}
        for s in self.steps:
            if not s.name:
                raise ValueError(f"workflow {self.kind!r}: a step has an empty name")
            if s.name in self._by_name:
                raise ValueError(f"workflow {self.kind!r}: two steps are named {s.name!r}")
            self._by_name[s.name] = s
        for s in self.steps:
            for dep in s.depends_on:
                if dep not in self._by_name:
                    raise ValueError(
                        f"workflow {self.kind!r}: step {s.name!r} depends on unknown step {dep!r}"
                    )
        for limit, what in (
            (self.site_concurrency, "site_concurrency"),
            (self.max_parallel, "max_parallel"),
        ):
            if limit is not None and limit < 1:
                raise ValueError(f"workflow {self.kind!r}: {what} must be >= 1, not {limit}")
        self.order = self._toposort()

    def _toposort(self) -> list[str]:
        done: set[str] = set()
        order: list[str] = []
        remaining = [s.name for s in self.steps]
        while remaining:
            ready = [n for n in remaining if set(self._by_name[n].depends_on) <= done]
            if not ready:
                raise ValueError(
                    f"workflow {self.kind!r}: the dependencies of {', '.join(remaining)} form a cycle"
                )
            order.extend(ready)
            done.update(ready)
            remaining = [n for n in remaining if n not in done]
        return order

    def step(self, name: str) -> StepDef:
        return self._by_name[name]

    def retry_for(self, name: str) -> RetryPolicy:
        return self._by_name[name].retry or self.retry


#: Builds a workflow's definition from its recorded parameters.
Builder: TypeAlias = Callable[[dict[str, Any]], WorkflowDef]
