"""Figures: phase diagrams with the theorem's boundaries, curves, and the paper's figures.

Every figure is written as PNG and PDF, beside the CSV of exactly what was drawn. What to draw comes from
the sweep file's ``[plot]`` table (x, y, metric, curve = [...]) or from ``theory-sim plot`` options.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.collections import PatchCollection  # noqa: E402

from . import theory  # noqa: E402
from .analysis import (  # noqa: E402
    _short,
    cell_summary,
    converged,
    crossings_along,
    done,
    magnitude_recovery,
    reading_labels,
    seed_interval,
    seed_pair_consistency,
    tune_per_cell,
    variant_labels,
)
from .errors import ConfigError  # noqa: E402
from .metrics import CURVE_TAUS, nc_kinds  # noqa: E402
from .outputs import atomic_file, describe  # noqa: E402
from .results import stored_sweep  # noqa: E402
from .store import Store, load_results, writer_lock  # noqa: E402
from .sweep.spec import CURVE_KINDS  # noqa: E402

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
    "l0": "L0 (active neurons per sample)",
    "explained_variance": "explained variance",
    "coherence": "target max |cos| μ",
}


def _label(col: str) -> str:
    if col.startswith("frr_"):
        return f"FRR at τ = {col[4:]} (fraction of features recovered)"
    return LABELS.get(col, col)


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
    for c in ("chance_frr_0.9", "chance_frr_0.99"):
        if c in df.columns:
            agg[c] = (c, "mean")
    for c in ("tuned_choice", "tuned_edge"):
        if c in df.columns:
            agg[c] = (c, "first")
    more = extra.groupby(keys, dropna=False, sort=True).agg(**agg).reset_index()
    return summ.merge(more, on=keys, how="left")


def _extent(v: float, neighbours: list, coarse: list, coarse_edges: np.ndarray, log: bool) -> tuple[float, float]:
    """A cell's extent along one axis: halfway (geometrically on a log axis) to its neighbours among
    ``neighbours`` (the values of its row or column, sorted), and at an end of that list the edge of the
    coarse-grid cell that holds v (``coarse_edges``: the coarse values' cell edges)."""
    i = neighbours.index(v)
    j = int(np.clip(np.searchsorted(coarse_edges, v, side="right") - 1, 0, len(coarse) - 1))

    def mid(a, b):
        return math.sqrt(a * b) if log else (a + b) / 2

    lo = mid(neighbours[i - 1], v) if i > 0 else coarse_edges[j]
    hi = mid(v, neighbours[i + 1]) if i < len(neighbours) - 1 else coarse_edges[j + 1]
    return min(lo, v), max(hi, v)


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


def _data_setting(df: pd.DataFrame, axes=()) -> list[str]:
    """Per row, the data fields that vary across the figure other than its ``axes`` (", n = 64, d = 21"; ""
    when none does)."""
    from .model.spec import GENERATOR_FIELDS

    extra = [
        c
        for c in GENERATOR_FIELDS
        if c != "seed" and c not in axes and c in df.columns and df[c].astype(str).nunique() > 1
    ]

    def fmt(v):
        return f"{v:g}" if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool) else str(v)

    return ["".join(f", {c} = {fmt(r[c])}" for c in extra) for _, r in df.iterrows()]


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


def phase_diagram(
    df: pd.DataFrame,
    x: str,
    y: str,
    metric: str,
    out: Path,
    title: str = "",
    tuned: str | None = None,
    level: float = 0.5,
    theory_cfg: dict | None = None,
) -> list[str]:
    """Heatmap of the mean ``metric`` over seeds on (x, y), one panel per method variant (or per label,
    tuned per cell by ``tuned``), shared colour scale [0, 1]; each cell shows its mean and 95 % interval
    (analysis), cells where a feedback rule missed its target are hatched ("n.c."); per row, the fitted
    ``level`` crossings along x with their intervals; the theorem's band (p/f axis) and d = √n line."""
    df = _done(df, metric)
    for col in (x, y):
        if col not in df.columns:
            raise ConfigError("plot", f"{col!r} is not an axis of this sweep")
    if x == y:
        raise ConfigError("plot", f"x and y must differ, both are {x!r}")
    variant = "default hyperparameters, each variant its own panel"
    if tuned:
        if tuned not in df.columns:
            raise ConfigError("plot.tuned", f"{tuned!r} is not a results column")
        df = tune_per_cell(df, [x, y], metric, by=tuned)
        variant = f"tuned per cell by {tuned}" + (" (oracle)" if tuned == metric else "")
    else:
        df = _as_variants(df, [x, y])
    # a method without the x axis (TopK on p/f) gets no panel: an axis of one "n/a" column says nothing;
    # its numbers stay in the CSV and the title names it
    lacking = [lab for lab, g in df.groupby("label", sort=False) if g[x].isna().all()]
    summ_all = _summarise(df, ["label", x, y], metric)
    df = df[~df.label.isin(lacking)]
    if df.empty:
        raise ConfigError("x", f"no method of this sweep has the axis {x!r}")
    labels = list(dict.fromkeys(df.label))
    summ = summ_all[~summ_all.label.isin(lacking)]
    ncol = min(3, len(labels))
    nrow = math.ceil(len(labels) / ncol)
    nx, ny = max(1, _common_values(summ, x, y)[1]), max(1, df[y].nunique())
    crowded = nx > 6  # then a cell shows its mean only (the interval is in the CSV)
    pw, ph = (
        max(7.5 if ncol == 1 else 5.5, (0.62 if crowded else 0.95) * nx + 1.8),
        max(4.4, 0.5 * ny * (1 if crowded else 1.6) + 2.0),
    )
    fig, axes = plt.subplots(nrow, ncol, figsize=(pw * ncol, ph * nrow), squeeze=False, constrained_layout=True)
    xlog, ylog = _is_log(_common_values(summ, x, y)[0]), _is_log(_common_values(summ, y, x)[0])  # the coarse grid
    mesh = None
    boundary_rows = []
    for ax, lab in zip(axes.flat, labels):
        s = summ[summ.label == lab]
        no_x = False  # methods without the x axis were left out above
        ys = sorted(s[y].dropna().unique())
        lx = xlog and not no_x
        # each cell where it is: its x extent reaches halfway to its neighbours in its row, its y extent
        # halfway to its neighbours in its column, and a first or last one to the edge of its coarse-grid
        # cell; a refined sweep (sweep/refine.py) thus shows narrow cells near its crossings, and a value
        # refined in one row or column only leaves the others as they were
        pts = s.assign(_x=0.0 if no_x else s[x])
        coarse_x = [0.0] if no_x else _common_values(s, x, y)[0]
        coarse_y = _common_values(s, y, x)[0] if not no_x else ys
        ex_all, ey_all = _edges(coarse_x, lx), _edges(coarse_y, ylog)
        span = (math.log(ex_all[-1] / ex_all[0]) if lx else ex_all[-1] - ex_all[0]) or 1.0
        cell_frac = 1 / len(coarse_x)  # a coarse cell's share of the width
        pts = pts.dropna(subset=[y, "_x"])
        in_row = {v: sorted(g["_x"]) for v, g in pts.groupby(y)}  # each row's x values, each column's y values
        in_col = {v: sorted(g[y]) for v, g in pts.groupby("_x")}
        rects, values = [], []
        hatched = outside = False
        for _, r in pts.iterrows():
            x0, x1 = _extent(r["_x"], in_row[r[y]], coarse_x, ex_all, lx)
            y0, y1 = _extent(r[y], in_col[r["_x"]], coarse_y, ey_all, ylog)
            rects.append(plt.Rectangle((x0, y0), x1 - x0, y1 - y0))
            values.append(r["mean"])
            v = r["mean"]
            frac = (math.log(x1 / x0) if lx else x1 - x0) / span
            txt = f"{v:.2f}" if frac >= 0.45 * cell_frac else ""  # refined cells too narrow for text: CSV
            if txt and pd.notna(r["low"]) and not crowded and frac >= 0.9 * cell_frac:
                txt += f"\n[{r['low']:.2f}, {r['high']:.2f}]"
            if r.get("not_converged", 0):
                txt += "\nn.c." if txt else ""
                ax.add_patch(
                    plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, hatch="//", edgecolor="red", lw=0, zorder=1.5)
                )
                hatched = True
            if r.get("outside_hypotheses", 0):
                ax.add_patch(
                    plt.Rectangle(
                        (x0, y0), x1 - x0, y1 - y0, fill=False, hatch="..", edgecolor="0.75", lw=0, zorder=1.6
                    )
                )
                outside = True
            if txt:
                ax.text(
                    r["_x"],
                    r[y],
                    txt,
                    ha="center",
                    va="center",
                    fontsize=6,
                    linespacing=1.0,
                    color="black" if v > 0.6 else "white",
                    zorder=3,
                )
        mesh = PatchCollection(rects, cmap="viridis", zorder=1)
        mesh.set_array(np.asarray(values, float))
        mesh.set_clim(0, 1)
        ax.add_collection(mesh)
        xs = coarse_x
        # the panel spans the coarse grid's cells and any cell reaching beyond them
        ex = [
            min([ex_all[0]] + [q.get_x() for q in rects]),
            max([ex_all[-1]] + [q.get_x() + q.get_width() for q in rects]),
        ]
        ey = [
            min([ey_all[0]] + [q.get_y() for q in rects]),
            max([ey_all[-1]] + [q.get_y() + q.get_height() for q in rects]),
        ]
        if not no_x and len(xs) >= 2:
            # fitted crossings along x per row, and along y per column (a sweep refined along y resolves these)
            for along, across, log_along, marks in ((x, y, lx, "D"), (y, x, ylog, "^")):
                drawn = 0
                for v in sorted(s[across].dropna().unique()):
                    line = df[(df.label == lab) & (df[across] == v)]
                    if line[along].nunique() < 2:
                        continue
                    for c in crossings_along(line, along, metric, level, log_along)[2]:
                        boundary_rows.append({"label": lab, across: v, "axis": along, "level": level, **c})
                        _draw_crossing(ax, c, v, along == x, marks)
                        drawn += 1
                if drawn:
                    _draw_crossing(
                        ax,
                        None,
                        None,
                        along == x,
                        marks,
                        label=f"fitted {int(100 * level)} % crossing along {along} (95 % interval)",
                    )
        if not no_x:
            _overlay_theory(ax, df[df.label == lab], x, y, ys, theory_cfg)
        extra = []
        if outside:
            from matplotlib.patches import Patch

            extra.append(
                Patch(facecolor="none", edgecolor="0.75", hatch="..", label="dotted: outside the claim's hypotheses")
            )
        if hatched:  # the hatching's own legend entry, worded by the reasons in this panel
            from matplotlib.patches import Patch

            wording = nc_wording(df[df.label == lab])
            extra.append(Patch(facecolor="none", edgecolor="red", hatch="//", label=f"hatched, n.c.: {wording}"))
        ax.set_xscale("log" if lx else "linear")
        ax.set_yscale("log" if ylog else "linear")
        ax.set_xlim(ex[0], ex[-1])
        ax.set_ylim(ey[0], ey[-1])
        if lx:
            _value_ticks(ax.xaxis, xs, _tick)
            if crowded:
                ax.tick_params(axis="x", labelrotation=45)
        if ylog:
            _value_ticks(ax.yaxis, coarse_y, lambda v: f"{v:g}")
        ax.set_xlabel(_label(x))
        ax.set_ylabel(_label(y))
        seeds = sorted(set(s.seeds))
        head = f"{lab}  ({'/'.join(map(str, seeds))} seed{'s' if max(seeds) > 1 else ''} per cell" + (
            "; 95 % intervals in the CSV)" if crowded else ")"
        )
        ch = f"chance_{metric}"
        if ch in s.columns and s[ch].notna().any():
            head += f"\nchance (random init): {s[ch].min():.2f}–{s[ch].max():.2f}"
        if "tuned_edge" in s.columns and (s.tuned_edge.fillna("") != "").any():
            head += "\nbest choice on the edge of its grid in some cells — widen it"
        ax.set_title(head, fontsize=9, color="darkred" if "widen" in head else "black")
        handles, names = ax.get_legend_handles_labels()
        handles, names = handles + extra, names + [h.get_label() for h in extra]
        if handles:  # below the panel, so no cell is hidden
            ax.legend(  # one column under a narrow panel: a wide legend collapses the layout
                handles,
                names,
                loc="upper center",
                bbox_to_anchor=(0.5, -0.34 if crowded else -0.2),
                ncol=2 if nx > 4 else 1,
                fontsize=7,
                frameon=False,
            )
    for ax in axes.flat[len(labels) :]:
        ax.axis("off")
    fig.colorbar(mesh, ax=axes.ravel().tolist(), label=_label(metric), shrink=0.9)
    ctx = _context(df, [x, y])
    head = (title or f"{_label(metric)} over {x} × {y}") + (f" [{ctx}]" if ctx else "") + f" — {variant}"
    if lacking:
        head += f" (not drawn: {', '.join(lacking)}, without a {x} axis; their cells are in the CSV)"
    # a wide figure's title may run wider: a long description must not squash a one-panel figure's axes
    fig.suptitle(textwrap.fill(head, max(120, 75 * ncol // 2 + 30)), fontsize=9)
    table = summ_all.rename(columns={k: f"{metric}_{k}" for k in ("mean", "low", "high", "sd")})
    paths = _save(fig, out, table)
    if boundary_rows:  # beside the figure: the fitted crossings it draws
        write_csv(pd.DataFrame(boundary_rows), str(out) + "_boundaries.csv")
    return paths


def _draw_crossing(ax, c: dict | None, at: float | None, horizontal: bool, marker: str, label: str | None = None):
    """One fitted crossing ``c`` (analysis.crossings) as a marker at (estimate, at) with its 95 % interval as
    an error bar along the crossing's axis (horizontal: x); c None draws nothing but the legend entry."""
    est = [] if c is None else [c["estimate"]]
    err = None
    if c is not None and pd.notna(c["low"]):
        err = [[c["estimate"] - c["low"]], [c["high"] - c["estimate"]]]
    elif c is None:
        err = []
    pos = [] if at is None else [at]
    xy = (est, pos) if horizontal else (pos, est)
    ax.errorbar(
        *xy,
        **{"xerr" if horizontal else "yerr": err},
        fmt=marker,
        ms=5 if marker == "D" else 6,
        color="white",
        mec="black",
        ecolor="white",
        elinewidth=2,
        capsize=3,
        zorder=5,
        label=label,
    )


def _overlay_theory(ax, df, x, y, ys, theory_cfg: dict | None = None):
    """Draw both forms of the resonance band when x is p/f — the simplified f <= p <= min(√f, f d) with unit
    constants (red) and the full Thm 6.1 band 1/n <= p <= min(n^{-(1+1/s)/2}, n^{-2(1+ε)²/s}, d^{1-ς}/n) with
    the sweep's ε, ς (blue) — and the d = √n line when y is d."""
    row0 = df.iloc[0]
    if x == "p_over_f":
        eps, vs = (theory_cfg or {}).get("eps", 0.0), (theory_cfg or {}).get("varsigma", 0.0)
        lo, hi, flo, fhi = [], [], [], []
        for yv in ys:
            r = df[df[y] == yv].iloc[0]
            f = r["data_f_mean"] if "data_f_mean" in r and pd.notna(r["data_f_mean"]) else r["s"] / r["n"]
            a, b = theory.resonance_band_ratio(f, r["d"])
            lo.append(a)
            hi.append(b)
            if float(r["s"]) >= 2:
                fa, fb = theory.resonance_band_full(int(r["n"]), int(r["d"]), float(r["s"]), eps, vs)
                flo.append(fa / f)
                fhi.append(fb / f)
        ax.plot(lo, ys, "r--", lw=1.6, label="simplified band (unit constants): p = f")
        ax.plot(hi, ys, "r-", lw=1.6, label="simplified band: p = min(√f, f·d)")
        if len(flo) == len(ys):
            ax.plot(flo, ys, "b--", lw=1.4, label="full Thm 6.1 band: p = 1/n")
            ax.plot(fhi, ys, "b-", lw=1.4, label=f"full band upper edge (ε = {eps:g}, ς = {vs:g})")
    if y == "d" and "n" in df.columns and df["n"].nunique() == 1:
        ax.axhline(math.sqrt(row0["n"]), color="orange", ls=":", lw=1.6, label="d = √n (heavy | light)")


# ------------------------------------------------------------------------------------------ 1-D curves
def curve(df: pd.DataFrame, x: str, metric: str, out: Path, title: str = "") -> list[str]:
    """metric vs x per method variant (mean over seeds with its 95 % interval, analysis), with the chance
    level and the theorem's reference where they apply."""
    df = _done(df, metric).copy()
    if x not in df.columns:
        raise ConfigError("plot", f"{x!r} is not an axis of this sweep")
    if x == metric:
        raise ConfigError("plot", f"x and the metric must differ, both are {x!r}")
    df = _as_variants(df, [x])
    summ = _summarise(df, ["label", x], metric)
    many = summ.label.nunique() > 4  # then the legend goes beside the axes, off the data
    fig, ax = plt.subplots(figsize=(9.6 if many else 6.4, 4.4), constrained_layout=True)
    for lab, s in summ.groupby("label", sort=False):
        s = s.sort_values(x)
        err = np.array([s["mean"] - s["low"], s["high"] - s["mean"]])
        ax.errorbar(s[x], s["mean"], yerr=np.nan_to_num(err), marker="o", capsize=3, label=lab)
        nc = s[s.not_converged > 0]
        if len(nc):
            ax.scatter(nc[x], nc["mean"], marker="x", s=60, color="red", zorder=4)
    if (summ.not_converged > 0).any():
        ax.scatter([], [], marker="x", color="red", label=nc_wording(df))
    if metric == "frr_0.9" and "chance_frr_0.9" in summ.columns and summ["chance_frr_0.9"].notna().any():
        ax.axhline(summ["chance_frr_0.9"].max(), color="gray", ls=":", label="chance (random init, max)")
    if _is_log(df[x]):
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
    if metric.startswith("frr") or metric in ("mmcs", "mcc"):
        ax.set_ylim(-0.03, 1.03)
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
    """FRR@0.9 after each recorded step (``frr_0.9_by_step``; step 0 is the random initialisation), one line
    per method variant and x value, mean over seeds with the seeds' range shaded; ``steps_needed`` (T) is
    marked. For the theorem's claim: recovery in a constant number of steps, and whether it lasts."""
    df = done(df).copy()
    df = df[df["frr_0.9_by_step"].map(lambda t: isinstance(t, (list, tuple)) and len(t) > 1)]
    if df.empty:
        return []
    keys = [k for k in ("d", "p_over_f") if k in df.columns and df[k].nunique() > 1]
    df["series"] = [
        f"{v}" + "".join(f", {k} = {r[k]:g}" for k in keys)
        for v, (_, r) in zip(variant_labels(df, keys), df.iterrows())
    ]
    fig, ax = plt.subplots(figsize=(10.5, 4.8), constrained_layout=True)
    rows = []
    for ser, g in df.groupby("series", sort=True):
        traj = np.array([list(t) for t in g["frr_0.9_by_step"] if len(t) == len(g["frr_0.9_by_step"].iloc[0])])
        steps = np.arange(traj.shape[1])
        m = traj.mean(0)
        (line,) = ax.plot(steps, m, marker="o", ms=3, label=f"{ser} ({len(traj)} seeds)")
        ax.fill_between(steps, traj.min(0), traj.max(0), color=line.get_color(), alpha=0.12)
        rows += [{"series": ser, "step": int(k), "frr_0.9_mean": v, "seeds": len(traj)} for k, v in zip(steps, m)]
    if steps_needed:
        ax.axvline(steps_needed, color="black", ls=":", lw=1.2, label=f"T = ⌈1/ς⌉ = {steps_needed}")
    ax.set_xlabel("step (0: the random initialisation)")
    ax.set_ylabel("FRR@0.9 after the step")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title(title or "recovery step by step", fontsize=10)
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.01, 0.5))
    return _save(fig, out, pd.DataFrame(rows))


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


# ------------------------------------------------------------------------------------------ entry point
def plot_sweep(out_dir, x=None, y=None, metric=None, fig_dir=None) -> list[str]:
    """Draw what the sweep's [plot] table asks for (options override it). Returns the PNG paths."""
    store = Store(out_dir)
    df = load_results(out_dir, current_only=True)
    lost = store.lost_arrays()
    if lost:
        raise ConfigError(
            "out",
            f"{len(lost)} finished cells in {out_dir} have lost their arrays (or they are unreadable); rerun the sweep "
            "command on this folder to recompute them",
        )
    sweep = stored_sweep(out_dir)  # validated again: a stored name that is not a safe file stem is refused
    if (sweep.theory or {}).get("require"):
        from .analysis import with_hypotheses

        df = with_hypotheses(df, sweep.theory)
    plot = sweep.plot
    x, y = x or plot.get("x"), y or plot.get("y")
    metric = metric or plot.get("metric", "frr_0.9")
    _done(df, metric)
    if y and not x:
        raise ConfigError("x", "a phase diagram needs x as well as y")
    if x and y and x == y:
        raise ConfigError("y", f"x and y must differ, both are {x!r}")
    check_axes(df, [a for a in (x, y) if a])
    with writer_lock(out_dir, "plot", required=fig_dir is None):
        return _draw(df, store, sweep, x, y, metric, Path(fig_dir or Path(out_dir) / "figures"))


def _draw(df, store, sweep, x, y, metric, fig_dir: Path) -> list[str]:
    plot, name = sweep.plot, sweep.name
    paths = []
    if x and y:
        paths += phase_diagram(
            df,
            x,
            y,
            metric,
            fig_dir / f"{name}_phase_{metric}",
            " ".join(sweep.description.split()),
            theory_cfg=sweep.theory,
        )
        for by in plot.get("tuned", []) if isinstance(plot.get("tuned"), list) else []:
            paths += phase_diagram(df, x, y, metric, fig_dir / f"{name}_phase_{metric}_tuned_by_{by}", tuned=by)
    elif x:
        paths += curve(df, x, metric, fig_dir / f"{name}_{metric}_vs_{x}")
    for kind in plot.get("curve", []):
        if kind not in CURVE_KINDS:
            raise ConfigError("plot.curve", f"unknown curve {kind!r}; allowed: {', '.join(CURVE_KINDS)}")
        if kind == "frr_vs_tau":
            paths += frr_vs_tau(df, store, fig_dir / f"{name}_frr_vs_tau")
        elif kind == "frontier":
            paths += frontier(df, fig_dir / f"{name}_frontier")
        elif kind == "frr_by_step":
            vs = (sweep.theory or {}).get("varsigma", 0)
            from .theory import steps_needed

            paths += frr_by_step(df, fig_dir / f"{name}_frr_by_step", steps_needed=steps_needed(vs) if vs else None)
        elif kind == "consistency":
            paths += consistency_plot(df, store, fig_dir / f"{name}_consistency")
        elif kind == "frr_vs_magnitude":
            paths += frr_vs_magnitude(df, store, fig_dir / f"{name}_frr_vs_magnitude")
        elif kind == "table":
            paths += paper_table(df, sweep.report.get("paper", {}), fig_dir / f"{name}_table")
    return paths
