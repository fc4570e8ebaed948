"""Try ``rpo-optimal`` variants on single cases of ``bench/rpo.py``, fast.

For iterating on the logic: runs only ``rpo-optimal`` (no bound, no
baselines) on the cases named, with keyword arguments for its constructor,
and prints per target class (15 min / 1 h / 4 h) the worst RPO ÷ target,
the checkpoints taken and the bytes sent -- where the bytes go and which
class binds. ``--trace`` also prints, every 30 simulated minutes, the
logic's ratio, the worst RPO ÷ target, the transfers in flight and the bytes
they still carry: whether an RPO is queueing or transfer (``--trace-every``
for another period).

Cases are ``KIND:FACTOR``, ``s`` (synthetic) or ``r`` (real-vm), e.g.
``s:0.3 r:0.8``; the link, traces, seeds and model are ``bench/rpo.py``'s, so
the figures match its ``rpo-optimal`` rows at the same tick.

    .venv/bin/python bench/rpo_variants.py s:0.3 r:0.3 --kw '{"min_spacing": 0.7}'
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.rpo import (  # noqa: E402
    DEFAULT_TRACES,
    GROUPS,
    SEED,
    link_for,
)
from bench.rpo_traces import (  # noqa: E402
    DAY_S,
    csv_groups,
    initial_history,
    synthetic_groups,
)

from liferaft.logic.contract import Decisions, State  # noqa: E402
from liferaft.logic.replay import SimGroup, percentile, replay  # noqa: E402
from liferaft.logic.rpo_optimal import RpoOptimal  # noqa: E402

TRACE_EVERY_S = 1800.0


class _Traced:
    """Wraps a logic and prints its state every ``TRACE_EVERY_S``."""

    def __init__(
        self, logic: RpoOptimal, emit: Callable[[str], None], every_s: float = TRACE_EVERY_S
    ) -> None:
        self.logic = logic
        self.every_s = every_s
        self.name = logic.name
        self.capabilities = logic.capabilities
        self.emit = emit

    def decide(self, state: State) -> Decisions:
        d = self.logic.decide(state)
        if state.now_s % self.every_s < state.tick_s / 2:
            queued = sum(t.bytes_remaining or 0 for t in state.transfers)
            worst = max((state.now_s - g.recovery_point_s) / g.target_s for g in state.groups)
            self.emit(
                f"  {state.now_s / 3600:5.1f} h ratio {d.ratio:6.2f} worst {worst:6.2f} "
                f"in flight {len(state.transfers):3d} ({queued / 1e9:6.1f} GB) "
                f"orders {len(d.checkpoints):3d} budget {state.link.budget_bps / 1e6:6.1f} MB/s"
            )
        return d


def run(
    name: str,
    groups: list[SimGroup],
    factor: float,
    tick_s: float,
    seed: int,
    kw: dict[str, Any],
    trace: bool,
    trace_every_s: float = TRACE_EVERY_S,
) -> dict[str, Any]:
    _, link = link_for(groups, factor, tick_s, seed)
    logic: Any = RpoOptimal(**kw)
    if trace:
        print(f"{name}:")
        logic = _Traced(logic, print, trace_every_s)
    t0 = time.perf_counter()
    res = replay(logic, groups, link, DAY_S, tick_s, initial_history(groups), ())
    target = {g.group_id: g.target_s for g in groups}
    classes: dict[str, dict[str, float]] = {}
    for o in res.groups:
        c = classes.setdefault(
            f"{target[o.group_id] / 60:g}min", {"max_rpo_ratio": 0.0, "checkpoints": 0, "bytes": 0}
        )
        c["max_rpo_ratio"] = max(c["max_rpo_ratio"], o.ratio)
        c["checkpoints"] += o.checkpoints
        c["bytes"] += o.bytes_sent
    return {
        "name": name,
        "kw": kw,
        "max_rpo_ratio": max(res.ratios),
        "p99_rpo_ratio": percentile(res.ratios, 0.99),
        "bytes_sent": res.bytes_sent,
        "app_traffic_lost_share": res.app_traffic_lost_share,
        "by_target": classes,
        "seconds": round(time.perf_counter() - t0, 1),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("cases", nargs="+", help="KIND:FACTOR, e.g. s:0.3 r:0.8")
    ap.add_argument("--kw", default="{}", help="RpoOptimal keyword arguments (JSON)")
    ap.add_argument("--tick", type=float, default=60.0, help="decision interval (s)")
    ap.add_argument("--trace", action="store_true", help="print the state every 30 min")
    ap.add_argument("--trace-every", type=float, default=TRACE_EVERY_S, help="--trace's period (s)")
    ap.add_argument("--traces", type=Path, default=DEFAULT_TRACES, help="vm-write-windows.csv")
    args = ap.parse_args(argv)
    kw = json.loads(args.kw)
    if not isinstance(kw, dict):
        ap.error("--kw: a JSON object of RpoOptimal keyword arguments")
    synth: list[SimGroup] | None = None
    real: list[SimGroup] | None = None
    for case in args.cases:
        kind, _, factor_s = case.partition(":")
        try:
            factor = float(factor_s)
        except ValueError:
            ap.error(f"case {case!r}: KIND:FACTOR with a number after the colon")
        if kind == "s":
            synth = synth or synthetic_groups(GROUPS, SEED)
            out = run(
                f"synthetic-x{factor:g}",
                synth,
                factor,
                args.tick,
                SEED + 1,
                kw,
                args.trace,
                args.trace_every,
            )
        elif kind == "r":
            real = real or csv_groups(args.traces, GROUPS, SEED)[0]
            out = run(
                f"real-vm-x{factor:g}",
                real,
                factor,
                args.tick,
                SEED + 2,
                kw,
                args.trace,
                args.trace_every,
            )
        else:
            ap.error(f"case {case!r}: KIND is s (synthetic) or r (real-vm)")
        per = " ".join(
            f"{k}: max {v['max_rpo_ratio']:.2f}, {v['checkpoints']:.0f} ckpts, "
            f"{v['bytes'] / 1e9:.0f} GB;"
            for k, v in out["by_target"].items()
        )
        print(
            f"{out['name']}: max {out['max_rpo_ratio']:.3f} p99 {out['p99_rpo_ratio']:.3f} "
            f"bytes {out['bytes_sent'] / 1e9:.1f} GB app-lost "
            f"{out['app_traffic_lost_share']:.3f} ({out['seconds']} s) | {per}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
