"""Recovery steps that rebuild what servers need before they boot: key pairs, security groups,
server groups (from the manifest's ``key_pairs``, ``security_groups``, ``server_groups``).

Each create goes through :meth:`StepContext.ensure_created`, so a replayed
step adopts what an earlier attempt made instead of making a second one:

* ``keypairs`` (one step per run): a key pair is identified by its name (it
  carries no tag); one that exists with the same public key is adopted, one
  with another key is refused (the plan check reports it before the run);
* ``secgroups:<g>``: each security group is created with the manifest's
  name, tagged with the run and step, and a description naming its source
  group -- which finds a group half made by a controller killed between
  Neutron's create and tag calls; then each rule the group lacks (rules are
  the same rule when all their fields match; ``remote_group_id`` follows
  the mapping of the groups).  The project's ``default`` group is not
  recreated: the recovery project's own ``default`` is used;
* ``servergroups:<g>``: each server group, with the manifest's name and
  policy (a group with that name and policy is adopted).

Key pairs and server groups carry no tag, so one found may be the site's own
(it existed before the run) or one an earlier attempt of the step made.  The
ledger tells them apart for the test-mode cleanup, which deletes only what
the run made: what the step created is recorded as ``keypair`` /
``server_group``; what it found before creating (and had not recorded as its
own in an earlier attempt) as ``adopted:keypair`` / ``adopted:server_group``,
which cleanup leaves alone.  Before a create the step records an
``intent:<kind>`` entry, so a replay after a kill between the cloud's create
and the ledger takes the one it finds for its own.  Recreated security groups carry the run's tag
(or its marker), so every one recorded was made by the run.

The results map source ids to recovery-site ids; the ``ports`` and ``boot``
steps read them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from liferaft.clouds.model import KeyPair, SecurityGroup, SecurityGroupRule, ServerGroup
from liferaft.clouds.port import Cloud
from liferaft.engine.cloudsteps import cloud_tag
from liferaft.engine.executor import StepContext
from liferaft.engine.idempotency import IdempotencyTag
from liferaft.engine.workflow import StepDef
from liferaft.errors import GiveUp

DEFAULT_SG = "default"


def marker(source_id: str) -> str:
    """The description of a recreated security group (finds one whose tag call never ran)."""
    return f"liferaft: recovered security group {source_id}"


def _id(x: SecurityGroup | ServerGroup | SecurityGroupRule) -> str:
    return str(x.id)


def _name(k: KeyPair) -> str:
    return k.name


ADOPTED = "adopted:"


async def _kind(
    ctx: StepContext, kind: str, name: str, find: Callable[[IdempotencyTag], Any], site: str
) -> str:
    """``kind`` when the step made (or will make) ``name``; ``adopted:<kind>`` when it existed."""
    recorded = {r.kind for r in ctx.resources() if r.key == name}
    if recorded & {kind, f"intent:{kind}"}:
        return kind  # an earlier attempt of this step made it, or was about to
    if ADOPTED + kind in recorded or await find(ctx.tag(name)) is not None:
        return ADOPTED + kind
    # Durably before the create: a replay after a kill between the cloud's create and the
    # ledger then knows the one it finds is the run's own.
    ctx.record_intent(kind=kind, name=name, site=site)
    return kind


async def keypairs(cloud: Cloud, ctx: StepContext) -> dict[str, str]:
    """Every key pair of every group's manifest; name -> name here."""
    out: dict[str, str] = {}
    wanted: dict[str, dict[str, Any]] = {}
    for g in ctx.params["groups"]:
        for kp in g["manifest"].get("key_pairs", []):
            wanted.setdefault(kp["name"], kp)
    for name, kp in sorted(wanted.items()):
        public = kp.get("public_key")
        have = await cloud.find_keypair(name)
        if public is None:
            if have is None:
                raise GiveUp(
                    f"{cloud.site}: key pair {name!r}: its public key was not readable at the "
                    f"protected site and {cloud.site} has none by that name"
                )
            out[name] = name
            continue

        async def find(t: IdempotencyTag, public: str = public) -> KeyPair | None:
            k = await cloud.find_keypair(t.name)
            if k is not None and (k.public_key or "").strip() != public.strip():
                raise GiveUp(f"{cloud.site}: a key pair {t.name!r} exists with another public key")
            return k

        async def create(t: IdempotencyTag, kp: dict[str, Any] = kp) -> KeyPair:
            return await cloud.create_keypair(
                name=t.name, public_key=kp["public_key"], key_type=kp.get("type") or "ssh"
            )

        made: KeyPair = await ctx.ensure_created(
            kind=await _kind(ctx, "keypair", name, find, cloud.site),
            name=name,
            find=find,
            create=create,
            cloud_id=_name,
            site=cloud.site,
        )
        out[name] = made.name
    return out


async def _default_group(cloud: Cloud) -> SecurityGroup:
    project = (await cloud.identity()).project_id
    for g in await cloud.list_security_groups(name=DEFAULT_SG):
        if g.project_id in (None, project):
            return g
    raise GiveUp(f"{cloud.site}: project {project} has no {DEFAULT_SG!r} security group")


async def secgroups(cloud: Cloud, ctx: StepContext, gi: int) -> dict[str, str]:
    """The manifest's security groups of group ``gi``, and their rules; source id -> id here."""
    groups: list[dict[str, Any]] = ctx.params["groups"][gi]["manifest"].get("security_groups", [])
    out: dict[str, str] = {}
    for sg in groups:
        if sg["name"] == DEFAULT_SG:
            out[sg["id"]] = (await _default_group(cloud)).id
            continue

        async def find(t: IdempotencyTag, src: str = sg["id"]) -> SecurityGroup | None:
            tag = cloud_tag(t)
            found = await cloud.list_security_groups(name=t.name)
            for g in found:
                if tag.matches_tags(g.tags):
                    return g
            for g in found:  # made, never tagged: our description, no tags
                if not g.tags and g.description == marker(src):
                    # A controller killed between Neutron's create and its tag call left
                    # it so: tag it now, or a clean-up by the run's tag would miss it.
                    return await cloud.tag_security_group(g.id, tag)
            return None

        async def create(t: IdempotencyTag, src: str = sg["id"]) -> SecurityGroup:
            return await cloud.create_security_group(
                name=t.name, tag=cloud_tag(t), description=marker(src)
            )

        made: SecurityGroup = await ctx.ensure_created(
            kind="security_group",
            name=sg["name"],
            find=find,
            create=create,
            cloud_id=_id,
            site=cloud.site,
        )
        out[sg["id"]] = made.id
    for sg in groups:
        if sg["name"] == DEFAULT_SG:
            continue
        gid = out[sg["id"]]
        for ri, r in enumerate(sg.get("rules", [])):
            remote = r.get("remote_group_id")
            rule = SecurityGroupRule(**{**r, "remote_group_id": out.get(remote, remote)})

            async def find_rule(
                t: IdempotencyTag, gid: str = gid, rule: SecurityGroupRule = rule
            ) -> SecurityGroupRule | None:
                have = await cloud.get_security_group(gid)
                return next((x for x in have.rules if x.key() == rule.key()), None)

            async def create_rule(
                t: IdempotencyTag, gid: str = gid, rule: SecurityGroupRule = rule
            ) -> SecurityGroupRule:
                return await cloud.create_security_group_rule(gid, rule)

            await ctx.ensure_created(
                kind="security_group_rule",
                name=f"{sg['name']}-r{ri}",
                find=find_rule,
                create=create_rule,
                cloud_id=_id,
                site=cloud.site,
            )
    return out


async def servergroups(cloud: Cloud, ctx: StepContext, gi: int) -> dict[str, str]:
    """The manifest's server groups of group ``gi``; source id -> id here."""
    out: dict[str, str] = {}
    wanted = ctx.params["groups"][gi]["manifest"].get("server_groups", [])
    project = (await cloud.identity()).project_id if wanted else None
    for sg in wanted:

        async def find(t: IdempotencyTag, policy: str = sg["policy"]) -> ServerGroup | None:
            return next(
                (
                    g
                    for g in await cloud.list_server_groups()  # every project's (admin)
                    if g.name == t.name and g.policy == policy and g.project_id in (None, project)
                ),
                None,
            )

        async def create(t: IdempotencyTag, policy: str = sg["policy"]) -> ServerGroup:
            return await cloud.create_server_group(name=t.name, policy=policy)

        made: ServerGroup = await ctx.ensure_created(
            kind=await _kind(ctx, "server_group", sg["name"], find, cloud.site),
            name=sg["name"],
            find=find,
            create=create,
            cloud_id=_id,
            site=cloud.site,
        )
        out[sg["id"]] = made.id
    return out


# -- wiring into the recovery workflow ---------------------------------------------------
def groundwork_steps(cloud: Cloud, params: dict[str, Any], site: str) -> list[StepDef]:
    """``keypairs``, and ``secgroups:g<i>`` and ``servergroups:g<i>`` for each group."""

    def bind(fn: Callable[..., Any], *args: Any) -> Callable[[StepContext], Any]:
        async def run(ctx: StepContext) -> Any:
            return await fn(cloud, ctx, *args)

        return run

    steps = [StepDef("keypairs", bind(keypairs), depends_on=("capacity",), site=site)]
    for gi in range(len(params["groups"])):
        steps.append(
            StepDef(f"secgroups:g{gi}", bind(secgroups, gi), depends_on=("capacity",), site=site)
        )
        steps.append(
            StepDef(
                f"servergroups:g{gi}", bind(servergroups, gi), depends_on=("capacity",), site=site
            )
        )
    return steps


def port_security_groups(ctx: StepContext, gi: int, port: dict[str, Any]) -> list[str] | None:
    """The recreated security groups of a manifest port (``None``: the project's default)."""
    made: dict[str, str] = ctx.results.get(f"secgroups:g{gi}") or {}
    if "security_groups" not in ctx.params["groups"][gi]["manifest"]:
        return None  # a manifest from before security groups were recorded
    return [made[g] for g in port.get("security_group_ids", []) if g in made]


def boot_access(ctx: StepContext, gi: int, srv: dict[str, Any]) -> dict[str, Any]:
    """``key_name`` and ``server_group_id`` for a recovered server's create."""
    keys: dict[str, str] = ctx.results.get("keypairs") or {}
    groups: dict[str, str] = ctx.results.get(f"servergroups:g{gi}") or {}
    return {
        "key_name": keys.get(srv.get("key_name") or ""),
        "server_group_id": groups.get(srv.get("server_group_id") or ""),
    }
