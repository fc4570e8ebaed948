"""Benchmark the DR-Logic loop in the controller: what one pass costs with many groups.

A :class:`~liferaft.logic.loop.LogicLoop` on a SQLite catalog (the
controller's default store) with ``G`` protection groups of one volume, each
with ``K`` landed checkpoints, a manual clock advanced by ``drlogic_interval``
between passes, the ``static`` link monitor and no shaper. Checkpoints the
logic starts are "landed" between passes (marked captured and complete), so
every pass sees the same amount of history. No cloud is involved: what is
measured is the loop's own work -- the catalog queries that build the state,
the logic's ``decide`` and applying the decisions.

Reported per logic: wall time of a pass (median, p95, max) and of ``decide``
alone, passes, checkpoints started. ``--quick`` runs 50 groups;
``--json`` prints one JSON object; results are also written to
``bench/results/drloop.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import insert

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from liferaft import plugins  # noqa: E402
from liferaft.config.model import DrLogicSettings  # noqa: E402
from liferaft.engine.clock import ManualClock  # noqa: E402
from liferaft.links.static import NoShaper, StaticMonitor  # noqa: E402
from liferaft.logic.contract import Decisions, DRLogic, State  # noqa: E402
from liferaft.logic.loop import LogicLoop, make_logic  # noqa: E402
from liferaft.protection.catalog import Catalog  # noqa: E402
from liferaft.protection.checkpoint import ProtectionDeps  # noqa: E402
from liferaft.protection.model import Checkpoint, Member, Policy  # noqa: E402
from liferaft.protection.service import ProtectionService  # noqa: E402
from liferaft.store import Store, sqlite_url  # noqa: E402
from liferaft.store.db import make_engines  # noqa: E402
from liferaft.store.protection import CheckpointRow  # noqa: E402

T0 = 1_800_000_000.0


class Timed:
    """Wraps a logic and records how long each ``decide`` took (real seconds)."""

    def __init__(self, inner: DRLogic) -> None:
        self.inner = inner
        self.name = inner.name
        self.capabilities = inner.capabilities
        self.times: list[float] = []

    def decide(self, state: State) -> Decisions:
        t = time.perf_counter()
        try:
            return self.inner.decide(state)
        finally:
            self.times.append(time.perf_counter() - t)


def run(logic_name: str, groups: int, history: int, passes: int, tmp: Path) -> dict[str, Any]:
    clock = ManualClock(T0)
    store = Store(sqlite_url(tmp))
    catalog = Catalog(store)
    catalog.set_policy(Policy("p", 900, 900, 50, 1e9, consistency="crash-consistent"))
    deps = ProtectionDeps("east", {}, catalog, b"k" * 16, "c", None, clock)
    protection = ProtectionService(deps, store, recovery_site="west")
    settings = DrLogicSettings(logic_driver=logic_name)
    ids = []
    rows: list[dict[str, Any]] = []
    for i in range(groups):
        g = protection.create_group(f"g{i:04d}", policy="p")
        catalog.add_member(g, Member("east", "volume", f"v{i}", f"v{i}", ""), now=T0)
        ids.append(g.id)
        rows += [
            Checkpoint(
                id=f"c{i}-{k}", group_id=g.id, state="complete", requested_at=at,
                workflow_id=f"c{i}-{k}", chain_id=f"c{i}-0", captured_at=at + 5,
                completed_at=at + 60,
                volumes={f"v{i}": {"backup_id": "b", "object_count": 20 + (i * k) % 40}},
            ).to_dict()
            # one checkpoint every 10 min before T0, 20-60 objects each
            for k in range(history)
            for at in [T0 - (history - k) * 600.0 + (i % 60)]
        ]  # fmt: skip
    writer, _reader = make_engines(store.url)
    with writer.begin() as conn:  # one transaction: the catalog's one-row writes take minutes
        conn.execute(insert(CheckpointRow), rows)
    writer.dispose()
    logic = Timed(make_logic(logic_name, plugins.create))
    loop = LogicLoop(
        settings,
        protection=protection,
        monitor=StaticMonitor(settings),
        shaper=NoShaper(settings),
        logic=logic,
    )
    started: list[Checkpoint] = []
    wall: list[float] = []
    for _ in range(passes):
        t = time.perf_counter()
        started += (new := loop.step(lambda *_a: None))
        wall.append(time.perf_counter() - t)
        clock.advance(settings.drlogic_interval)
        for c in new:  # landed before the next pass
            catalog.update_checkpoint(
                c.id, state="complete", captured_at=c.requested_at + 5,
                completed_at=clock.now(), volumes={"v": {"backup_id": "b", "object_count": 30}},
            )  # fmt: skip
    catalog.close()
    store.close()
    ordered = sorted(wall)
    return {
        "groups": groups,
        "history_per_group": history,
        "passes": passes,
        "pass_s": {
            "median": statistics.median(wall),
            "p95": ordered[max(0, round(0.95 * len(ordered)) - 1)],
            "max": ordered[-1],
        },
        "decide_s": {"median": statistics.median(logic.times), "max": max(logic.times)},
        "checkpoints_started": len(started),
        "fell_back": loop.status()["fell_back"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="50 groups, 10 passes")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    ap.add_argument("--groups", type=int, default=200)
    ap.add_argument("--history", type=int, default=20)
    ap.add_argument("--passes", type=int, default=20)
    args = ap.parse_args()
    groups, passes = (50, 10) if args.quick else (args.groups, args.passes)
    out: dict[str, Any] = {"quick": args.quick, "logics": {}}
    for name in ("per-group-interval", "rpo-optimal"):
        with tempfile.TemporaryDirectory(prefix="drloop-") as tmp:
            out["logics"][name] = run(name, groups, args.history, passes, Path(tmp))
        if not args.json:
            r = out["logics"][name]
            print(
                f"{name:<20} {groups} groups x {args.history} checkpoints: pass median "
                f"{r['pass_s']['median'] * 1e3:.0f} ms, p95 {r['pass_s']['p95'] * 1e3:.0f} ms, "
                f"max {r['pass_s']['max'] * 1e3:.0f} ms; decide median "
                f"{r['decide_s']['median'] * 1e3:.1f} ms; {r['checkpoints_started']} started"
            )
    results = ROOT / "bench" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "drloop.json").write_text(json.dumps(out, indent=2) + "\n")
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
