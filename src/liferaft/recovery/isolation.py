"""Test mode's isolated networks: a tagged copy, at the recovery site, of every network a plan uses.

A test run boots the recovered servers on copies of the recovery site's
networks (the mapped ones, see :mod:`.plancheck`; same subnets' CIDRs, so the ports keep the manifest's
fixed IPs and MACs) that nothing else is attached to: the test copy of a
server never answers on the production network, and the protected site
keeps running untouched.  Each copy is named after the run
(``lr-test-<run>-<network>``) and carries the run/step tag, so a replayed
step finds what it made; :mod:`.cleanup` deletes it after the test.
"""

from __future__ import annotations

from typing import Any

from liferaft.clouds.model import Subnet
from liferaft.clouds.port import Cloud
from liferaft.engine.cloudsteps import cloud_tag
from liferaft.engine.executor import StepContext
from liferaft.engine.idempotency import IdempotencyTag
from liferaft.errors import GiveUp

from .plancheck import resolved

STEP = "isolate"


def copy_name(run_id: str, network: str) -> str:
    return f"lr-test-{run_id[:12]}-{network}"


def networks_of(params: dict[str, Any]) -> list[str]:
    """Every network name the plan's ports are on, sorted."""
    return sorted(
        {
            p["network_name"]
            for g in params["groups"]
            for s in g["manifest"]["servers"]
            for p in s["ports"]
        }
    )


async def _ensure_network(ctx: StepContext, cloud: Cloud, name: str) -> str:
    async def find(t: IdempotencyTag) -> str | None:
        found = await cloud.find_network_tagged(t.name, cloud_tag(t))
        if found is not None:
            return found
        # Neutron tags a network after creating it: a controller killed between the two
        # calls left one with this run's name and no tag.  The name is this run's own; tag
        # it now, or a clean-up by the run's tag would miss it.
        untagged = await cloud.find_network(t.name)
        if untagged is not None:
            await cloud.tag_network(untagged, cloud_tag(t))
        return untagged

    async def create(t: IdempotencyTag) -> str:
        return await cloud.create_network(name=t.name, tag=cloud_tag(t))

    net: str = await ctx.ensure_created(
        kind="network", name=name, find=find, create=create, cloud_id=str, site=cloud.site
    )
    return net


async def _ensure_subnet(
    ctx: StepContext, cloud: Cloud, name: str, network_id: str, like: Subnet
) -> Subnet:
    async def find(t: IdempotencyTag) -> Subnet | None:
        found = await cloud.find_subnet(t.name, cloud_tag(t))
        if found is not None:
            return found
        untagged = next(
            (s for s in await cloud.list_subnets(network_id=network_id) if s.name == t.name), None
        )
        # Made, never tagged (a kill between Neutron's create and tag calls): tag it now.
        return None if untagged is None else await cloud.tag_subnet(untagged.id, cloud_tag(t))

    async def create(t: IdempotencyTag) -> Subnet:
        return await cloud.create_subnet(
            name=t.name,
            tag=cloud_tag(t),
            network_id=network_id,
            cidr=like.cidr,
            ip_version=like.ip_version,
            gateway_ip=like.gateway_ip,
            enable_dhcp=like.enable_dhcp,
        )

    sub: Subnet = await ctx.ensure_created(
        kind="subnet", name=name, find=find, create=create, cloud_id=_subnet_id, site=cloud.site
    )
    return sub


def _subnet_id(s: Subnet) -> str:
    return s.id


async def isolate(cloud: Cloud, ctx: StepContext) -> dict[str, Any]:
    """Make (or find) the isolated copy of each network; ``{"networks": {name: copy id}}``."""
    run = ctx.params["run_id"]
    out: dict[str, str] = {}
    subnets: dict[str, list[str]] = {}
    for name in networks_of(ctx.params):
        src = resolved(ctx.params, "networks", name) or await cloud.find_network(name)
        if src is None:
            raise GiveUp(
                f"{cloud.site}: no network named {name!r} to copy for the test run "
                f"(the plan's ports are on it)"
            )
        copy = copy_name(run, name)
        net = await _ensure_network(ctx, cloud, copy)
        made = []
        for i, sn in enumerate(await cloud.list_subnets(network_id=src)):
            made.append((await _ensure_subnet(ctx, cloud, f"{copy}-s{i}", net, sn)).id)
        out[name] = net
        subnets[name] = made
    return {"networks": out, "subnets": subnets}


async def network_for(cloud: Cloud, ctx: StepContext, name: str) -> str | None:
    """The network a recovered port goes on: the isolated copy in a test run, else the mapped
    one (the run's plan check) or the one of the same name."""
    isolated = ctx.results.get(STEP)
    if isolated is not None:
        net: str | None = isolated["networks"].get(name)
        return net
    return resolved(ctx.params, "networks", name) or await cloud.find_network(name)
