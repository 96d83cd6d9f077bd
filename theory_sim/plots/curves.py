"""Curves: a metric along one axis, and the curve kinds a sweep's ``[plot] curve = [...]`` asks for (registered in
``CURVES`` under the names ``sweep.spec.CURVE_KINDS`` lets a sweep file use)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .. import theory  # noqa: E402
from ..analysis import (  # noqa: E402
    done,
    magnitude_recovery,
    reading_labels,
    seed_interval,
    seed_pair_consistency,
    variant_labels,
)
from ..errors import ConfigError  # noqa: E402
from ..metrics import CURVE_TAUS  # noqa: E402
from ..store import Store  # noqa: E402
from .common import (
    _as_variants,
    _context,
    _data_setting,
    _done,
    _is_log,
    _label,
    _save,
    _series,
    _summarise,
    metric_limits,
    nc_wording,
)  # noqa: E402


# ------------------------------------------------------------------------------------------ 1-D curves
def curve(df: pd.DataFrame, x: str, metric: str, out: Path, title: str = "", log_x: bool | None = None) -> list[str]:
    """metric vs x per method variant (mean over seeds with its 95 % interval, analysis), with the chance
    level and the theorem's reference where they apply. log_x: the sweep's statement of x's scale (its
    [refine] table), else read off the values."""
    df = _done(df, metric).copy()
    if x not in df.columns:
        raise ConfigError("plot", f"{x!r} is not an axis of this sweep")
    if x == metric:
        raise ConfigError("plot", f"x and the metric must differ, both are {x!r}")
    df = _as_variants(df, [x])
    summ = _summarise(df, ["label", x], metric)
    many = summ.label.nunique() > 4  # then the legend goes beside the axes, off the data
    fig, ax = plt.subplots(figsize=(9.6 if many else 6.4, 4.4), constrained_layout=True)
    moved_label = True
    for lab, s in summ.groupby("label", sort=False):
        s = s.sort_values(x)
        err = np.array([s["mean"] - s["low"], s["high"] - s["mean"]])
        ax.errorbar(s[x], s["mean"], yerr=np.nan_to_num(err), marker="o", capsize=3, label=lab)
        if "moved" in s.columns and (s["moved"] > 0).any():  # still moving at twice the steps
            mv = s[s["moved"] > 0]
            ax.scatter(
                mv[x],
                mv["mean"],
                s=160,
                facecolors="none",
                edgecolors="orange",
                linewidths=2,
                zorder=4,
                label="moved at 2× the steps" if moved_label else None,
            )
            moved_label = False
        nc = s[s.not_converged > 0]
        if len(nc):
            ax.scatter(nc[x], nc["mean"], marker="x", s=60, color="red", zorder=4)
    if (summ.not_converged > 0).any():
        ax.scatter([], [], marker="x", color="red", label=nc_wording(df))
    if metric == "frr_0.9" and "chance_frr_0.9" in summ.columns and summ["chance_frr_0.9"].notna().any():
        ax.axhline(summ["chance_frr_0.9"].max(), color="gray", ls=":", label="chance (random init, max)")
    if _is_log(df[x]) if log_x is None else log_x:
        ax.set_xscale("log")
    if x in ("cooccurrence", "data_rho2"):
        for k, n in enumerate(sorted(df["n"].unique())):
            ax.axvline(
                theory.cooccurrence_threshold(int(n)),
                color="r",
                ls=("--", ":", "-.")[k % 3],
                label="n^{-1/2} (H3)" if df["n"].nunique() == 1 else f"n^{{-1/2}}, n = {int(n)} (H3)",
            )
    off_axis = ""
    if x == "width":
        r = df.iloc[0]
        p = r.get("data_f_mean", r["s"] / r["n"])
        wb = theory.width_bound(int(r["n"]), float(p), float(r["s"]))
        lo, hi = df[x].min(), df[x].max()
        if lo <= wb <= hi:
            ax.axvline(wb, color="r", ls="--", label="Thm 6.1 width n·p^{−s} (p = f)")
        else:
            off_axis = f"  (Thm 6.1 width bound n·f^(−s) = {wb:.3g}: off this axis)"
    seeds = sorted(set(summ.seeds))
    ax.set_xlabel(_label(x) + off_axis)
    ax.set_ylabel(_label(metric))
    if metric_limits(metric):
        ax.set_ylim(*metric_limits(metric))
    ctx = _context(df, [x])
    ax.set_title(
        title
        or f"{_label(metric)} vs {x}"
        + (f" [{ctx}]" if ctx else "")
        + f"\nmean and 95 % interval over {'/'.join(map(str, seeds))} seeds per point",
        fontsize=10,
    )
    ax.legend(fontsize=7, **({"loc": "center left", "bbox_to_anchor": (1.01, 0.5)} if many else {}))
    return _save(fig, out, summ.rename(columns={k: f"{metric}_{k}" for k in ("mean", "low", "high", "sd")}))


def frr_vs_tau(df, store: Store, out: Path, title="") -> list[str]:
    df = done(df).copy()
    df["series"] = _series(df)
    rows = []
    fig, ax = plt.subplots(figsize=(6.4, 4.4), constrained_layout=True)
    for lab, g in df.groupby("series", sort=False):
        curves = [store.load_arrays(h).get("frr_curve") for h in g.cell_hash]
        curves = np.array([c for c in curves if c is not None])
        if not len(curves):
            continue
        m = curves.mean(0)
        ax.plot(CURVE_TAUS, m, label=f"{lab} ({len(curves)} runs)")
        rows += [{"series": lab, "tau": t, "frr_mean": v, "runs": len(curves)} for t, v in zip(CURVE_TAUS, m)]
    ax.set_xlabel("cosine threshold τ")
    ax.set_ylabel("FRR(τ): fraction of features with a neuron at cos ≥ τ")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title(title or "feature recovery rate vs threshold", fontsize=10)
    ax.legend(fontsize=7)
    return _save(fig, out, pd.DataFrame(rows))


def frr_by_step(df, out: Path, title="", steps_needed: int | None = None) -> list[str]:
    """FRR@0.9 after each recorded step (``frr_0.9_by_step``; step 0 is the start, random or planted), one line
    per method variant and x value, mean over seeds with the seeds' range shaded; ``steps_needed`` (T) is
    marked. For the theorem's claim: recovery in a constant number of steps, and whether it lasts."""
    df = done(df).copy()
    df = df[df["frr_0.9_by_step"].map(lambda t: isinstance(t, (list, tuple)) and len(t) > 1)]
    if df.empty:
        return []
    keys = [k for k in ("n", "d", "p_over_f") if k in df.columns and df[k].nunique() > 1]
    df["series"] = [
        f"{v}" + "".join(f", {k} = {r[k]:g}" for k in keys)
        for v, (_, r) in zip(variant_labels(df, keys), df.iterrows())
    ]
    df = df.sort_values(keys, kind="stable") if keys else df  # the legend in numeric order (n = 128 before 1024)
    fig, ax = plt.subplots(figsize=(10.5, 4.8), constrained_layout=True)
    rows = []
    for ser, g in df.groupby("series", sort=False):
        traj = np.array([list(t) for t in g["frr_0.9_by_step"] if len(t) == len(g["frr_0.9_by_step"].iloc[0])])
        steps = np.arange(traj.shape[1])
        m = traj.mean(0)
        (line,) = ax.plot(steps, m, marker="o", ms=3, label=f"{ser} ({len(traj)} seeds)")
        ax.fill_between(steps, traj.min(0), traj.max(0), color=line.get_color(), alpha=0.12)
        rows += [{"series": ser, "step": int(k), "frr_0.9_mean": v, "seeds": len(traj)} for k, v in zip(steps, m)]
    if steps_needed:
        ax.axvline(steps_needed, color="black", ls=":", lw=1.2, label=f"T = ⌈1/ς⌉ = {steps_needed}")
    ax.set_xlabel("step (0: the start)")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))  # steps are whole: no "1.5" tick
    ax.set_ylabel("FRR@0.9 after the step")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title(title or "recovery step by step", fontsize=10)
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _save(fig, out, pd.DataFrame(rows))


def alignment(df, x: str, out: Path, title="") -> list[str]:
    """Each feature's best alignment error (``align_error``: the median over features of 1 − best cosine) against
    ``x`` on log–log axes, one line per method variant (mean over seeds with its interval), with the least-squares
    power law through the cell means and its exponent in the legend — the theorem's "cos ≥ 1 − o(1)" as a trend."""
    df = _done(df, "align_error").copy()
    if x not in df.columns or df[x].nunique() < 2:
        return []
    df = _as_variants(df, [x])
    summ = _summarise(df, ["label", x], "align_error")
    fig, ax = plt.subplots(figsize=(6.8, 4.6), constrained_layout=True)
    for lab, g in summ.groupby("label", sort=False):
        g = g.sort_values(x)
        lo = np.clip(g["low"].fillna(g["mean"]), 1e-9, None)
        err = np.array([g["mean"] - lo, g["high"].fillna(g["mean"]) - g["mean"]])
        (line,) = ax.plot(g[x], g["mean"], marker="o", label=lab)
        ax.errorbar(
            g[x], g["mean"], yerr=np.clip(np.nan_to_num(err), 0, None), fmt="none", capsize=3, color=line.get_color()
        )
        ok = (g["mean"] > 0) & (g[x] > 0)
        if ok.sum() >= 2:
            a, b = np.polyfit(np.log(g[x][ok]), np.log(g["mean"][ok]), 1)
            xs = np.geomspace(g[x][ok].min(), g[x][ok].max(), 50)
            ax.plot(xs, np.exp(b) * xs**a, ls="--", lw=1, color=line.get_color(), label=f"fit ∝ {x}^{a:.2f}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(_label(x))
    ax.set_ylabel("median over features of 1 − best cosine")
    ax.set_title(title or f"alignment error along {x}", fontsize=10)
    ax.legend(fontsize=7)
    return _save(fig, out, summ.rename(columns={k: f"align_error_{k}" for k in ("mean", "low", "high", "sd")}))


def frontier(df, out: Path, title="") -> list[str]:
    """Sparsity–reconstruction frontier: FVU (log) vs L0, one line per label through its variants, each
    point the mean over seeds with its 95 % interval in both coordinates and labelled with the
    hyperparameters that make the variant."""
    df = done(df).copy()
    df["series"] = variant_labels(df)
    df["setting"] = [x.lstrip(", ") for x in _data_setting(df)]  # one panel per data setting
    rows = []
    for (setting, lab, ser), g in df.groupby(["setting", "label", "series"], sort=False):
        l0, fvu = seed_interval(g.l0.to_numpy(float)), seed_interval(g.fvu.to_numpy(float))
        rows.append(
            {
                "setting": setting,
                "label": lab,
                "series": ser,
                "variant": ser[len(lab) :].strip(" ()"),
                "l0": l0[0],
                "l0_low": l0[1],
                "l0_high": l0[2],
                "fvu": fvu[0],
                "fvu_low": fvu[1],
                "fvu_high": fvu[2],
                "frr_0.9": g["frr_0.9"].mean(),
                "seeds": g.seed.nunique(),
            }
        )
    summ = pd.DataFrame(rows)
    settings = list(dict.fromkeys(summ.setting))
    fig, axes = plt.subplots(
        1, len(settings), figsize=(7.2 * len(settings), 5.0), squeeze=False, constrained_layout=True
    )
    for ax, setting in zip(axes.flat, settings):
        _frontier_panel(ax, summ[summ.setting == setting], setting)
    seeds = sorted(set(summ.seeds)) if len(summ) else [0]
    fig.suptitle(
        title
        or f"sparsity–reconstruction frontier (lower-left is better) [{_context(df, [])}]\n"
        f"mean and 95 % interval over {'/'.join(map(str, seeds))} seeds",
        fontsize=10,
    )
    return _save(fig, out, summ)


def _frontier_panel(ax, summ: pd.DataFrame, setting: str) -> None:
    """One data setting's frontier: a line per label through its variants, each annotated."""
    for lab, s in summ.groupby("label", sort=False):
        s = s.sort_values("l0")
        y = s.fvu.clip(lower=1e-4)
        xerr = np.nan_to_num(np.array([s.l0 - s.l0_low, s.l0_high - s.l0]).clip(min=0))
        yerr = np.nan_to_num(np.array([y - s.fvu_low.clip(lower=1e-4), s.fvu_high.clip(lower=1e-4) - y]).clip(min=0))
        line = ax.errorbar(s.l0, y, xerr=xerr, yerr=yerr, marker="o", capsize=2, label=lab)
        for _, r in s.iterrows():
            if r.variant:
                ax.annotate(
                    r.variant,
                    (r.l0, max(r.fvu, 1e-4)),
                    textcoords="offset points",
                    xytext=(4, 3),
                    fontsize=6,
                    color=line[0].get_color(),
                )
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel(_label("l0"))
    ax.set_ylabel("fraction of variance unexplained (FVU)")
    if setting:
        ax.set_title(setting, fontsize=9)
    ax.legend(fontsize=7)


def consistency_plot(df, store: Store, out: Path, title="") -> list[str]:
    """Cross-seed consistency: fraction of alive neurons of one seed's SAE with a cos ≥ 0.9 partner in
    another seed's SAE (same data model, same hyperparameters), mean over seed pairs. Meaningful when the
    sweep fixes ``[data] seed`` so that seeds differ only in the SAE's initialisation."""
    df = done(df).copy()
    df["series"] = _series(df)
    rows = []
    for lab, g in df.groupby("series", sort=False):
        vals = seed_pair_consistency(g, store)
        if vals:
            rows.append({"series": lab, "consistency": float(np.nanmean(vals)), "pairs": len(vals)})
    table = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(6.4, 0.45 * max(4, len(rows)) + 1), constrained_layout=True)
    if len(table):
        ax.barh(table.series, table.consistency, color="tab:blue")
        for i, v in enumerate(table.consistency):
            ax.text(v + 0.01, i, f"{v:.2f}", va="center", fontsize=8)
    ax.set_xlim(0, 1.1)
    ax.invert_yaxis()
    ax.set_xlabel("cross-seed consistency (fraction of neurons with a cos ≥ 0.9 partner)")
    ax.set_title(title or "consistency across seeds", fontsize=10)
    return _save(fig, out, table)


def frr_vs_magnitude(df, store: Store, out: Path, title="") -> list[str]:
    """Per-feature recovery (best cos ≥ 0.9) vs the feature's magnitude h_i (per_feature magnitudes)."""
    df = done(df).copy()
    df["series"] = _series(df)
    rows = []
    for lab, g in df.groupby("series", sort=False):
        hs, rec = magnitude_recovery(g, store)
        if not len(hs):
            continue
        bins = np.geomspace(hs.min(), hs.max() * 1.0001, 9)
        idx = np.digitize(hs, bins) - 1
        for b in range(len(bins) - 1):
            m = idx == b
            if m.any():
                rows.append(
                    {
                        "series": lab,
                        "h_mid": math.sqrt(bins[b] * bins[b + 1]),
                        "frr_0.9": rec[m].mean(),
                        "features": int(m.sum()),
                    }
                )
    table = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(6.4, 4.4), constrained_layout=True)
    for lab, s in table.groupby("series", sort=False) if len(table) else []:
        ax.plot(s.h_mid, s["frr_0.9"], marker="o", label=lab)
    ax.set_xscale("log")
    ax.set_ylim(-0.03, 1.03)
    ax.set_xlabel("feature magnitude h_i (binned)")
    ax.set_ylabel("fraction of those features recovered (cos ≥ 0.9)")
    ax.set_title(title or "recovery vs feature magnitude (balance)", fontsize=10)
    ax.legend(fontsize=7)
    return _save(fig, out, table)


def paper_table(df, paper: dict, out: Path, title="") -> list[str]:
    """Bars of our FRR@0.8 / FRR@0.9 per label and reading (mean over seeds, 95 % interval as error bars),
    the paper's numbers as markers."""
    df = reading_labels(done(df))
    df = df.assign(
        reading=[r if lab == v else v + r[len(lab) :] for r, lab, v in zip(df.reading, df.label, variant_labels(df))]
    )
    labels = list(dict.fromkeys(df.reading))
    rows = []
    for lab in labels:
        g = df[df.reading == lab]
        n = int(g["n"].iloc[0])
        i8, i9 = (seed_interval(g[m].to_numpy(float), n) for m in ("frr_0.8", "frr_0.9"))
        ref = paper.get(g.label.iloc[0], [np.nan, np.nan])
        rows.append(
            {
                "label": lab,
                "ours_frr_0.8": 100 * i8[0],
                "ours_frr_0.8_low": 100 * i8[1],
                "ours_frr_0.8_high": 100 * i8[2],
                "ours_frr_0.9": 100 * i9[0],
                "ours_frr_0.9_low": 100 * i9[1],
                "ours_frr_0.9_high": 100 * i9[2],
                "paper_frr_0.8": ref[0],
                "paper_frr_0.9": ref[1],
                "seeds": g.seed.nunique(),
            }
        )
    table = pd.DataFrame(rows)
    fig, ax = plt.subplots(figsize=(0.7 * len(labels) + 3, 5.2), constrained_layout=True)
    xi = np.arange(len(labels))
    for off, t, name in ((-0.2, "0.8", "ours τ = 0.8"), (0.2, "0.9", "ours τ = 0.9")):
        m = table[f"ours_frr_{t}"]
        err = np.nan_to_num(np.array([m - table[f"ours_frr_{t}_low"], table[f"ours_frr_{t}_high"] - m]).clip(min=0))
        ax.bar(xi + off, m, 0.4, yerr=err, capsize=2, label=name)
    ax.scatter(xi - 0.2, table["paper_frr_0.8"], marker="_", s=400, color="k", zorder=3, label="paper τ = 0.8")
    ax.scatter(xi + 0.2, table["paper_frr_0.9"], marker="_", s=400, color="r", zorder=3, label="paper τ = 0.9")
    ax.set_xticks(xi, labels, rotation=35, ha="right", fontsize=7)
    ax.set_ylim(0, 105)
    ax.set_ylabel("FRR (%)")
    seeds = sorted(set(table.seeds)) if len(table) else [0]
    ax.set_title(
        title or f"ours (bars, 95 % interval over {'/'.join(map(str, seeds))} seeds) vs the paper (markers)",
        fontsize=10,
    )
    ax.legend(fontsize=7, loc="upper right")
    return _save(fig, out, table)


def _by_step(df, store, sweep, out):
    from ..theory import steps_needed

    vs = (sweep.theory or {}).get("varsigma", 0)
    return frr_by_step(df, out, steps_needed=steps_needed(vs) if vs else None)


def _features():
    from . import features  # the reviewers' figures (plots/features.py), imported when drawn

    return features


#: curve kind -> drawer(df, store, sweep, out path without suffix) -> PNG paths. The names are
#: sweep.spec.CURVE_KINDS (the torch-free list a sweep file is checked against); a test holds the two equal.
CURVES = {
    "frr_vs_tau": lambda df, store, sweep, out: frr_vs_tau(df, store, out),
    "frontier": lambda df, store, sweep, out: frontier(df, out),
    "frr_by_step": _by_step,
    "frequency_ratio": lambda df, store, sweep, out: _features().frequency_ratio(df, store, out),
    "spectrum": lambda df, store, sweep, out: _features().spectrum(df, store, out),
    "peak": lambda df, store, sweep, out: _features().peak(df, out, (sweep.report or {}).get("peak_metric", "mmcs")),
    "frr_vs_mu": lambda df, store, sweep, out: _features().frr_vs_mu(df, out),
    "alignment": lambda df, store, sweep, out: alignment(df, sweep.plot.get("x") or "n", out),
    "consistency": lambda df, store, sweep, out: consistency_plot(df, store, out),
    "frr_vs_magnitude": lambda df, store, sweep, out: frr_vs_magnitude(df, store, out),
    "table": lambda df, store, sweep, out: paper_table(df, sweep.report.get("paper", {}), out),
}
