"""Recovery of an image-copied volume: chunks → image → volume, at the recovery site.

The manifest's ``image`` entry of a volume (written by
:mod:`liferaft.protection.image_copy`) lists the image's chunks in order.
The ``restore:<g>:<v>`` step of such a volume:

1. assembles the image from the chunks in the local object store into a
   sparse spool file (each chunk's SHA-256 is checked: a damaged chunk
   stops the step with its name; zero chunks are holes);
2. uploads it to the recovery site's image service (tagged, found by its
   name on replay; an image left ``queued`` by an upload that broke off is
   deleted and made again);
3. creates the volume from that image (tagged), waits until it is
   available, then deletes the image (it served its purpose).

A replay that finds the volume made skips the image.

A server whose root disk the checkpoint copied (the manifest's server
entry has ``root_disk``: it booted from an image, and Nova's
``createImage`` snapshot of its disk was copied as chunks) gets a
``root:<g>:<s>`` step (:func:`restore_root_disk`): the chunks are
assembled and uploaded to an image the same way, and the server boots from
that image instead of the mapped base image, so its root disk holds what
the guest had written at the checkpoint.  That image is kept: it is the
recovered server's image (Nova rebuilds the server's disk from it on an
evacuation); a test run's cleanup deletes it with the run's other
resources.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liferaft.clouds.model import Image
from liferaft.clouds.port import Cloud
from liferaft.engine.cloudsteps import cloud_tag, ensure_volume
from liferaft.engine.executor import StepContext
from liferaft.engine.idempotency import IdempotencyTag
from liferaft.errors import GiveUp
from liferaft.protection.checkpoint import wait_until
from liferaft.protection.image_copy import chunk_lengths

from .plancheck import resolved

if TYPE_CHECKING:
    from .disaster import RecoveryDeps


async def assemble(cloud: Cloud, image: dict[str, Any], path: Path) -> int:
    """Write the image the chunk list describes to ``path``; returns its size."""
    size = int(image["size"])
    chunk_size = int(image["chunk_size"])
    lengths = chunk_lengths(size, chunk_size)
    if len(lengths) != len(image["chunks"]):
        raise GiveUp(
            f"image entry lists {len(image['chunks'])} chunks for {size} bytes "
            f"of {chunk_size}-byte chunks"
        )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.ftruncate(fd, size)  # zero chunks stay holes
        for i, (d, n) in enumerate(zip(image["chunks"], lengths, strict=True)):
            if not d:
                continue
            name = f"{image['prefix']}{d}"
            data = await cloud.get_object(image["container"], name)
            if len(data) != n or hashlib.sha256(data).hexdigest() != d:
                raise GiveUp(
                    f"{cloud.site}: chunk {name} (#{i}) is damaged: its bytes do not hash to its name"
                )
            os.pwrite(fd, data, i * chunk_size)
    finally:
        os.close(fd)
    return size


async def _ensure_image(ctx: StepContext, cloud: Cloud, name: str, path: Path) -> Image:
    async def find(t: IdempotencyTag) -> Image | None:
        img = await cloud.find_image(t.name)
        if img is not None and img.status == "queued":
            await cloud.delete_image(img.id)  # an upload that broke off: no data behind it
            return None
        return img

    async def create(t: IdempotencyTag) -> Image:
        return await cloud.upload_image(name=t.name, tag=cloud_tag(t), data=path)

    img: Image = await ctx.ensure_created(
        kind="image", name=name, find=find, create=create, cloud_id=_image_id, site=cloud.site
    )
    return img


def _image_id(i: Image) -> str:
    return i.id


async def restore_from_chunks(
    deps: RecoveryDeps, ctx: StepContext, vol: dict[str, Any], *, key: str
) -> dict[str, Any]:
    """The ``restore`` step for a volume the manifest holds as chunks."""
    cloud = deps.cloud
    vname = f"{vol['name'] or vol['id'][:8]}"
    iname = f"lr-{ctx.workflow_id[:12]}-{key}"
    image_id = None
    target = await cloud.find_volume(vname, cloud_tag(ctx.tag(vname)))
    if target is None:
        with tempfile.TemporaryDirectory(prefix="liferaft-image-") as tmp:
            path = Path(tmp) / "image.raw"
            await assemble(cloud, vol["image"], path)
            img = await _ensure_image(ctx, cloud, iname, path)
        img = await wait_until(
            deps.clock,
            lambda: cloud.get_image(img.id),
            lambda x: x.status == "active",
            failed=lambda x: x.status in ("killed", "deleted"),
            what=f"{cloud.site}: image {img.id} of volume {vol['id']}",
            poll=deps.poll,
            timeout=deps.timeout,
        )
        image_id = img.id
    target = await ensure_volume(
        ctx,
        cloud,
        name=vname,
        size_gb=int(vol["size_gb"]),
        volume_type=resolved(ctx.params, "volume_types", vol.get("volume_type")),
        image_id=image_id,
        metadata={"liferaft_source": vol["id"]},
    )
    target = await wait_until(
        deps.clock,
        lambda: cloud.get_volume(target.id),
        lambda x: x.status in ("available", "in-use"),
        failed=lambda x: x.status == "error",
        what=f"{cloud.site}: volume {target.id} from image",
        poll=deps.poll,
        timeout=deps.timeout,
    )
    # The image served its purpose (a replay that found the volume looks it up by name).
    made = image_id or getattr(await cloud.find_image(iname), "id", None)
    if made is not None:
        await cloud.delete_image(made)
    ctx.note(volume=vol["id"], restored_as=target.id, from_chunks=len(vol["image"]["chunks"]))
    return {"source": vol["id"], "volume_id": target.id, "image_id": image_id, "restored": True}


def root_image_name(srv: dict[str, Any], key: str, workflow_id: str) -> str:
    """The recovered server's root-disk image: named after the server, unique to the run."""
    return f"{srv['name'] or srv['id'][:8]}-root-{key}-{workflow_id[:12]}"


async def restore_root_disk(
    deps: RecoveryDeps, ctx: StepContext, srv: dict[str, Any], *, key: str
) -> dict[str, Any]:
    """The ``root:<g>:<s>`` step: the server's copied root disk as an active image to boot from."""
    cloud = deps.cloud
    disk = srv["root_disk"]["image"]
    name = root_image_name(srv, key, ctx.workflow_id)

    async def find(t: IdempotencyTag) -> Image | None:
        found = await cloud.find_image(t.name)
        if found is not None and found.status == "queued":
            await cloud.delete_image(found.id)  # an upload that broke off: no data behind it
            return None
        return found

    async def create(t: IdempotencyTag) -> Image:
        # Assembled only when the image is not there yet (a replay after the upload skips it).
        with tempfile.TemporaryDirectory(prefix="liferaft-root-") as tmp:
            path = Path(tmp) / "root.raw"
            await assemble(cloud, disk, path)
            return await cloud.upload_image(name=t.name, tag=cloud_tag(t), data=path)

    img: Image = await ctx.ensure_created(
        kind="image", name=name, find=find, create=create, cloud_id=_image_id, site=cloud.site
    )
    img = await wait_until(
        deps.clock,
        lambda: cloud.get_image(img.id),
        lambda x: x.status == "active",
        failed=lambda x: x.status in ("killed", "deleted"),
        what=f"{cloud.site}: root-disk image {img.id} of server {srv['name']}",
        poll=deps.poll,
        timeout=deps.timeout,
    )
    ctx.note(server=srv["id"], root_image=img.id, from_chunks=len(disk["chunks"]))
    return {"source": srv["id"], "image_id": img.id, "size": int(disk["size"])}
