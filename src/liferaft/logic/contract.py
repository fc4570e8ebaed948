"""The DR-Logic plugin contract: what a logic sees and what it decides.

A DR-Logic is a class registered in the ``liferaft.logics`` entry-point group
and chosen by the ``logic_driver`` setting. It has a ``name``, a set of
``capabilities`` and one pure method, :meth:`DRLogic.decide`, from a
:class:`State` to :class:`Decisions`. It never reads a clock, sleeps or does
I/O: the controller builds the state every ``drlogic_interval`` from what
real clouds and networks offer, and applies the decisions. The same
function runs over a simulated day in seconds (``bench/rpo.py``).

Units, everywhere: times and durations in **seconds** (``*_s``), sizes in
**bytes** (``*_bytes``), rates in **bytes per second** (``*_bps``). Times are
on the controller's clock (any epoch); only differences matter.

The state holds only what a real deployment can measure:

* per group: its RPO target, weight, checkpoint overhead (quiesce and
  snapshot time), and the sizes and durations of its past checkpoints --
  the dirty-data estimate comes from them (an incremental backup's size is
  known once it is taken; the bytes a VM will dirty in the future are not)
  -- and, where the cloud offers them, its disks' write counters;
* the transfers in flight (bytes remaining, when they were captured);
* per link: capacity, the measured application traffic and replication
  use, the share of application traffic replication may displace, and
  optionally the application traffic's daily profile (what a LinkMonitor
  has seen over the last day).

Decisions: which groups to checkpoint now, how many transfers may run at
once, the aggregate rate the replication class may use (a LinkShaper's
ceiling), and a guaranteed rate per transfer, each with a short reason.
Flows Liferaft carries itself (``image-copy`` chunks) and flows it does not
(``volume-backup``, shaped through the LinkShaper port) are rated the same
way; ``carrier`` says which port applies the rate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol, runtime_checkable

Carrier = Literal["image-copy", "volume-backup"]

#: Capabilities a logic may declare.
#: ``checkpoint-schedule``: decides when groups are checkpointed.
#: ``rate-control``: sets transfer rates and the replication ceiling.
#: ``overload-report``: says who misses a target, by how much and why.
KNOWN_CAPABILITIES = frozenset({"checkpoint-schedule", "rate-control", "overload-report"})


@dataclass(frozen=True, slots=True)
class CheckpointRecord:
    """One past checkpoint of a group, as the backup service reported it.

    ``capture_s`` is when it was captured (quiesce start), ``interval_s`` the
    time since the group's previous capture, ``bytes`` what the incremental
    checkpoint shipped (the dirty data of that interval) and
    ``completed_s`` when it landed at the recovery site (``None`` while in
    flight). ``written_bytes`` is what the group's disks wrote over the
    interval (hypervisor write counters; not distinct bytes), when known.
    """

    capture_s: float
    interval_s: float
    bytes: int
    completed_s: float | None = None
    written_bytes: int | None = None


@dataclass(frozen=True, slots=True)
class TransferState:
    """A checkpoint's transfer that has not landed yet.

    ``flow_id`` names the flow for rate decisions. ``released`` is false
    while the checkpoint's quiesce/snapshot overhead is still running (the
    bytes are not yet known: ``bytes_total`` is then ``None``).
    ``deadline_predecessor_s`` is the capture time of the group's previous
    checkpoint: while this transfer has not landed, the group's recovery
    point is at most that.
    """

    flow_id: str
    group_id: str
    carrier: Carrier
    capture_s: float
    predecessor_capture_s: float
    released: bool
    bytes_total: int | None
    bytes_remaining: int | None


@dataclass(frozen=True, slots=True)
class GroupState:
    """A protection group as DR-Logic sees it.

    ``recovery_point_s`` is the capture time of the newest checkpoint that
    is complete at the recovery site; ``last_capture_s`` the capture time of
    the newest checkpoint taken (complete or not). ``history`` is the most
    recent checkpoints, oldest first. ``written_since_capture_bytes`` and
    ``write_rate_bps`` come from the hypervisor's disk write counters (Nova
    server diagnostics, Ceilometer ``disk.device.write.bytes``): bytes
    written since the last capture and over the last interval -- written,
    not distinct, so they show a burst at once but overstate dirty data;
    ``None`` when the cloud does not offer them.
    """

    group_id: str
    target_s: float
    weight: float
    overhead_s: float
    carrier: Carrier
    recovery_point_s: float
    last_capture_s: float
    history: tuple[CheckpointRecord, ...] = ()
    in_flight: int = 0
    written_since_capture_bytes: int | None = None
    write_rate_bps: float | None = None


@dataclass(frozen=True, slots=True)
class LinkState:
    """The WAN link from the protected site to the recovery site.

    ``app_traffic_bps`` is the application traffic's current demand,
    ``replication_bps`` what replication used over the last interval.
    ``app_take_share`` (0..1) is the configured share of the application
    traffic replication may displace: the replication **budget** is
    ``capacity - (1 - app_take_share) * app_traffic`` and the free
    **headroom** (costs applications nothing) ``capacity - app_traffic``.
    ``app_profile_bps`` optionally gives the application demand over the
    next day in steps of ``app_profile_step_s`` starting now (a forecast,
    e.g. yesterday's profile from the LinkMonitor).
    """

    capacity_bps: float
    app_traffic_bps: float
    replication_bps: float = 0.0
    app_take_share: float = 0.25
    app_profile_bps: tuple[float, ...] = ()
    app_profile_step_s: float = 900.0

    @property
    def budget_bps(self) -> float:
        return budget(self.capacity_bps, self.app_traffic_bps, self.app_take_share)

    @property
    def headroom_bps(self) -> float:
        return max(0.0, self.capacity_bps - self.app_traffic_bps)


def budget(capacity_bps: float, app_bps: float, take_share: float) -> float:
    """The link budget: capacity minus the application traffic's reserved share."""
    return max(0.0, capacity_bps - (1.0 - take_share) * app_bps)


@dataclass(frozen=True, slots=True)
class State:
    """Everything a logic decides from.

    ``tick_s`` is the controller's decision interval (``drlogic_interval``):
    the next decision comes ``tick_s`` after ``now_s``. ``previous_ratio``
    is the RPO ÷ target level the logic announced last time (1.0 at start),
    so a logic can warm-start without keeping state of its own.
    """

    now_s: float
    tick_s: float
    groups: tuple[GroupState, ...]
    transfers: tuple[TransferState, ...]
    link: LinkState
    previous_ratio: float = 1.0


@dataclass(frozen=True, slots=True)
class CheckpointOrder:
    """Checkpoint this group now."""

    group_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class FlowRate:
    """A guaranteed rate for one transfer; spare budget is shared on top of it."""

    flow_id: str
    carrier: Carrier
    rate_bps: float
    reason: str


@dataclass(frozen=True, slots=True)
class Miss:
    """A group the logic expects to miss its target: by how much and why."""

    group_id: str
    expected_ratio: float
    reason: str


@dataclass(frozen=True, slots=True)
class Decisions:
    """What to do until the next decision.

    ``replication_ceiling_bps`` caps all replication flows together (``None``:
    the link budget); the controller never lets them exceed the budget
    anyway. ``max_concurrent_transfers`` (``None``: no limit) bounds how
    many transfers run at once; ``ratio`` is the RPO ÷ target level the
    logic plans for (fed back as :attr:`State.previous_ratio`).
    """

    checkpoints: tuple[CheckpointOrder, ...] = ()
    flow_rates: tuple[FlowRate, ...] = ()
    replication_ceiling_bps: float | None = None
    replication_ceiling_reason: str = ""
    max_concurrent_transfers: int | None = None
    ratio: float = 1.0
    misses: tuple[Miss, ...] = field(default=())


@runtime_checkable
class DRLogic(Protocol):
    """A DR-Logic plugin: ``decide`` must be a pure function of its argument."""

    name: str
    capabilities: frozenset[str]

    def decide(self, state: State) -> Decisions:
        """Decide from ``state``; never raise for a well-formed state."""
        ...
