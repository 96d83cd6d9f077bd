"""The recovery theorem's conditions (Thm 6.1; docs/science.md §3) as functions.

The theorem's "≲" hide constants. Here every bound takes them explicitly, defaulting to 1 (ε = ς = 0),
so the drawn boundary is the theorem's scaling with unit constants, and the empirical 50 % contour is
drawn beside it rather than fitted to it.
"""

from __future__ import annotations

import math


def resonance_band(f: float, d: float, c_low: float = 1.0, c_high: float = 1.0) -> tuple[float, float]:
    """Simplified band  c_low · f  <=  p  <=  c_high · min(√f, f · d)   (target frequency p)."""
    return c_low * f, c_high * min(math.sqrt(f), f * d)


def resonance_band_ratio(f: float, d: float, c_low: float = 1.0, c_high: float = 1.0) -> tuple[float, float]:
    """The simplified band in units of p / f:  c_low <= p/f <= c_high · min(1/√f, d)."""
    lo, hi = resonance_band(f, d, c_low, c_high)
    return lo / f, hi / f


def resonance_band_full(n: int, d: int, s: int, eps: float = 0.0, varsigma: float = 0.0) -> tuple[float, float]:
    """Full form  n^{-1}  <=  p  <=  min{ n^{-(1+1/s)/2}, n^{-2(1+ε)²/s}, d^{1−ς}/n }."""
    upper = min(n ** (-(1 + 1 / s) / 2), n ** (-2 * (1 + eps) ** 2 / s), d ** (1 - varsigma) / n)
    return 1.0 / n, upper


def width_bound(n: int, p: float, s: float, eps: float = 0.0) -> float:
    """Width the theorem needs:  M >= n · p^{−s/(1−ε)²}  (linear in n, exponential in s)."""
    return n * p ** (-s / (1 - eps) ** 2)


def steps_bound(varsigma: float) -> float:
    """Number of Modified-BA steps, T = 1/ς."""
    return 1.0 / varsigma


def success_probability(n: int, eps: float) -> float:
    """Lower bound 1 − n^{−4ε} on the probability that every feature is recovered."""
    return 1.0 - n ** (-4 * eps)


def superposition_regime(n: int, d: int) -> str:
    """'heavy' if d < √n (narrow band), else 'light' (wide band); the transition sits near d ≈ √n."""
    return "heavy" if d < math.sqrt(n) else "light"


def cooccurrence_threshold(n: int) -> float:
    """H3: ρ₂ must be ≪ n^{-1/2}."""
    return n**-0.5


def low_cooccurrence(rho2: float, n: int) -> bool:
    return rho2 < cooccurrence_threshold(n)


def welch_bound(n: int, d: int) -> float:
    """Lower bound on max |cos| of n unit vectors in R^d (0 when n <= d): no dictionary is more incoherent."""
    if n <= d:
        return 0.0
    return math.sqrt((n - d) / (d * (n - 1)))


def gaussian_coherence_level(n: int, d: int) -> float:
    """Typical max |cos| of n i.i.d. Gaussian directions in R^d, √(4 ln n / d) (V1's reference)."""
    return math.sqrt(4 * math.log(max(n, 2)) / d)


def in_band(p: float, f: float, d: float, c_low: float = 1.0, c_high: float = 1.0) -> bool:
    lo, hi = resonance_band(f, d, c_low, c_high)
    return lo <= p <= hi
