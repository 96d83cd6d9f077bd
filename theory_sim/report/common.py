"""What the rules share: pooled intervals, grid-edge notes, the coarse grid's rows, band edges, power-law fits and
first crossings, number formatting."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .. import analysis as A


def _fmt(v, pct=False):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{100 * v:.1f} %" if pct else f"{v:.3g}"


def pooled(df: pd.DataFrame, metric: str = "frr_0.9") -> tuple[float, float, float]:
    """Mean of ``metric`` over the rows ``df`` (cells × seeds) with its interval: per seed, the mean over
    the cells; then analysis.seed_interval over those per-seed means (Wilson-widened for a fraction, with
    n × cells items per seed)."""
    if not len(df):
        return (math.nan, math.nan, math.nan)
    per_seed = df.groupby("seed")[metric].mean().to_numpy(float)
    n_items = None
    if A.is_fraction(metric):
        cells = max(1, len(df) // max(1, df["seed"].nunique()))
        n_items = int(df["n"].iloc[0]) * cells
    return A.seed_interval(per_seed, n_items)


def edge_flags(df: pd.DataFrame, axes: list[str], by: str = "frr_0.9") -> list[str]:
    """ "label: choice (high edge of a–b)" for every label whose best variant (tuned per cell by ``by``) sits
    on the edge of its grid somewhere: the baseline may not have been at its best."""
    t = A.tune_per_cell(A.done(df), axes, by, by=by)
    out = []
    for lab, g in t.groupby("label", sort=False):
        edges = sorted({e for e in g.tuned_edge if e})
        if edges:
            out.append(f"{lab}: {'; '.join(edges)}")
    return out


def unsettled_note(df: pd.DataFrame) -> str:
    """ " | Not converged, left out (they decide nothing): 4 of 30 runs (BA 3, GBA 1)", or "" when every finished
    run converged."""
    d = A.done(df)
    if not len(d):
        return ""
    bad = d[~A.converged(d)]
    if not len(bad):
        return ""
    per = ", ".join(f"{lab} {len(g)}" for lab, g in bad.groupby("label", sort=False))
    return f" | Not converged, left out (they decide nothing): {len(bad)} of {len(d)} runs ({per})"


def _edge_note(df, axes, by="frr_0.9") -> str:
    flags = edge_flags(df, axes, by)
    if not flags:
        return f" Every method's best choice (by {by}) lies inside its grid."
    return f" **Edge of grid — widen it** (best by {by} on a grid edge): " + "; ".join(flags) + "."


# ------------------------------------------------------------------------------------------ claims
# Every claim function takes the experiment's done-or-failed rows (and, where arrays are needed, the store)
# and returns {claim, paper, rule, ours, verdict}; the rule is fixed before the numbers are read, and every
# comparison in it is tri-state (analysis.at_least / at_most on 95 % intervals), so an interval that
# straddles a threshold yields "inconclusive" rather than a verdict.
def coarse_rows(df: pd.DataFrame, sweep) -> pd.DataFrame:
    """The rows of the sweep's coarse grid at its own seeds (all rows without a sweep): what a rule pools,
    so that refinement, which adds cells and seeds near boundaries, cannot move a pooled number."""
    if sweep is None or "cell_hash" not in df.columns:
        return df
    return df[df.cell_hash.isin({c.hash for c in sweep.cells})]


def band_edges(df: pd.DataFrame, metric: str = "frr_0.9", level: float = 0.5) -> dict:
    """Per d: the fitted crossings of ``level`` along p/f (analysis.crossings on per-seed values)."""
    out = {}
    for d, g in A.done(df).groupby("d"):
        xs, per, found = A.crossings_along(g, "p_over_f", metric, level)
        out[d] = {"xs": xs, "crossings": found, "means": [float(np.mean(v)) for v in per]}
    return out


def _log2_width(e: dict) -> tuple[float, float, float, bool]:
    """The band's width in log2(p/f) at one d, with bounds from the crossings' intervals; open=True when
    recovery reaches the grid's lowest p/f (then the width is a lower bound)."""
    xs, cr, means = e["xs"], e["crossings"], e["means"]
    if max(means) < 0.5:
        return (0.0, 0.0, 0.0, False)
    rise = [c for c in cr if c["direction"] == "rising"]
    fall = [c for c in cr if c["direction"] == "falling"]
    lo = rise[0] if rise else None
    hi = fall[-1] if fall else None
    lo_v = (lo["estimate"], lo.get("low", math.nan), lo.get("high", math.nan)) if lo else (xs[0],) * 3
    hi_v = (hi["estimate"], hi.get("low", math.nan), hi.get("high", math.nan)) if hi else (xs[-1],) * 3
    w = math.log2(hi_v[0] / lo_v[0])
    w_lo = math.log2(hi_v[1] / lo_v[2]) if not (math.isnan(hi_v[1]) or math.isnan(lo_v[2])) else w
    w_hi = math.log2(hi_v[2] / lo_v[1]) if not (math.isnan(hi_v[2]) or math.isnan(lo_v[1])) else w
    return (w, min(w, w_lo), max(w, w_hi), lo is None)


def _edge_text(c) -> str:
    iv = f" [{c['low']:.3g}, {c['high']:.3g}]" if not math.isnan(c["low"]) else ""
    return f"{c['direction']} at p/f = {c['estimate']:.3g}{iv} (bracket {c['lower']:.3g}–{c['upper']:.3g})"


def power_law_fit(xs, ests, lows, highs, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Exponent α of y ∝ x^α through points (xs, ests) with 95 % intervals [lows, highs] (all > 0): least
    squares in log–log; its interval from a parametric bootstrap that redraws each log y from a normal
    whose 95 % interval is the point's (a point without an interval keeps its estimate). NaN with < 2 points."""
    x, y = np.log(np.asarray(xs, float)), np.log(np.asarray(ests, float))
    if len(x) < 2 or np.ptp(x) == 0:
        return (math.nan, math.nan, math.nan)
    lo, hi = np.log(np.asarray(lows, float)), np.log(np.asarray(highs, float))
    sd = np.where(np.isfinite(lo) & np.isfinite(hi), (hi - lo) / (2 * 1.96), 0.0)
    slope = float(np.polyfit(x, y, 1)[0])
    rng = np.random.default_rng(seed)
    reps = [np.polyfit(x, y + rng.normal(0, 1, len(y)) * sd, 1)[0] for _ in range(n_boot)]
    if len(x) == 2 and not sd.any():
        return (slope, math.nan, math.nan)
    lo_a, hi_a = np.percentile(reps, [2.5, 97.5])
    return (slope, float(lo_a), float(hi_a))


def first_crossing(g: pd.DataFrame, axis: str, direction: str, metric: str = "frr_0.9") -> dict | None:
    """The first fitted 50 % crossing of ``metric`` along ``axis`` going ``direction`` ("rising" | "falling")
    among the rows ``g``, or None (analysis.crossings_along)."""
    return next((c for c in A.crossings_along(g, axis, metric)[2] if c["direction"] == direction), None)


def exponent(pts: list) -> tuple[float, float, float]:
    """``power_law_fit`` through (x, estimate, low, high) points: NaN with fewer than 3."""
    if len(pts) < 3:
        return (math.nan,) * 3
    return power_law_fit(*zip(*pts))


def _clip01(iv):
    """An interval of a fraction kept inside [0, 1] (a t interval of values near 0 can reach below)."""
    m, lo, hi = iv
    return (m, max(0.0, lo) if lo == lo else lo, min(1.0, hi) if hi == hi else hi)


def _within(iv, target: float, tol: float):
    """Tri-state: the interval inside [target − tol, target + tol] (True), wholly outside (False), or not."""
    m, lo, hi = iv
    if math.isnan(m):
        return None
    lo, hi = (m, m) if math.isnan(lo) else (lo, hi)
    if target - tol <= lo and hi <= target + tol:
        return True
    if hi < target - tol or lo > target + tol:
        return False
    return None


def _consistency_diff(pa: list, pb: list):
    """(mean, low, high) of consistency(a) − consistency(b) over a bootstrap of the shared seeds (pa, pb:
    (i, j, value) triples from analysis.seed_pair_consistency(with_seeds=True)); NaN bounds below 3 seeds."""
    return A.seed_bootstrap_pairs([pa, pb], lambda means: means[0] - means[1])


def describe(df, x, metric="frr_0.9") -> str:
    df = A.done(df)
    df = df.assign(variant=A.variant_labels(df, [x]))
    return "; ".join(
        f"{lab}: " + ", ".join(f"{x}={v:g} → {A.fmt_interval(pooled(c, metric))}" for v, c in g.groupby(x))
        for lab, g in df.groupby("variant", sort=False)
    )
