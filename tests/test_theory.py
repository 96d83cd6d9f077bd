"""The theorem's conditions against hand-computed values."""

import math

import pytest

from theory_sim import theory


def test_simplified_band_by_hand():
    assert theory.resonance_band(0.01, 50) == pytest.approx((0.01, 0.1))  # min(√0.01, 0.5)
    assert theory.resonance_band(0.04, 2) == pytest.approx((0.04, 0.08))  # min(0.2, 0.08)
    assert theory.resonance_band_ratio(0.04, 2) == pytest.approx((1.0, 2.0))
    assert theory.resonance_band(0.01, 50, c_low=0.5, c_high=2) == pytest.approx((0.005, 0.2))


def test_full_band_by_hand():
    lo, hi = theory.resonance_band_full(n=100, d=10, s=2)
    # n^{-(1+1/2)/2} = 100^{-0.75} = 0.0316; n^{-2/2} = 0.01; d/n = 0.1
    assert lo == pytest.approx(0.01) and hi == pytest.approx(0.01)
    lo, hi = theory.resonance_band_full(n=10_000, d=50, s=8)
    # 1e4^{-(1.125)/2} = 0.00562; 1e4^{-0.25} = 0.1; 50/1e4 = 0.005
    assert hi == pytest.approx(0.005)


def test_width_bound_by_hand():
    assert theory.width_bound(100, 0.1, 2) == pytest.approx(10_000)
    assert theory.width_bound(100, 0.1, 2, eps=0.1) == pytest.approx(100 * 0.1 ** (-2 / 0.81))


def test_regimes_and_thresholds():
    assert theory.superposition_regime(100, 9) == "heavy"
    assert theory.superposition_regime(100, 10) == "light"
    assert theory.cooccurrence_threshold(64) == 0.125
    assert theory.low_cooccurrence(0.1, 64) and not theory.low_cooccurrence(0.2, 64)
    assert theory.success_probability(16, 0.25) == pytest.approx(1 - 1 / 16)
    assert theory.steps_bound(0.25) == 4
    assert theory.gaussian_coherence_level(math.e**2, 8) == pytest.approx(1.0)
    assert theory.in_band(0.02, 0.01, 50) and not theory.in_band(0.2, 0.01, 50)
