"""What is computed from results before anything is drawn or claimed: per-cell intervals over seeds,
tri-state comparisons against a rule's threshold, verdicts that can be "inconclusive", recovery
boundaries (crossings of a level along an axis) with their intervals, and grid-edge checks for tuned
hyperparameters.

Interval construction (stated once, used everywhere): for a cell with S seeds whose metric values are
y_1..y_S, the interval is the Student-t 95 % interval of their mean (seed-to-seed variation); for a
recovery fraction (FRR@τ) it is widened to contain the Wilson 95 % interval of the pooled count —
k of n·S features recovered — so that seeds that agree exactly still carry the finite-feature
uncertainty. One seed: the Wilson interval alone (fractions) or no interval (other metrics).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import warnings

import numpy as np
import pandas as pd
from scipy import optimize, stats

from .measures import higher_is_better, is_fraction
from .metrics import consistency
from .store import Store

LEVEL = 0.95
VERDICTS = ("reproduced", "partly", "not reproduced", "inconclusive", "not run")


# ------------------------------------------------------------------------------------------ intervals
def wilson(k: float, n: float, level: float = LEVEL) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion k / n."""
    if n <= 0:
        return (math.nan, math.nan)
    z = stats.norm.ppf(0.5 + level / 2)
    p = k / n
    den = 1 + z * z / n
    mid = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, mid - half), min(1.0, mid + half))


def seed_interval(values, n_items: int | None = None, level: float = LEVEL) -> tuple[float, float, float]:
    """(mean, low, high) over seeds of one cell (see the module docstring). values: (S,) per-seed metric;
    n_items: features per seed when the metric is a recovery fraction (then the Wilson widening applies)."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if len(v) == 0:
        return (math.nan, math.nan, math.nan)
    m = float(v.mean())
    lo = hi = math.nan
    if len(v) >= 2:
        half = stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v))
        lo, hi = m - half, m + half
    if n_items:
        wl, wh = wilson(m * n_items * len(v), n_items * len(v), level)
        lo, hi = (wl, wh) if math.isnan(lo) else (min(lo, wl), max(hi, wh))
        lo, hi = max(0.0, lo), min(1.0, hi)
    return (m, lo, hi)


def done(df: pd.DataFrame) -> pd.DataFrame:
    """The rows of finished cells (failed and pending ones carry no metrics): the one filter every figure
    and rule starts from."""
    return df[df.status == "done"]


def settled(df: pd.DataFrame) -> pd.DataFrame:
    """The rows that may decide a verdict: finished (``done``) and converged under today's rule (``converged``) —
    a run still moving at its end never decides; a cell left without such rows leaves its condition undecided
    (re-run it longer)."""
    d = done(df)
    return d[converged(d)] if len(d) else d


def cell_summary(df: pd.DataFrame, keys: list[str], metric: str) -> pd.DataFrame:
    """One row per distinct ``keys``: ``mean``, ``low``, ``high`` (the interval above), ``sd``, ``seeds``
    (distinct seeds, never variants) and ``runs`` (rows pooled; more than seeds only if a caller pooled
    variants, which the plots refuse)."""
    rows = []
    for key, g in df.groupby(keys, dropna=False, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        n_items = int(g["n"].iloc[0]) if is_fraction(metric) and "n" in g.columns else None
        m, lo, hi = seed_interval(g[metric].to_numpy(dtype=float), n_items)
        rows.append(
            {
                **dict(zip(keys, key)),
                "mean": m,
                "low": lo,
                "high": hi,
                "sd": float(g[metric].std()) if len(g) > 1 else math.nan,
                "seeds": int(g["seed"].nunique()) if "seed" in g.columns else len(g),
                "runs": len(g),
            }
        )
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------------------------ rules
def at_least(interval: tuple[float, float, float], threshold: float) -> bool | None:
    """True if the whole interval is ≥ threshold, False if the whole interval is below, None if it
    straddles (the data cannot decide). Without an interval the mean decides."""
    m, lo, hi = interval
    if math.isnan(m):
        return None
    if math.isnan(lo) or math.isnan(hi):
        return bool(m >= threshold)
    if lo >= threshold:
        return True
    if hi < threshold:
        return False
    return None


def at_most(interval, threshold: float) -> bool | None:
    """True if the whole interval is ≤ threshold, False if the whole interval is above, None if it straddles."""
    m, lo, hi = interval
    if math.isnan(m):
        return None
    if math.isnan(lo) or math.isnan(hi):
        return bool(m <= threshold)
    if hi <= threshold:
        return True
    if lo > threshold:
        return False
    return None


def difference_interval(a, b, level: float = LEVEL) -> tuple[float, float, float]:
    """mean(a) − mean(b) for two independent samples of per-seed values, with a Welch t interval
    (no interval with fewer than two values on a side)."""
    a = np.asarray([x for x in a if np.isfinite(x)], float)
    b = np.asarray([x for x in b if np.isfinite(x)], float)
    if not len(a) or not len(b):
        return (math.nan, math.nan, math.nan)
    diff = float(a.mean() - b.mean())
    if len(a) < 2 or len(b) < 2:
        return (diff, math.nan, math.nan)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = math.sqrt(va + vb)
    if se == 0:
        return (diff, diff, diff)
    dof = (va + vb) ** 2 / ((va**2 / (len(a) - 1) if va else 0) + (vb**2 / (len(b) - 1) if vb else 0))
    half = stats.t.ppf(0.5 + level / 2, dof) * se
    return (diff, diff - half, diff + half)


def any_true(conds) -> bool | None:
    """Tri-state OR: True if any is True, else None if any is undecided, else False."""
    if any(c is True for c in conds):
        return True
    return None if any(c is None for c in conds) else False


def all_true(conds) -> bool | None:
    """Tri-state AND: False if any is False, else None if any is undecided, else True."""
    if any(c is False for c in conds):
        return False
    return None if any(c is None for c in conds) else True


def verdict(conditions: list[bool | None], primary: bool = True) -> str:
    """The claim's verdict from its conditions (True met, False failed, None undecided by the intervals).

    Decided conditions alone: with ``primary``, conditions[0] is the claim's main positive condition and
    without it nothing is reproduced; all met → reproduced; none met → not reproduced; else partly. An
    undecided condition makes the verdict "inconclusive" exactly when resolving it either way would
    change the verdict."""
    if not conditions:
        return "not run"
    undecided = [i for i, c in enumerate(conditions) if c is None]
    outcomes = set()
    for fill in range(2 ** len(undecided)):
        c = list(conditions)
        for j, i in enumerate(undecided):
            c[i] = bool(fill >> j & 1)
        outcomes.add(_decided_verdict(c, primary))
    return outcomes.pop() if len(outcomes) == 1 else "inconclusive"


def _decided_verdict(ok: list[bool], primary: bool) -> str:
    if primary and not ok[0]:
        return "not reproduced"
    if all(ok):
        return "reproduced"
    return "partly" if any(ok) else "not reproduced"


def fmt_interval(iv, pct: bool = True) -> str:
    """ "71.1 % [62.0, 80.3]" (pct) or "0.311 [0.29, 0.33]"."""
    m, lo, hi = iv
    if m is None or math.isnan(m):
        return "—"
    if pct:
        core = f"{100 * m:.1f} %"
        return core if math.isnan(lo) else f"{core} [{100 * lo:.1f}, {100 * hi:.1f}]"
    core = f"{m:.3g}"
    return core if math.isnan(lo) else f"{core} [{lo:.3g}, {hi:.3g}]"


# ------------------------------------------------------------------------------------------ boundaries
def _sigmoid(t, t0, slope):
    return 1.0 / (1.0 + np.exp(-slope * (t - t0)))


def crossings(xs, per_seed: list, level: float = 0.5, log: bool = True, n_boot: int = 200, seed: int = 0) -> list[dict]:
    """Where a cell-mean curve crosses ``level`` along one axis (a band has two crossings).

    xs: (K,) sorted axis values; per_seed: K arrays of per-seed metric values in [0, 1]. Each sign change
    of mean − level between neighbours is a bracket [lower, upper]; the estimate is the crossing of a
    logistic in log x (or x) fitted by least squares to the per-seed values of the monotone stretch around
    the bracket — or, when the fit lands outside its own bracket, the bracket's linear interpolation. Its
    interval covers seeds and the fit's form: the 2.5–97.5 % percentiles of a bootstrap that resamples seeds
    within each cell, refitting both the logistic and the interpolation, joined with both point estimates and
    kept inside the bracket (``interval`` = "seeds+form"); with one seed the bracket itself is the interval
    (``interval`` = "bracket"). Returns dicts with ``lower``, ``upper``, ``estimate``, ``low``, ``high``,
    ``direction`` ('rising' | 'falling'), ``cells``, ``seeds``, ``interval``, ``fit_in_bracket``."""
    xs = np.asarray(xs, float)
    t = np.log(xs) if log else xs
    means = np.array([np.mean(v) if len(v) else np.nan for v in per_seed])
    out = []
    ok = ~np.isnan(means)
    idx = np.flatnonzero(ok)
    rng = np.random.default_rng(seed)
    for a, b in zip(idx[:-1], idx[1:]):
        da, db = means[a] - level, means[b] - level
        if not ((da >= 0) != (db >= 0)):
            continue
        rising = db > da
        # the monotone stretch around [a, b]: extend while the mean keeps moving the same way
        lo_i, hi_i = a, b
        while lo_i > idx[0] and ((means[lo_i - 1] <= means[lo_i]) == rising) and not np.isnan(means[lo_i - 1]):
            lo_i -= 1
        while hi_i < idx[-1] and ((means[hi_i + 1] >= means[hi_i]) == rising) and not np.isnan(means[hi_i + 1]):
            hi_i += 1
        cells = list(range(lo_i, hi_i + 1))

        def fit(samples):
            tt = np.concatenate([[t[i]] * len(samples[i]) for i in cells])
            yy = np.concatenate([samples[i] for i in cells])
            # start at the bracket's linear interpolation
            t0 = t[a] + (t[b] - t[a]) * (level - means[a]) / (means[b] - means[a])
            slope0 = (4 if rising else -4) / max(t[b] - t[a], 1e-9)
            try:
                with warnings.catch_warnings():  # a flat stretch leaves the covariance undefined: not needed here
                    warnings.simplefilter("ignore", optimize.OptimizeWarning)
                    warnings.simplefilter("ignore", RuntimeWarning)  # exp overflow on a steep fit: harmless
                    (c, s), _ = optimize.curve_fit(_sigmoid, tt, yy, p0=(t0, slope0), maxfev=2000)
            except (RuntimeError, ValueError):
                return math.nan
            # level ≠ 0.5: solve sigmoid = level
            c_level = c + math.log(level / (1 - level)) / s if 0 < level < 1 and s != 0 else c
            if not (t[cells[0]] - (t[b] - t[a]) <= c_level <= t[cells[-1]] + (t[b] - t[a])):
                return math.nan
            return c_level

        def lin(samples):
            """The model-free form: the bracket's linear interpolation (in log x) of the sample's means."""
            ma, mb = np.mean(samples[a]), np.mean(samples[b])
            if (ma - level >= 0) == (mb - level >= 0):
                return math.nan
            return t[a] + (t[b] - t[a]) * (level - ma) / (mb - ma)

        per = [np.asarray(per_seed[i], float) for i in range(len(xs))]
        est_fit, est_lin = fit(per), lin(per)
        # the estimate must lie in its own bracket (the mean curve changes sign there); a fit that puts it
        # outside is not a measurement: the interpolation is reported instead
        inside_bracket = not math.isnan(est_fit) and t[a] <= est_fit <= t[b]
        est = est_fit if inside_bracket else est_lin
        boots_fit, boots_lin = [], []
        for _ in range(n_boot):
            sample = [rng.choice(v, len(v)) if len(v) else v for v in per]
            boots_fit.append(fit(sample))
            boots_lin.append(lin(sample))
        boots_fit = np.array([v for v in boots_fit if not math.isnan(v)])
        boots_lin = np.array([v for v in boots_lin if not math.isnan(v)])
        n_seeds = int(min(len(per_seed[a]), len(per_seed[b])))
        if n_seeds < 2 or len(boots_fit) < 20:
            # one seed (or no stable refit): nothing to bootstrap; the bracket is the model-free interval
            lo_b, hi_b, kind = t[a], t[b], "bracket"
        else:
            # seeds (bootstrap) and the fit's form (logistic vs interpolation, both bootstrapped): the interval
            # covers both forms, kept inside the bracket
            parts = [np.percentile(boots_fit, [2.5, 97.5])]
            if len(boots_lin) >= 20:
                parts.append(np.percentile(boots_lin, [2.5, 97.5]))
            cands = [q for p_ in parts for q in p_] + [v for v in (est_fit, est_lin) if not math.isnan(v)]
            lo_b, hi_b, kind = max(t[a], min(cands)), min(t[b], max(cands)), "seeds+form"
        back = np.exp if log else (lambda q: q)
        out.append(
            {
                "lower": float(xs[a]),
                "upper": float(xs[b]),
                "estimate": float(back(est)),
                "low": float(back(lo_b)) if not math.isnan(lo_b) else math.nan,
                "high": float(back(hi_b)) if not math.isnan(hi_b) else math.nan,
                "direction": "rising" if rising else "falling",
                "cells": len(cells),
                "seeds": n_seeds,
                "interval": kind,
                "fit_in_bracket": inside_bracket,
            }
        )
    return out


def crossings_along(
    g: pd.DataFrame, x: str, metric: str, level: float = 0.5, log: bool = True, xs=None
) -> tuple[list, list, list[dict]]:
    """One curve's crossings: (xs, per-seed arrays of ``metric`` at each x, ``crossings``) for the rows ``g``
    along axis ``x`` (``xs``: the axis values to use, default those present in g)."""
    xs = sorted(g[x].dropna().unique()) if xs is None else list(xs)
    per = [g[g[x] == v][metric].to_numpy(float) for v in xs]
    return xs, per, crossings(xs, per, level, log=log)


# ------------------------------------------------------------------------------------------ tuning
def grid_edge(values, chosen) -> str | None:
    """'low' or 'high' if ``chosen`` sits on that edge of a hyperparameter grid of ≥ 2 numeric values
    (the working range may lie beyond it), else None."""
    vals = sorted(
        {
            float(v)
            for v in values
            if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) and np.isfinite(v)
        }
    )
    if len(vals) < 2 or chosen is None or not isinstance(chosen, (int, float, np.number)) or isinstance(chosen, bool):
        return None
    if float(chosen) == vals[0]:
        return "low"
    if float(chosen) == vals[-1]:
        return "high"
    return None


# ------------------------------------------------------------------------------------------ convergence
#: the stored readings ``metrics.converged`` judges a run by
CONVERGENCE_READINGS = (
    "freq_excess_log",
    "freq_log_error",
    "l0_target",
    "l0",
    "loss_drop_last_tenth",
    "frr_rise_last_fifth",
    "l0_drift_last_fifth",
)


def converged(df: pd.DataFrame) -> pd.Series:
    """Per results row: today's rule (metrics.converged) applied to the readings the row stored — never the
    ``converged`` flag stored at training time, which an older rule may have set (a rule tightened since then
    judges stored cells too). A reading a row lacks (stored before it existed) passes."""
    from .metrics import converged as rule

    cols = [c for c in CONVERGENCE_READINGS if c in df.columns]
    return pd.Series([rule({c: r[c] for c in cols})[0] for _, r in df[cols].iterrows()], index=df.index, dtype=bool)


# ------------------------------------------------------------------------------------------ per-variant analyses
def tune_per_cell(df: pd.DataFrame, axes: list[str], metric: str, by: str) -> pd.DataFrame:
    """For each label and grid point, keep the hyperparameter variant with the best mean ``by`` over
    seeds — the highest, or the lowest for a metric the registry declares lower-is-better (fvu, l0, mse)
    (``explained_variance``: what a user can tune on; or the metric itself: the oracle). Adds ``tuned_choice``
    ("l1=0.3") and ``tuned_edge`` ("l1=1 (high edge of 0.01–1)" when the choice sits on an edge of that cell's
    grid — the best value may lie beyond it — else "")."""
    hyper = hyper_columns(df, axes)
    if not hyper:
        return df.assign(tuned_choice="", tuned_edge="")
    keep = []
    for _, g in df.groupby(["label", *axes], dropna=False):
        varying = [h for h in hyper if g[h].nunique(dropna=True) > 1]
        if not varying:
            keep.append(g.assign(tuned_choice="", tuned_edge=""))
            continue
        # the registry's direction: tuned by fvu, l0 or mse the lowest is the best
        score = g.groupby(varying, dropna=False)[by].mean() * (1 if higher_is_better(by) else -1)
        top = [k if isinstance(k, tuple) else (k,) for k in score.index[score >= score.max() - 1e-12]]

        def on_edge(key):
            return any(grid_edge(g[h].dropna().unique(), v) for h, v in zip(varying, key))

        # a tie between an edge and an interior choice is no evidence that the optimum lies beyond the grid
        best = next((k for k in top if not on_edge(k)), top[0])
        mask = np.ones(len(g), dtype=bool)
        edges = []
        for h, v in zip(varying, best):
            mask &= (g[h].values == v) | (pd.isna(g[h].values) & pd.isna(v))
            side = grid_edge(g[h].dropna().unique(), v)
            if side:
                vals = sorted(g[h].dropna().unique())
                edges.append(f"{h}={_short(v)} ({side} edge of {_short(vals[0])}–{_short(vals[-1])})")
        choice = ", ".join(f"{h}={_short(v)}" for h, v in zip(varying, best))
        keep.append(g[mask].assign(tuned_choice=choice, tuned_edge="; ".join(edges)))
    return pd.concat(keep)


def hyper_columns(df: pd.DataFrame, axes=()) -> list[str]:
    """The results columns that are method hyperparameters (any registered method's config field, or a
    derived ``X_over_f`` / ``X_over_s`` key), except ``axes``."""
    from .sae import REGISTRY
    from .sae.base import derived_base

    names = {f.name for cls in REGISTRY.values() for f in dataclasses.fields(cls.Config)}
    return [c for c in df.columns if c not in axes and derived_base(c) in names]


def _short(v) -> str:
    return f"{v:g}" if isinstance(v, (int, float, np.number)) and not isinstance(v, bool) else str(v)


def variant_labels(df: pd.DataFrame, axes=()) -> list[str]:
    """A label per results row naming its method variant: the label plus the hyperparameters that vary
    inside that label ("L1 (l1=0.3)"), so that no summary pools two variants as if they were seeds."""
    hyper = hyper_columns(df, axes)
    out = []
    for _, r in df.iterrows():
        varying = [h for h in hyper if pd.notna(r[h]) and df[df.label == r.label][h].nunique() > 1]
        out.append(r.label + ("" if not varying else " (" + ", ".join(f"{h}={_short(r[h])}" for h in varying) + ")"))
    return out


def seed_pair_consistency(g: pd.DataFrame, store: Store, tau: float = 0.9, with_seeds: bool = False) -> list:
    """Consistency of every ordered pair of seeds among the rows ``g`` of one method variant that share a
    data model (rows with a stored decoder only): one value per pair (``with_seeds``: (i, j, value))."""
    import torch

    from .model.spec import GENERATOR_FIELDS

    data_cols = [c for c in GENERATOR_FIELDS if c in g.columns and c != "seed"]
    vals = []
    for _, point in g.groupby(data_cols, dropna=False):  # same data model, different cell seeds
        decs = {}
        for _, r in point.iterrows():
            a = store.load_arrays(r.cell_hash)
            if "decoder" in a:
                decs[r.seed] = (torch.from_numpy(a["decoder"]), torch.from_numpy(a["neuron_freq"] > 0))
        vals += [
            (i, j, consistency(decs[i][0], decs[j][0], tau, decs[i][1]))
            for i, j in itertools.permutations(sorted(decs), 2)
        ]
    return vals if with_seeds else [v for _, _, v in vals]


def seed_bootstrap_pairs(pair_lists: list, combine=None, n_boot: int = 2000, seed: int = 0, level: float = LEVEL):
    """(estimate, low, high) of ``combine`` (default: the first mean) applied to the mean of each list of
    (i, j, value) seed-pair triples (``seed_pair_consistency(..., with_seeds=True)``), the interval a bootstrap
    over **seeds** (the independent units), not over the ordered pairs they form: each replicate draws the
    seeds the lists share with replacement and averages, per list, the pairs of distinct drawn seeds. With
    fewer than three seeds there is no interval (NaN bounds)."""
    combine = combine or (lambda means: means[0])
    tables = [{(i, j): v for i, j, v in pairs if np.isfinite(v)} for pairs in pair_lists]
    if not all(tables):
        return (math.nan, math.nan, math.nan)
    est = float(combine([np.mean(list(t.values())) for t in tables]))
    seeds = sorted(set.intersection(*[{i for i, _ in t} | {j for _, j in t} for t in tables]))
    if len(seeds) < 3:
        return (est, math.nan, math.nan)
    rng = np.random.default_rng(seed)
    reps = []
    for _ in range(n_boot):
        draw = rng.choice(seeds, len(seeds))
        vals = [[t[(i, j)] for i in draw for j in draw if i != j and (i, j) in t] for t in tables]
        if all(vals):
            reps.append(combine([np.mean(v) for v in vals]))
    lo, hi = np.percentile(reps, [100 * (1 - level) / 2, 100 * (1 + level) / 2])
    return (est, float(lo), float(hi))


def consistency_interval(pairs: list, n_boot: int = 2000, seed: int = 0, level: float = LEVEL):
    """(mean, low, high) of cross-seed consistency from ``seed_pair_consistency(..., with_seeds=True)``, its
    interval a bootstrap over seeds (``seed_bootstrap_pairs``)."""
    return seed_bootstrap_pairs([pairs], None, n_boot, seed, level)


def row_spec(r: pd.Series):
    """The GeneratorSpec a results row was trained on: its data fields at the row's cell ``seed`` (a fixed
    ``data_seed`` wins), exactly as the sweep built it (GeneratorSpec.for_cell)."""
    from .model.spec import GENERATOR_FIELDS, GeneratorSpec

    data = {k: (list(r[k]) if isinstance(r[k], tuple) else r[k]) for k in GENERATOR_FIELDS if k in r.index}
    data = {k: v for k, v in data.items() if not (isinstance(v, float) and math.isnan(v)) and v is not None}
    data.pop("seed", None)
    if "data_seed" in r.index and pd.notna(r["data_seed"]):
        data["seed"] = int(r["data_seed"])
    return GeneratorSpec.for_cell(data, int(r["seed"]))


def magnitude_recovery(g: pd.DataFrame, store: Store, tau: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Per-feature magnitudes h_i and whether each feature was recovered (best cos ≥ tau), concatenated
    over the rows ``g`` with per_feature magnitudes and stored arrays: two (Σ n,) arrays."""
    from .model.sampler import feature_magnitudes

    hs, rec = [], []
    for _, r in g.iterrows():
        h = feature_magnitudes(row_spec(r))
        a = store.load_arrays(r.cell_hash)
        if h is None or "feature_best" not in a:
            continue
        hs.append(h.numpy())
        rec.append(a["feature_best"] >= tau)
    if not hs:
        return np.array([]), np.array([], dtype=bool)
    return np.concatenate(hs), np.concatenate(rec)


def reading_labels(df: pd.DataFrame) -> pd.DataFrame:
    """Adds ``reading``: the label, marked "· unit-norm rows" where the data were row-normalised."""
    df = df.copy()
    rn = df["row_norm"] if "row_norm" in df.columns else pd.Series(False, index=df.index)
    df["reading"] = [lab + (" · unit-norm rows" if v is True else "") for lab, v in zip(df.label, rn)]
    return df


# ------------------------------------------------------------------------------------------ hypotheses
def with_hypotheses(df: pd.DataFrame, theory_cfg: dict | None) -> pd.DataFrame:
    """``df`` with one ``hyp_<name>`` column per theory.HYPOTHESES (True/False/None per row) and ``inside``
    (theory.inside over the sweep's ``[theory] require``: True, False, or None when a required hypothesis
    cannot be evaluated). Without requirements every row is inside. The target frequency is ``p``, else
    ``p_over_f`` · s/n; the steps are ``train_steps`` (the trainer's default where unset)."""
    from .theory import HYPOTHESES, cell_hypotheses, inside
    from .training import TrainConfig

    cfg = theory_cfg or {}
    eps, vs, cw = cfg.get("eps", 0.0), cfg.get("varsigma", 0.0), cfg.get("c_width", 1.0)
    req = cfg.get("require", [])
    default_steps = TrainConfig().steps
    if df.empty or not {"n", "d"} <= set(df.columns):  # nothing to evaluate: rows count unless something is required
        out = df.copy()
        for name in HYPOTHESES:
            out[f"hyp_{name}"] = pd.Series([None] * len(df), index=df.index, dtype=object)
        out["inside"] = pd.Series([None if req else True] * len(df), index=df.index, dtype=object)
        return out
    hyps, ins = [], []
    for _, r in df.iterrows():
        row = r.to_dict()
        p = row.get("p")
        if (p is None or p != p) and row.get("p_over_f") == row.get("p_over_f") and row.get("p_over_f") is not None:
            p = float(row["p_over_f"]) * float(row["s"]) / float(row["n"])
        steps = row.get("train_steps")
        row.update(p=p, steps=default_steps if steps is None or steps != steps else steps)
        won = row.get("width_over_n")
        if row.get("width") is None or row.get("width") != row.get("width"):  # width = width_over_n · n
            row["width"] = None if won is None or won != won else max(1, round(float(won) * float(row["n"])))
        h = cell_hypotheses(row, eps, vs, cw)
        hyps.append(h)
        ins.append(inside(h, req))
    out = df.copy()
    for name in HYPOTHESES:
        out[f"hyp_{name}"] = pd.Series([h[name] for h in hyps], index=df.index, dtype=object)
    out["inside"] = pd.Series(ins, index=df.index, dtype=object)
    return out


def inside_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows a rule may count: inside the claim's hypotheses (``with_hypotheses``); rows outside, or
    whose hypotheses cannot be evaluated, count neither for nor against."""
    if "inside" not in df.columns:
        return df
    return df[df["inside"].map(lambda v: v is True)]


# ------------------------------------------------------------------------------------------ per-feature records
def feature_rows(df: pd.DataFrame, store, keep=("label", "seed", "cell_hash")) -> pd.DataFrame:
    """The per-feature records (store.PER_FEATURE_COLUMNS) of the results rows ``df`` that have them, each beside
    the row's ``keep`` columns (and ``series``, the row's variant label, when ``df`` has it); rows without stored
    recovery arrays are skipped. What the reviewers' experiments read (frequency_match, spectrum)."""
    from .store import per_feature_rows

    frames = []
    for _, r in df.iterrows():
        cols = per_feature_rows(store.load_arrays(r.cell_hash))
        if cols is None:
            continue
        f = pd.DataFrame(cols)
        for k in (*keep, *(["series"] if "series" in df.columns else [])):
            f[k] = r[k]
        frames.append(f)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
