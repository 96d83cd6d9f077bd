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


# ---------------------------------------------------------------------------------------------- hypotheses per cell
def _cell(**kw):
    return {"n": 16, "d": 8, "s": 4, "p": 0.177, "width": 32768, "steps": 4, **kw}


def test_band_degenerate_at_s_2_and_not_evaluable_at_s_1():
    h = theory.cell_hypotheses(_cell(s=2, p=1 / 16), eps=0.0, varsigma=0.0)
    assert h["band_nondegenerate"] is False  # n^{-2/s} = 1/n: the band is the point p = 1/n
    h1 = theory.cell_hypotheses(_cell(s=1), eps=0.0, varsigma=0.0)
    assert h1["band_nondegenerate"] is None and h1["band_full"] is None and h1["width"] is None
    assert theory.cell_hypotheses(_cell(), eps=0.02, varsigma=0.25)["band_nondegenerate"] is True


def test_hypotheses_by_hand():
    # n 16, s 4, ε 0.02: full band upper edge min(16^-0.625, 16^-0.5202, 8^0.75/16) = 0.1768
    h = theory.cell_hypotheses(_cell(p=0.17), eps=0.02, varsigma=0.25)
    assert h["band_full"] is True and h["band_simplified"] is False  # below f = 0.25
    assert theory.cell_hypotheses(_cell(p=0.2), eps=0.02, varsigma=0.25)["band_full"] is False
    # width: 16 · 0.17^(-4/0.9604) = 25,659 ≤ 32,768 < 16 · 0.15^(-4/0.9604) = 43,216
    assert h["width"] is True
    assert theory.cell_hypotheses(_cell(p=0.15), eps=0.02, varsigma=0.25)["width"] is False
    assert theory.cell_hypotheses(_cell(steps=3), eps=0.02, varsigma=0.25)["steps"] is False  # T = ⌈1/0.25⌉ = 4
    assert theory.cell_hypotheses(_cell(), eps=0.02, varsigma=0.0)["steps"] is None  # ς = 0: no T
    assert theory.steps_needed(0.25) == 4 and theory.steps_needed(0.3) == 4
    assert h["light"] is True and theory.cell_hypotheses(_cell(d=3))["light"] is False
    assert h["data_model"] is True
    for k, v in (("support", "bernoulli"), ("shared", 0.3), ("snr", 4.0), ("cooccurrence", 0.2)):
        assert theory.cell_hypotheses(_cell(**{k: v}))["data_model"] is False, k
    assert theory.cell_hypotheses(_cell(cooccurrence=0.6))["identifiable"] is False
    assert theory.cell_hypotheses(_cell(cooccurrence=0.5))["identifiable"] is True
    assert theory.cell_hypotheses(_cell())["identifiable"] is None


def test_inside_is_tri_state():
    assert theory.inside({"a": True, "b": True}, ["a", "b"]) is True
    assert theory.inside({"a": True, "b": None}, ["a", "b"]) is None
    assert theory.inside({"a": False, "b": None}, ["a", "b"]) is False
    assert theory.inside({"a": False}, []) is True


def test_planted_cosine_is_what_a_random_start_reaches():
    """c₀(n, d, M) against real random starts where the width fits (n = 16 features, d = 8, M = 2048 random unit
    neurons, 400 draws of V and W): the fraction of draws in which every feature has a neuron at cosine ≥ c₀ is
    the promised 1 − δ = 0.9 within four binomial standard errors (0.9 ± 0.06); the per-feature tail formula
    matches the empirical tail of single cosines. Broken on purpose (d − 1 in place of d in the Beta law) this
    fraction drops to ≈ 0.2."""
    import numpy as np

    from theory_sim import theory as T

    rng = np.random.default_rng(0)
    n, d, M, trials = 16, 8, 2048, 400
    c0 = T.planted_cosine(n, d, M, 0.1)
    hits, cosines = 0, []
    for _ in range(trials):
        V = rng.standard_normal((n, d))
        V /= np.linalg.norm(V, axis=1, keepdims=True)
        W = rng.standard_normal((M, d))
        W /= np.linalg.norm(W, axis=1, keepdims=True)
        c = V @ W.T
        hits += bool((c.max(1) >= c0).all())
        cosines.append(c[0, :64])
    se = (0.9 * 0.1 / trials) ** 0.5
    assert abs(hits / trials - 0.9) < 4 * se
    cos = np.concatenate(cosines)
    for t in (0.3, 0.6, 0.8):
        assert abs((cos >= t).mean() - T.random_cosine_tail(t, d)) < 4 * (T.random_cosine_tail(t, d) / len(cos)) ** 0.5
    # the theorem's width along the scaling path: c₀ falls with n (d = n/4, p = 0.7 f, s = 4)
    c = [T.planted_cosine(n, n // 4, T.width_bound(n, 2.8 / n, 4, 0.02)) for n in (128, 512, 2048)]
    assert c[0] > c[1] > c[2] > 0.3


def test_a_width_given_as_a_multiple_of_n_is_held_to_the_bound():
    """theorem_scaling's random-start switch gives its width as width_over_n (1.25 · n): the width hypothesis
    reads it (1.25 · 256 = 320 neurons, far below n·p^(−s/(1−ε)²)) and fails, instead of being unevaluable."""
    import pandas as pd

    from theory_sim.analysis import with_hypotheses

    th = {"require": ["width"], "eps": 0.02}
    row = {"n": 256, "d": 64, "s": 4, "p_over_f": 0.7, "start": "random"}
    got = with_hypotheses(pd.DataFrame([{**row, "width_over_n": 1.25}]), th)
    assert got.hyp_width.iloc[0] is False and got.inside.iloc[0] is False
    assert with_hypotheses(pd.DataFrame([row]), th).hyp_width.iloc[0] is None  # no width at all: unevaluable
    # n = 8, s = 4, p = 0.25: the bound is 8 · 4^(4/0.98²) ≈ 2,580 neurons; 400 · n = 3,200 meets it
    small = {"n": 8, "d": 4, "s": 4, "p": 0.25, "start": "random", "width_over_n": 400.0}
    assert with_hypotheses(pd.DataFrame([small]), th).hyp_width.iloc[0] is True
