"""Figures of the reviewers' experiments, drawn from the per-feature records and the dictionary statistics:
recovery against how close a latent fires to its feature's frequency, recovery across a frequency spectrum, the
recovery peak along p/f, and recovery against a dictionary's measured incoherence."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..analysis import cell_summary, feature_rows, settled, variant_labels  # noqa: E402
from .common import _save  # noqa: E402


def _best(df: pd.DataFrame, by: str = "frr_0.9") -> pd.DataFrame:
    """Each label's best variant (mean ``by``) per data kind (``frequencies`` where it varies), converged runs."""
    d = settled(df).copy()
    if d.empty:
        return d
    d["series"] = variant_labels(d)
    keys = ["label"] + (["frequencies"] if "frequencies" in d.columns and d.frequencies.nunique() > 1 else [])
    keep = []
    for _, g in d.groupby(keys, sort=False):
        keep.append(g[g.series == g.groupby("series")[by].mean().idxmax()])
    return pd.concat(keep)


def frequency_ratio(df: pd.DataFrame, store, out: Path, cos: float = 0.9) -> list[str]:
    """Left: the distribution of log2(p̂ / f_i) over matched features, one histogram line per method at its best
    (per data kind); right: the fraction of features recovered (matched cos ≥ ``cos``) in bins of that ratio."""
    best = _best(df)
    if best.empty:
        return []
    feats = feature_rows(best, store, keep=("label", "seed", "cell_hash", "frequencies"))
    if feats.empty or "log2_freq_ratio" not in feats:
        return []
    feats = feats[(feats.matched_latent >= 0) & np.isfinite(feats.log2_freq_ratio)]
    edges = np.arange(-4.0, 4.01, 0.5)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.6), constrained_layout=True)
    rows = []
    for (lab, kind), g in feats.groupby(["label", "frequencies"], sort=False):
        name = f"{g.series.iloc[0]} · {kind}"
        r = g.log2_freq_ratio.clip(edges[0], edges[-1])
        h, _ = np.histogram(r, edges)
        a1.plot(0.5 * (edges[1:] + edges[:-1]), h / max(1, len(r)), marker=".", label=name)
        idx = np.clip(np.digitize(r, edges) - 1, 0, len(edges) - 2)
        rec = pd.Series((g.matched_cos >= cos).to_numpy()).groupby(idx).agg(["mean", "size"])
        mids = 0.5 * (edges[rec.index + 1] + edges[rec.index])
        a2.plot(mids, rec["mean"], marker="o", label=name)
        rows += [
            {"series": name, "log2_ratio_mid": m, "share": c / max(1, len(r)), "recovered": v}
            for m, c, v in zip(mids, rec["size"], rec["mean"])
        ]
    for a in (a1, a2):
        a.axvline(0, color="black", ls=":", lw=1)
        a.set_xlabel("log2(latent's firing frequency p̂ / feature's frequency f_i), matched pairs")
    a1.set_ylabel("share of matched features")
    a2.set_ylabel(f"fraction recovered (matched cos ≥ {cos:g})")
    a2.set_ylim(-0.03, 1.03)
    a1.set_title("do latents fire at their features' frequencies?", fontsize=10)
    a2.set_title("recovery against frequency closeness", fontsize=10)
    a2.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _save(fig, out, pd.DataFrame(rows))


def spectrum(df: pd.DataFrame, store, out: Path, cos: float = 0.9, bins: int = 8) -> list[str]:
    """Recovery (best cos ≥ ``cos``) of each feature against its frequency f_i (log bins), one line per method at its
    best; for BA/GBA a second panel against log2(target of its matched neuron / f_i)."""
    best = _best(df)
    if best.empty:
        return []
    feats = feature_rows(best, store)
    if feats.empty:
        return []
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 4.6), constrained_layout=True)
    edges = np.geomspace(feats.f.min(), feats.f.max() * (1 + 1e-9), bins + 1)
    rows = []
    for i, (ser, g) in enumerate(feats.groupby("series", sort=False)):
        color = f"C{i % 10}"  # one colour per series in both panels (the second holds only BA and GBA)
        idx = np.clip(np.digitize(g.f, edges) - 1, 0, bins - 1)
        rec = pd.Series((g.best_cos >= cos).to_numpy()).groupby(idx).mean()
        mids = np.sqrt(edges[rec.index] * edges[rec.index + 1])
        a1.plot(mids, rec.values, marker="o", label=ser, color=color)
        rows += [{"series": ser, "panel": "f", "x": m, "recovered": v} for m, v in zip(mids, rec.values)]
        t = g.log2_target_ratio
        if t.notna().any():
            te = np.arange(-6.0, 6.01, 1.0)
            ok = t.notna()
            ti = np.clip(np.digitize(t[ok].clip(te[0], te[-1]), te) - 1, 0, len(te) - 2)
            rt = pd.Series((g[ok].matched_cos >= cos).to_numpy()).groupby(ti).mean()
            tm = 0.5 * (te[rt.index] + te[rt.index + 1])
            a2.plot(tm, rt.values, marker="o", label=ser, color=color)
            rows += [{"series": ser, "panel": "target", "x": m, "recovered": v} for m, v in zip(tm, rt.values)]
    a1.set_xscale("log")
    a1.set_xlabel("feature frequency f_i")
    a1.set_ylabel(f"fraction recovered (best cos ≥ {cos:g})")
    a2.axvline(0, color="black", ls=":", lw=1)
    a2.set_xlabel("log2(target frequency of the matched neuron / f_i)  (BA, GBA)")
    a2.set_ylabel(f"fraction recovered (matched cos ≥ {cos:g})")
    for a in (a1, a2):
        a.set_ylim(-0.03, 1.03)
    a1.set_title("recovery across the frequency spectrum", fontsize=10)
    a2.set_title("recovery against the matched neuron's p / f_i", fontsize=10)
    a1.legend(fontsize=7)
    a2.legend(fontsize=7)
    return _save(fig, out, pd.DataFrame(rows))


def peak(df: pd.DataFrame, out: Path, metric: str = "mmcs") -> list[str]:
    """``metric`` along p/f of the methods that have that axis (BA), one line per d (mean over seeds with its
    interval), p = f marked."""
    d = settled(df)
    if d.empty or "p_over_f" not in d:
        return []
    d = d[d.p_over_f.notna()]  # the methods that have the p/f axis
    summ = cell_summary(d, ["d", "p_over_f"], metric)
    fig, ax = plt.subplots(figsize=(7.2, 4.6), constrained_layout=True)
    for dv, g in summ.groupby("d"):
        g = g.sort_values("p_over_f")
        err = np.nan_to_num(np.array([g["mean"] - g["low"], g["high"] - g["mean"]]))
        ax.errorbar(g.p_over_f, g["mean"], yerr=np.clip(err, 0, None), marker="o", capsize=3, label=f"d = {dv:g}")
    ax.axvline(1.0, color="black", ls=":", lw=1, label="p = f")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("target frequency p / f")
    ax.set_ylabel(f"{metric} (mean over seeds, 95 % interval)")
    ax.set_title("where BA's recovery peaks along p/f", fontsize=10)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _save(fig, out, summ)


def frr_vs_mu(df: pd.DataFrame, out: Path, metric: str = "frr_0.9") -> list[str]:
    """``metric`` against the dictionary's measured max |cos| μ, one line per method and dictionary kind (each point
    a shared-component value: μ and the metric averaged over seeds, the metric's seed range as error bars)."""
    d = settled(df)
    if d.empty or "mu_max" not in d or "features" not in d:
        return []
    rows = []
    fig, ax = plt.subplots(figsize=(7.6, 4.6), constrained_layout=True)
    for (lab, kind), g in d.groupby(["label", "features"], sort=True):
        pts = g.groupby("shared").agg(mu=("mu_max", "mean"), m=(metric, "mean"), lo=(metric, "min"), hi=(metric, "max"))
        pts = pts.sort_values("mu")
        ax.errorbar(
            pts.mu, pts.m, yerr=[pts.m - pts.lo, pts.hi - pts.m], marker="o", capsize=3, label=f"{lab} · {kind}"
        )
        rows += [{"label": lab, "features": kind, **r} for r in pts.reset_index().to_dict("records")]
    ax.axhline(0.5, color="0.6", ls=":", lw=1)
    ax.set_xlabel("dictionary's measured max |cos| μ")
    ax.set_ylabel(metric)
    ax.set_ylim(-0.03, 1.03)
    ax.set_title("recovery against incoherence, by dictionary kind", fontsize=10)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _save(fig, out, pd.DataFrame(rows))
