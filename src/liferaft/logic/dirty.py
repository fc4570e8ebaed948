"""The dirty-data model shared by the simulator and the lower bound.

A group's write behaviour is a sequence of contiguous **windows**
``[start_k, end_k)``, each with the number of distinct bytes written in it,
``u_k`` (the size of the set of distinct 4 KiB pages written; the data set
``vm-write-windows.csv`` gives it per 30-minute window).

Assumptions (the data cannot tell what happens inside a window):

* **Within a window unique bytes accrue uniformly**: the distinct bytes
  written in a part of window ``k`` of length ``x`` are ``u_k * x / len_k``.
* **Across windows a fraction** ``f`` (``overwrite``) **of the pages is
  rewritten**: the union of several windows' dirty pages keeps the largest
  window's contribution whole and ``1 - f`` of the others'.

With ``S(a, b)`` the pro-rated sum of the windows' unique bytes over
``(a, b]`` and ``M(a, b)`` the largest single window's pro-rated
contribution, the dirty data is::

    D(a, b) = (1 - f) * S(a, b) + f * M(a, b)

Properties (tested): ``M <= D <= S`` -- the union over windows is at least
the largest window and at most their sum, as the data set's meaning
requires; ``D`` is exact on a single window (``D = u_k``); ``D`` grows with
the interval (``(a, b] ⊆ (a', b']`` implies ``D(a, b) <= D(a', b')``); and it
is **subadditive**, ``D(a, c) <= D(a, b) + D(b, c)``, because ``S`` is
additive and ``M(a, c) <= M(a, b) + M(b, c)`` (the window straddling ``b``
splits its contribution in two; any other window lies on one side).
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class WindowTrace:
    """One group's writes: window starts (increasing), ends, unique bytes, overwrite."""

    starts: tuple[float, ...]
    ends: tuple[float, ...]
    unique: tuple[float, ...]
    overwrite: float
    written: tuple[float, ...] | None = None
    _prefix: tuple[float, ...] = field(init=False, repr=False, compare=False)
    _wprefix: tuple[float, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        n = len(self.starts)
        if self.written is not None and len(self.written) != n:
            raise ValueError("WindowTrace: written must have one entry per window")
        if not (len(self.ends) == len(self.unique) == n) or n == 0:
            raise ValueError(
                "WindowTrace needs as many starts, ends and unique sizes, at least one"
            )
        if not 0.0 <= self.overwrite <= 1.0:
            raise ValueError(f"overwrite must be within [0, 1], not {self.overwrite}")
        for k in range(n):
            if self.ends[k] <= self.starts[k] or self.unique[k] < 0:
                raise ValueError(f"window {k} is empty or negative")
            if k and self.starts[k] < self.ends[k - 1]:
                raise ValueError(f"window {k} overlaps window {k - 1}")
        pre = [0.0]
        for u in self.unique:
            pre.append(pre[-1] + u)
        object.__setattr__(self, "_prefix", tuple(pre))
        wpre = [0.0]
        for w in self.written if self.written is not None else self.unique:
            wpre.append(wpre[-1] + w)
        object.__setattr__(self, "_wprefix", tuple(wpre))

    @classmethod
    def regular(
        cls,
        start: float,
        length: float,
        unique: Sequence[float],
        overwrite: float,
        written: Sequence[float] | None = None,
    ) -> WindowTrace:
        """Windows of equal ``length`` from ``start``."""
        n = len(unique)
        return cls(
            tuple(start + k * length for k in range(n)),
            tuple(start + (k + 1) * length for k in range(n)),
            tuple(float(u) for u in unique),
            overwrite,
            None if written is None else tuple(float(w) for w in written),
        )

    @property
    def min_window_s(self) -> float:
        return min(e - s for s, e in zip(self.starts, self.ends, strict=True))

    def cumulative(self, t: float) -> float:
        """``S(-inf, t]``: pro-rated unique bytes of all windows up to ``t``."""
        k = bisect.bisect_right(self.starts, t) - 1
        if k < 0:
            return 0.0
        s, e = self.starts[k], self.ends[k]
        if t >= e:
            return self._prefix[k + 1]
        return self._prefix[k] + self.unique[k] * (t - s) / (e - s)

    def written_between(self, a: float, b: float) -> float:
        """Bytes written (not distinct) in ``(a, b]``, accruing uniformly within windows;
        what a hypervisor's disk write counters show. Equals ``summed`` without ``written``."""
        if b <= a:
            return 0.0
        return self.written_upto(b) - self.written_upto(a)

    def written_upto(self, t: float) -> float:
        """Bytes written (not distinct) up to ``t``, from the first window."""
        k = bisect.bisect_right(self.starts, t) - 1
        if k < 0:
            return 0.0
        s, e = self.starts[k], self.ends[k]
        if t >= e:
            return self._wprefix[k + 1]
        w = self._wprefix[k + 1] - self._wprefix[k]
        return self._wprefix[k] + w * (t - s) / (e - s)

    def summed(self, a: float, b: float) -> float:
        """``S(a, b)``: pro-rated sum of the windows' unique bytes in ``(a, b]``."""
        if b <= a:
            return 0.0
        return self.cumulative(b) - self.cumulative(a)

    def largest(self, a: float, b: float) -> float:
        """``M(a, b)``: the largest single window's pro-rated contribution to ``(a, b]``."""
        if b <= a:
            return 0.0
        starts, ends, unique = self.starts, self.ends, self.unique
        k = max(0, bisect.bisect_right(starts, a) - 1)
        best = 0.0
        n = len(starts)
        while k < n and starts[k] < b:
            s, e = starts[k], ends[k]
            lo = a if a > s else s
            hi = b if b < e else e
            if hi > lo:
                v = unique[k] * (hi - lo) / (e - s)
                if v > best:
                    best = v
            k += 1
        return best

    def dirty(self, a: float, b: float) -> float:
        """``D(a, b)``: distinct bytes written in ``(a, b]``."""
        if b <= a:
            return 0.0
        f = self.overwrite
        return (1.0 - f) * self.summed(a, b) + f * self.largest(a, b)
