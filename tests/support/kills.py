"""Drive a recovery run through a controller killed at an engine hook, again and again.

The crash tests of recovery (and of its modes, image copy, storage
replication, rebuilt access) all do the same: stop the recovery site's
controller, start it armed at a kill hook (``LIFERAFT_KILL_AT``, e.g.
``after_cloud_call``: dies right after the cloud accepted a create), start the
run, then each time it dies start it again armed again, until the run
settles.  :func:`recover_through_kills` is that loop; the test then asserts
on the kills, the run and the resources left in the cloud (no duplicate, no
lost step).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any, Generic, TypeVar

from tests.support.drcontroller import SETTLED, DrWorld, Serve, until

T = TypeVar("T")


@dataclass(frozen=True)
class Survived(Generic[T]):
    """How a run got through its kills."""

    #: Times the controller died at the hook (SIGKILL by the hook itself).
    kills: int
    #: What the workflow starter returned (``post_once``: the run, or None if it was not seen).
    started: Any
    #: The one run's id.
    run_id: str
    #: Whether the controller that saw the run settle was still alive just after.
    alive_at_settle: bool
    #: The run as it ended (``GET /v1/recovery/runs/{id}``).
    run: dict[str, Any]
    #: What the resource counter found once the run had ended.
    resources: T


def recover_through_kills(
    w: DrWorld,
    start: Callable[[], Any],
    kill_at: str,
    count: Callable[[dict[str, Any]], T],
    *,
    max_kills: int,
    site: str = "west",
) -> Survived[T]:
    """Start ``site``'s controller armed at ``kill_at``, call ``start``, restart until settled.

    ``start`` starts the workflow (it runs once, on the first armed
    controller); every restart is armed again.  Exactly one run must exist
    and end ``done``; ``count`` is then given that run and counts what the
    test wants counted.  More than ``max_kills`` deaths fail the test (more
    kills than cloud creates means a replay made something again).
    """
    w.ctls[site].stop()
    w.start(site, kill_at=kill_at)
    started = start()
    kills = 0
    while True:
        ctl = w.ctls[site]
        got = until(f"{site} to die or settle the run", partial(_settled_or_dead, w, site, ctl))
        if got == "settled":
            alive = ctl.alive()
            break
        assert ctl.wait_dead() == -9
        kills += 1
        assert kills <= max_kills, f"more kills than cloud creates at {kill_at}: {kills}"
        # Not waited on to lead: it may resume the run and die before it is seen leading.
        w.start(site, kill_at=kill_at, wait_lead=False)
    runs = w.api(site, "GET", "/v1/recovery/runs")["runs"]
    assert len(runs) == 1, runs  # the restarts resumed the run, none started another
    final = w.wait_run(runs[0]["id"])
    assert final["state"] == "done", (final["failed_steps"], final["error"])
    return Survived(kills, started, runs[0]["id"], alive, final, count(final))


def _settled_or_dead(w: DrWorld, site: str, ctl: Serve) -> str | None:
    """``"dead"`` once ``ctl`` died, ``"settled"`` once the newest run settled, else None."""
    if not ctl.alive():
        return "dead"
    try:
        runs = w.call(site, "GET", "/v1/recovery/runs").json()["runs"]
        if not runs:
            return None
        state = w.call(site, "GET", f"/v1/recovery/runs/{runs[0]['id']}").json()["state"]
    except Exception:  # the controller dying mid-request: connection errors, cut answers
        return "dead" if not ctl.alive() else None
    return "settled" if state in SETTLED else None


@dataclass(frozen=True)
class Recovered:
    """What a site holds of one recovered server with one data volume."""

    #: Every server at the site, by name.
    servers: Counter[str]
    #: The volumes restored (or managed) from the source volume (``liferaft_source``).
    volumes: list[Any]
    #: The ports whose name starts with the server's name and a dash, by name.
    ports: Counter[str]
    #: The names of the images Liferaft made (``lr-``) still there.
    images: list[str]


def count_recovered(w: DrWorld, name: str, source_volume: str, site: str = "west") -> Recovered:
    """Count, through openstacksdk, what ``site`` holds of server ``name`` and its volume."""
    c = w.sim.connect(site)
    try:
        return Recovered(
            servers=Counter(s.name for s in c.compute.servers()),
            volumes=[
                v
                for v in c.block_storage.volumes(details=True, all_projects=True)
                if v.metadata.get("liferaft_source") == source_volume
            ],
            ports=Counter(
                p.name for p in c.network.ports() if (p.name or "").startswith(f"{name}-")
            ),
            images=[i.name for i in c.image.images() if (i.name or "").startswith("lr-")],
        )
    finally:
        c.close()
