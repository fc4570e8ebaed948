"""Failback: reprotect a recovered workload in reverse, then move it home with a planned run.

1. **Reprotect** (on the site that recovered the workload, after a disaster
   or planned run): :func:`reprotect` makes each recovered group a
   protection group *of this site* -- the recovered servers and restored
   volumes, same quiesce order and tiers -- whose recovery site is the
   original site, and starts its first checkpoint.  Repeating it changes
   nothing (the group and its members are found, not made again).
2. **Failback run** (on the original site's controller, once it is back):
   ``liferaft recovery SITE --mode failback`` is a planned run
   (:mod:`.planned`) with one more step, ``retire``, before the recovery:
   the original site's old copies of the servers (quarantined, stopped) hold
   the very addresses the recovery recreates, so the stopped servers that
   hold one of the manifest's MACs or fixed IPs on its network are deleted
   with their ports -- a running one stops the run (it must not be
   touched).  Their volumes are kept; the stale protection group they
   belonged to here is forgotten.
"""

from __future__ import annotations

from typing import Any

from liferaft.clouds.port import Cloud, ResourceNotFound
from liferaft.engine.executor import StepContext
from liferaft.errors import GiveUp, NotFound
from liferaft.protection.catalog import Catalog
from liferaft.protection.checkpoint import wait_until
from liferaft.protection.model import DEFAULT_POLICY, Conflict, Group, Invalid, Member, Unknown
from liferaft.protection.service import ProtectionService, Submit
from liferaft.store import Store

from . import planned


def run_report(store: Store, run: dict[str, Any]) -> dict[str, Any]:
    """The report of a finished disaster or planned run."""
    wid = planned.recover_id(run["id"]) if run["mode"] == "planned" else run["workflow_id"]
    try:
        step = store.get_step(wid, "report")
    except NotFound:
        step = None
    if step is None or step.state != "done" or not step.result:
        raise Conflict(f"run {run['id']} has not finished its recovery: nothing to reprotect")
    report: dict[str, Any] = step.result
    return report


def reprotect(
    protection: ProtectionService, store: Store, run: dict[str, Any], submit: Submit
) -> list[Group]:
    """Protect the run's recovered servers and volumes here, towards the run's protected site."""
    if run["mode"] not in ("disaster", "planned"):
        raise Invalid(f"run {run['id']} is a {run['mode']} run: only a recovery is reprotected")
    catalog: Catalog = protection.catalog
    site = protection.site
    report = run_report(store, run)
    params = store.get_workflow(run["workflow_id"]).params
    servers = {s["source"]: s for s in report["servers"]}
    volumes = {v["source"]: v for v in report["volumes"]}
    now = protection.clock.now()
    out = []
    for g in params["groups"]:
        m = g["manifest"]
        try:
            policy = catalog.get_policy(m["group"]["policy"]).name
        except Unknown:
            policy = DEFAULT_POLICY
        grp = catalog.create_group(
            m["group"]["name"],
            site=site,
            recovery_site=run["protected_site"],
            policy=policy,
            now=now,
        )
        wanted = [
            Member(
                site,
                "server",
                servers[s["id"]]["server_id"],
                s["name"],
                "",
                quiesce_rank=int(s.get("quiesce_rank") or 0),
                tier=int(s.get("tier") or 0),
            )
            for s in m["servers"]
            if s["id"] in servers
        ]
        wanted += [
            Member(site, "volume", volumes[v["id"]]["volume_id"], v.get("name") or "", "")
            for v in m["volumes"]
            if v["id"] in volumes
        ]
        for mem in wanted:
            have = catalog.find_member(site, mem.kind, mem.cloud_id)
            if have is None:
                grp = catalog.add_member(grp, mem, now=now)
            elif have.group_id != grp.id:
                raise Conflict(f"{mem.kind} {mem.cloud_id} is already protected by another group")
        if not any(
            c.state == "pending" for c in catalog.list_checkpoints(group_id=grp.id)
        ) and not catalog.list_checkpoints(group_id=grp.id, states=("complete",)):
            protection.start_checkpoint(grp, submit)
        out.append(catalog.get_group(grp.id))
    return out


async def retire(
    cloud: Cloud, catalog: Catalog, ctx: StepContext, clock: Any, poll: float
) -> dict[str, Any]:
    """Delete the stopped old servers (and ports) that hold the manifests' addresses here."""
    deleted: list[str] = []
    ports_deleted: list[str] = []
    for g in ctx.params["groups"]:
        for s in g["manifest"]["servers"]:
            for p in s["ports"]:
                net = await cloud.find_network(p["network_name"])
                if net is None:
                    continue
                ips = {f["ip_address"] for f in p["fixed_ips"]}
                for port in await cloud.list_ports(network_id=net):
                    holds = port.mac_address == p["mac_address"] or any(
                        f.ip_address in ips for f in port.fixed_ips
                    )
                    if not holds:
                        continue
                    if (
                        port.device_id
                        and port.device_owner
                        and port.device_owner.startswith("compute")
                    ):
                        await _delete_server(cloud, catalog, port.device_id, clock, poll)
                        deleted.append(port.device_id)
                    await cloud.delete_port(port.id)
                    ports_deleted.append(port.id)
    return {"servers_deleted": sorted(set(deleted)), "ports_deleted": sorted(set(ports_deleted))}


async def _delete_server(
    cloud: Cloud, catalog: Catalog, server_id: str, clock: Any, poll: float
) -> None:
    try:
        old = await cloud.get_server(server_id)
    except ResourceNotFound:
        return
    if old.status != "SHUTOFF":
        raise GiveUp(
            f"{cloud.site}: server {old.name} ({old.id}) holds an address of the failback and is "
            f"{old.status}: only a stopped (quarantined) old copy is retired; stop it first"
        )
    member = catalog.find_member(cloud.site, "server", server_id)
    if member is not None:
        catalog.forget_group(member.group_id)  # the stale group of the old copies
    await cloud.unlock_server(server_id)
    await cloud.delete_server(server_id)

    async def gone() -> bool:
        try:
            await cloud.get_server(server_id)
        except ResourceNotFound:
            return True
        return False

    await wait_until(
        clock, gone, bool, what=f"{cloud.site}: delete {server_id}", poll=poll, timeout=600.0
    )
