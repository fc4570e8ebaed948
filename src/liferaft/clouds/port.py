"""The Cloud port: everything Liferaft's services ask of one OpenStack site.

One object per site.  Every method is a coroutine (the adapter runs the
blocking client in a worker thread).  Failures are Liferaft's classified
errors (:mod:`liferaft.errors`): ``RetryLater`` (site unreachable, 5xx,
429, timeouts), ``GiveUp`` (4xx a retry cannot fix; :class:`ResourceNotFound`
for a missing resource), ``NeedsHuman`` (credentials or permissions an
operator must fix).

Conventions:

* ``get_*`` raise :class:`ResourceNotFound`; ``find_*`` return ``None``.
* ``delete_*`` are idempotent: a resource already gone is success.
* ``create_*`` take a :class:`~liferaft.clouds.model.Tag`; the resource
  carries it, and ``find_*_by_tag`` finds what an earlier attempt of the
  same step made, so a replayed step does not create a second one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from liferaft.errors import GiveUp

from .model import (
    Backup,
    BackupRecord,
    ComputeService,
    Flavor,
    Hypervisor,
    IdentityInfo,
    Image,
    KeyPair,
    NetworkAgent,
    Port,
    ProviderCapacity,
    Quota,
    SecurityGroup,
    SecurityGroupRule,
    Server,
    ServerGroup,
    Snapshot,
    Subnet,
    Tag,
    TokenInfo,
    Volume,
)

#: Capabilities ``Cloud.supports`` knows about.
CAPABILITIES = ("quiesce", "force_down", "evacuate_without_host", "backup_incremental", "port_tags")


class ResourceNotFound(GiveUp):
    """The resource does not exist at the site (HTTP 404)."""


@runtime_checkable
class Cloud(Protocol):
    """One site's OpenStack APIs, as Liferaft uses them."""

    site: str

    # -- identity and discovery ------------------------------------------------
    async def identity(self) -> IdentityInfo:
        """Log in (if needed) and describe who we are and the service catalog."""
        ...

    async def ping(self) -> None:
        """Whether the site's identity service answers (unauthenticated); ``RetryLater`` if not."""
        ...

    async def validate_token(self, token: str) -> TokenInfo | None:
        """Ask Keystone about a user's token; ``None`` when it is invalid or expired."""
        ...

    async def supports(self, capability: str) -> bool:
        """Whether the site offers an optional capability (see ``CAPABILITIES``)."""
        ...

    # -- servers -----------------------------------------------------------------
    async def create_server(
        self,
        *,
        name: str,
        tag: Tag,
        flavor: str,
        image_id: str | None = None,
        boot_volume_id: str | None = None,
        port_ids: list[str] | None = None,
        network_ids: list[str] | None = None,
        availability_zone: str | None = None,
        metadata: dict[str, str] | None = None,
        key_name: str | None = None,
        server_group_id: str | None = None,
    ) -> Server:
        """``server_group_id``: the scheduler hint ``group`` (the group's policy applies)."""
        ...

    async def find_server(self, name: str, tag: Tag) -> Server | None: ...
    async def get_server(self, server_id: str) -> Server: ...
    async def list_servers(
        self,
        *,
        host: str | None = None,
        all_projects: bool = True,
        changes_since: str | None = None,
    ) -> list[Server]:
        """``changes_since``: only servers the compute API changed at or after that time
        (a ``Server.updated`` value, in the API's own clock)."""
        ...

    async def list_server_groups(self) -> list[ServerGroup]:
        """Every project's server groups (admin)."""
        ...

    async def delete_server(self, server_id: str) -> None: ...
    async def stop_server(self, server_id: str) -> None: ...
    async def start_server(self, server_id: str) -> None: ...
    async def lock_server(self, server_id: str) -> None:
        """Nova's lock: only an admin may then start, stop or delete it (idempotent)."""
        ...

    async def unlock_server(self, server_id: str) -> None: ...
    async def evacuate_server(self, server_id: str, *, host: str | None = None) -> None: ...
    async def create_server_image(self, server_id: str, *, name: str, tag: Tag) -> Image: ...
    async def quiesce_server(self, server_id: str) -> None:
        """Freeze the guest's file systems (only where ``supports("quiesce")``)."""
        ...

    async def unquiesce_server(self, server_id: str) -> None: ...

    # -- volumes -----------------------------------------------------------------
    async def create_volume(
        self,
        *,
        name: str,
        tag: Tag,
        size_gb: int,
        image_id: str | None = None,
        snapshot_id: str | None = None,
        volume_type: str | None = None,
        availability_zone: str | None = None,
        metadata: dict[str, str] | None = None,
    ) -> Volume: ...

    async def manage_volume(
        self,
        *,
        name: str,
        tag: Tag,
        host: str,
        reference: dict[str, str],
        volume_type: str | None = None,
        metadata: dict[str, str] | None = None,
        bootable: bool = False,
    ) -> Volume:
        """Adopt a volume that exists on the backend ``host`` (Cinder's manage-existing, admin)."""
        ...

    async def find_volume(self, name: str, tag: Tag) -> Volume | None: ...
    async def get_volume(self, volume_id: str) -> Volume: ...
    async def list_volumes(
        self, *, all_projects: bool = True, changes_since: str | None = None
    ) -> list[Volume]:
        """``changes_since``: only volumes the block storage API changed at or after that
        time (a ``Volume.updated`` value, in the API's own clock)."""
        ...

    async def delete_volume(self, volume_id: str) -> None: ...
    async def attach_volume(
        self, server_id: str, volume_id: str, *, device: str | None = None
    ) -> None: ...
    async def detach_volume(self, server_id: str, volume_id: str) -> None: ...
    async def create_snapshot(
        self, volume_id: str, *, name: str, tag: Tag, force: bool = True
    ) -> Snapshot: ...
    async def find_snapshot(self, name: str, tag: Tag) -> Snapshot | None: ...
    async def get_snapshot(self, snapshot_id: str) -> Snapshot: ...
    async def delete_snapshot(self, snapshot_id: str) -> None: ...
    async def create_backup(
        self,
        volume_id: str,
        *,
        name: str,
        tag: Tag,
        incremental: bool,
        snapshot_id: str | None = None,
        container: str | None = None,
    ) -> Backup: ...
    async def find_backup(self, name: str, tag: Tag) -> Backup | None: ...
    async def get_backup(self, backup_id: str) -> Backup: ...
    async def delete_backup(self, backup_id: str) -> None: ...
    async def export_backup_record(self, backup_id: str) -> BackupRecord: ...
    async def import_backup_record(self, record: BackupRecord) -> Backup: ...
    async def request_import(self, record: BackupRecord) -> str:
        """Import a backup record; the backup's id, no read-back.

        Cinder may still be importing when it answers (``creating``); a restore
        asked for before it is ``available`` fails with a 400, which callers
        answer by waiting for the backup and asking again.
        """
        ...

    async def restore_backup(
        self, backup_id: str, *, volume_id: str | None = None, name: str | None = None
    ) -> Volume: ...
    async def request_restore(self, backup_id: str, volume_id: str) -> None:
        """Restore a backup into an existing volume; no read-back.

        Cinder puts the volume in ``restoring-backup`` before it answers, so a
        listing begun after this returns shows the restore (or its end).
        """
        ...

    async def upload_volume_to_image(
        self, volume_id: str, *, name: str, force: bool = True
    ) -> Image:
        """Cinder's upload-to-image: a new image holding the volume's bytes as of now.

        The image carries no tag (the API takes none): callers name it uniquely
        and find it again with :meth:`find_image`.
        """
        ...

    # -- network -----------------------------------------------------------------
    async def create_port(
        self,
        *,
        name: str,
        tag: Tag,
        network_id: str,
        fixed_ips: list[tuple[str | None, str]] | None = None,
        mac_address: str | None = None,
        security_group_ids: list[str] | None = None,
    ) -> Port:
        """``fixed_ips`` is a list of ``(subnet_id or None, ip_address)``; ``security_group_ids``
        None: the project's default group."""
        ...

    async def find_port(self, name: str, tag: Tag) -> Port | None: ...
    async def get_port(self, port_id: str) -> Port: ...
    async def list_ports(
        self,
        *,
        device_id: str | None = None,
        network_id: str | None = None,
        name: str | None = None,
    ) -> list[Port]: ...
    async def delete_port(self, port_id: str) -> None: ...
    async def find_network(self, name: str) -> str | None:
        """The id of the network named ``name`` (networks differ by id between sites)."""
        ...

    async def network_name(self, network_id: str) -> str: ...
    async def set_port_admin_state(self, port_id: str, up: bool) -> Port:
        """Neutron's ``admin_state_up``: False stops all traffic through the port."""
        ...

    async def create_network(self, *, name: str, tag: Tag) -> str:
        """A new tenant network carrying ``tag`` (Neutron tags); its id."""
        ...

    async def find_network_tagged(self, name: str, tag: Tag) -> str | None: ...
    async def tag_network(self, network_id: str, tag: Tag) -> None:
        """Set ``tag``'s tags on a network made by a create whose tagging never happened."""
        ...

    async def delete_network(self, network_id: str) -> None: ...
    async def list_subnets(self, *, network_id: str) -> list[Subnet]: ...
    async def create_subnet(
        self,
        *,
        name: str,
        tag: Tag,
        network_id: str,
        cidr: str,
        ip_version: int = 4,
        gateway_ip: str | None = None,
        enable_dhcp: bool = True,
    ) -> Subnet: ...
    async def find_subnet(self, name: str, tag: Tag) -> Subnet | None: ...
    async def tag_subnet(self, subnet_id: str, tag: Tag) -> Subnet:
        """Set ``tag``'s tags on a subnet made by a create whose tagging never happened."""
        ...

    async def delete_subnet(self, subnet_id: str) -> None: ...

    # -- images ------------------------------------------------------------------
    async def get_image(self, image_id: str) -> Image: ...
    async def upload_image(
        self,
        *,
        name: str,
        tag: Tag,
        data: bytes | Path,
        disk_format: str = "raw",
        container_format: str = "bare",
        properties: dict[str, str] | None = None,
    ) -> Image: ...
    async def find_image(self, name: str) -> Image | None:
        """The image named ``name`` (images differ by id between sites)."""
        ...

    async def download_image(self, image_id: str) -> bytes: ...
    async def read_image(self, image_id: str, *, offset: int, length: int) -> bytes:
        """``length`` bytes of an active image's data from ``offset`` (an HTTP range request;
        fewer at the image's end)."""
        ...

    async def delete_image(self, image_id: str) -> None: ...

    # -- key pairs, security groups, server groups --------------------------------
    async def find_keypair(self, name: str) -> KeyPair | None:
        """The logged-in user's key pair ``name`` (public key, type, fingerprint)."""
        ...

    async def create_keypair(self, *, name: str, public_key: str, key_type: str = "ssh") -> KeyPair:
        """Import a public key (key pairs carry no tags: the name is their identity)."""
        ...

    async def delete_keypair(self, name: str) -> None:
        """Delete the logged-in user's key pair ``name`` (gone already: success)."""
        ...

    async def get_security_group(self, group_id: str) -> SecurityGroup: ...
    async def list_security_groups(self, *, name: str | None = None) -> list[SecurityGroup]: ...
    async def create_security_group(
        self, *, name: str, tag: Tag, description: str = ""
    ) -> SecurityGroup:
        """Create, then tag (two calls, as for ports)."""
        ...

    async def tag_security_group(self, group_id: str, tag: Tag) -> SecurityGroup:
        """Set ``tag``'s tags on a group made by a create whose tagging never happened."""
        ...

    async def create_security_group_rule(
        self, group_id: str, rule: SecurityGroupRule
    ) -> SecurityGroupRule: ...
    async def create_server_group(self, *, name: str, policy: str) -> ServerGroup: ...
    async def delete_security_group(self, group_id: str) -> None:
        """Delete a security group (gone already: success; Neutron refuses one a port uses)."""
        ...

    async def delete_server_group(self, group_id: str) -> None:
        """Delete a server group (gone already: success)."""
        ...

    # -- what a recovery plan is checked against ---------------------------------
    async def list_flavors(self) -> list[Flavor]:
        """The flavors the logged-in project may use."""
        ...

    async def list_volume_types(self) -> list[str]:
        """The names of the volume types the logged-in project may use."""
        ...

    async def quotas(self) -> list[Quota]:
        """The logged-in project's compute, volume and network quotas with their usage.

        A service that does not offer its quota API is left out (not an error).
        """
        ...

    # -- compute hosts and capacity ----------------------------------------------
    async def list_compute_services(self, *, host: str | None = None) -> list[ComputeService]: ...
    async def force_down_compute(self, host: str, *, down: bool = True) -> ComputeService: ...
    async def disable_compute(self, host: str, *, reason: str) -> ComputeService: ...
    async def enable_compute(self, host: str) -> ComputeService: ...
    async def list_hypervisors(self) -> list[Hypervisor]: ...
    async def list_network_agents(self, *, host: str | None = None) -> list[NetworkAgent]:
        """Networking v2 agents (admin): one per host and kind, with ``alive``."""
        ...

    async def capacity(self) -> list[ProviderCapacity]:
        """Placement's resource providers, with inventories and usages."""
        ...

    # -- object store (Swift) ----------------------------------------------------
    async def put_object(self, container: str, name: str, data: bytes) -> None:
        """Store ``data`` as ``container/name`` (the container is made if missing)."""
        ...

    async def get_object(self, container: str, name: str) -> bytes:
        """The object's bytes; :class:`ResourceNotFound` if it (or the container) is missing."""
        ...

    async def list_objects(self, container: str, *, prefix: str = "") -> list[str]:
        """Object names in ``container`` starting with ``prefix``, sorted; ``[]`` if no container."""
        ...

    async def delete_object(self, container: str, name: str) -> None: ...
