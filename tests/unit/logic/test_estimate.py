"""The coalescing size curve (``liferaft.logic.estimate.fit_dirty_curve``)."""

from __future__ import annotations

import pytest

from liferaft.logic import CheckpointRecord
from liferaft.logic.estimate import DEFAULT_RATE_BPS, DirtyCurve, dirty_rate, fit_dirty_curve


def _rec(interval: float, nbytes: float) -> CheckpointRecord:
    return CheckpointRecord(capture_s=0.0, interval_s=interval, bytes=int(nbytes))


def test_curve_fits_two_intervals_exactly() -> None:
    # 600 MB over 10 min, 1,200 MB over 40 min: 4x the interval, 2x the bytes -> b = 0.5
    c = fit_dirty_curve((_rec(600.0, 600e6), _rec(2400.0, 1200e6)))
    assert c.b == pytest.approx(0.5)
    assert c.bytes_over(600.0) == pytest.approx(600e6)
    assert c.bytes_over(2400.0) == pytest.approx(1200e6)
    # 80 min in two 40-min pieces ships 2 x 1,200 MB; in eight 10-min pieces 8 x 600 MB
    assert c.cadence_bytes(4800.0, 2400.0) == pytest.approx(2400e6)
    assert c.cadence_bytes(4800.0, 600.0) == pytest.approx(4800e6)
    # a piece limit that does not divide the span: ceil(4800 / 1000) = 5 pieces of 960 s
    assert c.cadence_bytes(4800.0, 1000.0) == pytest.approx(5 * c.bytes_over(960.0))
    assert c.cadence_bytes(0.0, 600.0) == 0.0


def test_curve_without_spread_is_the_history_rate() -> None:
    hist = (_rec(600.0, 600e6), _rec(700.0, 1400e6))  # 700 / 600 < 1.5: nothing learnt
    c = fit_dirty_curve(hist)
    assert c == DirtyCurve(dirty_rate(hist), 1.0)
    # b = 1: the cadence costs the rate x the span whatever the pieces
    assert c.cadence_bytes(3600.0, 300.0) == pytest.approx(c.cadence_bytes(3600.0, 3600.0))
    assert fit_dirty_curve(()) == DirtyCurve(DEFAULT_RATE_BPS, 1.0)


def test_curve_exponent_is_clamped() -> None:
    # bytes growing faster than the interval (a burst in the longer one): b = 1, not 2
    assert fit_dirty_curve((_rec(600.0, 1e6), _rec(2400.0, 16e6))).b == 1.0
    # the same bytes whatever the interval (one hot page set): b_min, not 0
    c = fit_dirty_curve((_rec(600.0, 1e6), _rec(2400.0, 1e6)))
    assert c.b == 0.3 and c.bytes_over(2400.0) > c.bytes_over(600.0)


def test_curve_prior_bends_around_the_history_rate() -> None:
    hist = (_rec(600.0, 600e6), _rec(700.0, 1400e6))  # no spread; rate 2 MB/s (the newest)
    c = fit_dirty_curve(hist, b_prior=0.5)
    assert c.b == 0.5
    # through the rate at the mean interval, 650 s: 1.3 GB
    assert c.bytes_over(650.0) == pytest.approx(2e6 * 650.0)
    # four times the interval, twice the bytes
    assert c.bytes_over(2600.0) == pytest.approx(2 * 1.3e9)
    # with spread the data speak, not the prior
    assert fit_dirty_curve((_rec(600.0, 600e6), _rec(2400.0, 1200e6)), b_prior=0.9).b == (
        pytest.approx(0.5)
    )
