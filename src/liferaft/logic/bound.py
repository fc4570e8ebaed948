r"""A lower bound on the worst RPO ÷ target that no schedule can beat.

Setting (the model of :mod:`liferaft.logic.replay`): groups ``g`` with
target ``T_g``, checkpoint overhead ``o_g`` and dirty data ``D_g``
(:mod:`liferaft.logic.dirty`); a baseline landed at time 0; the day
``[0, H]``; replication flows together within the link budget ``B(t)``.
A schedule -- any capture times, any rates, knowing the whole future --
achieves ratio ``r`` when every group's RPO stays ``<= r * T_g`` on
``[0, H]``.

**Relaxation.** Fix ``r`` and a window ``[a, b]`` of ``[0, H]`` with
``b - r T_g >= a``. Take a schedule achieving ``r``.

1. At ``b`` the RPO is ``<= r T_g``, so some checkpoint captured at
   ``c* >= b - r T_g >= a`` has landed by ``b``. Checkpoints land in
   capture order, so every checkpoint captured in ``[a, c*]`` has landed
   by ``b``; all of them were captured at or after ``a``, so all their
   bytes crossed the link inside ``[a, b]``.
2. Those checkpoints ``c_1 < ... < c_m = c*`` ship
   ``D(c_0, c_1) + sum_i D(c_{i-1}, c_i)`` with ``c_0 < a`` the capture
   before ``c_1``. ``D`` grows with the interval, so this is at least the
   sum of ``D`` over the pieces ``(a, c_1], (c_1, c_2], ... (c_{m-1}, c*]``,
   a partition of ``(a, c*]``.
3. Each piece is at most ``L_g = r T_g - o_g`` long: just before
   checkpoint ``c_i`` lands (no earlier than ``c_i + o_g``) the recovery
   point is at most ``c_{i-1}``, so ``c_i + o_g - c_{i-1} <= r T_g``.
4. A piece of length ``<= L_g`` overlaps at most
   ``K_g = ceil(L_g / w_g) + 1`` windows (``w_g`` the shortest window),
   and ``M`` (the largest window's contribution) is at least the mean of
   the overlapped windows' contributions, so
   ``D(piece) >= kappa_g * S(piece)`` with
   ``kappa_g = (1 - f_g) + f_g / K_g``. ``S`` is additive, hence group
   ``g`` ships inside ``[a, b]`` at least
   ``kappa_g * S_g(a, b - r T_g)``.
   When ``L_g`` is at most the shortest window, a piece holds at most one
   window boundary, and ``S - M`` of a piece straddling boundary ``j``
   between windows of rates ``rho_l``, ``rho_r`` (bytes per second) is
   ``min(rho_l x, rho_r y) <= L_g h_j`` with ``x + y <= L_g`` and
   ``h_j = rho_l rho_r / (rho_l + rho_r)``; pieces inside one window have
   ``D = S``. Every boundary lies inside one piece at most, so
   ``sum D >= S - f_g L_g sum_j h_j`` over the boundaries in the span:
   a much tighter figure when pieces are short, as the ``kappa`` one
   credits half the overwrite to every piece.
   **Separated heavy windows.** ``kappa`` credits every piece with the
   mean of the windows it overlaps; where window sizes are skewed (real
   traces: one busy half-hour among quiet ones) a piece's ``M`` is far
   above that mean. For any weights ``alpha_k >= 0`` such that the windows
   one piece can overlap have ``sum alpha_k <= 1``, ``M(P) >= sum_k
   alpha_k c_k(P)`` (``c_k(P)`` window ``k``'s contribution to ``P``: a
   sub-convex combination is at most the largest term), so summing over
   the pieces ``sum M >= sum_k alpha_k u_k`` over the windows lying wholly
   inside the span. A piece of length ``<= L_g`` overlaps windows ``i``
   and ``j > i`` only if ``start_j - end_i < L_g``; so 0/1 weights on
   windows pairwise at least ``L_g`` apart qualify, and the group ships at
   least ``(1 - f_g) S_g + f_g W_g`` with ``W_g`` the summed unique bytes
   of such a set inside ``(a, b - r T_g]``. The set is chosen once per
   ``L_g`` for the whole day (the heaviest, by a weighted-interval DP);
   restricted to a span it stays valid. The three figures are each a
   lower bound on what the group ships; the largest is used.
5. Summing over groups, ``need(a, b) = sum_g need_g(a, b - r T_g)``
   must fit ``int_a^b B(t) dt``.

Every window gives a necessary condition, so checking any set of windows
is valid. ``need`` shrinks as ``r`` grows (``b - r T_g`` moves left,
``K_g`` grows, the separated windows thin out), so the smallest ``r`` passing every checked window --
found by bisection -- is a lower bound; so is ``max_g o_g / T_g`` (a
checkpoint cannot land sooner than its overhead). The bound ignores that
pieces are separated by transfers, that one transfer cannot use the whole
budget at once, and that the future is unknown: a real schedule's worst
ratio can be above it; never below.

**Refinement, group by group.** The figures above credit every piece
with a generic share of the overwrite (``kappa``) or with one heavy window
per ``L``; the least a group really ships over ``(a, x]`` is
``(1 - f_g) S_g(a, x) + f_g min sum M(piece)`` over partitions into pieces
``<= L_g`` (``S`` is additive, so only the ``M`` part depends on the cuts).
:func:`cover_cost` bounds that minimum from below: a shortest path over
cut points on a grid finer than ``L_g`` plus the window boundaries, less
what snapping a cut to the grid can save (argued in its docstring). Per
group the largest of all figures counts (a sum of per-group maxima is at
least the maximum of summed figures, so this never lowers a window's need).
It is costlier, so after the bisection above it is applied to the
``refine_windows`` windows nearest to failing: for each, the largest ratio
``r`` it is *shown* to fail at (regula falsi between a failing and a
passing ratio) raises the bound. Only ratios that were checked and failed
count, so this stays valid even where the computed need is not monotone in
``r`` (a schedule achieving ``r`` achieves every larger ratio).

For speed, groups are pooled in classes of equal ``(T_g, f_g)`` and
shortest-window bucket: a class uses the smallest ``o_g`` and ``w_g`` of
its members (smaller ``kappa``, longer ``L``: sparser separated windows,
still valid) and the sum of their ``S_g``, boundary terms and separated
windows sampled on a fine grid; ends of spans are rounded so that ``S``
and ``W`` are never overstated and the boundary terms never understated,
so every rounding keeps the bound valid. Summing each figure over a class
and then taking the largest is below the sum of the per-group largest:
still valid.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from liferaft.logic.dirty import WindowTrace


@dataclass(frozen=True)
class BoundGroup:
    """What the bound needs of a group (units: seconds)."""

    target_s: float
    overhead_s: float
    trace: WindowTrace


@dataclass(frozen=True)
class BoundResult:
    max_rpo_ratio: float
    binding_window: tuple[float, float] | None
    need_bytes: float
    budget_bytes: float
    #: The bound before the group-by-group refinement (pooled classes only).
    pooled_ratio: float | None = None


@dataclass
class _Class:
    target: float
    overwrite: float
    overhead: float
    window: float
    cum: list[float]  # summed S of the members at fine grid nodes
    hle: list[float]  # summed boundary terms of the members at positions <= node
    hlt: list[float]  # ... at positions < node
    traces: list[WindowTrace]


def separated_windows(trace: WindowTrace, gap_s: float) -> list[int]:
    """The heaviest set of windows pairwise at least ``gap_s`` apart (indices, in order).

    ``j`` may follow ``i`` when ``start_j - end_i >= gap_s``: no interval of
    length ``<= gap_s`` then overlaps both. Weighted interval scheduling
    (each window stretched by ``gap_s``), exact, ``O(n log n)``.
    """
    st, en, un = trace.starts, trace.ends, trace.unique
    n = len(st)
    best = [0.0] * (n + 1)
    back: list[int] = [-1] * n  # -1: window j not taken in best[j + 1]
    for j in range(n):
        p = bisect.bisect_right(en, st[j] - gap_s)  # windows < p end by start_j - gap
        v = un[j] + best[p]
        if v > best[j]:
            best[j + 1] = v
            back[j] = p
        else:
            best[j + 1] = best[j]
    out = []
    j = n
    while j > 0:
        if back[j - 1] >= 0:
            out.append(j - 1)
            j = back[j - 1]
        else:
            j -= 1
    out.reverse()
    return out


#: A group's exact cover cost is computed only when a plain cover could gain this much.
_SKIP_GAIN = 0.01
#: The cover's cells hold at most 1/_COVER_CELLS of the group's bytes in the span.
_COVER_CELLS = 400.0

#: Classes also split groups by their shortest window, so a few short windows
#: in one group do not switch the boundary refinement off for the others.
_WINDOW_BUCKETS = (1500.0, 900.0, 600.0, 300.0, 120.0, 60.0, 0.0)


def _bucket(w: float) -> float:
    return next(b for b in _WINDOW_BUCKETS if w >= b)


def boundary_terms(trace: WindowTrace) -> list[tuple[float, float]]:
    """(position, ``h_j``) per boundary between consecutive windows ``l``, ``r``.

    ``h_j = rate_l rate_r / (rate_l + rate_r)`` (rates in bytes per second of
    window): a piece of length ``x + y <= L`` straddling only this boundary
    has ``S - M = min(rate_l x, rate_r y) <= L h_j``.
    """
    out = []
    st, en, un = trace.starts, trace.ends, trace.unique
    for k in range(len(st) - 1):
        rl = un[k] / (en[k] - st[k])
        rr = un[k + 1] / (en[k + 1] - st[k + 1])
        h = rl * rr / (rl + rr) if rl + rr > 0 else 0.0
        out.append((en[k], h))
    return out


def lower_bound(
    groups: Sequence[BoundGroup],
    budget_bps: Callable[[float], float],
    horizon_s: float,
    *,
    fine_s: float = 30.0,
    window_step_s: float = 900.0,
    budget_step_s: float = 30.0,
    tolerance: float = 1e-3,
    refine_windows: int = 2,
    refine_steps: int = 8,
    refine_tolerance: float = 0.005,
    refine_from: float = 0.0,
) -> BoundResult:
    """The smallest ratio ``r`` that passes every window on a ``window_step_s`` grid.

    ``budget_bps(t)`` is the link budget, constant on each
    ``budget_step_s`` step starting at a multiple of it (sampled at the
    step's start). The group-by-group refinement (module docstring) runs on
    ``refine_windows`` windows, with at most ``refine_steps`` checks each,
    when the pooled bound is at least ``refine_from``.
    """
    if not groups:
        return BoundResult(0.0, None, 0.0, 0.0)
    n_fine = math.floor(horizon_s / fine_s)
    classes: dict[tuple[float, float, float], _Class] = {}
    for g in groups:
        key = (g.target_s, g.trace.overwrite, _bucket(g.trace.min_window_s))
        cls = classes.get(key)
        if cls is None:
            cls = classes[key] = _Class(
                g.target_s,
                g.trace.overwrite,
                g.overhead_s,
                g.trace.min_window_s,
                [0.0] * (n_fine + 1),
                [0.0] * (n_fine + 1),
                [0.0] * (n_fine + 1),
                [],
            )
        cls.traces.append(g.trace)
        cls.overhead = min(cls.overhead, g.overhead_s)
        cls.window = min(cls.window, g.trace.min_window_s)
        base = g.trace.cumulative(0.0)
        for j in range(n_fine + 1):
            cls.cum[j] += g.trace.cumulative(j * fine_s) - base
        for pos, h in boundary_terms(g.trace):
            if pos > n_fine * fine_s or h <= 0:
                continue
            # node j counts it in hle when pos <= j fine, in hlt when pos < j fine
            # (increments here, prefix sums below)
            cls.hle[max(0, math.ceil(pos / fine_s - 1e-9))] += h
            j_lt = max(0, math.floor(pos / fine_s + 1e-9) + 1)
            if j_lt <= n_fine:
                cls.hlt[j_lt] += h
    cl = list(classes.values())
    for c in cl:
        for arr in (c.hle, c.hlt):
            for j in range(1, n_fine + 1):
                arr[j] += arr[j - 1]

    # budget integral at window grid nodes
    n_b = math.ceil(horizon_s / budget_step_s)
    bud_cum = [0.0]
    for k in range(n_b):
        s = k * budget_step_s
        e = min(horizon_s, s + budget_step_s)
        bud_cum.append(bud_cum[-1] + budget_bps(s) * (e - s))

    def bud_at(t: float) -> float:
        k = min(n_b, int(t // budget_step_s))
        if k >= n_b:
            return bud_cum[-1]
        s = k * budget_step_s
        return bud_cum[k] + budget_bps(s) * (t - s)

    nodes = [k * window_step_s for k in range(int(horizon_s // window_step_s) + 1)]
    if nodes[-1] < horizon_s:
        nodes.append(horizon_s)
    bud_nodes = [bud_at(t) for t in nodes]
    # S at window nodes (exact when nodes are on the fine grid; rounded down otherwise)
    a_idx = [min(n_fine, math.ceil(t / fine_s - 1e-9)) for t in nodes]
    a_floor = [min(n_fine, math.floor(t / fine_s + 1e-9)) for t in nodes]

    sep_cache: dict[tuple[int, float], tuple[list[float], list[float]]] = {}

    def separated(ci: int, c: _Class, length: float) -> tuple[list[float], list[float]]:
        """Summed separated windows of the class: (ending by fine node j, starting before node i)."""
        key = (ci, length)
        hit = sep_cache.get(key)
        if hit is not None:
            return hit
        ends_at = [0.0] * (n_fine + 1)
        starts_before = [0.0] * len(nodes)
        for tr in c.traces:
            for k in separated_windows(tr, length):
                s, e, u = tr.starts[k], tr.ends[k], tr.unique[k]
                if s < 0.0 or u <= 0.0:
                    continue  # only windows inside the day count
                j = math.ceil(e / fine_s - 1e-9)  # counted from the first node >= its end
                if j <= n_fine:
                    ends_at[j] += u
                    i = bisect.bisect_right(nodes, s)  # started before nodes[i:]
                    if i < len(nodes):
                        starts_before[i] += u
        for j in range(1, n_fine + 1):
            ends_at[j] += ends_at[j - 1]
        for i in range(1, len(nodes)):
            starts_before[i] += starts_before[i - 1]
        if len(sep_cache) > 256:
            sep_cache.clear()
        sep_cache[key] = (ends_at, starts_before)
        return ends_at, starts_before

    def check(
        r: float, collect: list[tuple[float, int, int]] | None = None
    ) -> tuple[bool, tuple[float, float] | None, float, float]:
        kappas = []
        refine = []  # f * L when pieces cannot hold two boundaries, else 0
        seps = []
        for ci, c in enumerate(cl):
            length = r * c.target - c.overhead
            if length <= 0:
                return False, None, math.inf, 0.0
            k = math.ceil(length / c.window) + 1
            kappas.append((1.0 - c.overwrite) + c.overwrite / k)
            refine.append(c.overwrite * length if length <= c.window else 0.0)
            seps.append(separated(ci, c, length) if c.overwrite > 0 else None)
        for ib in range(1, len(nodes)):
            b = nodes[ib]
            # per class: S at b - r T (rounded down to the fine grid), and the
            # boundary terms up to it (rounded up: more boundaries, less need)
            ends = []
            for c, kap, fl, sep in zip(cl, kappas, refine, seps, strict=True):
                x = b - r * c.target
                if x <= 0:
                    ends.append((x, 0.0, 0.0, 0.0, kap, fl, c, sep))
                    continue
                j = min(n_fine, math.floor(x / fine_s + 1e-9))
                jc = min(n_fine, math.ceil(x / fine_s - 1e-9))
                wx = sep[0][j] if sep is not None else 0.0
                ends.append((x, c.cum[j], c.hle[jc], wx, kap, fl, c, sep))
            for ia in range(ib):
                a = nodes[ia]
                ja = a_idx[ia]
                jaf = a_floor[ia]
                need = 0.0
                for x, sx, hx, wx, kap, fl, c, sep in ends:
                    if x >= a:
                        d = sx - c.cum[ja]
                        if d > 0:
                            v = kap * d
                            if fl > 0:
                                v = max(v, d - fl * (hx - c.hlt[jaf]))
                            if sep is not None:
                                # separated windows ending by x, less those starting before a
                                w = wx - sep[1][ia]
                                if w > 0:
                                    v = max(v, (1.0 - c.overwrite) * d + c.overwrite * w)
                            need += v
                avail = bud_nodes[ib] - bud_nodes[ia]
                if collect is not None:
                    if need > 0:
                        collect.append((need / avail if avail > 0 else math.inf, ia, ib))
                    continue
                if need > avail * (1.0 + 1e-12) + 1e-6:
                    return False, (a, b), need, avail
        return True, None, 0.0, 0.0

    floor_ratio = max(g.overhead_s / g.target_s for g in groups)
    lo = floor_ratio
    ok, _, _, _ = check(max(lo, 1e-9) * (1 + 1e-9))
    if ok:
        return BoundResult(lo, None, 0.0, 0.0, lo)
    hi = max(1.0, lo * 2)
    while not check(hi)[0]:
        lo = hi
        hi *= 2
        if hi > 1e6:
            break
    while hi - lo > tolerance * max(1.0, lo):
        mid = 0.5 * (lo + hi)
        if check(mid)[0]:
            hi = mid
        else:
            lo = mid
    _, win, need, avail = check(lo)
    result = BoundResult(lo, win, need, avail, lo)
    if refine_windows <= 0 or lo < refine_from:
        return result
    # Refinement: the windows closest to failing at ``hi``, group by group
    # (each group's largest figure, with the exact cover cost).
    ranked: list[tuple[float, int, int]] = []
    check(hi, ranked)
    ranked.sort(reverse=True)
    tried: set[tuple[int, int]] = set()
    for _ratio, ia, ib in ranked:
        if len(tried) >= refine_windows:
            break
        if (ia, ib) in tried:
            continue
        tried.add((ia, ib))
        a, b = nodes[ia], nodes[ib]
        avail = bud_nodes[ib] - bud_nodes[ia]

        def excess(r: float, a: float = a, b: float = b, avail: float = avail) -> float:
            """How far the groups' least need at ``r`` exceeds the window's budget (> 0: fails)."""
            need = 0.0
            for g in groups:
                need += group_need(g, a, b - r * g.target_s, r * g.target_s - g.overhead_s)
            return need - avail * (1.0 + 1e-12) - 1e-6

        # The largest r shown to fail, by regula falsi (Illinois) between a failing
        # and a passing ratio. Only ratios actually shown to fail are kept, so the
        # result is valid whether or not the computed need is monotone in r.
        e_fail = excess(hi)
        if e_fail <= 0:
            continue
        r_fail = hi
        r_pass, e_pass = 0.0, 0.0
        steps = 0
        while r_pass == 0.0 and steps < refine_steps:
            steps += 1
            r_try = r_fail * 1.25
            e = excess(r_try)
            if e > 0:
                r_fail, e_fail = r_try, e
            else:
                r_pass, e_pass = r_try, e
        side = 0
        while r_pass and steps < refine_steps and r_pass - r_fail > refine_tolerance * r_fail:
            steps += 1
            r_try = r_fail + (r_pass - r_fail) * e_fail / (e_fail - e_pass)
            r_try = min(
                max(r_try, r_fail + 0.02 * (r_pass - r_fail)), r_pass - 0.02 * (r_pass - r_fail)
            )
            e = excess(r_try)
            if e > 0:
                r_fail, e_fail = r_try, e
                if side == 1:
                    e_pass *= 0.5
                side = 1
            else:
                r_pass, e_pass = r_try, e
                if side == -1:
                    e_fail *= 0.5
                side = -1
        if r_fail > result.max_rpo_ratio:
            result = BoundResult(r_fail, (a, b), e_fail + avail, avail, lo)
    return result


def group_need(g: BoundGroup, a: float, x: float, length: float) -> float:
    """The least a group ships inside a window ``[a, b]`` at ratio ``r`` (``x = b - r T``,
    ``length = r T - o``): the largest of the docstring's figures for this group alone,
    the exact cover cost (:func:`cover_cost`) among them."""
    tr = g.trace
    if x <= a:
        return 0.0
    if length <= 0:
        return math.inf
    s = tr.summed(a, x)
    f = tr.overwrite
    if s <= 0 or f <= 0:
        return max(0.0, s)
    w = tr.min_window_s
    best = ((1.0 - f) + f / (math.ceil(length / w) + 1)) * s
    if length <= w:
        h = sum(hj for p, hj in boundary_terms(tr) if a <= p <= x)
        best = max(best, s - f * length * h)
    sep = sum(
        tr.unique[k]
        for k in separated_windows(tr, length)
        if tr.starts[k] >= a and tr.ends[k] <= x and tr.starts[k] >= 0.0
    )
    best = max(best, (1.0 - f) * s + f * sep)
    span = x - a
    step = max(min(length / 32.0, span / 200.0), span / 800.0, 1e-6)
    # skip the cover when even a plain cut every ``length`` could not beat ``best``
    upper_m = 0.0
    t = a
    while t < x:
        upper_m += tr.largest(t, min(x, t + length))
        t += length
    if (1.0 - f) * s + f * upper_m <= best * (1.0 + _SKIP_GAIN):
        return best
    cover = cover_cost(tr, a, x, length, step, s / _COVER_CELLS)
    return max(best, (1.0 - f) * s + f * cover)


def cover_cost(
    trace: WindowTrace,
    a: float,
    x: float,
    length: float,
    step: float,
    cell_bytes: float | None = None,
) -> float:
    r"""A lower bound on ``min sum M(piece)`` over partitions of ``(a, x]`` into pieces ``<= length``.

    ``M`` is the largest single window's contribution to a piece
    (:mod:`liferaft.logic.dirty`). The argument, with ``delta = step``:

    1. *Nodes*: ``a``, ``x``, every window boundary in ``(a, x)``, and
       between them equal cells no longer than ``delta`` and, given
       ``cell_bytes``, holding no more bytes than that (heavy windows get
       finer cells, as the loss below is counted in cell bytes). Every cell
       (between consecutive nodes) lies inside one window or gap.
    2. *Fewest pieces*: take a partition within any ``eps`` of the infimum
       and with the fewest pieces among those; two consecutive pieces add up
       to more than ``length`` (else merging them is admissible and, ``M``
       being subadditive, costs no more). So the interior cuts of odd rank
       are pairwise more than ``length`` apart, and so are those of even rank.
    3. *Snapping*: move each interior cut to the nearer end of its cell. Each
       end of a piece moves by at most ``delta / 2``, so pieces stay within
       ``length + delta``; the piece gaining the moved part (one window's,
       at a uniform rate) grows in ``M`` by at most its bytes, half the
       cell's at most; the other piece only loses bytes. Pieces shrunk to
       nothing are dropped.
    4. So ``opt + eps >= G - sum_cuts b_cell / 2 >= G - loss``: ``G`` is the
       least cost with cuts on nodes and pieces ``<= length + delta`` (exact,
       below); ``loss`` the heaviest set of cells pairwise able to hold cuts
       more than ``length`` apart (the odd and the even cuts' cells are
       each such a set, and ``(odd + even) / 2 <= loss``).

    ``G`` is a shortest path, ``G[k] = min_j G[j] + M(t_j, t_k)``, computed in
    ``O(windows reached)`` per node: ``G`` never decreases (truncate the last
    piece) and ``G[j] - P[j]`` (``P`` the bytes up to node ``j``) never
    increases within a window (a one-cell piece costs its bytes), so for the
    ``j`` of one window, where the cost is ``G[j] + max(Z, H(j))`` with ``Z``
    the other windows' largest contribution and ``H(j)`` this window's part
    after ``t_j``, the least is at the first ``j`` with ``H(j) <= Z`` or the
    one before it; windows further back cost at least ``G[j_lo] + Z`` and
    are skipped once that is no better.
    """
    if x <= a or length <= 0 or step <= 0:
        return 0.0
    step = min(step, length)
    st, en = trace.starts, trace.ends
    lo_w = max(0, bisect.bisect_right(st, a) - 1)
    hi_w = bisect.bisect_left(st, x)
    bps = {a, x}
    for k in range(lo_w, min(hi_w + 1, len(st))):
        for p in (st[k], en[k]):
            if a < p < x:
                bps.add(p)
    edges = sorted(bps)
    nodes = [a]
    for p, q in itertools.pairwise(edges):
        if q - p <= 1e-9:
            continue
        k = math.ceil((q - p) / step - 1e-9)
        if cell_bytes is not None and cell_bytes > 0:
            k = max(k, math.ceil(trace.summed(p, q) / cell_bytes - 1e-9))
        k = max(1, k)
        nodes.extend(p + (q - p) * i / k for i in range(1, k))
        nodes.append(q)
    n = len(nodes) - 1  # cells
    if n <= 0:
        return 0.0
    cum = [trace.cumulative(t) for t in nodes]
    pre = [0.0] * (n + 1)
    run = [0] * n  # run id of each cell: a window's (or gap's) consecutive cells
    run_start: list[int] = []
    last_key = None
    for i in range(n):
        pre[i + 1] = pre[i] + max(0.0, cum[i + 1] - cum[i])
        mid = 0.5 * (nodes[i] + nodes[i + 1])
        w = bisect.bisect_right(st, mid) - 1
        key = w if w >= 0 and mid < en[w] else -2 - w  # gaps get their own key
        if key != last_key:
            run_start.append(i)
            last_key = key
        run[i] = len(run_start) - 1
    run_end = [*run_start[1:], n]
    reach = length + step
    g = [0.0] * (n + 1)
    jlo = 0
    for k in range(1, n + 1):
        tk = nodes[k]
        while tk - nodes[jlo] > reach + 1e-9:
            jlo += 1
        best = g[k - 1] + (pre[k] - pre[k - 1])
        h = run[k - 1]
        z = pre[k] - pre[run_start[h]]  # the tail window's part
        h -= 1
        floor_g = g[jlo]
        while h >= 0 and run_end[h] - 1 >= jlo:
            if floor_g + z >= best:
                break
            s_h, e_h = run_start[h], run_end[h]
            lo_h = s_h if s_h > jlo else jlo
            top = pre[e_h]
            js = bisect.bisect_left(pre, top - z, lo_h, e_h)  # first j with H(j) <= z
            if js < e_h:
                v = g[js] + z
                if v < best:
                    best = v
            if js - 1 >= lo_h:
                v = g[js - 1] + (top - pre[js - 1])
                if v < best:
                    best = v
            full = top - pre[s_h]
            if full > z:
                z = full
            h -= 1
        g[k] = best
    # the heaviest set of cells pairwise able to hold cuts more than ``length`` apart
    sep = [0.0] * (n + 1)
    for k in range(n):
        p = bisect.bisect_left(nodes, nodes[k + 1] - length, 0, k + 1)
        p = min(p, k)
        # cells 0..p-1 start before nodes[k+1] - length
        v = (pre[k + 1] - pre[k]) + sep[p]
        sep[k + 1] = v if v > sep[k] else sep[k]
    return max(0.0, g[n] - sep[n])
