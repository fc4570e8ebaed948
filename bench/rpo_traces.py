"""Write traces and links for ``bench/rpo.py``: synthetic groups and the real VM windows.

Every trace starts one hour before the simulated day (``PREROLL_S``): the
checkpoint taken over that hour is the group's history when the day
starts, so no logic starts blind and none sees the future.
"""

from __future__ import annotations

import csv
import math
import random
from pathlib import Path

from liferaft.logic.contract import CheckpointRecord
from liferaft.logic.dirty import WindowTrace
from liferaft.logic.replay import SimGroup

DAY_S = 86400.0
PREROLL_S = 3600.0
SYNTH_WINDOW_S = 300.0
#: RPO targets by tier (seconds) and the share of groups in each.
TIERS: tuple[tuple[float, float], ...] = ((900.0, 0.25), (3600.0, 0.5), (14400.0, 0.25))
#: Overwrite fraction across windows assumed for the real traces (not in the data).
CSV_OVERWRITE = 0.5


def _tier(k: int, n: int) -> float:
    x = (k + 0.5) / n
    acc = 0.0
    for target, share in TIERS:
        acc += share
        if x <= acc:
            return target
    return TIERS[-1][0]


def _group(k: int, n: int, rng: random.Random, trace: WindowTrace, prefix: str) -> SimGroup:
    return SimGroup(
        group_id=f"{prefix}{k:03d}",
        target_s=_tier(k, n),
        weight=float(rng.choice((1, 1, 2, 3))),
        overhead_s=float(rng.randrange(20, 61, 5)),
        carrier="image-copy" if k % 3 == 0 else "volume-backup",
        trace=trace,
    )


def synthetic_groups(n: int, seed: int, horizon_s: float = DAY_S) -> list[SimGroup]:
    """``n`` groups cycling through steady, bursty, diurnal and heavy-overwrite traces.

    Windows are 5 minutes long; per-group base dirty rates are log-uniform
    between 20 kB/s and 2 MB/s. Bytes written (what disk counters show) are
    the unique bytes times a per-group amplification, log-uniform in
    2-50x, ±30 % per window.

    * steady: the base rate, ±20 % noise per window, overwrite 0.5;
    * bursty: 0.3x base, bursts (2 % of windows start one) of 1-6 windows
      at 10-30x base, overwrite 0.5;
    * diurnal: base x (0.2 + 1.6 x a daily half-sine peaking in the
      afternoon, shifted up to ±2 h per group), overwrite 0.5;
    * heavy overwrite: 3x base, overwrite 0.9 (a hot set rewritten over and over).
    """
    rng = random.Random(seed)
    groups = []
    n_win = math.ceil((horizon_s + PREROLL_S) / SYNTH_WINDOW_S)
    for k in range(n):
        kind = k % 4
        base = math.exp(rng.uniform(math.log(2e4), math.log(2e6)))
        unique: list[float] = []
        f = 0.5
        if kind == 0:
            unique = [base * SYNTH_WINDOW_S * rng.uniform(0.8, 1.2) for _ in range(n_win)]
        elif kind == 1:
            burst_left = 0
            burst_level = 0.0
            for _ in range(n_win):
                if burst_left == 0 and rng.random() < 0.02:
                    burst_left = rng.randint(1, 6)
                    burst_level = rng.uniform(10, 30)
                level = burst_level if burst_left > 0 else 0.3
                burst_left = max(0, burst_left - 1)
                unique.append(base * level * SYNTH_WINDOW_S * rng.uniform(0.8, 1.2))
        elif kind == 2:
            shift = rng.uniform(-7200, 7200)
            for w in range(n_win):
                t = -PREROLL_S + (w + 0.5) * SYNTH_WINDOW_S
                phase = 2 * math.pi * ((t - shift) / DAY_S - 0.375)
                level = 0.2 + 1.6 * max(0.0, math.sin(phase))
                unique.append(base * level * SYNTH_WINDOW_S * rng.uniform(0.9, 1.1))
        else:
            unique = [3 * base * SYNTH_WINDOW_S * rng.uniform(0.8, 1.2) for _ in range(n_win)]
            f = 0.9
        amp = math.exp(rng.uniform(math.log(2.0), math.log(50.0)))
        written = [u * amp * rng.uniform(0.7, 1.3) for u in unique]
        trace = WindowTrace.regular(-PREROLL_S, SYNTH_WINDOW_S, unique, f, written)
        groups.append(_group(k, n, rng, trace, "g"))
    return groups


def csv_groups(
    path: Path, n: int, seed: int, horizon_s: float = DAY_S
) -> tuple[list[SimGroup], int]:
    """``n`` groups from a ``vm-write-windows.csv``-format file; returns (groups, workloads).

    Each group is one workload on one of its days (workloads are taken
    round-robin, their days in order, until ``n``). Window ``k`` runs from
    its start to the next window's start, or 1,800 s when the next start
    is more than 2,700 s away (a gap in the trace: no writes assumed);
    windows with equal starts are merged by summing their unique bytes
    (the union is at most the sum: the conservative choice). Overwrite
    across windows: ``CSV_OVERWRITE``.
    """
    rows: dict[str, list[tuple[float, float, float]]] = {}
    with path.open(newline="") as fh:
        for rec in csv.DictReader(fh):
            rows.setdefault(rec["workload"], []).append(
                (
                    float(rec["window_start_s"]),
                    float(rec["unique_write_bytes"]),
                    float(rec["write_bytes"]),
                )
            )
    per_workload: dict[str, list[tuple[float, float, float, float]]] = {}
    for name, items in rows.items():
        items.sort()
        merged: list[list[float]] = []
        for start, uniq, wrote in items:
            if merged and start == merged[-1][0]:
                merged[-1][1] += uniq
                merged[-1][2] += wrote
            else:
                merged.append([start, uniq, wrote])
        wins = []
        for j, (start, uniq, wrote) in enumerate(merged):
            nxt = merged[j + 1][0] if j + 1 < len(merged) else start + 1800.0
            end = nxt if nxt - start <= 2700.0 else start + 1800.0
            wins.append((start, end, uniq, max(wrote, uniq)))
        per_workload[name] = wins
    names = sorted(per_workload)
    rng = random.Random(seed)
    days: dict[str, int] = {}
    groups: list[SimGroup] = []
    used: set[str] = set()
    while len(groups) < n:
        progressed = False
        for name in names:
            if len(groups) >= n:
                break
            wins = per_workload[name]
            last_end = wins[-1][1]
            d = days.get(name, 0)
            origin = d * DAY_S + (PREROLL_S if d == 0 else 0.0)
            if origin + horizon_s > last_end + 1800.0:
                continue
            days[name] = d + 1
            sel = [
                (s - origin, e - origin, u, w)
                for s, e, u, w in wins
                if e > origin - PREROLL_S and s < origin + horizon_s
            ]
            # clip the first window to the pre-roll start, pro-rating its bytes
            s0, e0, u0, w0 = sel[0]
            if s0 < -PREROLL_S:
                keep = (e0 + PREROLL_S) / (e0 - s0)
                sel[0] = (-PREROLL_S, e0, u0 * keep, w0 * keep)
            trace = WindowTrace(
                tuple(x[0] for x in sel),
                tuple(x[1] for x in sel),
                tuple(x[2] for x in sel),
                CSV_OVERWRITE,
                tuple(x[3] for x in sel),
            )
            groups.append(_group(len(groups), n, rng, trace, f"{name}d{d}-"))
            used.add(name)
            progressed = True
        if not progressed:
            break
    if len(groups) < n:
        raise ValueError(f"{path}: only {len(groups)} workload-days of {horizon_s:g} s, need {n}")
    return groups, len(used)


def initial_history(groups: list[SimGroup]) -> dict[str, tuple[CheckpointRecord, ...]]:
    """The checkpoint over the pre-roll hour, landed at time 0, for every group."""
    out: dict[str, tuple[CheckpointRecord, ...]] = {}
    for g in groups:
        size = g.trace.dirty(-PREROLL_S, 0.0)
        wrote = g.trace.written_between(-PREROLL_S, 0.0)
        out[g.group_id] = (CheckpointRecord(-PREROLL_S, PREROLL_S, round(size), 0.0, round(wrote)),)
    return out


def app_fraction(t: float) -> float:
    """Application demand as a share of capacity: 0.15 at 04:00 up to 0.60 at 16:00."""
    return 0.15 + 0.45 * (0.5 - 0.5 * math.cos(2 * math.pi * (t - 4 * 3600.0) / DAY_S))


def app_demand(capacity: float, horizon_s: float, tick_s: float, seed: int) -> tuple[float, ...]:
    """Per-tick application demand: the daily profile with ±10 % noise."""
    rng = random.Random(seed)
    n = round(horizon_s / tick_s)
    return tuple(capacity * app_fraction(i * tick_s) * rng.uniform(0.9, 1.1) for i in range(n))


def app_profile(capacity: float, horizon_s: float, step_s: float) -> tuple[float, ...]:
    """The forecast a LinkMonitor would hold: the noiseless profile, two days long."""
    n = math.ceil((horizon_s + DAY_S) / step_s) + 1
    return tuple(capacity * app_fraction((k + 0.5) * step_s) for k in range(n))
