"""Volume backups: full and incremental, into another site's object store, over the WAN.

The layout follows Cinder's chunked (Swift) backup driver in spirit: a
backup's objects are named ``volume_<vol>/<time>/az_nova_backup_<id>-NNNNN``
(block data, several blocks per object) plus ``..._metadata`` (JSON: which
blocks each object holds, their md5, the parent backup's prefix), in the
container the user named, in the backup owner's account of the object store
of the site's backup site (``topology.backup_site_of``).  A full backup
ships every written block; an incremental one ships the blocks written since
its parent's data point (the ``Disk`` write sequences), unless the volume's
write history was replaced since (a restore), when it ships every written
block.  A restore follows the metadata objects' parent links, so a record
exported at one site and imported at another restores without the parents
being imported too.

Bytes are charged on the WAN link (``world.links.transfer``, tags
``backup`` and ``restore``); completion then waits ``latency.backup_base``
(or the restore latency) on the clock.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import uuid
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from ..disks import Disk
from ..http import ApiError, bad_request
from .models import Backup, Volume

if TYPE_CHECKING:
    from .state import VolumeState

BACKUP_SERVICE = "cinder.backup.drivers.swift.SwiftBackupDriver"
DEFAULT_CONTAINER = "volumebackups"
#: Bytes of block data per backup object (Cinder's default is ~50 MB).
OBJECT_BYTES = 32 * 1024 * 1024


def _stamp(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y%m%d%H%M%S")


def has_dependents(vs: VolumeState, backup: Backup) -> bool:
    return any(b.parent_id == backup.id for b in vs.backups.values())


def get_backup(vs: VolumeState, backup_id: str) -> Backup:
    b = vs.backups.get(backup_id)
    if b is None:
        raise ApiError(404, f"Backup {backup_id} could not be found.")
    return b


def create_backup(
    vs: VolumeState,
    vol: Volume,
    *,
    project_id: str,
    user_id: str,
    name: str | None = None,
    description: str | None = None,
    container: str | None = None,
    incremental: bool = False,
    force: bool = False,
    snapshot_id: str | None = None,
    metadata: dict[str, str] | None = None,
) -> Backup:
    """Start a backup; it stays ``creating`` until its bytes have crossed the link."""
    site = vs.site
    snap = None
    if snapshot_id is not None:
        snap = vs.get_snapshot(snapshot_id)
        if snap.volume_id != vol.id:
            raise bad_request(
                f"Invalid snapshot: Snapshot {snapshot_id} is not a snapshot of volume {vol.id}."
            )
        if snap.status != "available":
            raise bad_request(
                f"Invalid snapshot: Snapshot to be backed up must be available, but the "
                f'current status is "{snap.status}".'
            )
    else:
        if vol.status not in ("available", "in-use"):
            raise bad_request(
                f"Invalid volume: Volume to be backed up must be available or in-use, but "
                f'the current status is "{vol.status}".'
            )
        if vol.status == "in-use" and not force:
            raise bad_request(
                "Invalid volume: Backing up an in-use volume must use the force flag."
            )
    parent = None
    if incremental:
        candidates = [
            b for b in vs.backups.values() if b.volume_id == vol.id and b.status == "available"
        ]
        if not candidates:
            raise bad_request("Invalid backup: No backups available to do an incremental backup.")
        parent = max(candidates, key=lambda b: (b.data_timestamp, b.created_at))
    bid = site.new_id()
    now = vs.now
    if snap is not None:
        source: Disk = snap.disk
        temp: Disk | None = None
        lineage, data_ts = snap.lineage, snap.created_at
    else:
        # Cinder backs an in-use volume up from a temporary snapshot; so do we,
        # for every volume, so the data is the volume as it was right now.
        temp = vol.disk.copy_to(vs.dir / "backup-tmp" / f"{bid}.img")
        source = temp
        lineage, data_ts = vol.lineage, now
    if parent is not None and parent.lineage == lineage:
        blocks = source.changed_since(parent.disk_seq)
    else:
        blocks = source.written_blocks()
    store_site = site.world.topology.backup_site_of(site.name)
    backup = Backup(
        id=bid,
        project_id=project_id,
        user_id=user_id,
        volume_id=vol.id,
        name=name,
        description=description,
        container=container or DEFAULT_CONTAINER,
        size=vol.size,
        created_at=now,
        data_timestamp=data_ts,
        store_site=store_site,
        store_project_id=project_id,
        prefix=f"volume_{vol.id}/{_stamp(now)}/az_nova_backup_{bid}",
        snapshot_id=snapshot_id,
        parent_id=parent.id if parent else None,
        is_incremental=parent is not None,
        data_bytes=len(blocks) * source.block_size,
        lineage=lineage,
        disk_seq=source.seq,
        metadata=dict(metadata or {}),
    )
    backup.chain_bytes = backup.data_bytes + (parent.chain_bytes if parent else 0)
    backup.chain = [*(parent.chain if parent else []), {"id": bid, "prefix": backup.prefix}]
    vs.backups[bid] = backup
    if snap is not None:
        snap.status = "backing-up"
    else:
        vol.previous_status = vol.status
        vs.set_status(vol, "backing-up")

    def finish() -> None:
        try:
            _write_objects(vs, backup, source, blocks, parent)
            backup.status = "available"
        except ApiError as err:
            backup.status = "error"
            backup.fail_reason = err.message
        backup.updated_at = vs.now
        if temp is not None:
            temp.delete()
        if snap is not None and snap.status == "backing-up":
            snap.status = "available"
        if snap is None and vol.status == "backing-up":
            vs.set_status(vol, vol.previous_status or "available")

    def arrived() -> None:
        vs.later(site.latency.backup_base, finish)

    site.world.links.transfer(site.name, store_site, backup.data_bytes, arrived, tag="backup")
    return backup


def _write_objects(
    vs: VolumeState, backup: Backup, source: Disk, blocks: list[int], parent: Backup | None
) -> None:
    store = vs.site.world.sites[backup.store_site].objects
    per_object = max(1, OBJECT_BYTES // source.block_size)
    objects: list[dict[str, Any]] = []
    for n, start in enumerate(range(0, len(blocks), per_object)):
        group = blocks[start : start + per_object]
        data = b"".join(d for _i, d in source.iter_blocks(group))
        oname = f"{backup.prefix}-{n + 1:05d}"
        store.put_object(backup.container, oname, data, project_id=backup.store_project_id)
        objects.append({"name": oname, "blocks": group, "md5": hashlib.md5(data).hexdigest()})
    meta = {
        "version": "liferaft-backup-1",
        "backup_id": backup.id,
        "volume_id": backup.volume_id,
        "volume_size_gb": backup.size,
        "block_size": source.block_size,
        "created_at": backup.created_at,
        "data_timestamp": backup.data_timestamp,
        "parent_id": parent.id if parent else None,
        "parent_prefix": parent.prefix if parent else None,
        "objects": objects,
    }
    store.put_object(
        backup.container,
        f"{backup.prefix}_metadata",
        json.dumps(meta).encode(),
        project_id=backup.store_project_id,
    )
    backup.object_count = len(objects) + 1


def delete_backup(vs: VolumeState, backup: Backup, *, force: bool = False) -> None:
    ok = ("available", "error", "error_deleting") + (("creating", "restoring") if force else ())
    if backup.status not in ok:
        raise bad_request("Invalid backup: Backup status must be available or error")
    if has_dependents(vs, backup):
        raise bad_request("Invalid backup: Incremental backups exist for this backup.")
    backup.status = "deleting"

    def purge() -> None:
        store = vs.site.world.sites[backup.store_site].objects
        try:
            names = store.list_objects(
                backup.container, backup.prefix, project_id=backup.store_project_id
            )
            for name in names:
                store.delete_object(backup.container, name, project_id=backup.store_project_id)
        except ApiError as err:
            backup.status = "error_deleting"
            backup.fail_reason = err.message
            return
        vs.backups.pop(backup.id, None)

    vs.later(0.0, purge)


# -- export / import ------------------------------------------------------------
_RECORD_FIELDS = (
    "id",
    "project_id",
    "user_id",
    "volume_id",
    "name",
    "description",
    "container",
    "size",
    "created_at",
    "data_timestamp",
    "store_site",
    "store_project_id",
    "prefix",
    "snapshot_id",
    "parent_id",
    "is_incremental",
    "object_count",
    "data_bytes",
    "chain_bytes",
    "lineage",
    "disk_seq",
    "metadata",
    "chain",
)


def export_record(backup: Backup) -> dict[str, str]:
    """Everything another site's volume service needs to find and restore the objects."""
    if backup.status != "available":
        raise bad_request(
            f"Invalid backup: Backup status must be available and not {backup.status}."
        )
    record = {k: getattr(backup, k) for k in _RECORD_FIELDS}
    url = base64.b64encode(json.dumps(record, sort_keys=True).encode()).decode()
    return {"backup_service": BACKUP_SERVICE, "backup_url": url}


def import_record(
    vs: VolumeState, service: Any, url: Any, *, project_id: str, user_id: str
) -> Backup:
    if not isinstance(service, str) or not isinstance(url, str):
        raise bad_request(
            "Invalid input received: backup-record needs backup_service and backup_url strings."
        )
    if service != BACKUP_SERVICE:
        raise bad_request(f"Invalid input received: unsupported backup service {service}.")
    try:
        record = json.loads(base64.b64decode(url.encode(), validate=True))
        if not isinstance(record, dict):
            raise ValueError("not an object")
        fields = {k: record[k] for k in _RECORD_FIELDS}
    except (ValueError, KeyError, binascii.Error, UnicodeDecodeError) as exc:
        raise bad_request("Invalid input received: Can't parse backup record.") from exc
    if fields["id"] in vs.backups:
        raise bad_request("Invalid backup: Backup already exists in database.")
    if fields["store_site"] not in vs.site.world.sites:
        raise bad_request(
            f"Invalid input received: unknown object store site {fields['store_site']}."
        )
    backup = Backup(**{**fields, "project_id": project_id, "user_id": user_id})
    backup.status = "available"
    backup.imported = True
    backup.updated_at = vs.now
    # The parent may not exist here: the objects' metadata carries the chain.
    vs.backups[backup.id] = backup
    return backup


# -- restore -----------------------------------------------------------------------
def restore_backup(
    vs: VolumeState,
    backup: Backup,
    *,
    volume_id: str | None,
    name: str | None,
    project_id: str,
    user_id: str,
) -> Volume:
    """restoring-backup → available once the chain crossed the link and was written."""
    site = vs.site
    if backup.status != "available":
        raise bad_request(
            f"Invalid backup: Backup status must be available but is {backup.status}."
        )
    if volume_id:
        vol = vs.get(volume_id)
        if vol.status != "available":
            raise bad_request(
                f"Invalid volume: Volume to be restored to must be available, but is {vol.status}."
            )
        if vol.size < backup.size:
            raise bad_request(
                f"Invalid volume: volume size {vol.size} is too small to restore backup of "
                f"size {backup.size}."
            )
    else:
        vol = vs.create_volume(
            project_id=project_id,
            user_id=user_id,
            size_gb=backup.size,
            name=name or f"restore_backup_{backup.id}",
            description=f"auto-created_from_restore_from_backup ({backup.id})",
            ready=False,
        )
    vs.set_status(vol, "restoring-backup")
    backup.status = "restoring"
    lat = site.latency
    seconds = lat.volume_restore_base
    if lat.volume_restore_mb_s > 0:
        seconds += vol.size * 1024 / lat.volume_restore_mb_s

    def finish() -> None:
        backup.status = "available"
        try:
            _apply_chain(vs, backup, vol)
        except (ApiError, ValueError, KeyError, IndexError) as err:
            vs.set_status(vol, "error_restoring")
            backup.fail_reason = getattr(err, "message", str(err))
            return
        vs.set_status(vol, "available")
        site.world.writelog.record(
            vs.now,
            "restore",
            site.name,
            volume=vol.id,
            backup=backup.id,
            source_volume=backup.volume_id,
            data_timestamp=backup.data_timestamp,
        )

    def finish_and_free() -> None:
        try:
            finish()
        finally:
            restore_slots(vs).release()

    def arrived() -> None:
        restore_slots(vs).run(lambda: vs.later(seconds, finish_and_free))

    site.world.links.transfer(
        backup.store_site, site.name, backup.chain_bytes, arrived, tag="restore"
    )
    return vol


class RestoreSlots:
    """A site's backup service restores at most ``max_concurrent_restores`` volumes at once.

    Cinder's backup service works through a bounded pool (``backup_workers``,
    ``backup_max_operations``); a restore beyond the bound waits its turn in
    ``restoring-backup`` (first come, first served), so its latency starts when
    a slot frees.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self.queue: deque[Callable[[], None]] = deque()

    def run(self, start: Callable[[], None]) -> None:
        if self.active < self.limit:
            self.active += 1
            start()
        else:
            self.queue.append(start)

    def release(self) -> None:
        self.active = max(0, self.active - 1)
        while self.queue and self.active < self.limit:
            self.active += 1
            self.queue.popleft()()


def restore_slots(vs: VolumeState) -> RestoreSlots:
    """The site's restore slots (made on first use from the topology)."""
    slots: RestoreSlots | None = getattr(vs, "_restore_slots", None)
    if slots is None:
        site = vs.site
        spec = site.world.topology.sites.get(site.name)
        slots = RestoreSlots(spec.max_concurrent_restores if spec is not None else 50)
        vs._restore_slots = slots  # type: ignore[attr-defined]
    return slots


def read_chain(vs: VolumeState, backup: Backup) -> list[dict[str, Any]]:
    """The metadata of every backup of the chain, oldest (the full one) first."""
    store = vs.site.world.sites[backup.store_site].objects
    chain: list[dict[str, Any]] = []
    prefix: str | None = backup.prefix
    while prefix is not None:
        raw = store.get_object(
            backup.container, f"{prefix}_metadata", project_id=backup.store_project_id
        )
        meta = json.loads(raw)
        chain.append(meta)
        prefix = meta.get("parent_prefix")
    chain.reverse()
    return chain


def _apply_chain(vs: VolumeState, backup: Backup, vol: Volume) -> None:
    store = vs.site.world.sites[backup.store_site].objects
    disk = vol.disk
    restored: set[int] = set()
    for meta in read_chain(vs, backup):
        bs = int(meta["block_size"])
        for entry in meta["objects"]:
            data = store.get_object(
                backup.container, entry["name"], project_id=backup.store_project_id
            )
            if hashlib.md5(data).hexdigest() != entry["md5"]:
                raise ApiError(500, f"backup object {entry['name']} is corrupt (md5 mismatch)")
            for k, index in enumerate(entry["blocks"]):
                block = data[k * bs : (k + 1) * bs]
                # A backup made with another block size is rewritten byte for byte.
                for j in range(0, len(block), disk.block_size):
                    target = (index * bs + j) // disk.block_size
                    disk.write_block(target, block[j : j + disk.block_size])
                    restored.add(target)
    zeros = b"\0" * disk.block_size
    for index in disk.written_blocks():
        if index not in restored:
            disk.write_block(index, zeros)  # the volume is overwritten as a whole
    vol.lineage = uuid.uuid4().hex
