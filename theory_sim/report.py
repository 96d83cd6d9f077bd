"""``theory-sim reproduce``: run the paper's experiments, draw their figures, write REPORT.md.

Every verdict is computed from the stored results by a rule stated next to it in the report (no number is
typed in by hand except the paper's own, which live in the sweep files' ``[report.paper]`` tables and
in ``PAPER`` below). A claim whose experiment did not run says so.
"""
from __future__ import annotations

import math
import time
import tomllib
from pathlib import Path

import numpy as np

from . import theory
from .errors import ConfigError
from .plots import plot_sweep
from .store import Store, load_results
from .sweep import load_sweep, run_sweep

EXPERIMENTS = ("theorem", "resonance", "cooccurrence", "width_magnitude", "imbalanced", "phase", "noise", "frontier")
SWEEP_DIR = Path(__file__).resolve().parent.parent / "sweeps"


def _verdict(ok: list[bool], primary: bool = True) -> str:
    """With ``primary``, ok[0] is the claim's main positive condition: without it nothing is reproduced;
    otherwise the conditions are equal halves of the claim."""
    if not ok:
        return "not run"
    if primary and not ok[0]:
        return "not reproduced"
    if all(ok):
        return "reproduced"
    return "partly" if any(ok) else "not reproduced"


def _fmt(v, pct=False):
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "—"
    return f"{100 * v:.1f} %" if pct else f"{v:.3g}"


def _done(df):
    return df[df.status == "done"]


# ------------------------------------------------------------------------------------------ claims
def claim_theorem(df) -> dict:
    df = _done(df).copy()
    # FRR of the random initialisation (step 0): in small d a wide random dictionary matches features by chance
    df["frr_init"] = [t[0] if isinstance(t, (list, tuple)) and len(t) else float("nan") for t in df["frr_0.9_by_step"]]
    inside = df.apply(lambda r: theory.in_band(r.p_over_f * r.s / r.n, r.s / r.n, r.d) and r.d >= math.sqrt(r.n), axis=1)
    meaningful = inside & (df.frr_init < 0.5)
    a = df[meaningful]["frr_0.9"].mean() if meaningful.any() else float("nan")
    a0 = df[meaningful]["frr_init"].mean() if meaningful.any() else float("nan")
    b = df[~inside]["frr_0.9"].mean() if (~inside).any() else float("nan")
    by_p = df[df.frr_init < 0.5].groupby("p_over_f")["frr_0.9"].mean()
    init_by_d = df.groupby("d")["frr_init"].mean()
    at_f = df[meaningful & (df.p_over_f == 1.0)]
    ok = [bool(len(at_f) and at_f["frr_0.9"].mean() >= 0.95 and (at_f["frr_0.9"] - at_f.frr_init).mean() >= 0.5),
          bool(a >= 0.95 and a - a0 >= 0.5)] if not math.isnan(a) else []
    return {"claim": "Modified BA recovers every feature (cos ≥ 1 − o(1)) in a constant number of steps inside "
                     "the band f ≲ p ≲ min(√f, f·d), light superposition",
            "paper": "every feature, probability ≥ 1 − n^{−4ε}, T = 1/ς steps",
            "ours": f"FRR@0.9 after 1 step: {_fmt(a, True)} (from {_fmt(a0, True)} at init) mean over cells inside the band "
                    f"(unit constants, d ≥ √n) whose random init matches < 50 % by chance; {_fmt(b, True)} outside the band. "
                    "By p/f (cells with init < 50 %): " + ", ".join(f"{k:g}: {_fmt(v, True)}" for k, v in by_p.items())
                    + ". FRR of the random init by d: " + ", ".join(f"{int(k)}: {_fmt(v, True)}" for k, v in init_by_d.items()),
            "rule": "over in-band cells whose init is below 50 %: reproduced if the mean FRR@0.9 after the steps is ≥ 95 % and "
                    "≥ 50 points above the init; partly if that holds only at the band's edge p = f",
            "verdict": _verdict(ok)}


def _band_widths(df, metric="frr_0.9"):
    """Per d: the p/f values where the mean FRR ≥ 0.5 (on the sweep's geometric p/f grid)."""
    m = _done(df).groupby(["d", "p_over_f"])[metric].mean().reset_index()
    return {d: sorted(g[g[metric] >= 0.5].p_over_f) for d, g in m.groupby("d")}, m


def claim_resonance(df) -> dict:
    df = _done(df)
    n = int(df.n.iloc[0])
    bands, m = _band_widths(df)
    heavy = [len(v) for d, v in bands.items() if d < math.sqrt(n)]
    light = [len(v) for d, v in bands.items() if d > math.sqrt(n)]
    near_f = m[(m.p_over_f >= 0.5) & (m.p_over_f <= 2)].groupby("d")["frr_0.9"].max()
    top = m[m.p_over_f == m.p_over_f.max()].set_index("d")["frr_0.9"]
    banded = [d for d in near_f.index if near_f[d] >= 0.8 and top[d] <= 0.35]
    ok = [bool(banded), bool(heavy and light and np.mean(light) > np.mean(heavy))]
    return {"claim": "Neuron resonance: recovery only inside a band around p ≈ f; the band is wider when d > √n",
            "paper": "heatmaps: a band around p/f ≈ 1, narrow in heavy, wide in light superposition",
            "ours": "p/f values with FRR@0.9 ≥ 50 % per d: " + "; ".join(f"d={d}: {[f'{v:g}' for v in b] or 'none'}"
                                                                  for d, b in bands.items())
                    + ". Best FRR at p/f ∈ [0.5, 2] by d: " + ", ".join(f"{int(d)}: {_fmt(v, True)}" for d, v in near_f.items())
                    + "; at the largest p/f: " + ", ".join(f"{int(d)}: {_fmt(v, True)}" for d, v in top.items())
                    + (f". Note: the band has no lower edge on this grid (recovery at the smallest p/f = {m.p_over_f.min():g})"
                       if any(b and b[0] == m.p_over_f.min() for b in bands.values()) else ""),
            "rule": "reproduced if (a) at some d, FRR@0.9 ≥ 80 % at some p/f ∈ [0.5, 2] and ≤ 35 % at the largest p/f (a band "
                    "in p exists) and (b) the band (grid points with FRR ≥ 50 %) is wider on average for d > √n than d < √n",
            "verdict": _verdict(ok)}


def claim_cooccurrence(df) -> dict:
    df = _done(df)
    n = int(df.n.iloc[0])
    thr = theory.cooccurrence_threshold(n)
    rows = []
    ok = []
    for lab, g in df.groupby("label"):
        lo = g[g.data_rho2 < thr]["frr_0.9"].mean()
        hi = g[g.data_rho2 > 2 * thr]["frr_0.9"].mean()
        rows.append(f"{lab}: {_fmt(lo, True)} with measured ρ₂ < n^(-1/2) = {thr:.3f}, {_fmt(hi, True)} with ρ₂ > 2·n^(-1/2)")
        if lab.startswith("BA"):
            ok.append(bool(lo - hi >= 0.3))
    return {"claim": "Recovery degrades once the co-occurrence ρ₂ passes n^{-1/2}",
            "paper": "FRR falls past ρ₂ ≈ n^{-1/2}",
            "ours": "; ".join(rows),
            "rule": "reproduced if BA's mean FRR@0.9 drops by ≥ 30 points from ρ₂ < n^{-1/2} to ρ₂ > 2 n^{-1/2} (measured ρ₂)",
            "verdict": _verdict(ok)}


def claim_width_magnitude(df, store: Store) -> dict:
    df = _done(df)
    ba = df[df.label.str.startswith("BA")]
    by_w = ba.groupby("width")["frr_0.9"].mean()
    widest = ba[ba.width == ba.width.max()]
    from .plots import magnitude_recovery
    rec_lo = rec_hi = float("nan")
    hs, rec = magnitude_recovery(widest, store)
    if len(hs):
        med = np.median(hs)
        rec_lo, rec_hi = rec[hs < med].mean(), rec[hs >= med].mean()
    ok = [bool(by_w.iloc[-1] > by_w.iloc[0] + 0.1), bool(rec_hi > rec_lo + 0.1)] if len(by_w) > 1 else []
    return {"claim": "Recovery needs width; weak features (small h_i) need more (width ∝ 1/h²)",
            "paper": "FRR rises with M; feature balance matters",
            "ours": "BA FRR@0.9 by width: " + ", ".join(f"{int(w)}: {_fmt(v, True)}" for w, v in by_w.items())
                    + f"; at the largest width, features with h below the median recovered {_fmt(rec_lo, True)}, above {_fmt(rec_hi, True)}",
            "rule": "reproduced if FRR at the largest width exceeds the smallest by ≥ 10 points and strong features are "
                    "recovered ≥ 10 points more often than weak ones; partly if one of the two holds",
            "verdict": _verdict(ok, primary=False)}


def claim_imbalanced(df, paper: dict) -> dict:
    from .plots import reading_labels
    df = reading_labels(_done(df))
    rows, per_reading = [], {}
    for (lab, rd), g in df.groupby(["label", "reading"], sort=False):
        a, b = g["frr_0.8"].mean() * 100, g["frr_0.9"].mean() * 100
        ref = paper.get(lab)
        norm = "unit-norm rows" if rd != lab else "raw rows"
        rows.append(f"{rd}: ours {a:.1f} / {b:.1f} %" + (f" vs paper {ref[0]} / {ref[1]} %" if ref else " (not in the paper)"))
        if ref:
            close = bool(abs(a - ref[0]) <= 10 and abs(b - ref[1]) <= 10)
            per_reading.setdefault(norm, {"gba": [], "rest": []})["gba" if "covers f" in lab else "rest"].append(close)
    verdicts = {k: _verdict([any(v["gba"]), all(v["gba"] + v["rest"])]) for k, v in per_reading.items()}
    best = "reproduced" if "reproduced" in verdicts.values() else ("partly" if "partly" in verdicts.values() else "not reproduced")
    return {"claim": "Imbalanced set (half s = 3, half s = 20): GBA with a TAF range covering f recovers ≈ 100 % at τ = 0.9 "
                     "while TopK with K = 30, 50 falls to ≈ 24 %",
            "paper": "FRR@0.8 / 0.9 (%): " + "; ".join(f"{k} {v[0]} / {v[1]}" for k, v in paper.items()),
            "ours": "; ".join(rows) + ". Verdict per reading: " + ", ".join(f"{k}: {v}" for k, v in verdicts.items()),
            "rule": "a row matches if both numbers are within 10 points of the paper's; a reading reproduces the claim if "
                    "every row matches, partly if a GBA range covering f matches (the headline) but other rows do not; "
                    "the verdict is the best reading's",
            "verdict": best}


def claim_frontier(df, store: Store) -> dict:
    from .plots import _series, seed_pair_consistency
    df = _done(df).copy()
    df["series"] = _series(df, [])
    cons = {}
    for lab, g in df.groupby("label"):  # pairs of seeds within each variant, pooled per method
        vals = [v for _, variant in g.groupby("series") for v in seed_pair_consistency(variant, store)]
        cons[lab] = float(np.nanmean(vals)) if vals else float("nan")
    # frontier: best FVU among a method's variants whose L0 ≤ 2 s
    s = float(df.s.iloc[0])
    fvu = {lab: g[g.l0 <= 2 * s].fvu.min() if (g.l0 <= 2 * s).any() else float("nan") for lab, g in df.groupby("label")}
    ok = []
    if not math.isnan(cons.get("GBA", float("nan"))) and not math.isnan(cons.get("TopK", float("nan"))):
        ok.append(bool(cons["GBA"] > cons["TopK"]))
    if all(k in fvu and not math.isnan(fvu[k]) for k in ("GBA", "TopK", "L1", "BA")):
        ok.append(bool(fvu["GBA"] <= 1.2 * fvu["TopK"] and fvu["GBA"] < min(fvu["L1"], fvu["BA"])))
    return {"claim": "GBA reaches the TopK sparsity–loss frontier, far better than L1 and BA, and is more consistent "
                     "across seeds than TopK (LLM claims; here their synthetic analogue)",
            "paper": "LLM-scale figures (not reproducible here)",
            "ours": "cross-seed consistency (cos ≥ 0.9 partner): " + ", ".join(f"{k} {_fmt(v, True)}" for k, v in cons.items())
                    + f"; best FVU at L0 ≤ 2s = {2 * s:g}: " + ", ".join(f"{k} {_fmt(v)}" for k, v in fvu.items()),
            "rule": "reproduced if GBA is more consistent than TopK and its best FVU at L0 ≤ 2s is within 20 % of TopK's "
                    "and below both L1's and BA's",
            "verdict": _verdict(ok)}


def describe(df, x, metric="frr_0.9") -> str:
    df = _done(df)
    m = df.groupby(["label", x])[metric].mean().reset_index()
    return "; ".join(f"{lab}: " + ", ".join(f"{x}={v:g} → {_fmt(f, True)}" for v, f in zip(g[x], g[metric]))
                     for lab, g in m.groupby("label", sort=False))


# ------------------------------------------------------------------------------------------ driver
def reproduce(out: str, budget: str = "quick", device: str = "auto", experiments=EXPERIMENTS, progress=True,
              max_batch: int | None = None) -> Path:
    out = Path(out)
    figs = out / "figures"
    sections, timings = [], {}
    for name in experiments:
        path = SWEEP_DIR / f"{name}.toml"
        if not path.exists():
            raise ConfigError("experiment", f"no sweep file {path}")
        sweep = load_sweep(path, budget)
        t0 = time.perf_counter()
        run_sweep(sweep, str(out / name), device=device, max_batch=max_batch, progress=progress)
        pngs = plot_sweep(str(out / name), fig_dir=str(figs))
        timings[name] = time.perf_counter() - t0
        df = load_results(out / name, current_only=True)
        store = Store(out / name)
        paper = tomllib.loads(path.read_text()).get("report", {}).get("paper", {})
        train_s = float((df.seconds / df.batch_size.clip(lower=1)).sum()) if len(df) else 0.0  # Σ over ensembles
        sec = {"name": name, "description": sweep.description.replace("\n", " "), "figures": pngs, "cells": len(df),
               "failed": int((df.status == "failed").sum()), "train_seconds": train_s}
        if name == "theorem":
            sec.update(claim_theorem(df))
        elif name == "resonance":
            sec.update(claim_resonance(df))
        elif name == "cooccurrence":
            sec.update(claim_cooccurrence(df))
        elif name == "width_magnitude":
            sec.update(claim_width_magnitude(df, store))
        elif name == "imbalanced":
            sec.update(claim_imbalanced(df, paper))
        elif name == "frontier":
            sec.update(claim_frontier(df, store))
        elif name == "noise":
            sec.update({"claim": "(no claim in the paper) FRR vs SNR", "paper": "—", "ours": describe(df, "snr"),
                        "rule": "descriptive", "verdict": "measured"})
        elif name == "phase":
            sec.update({"claim": "(design's phase diagram) FRR over sparsity × incoherence for every method",
                        "paper": "—", "ours": _phase_summary(df), "rule": "descriptive", "verdict": "measured"})
        sections.append(sec)
    report = _write_report(out, budget, sections, timings)
    return report


def _phase_summary(df) -> str:
    df = _done(df)
    parts = []
    for lab, g in df.groupby("label", sort=False):
        best = g.groupby(["s", "shared"])["frr_0.9"].max().mean()
        by_ev = g.loc[g.groupby(["s", "shared"])["explained_variance"].idxmax()]["frr_0.9"].mean()
        parts.append(f"{lab}: mean over cells of FRR@0.9 tuned by EV {_fmt(by_ev, True)}, by FRR (oracle) {_fmt(best, True)}")
    return "; ".join(parts)


def _write_report(out: Path, budget: str, sections: list[dict], timings: dict) -> Path:
    import torch

    from . import __version__
    lines = [f"# theory-sim reproduction report ({budget} budget)", "",
             f"theory-sim {__version__}, torch {torch.__version__}, generated {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}. "
             "Every number below is computed from the results stored beside this file by the rule stated with it; "
             "the paper's numbers come from the sweep files. Budgets other than `full` are smaller than the paper's "
             "experiments (fewer seeds, smaller widths, fewer steps): read their verdicts as such.", "",
             "| experiment | claim | verdict |", "|---|---|---|"]
    for s in sections:
        lines.append(f"| [{s['name']}](#{s['name']}) | {s['claim']} | **{s['verdict']}** |")
    for s in sections:
        lines += ["", f"## {s['name']}", "", s["description"], "",
                  f"- **claim**: {s['claim']}", f"- **paper**: {s['paper']}", f"- **ours**: {s['ours']}",
                  f"- **rule**: {s['rule']}", f"- **verdict**: **{s['verdict']}**",
                  f"- cells: {s['cells']} ({s['failed']} failed); training time {s['train_seconds']:.0f} s "
                  f"(sum over ensembles, as stored); this run: {timings[s['name']]:.0f} s", ""]
        for p in s["figures"]:  # the report sits beside its figures: links are bare file names
            lines.append(f"![{s['name']}]({Path(p).name})")
    path = out / "figures" / "REPORT.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path
