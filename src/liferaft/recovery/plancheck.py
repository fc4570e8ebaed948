"""The recovery plan check: everything that would stop a recovery, listed at once, before it starts.

:func:`check_plan` reads the recovery site (flavors, images, volume types,
networks, quotas, Placement) and the verified manifests of the protected
site, applies the pair's mappings (``protection.mappings.<site>``) and
returns every problem -- a missing mapping, a flavor, image, volume type or
network the recovery site lacks, a quota or Placement capacity too small, a
group without a manifest that verifies -- and what each name of the
protected site resolves to here.

``liferaft plan check DATACENTER`` shows it; every recovery run runs it
first and refuses, before anything changes, when a problem is found.  The
resolution goes into the run's parameters, so a replayed step uses the same
flavor, image, volume type and network as the first attempt.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from liferaft.clouds.model import Flavor, ProviderCapacity, Quota
from liferaft.clouds.port import Cloud, ResourceNotFound
from liferaft.errors import GiveUp

#: Mapping kinds (``protection.mappings.<site>.<kind>``).
KINDS = ("projects", "flavors", "images", "volume_types", "networks")


@dataclass(frozen=True)
class Problem:
    """One thing that stops (or, as a warning, may surprise) a recovery."""

    kind: str  # mapping, flavor, image, volume_type, network, project, quota, capacity, manifest
    subject: str  # what it is about: "group vnf: server db", "compute quota cores", ...
    message: str

    def __str__(self) -> str:
        return f"{self.subject}: {self.message}"


@dataclass
class PlanCheck:
    protected_site: str
    recovery_site: str
    groups: list[dict[str, Any]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    #: kind -> protected-site name or id -> what a recovery uses here (ids, or names for types).
    resolved: dict[str, dict[str, str]] = field(default_factory=lambda: {k: {} for k in KINDS})
    needs: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {
            "protected_site": self.protected_site,
            "recovery_site": self.recovery_site,
            "ok": self.ok,
            "problems": [asdict(p) for p in self.problems],
            "warnings": [asdict(p) for p in self.warnings],
            "groups": self.groups,
            "resolved": self.resolved,
            "needs": self.needs,
        }


class PlanRefused(GiveUp):
    """A recovery refused before anything changed: the plan check found problems."""

    def __init__(self, check: PlanCheck) -> None:
        n = len(check.problems)
        listed = "; ".join(f"({i}) {p}" for i, p in enumerate(check.problems, start=1))
        super().__init__(
            f"recovery of {check.protected_site} at {check.recovery_site} refused before "
            f"anything changed: {n} problem{'s' if n != 1 else ''}: {listed}"
        )
        self.check = check


def _mapped(mappings: Mapping[str, Mapping[str, str]], kind: str, *keys: str | None) -> str | None:
    table = mappings.get(kind) or {}
    for k in keys:
        if k and k in table:
            return table[k]
    return None


def _where(protected_site: str, kind: str) -> str:
    return f"protection.mappings.{protected_site}.{kind}"


class _Checker:
    def __init__(
        self,
        cloud: Cloud,
        out: PlanCheck,
        mappings: Mapping[str, Mapping[str, str]],
    ) -> None:
        self.cloud = cloud
        self.out = out
        self.mappings = mappings
        self.site = out.recovery_site
        self._missing: dict[tuple[str, str, str, str | None], list[str]] = {}

    def problem(self, kind: str, subject: str, message: str) -> None:
        p = Problem(kind, subject, message)
        if p not in self.out.problems:
            self.out.problems.append(p)

    def missing(self, kind: str, what: str, source: str, target: str | None, subject: str) -> None:
        """A name of the protected site that does not resolve here (one problem per name)."""
        self._missing.setdefault((kind, what, source, target), []).append(subject)

    def flush(self) -> None:
        for (kind, what, source, target), subjects in self._missing.items():
            subject = "; ".join(subjects[:3]) + (
                f" (and {len(subjects) - 3} more)" if len(subjects) > 3 else ""
            )
            table = _where(self.out.protected_site, kind)
            if target is not None and target != source:
                self.problem(
                    kind.rstrip("s"),
                    subject,
                    f"{what} {source!r} is mapped ({table}) to {target!r}, which {self.site} lacks",
                )
            else:
                self.problem(
                    "mapping",
                    subject,
                    f"no {what} {source!r} at {self.site} and no mapping for it: add "
                    f"{table}: {{{source!r}: <{what} at {self.site}>}}",
                )
        self._missing.clear()

    # -- names ------------------------------------------------------------------------
    def flavors(self, servers: list[tuple[str, dict[str, Any]]], have: list[Flavor]) -> None:
        by_key = {f.name: f for f in have} | {f.id: f for f in have}
        for subject, s in servers:
            src = str(s.get("flavor") or "")
            target = _mapped(self.mappings, "flavors", src)
            f = by_key.get(target or src)
            if f is None:
                self.missing("flavors", "flavor", src, target, subject)
            else:
                self.out.resolved["flavors"][src] = f.id

    async def images(self, servers: list[tuple[str, dict[str, Any]]]) -> None:
        looked: set[str] = set()  # one lookup per image, not per server
        for subject, s in servers:
            boot = s.get("boot") or {}
            if boot.get("from") != "image" or s.get("root_disk"):
                continue  # a copied root disk (image-copy) boots from its own image
            name, iid = boot.get("image_name"), boot.get("image_id")
            src = str(name or iid or "")
            target = _mapped(self.mappings, "images", name, iid)
            if src in looked:
                if src not in self.out.resolved["images"]:
                    self.missing("images", "image", src, target, subject)
                continue
            looked.add(src)
            found = await self.cloud.find_image(target or src)
            if found is None:
                try:
                    found = await self.cloud.get_image(target or iid or src)
                except ResourceNotFound:
                    found = None
            if found is None:
                self.missing("images", "image", src, target, subject)
            else:
                self.out.resolved["images"][src] = found.id

    def volume_types(self, volumes: list[tuple[str, dict[str, Any]]], have: list[str]) -> None:
        for subject, v in volumes:
            src = v.get("volume_type")
            if not src:
                continue
            target = _mapped(self.mappings, "volume_types", src)
            if (target or src) in have:
                self.out.resolved["volume_types"][src] = target or src
            else:
                self.missing("volume_types", "volume type", src, target, subject)

    async def networks(self, servers: list[tuple[str, dict[str, Any]]]) -> None:
        looked: set[str] = set()  # one lookup per network, not per port
        for subject, s in servers:
            for p in s.get("ports") or []:
                name, nid = p.get("network_name"), p.get("network_id")
                src = str(name or nid or "")
                target = _mapped(self.mappings, "networks", name, nid)
                if src in looked:
                    if src not in self.out.resolved["networks"]:
                        self.missing(
                            "networks", "network", src, target, f"{subject} port {p['id']}"
                        )
                    continue
                looked.add(src)
                found = await self.cloud.find_network(target or src)
                if found is None and target:
                    try:
                        await self.cloud.network_name(target)
                        found = target
                    except ResourceNotFound:
                        found = None
                if found is None:
                    self.missing("networks", "network", src, target, f"{subject} port {p['id']}")
                else:
                    self.out.resolved["networks"][src] = found

    def projects(self, servers: list[tuple[str, dict[str, Any]]], here: str) -> None:
        for subject, s in servers:
            src = s.get("project_id")
            if not src:
                continue
            target = _mapped(self.mappings, "projects", src)
            if target is not None and target != here:
                self.problem(
                    "project",
                    subject,
                    f"project {src!r} is mapped ({_where(self.out.protected_site, 'projects')}) "
                    f"to {target!r}, but the controller's connection to {self.site} is scoped "
                    f"to project {here!r} (one project per connection)",
                )
            else:
                self.out.resolved["projects"][src] = here

    async def key_pairs(self, groups: list[dict[str, Any]]) -> int:
        """Key pairs that would clash or cannot be made; the number to create."""
        new = 0
        seen: set[str] = set()
        for g in groups:
            for kp in g["manifest"].get("key_pairs", []):
                if kp["name"] in seen:
                    continue
                seen.add(kp["name"])
                have = await self.cloud.find_keypair(kp["name"])
                subject = f"group {g['manifest']['group']['name']}: key pair {kp['name']}"
                if have is None and kp.get("public_key") is None:
                    self.problem(
                        "key_pair",
                        subject,
                        f"its public key was not readable at {self.out.protected_site} and "
                        f"{self.site} has no key pair by that name: import it here",
                    )
                elif have is None:
                    new += 1
                elif (
                    kp.get("public_key")
                    and (have.public_key or "").strip() != str(kp["public_key"]).strip()
                ):
                    self.problem(
                        "key_pair",
                        subject,
                        f"{self.site} has a key pair {kp['name']!r} with another public key "
                        f"(fingerprint {have.fingerprint}): rename or delete it",
                    )
        return new

    # -- room -------------------------------------------------------------------------
    def quotas(self, quotas: list[Quota], need: Mapping[tuple[str, str], int]) -> None:
        have = {(q.service, q.resource): q for q in quotas}
        for (service, resource), n in need.items():
            q = have.get((service, resource))
            if q is None or n <= 0 or n <= q.free:
                continue
            self.problem(
                "quota",
                f"{service} quota {resource}",
                f"the plan needs {n}, {self.site}'s project has {max(q.free, 0):g} free "
                f"(limit {q.limit}, {q.in_use} in use)",
            )

    def capacity(
        self, sizes: list[tuple[str, int, int]], providers: list[ProviderCapacity]
    ) -> None:
        """First fit, biggest first, of every server into Placement's free VCPU and memory."""
        free = [[p.free("VCPU"), p.free("MEMORY_MB")] for p in providers]
        left: Counter[str] = Counter()
        for flavor, vcpu, ram in sorted(sizes, key=lambda x: (x[1], x[2]), reverse=True):
            slot = next((f for f in free if f[0] >= vcpu and f[1] >= ram), None)
            if slot is None:
                left[f"{flavor} ({vcpu} VCPU, {ram} MB)"] += 1
                continue
            slot[0] -= vcpu
            slot[1] -= ram
        if left:
            total_v = sum(p.free("VCPU") for p in providers)
            total_m = sum(p.free("MEMORY_MB") for p in providers)
            self.problem(
                "capacity",
                "Placement capacity",
                f"{sum(left.values())} of {len(sizes)} servers do not fit on "
                f"{len(providers)} compute hosts of {self.site}: "
                + ", ".join(f"{n} x {what}" for what, n in sorted(left.items()))
                + f" (free in all: {total_v:g} VCPU, {total_m:g} MB)",
            )


def _servers(groups: Iterable[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"group {g['manifest']['group']['name']}: server {s.get('name') or s['id']}", s)
        for g in groups
        for s in g["manifest"]["servers"]
    ]


def _volumes(groups: Iterable[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"group {g['manifest']['group']['name']}: volume {v.get('name') or v['id']}", v)
        for g in groups
        for v in g["manifest"]["volumes"]
    ]


async def check_plan(
    cloud: Cloud,
    *,
    protected_site: str,
    groups: list[dict[str, Any]],
    unverified: Mapping[str, list[str]],
    mappings: Mapping[str, Mapping[str, str]],
    container: str,
) -> PlanCheck:
    """Every problem a recovery of ``protected_site`` at ``cloud``'s site would meet.

    ``groups`` are each group's newest verified manifest (``{"object",
    "manifest"}``); ``unverified`` the refusals per group id (a group with
    refusals and no verified manifest cannot be recovered: a problem; one
    whose older manifest is used: a warning).
    """
    out = PlanCheck(protected_site=protected_site, recovery_site=cloud.site)
    c = _Checker(cloud, out, mappings)
    used = {g["manifest"]["group"]["id"] for g in groups}
    for gid, why in sorted(unverified.items()):
        for msg in why:
            p = Problem("manifest", f"group {gid}", msg)
            if gid in used:
                out.warnings.append(p)
            else:
                c.problem(
                    p.kind, p.subject, f"{msg}; no older manifest of this group verifies either"
                )
    if not groups:
        c.problem(
            "manifest",
            f"site {protected_site}",
            f"no verified checkpoint of {protected_site} in {cloud.site}'s object store "
            f"(container {container})",
        )
    out.groups = [
        {
            "group": g["manifest"]["group"]["name"],
            "group_id": g["manifest"]["group"]["id"],
            "checkpoint_id": g["manifest"]["checkpoint_id"],
            "captured_at": g["manifest"]["captured_at"],
            "object": g["object"],
            "servers": len(g["manifest"]["servers"]),
            "volumes": len(g["manifest"]["volumes"]),
        }
        for g in groups
    ]
    servers, volumes = _servers(groups), _volumes(groups)
    flavors = await cloud.list_flavors()
    c.flavors(servers, flavors)
    await c.images(servers)
    c.volume_types(volumes, await cloud.list_volume_types())
    await c.networks(servers)
    c.projects(servers, (await cloud.identity()).project_id)
    c.flush()

    by_id = {f.id: f for f in flavors}
    sizes = []
    for _subject, s in servers:
        f = by_id.get(out.resolved["flavors"].get(str(s.get("flavor") or ""), ""))
        vcpu = f.vcpus if f else int(s.get("vcpus") or 0)
        ram = f.ram_mb if f else int(s.get("ram_mb") or 0)
        sizes.append((f.name if f else str(s.get("flavor")), vcpu, ram))
    ports = sum(len(s.get("ports") or []) for _, s in servers)
    new_keys = await c.key_pairs(groups)
    sec_groups = [
        sg
        for g in groups
        for sg in g["manifest"].get("security_groups", [])
        if sg["name"] != "default"
    ]
    need: dict[tuple[str, str], int] = {
        ("compute", "instances"): len(servers),
        ("compute", "cores"): sum(v for _, v, _ in sizes),
        ("compute", "ram"): sum(r for _, _, r in sizes),
        ("volume", "volumes"): len(volumes),
        ("volume", "gigabytes"): sum(int(v.get("size_gb") or 0) for _, v in volumes),
        ("network", "port"): ports,
        ("compute", "key_pairs"): new_keys,
        ("compute", "server_groups"): sum(
            len(g["manifest"].get("server_groups", [])) for g in groups
        ),
        ("network", "security_group"): len(sec_groups),
        ("network", "security_group_rule"): sum(len(sg.get("rules", [])) for sg in sec_groups),
    }
    out.needs = {f"{svc}.{res}": n for (svc, res), n in need.items()}
    c.quotas(await cloud.quotas(), need)
    c.capacity(sizes, await cloud.capacity())
    return out


def resolved(params: Mapping[str, Any], kind: str, source: str | None) -> str | None:
    """What the run's plan check resolved ``source`` (a protected-site name or id) to here."""
    if not source:
        return None
    table: Mapping[str, str] = (params.get("resolved") or {}).get(kind) or {}
    return table.get(source)
