"""The dirty-data model: exact on a window, between max and sum, monotone, subadditive."""

from __future__ import annotations

import random

import pytest

from liferaft.logic.dirty import WindowTrace


def _trace(seed: int) -> WindowTrace:
    rng = random.Random(seed)
    unique = [rng.choice((0.0, rng.uniform(0, 1e6))) for _ in range(12)]
    return WindowTrace.regular(0.0, 100.0, unique, rng.uniform(0, 1))


def test_single_window_is_exact_and_uniform() -> None:
    t = WindowTrace.regular(0.0, 100.0, [1000.0, 3000.0], 0.5)
    assert t.dirty(0, 100) == pytest.approx(1000.0)
    assert t.dirty(100, 200) == pytest.approx(3000.0)
    assert t.dirty(0, 50) == pytest.approx(500.0)
    # across both: the larger window whole, half of the other
    assert t.dirty(0, 200) == pytest.approx(3000.0 + 0.5 * 1000.0)


@pytest.mark.parametrize("seed", range(20))
def test_bounds_monotone_subadditive(seed: int) -> None:
    t = _trace(seed)
    rng = random.Random(seed + 1000)
    for _ in range(200):
        a, b, c = sorted(rng.uniform(-50, 1250) for _ in range(3))
        d_ac = t.dirty(a, c)
        assert t.largest(a, c) - 1e-6 <= d_ac <= t.summed(a, c) + 1e-6
        assert d_ac <= t.dirty(a, b) + t.dirty(b, c) + 1e-6
        assert t.dirty(b, c) <= d_ac + 1e-6 and t.dirty(a, b) <= d_ac + 1e-6


def test_written_counters() -> None:
    t = WindowTrace.regular(0.0, 100.0, [10.0, 20.0], 0.5, written=[100.0, 400.0])
    assert t.written_between(0, 150) == pytest.approx(300.0)
    assert t.written_upto(200) == pytest.approx(500.0)


def test_rejects_overlapping_windows() -> None:
    with pytest.raises(ValueError):
        WindowTrace((0.0, 50.0), (100.0, 150.0), (1.0, 1.0), 0.5)
