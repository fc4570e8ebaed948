"""Starting a recovery run: disaster mode (ORBIT's ``recovery DATACENTER``).

Runs on the recovery site's controller.  Needs nothing from the protected
site: the checkpoints are found in this site's own object store, each
group's newest manifest whose signature verifies is used (a tampered or
truncated one is skipped, and the next older one is tried).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from liferaft.clouds.port import Cloud
from liferaft.engine.clock import Clock
from liferaft.errors import NeedsHuman
from liferaft.protection import manifest as mf
from liferaft.protection.catalog import Catalog
from liferaft.protection.model import Invalid, Unknown

from .disaster import KIND
from .plancheck import PlanCheck, PlanRefused, check_plan

log = logging.getLogger(__name__)


@dataclass
class Found:
    """What the recovery site's object store holds for one protected site."""

    groups: list[dict[str, Any]] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    #: The refusals by group id (the plan check tells a group with none that verifies).
    unverified: dict[str, list[str]] = field(default_factory=dict)


async def newest_verified(cloud: Cloud, container: str, key: bytes, protected_site: str) -> Found:
    """Each group's newest manifest of ``protected_site`` that verifies, from ``cloud``'s object store."""
    names = await cloud.list_objects(container, prefix=mf.group_prefix())
    by_group: dict[str, list[str]] = {}
    for n in names:
        g = mf.group_of(n)
        if g is not None:
            by_group.setdefault(g, []).append(n)
    found = Found()
    for gid in sorted(by_group):
        for name in sorted(by_group[gid], reverse=True):
            data = await cloud.get_object(container, name)
            try:
                doc = mf.verify(data, key, where=f"{container}/{name}")
            except mf.ManifestRefused as err:
                log.warning("%s", err)
                found.refused.append(str(err))
                found.unverified.setdefault(gid, []).append(str(err))
                continue
            if doc["group"]["site"] == protected_site:
                found.groups.append({"object": name, "manifest": doc})
            break
    return found


class RecoveryService:
    def __init__(
        self,
        *,
        site: str,
        cloud: Cloud,
        catalog: Catalog,
        clock: Clock,
        key: bytes,
        container: str,
        peers: list[str],
        mappings: Mapping[str, Mapping[str, Mapping[str, str]]] | None = None,
    ) -> None:
        self.site = site
        #: Per protected site: kind -> name there -> name here (``protection.mappings``).
        self.mappings = mappings or {}
        self.cloud = cloud
        self.catalog = catalog
        self.clock = clock
        self.key = key
        self.container = container
        self.peers = peers

    async def plan(self, datacenter: str) -> Found:
        return await newest_verified(self.cloud, self.container, self.key, datacenter)

    def _peer(self, datacenter: str) -> None:
        if datacenter == self.site:
            raise Invalid(
                f"this controller serves {self.site}: run the recovery of {datacenter} "
                f"on its recovery site's controller"
            )
        if datacenter not in self.peers:
            raise Unknown(
                f"{datacenter!r} is not a peer of {self.site} (peers: {', '.join(self.peers) or 'none'})"
            )

    async def check(self, datacenter: str, found: Found | None = None) -> PlanCheck:
        """The plan check of a recovery of ``datacenter`` here (:mod:`.plancheck`)."""
        self._peer(datacenter)
        found = found or await self.plan(datacenter)
        return await check_plan(
            self.cloud,
            protected_site=datacenter,
            groups=found.groups,
            unverified=found.unverified,
            mappings=self.mappings.get(datacenter, {}),
            container=self.container,
        )

    async def start_disaster(
        self, datacenter: str, *, declare_down: str | None, submit: Any
    ) -> dict[str, Any]:
        """Check the operator's declaration, pick the checkpoints, submit the run."""
        requested_at = self.clock.now()
        self._peer(datacenter)
        if declare_down != datacenter:
            raise NeedsHuman(
                f"disaster recovery of {datacenter} needs an operator to declare it down: "
                f"confirm that {datacenter} can no longer run or write anything, then pass "
                f"--declare-down {datacenter}"
            )
        found = await self.plan(datacenter)
        checked = await self.check(datacenter, found)
        if not checked.ok:
            raise PlanRefused(checked)
        run_id = uuid.uuid4().hex
        params = {
            "run_id": run_id,
            "mode": "disaster",
            "protected_site": datacenter,
            "recovery_site": self.site,
            "declared_down": declare_down,
            "requested_at": requested_at,
            "groups": found.groups,
            "refused": found.refused,
            "resolved": checked.resolved,
        }
        submit(KIND, params, run_id)
        return self.catalog.create_run(
            id=run_id,
            mode="disaster",
            protected_site=datacenter,
            recovery_site=self.site,
            declared_down=declare_down,
            requested_at=requested_at,
            workflow_id=run_id,
        )
