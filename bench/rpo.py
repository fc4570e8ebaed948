"""Benchmark DR-Logics over a simulated day: RPO ÷ target, bytes, application loss, lower bound.

A deterministic discrete-event simulation on a virtual clock
(:mod:`liferaft.logic.replay`) drives the logic plugins directly, every
``drlogic_interval`` (30 s; 60 s with ``--quick``), over one day.

Cases: 200 protection groups

* ``synthetic``: steady, bursty, diurnal and heavy-overwrite traces
  (:func:`bench.rpo_traces.synthetic_groups`);
* ``real-vm``: the real VM write behaviour of
  ``../shared/data/vm-write-windows.csv`` (or ``--traces FILE``), one
  workload-day per group (:func:`bench.rpo_traces.csv_groups`);

each over links from generous to too small. A link's size is a multiple
``x`` of the groups' mean unique-write rate (the sum of the windows' unique
bytes over the day): the mean replication budget is ``x`` times that rate.

Dirty-data model (:mod:`liferaft.logic.dirty`): within a window unique
bytes accrue uniformly; across windows a fraction ``f`` of the pages is
rewritten, ``D(a, b) = (1 - f) S(a, b) + f M(a, b)`` -- subadditive, between
the largest window and the sum. ``f`` is 0.5 (0.9 for heavy-overwrite
groups); the real data does not say, so 0.5 is assumed for it.

Targets: RPO 15 min (a quarter of the groups), 1 h (half), 4 h (a quarter);
checkpoint overhead (quiesce + snapshot) 20-60 s per group, the same for
every logic. Application traffic: 15 % of capacity at 04:00 rising to 60 %
at 16:00 (±10 % noise per tick); replication may displace at most
``app_take_share`` = 25 % of it (the link budget is
``capacity - 0.75 x app``).

Per logic: p50/p99/max over groups of each group's worst RPO ÷ target,
the share of the day every group is within target, bytes sent, and the
application traffic's lost share. Per case: the lower bound on the worst
RPO ÷ target (:mod:`liferaft.logic.bound`), which no schedule -- even one
knowing the future -- can beat under the same model.

``--quick`` runs fewer links and a 60 s tick (under a minute); ``--jobs N``
spreads the cases' bounds and replays over N processes (one per core by
default; the results do not depend on it); ``--json``
prints one JSON object; results also go to ``bench/results/rpo.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.rpo_traces import (  # noqa: E402
    DAY_S,
    app_demand,
    app_fraction,
    app_profile,
    csv_groups,
    initial_history,
    synthetic_groups,
)

from liferaft.logic.bound import BoundGroup, lower_bound  # noqa: E402
from liferaft.logic.contract import DRLogic, budget  # noqa: E402
from liferaft.logic.fixed_interval import FixedInterval  # noqa: E402
from liferaft.logic.per_group_interval import PerGroupInterval, calibrate_period  # noqa: E402
from liferaft.logic.replay import SimGroup, SimLink, SimResult, percentile, replay  # noqa: E402
from liferaft.logic.rpo_optimal import RpoOptimal  # noqa: E402

DEFAULT_TRACES = ROOT.parent / "shared" / "data" / "vm-write-windows.csv"
TAKE_SHARE = 0.25
GROUPS = 200
SEED = 20240601
#: Shorter days whose bound is reported where the day's bound is above 1.
PREFIX_HOURS = (6.0, 12.0, 18.0)


def _mean_budget_fraction() -> float:
    n = 288
    return sum(1.0 - (1.0 - TAKE_SHARE) * app_fraction(k * DAY_S / n) for k in range(n)) / n


@dataclass(frozen=True)
class CaseSpec:
    """One case, as plain data: a worker process rebuilds its groups and link from it."""

    name: str
    kind: str  # "synthetic" or "real"
    factor: float
    tick_s: float
    seed: int
    traces: str
    refine_from: float
    refine_windows: int


@dataclass
class _Case:
    groups: list[SimGroup]
    workloads: int
    unique_rate: float
    link: SimLink
    tick_s: float

    def budget_at(self, t: float) -> float:
        app = self.link.app_bps
        return budget(
            self.link.capacity_bps, app[min(len(app) - 1, int(t // self.tick_s))], TAKE_SHARE
        )


_GROUPS: dict[tuple[str, str], tuple[list[SimGroup], int]] = {}
_CASES: dict[CaseSpec, _Case] = {}


def _groups(kind: str, traces: str) -> tuple[list[SimGroup], int]:
    key = (kind, traces if kind == "real" else "")
    if key not in _GROUPS:
        if kind == "synthetic":
            _GROUPS[key] = (synthetic_groups(GROUPS, SEED), 0)
        else:
            _GROUPS[key] = csv_groups(Path(traces), GROUPS, SEED)
    return _GROUPS[key]


def link_for(
    groups: list[SimGroup], factor: float, tick_s: float, seed: int
) -> tuple[float, SimLink]:
    """The groups' mean unique-write rate, and a link ``factor`` times it (of budget)."""
    unique_rate = sum(g.trace.summed(0.0, DAY_S) for g in groups) / DAY_S
    capacity = factor * unique_rate / _mean_budget_fraction()
    app = app_demand(capacity, DAY_S, tick_s, seed)
    return unique_rate, SimLink(
        capacity, app, TAKE_SHARE, app_profile(capacity, DAY_S, 900.0), 900.0
    )


def _case(spec: CaseSpec) -> _Case:
    """The case's groups, link and budget (built once per process)."""
    if spec not in _CASES:
        groups, workloads = _groups(spec.kind, spec.traces)
        unique_rate, link = link_for(groups, spec.factor, spec.tick_s, spec.seed)
        _CASES[spec] = _Case(groups, workloads, unique_rate, link, spec.tick_s)
    return _CASES[spec]


def bound_task(spec: CaseSpec, horizon_s: float) -> dict[str, Any]:
    """The lower bound of the case's first ``horizon_s`` seconds (the day, or a shorter day)."""
    c = _case(spec)
    t0 = time.process_time()
    bound = lower_bound(
        [BoundGroup(g.target_s, g.overhead_s, g.trace) for g in c.groups],
        c.budget_at,
        horizon_s,
        fine_s=spec.tick_s,
        window_step_s=900.0,
        budget_step_s=spec.tick_s,
        refine_from=spec.refine_from,
        # shorter days refine one window (they say how the deficit grows)
        refine_windows=spec.refine_windows if horizon_s >= DAY_S else 1,
    )
    return {
        "max_rpo_ratio": bound.max_rpo_ratio,
        "binding_window_s": list(bound.binding_window) if bound.binding_window else None,
        "pooled_max_rpo_ratio": bound.pooled_ratio,
        "seconds": round(time.process_time() - t0, 2),
    }


def logic_task(spec: CaseSpec, logic_name: str) -> dict[str, Any]:
    """Replay one logic over the case's day; its summary and worst ratio by each PREFIX_HOURS."""
    c = _case(spec)
    t0 = time.process_time()
    logic: DRLogic
    if logic_name == "fixed-interval":
        logic = FixedInterval(1800.0)
    elif logic_name == "per-group-interval":
        logic = PerGroupInterval(
            {
                g.group_id: calibrate_period(
                    g.trace,
                    g.target_s,
                    g.overhead_s,
                    c.budget_at,
                    DAY_S,
                    spec.tick_s,
                    (k * 0.618034) % 1.0,
                )
                for k, g in enumerate(c.groups)
            }
        )
    elif logic_name == "rpo-optimal":
        logic = RpoOptimal()
    else:
        raise ValueError(f"unknown logic {logic_name!r}")
    report = tuple(h * 3600.0 for h in PREFIX_HOURS)
    res = replay(logic, c.groups, c.link, DAY_S, spec.tick_s, initial_history(c.groups), report)
    out = _summary(res, time.process_time() - t0)
    out["max_rpo_ratio_by"] = {
        f"{h:g}h": v for h, v in zip(PREFIX_HOURS, res.worst_ratio_at, strict=True)
    }
    return out


LOGICS = ("fixed-interval", "per-group-interval", "rpo-optimal")


class _Inline:
    """A stand-in for a process pool that runs each task at once (``--jobs 1``, profiling)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        f: Future[Any] = Future()
        f.set_result(fn(*args))
        return f


def run_cases(
    specs: list[CaseSpec], jobs: int, on_done: Callable[[dict[str, Any]], None]
) -> list[dict[str, Any]]:
    """Every case's bound and logics, as independent tasks over ``jobs`` processes.

    The tasks are deterministic and share nothing, so the results do not
    depend on ``jobs``. Where the day's bound is above 1 the bounds of
    shorter days follow (``PREFIX_HOURS``).
    """
    pool: Any = ProcessPoolExecutor(jobs) if jobs > 1 else _Inline()
    try:
        # the costly tasks first: the bounds that refine, then rpo-optimal
        bounds = {s: pool.submit(bound_task, s, DAY_S) for s in specs}
        logics = {
            (s, name): pool.submit(logic_task, s, name) for name in reversed(LOGICS) for s in specs
        }
        prefixes: dict[tuple[CaseSpec, float], Future[Any]] = {}
        results: list[dict[str, Any]] = []
        for s in specs:
            day = bounds[s].result()
            if day["max_rpo_ratio"] > 1.0:
                for h in PREFIX_HOURS:
                    prefixes[(s, h)] = pool.submit(bound_task, s, h * 3600.0)
        for s in specs:
            day = bounds[s].result()
            by = {
                f"{h:g}h": prefixes[(s, h)].result()["max_rpo_ratio"]
                for h in PREFIX_HOURS
                if (s, h) in prefixes
            }
            out = {name: logics[(s, name)].result() for name in LOGICS}
            for r in out.values():
                if not by:
                    del r["max_rpo_ratio_by"]
            c = _case(s)
            case: dict[str, Any] = {
                "name": s.name,
                "groups": GROUPS,
                "link": {
                    "size_factor": s.factor,
                    "capacity_bps": c.link.capacity_bps,
                    "mean_unique_write_bps": c.unique_rate,
                    "app_take_share": TAKE_SHARE,
                    "tick_s": s.tick_s,
                },
                "lower_bound": {**day, "max_rpo_ratio_by": by or None},
                "logics": out,
            }
            if s.kind == "real":
                case["traces"] = {"file": s.traces, "workloads": c.workloads}
            results.append(case)
            on_done(case)
        return results
    finally:
        if isinstance(pool, ProcessPoolExecutor):
            pool.shutdown()


def _summary(res: SimResult, seconds: float) -> dict[str, Any]:
    ratios = res.ratios
    worst = max(res.groups, key=lambda g: g.ratio)
    return {
        "max_rpo_ratio": max(ratios),
        "p99_rpo_ratio": percentile(ratios, 0.99),
        "p50_rpo_ratio": percentile(ratios, 0.50),
        "within_target_share": res.within_target_share,
        "groups_missing_target": sum(1 for r in ratios if r > 1.0 + 1e-9),
        "worst_group": worst.group_id,
        "bytes_sent": res.bytes_sent,
        "checkpoints": sum(g.checkpoints for g in res.groups),
        "app_traffic_lost_share": res.app_traffic_lost_share,
        "app_traffic_lost_share_allowed": res.app_traffic_lost_share_allowed,
        "max_over_budget_bps": res.max_replication_over_budget_bps,
        "seconds": round(seconds, 2),
    }


def checks(case: dict[str, Any]) -> dict[str, Any]:
    """The issue's targets for one case: true, false, or None when not applicable."""
    lb = case["lower_bound"]["max_rpo_ratio"]
    opt = case["logics"]["rpo-optimal"]
    pgi = case["logics"]["per-group-interval"]
    out: dict[str, Any] = {
        "app_take_within_share": opt["app_traffic_lost_share"] <= TAKE_SHARE
        and opt["max_over_budget_bps"] <= 1e-6,
        "all_within_target_when_bound_le_1_over_1.2": None,
        "bytes_le_per_group_interval": None,
        "within_1.2x_bound_when_bound_gt_1": None,
        "at_most_half_per_group_interval_when_bound_gt_1": None,
    }
    if lb <= 1 / 1.2:
        out["all_within_target_when_bound_le_1_over_1.2"] = opt["max_rpo_ratio"] <= 1.0 + 1e-9
        if pgi["max_rpo_ratio"] <= 1.0 + 1e-9:
            out["bytes_le_per_group_interval"] = opt["bytes_sent"] <= pgi["bytes_sent"]
    if lb > 1:
        out["within_1.2x_bound_when_bound_gt_1"] = opt["max_rpo_ratio"] <= 1.2 * lb
        out["at_most_half_per_group_interval_when_bound_gt_1"] = (
            opt["max_rpo_ratio"] <= 0.5 * pgi["max_rpo_ratio"]
        )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--quick", action="store_true", help="fewer links, 60 s tick")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--traces", type=Path, default=DEFAULT_TRACES, help="vm-write-windows.csv")
    ap.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="processes for the cases' independent tasks (default: one per core)",
    )
    args = ap.parse_args(argv)
    tick = 60.0 if args.quick else 30.0
    # --quick refines the bound (group by group, the costly part) on one
    # window, and only where it can decide a target (not where the pooled
    # bound is tiny)
    refine_from = 0.3 if args.quick else 0.0
    refine_windows = 1 if args.quick else 2
    synth_factors = [3.0, 0.8, 0.3] if args.quick else [10.0, 3.0, 1.5, 0.8, 0.5, 0.3, 0.15]
    real_factors = [3.0, 0.3] if args.quick else [10.0, 3.0, 0.8, 0.3]
    started = time.perf_counter()
    cpu0 = time.process_time()
    specs = [
        CaseSpec(
            f"synthetic-x{f:g}", "synthetic", f, tick, SEED + 1, "", refine_from, refine_windows
        )
        for f in synth_factors
    ] + [
        CaseSpec(
            f"real-vm-x{f:g}",
            "real",
            f,
            tick,
            SEED + 2,
            str(args.traces),
            refine_from,
            refine_windows,
        )
        for f in real_factors
    ]
    if not args.traces.is_file():
        ap.error(f"--traces {args.traces}: no such file")
    cases = run_cases(specs, max(1, args.jobs), lambda c: _progress(c, args.json))
    for c in cases:
        c["checks"] = checks(c)
    result = {
        "benchmark": "rpo",
        "quick": args.quick,
        "horizon_s": DAY_S,
        "cases": cases,
        "seconds": round(time.perf_counter() - started, 1),
        # CPU of every process (children included), the load-independent cost
        "cpu_seconds": round(time.process_time() - cpu0 + _children_cpu(), 1),
        "jobs": max(1, args.jobs),
    }
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "rpo.json").write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result))
    else:
        print(f"done in {result['seconds']} s; results in bench/results/rpo.json")
    return 0


def _children_cpu() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def _progress(case: dict[str, Any], quiet: bool) -> None:
    if quiet:
        return
    lb = case["lower_bound"]["max_rpo_ratio"]
    pooled = case["lower_bound"]["pooled_max_rpo_ratio"]
    print(
        f"{case['name']}: lower bound {lb:.3f}"
        + (f" (pooled {pooled:.3f})" if pooled is not None else "")
        + f" ({case['lower_bound']['seconds']} s)"
    )
    by = case["lower_bound"]["max_rpo_ratio_by"]
    if by:
        opt = case["logics"]["rpo-optimal"]["max_rpo_ratio_by"]
        print(
            "  by hour (bound / rpo-optimal): "
            + ", ".join(f"{k} {v:.2f}/{opt[k]:.2f}" for k, v in by.items())
        )
    for name, r in case["logics"].items():
        print(
            f"  {name:20s} max {r['max_rpo_ratio']:7.3f} p99 {r['p99_rpo_ratio']:7.3f} "
            f"p50 {r['p50_rpo_ratio']:6.3f} within {r['within_target_share']:.3f} "
            f"miss {r['groups_missing_target']:3d} bytes {r['bytes_sent'] / 1e9:8.1f} GB "
            f"app-lost {r['app_traffic_lost_share']:.4f} ({r['seconds']} s)"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    raise SystemExit(main())
