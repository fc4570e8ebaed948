"""Starting runs in every mode, cleaning up test runs, releasing quarantined sites.

======== =========================================================================
mode     what the run does (on the recovery site's controller)
======== =========================================================================
disaster the protected site is gone: an operator must declare it down by naming
         it; newest verified checkpoints → recovery (:mod:`.disaster`)
test     the protected site keeps running, untouched: the newest checkpoints are
         recovered onto isolated copies of the networks (:mod:`.isolation`);
         ``cleanup`` then deletes everything the run made (:mod:`.cleanup`)
planned  the protected site is up: its servers are stopped in quiesce order, a
         final checkpoint is taken, then recovered (:mod:`.planned`): no data lost
failback a planned run home of a workload this site lost and a peer recovered and
         reprotected (:mod:`.failback`); this site's stopped old copies give up
         their addresses first
======== =========================================================================

A disaster or planned run leaves the protected site quarantined
(:mod:`.quarantine`) until ``release``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from liferaft.clouds.port import Cloud
from liferaft.engine.states import WORKFLOW_TERMINAL, WorkflowState
from liferaft.errors import GiveUp, NeedsHuman, NotFound, RetryLater
from liferaft.protection.model import Conflict, Group, Invalid, Unknown
from liferaft.protection.service import ProtectionService
from liferaft.store import Store

from . import cleanup, failback, planned, quarantine
from .disaster import KIND as RECOVERY_KIND
from .plancheck import PlanRefused
from .service import RecoveryService

MODES = ("disaster", "test", "planned", "failback")
Submit = Callable[[str, dict[str, Any], str], Any]


def child_workflows(run: dict[str, Any]) -> list[str]:
    """The workflows a run's view follows after its own: the recovery of a planned run,
    the cleanup of a test run."""
    if run["mode"] in ("planned", "failback"):
        return [planned.recover_id(run["id"])]
    return []


class Modes:
    def __init__(self, recovery: RecoveryService, store: Store, clouds: dict[str, Cloud]) -> None:
        self.recovery = recovery
        self.store = store
        self.clouds = clouds
        self.catalog = recovery.catalog
        self.site = recovery.site

    def _check_site(self, datacenter: str) -> None:
        if datacenter == self.site:
            raise Invalid(
                f"this controller serves {self.site}: run the recovery of {datacenter} "
                f"on its recovery site's controller"
            )
        if datacenter not in self.recovery.peers:
            peers = ", ".join(self.recovery.peers) or "none"
            raise Unknown(f"{datacenter!r} is not a peer of {self.site} (peers: {peers})")

    async def start(
        self, datacenter: str, *, mode: str, declare_down: str | None, submit: Submit
    ) -> dict[str, Any]:
        if mode not in MODES:
            raise Invalid(f"mode {mode!r}: expected one of {', '.join(MODES)}")
        if mode == "disaster":
            return await self.recovery.start_disaster(
                datacenter, declare_down=declare_down, submit=submit
            )
        requested_at = self.recovery.clock.now()
        self._check_site(datacenter)
        if declare_down is not None:
            raise Invalid(
                f"--declare-down is for disaster mode; a {mode} run keeps {datacenter} up"
            )
        if mode in ("planned", "failback"):
            await self._reachable(datacenter, mode)
        found = await self.recovery.plan(datacenter)
        checked = await self.recovery.check(datacenter, found)  # every problem, before anything
        if not checked.ok:
            raise PlanRefused(checked)
        run_id = uuid.uuid4().hex
        params = {
            "run_id": run_id,
            "mode": mode,
            "protected_site": datacenter,
            "recovery_site": self.site,
            "declared_down": None,
            "requested_at": requested_at,
            "groups": found.groups,
            "refused": found.refused,
            "resolved": checked.resolved,
        }
        kind = RECOVERY_KIND if mode == "test" else planned.KIND
        submit(kind, params, run_id)
        return self.catalog.create_run(
            id=run_id,
            mode=mode,
            protected_site=datacenter,
            recovery_site=self.site,
            declared_down=None,
            requested_at=requested_at,
            workflow_id=run_id,
        )

    async def _reachable(self, datacenter: str, mode: str) -> None:
        cloud = self.clouds.get(datacenter)
        if cloud is None:
            raise GiveUp(f"no cloud configured for {datacenter}: a {mode} run stops its servers")
        try:
            await cloud.ping()
        except RetryLater as err:
            raise NeedsHuman(
                f"{datacenter} does not answer ({err}): a {mode} run needs it up to stop its "
                f"servers and take a final checkpoint; if it is lost, run --mode disaster"
            ) from None

    # -- test runs --------------------------------------------------------------------
    def cleanup(self, run_id: str, submit: Submit) -> dict[str, Any]:
        """Start (or find) the cleanup of a settled test run."""
        run = self.catalog.get_run(run_id)
        if run["mode"] != "test":
            raise Invalid(
                f"run {run_id} is a {run['mode']} run: only a test run's resources are cleaned up"
            )
        wf = self.store.get_workflow(run["workflow_id"])
        if wf.state not in WORKFLOW_TERMINAL and wf.state != WorkflowState.PAUSED:
            raise Conflict(f"test run {run_id} is still {wf.state}: clean up once it settled")
        wid = cleanup.workflow_id(run_id)
        submit(cleanup.KIND, {"run_id": run_id, "site": self.site}, wid)
        return self.cleanup_state(run_id) or {"workflow_id": wid, "state": "pending"}

    def cleanup_state(self, run_id: str) -> dict[str, Any] | None:
        wid = cleanup.workflow_id(run_id)
        try:
            wf = self.store.get_workflow(wid)
        except NotFound:
            return None
        steps = self.store.get_steps(wid)
        deleted = sum(len(s.result or []) for s in steps if s.state == "done")
        return {"workflow_id": wid, "state": wf.state, "error": wf.error, "deleted": deleted}

    # -- failback -----------------------------------------------------------------------
    def reprotect(self, run_id: str, protection: ProtectionService, submit: Submit) -> list[Group]:
        """Protect what run ``run_id`` recovered here, towards the site it came from."""
        return failback.reprotect(protection, self.store, self.catalog.get_run(run_id), submit)

    # -- quarantine -------------------------------------------------------------------
    def quarantined(self) -> dict[str, list[dict[str, Any]]]:
        return quarantine.quarantined(self.catalog.list_runs())

    def release(self, site: str, submit: Submit) -> dict[str, Any]:
        """Lift the quarantine of ``site`` (recorded as a ``release`` run)."""
        q = self.quarantined()
        if site not in q:
            known = ", ".join(sorted(q)) or "none"
            raise Conflict(f"{site} is not quarantined here (quarantined: {known})")
        run_id = uuid.uuid4().hex
        params = {
            "run_id": run_id,
            "site": site,
            "servers": quarantine.servers_of(self.store, q[site]),
        }
        submit(quarantine.RELEASE_KIND, params, run_id)
        return self.catalog.create_run(
            id=run_id,
            mode="release",
            protected_site=site,
            recovery_site=self.site,
            declared_down=None,
            requested_at=self.recovery.clock.now(),
            workflow_id=run_id,
        )
