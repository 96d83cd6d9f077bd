"""Adaptive refinement: spend trained models where a metric crosses a level, not over a uniform grid.

A sweep file's ``[refine]`` table (every key but ``axis`` optional)::

    [refine]
    axis = "p_over_f"    # a [grid] axis or a method hyperparameter axis with >= 2 values
    metric = "frr_0.9"   # default: the [plot] metric, else frr_0.9 (measures.METRICS lists the choices)
    level = 0.5          # strictly inside the metric's range
    scale = "log"        # log (default when every value of the axis is > 0) or linear
    tolerance = 1.25     # a bracket is fine enough when upper/lower <= tolerance (log) or upper - lower <= it
    max_rounds = 3       # rounds of new cells after the coarse grid
    max_seeds = 5        # seeds a cell may grow to while its interval straddles the level (default: train.seeds)

A *row* is the set of cells that agree on everything but ``axis`` and the seed: one curve per method entry
and combination of the other axes. In each round, per row, every pair of neighbouring axis values whose
seed-mean metric lies on opposite sides of ``level`` is a bracket (a band has two); a bracket wider than
the tolerance gets its midpoint (geometric on a log scale, rounded on an integer axis) trained at the
sweep's seeds, and an end cell whose 95 % interval (analysis.seed_interval) contains the level gets more
seeds, up to ``max_seeds``. Rounds stop when no bracket asks for anything or after ``max_rounds``.

New cells are ordinary cells (hashed from their config, stored, batched into ensembles across rows). A
round is a function of the stored results of the rounds before it, so a resumed or re-run sweep replays
the same rounds and trains only what is missing.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from ..measures import METRIC_RANGES, is_fraction

REFINE_KEYS = ("axis", "metric", "level", "scale", "tolerance", "max_rounds", "max_seeds")
MAX_ROUNDS = 20
MAX_SEEDS = 64


@dataclass(frozen=True)
class Refine:
    axis: str
    metric: str = "frr_0.9"
    level: float = 0.5
    log: bool = True
    tolerance: float = 1.25
    max_rounds: int = 3
    max_seeds: int = 1
    integer: bool = False  # every coarse value an integer: midpoints are rounded

    def width(self, lo: float, hi: float) -> float:
        """A bracket's width in tolerance units (≤ 1: fine enough)."""
        if self.log:
            return math.log(hi / lo) / math.log(self.tolerance)
        return (hi - lo) / self.tolerance

    def done(self, lo: float, hi: float) -> bool:
        return self.width(lo, hi) <= 1 + 1e-9 or (self.integer and hi - lo <= 1)

    def midpoint(self, lo: float, hi: float):
        m = math.sqrt(lo * hi) if self.log else (lo + hi) / 2
        if self.integer:
            m = int(round(m))
            return None if m in (lo, hi) else m
        return float(f"{m:.12g}")


def _err(path, key, msg):
    """A ConfigError for ``key``: "FILE: refine.key" (or "FILE: refine[i].key"); a bare key without a path
    (the boundary command's own options)."""
    if not path:
        return ConfigError(key, msg)
    return ConfigError(f"{path}: refine.{key}" if "refine[" not in path else f"{path}.{key}", msg)


def parse_refines(
    value, path: str, axes: dict[str, list], zipped: set[str], seeds: list[int], plot_metric: str | None
) -> tuple[Refine, ...]:
    """``refine`` of a sweep file: absent, one table, or an array of tables (one per axis to refine)."""
    if value is None:
        return ()
    tables = value if isinstance(value, list) else [value]
    out = tuple(
        parse_refine(t, path if len(tables) == 1 else f"{path}: refine[{i}]", axes, zipped, seeds, plot_metric)
        for i, t in enumerate(tables)
    )
    if len({r.axis for r in out}) < len(out):
        raise ConfigError(f"{path}: refine", "two [[refine]] tables name the same axis; give each axis one table")
    return out


def parse_refine(
    table, path: str, axes: dict[str, list], zipped: set[str], seeds: list[int], plot_metric: str | None
) -> Refine:
    """Validates a ``[refine]`` table. axes: every axis of the sweep (grid axes and method hyperparameter
    axes) → all its values; zipped: axes that vary together with another one; seeds: train.seeds; path:
    the sweep file, for messages ("" names the keys alone)."""
    if not isinstance(table, dict):
        raise ConfigError(
            f"{path}: refine",
            f"must be a table ([refine]) or an array of tables ([[refine]]), got {type(table).__name__}",
        )
    for k in table:
        if k not in REFINE_KEYS:
            raise _err(path, k, f"unknown key; allowed: {', '.join(REFINE_KEYS)}")
    multi = sorted(k for k, v in axes.items() if len(set(map(repr, v))) >= 2)
    axis = table.get("axis")
    if not isinstance(axis, str) or axis not in multi:
        raise _err(
            path,
            "axis",
            f"must be an axis of this sweep with at least two values; axes: {', '.join(multi) or 'none'}; got {axis!r}",
        )
    if axis in zipped:
        raise _err(path, "axis", f"{axis!r} is zipped with another axis; refine an axis that varies on its own")
    values = axes[axis]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise _err(path, "axis", f"{axis!r} has non-numeric values; refine a numeric axis")
    metric = table.get("metric", plot_metric or "frr_0.9")
    if metric not in METRIC_RANGES:
        raise _err(path, "metric", f"must be one of {', '.join(METRIC_RANGES)}; got {metric!r}")
    lo_m, hi_m = METRIC_RANGES[metric]
    level = table.get("level", 0.5)
    if not (_num(level) and lo_m < level < hi_m):
        raise _err(
            path,
            "level",
            f"must be a number strictly between {lo_m:g} and {hi_m:g} (the range of {metric}); got {level!r}",
        )
    positive = all(v > 0 for v in values)
    scale = table.get("scale", "log" if positive else "linear")
    if scale not in ("log", "linear"):
        raise _err(path, "scale", f"must be log or linear; got {scale!r}")
    if scale == "log" and not positive:
        raise _err(path, "scale", f'log needs every value of {axis!r} > 0; use scale = "linear"')
    log = scale == "log"
    tol = table.get("tolerance", 1.25 if log else None)
    if log and not (_num(tol) and tol > 1):
        raise _err(path, "tolerance", f"on a log axis a ratio upper/lower > 1 (e.g. 1.25); got {tol!r}")
    if not log and not (_num(tol) and tol > 0):
        raise _err(path, "tolerance", f"on a linear axis a width upper - lower > 0 (required); got {tol!r}")
    rounds = table.get("max_rounds", 3)
    if not (_int(rounds) and 1 <= rounds <= MAX_ROUNDS):
        raise _err(path, "max_rounds", f"must be an integer in [1, {MAX_ROUNDS}]; got {rounds!r}")
    max_seeds = table.get("max_seeds", len(seeds))
    if not (_int(max_seeds) and len(seeds) <= max_seeds <= MAX_SEEDS):
        raise _err(
            path,
            "max_seeds",
            f"must be an integer in [{len(seeds)} (the sweep's seeds), {MAX_SEEDS}]; got {max_seeds!r}",
        )
    integer = all(_int(v) for v in values)
    return Refine(axis, metric, float(level), log, float(tol), int(rounds), int(max_seeds), integer)


def _num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


# ------------------------------------------------------------------------------------------ rows
@dataclass
class Row:
    """One curve along the refined axis. xs: sorted axis values; cells[x]: the cells there."""

    label: str
    method: str
    key: str
    coords: dict
    cells: dict

    @property
    def xs(self) -> list:
        return sorted(self.cells)

    def values(self, x, metric_of: dict) -> np.ndarray:
        return np.array([metric_of[c.hash] for c in self.cells[x] if c.hash in metric_of], dtype=float)

    def series(self, metric_of: dict) -> tuple[list, list[np.ndarray]]:
        """(xs, per-seed values at each x) over the axis values that have any (failed cells have none)."""
        per = {x: self.values(x, metric_of) for x in self.xs}
        xs = [x for x, v in per.items() if len(v)]
        return xs, [per[x] for x in xs]


def _axis_value(cell, axis):
    return cell.data.get(axis, cell.params.get(axis))


def rows(cells, axis: str) -> list[Row]:
    """Cells grouped into curves along ``axis`` (cells without that axis, e.g. TopK on p/f, are left out).
    coords: the other coordinates that vary across the cells (the row's place in the sweep)."""
    out: dict[str, Row] = {}
    merged = [({**c.data, **c.params}, c) for c in cells if _axis_value(c, axis) is not None]
    varying = sorted(
        {
            k
            for m, _ in merged
            for k in m
            if k != axis and len({json.dumps(mm.get(k), sort_keys=True) for mm, _ in merged}) > 1
        }
    )
    for m, c in merged:
        rest = {k: v for k, v in m.items() if k != axis}
        key = json.dumps([c.label, c.method, rest], sort_keys=True)
        row = out.setdefault(key, Row(c.label, c.method, key, {k: m[k] for k in varying if k in m}, {}))
        row.cells.setdefault(_axis_value(c, axis), []).append(c)
    return list(out.values())


def _n_items(row: Row, metric: str):
    if not is_fraction(metric):
        return None
    any_cell = next(iter(row.cells.values()))[0]
    return int(any_cell.data.get("n", 0)) or None


def propose(ref: Refine, cells, metric_of: dict, seeds: list[int], make) -> list:
    """The next round's new cells. metric_of: cell hash → the metric of each done cell; seeds: the sweep's
    seeds; make(cell, axis=None, value=None, seed=None) → the same cell at another axis value or seed
    (validated, None if refused).
    Deterministic in its inputs, in row order then axis order."""
    from ..analysis import at_least, seed_interval  # pandas and scipy: not needed to parse a sweep file

    pool = list(seeds) + [max(seeds) + 1 + i for i in range(ref.max_seeds - len(seeds))]
    new, seen = [], {c.hash for c in cells}

    def add(c):
        if c is not None and c.hash not in seen:
            seen.add(c.hash)
            new.append(c)

    for row in rows(cells, ref.axis):
        xs, per = row.series(metric_of)
        if len(xs) < 2:
            continue
        vals = dict(zip(xs, per))
        n_items = _n_items(row, ref.metric)
        for a, b in zip(xs[:-1], xs[1:]):
            if (vals[a].mean() >= ref.level) == (vals[b].mean() >= ref.level):
                continue
            for x in (a, b):
                have = {c.seed for c in row.cells[x]}
                if at_least(seed_interval(vals[x], n_items), ref.level) is None and len(have) < ref.max_seeds:
                    for s in [s for s in pool if s not in have][: ref.max_seeds - len(have)]:
                        add(make(row.cells[x][0], seed=s))
            if not ref.done(a, b):
                mid = ref.midpoint(a, b)
                if mid is not None and mid not in row.cells:
                    template = row.cells[a][0]
                    for s in seeds:
                        add(make(template, ref.axis, mid, seed=s))
    return new


def boundaries(ref: Refine, cells, metric_of: dict) -> list[dict]:
    """One entry per crossing of ``ref.level`` along ``ref.axis`` per row: label, method, row (the other
    coordinates), axis, metric, level, lower/upper (the bracket), estimate with its 95 % interval low/high
    (analysis.crossings), direction, cells, seeds, bracket_width (in tolerance units) and decided (both
    bracket ends' intervals exclude the level)."""
    from ..analysis import at_least, crossings, seed_interval

    out = []
    for row in rows(cells, ref.axis):
        xs, per = row.series(metric_of)
        if len(xs) < 2:
            continue
        n_items = _n_items(row, ref.metric)
        for c in crossings(xs, per, ref.level, log=ref.log):
            ends = [per[xs.index(v)] for v in (c["lower"], c["upper"])]
            decided = all(at_least(seed_interval(v, n_items), ref.level) is not None for v in ends)
            out.append(
                {
                    "label": row.label,
                    "method": row.method,
                    "row": row.coords,
                    "axis": ref.axis,
                    "metric": ref.metric,
                    "level": ref.level,
                    **c,
                    "bracket_width": ref.width(c["lower"], c["upper"]),
                    "decided": decided,
                }
            )
    return out
