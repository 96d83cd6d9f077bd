"""``theory-sim reproduce``: run the paper's experiments, draw their figures, write REPORT.md.

Every verdict is computed from the stored results by a rule stated next to it in the report (no number is
typed in by hand except the paper's own, which live in the sweep files' ``[report.paper]`` tables). Each
experiment's rule is one entry of ``CLAIMS``; a new experiment is a sweep file plus one rule there.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from . import analysis as A
from . import theory
from .errors import ConfigError
from .outputs import atomic_file
from .plots import plot_sweep
from .store import Store, load_results
from .sweep import load_sweep, run_sweep

EXPERIMENTS = (
    "theorem",
    "resonance",
    "cooccurrence",
    "width_magnitude",
    "imbalanced",
    "phase",
    "noise",
    "frontier",
    "synthbench",
)
SWEEP_DIR = Path(__file__).resolve().parent.parent / "sweeps"


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


def _variant(df, **kw):
    """Rows of one method variant: hyperparameter columns equal to the given values."""
    m = pd.Series(True, index=df.index)
    for k, v in kw.items():
        m &= df[k] == v if k in df.columns else False
    return df[m]


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


def _edge_note(df, axes, by="frr_0.9") -> str:
    flags = edge_flags(df, axes, by)
    if not flags:
        return f" Every method's best choice (by {by}) lies inside its grid."
    return f" **Edge of grid — widen it** (best by {by} on a grid edge): " + "; ".join(flags) + "."


def _any(conds):
    """Tri-state OR."""
    if any(c is True for c in conds):
        return True
    return None if any(c is None for c in conds) else False


def _all(conds):
    """Tri-state AND."""
    if any(c is False for c in conds):
        return False
    return None if any(c is None for c in conds) else True


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


def claim_theorem(df, store=None, sweep=None) -> dict:
    """Thm 6.1 held to its own hypotheses: the cells inside them (``[theory] require``, computed per cell) are
    judged one by one at the sweep's ``[report] metric`` after the steps the cell ran (T = ⌈1/ς⌉ in the
    sweep, 2T in the budget check); cells outside are reported beside, never counted."""
    rep = getattr(sweep, "report", None) or {}
    metric = rep.get("metric", "frr_0.99")
    need = float(rep.get("frr_threshold", 0.95))
    th = getattr(sweep, "theory", None) or {}
    eps, vs = th.get("eps", 0.0), th.get("varsigma", 0.0)
    df = A.done(df)
    n, s_ = int(df.n.iloc[0]), float(df.s.iloc[0])
    chance_col = "chance_" + metric
    ins = A.inside_rows(df)
    keys = ["label", "d", "p_over_f"]
    per_cell, lines = [], []
    for (lab, d, pf), g in ins.groupby(keys, sort=True):
        iv = pooled(g, metric)
        ch = pooled(g, chance_col) if chance_col in g.columns else (math.nan,) * 3
        above_chance = A.at_least(A.difference_interval(g[metric], g[chance_col]), 0.5) if chance_col in g else None
        cond = _all([A.at_least(iv, need), above_chance])
        per_cell.append(cond)
        everything = float((g[metric] >= 1.0 - 1e-9).mean())
        lines.append(
            f"{lab}, d = {int(d)}, p/f = {pf:g} (after {int(g.train_steps.iloc[0])} steps): {A.fmt_interval(iv)}, "
            f"random init {A.fmt_interval(ch)}; every feature recovered in {everything:.0%} of {len(g)} seeds; "
            f"FRR@0.9 {A.fmt_interval(pooled(g, 'frr_0.9'))}"
            + (f", one-to-one {A.fmt_interval(pooled(g, 'frr_matched_0.9'))}" if "frr_matched_0.9" in g else "")
        )
    outside = df[df["inside"].map(lambda v: v is False)] if "inside" in df.columns else df.iloc[:0]
    why_out = []
    for (lab, d, pf), g in outside.groupby(keys, sort=True):
        failed = [h for h in theory.HYPOTHESES if f"hyp_{h}" in g and g[f"hyp_{h}"].iloc[0] is False]
        failed = [h for h in failed if h in th.get("require", [])]
        why_out.append(
            f"{lab}, d = {int(d)}, p/f = {pf:g}: {A.fmt_interval(pooled(g, metric))} (outside: {', '.join(failed)})"
        )
    f = s_ / n
    lo_full, hi_full = theory.resonance_band_full(n, int(df.d.min()), s_, eps, vs)
    lo_s, hi_s = theory.resonance_band_ratio(f, int(df.d.min()))
    verdict = A.verdict(per_cell, primary=False) if per_cell else "not testable: no cell inside the hypotheses"
    prob = theory.success_probability(n, eps) if eps > 0 else math.nan
    return {
        "claim": "Modified BA recovers every feature (cos ≥ 1 − o(1)) after T = 1/ς steps with probability ≥ "
        "1 − n^{−4ε}, for p in the full band and width M ≳ n·p^{−s/(1−ε)²} (Thm 6.1)",
        "paper": "every feature, probability ≥ 1 − n^{−4ε}, T = 1/ς steps",
        "rule": f"only cells inside the hypotheses ({', '.join(th.get('require', [])) or 'none'}; ε = {eps:g}, "
        f"ς = {vs:g}, computed per cell) count. Each such cell, cell by cell: {metric} after the cell's steps "
        f"≥ {need:.0%} (seed interval, Wilson-widened) and ≥ 50 points above the same random dictionary before "
        f"any step (Welch interval). Reproduced if every inside cell passes; not reproduced if every "
        "decided cell fails; partly otherwise; undecided intervals make it inconclusive. The theorem's probability "
        f"1 − n^(−4ε) = {prob:.2f} at n = {n} is reported, not tested (3 seeds cannot test it)",
        "ours": f"Inside the hypotheses: {'; '.join(lines) or 'no cell'} | Outside (not counted): "
        f"{'; '.join(why_out) or 'none'} | The two band forms at n = {n}, s = {s_:g}: full Thm 6.1 band "
        f"p/f ∈ [{lo_full / f:.3g}, {hi_full / f:.3g}] (ε = {eps:g}, ς = {vs:g}; its upper edge "
        f"min(n^(−(1+1/s)/2), n^(−2(1+ε)²/s), d^(1−ς)/n) at the smallest d); simplified band f ≤ p ≤ min(√f, f·d) "
        f"with unit constants p/f ∈ [{lo_s:g}, {hi_s:.3g}] — the constants the simplification hides are not "
        f"1 at this n: the full band lies {'below' if hi_full < f else 'around'} p = f",
        "verdict": verdict,
    }


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


def claim_resonance(df, store=None, sweep=None) -> dict:
    rep = getattr(sweep, "report", None) or {}
    roles = getattr(sweep, "roles", None) or {}
    df = A.done(df)
    n = int(df.n.iloc[0])
    f = float(df.s.iloc[0]) / n
    ref_labels = [lab for lab, r in roles.items() if r == "identifiability"]
    ref = df[df.label.isin(ref_labels)]
    df = A.inside_rows(df[df.method == "ba"])
    # identifiability, per d: the reference (TopK, k = s) recovers the features of these data at this budget
    thr = rep.get("identifiable_frr", 0.9)
    ident = {d: float(g["frr_0.9"].mean()) for d, g in ref.groupby("d")}
    not_ident = sorted(d for d, v in ident.items() if v < thr)
    id_txt = ", ".join(f"d = {int(d)}: {_fmt(v, True)}" for d, v in sorted(ident.items()))
    df = df[~df.d.isin(not_ident)]
    # a run counts at its p/f only once its neurons reached the cap, its loss and its recovery settled; the
    # others are left out of the fits, with the frequency their neurons did reach (L0 / width) reported
    ok_rows = A.converged(df)
    achieved = df.l0 / df.width / f
    nc = df[~ok_rows].groupby("p_over_f").size().reindex(sorted(df.p_over_f.unique()), fill_value=0)
    total = df.groupby("p_over_f").size().reindex(nc.index)
    nc_txt = ", ".join(
        f"{k:g}: {int(v)}/{int(total[k])} (reached p/f ≈ {achieved[(~ok_rows) & (df.p_over_f == k)].median():.3g})"
        for k, v in nc.items()
        if v
    )
    floor = ""
    low = df[df.p_over_f <= 0.125]
    low_ok = bool(len(low)) and bool(A.converged(low).all())
    reached_low = (
        f" | At p/f ≤ 1/8 every run converged, its neurons at p/f ≈ "
        f"{', '.join(f'{k:g}→{v:.3g}' for k, v in (low.l0 / low.width / f).groupby(low.p_over_f).median().items())}"
        if low_ok
        else ""
    )
    coarse = coarse_rows(df, sweep)  # the coarse grid's d and p/f values, whether or not their runs converged
    df = df[ok_rows]
    if df.empty:
        return {
            "claim": "Neuron resonance: recovery only inside a band around p ≈ f; the band is wider when d > √n",
            "paper": "heatmaps: a band around p/f ≈ 1, narrow in heavy, wide in light superposition",
            "rule": "as below",
            "ours": f"no run converged (not converged by p/f: {nc_txt}{floor})",
            "verdict": "inconclusive",
        }
    # the band is read along p/f at the d values of the coarse grid (each has every p/f value, refined ones
    # added near its edges); d values a refinement along d added carry only the p/f columns it bisected, and
    # are read along d instead: where recovery switches on
    coarse_d, coarse_p = sorted(coarse.d.unique()), sorted(coarse.p_over_f.unique())
    edges = band_edges(df[df.d.isin(coarse_d)])
    transitions = []
    for pf, g in df[df.p_over_f.isin(coarse_p)].groupby("p_over_f"):
        for c in A.crossings_along(g, "d", "frr_0.9")[2]:
            iv = f" [{c['low']:.3g}, {c['high']:.3g}]" if not math.isnan(c["low"]) else ""
            transitions.append(
                f"p/f = {pf:g}: {c['direction']} at d = {c['estimate']:.3g}{iv} (bracket {c['lower']:g}–{c['upper']:g})"
            )
    lines, upper_ok, lower_found = [], [], []
    widths = {}
    for d, e in edges.items():
        theory_hi = theory.resonance_band_ratio(f, d)[1]
        txt = (
            "; ".join(_edge_text(c) + f", resolved to a factor {c['upper'] / c['lower']:.3g}" for c in e["crossings"])
            or "no crossing of 50 %"
        )
        lines.append(f"d = {int(d)}: {txt} (peak {_fmt(max(e['means']), True)}; theory's upper edge {theory_hi:.3g})")
        fall = [c for c in e["crossings"] if c["direction"] == "falling"]
        peak = max(range(len(e["xs"])), key=lambda i: e["means"][i])
        g = df[(df.d == d) & (df.p_over_f == e["xs"][peak])]
        upper_ok.append(_all([A.at_least(pooled(g), 0.8), True if fall else False]))
        lower_found.append(any(c["direction"] == "rising" for c in e["crossings"]))
        widths[d] = _log2_width(e)
    heavy = [widths[d] for d in widths if theory.superposition_regime(n, d) == "heavy"]
    light = [widths[d] for d in widths if d > math.sqrt(n)]  # d = √n itself sits on the transition: neither
    wider = None
    if heavy and light:
        lo_light, hi_heavy = max(w[1] for w in light), max(w[2] for w in heavy)
        hi_light, lo_heavy = max(w[2] for w in light), max(w[1] for w in heavy)
        wider = True if lo_light > hi_heavy else (False if hi_light <= lo_heavy else None)
    lower = True if any(lower_found) else (False if low_ok else None)
    ok = [_any(upper_ok), lower, wider]
    conditions = {"upper edge": ok[0], "lower edge": ok[1], "wider when light": ok[2]}
    wtxt = ", ".join(
        f"{int(d)}: {w[0]:.1f} [{w[1]:.1f}, {w[2]:.1f}]{' (open below: a lower bound)' if w[3] else ''}"
        for d, w in widths.items()
    )
    return {
        "claim": "Neuron resonance: recovery only inside a band around p ≈ f; the band is wider when d > √n",
        "paper": "heatmaps: a band around p/f ≈ 1, narrow in heavy, wide in light superposition",
        "rule": "BA cells inside the hypotheses, at d where the identifiability reference (TopK, k = s) recovers ≥ "
        f"{thr:.0%} of the features; per d, the 50 % crossings of FRR@0.9 along p/f are fitted (logistic in log p/f "
        "on the per-seed values of converged runs — neurons within 2× of their frequency cap, loss and recovery "
        "settled; a run that missed its cap was not run at its p/f — bootstrap interval over seeds). (1) at some d "
        "the peak FRR is ≥ 80 % (interval) and recovery falls through 50 % above it (an upper edge); (2) a lower "
        "edge (a rising crossing) is found at some d — if none is found and every run at p/f ≤ 1/8 converged, the "
        "lower edge is absent (failed), if they did not converge it is undecided; (3) the widest light-"
        "superposition band (d > √n, width in log2 p/f between its edges) is wider than the widest heavy one "
        "beyond both intervals. Reproduced if all three; partly if (1) and not all. The unit-constant band "
        f"min(√f, f·d) kinks at d = √(n/s) = {math.sqrt(1 / f):.3g}, not at √n",
        "ours": "Crossings along p/f: "
        + " | ".join(lines)
        + f" | Band widths (log2 p/f): {wtxt} | Where recovery switches on along d (√n = {math.sqrt(n):g}): "
        + ("; ".join(transitions) or "no crossing")
        + (
            ""
            if any(lower_found)
            else f" | No lower edge down to p/f = {min(df.p_over_f):g}: no lower edge was found on this grid"
        )
        + reached_low
        + f" | Identifiability reference (TopK, k = s) FRR@0.9 by d: {id_txt or 'not run'}"
        + (
            f"; d left out (reference below {thr:.0%}): {', '.join(str(int(d)) for d in not_ident)}"
            if not_ident
            else ""
        )
        + (
            f" | Runs not converged (frequencies above their cap, loss or recovery still moving), left out of the "
            f"fits (p/f: runs): {nc_txt}{floor}"
            if nc_txt
            else ""
        ),
        "verdict": A.verdict(ok),
        "conditions": conditions,
    }


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


def claim_cooccurrence(df, store=None, sweep=None) -> dict:
    roles = getattr(sweep, "roles", None) or {}
    judged = [lab for lab, r in roles.items() if r == "paper_ba"] or ["BA"]
    df = A.inside_rows(A.done(df))  # identifiable co-occurrence only (r ≤ theory.IDENTIFIABLE_MAX_R)
    df = df.assign(variant=A.variant_labels(df, ["cooccurrence", "n", "d"]))
    rows, ok, fits = [], [], []
    for lab, g in df.groupby("variant", sort=False):
        pts = []
        for n, gn in g.groupby("n"):
            thr = theory.cooccurrence_threshold(int(n))
            c = first_crossing(gn, "cooccurrence", "falling")
            if c:
                pts.append((n, c["estimate"], c["low"], c["high"]))
                rows.append(
                    f"{lab}, n = {int(n)}: r₅₀ = {c['estimate']:.3g} [{c['low']:.3g}, {c['high']:.3g}] "
                    f"(bracket {c['lower']:.3g}–{c['upper']:.3g}) = {c['estimate'] / thr:.2g} × n^(−1/2)"
                )
            else:
                top = gn.groupby("cooccurrence")["frr_0.9"].mean()
                rows.append(
                    f"{lab}, n = {int(n)}: no fall through 50 % (FRR@0.9 {_fmt(top.iloc[0], True)} at r = "
                    f"{top.index[0]:.3g} → {_fmt(top.iloc[-1], True)} at r = {top.index[-1]:.3g})"
                )
        alpha = exponent(pts)
        fits.append(f"{lab}: α = {A.fmt_interval(alpha, pct=False)} from {len(pts)} n")
        if g.label.iloc[0] in judged:
            if len(pts) < 3:
                ok.append(None)  # an r₅₀ missing at some n: the exponent is not measured
            else:
                ok.append(_within(alpha, -0.5, 0.25))
    return {
        "claim": "Recovery degrades once the co-occurrence ρ₂ passes n^{-1/2}: the co-occurrence at which it "
        "halves scales as n^{-1/2}",
        "paper": "FRR falls past ρ₂ ≈ n^{-1/2}",
        "rule": "identifiable cells only (r ≤ 0.5). Per n, the co-occurrence r₅₀ where FRR@0.9 falls through 50 % "
        "is fitted (analysis.crossings: seeds and fit form in its interval); the exponent α of r₅₀ ∝ n^α is a "
        "log–log least-squares fit over ≥ 3 n with a parametric bootstrap interval. For the paper's BA: "
        "reproduced if α's interval lies within −½ ± ¼, not reproduced if it lies wholly outside, inconclusive "
        "if it straddles or an r₅₀ is missing at some n; the other methods are shown, not judged",
        "ours": "; ".join(rows) + " | Exponents: " + "; ".join(fits) + "." + _edge_note(df.drop(columns="variant"), []),
        "verdict": A.verdict(ok),
        "conditions": {"BA's exponent within −½ ± ¼": ok[0] if ok else None},
    }


def magnitude_width_table(g: pd.DataFrame, store, bins: int) -> pd.DataFrame:
    """Per row of ``g`` (one method variant) and magnitude bin: the fraction of the bin's features recovered
    (FRR@0.9). Bins are log-spaced over the features' h range, so log-uniform magnitudes fill them equally.
    Columns: width, seed, bin, h (the bin's geometric centre), frr_0.9."""
    per_row = []
    for _, r in g.iterrows():
        hs, rec = A.magnitude_recovery(g.loc[[r.name]], store)
        if len(hs):
            per_row.append((r, hs, rec))
    if not per_row:
        return pd.DataFrame(columns=["width", "seed", "bin", "h", "frr_0.9"])
    lo = min(float(h.min()) for _, h, _ in per_row)
    hi = max(float(h.max()) for _, h, _ in per_row)
    edges = np.geomspace(lo, hi * (1 + 1e-9), bins + 1)
    out = []
    for r, hs, rec in per_row:
        idx = np.clip(np.searchsorted(edges, hs, side="right") - 1, 0, bins - 1)
        for k in range(bins):
            m = idx == k
            if m.any():
                out.append(
                    {
                        "width": r.width,
                        "seed": r.seed,
                        "bin": k,
                        "h": math.sqrt(edges[k] * edges[k + 1]),
                        "frr_0.9": float(rec[m].mean()),
                    }
                )
    return pd.DataFrame(out)


def claim_width_magnitude(df, store: Store, sweep=None) -> dict:
    rep = getattr(sweep, "report", None) or {}
    roles = getattr(sweep, "roles", None) or {}
    judged = [lab for lab, r in roles.items() if r == "paper_ba"] or ["BA"]
    bins = int(rep.get("magnitude_bins", 4))
    df = A.done(df)
    parts, ok = [], []
    for lab, g in df.groupby("label", sort=False):
        by_w = {w: pooled(gw) for w, gw in g.groupby("width")}
        ws = sorted(by_w)
        gain = (
            A.difference_interval(
                g[g.width == ws[-1]].groupby("seed")["frr_0.9"].mean(),
                g[g.width == ws[0]].groupby("seed")["frr_0.9"].mean(),
            )
            if len(ws) > 1
            else (math.nan,) * 3
        )
        t = magnitude_width_table(g, store, bins)
        pts, m50 = [], []
        for k, gk in t.groupby("bin"):
            c = first_crossing(gk, "width", "rising")
            h = float(gk.h.iloc[0])
            if c:
                pts.append((h, c["estimate"], c["low"], c["high"]))
                m50.append(f"h ≈ {h:.2g}: M₅₀ = {c['estimate']:.3g} [{c['low']:.3g}, {c['high']:.3g}]")
            else:
                top = gk.groupby("width")["frr_0.9"].mean()
                m50.append(
                    f"h ≈ {h:.2g}: no 50 % crossing ({_fmt(top.iloc[0], True)} at M = {int(top.index[0])}, "
                    f"{_fmt(top.iloc[-1], True)} at M = {int(top.index[-1])})"
                )
        slope = exponent(pts)
        parts.append(
            f"{lab}: FRR@0.9 by width "
            + ", ".join(f"{int(w)}: {A.fmt_interval(v)}" for w, v in by_w.items())
            + f" (gain {A.fmt_interval(gain)}); "
            + "; ".join(m50)
            + f"; slope of log M₅₀ on log h {A.fmt_interval(slope, pct=False)} (theory −2)"
        )
        if lab in judged:
            ok += [A.at_least(gain, 0.1), _within(slope, -2.0, 1.0) if len(pts) >= 3 else None]
    return {
        "claim": "Recovery needs width; weak features (small h_i) need more: width ∝ 1/h²",
        "paper": "FRR rises with M; feature balance matters",
        "rule": f"for the paper's BA: (1) FRR@0.9 at the largest width exceeds the smallest by ≥ 10 points (Welch "
        f"interval); (2) features split into {bins} log-spaced magnitude bins, the width M₅₀(h) at which half a "
        "bin's features are recovered is fitted per bin (analysis.crossings), and the slope of log M₅₀ on log h "
        "(log–log least squares, parametric bootstrap interval) lies within −2 ± 1. Reproduced if both, partly if "
        "one, not reproduced if neither; a slope missing (fewer than 3 bins cross) leaves (2) undecided. The "
        "other methods are shown, not judged",
        "ours": " | ".join(parts) + ".",
        "verdict": A.verdict(ok, primary=False),
        "conditions": dict(zip(("FRR rises with width", "M₅₀ slope within −2 ± 1"), ok)),
    }


def claim_imbalanced(df, store=None, sweep=None) -> dict:
    """The paper's table under the one reading the sweep file fixes before the run (its data as written);
    other readings are switches at the deciding cells (verdicts.json ``switches_tried``)."""
    paper = (getattr(sweep, "report", None) or {}).get("paper", {})
    roles = getattr(sweep, "roles", None) or {}
    df = A.reading_labels(A.done(df))
    rows, gba_m, rest_m = [], [], []
    for lab, g in df.groupby("label", sort=False):
        if g.method.iloc[0] == "topk" and g.k.nunique() > 1:
            continue  # the K axis is summarised below
        a8, a9 = pooled(g, "frr_0.8"), pooled(g, "frr_0.9")
        ref = paper.get(lab)
        readings = sorted(set(g.reading))
        rd = lab if readings == [lab] else " / ".join(readings)
        rows.append(
            f"{rd}: ours {A.fmt_interval(a8)} / {A.fmt_interval(a9)}"
            + (f" vs paper {ref[0]} / {ref[1]} %" if ref else " (not in the paper)")
        )
        if ref:
            match = _all([_within(a8, ref[0] / 100, 0.10), _within(a9, ref[1] / 100, 0.10)])
            (gba_m if roles.get(lab) == "gba_covers_f" else rest_m).append(match)
    topk = df[df.method == "topk"]
    ktxt = ", ".join(f"K={int(k)} {A.fmt_interval(pooled(g, 'frr_0.9'))}" for k, g in topk.groupby("k"))
    return {
        "claim": "Imbalanced set (half s = 3, half s = 20): GBA with a TAF range covering f recovers ≈ 100 % at "
        "τ = 0.9 while TopK with K = 30, 50 falls to ≈ 24 % and GBA with a wrong range to ≈ 4 %",
        "paper": "FRR@0.8 / 0.9 (%): " + "; ".join(f"{k} {v[0]} / {v[1]}" for k, v in paper.items()),
        "rule": "the reading fixed in the sweep file before the run (raw rows, as the paper describes the data). "
        "A row matches the paper when both its 95 % intervals lie within 10 points of the paper's numbers (no "
        "match when both lie outside; otherwise undecided). Reproduced if every paper row matches — the "
        "wrong-range contrast included — partly if a GBA range covering f matches but other rows do not",
        "ours": "; ".join(rows) + f". TopK's whole K axis, FRR@0.9: {ktxt}",
        "verdict": A.verdict([_any(gba_m), _all(gba_m + rest_m)]),
        "conditions": {"a GBA range covering f matches": _any(gba_m), "every paper row matches": _all(gba_m + rest_m)},
    }


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


def claim_frontier(df, store: Store, sweep=None) -> dict:
    roles = getattr(sweep, "roles", None) or {}
    by_role = {r: lab for lab, r in roles.items()}
    gba, topk = by_role.get("paper_gba", "GBA"), by_role.get("topk_reference", "TopK")  # roles, not label text
    df = A.done(df).copy()
    df["series"] = A.variant_labels(df, ["frequencies"])
    s = float(df.s.iloc[0])
    kinds = sorted(df["frequencies"].dropna().unique()) if "frequencies" in df.columns else [None]
    ok, parts, conds = [], [], {}
    for kind in kinds:
        d = df if kind is None else df[df.frequencies == kind]
        means = d.groupby(["label", "series"])[["l0", "fvu"]].mean()
        sparse = means[means.l0 <= 2 * s]
        cons, fvu = {}, {}
        for (lab, ser), _ in sparse.iterrows():
            pairs = A.seed_pair_consistency(d[d.series == ser], store, with_seeds=True)
            if pairs:
                iv = A.consistency_interval(pairs)
                if lab not in cons or iv[0] > cons[lab][1][0]:
                    cons[lab] = (ser, iv, pairs)
        for lab, g in sparse.reset_index().groupby("label"):
            ser = g.loc[g.fvu.idxmin(), "series"]
            fvu[lab] = (ser, A.seed_interval(d[d.series == ser].fvu.to_numpy(float)))
        gba_sparse = [ser for (lab, ser) in sparse.index if lab == gba]
        c1 = A.at_least(_consistency_diff(cons[gba][2], cons[topk][2]), 1e-9) if gba in cons and topk in cons else None
        if gba in fvu and topk in fvu:
            g_iv, t_iv = fvu[gba][1], fvu[topk][1]
            others = [fvu[k][1] for k in fvu if k not in (gba, topk)]
            c2 = _all(
                [A.at_most(g_iv, 1.2 * t_iv[0])]
                + [A.at_most(g_iv, o[0]) if not math.isnan(o[0]) else None for o in others]
            )
        else:
            c2 = False if topk in fvu else None  # GBA without a variant at L0 ≤ 2s cannot be on the frontier
        if gba not in cons and topk in cons:
            c1 = False
        ok += [c1, c2]
        conds[f"{kind or 'data'}: GBA more consistent"] = c1
        conds[f"{kind or 'data'}: GBA on the frontier"] = c2
        name = f"{kind} frequencies" if kind else "the data"
        diff = _consistency_diff(cons[gba][2], cons[topk][2]) if gba in cons and topk in cons else (math.nan,) * 3
        parts.append(
            f"{name}: GBA variants at L0 ≤ {2 * s:g}: {', '.join(gba_sparse) or 'none'} | consistency (cos ≥ 0.9 "
            "partner; seed-bootstrap interval), most consistent variant at L0 ≤ 2s per method: "
            + ", ".join(f"{k} {A.fmt_interval(_clip01(v[1]))} ({v[0]})" for k, v in cons.items())
            + f"; GBA − TopK {A.fmt_interval(diff, pct=False)} | best FVU at L0 ≤ {2 * s:g}: "
            + ", ".join(f"{k} {A.fmt_interval(v[1], pct=False)} ({v[0]})" for k, v in fvu.items())
        )
    return {
        "claim": "GBA reaches the TopK sparsity–loss frontier, far better than L1 and BA, and is more consistent "
        "across seeds than TopK (LLM claims; here their synthetic analogue, on uniform and Zipf frequencies)",
        "paper": "LLM-scale figures (not reproducible here)",
        "rule": f"per data kind, among each method's variants with mean L0 ≤ 2s = {2 * s:g}: (1) GBA's most consistent "
        "variant is more consistent than TopK's (bootstrap over seeds of the difference above 0 — seeds, not the "
        "ordered seed pairs, are the independent units); (2) GBA's lowest FVU is within 20 % of TopK's and below "
        "every other method's best. Reproduced if every condition holds on every data kind, not reproduced if "
        "none does, partly otherwise; a GBA without a variant at L0 ≤ 2s fails both",
        "ours": " | ".join(parts) + ".",
        "verdict": A.verdict(ok, primary=False),
        "conditions": conds,
    }


def claim_phase(df, store=None, sweep=None) -> dict:
    df = coarse_rows(A.done(df), sweep)  # summaries over the coarse grid (refined s values: the figure, boundary)
    parts = []
    for lab, g in df.groupby("label", sort=False):
        t = A.tune_per_cell(g, ["s", "shared"], "frr_0.9", by="frr_0.9")
        cells = [(k, pooled(c)) for k, c in t.groupby(["s", "shared"])]
        (s_, sh), best = max(cells, key=lambda kv: kv[1][0])
        ev = A.tune_per_cell(g, ["s", "shared"], "frr_0.9", by="explained_variance")
        parts.append(
            f"{lab}: easiest cell (s = {s_:g}, a = {sh:g}) {A.fmt_interval(best)} tuned by FRR (oracle; "
            f"{t[(t.s == s_) & (t.shared == sh)].tuned_choice.iloc[0] or 'one variant'}); mean over cells "
            f"tuned by FRR {A.fmt_interval(pooled(t))}, by EV {A.fmt_interval(pooled(ev))}"
        )
    return {
        "claim": "(design's phase diagram) FRR over sparsity × incoherence for every method, each at its best",
        "paper": "—",
        "rule": "descriptive: each method tuned per cell over its grid (decades and matched L0)",
        "ours": "; ".join(parts) + "." + _edge_note(df, ["s", "shared"]),
        "verdict": "measured",
    }


def describe(df, x, metric="frr_0.9") -> str:
    df = A.done(df)
    df = df.assign(variant=A.variant_labels(df, [x]))
    return "; ".join(
        f"{lab}: " + ", ".join(f"{x}={v:g} → {A.fmt_interval(pooled(c, metric))}" for v, c in g.groupby(x))
        for lab, g in df.groupby("variant", sort=False)
    )


def claim_noise(df, store=None, sweep=None) -> dict:
    return {
        "claim": "(no claim in the paper) FRR vs SNR",
        "paper": "—",
        "rule": "descriptive",
        "ours": describe(df, "snr") + "." + _edge_note(df, ["snr"]),
        "verdict": "measured",
    }


def claim_synthbench(df, store=None, sweep=None) -> dict:
    """GBA against every baseline on a SynthSAEBench-style world, each at its best at matched L0 (the sweep's
    [report] metric and l0_window, fixed before the run)."""
    rep = getattr(sweep, "report", None) or {}
    metric = rep.get("metric", "mcc")
    lo_f, hi_f = rep.get("l0_window", [0.5, 2.0])
    roles = getattr(sweep, "roles", None) or {}
    df = A.done(df).copy()
    df["series"] = A.variant_labels(df)
    l0_data = float(df["data_s_mean"].mean()) if "data_s_mean" in df.columns else float(df["s"].iloc[0])
    lo, hi = lo_f * l0_data, hi_f * l0_data
    best = {}  # label → (series, per-seed rows)
    for lab, g in df.groupby("label"):
        m = g.groupby("series")[["l0", metric]].mean()
        m = m[(m.l0 >= lo) & (m.l0 <= hi)]
        if len(m):
            ser = m[metric].idxmax()
            best[lab] = (ser, g[g.series == ser])
    gba = [lab for lab, r in roles.items() if r == "paper_gba"]
    base = [lab for lab, r in roles.items() if r == "baseline"]
    conds = []
    if gba and gba[0] in best:
        g_vals = best[gba[0]][1][metric].to_numpy(float)
        for b in base:
            if b in best:
                conds.append(A.at_least(A.difference_interval(g_vals, best[b][1][metric].to_numpy(float)), 1e-9))
    else:
        conds.append(False)  # GBA has no variant at matched L0: it cannot win there
    rows = []
    for lab, (ser, g) in best.items():
        n_feat = int(g["n"].iloc[0])
        cols = []
        for k in ("mcc", "f1", "f1_alive", "frr_0.9", "l0"):
            if k in g.columns:  # a recovery fraction's interval is Wilson-widened over the n features
                iv = A.seed_interval(g[k].to_numpy(float), n_feat if k == "frr_0.9" else None)
                cols.append(f"{k} {A.fmt_interval(iv, pct=k != 'l0')}")
        rows.append(f"{ser}: " + ", ".join(cols))
    missing = sorted(set(df.label) - set(best))
    return {
        "claim": "GBA recovers features better than the baselines on realistic data (hierarchical, correlated, "
        "Zipf-firing features), each method at matched sparsity",
        "paper": "GBA beats TopK and L1 on LLM activations (the paper's experiments; not reproducible here)",
        "rule": f"each method's best variant by {metric} among those whose mean L0 lies in [{lo_f:g}, {hi_f:g}] × the "
        f"data's achieved L0 ({l0_data:.2f}: [{lo:.2f}, {hi:.2f}]), on held-out rows; reproduced if GBA's best "
        f"beats every baseline's best (Welch interval of the per-seed {metric} difference above 0), not "
        "reproduced if none is beaten (or GBA has no variant at matched L0), partly otherwise; undecided "
        "intervals make it inconclusive",
        "ours": "; ".join(rows)
        + (f"; no variant at matched L0: {', '.join(missing)}" if missing else "")
        + "; F1 as SynthSAEBench defines it (all latents) and over alive latents"
        + _edge_note(df, [], by=metric),
        "verdict": A.verdict(conds),
    }


#: experiment name → its rule (one signature: the rows, the store, the sweep's [report.paper] table)
#: one rule per experiment, one signature: rule(df, store, sweep) → {claim, paper, rule, ours, verdict}; df: the
#: experiment's current rows (load_results), store: its results store (arrays), sweep: its validated sweep
#: file (``sweep.report["paper"]``: the paper's numbers; ``sweep.roles``: label → role, e.g. "gba_covers_f").
#: A new experiment is a sweep file in sweeps/ plus one entry here.
CLAIMS = {
    "theorem": claim_theorem,
    "resonance": claim_resonance,
    "cooccurrence": claim_cooccurrence,
    "width_magnitude": claim_width_magnitude,
    "imbalanced": claim_imbalanced,
    "phase": claim_phase,
    "noise": claim_noise,
    "frontier": claim_frontier,
    "synthbench": claim_synthbench,
}


# ------------------------------------------------------------------------------------------ driver
def reproduce(
    out: str,
    budget: str = "quick",
    device: str = "auto",
    experiments=EXPERIMENTS,
    progress=True,
    max_batch: int | None = None,
    threads: int | None = None,
) -> Path:
    out = Path(out)
    figs = out / "figures"
    sections, timings = [], {}
    for name in experiments:
        path = SWEEP_DIR / f"{name}.toml"
        if not path.exists():
            raise ConfigError("experiment", f"no sweep file {path}")
        sweep = load_sweep(path, budget)
        t0 = time.perf_counter()
        run_sweep(sweep, str(out / name), device=device, max_batch=max_batch, progress=progress, threads=threads)
        pngs = plot_sweep(str(out / name), fig_dir=str(figs))
        timings[name] = time.perf_counter() - t0
        df = A.with_hypotheses(load_results(out / name, current_only=True), sweep.theory)
        store = Store(out / name)
        train_s = float((df.seconds / df.batch_size.clip(lower=1)).sum()) if len(df) else 0.0  # Σ over ensembles
        sec = {
            "name": name,
            "description": sweep.description.replace("\n", " "),
            "figures": pngs,
            "cells": len(df),
            "failed": int((df.status == "failed").sum()),
            "train_seconds": train_s,
        }
        sec["not_converged"] = int((~A.converged(A.done(df))).sum())
        sec.update(CLAIMS[name](df, store, sweep))
        sec.update(hypotheses_summary(df, sweep))
        t1 = time.perf_counter()
        sec.update(
            run_checks(name, sweep, out / name, store, sec["verdict"], device, max_batch, progress, threads, base=df)
        )
        sec["check_seconds"] = time.perf_counter() - t1
        timings[name] = time.perf_counter() - t0
        sections.append(sec)
    write_verdicts(out, budget, sections)
    report = _write_report(out, budget, sections, timings)
    return report


def hypotheses_summary(df: pd.DataFrame, sweep) -> dict:
    """What the verdict object says of the claim's hypotheses: the required list with ε, ς, and how many
    cells were inside, outside and not evaluable."""
    ins = df["inside"] if "inside" in df.columns else pd.Series(True, index=df.index)
    th = sweep.theory or {}
    return {
        "hypotheses": {k: th.get(k) for k in ("require", "eps", "varsigma", "c_width")},
        "cells_inside_hypotheses": int(ins.map(lambda v: v is True).sum()),
        "cells_outside_hypotheses": int(ins.map(lambda v: v is False).sum()),
        "cells_hypotheses_unevaluable": int(ins.map(lambda v: v is None).sum()),
    }


class _Stores:
    """Arrays looked up in a check run's store first, then the experiment's (rules read arrays by cell)."""

    def __init__(self, *stores):
        self.stores = stores

    def load_arrays(self, cell_hash, *a, **kw):
        for st in self.stores:
            got = st.load_arrays(cell_hash, *a, **kw)
            if got:
                return got
        return {}


def run_checks(name, sweep, folder: Path, store, verdict, device, max_batch, progress, threads, base=None) -> dict:
    """The sweep's ``[check]``: the budget check and every switch, each re-training the deciding cells and
    applying the experiment's rule again (checks.py). A verdict that changes at ``steps_factor`` × the steps
    is reported budget-limited. ``base``: the experiment's current rows, if the caller has them (each check
    replaces its deciding cells in them; loaded once by run_check otherwise)."""
    from .checks import run_check, variants

    out = {
        "budget_check": {"run": False, "why": "the sweep file has no [check] table"},
        "switches_tried": {},
        "verdict_at_base": verdict,
    }
    kw = dict(device=device, max_batch=max_batch, progress=progress, threads=threads)
    for sub, key, value, sf, wf in variants(sweep):
        df2, sweep2 = run_check(sweep, str(folder), sub, key, value, sf, wf, base=base, **kw)
        if df2 is None:
            res = {"run": False, "why": "no deciding cells at this budget"}
            v2 = None
        else:
            df2 = A.with_hypotheses(df2, sweep2.theory)
            got = CLAIMS[name](df2, _Stores(Store(folder / sub), store), sweep2)
            v2 = got["verdict"]
            if got.get("conditions"):
                out.setdefault("conditions_under_checks", {})[sub] = got["conditions"]
            res = {"run": True, "cells": int(len(set(c.hash for c in sweep2.cells) - {c.hash for c in sweep.cells}))}
        if key is None:
            out["budget_check"] = {
                **res,
                "steps_factor": sf,
                "width_factor": wf,
                "verdict_at_double": v2,
                "stable": None if v2 is None else v2 == verdict,
            }
        else:
            out["switches_tried"][f"{key}={value}"] = v2
    if out["budget_check"].get("stable") is False:
        out["verdict"] = "budget-limited"
    return out


#: the keys of each object in verdicts.json (issue: machine-readable verdicts; REPORT.md renders the same)
VERDICT_KEYS = (
    "experiment",
    "claim",
    "verdict",
    "verdict_at_base",
    "rule",
    "cells",
    "cells_inside_hypotheses",
    "cells_outside_hypotheses",
    "cells_hypotheses_unevaluable",
    "hypotheses",
    "budget_check",
    "switches_tried",
    "conditions",
    "conditions_under_checks",
    "ours",
)


def verdict_objects(sections: list[dict]) -> list[dict]:
    return [{k: (s["name"] if k == "experiment" else s.get(k)) for k in VERDICT_KEYS} for s in sections]


def _hyp_text(s: dict) -> str:
    h = s.get("hypotheses") or {}
    req = h.get("require") or []
    if not req:
        return f"none required (all {s['cells']} cells count)"
    consts = f"ε = {h.get('eps', 0):g}, ς = {h.get('varsigma', 0):g}, c_w = {h.get('c_width', 1):g}"
    return (
        f"{', '.join(req)} ({consts}): {s.get('cells_inside_hypotheses', 0)} cells inside, "
        f"{s.get('cells_outside_hypotheses', 0)} outside, {s.get('cells_hypotheses_unevaluable', 0)} not evaluable "
        "(only cells inside count)"
    )


def _check_text(s: dict) -> str:
    b = s.get("budget_check") or {}
    if not b.get("run"):
        return f"not run: {b.get('why', '—')}"
    wf = f", {b['width_factor']:g}× the width" if b.get("width_factor", 1) != 1 else ""
    state = "stable" if b.get("stable") else "**changed: budget-limited**"
    from .checks import folder_name

    at2 = _conditions_text((s.get("conditions_under_checks") or {}).get(folder_name(None, None)))
    return (
        f"{b['cells']} deciding cells at {b['steps_factor']:g}× the steps{wf}: {b.get('verdict_at_double')}{at2} "
        f"(base budget: {s.get('verdict_at_base')}{_conditions_text(s.get('conditions'))}) — {state}"
    )


def _conditions_text(c: dict | None) -> str:
    return (" (" + ", ".join(f"{k}: {_TRI.get(v, v)}" for k, v in c.items()) + ")") if c else ""


_TRI = {True: "met", False: "failed", None: "undecided"}


def _switch_text(s: dict) -> str:
    sw = s.get("switches_tried") or {}
    under = s.get("conditions_under_checks") or {}
    from .checks import folder_name

    def cond(k):
        key, value = k.split("=", 1)
        return _conditions_text(under.get(folder_name(key, value)))

    return "; ".join(f"{k}: {v}{cond(k)}" for k, v in sw.items()) or "none"


def write_verdicts(out: Path, budget: str, sections: list[dict]) -> Path:
    """figures/verdicts.json: one object per experiment (VERDICT_KEYS)."""
    import json

    path = out / "figures" / "verdicts.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        objs = [{**o, "budget": budget} for o in verdict_objects(sections)]
        Path(tmp).write_text(json.dumps(objs, indent=1, default=str) + "\n")
    return path


def _clauses(text: str) -> list[str]:
    """A rule's ``ours`` text as its clauses: split at "; " and " | " outside brackets, so each number
    keeps its interval."""
    out, depth, cur, i = [], 0, "", 0
    while i < len(text):
        ch = text[i]
        depth += ch in "([{"
        depth -= ch in ")]}"
        for sep in ("; ", " | "):
            if depth <= 0 and text.startswith(sep, i):
                out.append(cur.strip())
                cur, i = "", i + len(sep)
                break
        else:
            cur += ch
            i += 1
    out.append(cur.strip())
    return [c.rstrip(".") for c in out if c]


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return str(text).replace("|", "\\|").replace("\n", " ")


def _write_report(out: Path, budget: str, sections: list[dict], timings: dict) -> Path:
    import torch

    from .version import __version__

    lines = [
        f"# theory-sim reproduction report ({budget} budget)",
        "",
        f"theory-sim {__version__}, torch {torch.__version__}, "
        f"generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
        "Every number below is computed from the results stored beside this file by the rule stated with it; "
        "the paper's numbers come from the sweep files. Budgets other than `full` are smaller than the paper's "
        "experiments (fewer seeds, smaller widths, fewer steps): read their verdicts as such.",
        "",
        "**How to read the numbers.** A value is the mean over seeds with its 95 % interval in brackets: the "
        "Student-t interval over seeds, widened for a recovery fraction to contain the Wilson interval of the "
        "pooled feature count (k of n × seeds), so three seeds that agree still carry finite-feature uncertainty. "
        "A rule compares intervals, not means: a condition whose interval straddles its threshold is undecided, "
        "and a verdict that an undecided condition could flip is **inconclusive**. Boundaries are fitted "
        "crossings (logistic in log x on per-seed values; the interval covers the seeds and the fit's form, and "
        "stays inside the bracket; with one seed the bracket is the interval). Every comparison gives each method "
        "a grid spanning its working range (decades, or matched L0 through the L0 controller); a method whose best "
        'choice sits on the edge of its grid is flagged "edge of grid — widen it". A run is converged when BA/GBA '
        "neurons fire at most 2× above their targets on average (their rule caps frequencies), an L0 target is "
        "met within 25 %, the loss levelled off and FRR@0.9 stopped rising; the others are hatched in the "
        "figures. **Hypotheses**: each experiment lists in its sweep file the theorem's hypotheses a cell must "
        "meet (computed per cell; cells outside are dotted in the figures and never counted). **Budget check**: "
        "the deciding cells, declared in the sweep file, are re-trained at twice the steps and the rule applied "
        "again; a verdict that changes is **budget-limited**. The DECIDE switches tried at the deciding cells are "
        "listed with the verdict under each. The same objects are in verdicts.json.",
        "",
        "| experiment | claim | verdict |",
        "|---|---|---|",
    ]
    for s in sections:
        lines.append(f"| [{s['name']}](#{s['name']}) | {s['claim']} | **{s['verdict']}** |")
    for s in sections:
        clauses = _clauses(s["ours"])
        lines += [
            "",
            f"## {s['name']}",
            "",
            f"**{s['verdict']}** — {s['claim']}. Deciding: {'; '.join(clauses[:2])}.",
            "",
            "| | |",
            "|---|---|",
            f"| paper | {_cell(s['paper'])} |",
            f"| ours | {_cell('; '.join(clauses[:3]))} |",
            f"| cells | {s['cells']} ({s['failed']} failed, {s['not_converged']} did not converge) |",
            f"| hypotheses | {_cell(_hyp_text(s))} |",
            f"| budget check | {_cell(_check_text(s))} |",
            f"| switches at the deciding cells | {_cell(_switch_text(s))} |",
            f"| time | training {s['train_seconds']:.0f} s (sum over ensembles, as stored); this run "
            f"{timings[s['name']]:.0f} s |",
            "",
            f"**Detail.** {s['description']}",
            "",
            f"*Rule (fixed before the numbers):* {s['rule']}",
            "",
            "*Ours, in full:*",
            "",
            *[f"- {c}" for c in clauses],
            "",
        ]
        for p in s["figures"]:  # the report sits beside its figures: links are bare file names
            lines.append(f"![{s['name']}]({Path(p).name})")
    path = out / "figures" / "REPORT.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")
    return path
