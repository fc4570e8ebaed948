"""``liferaft catalog rebuild``: a site's protection catalog from the signed manifests alone.

After the controller's database is lost, everything it needs to go on
protecting -- and everything a recovery needs -- is still in the recovery
site's object store: each complete checkpoint's manifest names its group
(id, name, sites, policy and, since manifests carry them, the policy's
settings), the group's servers (quiesce rank, boot tier) and volumes, and
the checkpoint itself (capture time, chain, parent, backups).  The rebuild
reads and verifies every manifest of this site's groups there and records
what the catalog lacks:

* a policy the catalog lacks, from the newest manifest's settings (a
  manifest written before they were recorded: the group gets ``default``);
* each group under its original id (so the object names still match);
* its members as of its newest manifest;
* each checkpoint as ``complete``, with its backups and manifest location.

It is idempotent: what exists is kept (a second run records nothing), and a
resource that another group protects now is reported, not moved.  Manifests
that do not verify are listed and skipped.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from liferaft.errors import GiveUp

from . import manifest as mf
from .catalog import Catalog
from .checkpoint import ProtectionDeps
from .model import DEFAULT_POLICY, Checkpoint, Group, Member, Policy, Unknown

T = TypeVar("T")


@dataclass
class Rebuilt:
    site: str
    source: str
    container: str
    groups: list[dict[str, Any]] = field(default_factory=list)
    policies: list[str] = field(default_factory=list)
    members: int = 0
    checkpoints: int = 0
    refused: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "site": self.site,
            "source": self.source,
            "container": self.container,
            "groups": self.groups,
            "policies_restored": self.policies,
            "members_restored": self.members,
            "checkpoints_restored": self.checkpoints,
            "refused": self.refused,
            "skipped": self.skipped,
        }


async def _db(fn: Callable[[], T]) -> T:
    return await asyncio.to_thread(fn)


async def read_manifests(
    deps: ProtectionDeps, source: str, out: Rebuilt
) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """This site's verified manifests in ``source``'s object store, by group, oldest first."""
    cloud = deps.cloud(source)
    by_group: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for name in await cloud.list_objects(deps.container, prefix=mf.group_prefix()):
        gid = mf.group_of(name)
        if gid is None:
            continue
        data = await cloud.get_object(deps.container, name)
        try:
            doc = mf.verify(data, deps.key, where=f"{deps.container}/{name}")
        except mf.ManifestRefused as err:
            out.refused.append(str(err))
            continue
        if doc["group"]["site"] != deps.site or doc["group"]["id"] != gid:
            continue
        by_group.setdefault(gid, []).append((name, doc))
    for docs in by_group.values():
        docs.sort(key=lambda x: x[1]["captured_at"])
    return by_group


def _policy(catalog: Catalog, doc: dict[str, Any], out: Rebuilt) -> str:
    name = doc["group"]["policy"]
    try:
        catalog.get_policy(name)
        return str(name)
    except Unknown:
        pass
    settings = doc["group"].get("policy_settings")
    if not settings:
        out.skipped.append(
            f"group {doc['group']['name']}: its manifests do not record policy {name!r}; "
            f"it gets policy {DEFAULT_POLICY!r}"
        )
        return DEFAULT_POLICY
    catalog.set_policy(Policy(**settings))
    out.policies.append(name)
    return str(name)


def _volume_record(v: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's record of one volume, from its manifest entry (as the workflow wrote it)."""
    if "replica" in v:  # storage replication: the replica's reference, no backup
        return {"replica": v["replica"]["reference"]}
    if "image" in v:  # an image copy: its chunks are listed in the manifest
        return {
            "method": "image-copy",
            "size": v["image"]["size"],
            "chunks": len(v["image"]["chunks"]),
        }
    # As the checkpoint workflow records it (object_count: what DR-Logic sizes from).
    b = v["backup"]
    return {k: b.get(k) for k in ("backup_id", "incremental", "size_gb", "object_count")}


def _volume_records(doc: dict[str, Any]) -> dict[str, Any]:
    """A checkpoint's ``volumes`` records from its manifest, image-copy's root disks included
    (under ``root:<server id>``, as the checkpoint workflow records them)."""
    out = {v["id"]: _volume_record(v) for v in doc["volumes"]}
    for s in doc.get("servers", []):
        if s.get("root_disk"):
            out[f"root:{s['id']}"] = {**_volume_record(s["root_disk"]), "server_id": s["id"]}
    return out


def _restore_group(
    catalog: Catalog,
    source: str,
    container: str,
    docs: list[tuple[str, dict[str, Any]]],
    out: Rebuilt,
) -> int:
    """Record one group, its members and its checkpoints; the number of new checkpoints."""
    newest = docs[-1][1]
    gdoc = newest["group"]
    policy = _policy(catalog, newest, out)
    g = catalog.find_group(gdoc["id"])
    if g is None:
        other = catalog.find_group(gdoc["name"])
        if other is not None:
            out.skipped.append(
                f"group {gdoc['name']} ({gdoc['id']}): a group {other.id} has that name here"
            )
            return 0
        g = catalog.restore_group(
            Group(
                id=gdoc["id"],
                name=gdoc["name"],
                site=gdoc["site"],
                recovery_site=gdoc["recovery_site"],
                policy=policy,
                created_at=docs[0][1]["captured_at"],
            )
        )
    # The checkpoints before the members: the DR-Logic loop, running meanwhile, looks only
    # at groups with volumes, and would force a first checkpoint (a new chain) of one that
    # had its members but not yet its checkpoints.
    made = 0
    known = {c.id for c in catalog.list_checkpoints(group_id=g.id)}
    for name, doc in docs:
        if doc["checkpoint_id"] in known:
            continue
        catalog.create_checkpoint(
            Checkpoint(
                id=doc["checkpoint_id"],
                group_id=g.id,
                state="complete",
                requested_at=doc["captured_at"],
                workflow_id=doc["checkpoint_id"],
                chain_id=doc["chain_id"],
                captured_at=doc["captured_at"],
                completed_at=doc.get("written_at"),
                parent_id=doc.get("parent_id"),
                consistency=doc.get("consistency"),
                volumes=_volume_records(doc),
                manifest={"site": source, "container": container, "object": name},
            )
        )
        made += 1
    wanted = [
        Member(
            g.site,
            "server",
            s["id"],
            s.get("name") or "",
            g.id,
            quiesce_rank=int(s.get("quiesce_rank") or 0),
            tier=int(s.get("tier") or 0),
        )
        for s in newest["servers"]
    ] + [Member(g.site, "volume", v["id"], v.get("name") or "", g.id) for v in newest["volumes"]]
    for m in wanted:
        owner = catalog.find_member(m.site, m.kind, m.cloud_id)
        if owner is None:
            g = catalog.add_member(g, m, now=newest["captured_at"])
            out.members += 1
        elif owner.group_id != g.id:
            out.skipped.append(
                f"{m.kind} {m.name or m.cloud_id} of group {g.name}: protected by group "
                f"{owner.group_id} here; left there"
            )
    out.groups.append(
        {
            "id": g.id,
            "name": g.name,
            "policy": g.policy,
            "checkpoints": len(docs),
            "checkpoints_restored": made,
        }
    )
    return made


async def rebuild(deps: ProtectionDeps, *, recovery_site: str) -> Rebuilt:
    """Rebuild this site's catalog from ``recovery_site``'s object store (see the module doc)."""
    if not recovery_site:
        raise GiveUp("no recovery site is configured (protection.recovery_site or a peer)")
    out = Rebuilt(site=deps.site, source=recovery_site, container=deps.container)
    by_group = await read_manifests(deps, recovery_site, out)
    for gid in sorted(by_group):
        docs = by_group[gid]
        out.checkpoints += await _db(
            lambda docs=docs: _restore_group(  # type: ignore[misc]
                deps.catalog, recovery_site, deps.container, docs, out
            )
        )
    return out
