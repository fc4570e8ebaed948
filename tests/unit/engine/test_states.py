from __future__ import annotations

import pytest

from liferaft.engine.states import (
    STEP_TRANSITIONS,
    WORKFLOW_TERMINAL,
    WORKFLOW_TRANSITIONS,
    StepState,
    WorkflowState,
    check_step,
    check_workflow,
    step_sources,
    workflow_sources,
)
from liferaft.errors import IllegalTransition


def test_tables_cover_every_state() -> None:
    assert set(WORKFLOW_TRANSITIONS) == set(WorkflowState)
    assert set(STEP_TRANSITIONS) == set(StepState)


def test_every_state_but_the_initial_one_is_reachable() -> None:
    for st in WorkflowState:
        if st != WorkflowState.PENDING:
            assert workflow_sources(st), st
    for ss in StepState:
        if ss != StepState.PENDING:
            assert step_sources(ss), ss


def test_terminal_workflow_states_only_lead_to_rollback() -> None:
    for st in WORKFLOW_TERMINAL:
        assert WORKFLOW_TRANSITIONS[st] <= {WorkflowState.ROLLING_BACK}


@pytest.mark.parametrize(
    ("current", "target"),
    [
        ("pending", WorkflowState.DONE),
        ("done", WorkflowState.RUNNING),
        ("rolled_back", WorkflowState.ROLLING_BACK),
        ("cancelled", WorkflowState.RUNNING),
        ("running", WorkflowState.ROLLING_BACK),
    ],
)
def test_illegal_workflow_transitions_raise(current: str, target: WorkflowState) -> None:
    with pytest.raises(IllegalTransition, match=f"'{current}' -> '{target}'"):
        check_workflow(current, target)


def test_step_replay_is_the_only_self_transition_besides_undo() -> None:
    selfish = {s for s, tos in STEP_TRANSITIONS.items() if s in tos}
    assert selfish == {StepState.RUNNING, StepState.UNDOING}
    check_step("running", StepState.RUNNING)
    with pytest.raises(IllegalTransition):
        check_step("done", StepState.RUNNING)
    with pytest.raises(IllegalTransition):
        check_step("skipped", StepState.UNDOING)
