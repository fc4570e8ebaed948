"""Quarantine of a site whose workloads were recovered elsewhere.

After a disaster or planned run of site S, S's old servers must never run
again beside their recovered copies.  While S is down nothing can be done
there; when it returns (its API answers again), this controller keeps its
old servers stopped, locked (Nova's lock: only an admin may start them) and
off their addresses (their ports ``admin_state_up = false``: Neutron passes
no traffic, so nothing answers on the recovered addresses at S) -- and does
so again at every tick, so a server that someone starts is stopped again.

Which sites are quarantined is derived from the recovery runs in the
catalog (durable): a ``disaster`` or ``planned`` run of S quarantines it
until a later ``release`` run of S (``liferaft site release S``), whose
workflow (kind ``site-release``) unlocks the servers and brings their ports
back up, leaving the servers stopped for the operator to start.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from liferaft.clouds.port import Cloud, ResourceNotFound
from liferaft.engine.executor import StepContext
from liferaft.engine.workflow import RetryPolicy, StepDef, WorkflowDef
from liferaft.errors import LiferaftError, NotFound, RetryLater
from liferaft.store import Store

log = logging.getLogger(__name__)

#: Run modes that leave the protected site quarantined.
QUARANTINING = ("disaster", "planned", "failback")
#: Run modes that lift it.
RELEASING = ("release",)
RELEASE_KIND = "site-release"


def quarantined(runs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Per quarantined site, the runs that quarantine it (since its last release), oldest first.

    ``runs`` are catalog rows (``mode``, ``protected_site``, ``requested_at``).
    """
    out: dict[str, list[dict[str, Any]]] = {}
    for r in sorted(runs, key=lambda r: (r["requested_at"], r["id"])):
        site = r["protected_site"]
        if r["mode"] in QUARANTINING:
            out.setdefault(site, []).append(r)
        elif r["mode"] in RELEASING:
            out.pop(site, None)
    return out


def servers_of(store: Store, runs: list[dict[str, Any]]) -> list[str]:
    """The protected site's server ids the runs recovered (from their manifests), sorted."""
    ids: set[str] = set()
    for r in runs:
        try:
            params = store.get_workflow(r["workflow_id"]).params
        except NotFound:
            continue
        for g in params.get("groups", []):
            ids.update(s["id"] for s in g["manifest"]["servers"])
    return sorted(ids)


@dataclass
class SiteState:
    """What the last enforcement saw at one quarantined site."""

    site: str
    since: float
    runs: list[str]
    servers: list[str]
    reachable: bool | None = None
    checked_at: float | None = None
    status: dict[str, str] = field(default_factory=dict)
    ports_down: int = 0
    actions: list[str] = field(default_factory=list)
    error: str | None = None
    locked: set[str] = field(default_factory=set)

    def as_dict(self) -> dict[str, Any]:
        return {
            "site": self.site,
            # Every old server deleted (a failback retired them): nothing left to guard.
            "quarantined": not (self.status and all(v == "gone" for v in self.status.values())),
            "since": self.since,
            "runs": self.runs,
            "servers": self.servers,
            "reachable": self.reachable,
            "checked_at": self.checked_at,
            "server_status": self.status,
            "ports_down": self.ports_down,
            "actions": self.actions[-50:],
            "error": self.error,
        }


async def enforce_site(cloud: Cloud, st: SiteState, now: Callable[[], float]) -> SiteState:
    """Stop, lock and unplug every old server of ``st.site`` that the cloud still has.

    An unreachable site (still down) is left for the next tick.  Every call
    is idempotent; a failure on one server does not stop the others.
    """
    st.checked_at = now()
    st.error = None
    ports_down = 0
    for sid in st.servers:
        try:
            s = await cloud.get_server(sid)
        except ResourceNotFound:
            st.status[sid] = "gone"
            continue
        except RetryLater as err:
            st.reachable = False
            st.error = str(err)
            return st
        st.reachable = True
        st.status[sid] = s.status
        try:
            if s.status == "ACTIVE" and s.task_state is None:
                await cloud.stop_server(sid)
                st.actions.append(f"{st.checked_at:.1f} stopped {sid}")
                log.warning("quarantine of %s: server %s was running; stopped", st.site, sid)
            if sid not in st.locked:  # once per controller life: an admin may unlock on purpose
                await cloud.lock_server(sid)
                st.locked.add(sid)
            for p in await cloud.list_ports(device_id=sid):
                if p.admin_state_up:
                    await cloud.set_port_admin_state(p.id, False)
                    st.actions.append(f"{st.checked_at:.1f} port {p.id} of {sid} down")
                ports_down += 1
        except LiferaftError as err:
            st.error = f"{sid}: {err}"
            log.warning("quarantine of %s: %s: %s", st.site, sid, err)
    st.ports_down = ports_down
    return st


class Quarantine:
    """The quarantine enforcer of one controller: :meth:`tick` is called by the DR loop."""

    def __init__(self, store: Store, clouds: dict[str, Cloud], now: Callable[[], float]) -> None:
        self.store = store
        self.clouds = clouds
        self.now = now
        self.sites: dict[str, SiteState] = {}

    def refresh(self, runs: list[dict[str, Any]]) -> dict[str, SiteState]:
        q = quarantined(runs)
        for site in list(self.sites):
            if site not in q:
                del self.sites[site]
        for site, rs in q.items():
            ids = [r["id"] for r in rs]
            st = self.sites.get(site)
            if st is None or st.runs != ids:
                self.sites[site] = SiteState(
                    site, rs[0]["requested_at"], ids, servers_of(self.store, rs)
                )
        return self.sites

    async def tick(self, runs: list[dict[str, Any]]) -> None:
        for site, st in self.refresh(runs).items():
            cloud = self.clouds.get(site)
            if cloud is None:
                st.error = f"no cloud configured for {site}: cannot enforce its quarantine"
                continue
            await enforce_site(cloud, st, self.now)

    def status(self) -> list[dict[str, Any]]:
        return [st.as_dict() for st in sorted(self.sites.values(), key=lambda s: s.site)]


# -- release ------------------------------------------------------------------------------
async def release(cloud: Cloud, ctx: StepContext) -> dict[str, Any]:
    """Unlock the old servers and bring their ports up; they stay stopped (the operator's call)."""
    unlocked, ports = [], []
    for sid in ctx.params["servers"]:
        try:
            await cloud.unlock_server(sid)
        except ResourceNotFound:
            continue
        unlocked.append(sid)
        for p in await cloud.list_ports(device_id=sid):
            if not p.admin_state_up:
                await cloud.set_port_admin_state(p.id, True)
            ports.append(p.id)
    return {"site": ctx.params["site"], "unlocked": unlocked, "ports_up": ports}


def build_release(clouds: dict[str, Cloud], params: dict[str, Any]) -> WorkflowDef:
    site = params["site"]

    async def run(ctx: StepContext) -> Any:
        cloud = clouds.get(site)
        if cloud is None:
            raise RetryLater(f"no cloud configured for {site}")
        return await release(cloud, ctx)

    return WorkflowDef(
        RELEASE_KIND,
        [StepDef("release", run, site=site)],
        retry=RetryPolicy(max_attempts=20, initial=5.0, max_delay=60.0),
    )
