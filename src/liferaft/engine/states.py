"""Workflow and step states, and the table of allowed transitions.

Every change goes through the store as a compare-and-set whose allowed
"from" states come from these tables, so an illegal transition raises
:class:`~liferaft.errors.IllegalTransition` and changes nothing.  A state
may move to itself only where listed (a step found ``running`` after a crash
is re-run: ``running -> running`` with the next attempt number).
"""

from __future__ import annotations

from enum import StrEnum

from liferaft.errors import IllegalTransition


class WorkflowState(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    #: Waiting for an operator (a step raised NeedsHuman): resume, cancel or roll back.
    PAUSED = "paused"
    #: No new steps start; in-flight ones finish.
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"
    FAILED = "failed"
    DONE = "done"
    ROLLING_BACK = "rolling_back"
    ROLLED_BACK = "rolled_back"
    ROLLBACK_FAILED = "rollback_failed"


class StepState(StrEnum):
    PENDING = "pending"
    #: Recorded before the step acts (with its attempt number).
    RUNNING = "running"
    #: A temporary error; runs again at ``retry_at``.
    RETRYING = "retrying"
    #: Waiting for an operator (NeedsHuman).
    BLOCKED = "blocked"
    DONE = "done"
    FAILED = "failed"
    #: Never ran (its workflow was cancelled or failed first).
    SKIPPED = "skipped"
    UNDOING = "undoing"
    UNDONE = "undone"
    UNDO_FAILED = "undo_failed"


W = WorkflowState
S = StepState

WORKFLOW_TRANSITIONS: dict[WorkflowState, frozenset[WorkflowState]] = {
    W.PENDING: frozenset({W.RUNNING, W.CANCELLED}),
    W.RUNNING: frozenset({W.DONE, W.FAILED, W.PAUSED, W.CANCELLING}),
    W.PAUSED: frozenset({W.RUNNING, W.CANCELLING, W.ROLLING_BACK}),
    W.CANCELLING: frozenset({W.CANCELLED}),
    W.CANCELLED: frozenset({W.ROLLING_BACK}),
    W.FAILED: frozenset({W.ROLLING_BACK}),
    W.DONE: frozenset({W.ROLLING_BACK}),
    W.ROLLING_BACK: frozenset({W.ROLLED_BACK, W.ROLLBACK_FAILED}),
    W.ROLLBACK_FAILED: frozenset({W.ROLLING_BACK}),
    W.ROLLED_BACK: frozenset(),
}

STEP_TRANSITIONS: dict[StepState, frozenset[StepState]] = {
    S.PENDING: frozenset({S.RUNNING, S.SKIPPED}),
    # running -> running: replayed after a crash; -> failed: interrupted and cancelled
    S.RUNNING: frozenset({S.RUNNING, S.DONE, S.FAILED, S.RETRYING, S.BLOCKED}),
    # retrying -> failed: cancelled (or rolled back) while waiting to retry
    S.RETRYING: frozenset({S.RUNNING, S.FAILED}),
    # blocked -> pending: an operator resumed the workflow; -> failed: rolled back instead
    S.BLOCKED: frozenset({S.PENDING, S.FAILED}),
    S.DONE: frozenset({S.UNDOING, S.UNDONE}),
    # a failed step may have half-acted: rollback runs its undo too
    S.FAILED: frozenset({S.UNDOING, S.UNDONE}),
    S.SKIPPED: frozenset(),
    S.UNDOING: frozenset({S.UNDOING, S.UNDONE, S.UNDO_FAILED}),
    S.UNDO_FAILED: frozenset({S.UNDOING}),
    S.UNDONE: frozenset(),
}

#: A workflow in one of these states is not driven by anyone.
WORKFLOW_TERMINAL = frozenset({W.DONE, W.FAILED, W.CANCELLED, W.ROLLED_BACK, W.ROLLBACK_FAILED})
#: States after which a step does not run again (short of a rollback).
STEP_SETTLED = frozenset({S.DONE, S.FAILED, S.SKIPPED, S.UNDONE})


def workflow_sources(target: WorkflowState) -> frozenset[str]:
    """The workflow states from which ``target`` may be entered."""
    return frozenset(str(s) for s, tos in WORKFLOW_TRANSITIONS.items() if target in tos)


def step_sources(target: StepState) -> frozenset[str]:
    """The step states from which ``target`` may be entered."""
    return frozenset(str(s) for s, tos in STEP_TRANSITIONS.items() if target in tos)


def check_workflow(current: str, target: WorkflowState, what: str = "workflow") -> None:
    """Raise :class:`IllegalTransition` unless ``current -> target`` is allowed."""
    if str(current) not in workflow_sources(target):
        raise IllegalTransition(what, str(current), str(target))


def check_step(current: str, target: StepState, what: str = "step") -> None:
    if str(current) not in step_sources(target):
        raise IllegalTransition(what, str(current), str(target))
