"""Idempotent cloud-creating step helpers: :meth:`StepContext.ensure_created` on the Cloud port.

A step that creates a server, a volume or a port calls one of these instead
of the Cloud port's ``create_*`` directly.  Each one:

* gives the resource the step's fixed ``name`` and the run/step tag
  (metadata for Nova and Cinder, Neutron tags for ports);
* looks it up in the cloud first (``find_*``), so a replay after a crash --
  or a new leader's replay after a takeover -- adopts what the cloud
  accepted instead of making a second one.  Not on a step's first attempt
  (:func:`first_attempt`): its ``running`` record was committed before it
  ran, so no earlier attempt of it can have sent a create with its tag, and
  the look-up could only find nothing (it was two API calls of a recovery's
  ~13 per server);
* only sends the create after the lease guard (the store re-check and the
  local margin check, see ``docs/engine.md``);
* records it in the resource ledger under ``(kind, name)``.

:func:`delete_recorded` is the matching undo: it deletes what the ledger
says the step made (deletes are idempotent in the Cloud port).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from liferaft.clouds.model import Port, Server, Tag, Volume
from liferaft.clouds.port import Cloud
from liferaft.engine.executor import StepContext
from liferaft.engine.idempotency import IdempotencyTag
from liferaft.errors import GiveUp

#: Ledger kinds, in the order an undo deletes them (servers before what they use).
KINDS = ("server", "port", "volume")


def first_attempt(ctx: StepContext) -> bool:
    """Whether this is the step's first attempt: nothing tagged with it can exist yet.

    The executor commits a step's ``running`` record, with its attempt
    number, before calling it; a crash, a kill or a takeover after that
    makes the next run of the step attempt 2 or more.
    """
    return ctx.attempt <= 1


def cloud_tag(tag: IdempotencyTag) -> Tag:
    """The Cloud port's tag for an engine idempotency tag (same run and step)."""
    return Tag(run=tag.run_id, step=tag.step_id)


async def ensure_volume(
    ctx: StepContext,
    cloud: Cloud,
    *,
    name: str,
    size_gb: int,
    volume_type: str | None = None,
    image_id: str | None = None,
    snapshot_id: str | None = None,
    metadata: dict[str, str] | None = None,
) -> Volume:
    """The volume ``name`` this step made, creating it if the cloud has none."""

    async def find(t: IdempotencyTag) -> Volume | None:
        if first_attempt(ctx):
            return None
        return await cloud.find_volume(t.name, cloud_tag(t))

    async def create(t: IdempotencyTag) -> Volume:
        return await cloud.create_volume(
            name=t.name,
            tag=cloud_tag(t),
            size_gb=size_gb,
            volume_type=volume_type,
            image_id=image_id,
            snapshot_id=snapshot_id,
            metadata=metadata,
        )

    return await ctx.ensure_created(
        kind="volume", name=name, find=find, create=create, cloud_id=_id, site=cloud.site
    )


async def ensure_port(
    ctx: StepContext,
    cloud: Cloud,
    *,
    name: str,
    network_id: str,
    fixed_ips: list[tuple[str | None, str]] | None = None,
    mac_address: str | None = None,
    security_group_ids: list[str] | None = None,
) -> Port:
    """The port ``name`` this step made (same fixed IPs and MAC if given), creating it if needed.

    Neutron tags a port after creating it (two calls, see the Cloud adapter):
    a controller killed between them leaves a port with this step's name but
    no tag.  A replay that looked for the tag alone would make a second port
    (or be refused: the MAC or fixed IP is in use), so such a port is
    adopted: same name, on the network, untagged, bound to nothing, and with
    the requested MAC and fixed IPs where they were given.  On a step's first
    attempt the create is sent straight away; only if the cloud refuses it
    (the MAC or an address in use: such a half-made port of an earlier,
    abandoned run of the same plan) is the port looked up and adopted.
    """
    want_ips = {ip for _subnet, ip in fixed_ips or ()}

    async def find(t: IdempotencyTag) -> Port | None:
        if first_attempt(ctx):
            return None
        return await look_up(t)

    async def look_up(t: IdempotencyTag) -> Port | None:
        found = await cloud.find_port(t.name, cloud_tag(t))
        if found is not None:
            return found
        # Filtered by name in Neutron: a listing of the whole network per port
        # made a recovery's port steps quadratic in its servers.
        for p in await cloud.list_ports(network_id=network_id, name=t.name):
            if half_made(p, t.name, mac_address=mac_address, ips=want_ips):
                return p
        return None

    async def create(t: IdempotencyTag) -> Port:
        try:
            return await cloud.create_port(
                name=t.name,
                tag=cloud_tag(t),
                network_id=network_id,
                fixed_ips=fixed_ips,
                mac_address=mac_address,
                security_group_ids=security_group_ids,
            )
        except GiveUp:
            if not first_attempt(ctx):
                raise
            found = await look_up(t)
            if found is None:
                raise
            return found

    return await ctx.ensure_created(
        kind="port", name=name, find=find, create=create, cloud_id=_id, site=cloud.site
    )


def half_made(port: Port, name: str, *, mac_address: str | None, ips: set[str]) -> bool:
    """Whether ``port`` is one a killed create left untagged: ours by name, MAC and addresses."""
    if port.name != name or port.tags or port.device_id:
        return False
    if mac_address is not None and port.mac_address != mac_address:
        return False
    return not ips or ips <= {f.ip_address for f in port.fixed_ips}


async def ensure_server(
    ctx: StepContext,
    cloud: Cloud,
    *,
    name: str,
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
    """The server ``name`` this step booted, booting it if the cloud has none."""

    async def find(t: IdempotencyTag) -> Server | None:
        if first_attempt(ctx):
            return None
        return await cloud.find_server(t.name, cloud_tag(t))

    async def create(t: IdempotencyTag) -> Server:
        return await cloud.create_server(
            name=t.name,
            tag=cloud_tag(t),
            flavor=flavor,
            image_id=image_id,
            boot_volume_id=boot_volume_id,
            port_ids=port_ids,
            network_ids=network_ids,
            availability_zone=availability_zone,
            metadata=metadata,
            key_name=key_name,
            server_group_id=server_group_id,
        )

    return await ctx.ensure_created(
        kind="server", name=name, find=find, create=create, cloud_id=_id, site=cloud.site
    )


async def delete_recorded(ctx: StepContext, clouds: Mapping[str, Cloud] | Cloud) -> list[str]:
    """Undo: delete every resource the ledger says this step made; returns their cloud ids.

    ``clouds`` is one cloud or the clouds by site (the ledger notes each
    resource's site).  Servers go first, then ports, then volumes.
    """
    deleted: list[str] = []
    recorded = sorted(
        ctx.resources(), key=lambda r: KINDS.index(r.kind) if r.kind in KINDS else len(KINDS)
    )
    for r in recorded:
        cloud = clouds if not isinstance(clouds, Mapping) else clouds[r.site or ""]
        delete: Callable[[str], Any] | None = {
            "server": cloud.delete_server,
            "port": cloud.delete_port,
            "volume": cloud.delete_volume,
        }.get(r.kind)
        if delete is None:
            continue
        await delete(r.cloud_id)
        deleted.append(r.cloud_id)
    return deleted


def _id(resource: Server | Volume | Port) -> str:
    return resource.id


__all__ = [
    "KINDS",
    "cloud_tag",
    "delete_recorded",
    "ensure_port",
    "ensure_server",
    "ensure_volume",
    "first_attempt",
    "half_made",
]
