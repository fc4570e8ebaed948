"""DR-Logic: decides when groups are checkpointed and how the WAN is shared.

The plugin contract is in :mod:`liferaft.logic.contract`; the built-in
logics are ``fixed-interval`` (ORBIT's behaviour), ``per-group-interval``
(the best static schedule) and ``rpo-optimal``. :mod:`liferaft.logic.replay`
replays a logic over a simulated day and :mod:`liferaft.logic.bound` gives
a lower bound on what any schedule can achieve under the same model.
"""

from liferaft.logic.contract import (
    KNOWN_CAPABILITIES,
    CheckpointOrder,
    CheckpointRecord,
    Decisions,
    DRLogic,
    FlowRate,
    GroupState,
    LinkState,
    Miss,
    State,
    TransferState,
)
from liferaft.logic.fixed_interval import FixedInterval
from liferaft.logic.per_group_interval import PerGroupInterval
from liferaft.logic.rpo_optimal import RpoOptimal

__all__ = [
    "KNOWN_CAPABILITIES",
    "CheckpointOrder",
    "CheckpointRecord",
    "DRLogic",
    "Decisions",
    "FixedInterval",
    "FlowRate",
    "GroupState",
    "LinkState",
    "Miss",
    "PerGroupInterval",
    "RpoOptimal",
    "State",
    "TransferState",
]
