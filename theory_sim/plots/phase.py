"""Phase diagrams: a metric over two axes, one panel per method/variant, with the theorem's band (both forms),
cells outside the hypotheses dotted, non-converged cells hatched, and the fitted crossings."""

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

from .. import theory  # noqa: E402
from ..analysis import (  # noqa: E402
    crossings_along,
    tune_per_cell,
)
from ..errors import ConfigError  # noqa: E402
from .common import (
    _as_variants,
    _common_values,
    _context,
    _done,
    _edges,
    _is_log,
    _label,
    _save,
    _summarise,
    _tick,
    _value_ticks,
    even_scale,
    nc_wording,
    write_csv,
)  # noqa: E402


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


#: characters per legend line (longer labels are wrapped)
LEGEND_WRAP = 70


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
    log_axes: dict | None = None,
) -> list[str]:
    """Heatmap of the mean ``metric`` over seeds on (x, y), one panel per method variant (or per label,
    tuned per cell by ``tuned``), shared colour scale [0, 1]; each cell shows its mean and 95 % interval
    (analysis), cells where a feedback rule missed its target are hatched ("n.c."); per row, the fitted
    ``level`` crossings along x with their intervals; the theorem's band (p/f axis) and d = √n line.
    log_axes: axis -> log scale, where the sweep states it (its [refine] tables); other axes are read off
    their values (geometric grids: log)."""
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
    log_axes = log_axes or {}  # the sweep's own statement wins over reading the coarse grid
    xlog = log_axes.get(x, _is_log(_common_values(summ, x, y)[0]))
    ylog = log_axes.get(y, _is_log(_common_values(summ, y, x)[0]))
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
        hatched = outside = moved_any = False
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
            if r.get("moved", 0):  # its budget check moved it: the value drawn is not a settled one
                txt += "\n2× moved" if txt else ""
                ax.add_patch(
                    plt.Rectangle((x0, y0), x1 - x0, y1 - y0, fill=False, edgecolor="orange", lw=2.5, zorder=1.7)
                )
                moved_any = True
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
        if moved_any:
            from matplotlib.patches import Patch

            extra.append(
                Patch(facecolor="none", edgecolor="orange", lw=2.5, label="orange frame: moved at 2× the steps")
            )
        if hatched:  # the hatching's own legend entry, worded by the reasons in this panel
            from matplotlib.patches import Patch

            wording = nc_wording(df[df.label == lab])
            extra.append(Patch(facecolor="none", edgecolor="red", hatch="//", label=f"hatched, n.c.: {wording}"))
        ax.set_xscale("log" if lx else "linear")
        # an irregular coarse grid along y (resonance_heavy's d = 40, 44, 96) gets rows of equal height
        even_y = even_scale(ey_all, ylog)
        if even_y:
            ax.set_yscale("function", functions=even_y)
        else:
            ax.set_yscale("log" if ylog else "linear")
        ax.set_xlim(ex[0], ex[-1])
        ax.set_ylim(ey[0], ey[-1])
        if lx:
            _value_ticks(ax.xaxis, xs, _tick)
            if crowded:
                ax.tick_params(axis="x", labelrotation=45)
        if ylog or even_y:
            _value_ticks(ax.yaxis, coarse_y, lambda v: f"{v:g}")
        ax.set_xlabel(_label(x))
        ax.set_ylabel(_label(y) + ("\n(rows of equal height, not to scale)" if even_y else ""))
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
        # a label longer than a panel is wide (the hatching's reasons) would make constrained_layout squeeze the
        # axes to a sliver to fit the legend: wrap it
        names = [textwrap.fill(n, LEGEND_WRAP) for n in names]
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
