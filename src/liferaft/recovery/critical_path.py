"""The critical-path bound of a recovery plan: an RTO that no schedule can beat on a given cloud.

``DESIGN.md`` defines it as the longest chain of steps the plan cannot
overlap and the total work divided by the allowed concurrency, whichever
is longer.  This module computes it from the plan (each server's tier, its
boot volume, its data volumes and its ports) and the target cloud's
latencies and limits (:class:`CloudLimits`).

**What every recovery must do, at the least.**  Before anything is made,
the capacity (quota, Placement) check: ``preflight_calls`` API calls.  A
volume is ready ``2·api + restore(v)`` after that at the earliest: its
backup record is imported (one call), then restored (one call; Cinder's
restore makes the volume itself), which takes
``restore_base + size ÷ restore_rate``.  A port takes ``api + port``.  A
server becomes ``ACTIVE`` ``api + boot`` after its create call, which needs
its ports and its boot volume ready, and -- the plan's priority tiers --
every server of the lower tiers *recovered* (``ACTIVE`` with its data
volumes attached, as the recovery workflow and the plan define a tier).
A server is recovered ``api + attach`` after the later of its ``ACTIVE``
and its data volume's restore, per data volume (attaches of one server
may overlap, so one ``api + attach`` counts).  Polling for status costs
nothing here: an ideal controller learns every change at once.

**The bound** ``T`` is the time the last tier is recovered, where tier
``t``'s recovery time ``T_t`` is the largest of three lower bounds, each
using the lower bound of ``T_{t-1}`` (a valid lower bound of when tier
``t`` may start):

1. *chain*: the earliest schedule with unlimited concurrency,
   ``max over servers s of tier t`` of
   ``max(ready(boot volume), ready(ports), T_{t-1}) + api + boot``,
   then ``+ api + attach`` after the later of that and its data volumes;
2. *builds*: a host builds at most ``max_builds`` servers at once, so
   ``hosts x max_builds`` build slots, each build taking ``boot``: the
   ``n_t`` servers of tier ``t`` are all built inside ``[T_{t-1}, T_t]``, so
   ``T_t ≥ T_{t-1} + api + ceil(n_t ÷ slots) x boot`` (+ ``api + attach`` when
   every server of the tier has a data volume, since the last build is
   followed by one);
3. *restores*: the site restores at most ``max_restores`` volumes at once;
   every volume of tiers ``≤ t`` is restored before ``T_t``, and the last
   one to finish is still followed by a boot or an attach, so
   ``T_t ≥ preflight + 2·api + makespan(restores) + min tail``, where
   ``makespan`` is the classic lower bound of list scheduling on ``m``
   identical machines: ``max(sum ÷ m, max over k of (k+1) x p_(k·m+1))``
   (jobs sorted longest first: among the ``k·m+1`` longest jobs one machine
   runs ``k+1``, each at least ``p_(k·m+1)``; for equal jobs this is
   ``ceil(n ÷ m) x p``, exact).

Each is a lower bound on ``T_t`` for *any* schedule, so their maximum is
one too, and so is ``T`` for the RTO (which also needs verification, taken
as free).  It ignores Neutron's and the API's own concurrency (unbounded),
the controller's CPU (the simulator's stepped clock does not charge it),
and which host the scheduler picks (a full host only lowers concurrency).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class CloudLimits:
    """The recovery site's latencies (seconds) and concurrency limits."""

    api: float = 0.05
    port: float = 0.5
    restore_base: float = 20.0
    restore_mb_s: float = 200.0  # 0 = instant transfer
    boot: float = 30.0
    attach: float = 3.0
    hosts: int = 1
    max_builds: int = 20
    max_restores: int = 50
    preflight_calls: int = 1

    def restore_s(self, size_gb: float) -> float:
        """One restore of a ``size_gb`` volume (the simulator's formula: GiB x 1024 ÷ MiB/s)."""
        return self.restore_base + self.size_s(size_gb)

    def size_s(self, size_gb: float) -> float:
        return size_gb * 1024 / self.restore_mb_s if self.restore_mb_s > 0 else 0.0


@dataclass(frozen=True)
class ServerNeed:
    """What one server of the plan needs before it is recovered."""

    tier: int = 0
    boot_volume_gb: float | None = None  # None: boots from an image
    data_volumes_gb: tuple[float, ...] = ()
    ports: int = 1


@dataclass
class Bound:
    """The bound and its parts (seconds from the moment the run is asked for)."""

    bound_s: float
    chain_s: float  # unlimited concurrency (the longest chain)
    builds_s: float  # the build slots' share (tier by tier)
    restores_s: float  # the restore slots' share
    tiers: list[dict[str, float]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "bound_s": round(self.bound_s, 3),
            "chain_s": round(self.chain_s, 3),
            "builds_s": round(self.builds_s, 3),
            "restores_s": round(self.restores_s, 3),
            "tiers": self.tiers,
        }


def makespan_lower_bound(jobs: Iterable[float], machines: int) -> float:
    """No schedule of ``jobs`` on ``machines`` identical machines finishes sooner."""
    if machines < 1:
        raise ValueError(f"machines must be >= 1, got {machines}")
    p = sorted((float(j) for j in jobs), reverse=True)
    if not p:
        return 0.0
    best = sum(p) / machines
    k = 0
    while k * machines < len(p):
        best = max(best, (k + 1) * p[k * machines])
        k += 1
    return best


def bound(servers: Sequence[ServerNeed], limits: CloudLimits) -> Bound:
    """The critical-path bound of recovering ``servers`` on a cloud with ``limits``."""
    a = limits.api
    pre = limits.preflight_calls * a
    slots = max(1, limits.hosts) * limits.max_builds
    attach = a + limits.attach

    def ready(size_gb: float) -> float:
        return pre + 2 * a + limits.restore_s(size_gb)

    tiers = sorted({s.tier for s in servers})
    prev = pre  # lower bound of when the lower tiers are recovered
    prev_chain = pre
    chain_last = builds_last = restores_last = pre
    seen_restores: list[float] = []
    seen_tails: list[float] = []
    parts: list[dict[str, float]] = []
    for t in tiers:
        mine = [s for s in servers if s.tier == t]

        # 1. chain (from the bound of the previous tier, and on its own for the report)
        def chain_from(start: float, mine: list[ServerNeed] = mine) -> float:
            worst = start
            for s in mine:
                go = start
                if s.boot_volume_gb is not None:
                    go = max(go, ready(s.boot_volume_gb))
                if s.ports:
                    go = max(go, pre + a + limits.port)
                active = go + a + limits.boot
                done = active
                if s.data_volumes_gb:
                    done = max(active, *(ready(g) for g in s.data_volumes_gb)) + attach
                worst = max(worst, done)
            return worst

        chain = chain_from(prev)
        prev_chain = chain_from(prev_chain)
        # 2. build slots
        every_has_data = all(s.data_volumes_gb for s in mine)
        builds = prev + a + math.ceil(len(mine) / slots) * limits.boot
        builds += attach if every_has_data else 0.0
        # 3. restore slots: every volume of the tiers so far
        for s in mine:
            if s.boot_volume_gb is not None:
                seen_restores.append(limits.restore_s(s.boot_volume_gb))
                seen_tails.append(a + limits.boot)
            for g in s.data_volumes_gb:
                seen_restores.append(limits.restore_s(g))
                seen_tails.append(attach)
        restores = (
            pre + 2 * a + makespan_lower_bound(seen_restores, limits.max_restores) + min(seen_tails)
            if seen_restores
            else pre
        )
        prev = max(chain, builds, restores)
        chain_last, builds_last, restores_last = prev_chain, builds, restores
        parts.append(
            {
                "tier": t,
                "servers": len(mine),
                "chain_s": round(chain, 3),
                "builds_s": round(builds, 3),
                "restores_s": round(restores, 3),
                "recovered_s": round(prev, 3),
            }
        )
    return Bound(
        bound_s=prev if servers else 0.0,
        chain_s=chain_last if servers else 0.0,
        builds_s=builds_last if servers else 0.0,
        restores_s=restores_last if servers else 0.0,
        tiers=parts,
    )


def needs_from_params(params: dict[str, Any]) -> list[ServerNeed]:
    """The servers of a recovery run's params (its groups' manifests), as :class:`ServerNeed`."""
    out: list[ServerNeed] = []
    for g in params["groups"]:
        m = g["manifest"]
        size = {v["id"]: float(v.get("size_gb") or 0) for v in m["volumes"]}
        for s in m["servers"]:
            boot = s.get("boot") or {}
            boot_vol = boot.get("volume_id") if boot.get("from") == "volume" else None
            data = tuple(
                size[v["volume_id"]]
                for v in s.get("volumes", [])
                if v.get("volume_id") in size and v.get("volume_id") != boot_vol
            )
            out.append(
                ServerNeed(
                    tier=int(s.get("tier", 0)),
                    boot_volume_gb=size.get(boot_vol) if boot_vol in size else None,
                    data_volumes_gb=data,
                    ports=len(s.get("ports", [])),
                )
            )
    return out
