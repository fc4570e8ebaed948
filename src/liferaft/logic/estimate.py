"""Dirty-data estimates from a group's past checkpoints.

The only thing a real cloud tells about a group's writes is how big each
incremental checkpoint was and how long it covered. The estimate is a
dirty **rate** (bytes per second of interval): a blend of the recent
checkpoints' rates that leans towards the higher of the newest one and the
mean, so a burst that has just begun is not averaged away.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from liferaft.logic.contract import CheckpointRecord, GroupState

#: Rate assumed for a group with no history (bytes/s).
DEFAULT_RATE_BPS = 1.0e6


def dirty_rate(
    history: tuple[CheckpointRecord, ...], default_bps: float = DEFAULT_RATE_BPS
) -> float:
    """Estimated dirty bytes per second from the recent checkpoints (newest last)."""
    recent = [r for r in history[-4:] if r.interval_s > 0]
    if not recent:
        return default_bps
    rates = [r.bytes / r.interval_s for r in recent]
    total_s = sum(r.interval_s for r in recent)
    mean = sum(r.bytes for r in recent) / total_s
    return max(rates[-1], mean)


def written_to_dirty(history: tuple[CheckpointRecord, ...]) -> float | None:
    """Distinct bytes per byte written, from the recent checkpoints that know both."""
    recent = [r for r in history[-4:] if r.written_bytes]
    if not recent:
        return None
    written = sum(r.written_bytes or 0 for r in recent)
    return min(1.0, sum(r.bytes for r in recent) / written) if written > 0 else None


_MEMO: dict[int, tuple[tuple[CheckpointRecord, ...], float, float | None]] = {}


def _from_history(history: tuple[CheckpointRecord, ...]) -> tuple[float, float | None]:
    # Memoized on the history tuple's identity (checked, so never stale): a
    # controller passes the same tuple until a checkpoint changes it.
    hit = _MEMO.get(id(history))
    if hit is not None and hit[0] is history:
        return hit[1], hit[2]
    rate, ratio = dirty_rate(history), written_to_dirty(history)
    if len(_MEMO) > 4096:
        _MEMO.clear()
    _MEMO[id(history)] = (history, rate, ratio)
    return rate, ratio


def dirty_now_and_rate(g: GroupState, now_s: float) -> tuple[float, float, float]:
    """(dirty bytes since the last capture, near-future dirty rate, long-run dirty rate).

    With write counters, the dirty bytes so far are the bytes written since
    the capture times the distinct-per-written ratio of the recent
    checkpoints, and the near-future rate follows the current write rate
    (a burst shows at once); without them both come from the history.
    """
    hist, ratio = _from_history(g.history)
    elapsed = max(0.0, now_s - g.last_capture_s)
    if ratio is None or g.written_since_capture_bytes is None:
        return hist * elapsed, hist, hist
    now_bytes = g.written_since_capture_bytes * ratio
    rate = (g.write_rate_bps or 0.0) * ratio
    return now_bytes, max(rate, 0.5 * hist), hist


@dataclass(frozen=True, slots=True)
class DirtyCurve:
    """Dirty bytes of one checkpoint as a function of its interval: ``D(L) = a·L^b``.

    ``b = 1`` is a plain rate (no coalescing); ``b < 1`` says longer pieces
    coalesce overwrites (a page written twice in one piece ships once), as
    the dirty model's ``(1-f)·S + f·M`` does between its two extremes.
    """

    a: float
    b: float

    def bytes_over(self, length_s: float) -> float:
        """Dirty bytes of one checkpoint covering ``length_s`` seconds."""
        return self.a * length_s**self.b if length_s > 0 else 0.0

    def cadence_bytes(self, span_s: float, piece_s: float) -> float:
        """Bytes to cover ``span_s`` with equal pieces of at most ``piece_s`` seconds.

        ``n`` pieces cost ``a·span^b·n^(1-b)``: fewest pieces, fewest bytes.
        """
        if span_s <= 0:
            return 0.0
        n = max(1, math.ceil(span_s / max(piece_s, 1e-9) - 1e-9))
        return n * self.bytes_over(span_s / n)


def fit_dirty_curve(
    history: tuple[CheckpointRecord, ...],
    *,
    b_min: float = 0.3,
    min_spread: float = 1.5,
    default_bps: float = DEFAULT_RATE_BPS,
    b_prior: float = 1.0,
) -> DirtyCurve:
    """``D(L) = a·L^b`` fitted to the checkpoints' (interval, bytes), least squares in logs.

    The exponent is learnt only where the intervals differ by at least
    ``min_spread``x (else it says nothing about coalescing and the curve is
    the history's rate, ``b = 1``, or with ``b_prior`` a curve of that
    exponent through the history's rate at its mean interval); it is kept
    within ``[b_min, 1]``: dirty bytes never fall with a longer interval,
    and never grow faster than it.
    """
    pts = [(r.interval_s, r.bytes) for r in history if r.interval_s > 0 and r.bytes > 0]
    if not pts:
        return DirtyCurve(dirty_rate(history, default_bps), 1.0)
    lengths = [p[0] for p in pts]
    if max(lengths) < min_spread * min(lengths):
        rate = dirty_rate(history, default_bps)
        mean_s = sum(lengths) / len(lengths)
        # D(mean) = rate x mean: the prior only bends the curve around what was seen.
        return DirtyCurve(rate * mean_s ** (1.0 - b_prior), b_prior)
    xs = [math.log(p[0]) for p in pts]
    ys = [math.log(p[1]) for p in pts]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mx) ** 2 for x in xs)
    cov = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True))
    b = min(1.0, max(b_min, cov / var))
    return DirtyCurve(math.exp(my - b * mx), b)
