"""What every figure shares: axis labels (from the metric registry), log-axis and cell-edge geometry, saving a
figure as PNG and PDF beside the CSV of what was drawn, summaries over seeds, and how series and data settings
are named (figures never pool over a data axis)."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from ..analysis import (  # noqa: E402
    _short,
    cell_summary,
    converged,
    done,
    variant_labels,
)
from ..errors import ConfigError  # noqa: E402
from ..measures import METRICS, is_fraction, label  # noqa: E402
from ..metrics import nc_kinds  # noqa: E402
from ..outputs import atomic_file, describe  # noqa: E402

LABELS = {
    "p_over_f": "target frequency p / feature frequency f",
    "d": "dimension d",
    "n": "features n",
    "s": "sparsity s (non-zeros per row)",
    "width": "SAE width M (neurons)",
    "cooccurrence": "co-occurrence knob r ≈ ρ₂",
    "data_rho2": "measured ρ₂",
    "snr": "signal-to-noise ratio E‖HV‖² / E‖noise‖²",
    "shared": "shared component a (raises μ)",
    "data_mu_max": "measured μ = max |cos(v_i, v_j)|",
    "mag_value": "feature magnitude h",
    "coherence": "target max |cos| μ",
}


def _label(col: str) -> str:
    """An axis label: a metric's from the registry (measures.METRICS), an axis's from LABELS, else the name."""
    return label(col, LABELS.get(col, col))


def metric_limits(metric: str) -> tuple[float, float] | None:
    """Where a bounded metric's axis is drawn (its registered range, padded 3 %); None for an unbounded one."""
    m = METRICS.get(metric) or (METRICS["frr_0.9"] if is_fraction(metric) else None)
    if m is None or not m.bounded:
        return None
    pad = 0.03 * (m.hi - m.lo)
    return m.lo - pad, m.hi + pad


def _is_log(vals) -> bool:
    v = np.asarray(sorted(set(float(x) for x in vals if pd.notna(x))))
    if len(v) == 0:
        return False
    if len(v) < 3 or (v <= 0).any():
        return bool(len(v) == 2 and (v > 0).all() and v[1] / v[0] >= 4)
    r = v[1:] / v[:-1]
    return bool(v[-1] / v[0] >= 8 and r.std() / r.mean() < 0.35)


def _edges(vals, log: bool) -> np.ndarray:
    v = np.asarray(vals, dtype=float)
    if len(v) == 1:
        return np.array([v[0] / 1.5, v[0] * 1.5]) if log else np.array([v[0] - 0.5, v[0] + 0.5])
    if log:
        lv = np.log(v)
        mid = (lv[1:] + lv[:-1]) / 2
        return np.exp(np.concatenate([[lv[0] - (mid[0] - lv[0])], mid, [lv[-1] + (lv[-1] - mid[-1])]]))
    mid = (v[1:] + v[:-1]) / 2
    return np.concatenate([[v[0] - (mid[0] - v[0])], mid, [v[-1] + (v[-1] - mid[-1])]])


def _save(fig, path_base: Path, table: pd.DataFrame) -> list[str]:
    """PNG, PDF and the CSV of what was drawn, each written whole or not at all (outputs.atomic_file)."""
    try:
        path_base.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise describe(e, path_base) from None
    stem = str(path_base)  # not with_suffix: names like frr_0.9 contain dots
    try:
        with atomic_file(stem + ".png") as tmp:
            fig.savefig(tmp, format="png", dpi=130, bbox_inches="tight")
        with atomic_file(stem + ".pdf") as tmp:
            fig.savefig(tmp, format="pdf", bbox_inches="tight")
    finally:
        plt.close(fig)
    write_csv(table, stem + ".csv")
    return [stem + ".png"]


def write_csv(table: pd.DataFrame, path: str) -> None:
    with atomic_file(path) as tmp:
        table.to_csv(tmp, index=False)


def _done(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    if metric not in df.columns or not pd.api.types.is_numeric_dtype(df[metric]) or df[metric].dtype == bool:
        raise ConfigError(
            "metric", f"{metric!r} is not a numeric results column; try frr_0.9, mmcs, mcc, explained_variance, l0"
        )
    fin = done(df)
    if fin.empty:
        raise ConfigError("plot", "no finished cells to draw yet (theory-sim status shows why)")
    return fin


def check_axes(df: pd.DataFrame, axes: list[str]) -> None:
    """Each axis a numeric results column that every method of the figure has (one line otherwise)."""
    fin = done(df)
    for role, col in zip(("x", "y"), axes):
        if col not in df.columns:
            raise ConfigError(role, f"{col!r} is not a results column of this sweep")
        if not pd.api.types.is_numeric_dtype(fin[col].dropna()) or fin[col].dropna().empty:
            raise ConfigError(role, f"{col!r} has no numeric values to put on an axis")
        missing = sorted({lab for lab, g in fin.groupby("label") if g[col].isna().all()})
        if missing and role == "y":
            raise ConfigError(
                role,
                f"{col!r} is not an axis of {', '.join(missing)}; choose one every method has "
                "(a grid axis), or put it on x",
            )


def _tick(v: float) -> str:
    """1/64 rather than 0.015625 on a geometric axis."""
    if 0 < v < 1 and abs(1 / v - round(1 / v)) < 1e-9:
        return f"1/{round(1 / v)}"
    return f"{v:g}"


def _summarise(df: pd.DataFrame, keys: list[str], metric: str) -> pd.DataFrame:
    """Per cell: mean, interval (analysis.cell_summary), how many of its runs did not converge, the mean
    chance level (FRR@0.9 of the random init) and, for tuned tables, the choice and any grid-edge flag."""
    summ = cell_summary(df, keys, metric)
    extra = df.assign(_nc=~converged(df))
    agg = {"not_converged": ("_nc", "sum")}
    if "inside" in df.columns:  # runs outside the claim's hypotheses (or not evaluable): never counted
        extra["_out"] = df["inside"].map(lambda v: v is not True)
        agg["outside_hypotheses"] = ("_out", "sum")
    if "moved" in df.columns:  # the budget check found the cell still moving at twice the steps
        extra["_moved"] = df["moved"].fillna(False).astype(bool)
        agg["moved"] = ("_moved", "sum")
    for c in ("chance_frr_0.9", "chance_frr_0.99"):
        if c in df.columns:
            agg[c] = (c, "mean")
    for c in ("tuned_choice", "tuned_edge"):
        if c in df.columns:
            agg[c] = (c, "first")
    more = extra.groupby(keys, dropna=False, sort=True).agg(**agg).reset_index()
    return summ.merge(more, on=keys, how="left")


def _common_values(summ: pd.DataFrame, x: str, y: str) -> tuple[list, int]:
    """The x values more than half of the rows have: a refined sweep's coarse grid (its ticks; refinement adds
    values to a few rows only), and how many."""
    per_row = [set(g[x].dropna()) for _, g in summ.groupby(y) if g[x].notna().any()]
    counts: dict = {}
    for row in per_row:
        for v in row:
            counts[v] = counts.get(v, 0) + 1
    common = sorted(v for v, k in counts.items() if 2 * k > len(per_row))
    if len(common) < 2:
        common = sorted(summ[x].dropna().unique())
    return common, len(common)


def headline(description: str, limit: int = 160) -> str:
    """A figure's title from its sweep's description: its first sentence where that is short; else that sentence's
    first clause (up to ':'); else its first ``limit`` characters, cut at a word. The experiments' descriptions run
    to a paragraph, which would bury the figure; its caption and REPORT.md carry the rest."""
    text = " ".join(description.split())
    ends = [i + 1 for c in (". ", "? ") if (i := text.find(c)) > 0]
    first = text[: min(ends)] if ends else text
    if len(first) <= limit:
        return first
    colon = first.find(": ")
    if 0 < colon <= limit:
        return first[:colon]
    return first[:limit].rsplit(" ", 1)[0] + " …"


def _data_setting(df: pd.DataFrame, axes=()) -> list[str]:
    """Per row, the data fields that vary across the figure other than its ``axes`` (", n = 64, d = 21"; ""
    when none does)."""
    from ..model.spec import GENERATOR_FIELDS

    extra = [
        c
        for c in GENERATOR_FIELDS
        if c != "seed" and c not in axes and c in df.columns and df[c].astype(str).nunique() > 1
    ]
    # a field zipped with an axis (one value per axis value: theorem_scaling's d = n/4) splits nothing: named once
    follows = {}
    for c in extra:
        for a in axes:
            if a in df.columns and df.groupby(a)[c].nunique(dropna=False).max() == 1:
                follows[c] = _zipped_with(df, c, a)
                break
    extra = [c for c in extra if c not in follows]
    fixed = "".join(follows.values())

    def fmt(v):
        return f"{v:g}" if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) else str(v)

    return ["".join(f", {c} = {fmt(r[c])}" for c in extra) + fixed for _, r in df.iterrows()]


def _zipped_with(df: pd.DataFrame, c: str, a: str) -> str:
    """ ", d = n/4" where field c is a constant multiple of axis a across the figure, else ", d with n"."""
    try:
        ratio = (df[c].astype(float) / df[a].astype(float)).unique()
    except (TypeError, ValueError):
        return f", {c} with {a}"
    if len(ratio) == 1 and np.isfinite(ratio[0]) and ratio[0] > 0:
        r = float(ratio[0])
        if r < 1 and abs(1 / r - round(1 / r)) < 1e-9:
            return f", {c} = {a}/{round(1 / r)}"
        return f", {c} = {r:g}·{a}"
    return f", {c} with {a}"


def _series(df: pd.DataFrame, axes=()) -> list[str]:
    """A label per row naming its method variant (analysis.variant_labels) and its data setting off the
    figure's ``axes`` (_data_setting), so no line or panel averages over a hyperparameter or a data axis (a
    zipped n × d grid, uniform vs Zipf frequencies)."""
    return [lab + extra for lab, extra in zip(variant_labels(df, axes), _data_setting(df, axes))]


def _as_variants(df: pd.DataFrame, axes: list[str]) -> pd.DataFrame:
    """Every method variant (and data setting off the figure's axes) its own label, so no summary averages
    over a hyperparameter or a data axis."""
    df = df.copy()
    df["label"] = _series(df, axes)
    return df


def _context(df: pd.DataFrame, axes) -> str:
    """ "n = 128, d = 42": the data knobs that are fixed across the figure (for its title), from the data
    actually used: a mixture support is named with its sparsities, not by the unused ``s``."""
    mixture = "support" in df.columns and (df["support"] == "mixture").all() and "mixture_s" in df.columns
    parts = []
    for k in ("n", "d", "s"):
        if k not in df.columns or k in axes or df[k].nunique() != 1:
            continue
        if k == "s" and mixture:
            if df["mixture_s"].nunique() == 1:
                ms = df["mixture_s"].iloc[0]
                parts.append(f"rows of sparsity {' or '.join(map(str, ms))} (mixture)")
            continue
        parts.append(f"{k} = {_short(df[k].iloc[0])}")
    return ", ".join(parts)


def nc_wording(rows: pd.DataFrame) -> str:
    """ "did not converge (loss still falling at the end; ...)": the reasons of the rows that did not
    converge, worded per reason (stored ``not_converged_because``; the rule is metrics.converged)."""
    kinds = []
    reasons = rows.get("not_converged_because")
    if reasons is not None:
        bad = rows[~converged(rows)] if len(rows) else rows
        for text in bad.get("not_converged_because", pd.Series(dtype=object)).dropna():
            for word in nc_kinds(str(text)):
                if word not in kinds:
                    kinds.append(word)
    return "did not converge" + (f" ({'; '.join(kinds)})" if kinds else "")


# ------------------------------------------------------------------------------------------ phase diagram
#: a grid whose cells, on the axis's own scale, differ in size by more than this is drawn with every cell the same
#: size (``even_scale``): resonance_heavy's d = 40, 44, 96 made the first two rows slivers under one tall row
EVEN_RATIO = 3.0


def even_scale(edges, log: bool):
    """(forward, inverse) for matplotlib's "function" scale that draws the cells between ``edges`` (n + 1 sorted
    cell edges of a coarse grid) at equal sizes — piecewise linear in the value (in its log on a log axis), edge i at
    i, straight on past the ends — or None when the cells are already within ``EVEN_RATIO`` of each other's size."""
    e = np.log(np.asarray(edges, float)) if log else np.asarray(edges, float)
    w = np.diff(e)
    if len(w) < 2 or w.min() <= 0 or w.max() / w.min() <= EVEN_RATIO:
        return None
    k = np.arange(len(e), dtype=float)

    def forward(v):
        with np.errstate(divide="ignore", invalid="ignore"):
            u = np.log(np.asarray(v, float)) if log else np.asarray(v, float)
        out = np.interp(u, e, k)
        out = np.where(u < e[0], (u - e[0]) / w[0], out)
        return np.where(u > e[-1], k[-1] + (u - e[-1]) / w[-1], out)

    def inverse(t):
        t = np.asarray(t, float)
        u = np.interp(t, k, e)
        u = np.where(t < 0, e[0] + t * w[0], u)
        u = np.where(t > k[-1], e[-1] + (t - k[-1]) * w[-1], u)
        return np.exp(u) if log else u

    return forward, inverse


def _value_ticks(axis, values, fmt, most: int = 9) -> None:
    """Major ticks at the grid's own values (matplotlib's FixedLocator and FuncFormatter), at most ``most`` of
    them labelled (every k-th when there are more), and no minor ticks or labels: a log axis's automatic
    minor labels ("3×10⁰4×10⁰") overlap the values."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

    vals = sorted(float(v) for v in values)
    step = max(1, math.ceil(len(vals) / most))
    shown = set(vals[::step])
    axis.set_major_locator(FixedLocator(vals))
    axis.set_major_formatter(FuncFormatter(lambda v, _: fmt(v) if any(math.isclose(v, w) for w in shown) else ""))
    axis.set_minor_locator(NullLocator())
    axis.set_minor_formatter(NullFormatter())
