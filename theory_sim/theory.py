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


def resonance_band_full(n: int, d: int, s: float, eps: float = 0.0, varsigma: float = 0.0) -> tuple[float, float]:
    """Full form  n^{-1}  <=  p  <=  min{ n^{-(1+1/s)/2}, n^{-2(1+ε)²/s}, d^{1−ς}/n }."""
    upper = min(n ** (-(1 + 1 / s) / 2), n ** (-2 * (1 + eps) ** 2 / s), d ** (1 - varsigma) / n)
    return 1.0 / n, upper


def width_bound(n: int, p: float, s: float, eps: float = 0.0) -> float:
    """Width the theorem needs:  M >= n · p^{−s/(1−ε)²}  (linear in n, exponential in s)."""
    return n * p ** (-s / (1 - eps) ** 2)


def random_cosine_tail(c: float, d: int) -> float:
    """P(w·v ≥ c) for a uniformly random unit w and a fixed unit v in R^d (d ≥ 2), c ∈ [0, 1]: (w·v)² is
    Beta(1/2, (d−1)/2), so the tail is ½ · I_{1−c²}((d−1)/2, 1/2) (regularised incomplete beta)."""
    from scipy import special

    return 0.5 * float(special.betainc((d - 1) / 2, 0.5, 1.0 - c * c))


def planted_cosine(n: int, d: int, width: float, delta: float = 0.1) -> float:
    """c₀(n, d, M): the alignment a random start of ``width`` = M unit neurons in R^d gives *every* one of n
    features with probability ≥ 1 − δ — the largest c with (1 − (1 − q(c))^M)^n ≥ 1 − δ, q = ``random_cosine_tail``
    (the n features' maxima taken as independent: V's rows are nearly orthogonal). Solved in closed form:
    (1 − q)^M = α := 1 − (1 − δ)^{1/n}, q = 1 − α^{1/M} = −expm1(ln α / M), and c₀² = 1 − I⁻¹((d−1)/2, 1/2; 2q).
    For large M and d, c₀ ≈ √(2 ln(M n/δ) / d). docs/science.md §3 derives it and checks it by simulation."""
    from scipy import special

    if width < 1 or d < 2:
        return 0.0
    alpha = -math.expm1(math.log1p(-delta) / n)  # 1 − (1 − δ)^{1/n}, accurate for small δ/n
    q = -math.expm1(math.log(alpha) / width)  # P(one neuron ≥ c₀) needed
    if 2 * q >= 1:
        return 0.0
    x = float(special.betaincinv((d - 1) / 2, 0.5, 2 * q))
    return math.sqrt(max(0.0, 1.0 - x))


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


# ------------------------------------------------------------------------------------------ hypotheses per cell
#: every hypothesis a claim may require, in the order they are reported (docs/science.md §3):
#: data_model — V Gaussian, H uniformly s-sparse with unit magnitudes, no shared component or co-occurrence, no
#:   noise (the theorem's generative model); band_nondegenerate — the full band [1/n, upper] has room (upper >
#:   lower; not at s <= 2 with ς = 0, where n^{-2(1+ε)²/s} <= 1/n); band_full — p inside the full Thm 6.1 band
#:   with the stated ε, ς; band_simplified — p inside f ≤ p ≤ min(√f, f·d) with unit constants; width — M ≥ c_w ·
#:   n · p^{-s/(1-ε)²}, or for a planted start (Modified BA ``start = "planted"``) the planted c₀ at most what a random
#:   start of that width reaches (planted_cosine); steps — evaluated after T = ⌈1/ς⌉ steps or more; light — d ≥ √n;
#:   identifiable — groups do not always fire together (conditional co-firing r ≤ ``IDENTIFIABLE_MAX_R``).
HYPOTHESES = (
    "data_model",
    "band_nondegenerate",
    "band_full",
    "band_simplified",
    "width",
    "steps",
    "light",
    "identifiable",
)
#: above this conditional co-firing rate a group of features fires together so often that its members are,
#: for every method, close to one merged direction (the co-occurrence experiment's identifiability limit)
IDENTIFIABLE_MAX_R = 0.5


def steps_needed(varsigma: float) -> int:
    """T = ⌈1/ς⌉, the whole number of Modified-BA steps after which the theorem speaks."""
    return math.ceil(1.0 / varsigma - 1e-12)


def cell_hypotheses(cell: dict, eps: float = 0.0, varsigma: float = 0.0, c_width: float = 1.0) -> dict:
    """Each of HYPOTHESES for one cell: True (holds), False (fails) or None (cannot be evaluated: the cell
    has no target frequency p, s < 2 where the band's exponents lose meaning, ς = 0 for the steps).

    ``cell``: a results row or dict with n, d, s, width and, where present, p (target frequency), steps and
    the data fields (features, support, frequencies, magnitude, shared, cooccurrence, snr/noise_std,
    mixture_s, hierarchy_depth, correlation_rank, dictionary_bias)."""

    def get(k, default=None):
        v = cell.get(k, default) if hasattr(cell, "get") else getattr(cell, k, default)
        return default if v is None or (isinstance(v, float) and math.isnan(v)) else v

    n, d, s = int(get("n")), int(get("d")), get("s")
    p, width, steps = get("p"), get("width"), get("steps")
    out = dict.fromkeys(HYPOTHESES)
    out["data_model"] = bool(
        get("features", "gaussian") == "gaussian"
        and get("support", "exact") == "exact"
        and get("frequencies", "uniform") == "uniform"
        and get("magnitude", "constant") == "constant"
        and float(get("mag_value", 1.0)) == 1.0
        and float(get("shared", 0.0)) == 0.0
        and get("cooccurrence") is None
        and get("snr") is None
        and float(get("noise_std", 0.0)) == 0.0
        and int(get("hierarchy_depth", 0)) == 0
        and int(get("correlation_rank", 0)) == 0
        and float(get("dictionary_bias", 0.0)) == 0.0
        and get("mixture_s") in (None, "", "nan")
    )
    r = get("cooccurrence")
    out["identifiable"] = None if r is None else bool(float(r) <= IDENTIFIABLE_MAX_R)
    out["light"] = bool(d >= math.sqrt(n))
    if s is None or float(s) < 2:
        return out  # the band and width exponents are not defined for a cell without s >= 2
    s = float(s)
    lo, hi = resonance_band_full(n, d, s, eps, varsigma)
    out["band_nondegenerate"] = bool(hi > lo * (1 + 1e-9))
    if varsigma > 0 and steps is not None:
        out["steps"] = bool(int(steps) >= steps_needed(varsigma))
    if p is None:
        return out
    p = float(p)
    out["band_full"] = bool(lo <= p <= hi)
    out["band_simplified"] = in_band(p, s / n, d)
    if get("start") == "planted":
        # a planted start stands in for the theorem's width: it holds when the planted alignment is no more than
        # what a random start of c_w · n·p^(−s/(1−ε)²) neurons gives every feature (planted_cosine); unknown
        # before the run has said which c₀ it planted
        c0 = get("planted_cos_used")
        out["width"] = (
            None if c0 is None else bool(c0 <= planted_cosine(n, d, c_width * width_bound(n, p, s, eps)) + 1e-9)
        )
    elif width is not None and eps < 1:
        out["width"] = bool(int(width) >= c_width * width_bound(n, p, s, eps))
    return out


def inside(hyps: dict, required) -> bool | None:
    """Whether a cell is inside the claim's hypotheses: all ``required`` hold (True), one fails (False), or
    none fails but one cannot be evaluated (None: reported as such, never counted for or against)."""
    vals = [hyps.get(h) for h in required]
    if any(v is False for v in vals):
        return False
    return None if any(v is None for v in vals) else True
