"""The compute service's records: hosts, flavors, key pairs, server groups, servers.

Plain slotted objects: the simulator keeps ten thousand servers in memory,
so a server holds only what the API shows or the lifecycle needs, and its
local disk is made lazily (see :meth:`ComputeState.server_disk`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..disks import Disk
    from ..world import Site

#: Seconds without a heartbeat after which Nova calls a service down
#: (``[DEFAULT] service_down_time``).
SERVICE_DOWN_TIME = 60.0

#: Nova's ``initial_*_allocation_ratio`` defaults (used since Stein).
CPU_ALLOCATION_RATIO = 4.0
RAM_ALLOCATION_RATIO = 1.0
DISK_ALLOCATION_RATIO = 1.0

# Power states as Nova numbers them.
NOSTATE, RUNNING, SHUTDOWN, CRASHED, SUSPENDED = 0, 1, 4, 6, 7


@dataclass(slots=True)
class Host:
    """A compute host, its nova-compute service and its hypervisor record."""

    site: Site
    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    max_builds: int
    reserved: bool
    index: int  # integer id of the service / hypervisor below microversion 2.53
    service_id: str  # UUID of the nova-compute service (2.53+)
    hypervisor_id: str  # UUID of the hypervisor and of its resource provider
    powered_on: bool = True
    died_at: float | None = None  # when the host last lost power (heartbeats stop)
    forced_down: bool = False
    disabled: bool = False
    disabled_reason: str | None = None
    vcpus_used: int = 0
    ram_used: int = 0
    disk_used: int = 0
    servers: set[str] = field(default_factory=set)
    building: int = 0  # builds in progress (bounded by max_builds)
    build_queue: list[Any] = field(default_factory=list)  # builds waiting for a slot
    stalled: list[Any] = field(default_factory=list)  # completions waiting for power
    generation: int = 1  # the resource provider's generation in Placement
    # Host faults (liferaft.sim.hostfaults): the guests keep running, but the
    # nova-compute heartbeat froze at ``service_silent_since`` (management
    # network isolated, or the service hung); the management network (network
    # agent, host agent) went silent at ``mgmt_silent_since``; the storage
    # network is lost (guests' volume I/O fails).
    service_silent_since: float | None = None
    mgmt_silent_since: float | None = None
    storage_lost: bool = False
    # Evacuation migration records with this host as the source: server id ->
    # "accepted" while the rebuild runs, "done" once it finished.  Nova refuses
    # to lift force-down while "done" ones remain; the compute service's next
    # start moves them all to "completed" (here: drops them).
    evacuations: dict[str, str] = field(default_factory=dict)

    def alive(self) -> bool:
        """Powered on and its site not down: only then can its guests run."""
        return self.powered_on and not self.site.faults.down

    def updated_at(self, now: float) -> float:
        """The last heartbeat: now while alive, frozen at the moment it died or went silent."""
        beat = now if self.alive() or self.died_at is None else self.died_at
        if self.service_silent_since is not None:
            beat = min(beat, self.service_silent_since)
        return beat

    def service_up(self, now: float) -> bool:
        """Nova's servicegroup check: not forced down and a recent heartbeat."""
        if self.forced_down:
            return False
        return now - self.updated_at(now) <= SERVICE_DOWN_TIME

    def capacity(self) -> tuple[float, float, float]:
        return (
            self.vcpus * CPU_ALLOCATION_RATIO,
            self.ram_mb * RAM_ALLOCATION_RATIO,
            self.disk_gb * DISK_ALLOCATION_RATIO,
        )

    def fits(self, vcpus: int, ram_mb: int, disk_gb: int) -> bool:
        cpu, ram, disk = self.capacity()
        return (
            self.vcpus_used + vcpus <= cpu
            and self.ram_used + ram_mb <= ram
            and self.disk_used + disk_gb <= disk
        )


@dataclass(slots=True)
class Flavor:
    id: str
    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int
    ephemeral_gb: int = 0
    swap_mb: int = 0
    is_public: bool = True
    description: str | None = None
    extra_specs: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class KeyPair:
    id: int
    name: str
    user_id: str
    public_key: str
    fingerprint: str
    type: str
    created_at: float


@dataclass(slots=True)
class ServerGroup:
    id: str
    name: str
    policy: str  # affinity, anti-affinity, soft-affinity, soft-anti-affinity
    rules: dict[str, int]
    project_id: str
    user_id: str
    members: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Server:
    """One instance.  ``status`` is derived from ``vm_state`` and ``task_state`` as in Nova."""

    id: str
    name: str
    project_id: str
    user_id: str
    flavor: Flavor  # a copy of the flavor as booted (Nova embeds it too)
    image_id: str  # "" when booted from a volume
    created: float
    updated: float
    availability_zone: str
    host: str | None = None
    vm_state: str = "building"
    task_state: str | None = "scheduling"
    power_state: int = NOSTATE
    launched_at: float | None = None
    key_name: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    group_id: str | None = None
    fault: dict[str, Any] | None = None
    locked: bool = False
    locked_reason: str | None = None
    quiesced: bool = False
    launch_index: int = 0
    reservation_id: str = ""
    # (volume_id, device, delete_on_termination) for each attached volume
    volumes: list[tuple[str, str, bool]] = field(default_factory=list)
    ports: list[str] = field(default_factory=list)  # the NICs' port ids, in order
    disk: Disk | None = None  # the local root disk, made on first use

    @property
    def status(self) -> str:
        return server_status(self.vm_state, self.task_state)

    @property
    def booted_from_volume(self) -> bool:
        return self.image_id == ""


_TASK_STATUS = {
    "rebooting": "REBOOT",
    "reboot_pending": "REBOOT",
    "reboot_started": "REBOOT",
    "rebooting_hard": "HARD_REBOOT",
    "reboot_pending_hard": "HARD_REBOOT",
    "reboot_started_hard": "HARD_REBOOT",
    "rebuilding": "REBUILD",
    "rebuild_block_device_mapping": "REBUILD",
    "rebuild_spawning": "REBUILD",
}
_VM_STATUS = {
    "active": "ACTIVE",
    "building": "BUILD",
    "stopped": "SHUTOFF",
    "error": "ERROR",
    "deleted": "DELETED",
    "soft-delete": "SOFT_DELETED",
    "paused": "PAUSED",
    "suspended": "SUSPENDED",
}


def server_status(vm_state: str, task_state: str | None) -> str:
    """Nova's API status for a (vm_state, task_state) pair."""
    if task_state in _TASK_STATUS and vm_state in ("active", "stopped", "error"):
        if vm_state != "active" and task_state not in (
            "rebuilding",
            "rebuild_block_device_mapping",
            "rebuild_spawning",
        ):
            return _VM_STATUS[vm_state]
        return _TASK_STATUS[task_state]
    return _VM_STATUS.get(vm_state, "UNKNOWN")


#: API status → vm_states, for the ``status`` list filter.
STATUS_VM_STATES: dict[str, tuple[str, ...]] = {
    "ACTIVE": ("active",),
    "BUILD": ("building",),
    "SHUTOFF": ("stopped",),
    "ERROR": ("error",),
    "DELETED": ("deleted",),
    "PAUSED": ("paused",),
    "SUSPENDED": ("suspended",),
}


@dataclass(slots=True)
class InstanceAction:
    """One row of ``os-instance-actions``."""

    action: str
    request_id: str
    user_id: str
    project_id: str
    start_time: float
    message: str | None = None
    finish_time: float | None = None
    result: str | None = None  # "Success" / "Error" once finished
