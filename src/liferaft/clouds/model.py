"""What the Cloud port returns: small frozen dataclasses, not openstacksdk resources.

Services and workflows keep these (or their ``asdict``) in step results, so
they hold plain values only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: Metadata keys on every resource Liferaft creates, so a replayed step finds
#: what an earlier attempt of the same step made (see ``Tag``).  The format is
#: the engine's (``docs/engine.md``, ``liferaft.engine.idempotency``).
TAG_RUN = "liferaft_run"
TAG_STEP = "liferaft_step"


@dataclass(frozen=True)
class Tag:
    """Who made a resource: the workflow run and the step.

    Servers, volumes, snapshots, backups and images carry it as metadata
    (``liferaft_run`` / ``liferaft_step``); Neutron ports, which have no
    metadata, carry it as tags ``liferaft_run=<run>`` / ``liferaft_step=<step>``.
    """

    run: str
    step: str

    def metadata(self) -> dict[str, str]:
        return {TAG_RUN: self.run, TAG_STEP: self.step}

    def tags(self) -> list[str]:
        return [f"{TAG_RUN}={self.run}", f"{TAG_STEP}={self.step}"]

    def matches(self, metadata: Mapping[str, str] | None) -> bool:
        return bool(metadata) and all(metadata.get(k) == v for k, v in self.metadata().items())  # type: ignore[union-attr]

    def matches_tags(self, tags: list[str] | tuple[str, ...] | None) -> bool:
        return bool(tags) and all(t in tags for t in self.tags())  # type: ignore[operator]


@dataclass(frozen=True)
class Address:
    network: str
    ip: str
    mac: str | None = None
    kind: str | None = None  # fixed or floating


@dataclass(frozen=True)
class Server:
    id: str
    name: str
    status: str
    host: str | None = None  # only visible to admins
    power_state: int | None = None
    task_state: str | None = None
    image_id: str | None = None
    flavor: str | None = None
    availability_zone: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    addresses: tuple[Address, ...] = ()
    project_id: str | None = None
    key_name: str | None = None
    #: The flavor's size, where the API embeds it (compute microversion 2.47+).
    vcpus: int | None = None
    ram_mb: int | None = None
    #: When the compute API last changed the record (its ``updated`` field, as sent):
    #: the watermark for ``list_servers(changes_since=...)``.
    updated: str | None = None


@dataclass(frozen=True)
class ServerGroup:
    """A compute server group: its scheduling policy and its members."""

    id: str
    name: str
    #: ``affinity``, ``anti-affinity``, ``soft-affinity`` or ``soft-anti-affinity``.
    policy: str
    members: tuple[str, ...] = ()
    #: The anti-affinity rule ``max_server_per_host`` (compute 2.64+); None: 1.
    max_server_per_host: int | None = None
    project_id: str | None = None


@dataclass(frozen=True)
class VolumeAttachment:
    server_id: str
    device: str | None = None
    attachment_id: str | None = None


@dataclass(frozen=True)
class Volume:
    id: str
    name: str
    status: str
    size_gb: int
    volume_type: str | None = None
    bootable: bool = False
    availability_zone: str | None = None
    snapshot_id: str | None = None
    source_image_id: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    attachments: tuple[VolumeAttachment, ...] = ()
    #: When the block storage API last changed it (ISO 8601, its own clock), if it says:
    #: the watermark for ``list_volumes(changes_since=...)``.
    updated: str | None = None


@dataclass(frozen=True)
class Snapshot:
    id: str
    name: str
    volume_id: str
    status: str
    size_gb: int
    metadata: Mapping[str, str] = field(default_factory=dict)
    created_at: str | None = None


@dataclass(frozen=True)
class Backup:
    id: str
    name: str
    volume_id: str
    status: str
    size_gb: int
    is_incremental: bool = False
    has_dependent_backups: bool = False
    container: str | None = None
    snapshot_id: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    created_at: str | None = None
    #: Objects the backup service wrote (data chunks and its metadata), when it says.
    object_count: int | None = None


@dataclass(frozen=True)
class BackupRecord:
    """A backup's exported record (Cinder ``export_record``), importable at another site."""

    backup_service: str
    backup_url: str


@dataclass(frozen=True)
class FixedIP:
    ip_address: str
    subnet_id: str | None = None


@dataclass(frozen=True)
class Port:
    id: str
    name: str
    network_id: str
    mac_address: str
    status: str
    fixed_ips: tuple[FixedIP, ...] = ()
    device_id: str | None = None
    device_owner: str | None = None
    host: str | None = None
    tags: tuple[str, ...] = ()
    security_group_ids: tuple[str, ...] = ()
    #: False: Neutron passes no traffic through the port (a quarantined server's).
    admin_state_up: bool = True


@dataclass(frozen=True)
class Subnet:
    """A Neutron subnet, as far as an isolated copy of its network needs it."""

    id: str
    name: str
    network_id: str
    cidr: str
    ip_version: int = 4
    gateway_ip: str | None = None
    enable_dhcp: bool = True
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Image:
    id: str
    name: str
    status: str
    size: int | None = None
    disk_format: str | None = None
    container_format: str | None = None
    checksum: str | None = None
    properties: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ComputeService:
    id: str
    binary: str
    host: str
    status: str  # enabled / disabled
    state: str  # up / down
    forced_down: bool = False
    zone: str | None = None
    disabled_reason: str | None = None
    #: The service's last heartbeat as the API reports it (ISO 8601, UTC), if any.
    updated_at: str | None = None


@dataclass(frozen=True)
class NetworkAgent:
    """A Networking v2 agent (``GET /v2.0/agents``): its host and whether it is alive."""

    id: str
    agent_type: str
    binary: str
    host: str
    alive: bool
    admin_state_up: bool = True
    last_heartbeat_at: str | None = None


@dataclass(frozen=True)
class Hypervisor:
    id: str
    name: str
    status: str  # enabled / disabled
    state: str  # up / down
    host_ip: str | None = None
    hypervisor_type: str | None = None


@dataclass(frozen=True)
class Inventory:
    resource_class: str
    total: int
    reserved: int = 0
    allocation_ratio: float = 1.0
    min_unit: int = 1
    max_unit: int | None = None
    step_size: int = 1

    @property
    def capacity(self) -> float:
        """What can be allocated in all: ``(total - reserved) * allocation_ratio``."""
        return (self.total - self.reserved) * self.allocation_ratio


@dataclass(frozen=True)
class ProviderCapacity:
    """One Placement resource provider (a compute node): inventories and usages."""

    id: str
    name: str
    inventories: Mapping[str, Inventory] = field(default_factory=dict)
    usages: Mapping[str, int] = field(default_factory=dict)

    def free(self, resource_class: str) -> float:
        inv = self.inventories.get(resource_class)
        if inv is None:
            return 0.0
        return inv.capacity - self.usages.get(resource_class, 0)


@dataclass(frozen=True)
class Endpoint:
    interface: str
    url: str
    region: str | None = None


@dataclass(frozen=True)
class CatalogEntry:
    type: str
    name: str
    endpoints: tuple[Endpoint, ...] = ()


@dataclass(frozen=True)
class IdentityInfo:
    """Who the adapter is logged in as, and where."""

    auth_url: str
    region: str | None
    user_id: str
    project_id: str
    catalog: tuple[CatalogEntry, ...] = ()


@dataclass(frozen=True)
class TokenInfo:
    """A token validated by Keystone (``GET /v3/auth/tokens``)."""

    user_id: str
    user_name: str
    project_id: str | None
    project_name: str | None
    roles: tuple[str, ...]
    expires_at: str


@dataclass(frozen=True)
class Flavor:
    """A compute flavor (sizes are what Placement allocates for one server)."""

    id: str
    name: str
    vcpus: int
    ram_mb: int
    disk_gb: int = 0


@dataclass(frozen=True)
class Quota:
    """One quota of the logged-in project: ``limit`` (-1: unlimited) and what is ``in_use``."""

    service: str  # compute, volume, network
    resource: str  # instances, cores, ram, volumes, gigabytes, port, ...
    limit: int
    in_use: int

    @property
    def free(self) -> float:
        return float("inf") if self.limit < 0 else float(self.limit - self.in_use)


@dataclass(frozen=True)
class KeyPair:
    """A compute key pair (per user; only its public half is ever read)."""

    name: str
    public_key: str | None = None
    type: str = "ssh"
    fingerprint: str | None = None


@dataclass(frozen=True)
class SecurityGroupRule:
    direction: str  # ingress / egress
    ethertype: str = "IPv4"
    protocol: str | None = None
    port_range_min: int | None = None
    port_range_max: int | None = None
    remote_ip_prefix: str | None = None
    remote_group_id: str | None = None
    id: str | None = None

    def key(self) -> tuple[object, ...]:
        """What makes two rules the same rule (Neutron refuses a duplicate)."""
        return (
            self.direction,
            self.ethertype,
            self.protocol,
            self.port_range_min,
            self.port_range_max,
            self.remote_ip_prefix,
            self.remote_group_id,
        )


@dataclass(frozen=True)
class SecurityGroup:
    id: str
    name: str
    description: str = ""
    rules: tuple[SecurityGroupRule, ...] = ()
    tags: tuple[str, ...] = ()
    project_id: str | None = None
