"""The image-copy method (OPNFV method 2, ORBIT's default): disk images as content-addressed chunks.

At each checkpoint, inside the capture's quiesce window, every protected
volume is uploaded to an image at the protected site (Cinder's
upload-to-image, a point-in-time copy of its *current* bytes).  Then one
``copy:<i>`` step per volume reads its image back from the image service
(HTTP range requests, a window of chunks at a time), cuts it into
fixed-size chunks and stores each chunk, named by its SHA-256, in the
recovery site's object store::

    <container>/chunks/<group id>/<sha256 hex>

Only chunks that are not there yet travel: a chunk an earlier checkpoint
(or an earlier attempt of this one, killed mid-copy) stored is not sent
again, so an interrupted copy resumes where it stopped and a checkpoint
ships about the bytes of the chunks that changed.  All-zero chunks (the
unwritten parts of a sparse volume) are neither hashed nor stored.  The
manifest records, per volume, the image's size, the chunk size and the
ordered chunk list (``""`` for a zero chunk); recovery assembles the image
from it (:mod:`liferaft.recovery.image_restore`).

Servers' root disks go the same way: in the same window, every protected
server that boots from an image gets a Nova ``createImage`` snapshot of its
local disk (what the guest wrote, not only the base image it started
from), and one ``copy-root:<j>`` step per server copies it like a volume's
image into the same chunk store (the base image's chunks are shared, only
changed chunks travel).  The manifest records the chunk list in the
server's entry (``root_disk``); recovery boots the server from it.

Chunks are named per group so that one group's retention owns its chunks:
:func:`collect_garbage` deletes the chunks that no kept manifest of the
group references (reference counting from the manifests themselves, read
from the recovery site), and does nothing while another checkpoint of the
group is in flight (its chunks are not in any manifest yet).

Each new chunk is a tagged create (``ctx.ensure_created``, ledger kind
``chunk``), so a kill hook ``after_cloud_call@copy:<i>#<n>`` stops the
controller right after the ``n``-th new chunk landed.  The copier's rate
is live (:mod:`liferaft.protection.pacing`): before every chunk it asks
``ProtectionDeps.rates`` for the rate the DR-Logic decided for this flow
(the checkpoint), falling back to ``rate_limit`` in the checkpoint's params
(bytes per second), else ``ProtectionDeps.copy_rate``; ``None`` sends as
fast as the link allows.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from liferaft.clouds.model import Image
from liferaft.clouds.port import Cloud
from liferaft.engine.cloudsteps import cloud_tag
from liferaft.engine.executor import StepContext
from liferaft.engine.idempotency import IdempotencyTag
from liferaft.errors import RetryLater

from . import manifest as mf
from .pacing import Pacer

if TYPE_CHECKING:
    from .checkpoint import ProtectionDeps

METHOD = "image-copy"
#: Bytes per chunk (the unit of deduplication and of resumption).
CHUNK_SIZE = 1 << 20
#: Chunks read from the image service per range request.
READ_WINDOW = 16
PREFIX = "chunks"


def chunk_prefix(group_id: str) -> str:
    return f"{PREFIX}/{group_id}/"


def chunk_object(group_id: str, digest: str) -> str:
    return f"{chunk_prefix(group_id)}{digest}"


def is_zero(data: bytes) -> bool:
    """Whether a chunk holds only zero bytes (compared, not hashed: a sparse disk is mostly these)."""
    return not data or data == bytes(len(data))


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def chunk_lengths(size: int, chunk_size: int) -> list[int]:
    """The length of every chunk of an image of ``size`` bytes (the last may be short)."""
    full, rest = divmod(size, chunk_size)
    return [chunk_size] * full + ([rest] if rest else [])


def referenced(manifest: dict[str, Any]) -> set[str]:
    """The chunk digests a manifest needs."""
    out: set[str] = set()
    for v in manifest.get("volumes", []):
        img = v.get("image")
        if img:
            out.update(d for d in img.get("chunks", []) if d)
    for srv in manifest.get("servers", []):
        img = (srv.get("root_disk") or {}).get("image")
        if img:
            out.update(d for d in img.get("chunks", []) if d)
    return out


def changed_bytes(old: list[str], new: list[str], size: int, chunk_size: int) -> int:
    """Bytes of the chunks of ``new`` that differ from the same position in ``old`` (zeros excluded)."""
    total = 0
    for i, n in enumerate(chunk_lengths(size, chunk_size)):
        d = new[i]
        if d and (i >= len(old) or old[i] != d):
            total += n
    return total


@dataclass
class CopyStats:
    chunks: list[str] = field(default_factory=list)
    sent_bytes: int = 0
    sent_chunks: int = 0
    reused_chunks: int = 0
    zero_chunks: int = 0


# -- capture: the images, inside the quiesce window --------------------------------
def image_name(checkpoint_id: str, index: int) -> str:
    return f"lr-{checkpoint_id[:12]}-i{index}"


async def take_images(ctx: StepContext, cloud: Cloud, params: dict[str, Any]) -> dict[str, str]:
    """Upload every protected volume to a new image (point in time); volume id -> image id.

    Cinder's upload-to-image takes no tag, so the image is found again by
    its name, unique to the checkpoint and the volume's index.
    """
    images: dict[str, str] = {}
    for i, v in enumerate(params["volumes"]):
        vid = v["id"]

        async def find(t: IdempotencyTag) -> Image | None:
            return await cloud.find_image(t.name)

        async def create(t: IdempotencyTag, vid: str = vid) -> Image:
            return await cloud.upload_volume_to_image(vid, name=t.name, force=True)

        img: Image = await ctx.ensure_created(
            kind="image",
            name=image_name(params["checkpoint_id"], i),
            find=find,
            create=create,
            cloud_id=_image_id,
            site=cloud.site,
        )
        images[vid] = img.id
    return images


def root_image_name(checkpoint_id: str, index: int) -> str:
    return f"lr-{checkpoint_id[:12]}-r{index}"


def boots_from_image(server: dict[str, Any]) -> bool:
    """Whether a described server's root disk is a local disk made from an image."""
    return (server.get("boot") or {}).get("from") == "image"


async def take_root_images(
    ctx: StepContext, cloud: Cloud, params: dict[str, Any], described: list[dict[str, Any]]
) -> dict[str, str]:
    """Snapshot the root disk of every protected server that boots from an image (Nova's
    ``createImage``, a point-in-time copy of the disk as the guest wrote it); server id ->
    image id.  A server that boots from a volume is skipped: its root disk is a volume.

    The image is tagged (its properties) and named after the checkpoint and the server's
    index, so a replay finds it by name and makes no second one.
    """
    by_id = {s["id"]: s for s in described}
    images: dict[str, str] = {}
    for i, m in enumerate(params["servers"]):
        sid = m["id"]
        if not boots_from_image(by_id.get(sid, {})):
            continue

        async def find(t: IdempotencyTag) -> Image | None:
            return await cloud.find_image(t.name)

        async def create(t: IdempotencyTag, sid: str = sid) -> Image:
            return await cloud.create_server_image(sid, name=t.name, tag=cloud_tag(t))

        img: Image = await ctx.ensure_created(
            kind="image",
            name=root_image_name(params["checkpoint_id"], i),
            find=find,
            create=create,
            cloud_id=_image_id,
            site=cloud.site,
        )
        images[sid] = img.id
    return images


def _image_id(i: Image) -> str:
    return i.id


# -- copy:<i>, copy-root:<i> ------------------------------------------------------
async def copy(deps: ProtectionDeps, ctx: StepContext, index: int) -> dict[str, Any]:
    """Copy one volume's image to the recovery site as chunks; only missing chunks travel."""
    vid = ctx.params["volumes"][index]["id"]
    image_id = ctx.results["capture"]["images"][vid]
    out = await copy_image(deps, ctx, image_id, what=f"volume {vid}")
    return {"volume_id": vid, **out}


async def copy_root(deps: ProtectionDeps, ctx: StepContext, index: int) -> dict[str, Any]:
    """Copy one server's root-disk snapshot like a volume's image (same chunks, same dedup).

    A server without a root-disk image (it boots from a volume) has nothing to copy.
    """
    sid = ctx.params["servers"][index]["id"]
    image_id = ctx.results["capture"].get("root_images", {}).get(sid)
    if image_id is None:
        return {"server_id": sid, "image_id": None}
    out = await copy_image(deps, ctx, image_id, what=f"the root disk of server {sid}")
    return {"server_id": sid, **out}


async def copy_image(
    deps: ProtectionDeps, ctx: StepContext, image_id: str, *, what: str
) -> dict[str, Any]:
    """Copy one image of the protected site to the recovery site as chunks (the step's work)."""
    from .checkpoint import wait_until

    p = ctx.params
    src = deps.cloud(p["site"])
    dst = deps.cloud(p["recovery_site"])
    chunk_size = int(p.get("chunk_size") or CHUNK_SIZE)
    img = await wait_until(
        deps.clock,
        lambda: src.get_image(image_id),
        lambda i: i.status == "active",
        failed=lambda i: i.status in ("killed", "deleted"),
        what=f"{src.site}: image {image_id} of {what}",
        poll=deps.poll,
        timeout=deps.timeout,
    )
    size = int(img.size or 0)
    group = p["group_id"]
    present = set(await dst.list_objects(deps.container, prefix=chunk_prefix(group)))
    limit = deps.rates.pacer(p["checkpoint_id"], deps.clock, p.get("rate_limit") or deps.copy_rate)
    stats = CopyStats()
    lengths = chunk_lengths(size, chunk_size)
    offset = 0
    while offset < size:
        want = min(chunk_size * READ_WINDOW, size - offset)
        window = await src.read_image(image_id, offset=offset, length=want)
        if len(window) != want:
            raise RetryLater(
                f"{src.site}: image {image_id}: read {len(window)} bytes at {offset}, wanted {want}"
            )
        for at in range(0, want, chunk_size):
            piece = window[at : at + chunk_size]
            if is_zero(piece):
                stats.chunks.append("")
                stats.zero_chunks += 1
                continue
            d = digest(piece)
            stats.chunks.append(d)
            name = chunk_object(group, d)
            if name in present:
                stats.reused_chunks += 1
                continue
            await _put_chunk(deps, ctx, dst, name, piece, limit, present)
            present.add(name)
            stats.sent_chunks += 1
            stats.sent_bytes += len(piece)
        offset += want
    assert len(stats.chunks) == len(lengths)
    await _resend_missing(deps, ctx, src, dst, image_id, stats, lengths, limit, group)
    # The chunks this step sent in every attempt (the ledger survives a kill): what travelled.
    made = {r.cloud_id for r in ctx.resources() if r.kind == "chunk"}
    sent_total = sum(
        n
        for d, n in zip(stats.chunks, lengths, strict=True)
        if d and chunk_object(group, d) in made
    )
    return {
        "image_id": image_id,
        "image": {
            "container": deps.container,
            "prefix": chunk_prefix(group),
            "size": size,
            "chunk_size": chunk_size,
            "chunks": stats.chunks,
        },
        "sent_bytes": sent_total,
        "sent_bytes_this_attempt": stats.sent_bytes,
        "sent_chunks": stats.sent_chunks,
        "reused_chunks": stats.reused_chunks,
        "zero_chunks": stats.zero_chunks,
    }


async def _put_chunk(
    deps: ProtectionDeps,
    ctx: StepContext,
    dst: Cloud,
    name: str,
    data: bytes,
    limit: Pacer,
    present: set[str],
) -> None:
    # ``present`` was listed when this attempt started, so it holds what an earlier
    # attempt stored (even a chunk stored in the instant before a kill): a chunk not in
    # it is not there, and storing it again would be harmless anyway (same name, bytes).
    async def find(t: IdempotencyTag) -> str | None:
        return name if name in present else None

    async def create(t: IdempotencyTag) -> str:
        await limit.take(len(data))
        await dst.put_object(deps.container, name, data)
        return name

    await ctx.ensure_created(
        kind="chunk",
        name=f"chunk-{name.rsplit('/', 1)[-1][:32]}",
        find=find,
        create=create,
        cloud_id=lambda n: n,
        site=dst.site,
    )


async def _resend_missing(
    deps: ProtectionDeps,
    ctx: StepContext,
    src: Cloud,
    dst: Cloud,
    image_id: str,
    stats: CopyStats,
    lengths: list[int],
    limit: Pacer,
    group: str,
) -> None:
    """Send again any chunk this copy counted on that is gone now.

    A chunk found at the start may have been collected since by a retention
    that did not see this checkpoint in flight yet; the manifest must not
    name a chunk that is not there.
    """
    present = set(await dst.list_objects(deps.container, prefix=chunk_prefix(group)))
    chunk_size = lengths[0] if lengths else CHUNK_SIZE
    for i, d in enumerate(stats.chunks):
        name = chunk_object(group, d) if d else ""
        if not d or name in present:
            continue
        piece = await src.read_image(image_id, offset=i * chunk_size, length=lengths[i])
        if digest(piece) != d:
            raise RetryLater(f"{src.site}: image {image_id} changed under the copy (chunk {i})")
        await _put_chunk(deps, ctx, dst, name, piece, limit, present)
        present.add(name)
        stats.sent_chunks += 1
        stats.sent_bytes += len(piece)


def volume_entries(params: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    """Per volume, what the manifest and the catalog record (the image-copy counterpart of export)."""
    out: dict[str, Any] = {}
    for i, v in enumerate(params["volumes"]):
        r = results[f"copy:{i}"]
        out[v["id"]] = {
            "method": METHOD,
            "image": r["image"],
            "sent_bytes": r["sent_bytes"],
            "sent_bytes_last_attempt": r["sent_bytes_this_attempt"],
        }
    return out


def root_step(index: int) -> str:
    return f"copy-root:{index}"


def root_entries(params: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    """Per server whose root disk was copied: what the manifest and the catalog record."""
    out: dict[str, Any] = {}
    for i, m in enumerate(params["servers"]):
        r = results.get(root_step(i))
        if not r or r.get("image_id") is None:
            continue
        out[m["id"]] = {
            "method": METHOD,
            "image": r["image"],
            "sent_bytes": r["sent_bytes"],
            "sent_bytes_last_attempt": r["sent_bytes_this_attempt"],
        }
    return out


def root_key(server_id: str) -> str:
    """The key of a server's root disk among a checkpoint's catalog ``volumes`` records."""
    return f"root:{server_id}"


def catalog_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """The catalog's short record of one volume's copy (the chunk list stays in the manifest)."""
    img = entry["image"]
    return {
        "method": METHOD,
        "size": img["size"],
        "chunks": len(img["chunks"]),
        "sent_bytes": entry["sent_bytes"],
        "sent_bytes_last_attempt": entry["sent_bytes_last_attempt"],
    }


# -- cleanup and retention ----------------------------------------------------------
async def delete_images(cloud: Cloud, images: dict[str, str]) -> list[str]:
    for image_id in images.values():
        await cloud.delete_image(image_id)
    return list(images.values())


async def collect_garbage(deps: ProtectionDeps, params: dict[str, Any], *, busy: bool) -> list[str]:
    """Delete the group's chunks that no manifest kept at the recovery site references.

    Nothing is deleted while another checkpoint of the group is in flight
    (``busy``) or when a manifest does not verify (its references are not
    known, so every chunk is kept until it is dealt with).
    """
    if busy:
        return []
    target = deps.cloud(params["recovery_site"])
    group = params["group_id"]
    keep: set[str] = set()
    for name in await target.list_objects(deps.container, prefix=mf.group_prefix(group)):
        try:
            doc = mf.verify(await target.get_object(deps.container, name), deps.key, where=name)
        except mf.ManifestRefused:
            return []
        keep |= referenced(doc)
    gone = []
    for name in await target.list_objects(deps.container, prefix=chunk_prefix(group)):
        if name.rsplit("/", 1)[-1] not in keep:
            await target.delete_object(deps.container, name)
            gone.append(name)
    return gone
