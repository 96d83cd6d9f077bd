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
from .metrics import FREQ_LOG_ERROR_BOUND
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
    df = A.done(df).copy()
    # FRR of the random initialisation (step 0): in small d a wide random dictionary matches features by chance
    df["frr_init"] = [t[0] if isinstance(t, (list, tuple)) and len(t) else float("nan") for t in df["frr_0.9_by_step"]]
    inside = df.apply(
        lambda r: (
            theory.in_band(r.p_over_f * r.s / r.n, r.s / r.n, r.d) and theory.superposition_regime(r.n, r.d) == "light"
        ),
        axis=1,
    )
    meaningful = inside & (df.frr_init < 0.5)
    below = (df.p_over_f < 1) & (df.frr_init < 0.5)
    above = (df.p_over_f * df.s / df.n > df.apply(lambda r: theory.resonance_band(r.s / r.n, r.d)[1], axis=1)) & (
        df.frr_init < 0.5
    )
    pool = meaningful & df.index.isin(coarse_rows(df, sweep).index)  # pooled numbers: the coarse grid's cells
    a, a0 = pooled(df[pool]), pooled(df[pool], "frr_init")
    at_f = df[meaningful & (df.p_over_f == 1.0)]
    gain = A.difference_interval(at_f["frr_0.9"], at_f.frr_init) if len(at_f) else (math.nan,) * 3
    # (2) cell by cell, so a grid refined near the edge asks more of the claim, never less
    per_cell = [
        _all([A.at_least(pooled(g), 0.95), A.at_least(A.difference_interval(g["frr_0.9"], g.frr_init), 0.5)])
        for _, g in df[meaningful].groupby(["d", "p_over_f"])
    ]
    ok = [_all([A.at_least(pooled(at_f), 0.95), A.at_least(gain, 0.5)]), _all(per_cell)] if meaningful.any() else []
    failing = [
        f"d = {int(d)}, p/f = {p:.3g}: {A.fmt_interval(pooled(g))}"
        for (d, p), g in df[meaningful].groupby(["d", "p_over_f"])
        if A.at_least(pooled(g), 0.95) is not True
    ]
    edges = []
    for d, g in df[df.frr_init < 0.5].groupby("d"):
        f = float(g.s.iloc[0]) / float(g.n.iloc[0])
        for c in A.crossings_along(g, "p_over_f", "frr_0.9")[2]:
            edges.append(
                f"d = {int(d)}: {_edge_text(c)}; the unit-constant band ends at p/f = "
                f"{theory.resonance_band_ratio(f, d)[1]:.3g}"
            )
    by_p = "; ".join(f"{k:g}: {A.fmt_interval(pooled(g))}" for k, g in df[df.frr_init < 0.5].groupby("p_over_f"))
    init_by_d = ", ".join(f"{int(k)}: {_fmt(v, True)}" for k, v in df.groupby("d")["frr_init"].mean().items())
    return {
        "claim": "Modified BA recovers every feature (cos ≥ 1 − o(1)) in a constant number of steps inside "
        "the band f ≲ p ≲ min(√f, f·d), light superposition",
        "paper": "every feature, probability ≥ 1 − n^{−4ε}, T = 1/ς steps",
        "rule": "over in-band cells (unit constants, d ≥ √n) whose random init matches < 50 % by chance: (1) at the "
        "band's edge p = f the FRR@0.9 after the steps is ≥ 95 % and ≥ 50 points above the init; (2) the same "
        "in every in-band cell, cell by cell (a refined grid adds cells to check, it cannot dilute a failing one). "
        "Reproduced if both, partly if (1) only; each comparison on its 95 % interval. The fitted 50 % edges "
        "along p/f (refined to a factor 1.25) are reported beside the theorem's unit-constant band",
        "ours": f"FRR@0.9 after 1 step over the coarse grid's in-band cells: {A.fmt_interval(a)} (init "
        f"{A.fmt_interval(a0)}); at p = f: "
        f"{A.fmt_interval(pooled(at_f))}. In-band cells not shown to reach 95 % (interval): "
        f"{'; '.join(failing) or 'none'}. Fitted edges: "
        f"{' | '.join(edges) or 'none'}. By p/f (cells with init < 50 %): {by_p}. FRR of the random init by d: "
        f"{init_by_d}. Outside the band: below it (p < f) {A.fmt_interval(pooled(df[below]))}, above it "
        f"{A.fmt_interval(pooled(df[above]))}. The theorem's band is sufficient, not necessary: recovery below "
        "p = f says nothing against it, but it does say the lower edge p ≳ f is not where recovery starts in "
        "these data",
        "verdict": A.verdict(ok),
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
    df = A.done(df)
    n = int(df.n.iloc[0])
    f = float(df.s.iloc[0]) / n
    # a run whose neurons never reached their target frequency was not run at the p/f it is filed under:
    # it is no evidence about that p/f, so the boundaries are fitted without such runs (a loss still falling
    # at the end is flagged in the figure but says nothing about which p/f the run had)
    ok_rows = pd.Series(True, index=df.index)
    if "freq_log_error" in df.columns:
        ok_rows &= ~(df["freq_log_error"] > FREQ_LOG_ERROR_BOUND)
    nc = df[~ok_rows].groupby("p_over_f").size().reindex(sorted(df.p_over_f.unique()), fill_value=0)
    total = df.groupby("p_over_f").size().reindex(nc.index)
    nc_txt = ", ".join(f"{k:g}: {int(v)}/{int(total[k])}" for k, v in nc.items() if v)
    worst = df[~ok_rows]["freq_log_error"].max() if (~ok_rows).any() else math.nan
    floor = (
        f" (their neurons fire up to {math.exp(worst):.3g}× their target frequency: the biases stop at the rule's "
        "floor −1)"
        if not math.isnan(worst)
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
    ok = [_any(upper_ok), bool(any(lower_found)), wider]
    wtxt = ", ".join(
        f"{int(d)}: {w[0]:.1f} [{w[1]:.1f}, {w[2]:.1f}]{' (open below: a lower bound)' if w[3] else ''}"
        for d, w in widths.items()
    )
    return {
        "claim": "Neuron resonance: recovery only inside a band around p ≈ f; the band is wider when d > √n",
        "paper": "heatmaps: a band around p/f ≈ 1, narrow in heavy, wide in light superposition",
        "rule": "per d, the 50 % crossings of FRR@0.9 along p/f are fitted (logistic in log p/f on the per-seed values "
        "of runs whose neurons reached their target frequency (within 2× on average) — a run that missed it "
        "was not run at its p/f — "
        "bootstrap interval over seeds). (1) at some d the peak FRR is ≥ 80 % (interval) and recovery falls "
        "through 50 % above it (an upper edge); (2) a lower edge (a rising crossing) is found at some d; (3) "
        "the widest light-superposition band (d > √n, width in log2 p/f between its edges) is wider than the "
        "widest heavy one beyond both intervals. Reproduced if all three; partly if (1) and not all",
        "ours": "Crossings along p/f: "
        + " | ".join(lines)
        + f". Band widths (log2 p/f): {wtxt}. Where recovery switches on along d (√n = {math.sqrt(n):g}): "
        + ("; ".join(transitions) or "no crossing")
        + "."
        + (
            ""
            if any(lower_found)
            else f" No lower edge down to p/f = {min(df.p_over_f):g}: the band's lower edge was not found on this grid"
        )
        + (
            f". Runs that missed their target frequency, left out of the fits (p/f: runs): {nc_txt}{floor}"
            if nc_txt
            else ""
        ),
        "verdict": A.verdict(ok),
    }


def claim_cooccurrence(df, store=None, sweep=None) -> dict:
    df = A.done(df)
    n = int(df.n.iloc[0])
    thr = theory.cooccurrence_threshold(n)
    rows, ok = [], []
    df = df.assign(variant=A.variant_labels(df, ["cooccurrence"]))
    coarse = coarse_rows(df, sweep)
    for lab, g in df.groupby("variant", sort=False):
        gc = coarse[coarse.variant == lab]  # pooled over the coarse grid; the crossing from every cell
        lo, hi = gc[gc.data_rho2 < thr], gc[gc.data_rho2 > 2 * thr]
        drop = A.difference_interval(lo.groupby("seed")["frr_0.9"].mean(), hi.groupby("seed")["frr_0.9"].mean())
        _, _, cr = A.crossings_along(g, "cooccurrence", "frr_0.9")
        half = "; ".join(
            f"falls through 50 % at r ≈ {c['estimate']:.3g}"
            + (f" [{c['low']:.3g}, {c['high']:.3g}]" if not math.isnan(c["low"]) else "")
            + f" = {c['estimate'] / thr:.2g} × n^(-1/2)"
            for c in cr
            if c["direction"] == "falling"
        )
        rows.append(
            f"{lab}: {A.fmt_interval(pooled(lo))} with measured ρ₂ < n^(-1/2) = {thr:.3f}, "
            f"{A.fmt_interval(pooled(hi))} with ρ₂ > 2·n^(-1/2) (drop {A.fmt_interval(drop)})"
            + (f"; {half}" if half else "")
        )
        if g.method.iloc[0] == "ba" and g.p_over_f.iloc[0] == 1.0:
            ok.append(A.at_least(drop, 0.3))
    return {
        "claim": "Recovery degrades once the co-occurrence ρ₂ passes n^{-1/2}",
        "paper": "FRR falls past ρ₂ ≈ n^{-1/2}",
        "rule": "reproduced if BA's (p = f) mean FRR@0.9 drops by ≥ 30 points from measured ρ₂ < n^{-1/2} to ρ₂ > "
        "2 n^{-1/2} (Welch 95 % interval of the drop over seeds; both sides pooled over the coarse grid, so "
        "refinement cannot move them); the co-occurrence at which FRR@0.9 halves is fitted from every cell, "
        "refined ones included; the other methods are shown at every variant for comparison, not judged",
        "ours": "; ".join(rows) + "." + _edge_note(df.drop(columns="variant"), ["cooccurrence"]),
        "verdict": A.verdict(ok),
    }


def claim_width_magnitude(df, store: Store, sweep=None) -> dict:
    df = A.done(df)
    ba = _variant(df[df.method == "ba"], p_over_f=1.0)
    by_w = {w: pooled(g) for w, g in ba.groupby("width")}
    ws = sorted(by_w)
    gain = (
        A.difference_interval(
            ba[ba.width == ws[-1]].groupby("seed")["frr_0.9"].mean(),
            ba[ba.width == ws[0]].groupby("seed")["frr_0.9"].mean(),
        )
        if len(ws) > 1
        else (math.nan,) * 3
    )
    widest = ba[ba.width == ws[-1]] if ws else ba
    per_seed_gap, lo_all, hi_all = [], [], []
    for _, g in widest.groupby("seed"):
        hs, rec = A.magnitude_recovery(g, store)
        if len(hs):
            med = np.median(hs)
            lo_all.append(rec[hs < med].mean())
            hi_all.append(rec[hs >= med].mean())
            per_seed_gap.append(hi_all[-1] - lo_all[-1])
    gap = A.seed_interval(per_seed_gap)
    ok = [A.at_least(gain, 0.1), A.at_least(gap, 0.1)] if len(ws) > 1 else []
    return {
        "claim": "Recovery needs width; weak features (small h_i) need more (width ∝ 1/h²)",
        "paper": "FRR rises with M; feature balance matters",
        "rule": "for BA at p = f: (1) FRR@0.9 at the largest width exceeds the smallest by ≥ 10 points; (2) at the "
        "largest width, features with h above the median are recovered ≥ 10 points more often than those "
        "below (per seed, t interval). Reproduced if both, partly if one; 95 % intervals",
        "ours": "BA (p = f) FRR@0.9 by width: "
        + ", ".join(f"{int(w)}: {A.fmt_interval(v)}" for w, v in by_w.items())
        + f"; gain {A.fmt_interval(gain)}. At the largest width, weak features recovered "
        f"{_fmt(float(np.mean(lo_all)) if lo_all else math.nan, True)}, strong "
        f"{_fmt(float(np.mean(hi_all)) if hi_all else math.nan, True)} (gap {A.fmt_interval(gap)})."
        + _edge_note(df, ["width"]),
        "verdict": A.verdict(ok, primary=False),
    }


#: the reading of the unstated input scaling that the paper's text supports: the bias range [−1, 0] and
#: the theorem's O(1) pre-activations presume inputs of unit scale
SUPPORTED_READING = "unit-norm rows"


def claim_imbalanced(df, store=None, sweep=None) -> dict:
    paper = sweep.report.get("paper", {}) if sweep else {}
    roles = sweep.roles if sweep else {}
    df = A.reading_labels(A.done(df))
    rows, per_reading = [], {}
    for (lab, rd), g in df.groupby(["label", "reading"], sort=False):
        if g.method.iloc[0] == "topk" and g.k.nunique() > 1:
            continue  # the K axis is summarised below
        a8, a9 = pooled(g, "frr_0.8"), pooled(g, "frr_0.9")
        ref = paper.get(lab)
        norm = "unit-norm rows" if rd != lab else "raw rows"
        rows.append(
            f"{rd}: ours {A.fmt_interval(a8)} / {A.fmt_interval(a9)}"
            + (f" vs paper {ref[0]} / {ref[1]} %" if ref else " (not in the paper)")
        )
        if ref:
            match = _all([_within(a8, ref[0] / 100, 0.10), _within(a9, ref[1] / 100, 0.10)])
            per_reading.setdefault(norm, {"gba": [], "rest": []})[
                "gba" if roles.get(lab) == "gba_covers_f" else "rest"
            ].append(match)
    verdicts = {k: A.verdict([_any(v["gba"]), _all(v["gba"] + v["rest"])]) for k, v in per_reading.items()}
    ks = []
    topk = df[df.method == "topk"]
    for (rd, k), g in topk.groupby(["row_norm" if "row_norm" in topk.columns else "method", "k"]):
        ks.append((bool(rd) if isinstance(rd, (bool, np.bool_)) else False, int(k), pooled(g, "frr_0.9")))
    ktxt = "; ".join(
        f"{'unit-norm' if rn else 'raw'} rows: "
        + ", ".join(f"K={k} {A.fmt_interval(v)}" for r2, k, v in ks if r2 == rn)
        for rn in sorted({r for r, _, _ in ks})
    )
    best = verdicts.get(SUPPORTED_READING, "not run")
    return {
        "claim": "Imbalanced set (half s = 3, half s = 20): GBA with a TAF range covering f recovers ≈ 100 % at "
        "τ = 0.9 while TopK with K = 30, 50 falls to ≈ 24 %",
        "paper": "FRR@0.8 / 0.9 (%): " + "; ".join(f"{k} {v[0]} / {v[1]}" for k, v in paper.items()),
        "rule": "a row matches the paper when both its 95 % intervals lie within 10 points of the paper's numbers "
        "(no match when both lie outside; otherwise undecided); a reading reproduces the claim if every row "
        "matches, partly if a GBA range covering f matches but other rows do not. Each reading is judged; "
        f"the verdict shown is the {SUPPORTED_READING} reading's, the one the paper's text supports (its bias "
        "range [−1, 0] presumes O(1) pre-activations)",
        "ours": "; ".join(rows)
        + f". TopK's whole K axis, FRR@0.9: {ktxt}. Verdict per reading: "
        + ", ".join(f"{k}: **{v}**" for k, v in verdicts.items()),
        "verdict": best + "".join(f"; {k}: {v}" for k, v in verdicts.items() if k != SUPPORTED_READING),
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


def claim_frontier(df, store: Store, sweep=None) -> dict:
    roles = (sweep.roles if sweep is not None else {}) or {}
    by_role = {r: lab for lab, r in roles.items()}
    gba, topk = by_role.get("paper_gba", "GBA"), by_role.get("topk_reference", "TopK")  # roles, not label text
    df = A.done(df).copy()
    df["series"] = A.variant_labels(df)
    s = float(df.s.iloc[0])
    cons, best_cons = {}, {}
    for lab, g in df.groupby("label"):
        for ser, variant in g.groupby("series"):
            vals = A.seed_pair_consistency(variant, store)
            if vals:
                cons.setdefault(lab, {})[ser] = vals
        if lab in cons:
            best = max(cons[lab], key=lambda k: np.nanmean(cons[lab][k]))
            best_cons[lab] = (best, cons[lab][best])
    # frontier: per method, the variant with the lowest mean FVU among those whose mean L0 ≤ 2 s
    fvu = {}
    for lab, g in df.groupby("label"):
        m = g.groupby("series")[["l0", "fvu"]].mean()
        m = m[m.l0 <= 2 * s]
        if len(m):
            ser = m.fvu.idxmin()
            fvu[lab] = (ser, A.seed_interval(g[g.series == ser].fvu.to_numpy(float)))
    ok = []
    if gba in best_cons and topk in best_cons:
        ok.append(A.at_least(A.difference_interval(best_cons[gba][1], best_cons[topk][1]), 1e-9))
    if gba in fvu and topk in fvu:
        g_iv, t_iv = fvu[gba][1], fvu[topk][1]
        others = [fvu[k][1] for k in fvu if k not in (gba, topk)]
        ok.append(
            _all(
                [A.at_most(g_iv, 1.2 * t_iv[0])]
                + [A.at_most(g_iv, o[0]) if not math.isnan(o[0]) else None for o in others]
            )
        )
    elif topk in fvu:
        ok.append(False)  # GBA has no variant on the sparse side of the frontier at all
    return {
        "claim": "GBA reaches the TopK sparsity–loss frontier, far better than L1 and BA, and is more consistent "
        "across seeds than TopK (LLM claims; here their synthetic analogue)",
        "paper": "LLM-scale figures (not reproducible here)",
        "rule": "each method at its best: (1) the most consistent GBA variant is more consistent than the most "
        "consistent TopK variant (Welch interval of the difference over seed pairs above 0); (2) among "
        f"variants with mean L0 ≤ 2s = {2 * s:g}, GBA's lowest FVU is within 20 % of TopK's and below every "
        "other method's best (GBA's interval against the others' means). Reproduced if both, partly if one, "
        "not reproduced if (1) fails",
        "ours": "cross-seed consistency (cos ≥ 0.9 partner), best variant per method: "
        + ", ".join(f"{k} {A.fmt_interval(_clip01(A.seed_interval(v[1])))} ({v[0]})" for k, v in best_cons.items())
        + f"; best FVU at L0 ≤ {2 * s:g}: "
        + ", ".join(f"{k} {A.fmt_interval(v[1], pct=False)} ({v[0]})" for k, v in fvu.items())
        + (f". {gba} has no variant with L0 ≤ 2s" if gba not in fvu else "")
        + ".",
        "verdict": A.verdict(ok),
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
    rep = (sweep.report if sweep is not None else {}) or {}
    metric = rep.get("metric", "mcc")
    lo_f, hi_f = rep.get("l0_window", [0.5, 2.0])
    roles = (sweep.roles if sweep is not None else {}) or {}
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
        df = load_results(out / name, current_only=True)
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
        sections.append(sec)
    report = _write_report(out, budget, sections, timings)
    return report


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
        "crossings (logistic in log x on per-seed values, bootstrap interval over seeds). Every comparison gives "
        "each method a grid spanning its working range (decades, or matched L0 through the L0 controller); a "
        'method whose best choice sits on the edge of its grid is flagged "edge of grid — widen it". Cells where a '
        "feedback rule missed its target (BA/GBA frequencies off by more than 2× on average, an L0 target "
        "missed by more than 25 %) are counted as not converged and hatched in the figures.",
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
