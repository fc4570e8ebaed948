"""``fixed-interval``: ORBIT's behaviour -- every group every ``max_protection_interval``.

A group is checkpointed once ``interval_s`` (ORBIT's default: 30 minutes)
has passed since its last capture; with a common start every group fires
at once, as ORBIT's DR-Orchestrator did. No rates are set: transfers share
the replication budget equally.
"""

from __future__ import annotations

from liferaft.logic.contract import CheckpointOrder, Decisions, State


class FixedInterval:
    """Checkpoint every group every ``interval_s`` seconds."""

    name = "fixed-interval"
    capabilities: frozenset[str] = frozenset({"checkpoint-schedule"})

    def __init__(self, interval_s: float = 1800.0) -> None:
        if interval_s <= 0:
            raise ValueError(f"interval_s must be positive, not {interval_s}")
        self.interval_s = interval_s

    def decide(self, state: State) -> Decisions:
        now = state.now_s
        orders = tuple(
            CheckpointOrder(g.group_id, f"{self.interval_s:g} s since the last capture")
            for g in state.groups
            if now - g.last_capture_s >= self.interval_s - 1e-9
        )
        return Decisions(checkpoints=orders)
