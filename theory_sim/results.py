"""Reading a results folder back: the sweep it was last run with and the crossings it holds. A reader above
``sweep/`` and ``store`` (it imports both; neither imports it), so no import runs in a circle."""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError
from .store import Store, existing, parse_row
from .sweep.refine import _num, boundaries, parse_refine
from .sweep.spec import Cell, Sweep, parse_sweep


def stored_sweep(out_dir: str | Path) -> Sweep:
    """The sweep a results folder was last run with (its stored file text and budget), parsed again."""
    store = existing(out_dir)
    meta = store.meta()
    if "sweep_source" not in meta:
        raise ConfigError("out", f"{out_dir} has no stored sweep (an interrupted creation); rerun the sweep command")
    try:
        return parse_sweep(
            meta["sweep_source"], meta.get("sweep_path", "stored sweep"), meta.get("sweep_budget", "full")
        )
    except ConfigError as e:
        raise ConfigError(
            "out", f"the sweep stored in {out_dir} no longer validates ({e}); rerun it with --force"
        ) from None


def current_cells(out_dir: str | Path) -> list[Cell]:
    """Every cell of the folder's current design, the coarse grid's and those refinement added, as stored."""
    out = []
    for r in existing(out_dir).rows():
        if r.get("current", 1):
            cfg = parse_row(r, out_dir)[0]
            out.append(Cell(cfg["data"], cfg["method"], cfg["params"], cfg["train"], int(cfg["seed"]), r["label"]))
    return out


def check_boundary_options(metric=None, level=None, tolerance=None) -> None:
    """The options of ``boundary`` / ``load_boundaries`` checked on their own, before the store is read (so a
    store without a crossing axis cannot let a bad value through): a registered metric, a level strictly inside
    its range (or (0, 1) without a metric), a tolerance > 0 (a factor > 1 on a log axis is checked with the
    axis). ConfigError naming the option."""
    import math

    from .measures import METRIC_RANGES

    if metric is not None and metric not in METRIC_RANGES and not str(metric).startswith("frr_"):
        raise ConfigError("metric", f"unknown metric {metric!r}; allowed: {', '.join(METRIC_RANGES)}")
    if level is not None:
        lo, hi = METRIC_RANGES.get(metric, (0.0, 1.0)) if metric is not None else (-math.inf, math.inf)
        if not (isinstance(level, (int, float)) and math.isfinite(level) and lo < level < hi):
            raise ConfigError("level", f"must be a finite number strictly between {lo:g} and {hi:g}; got {level!r}")
    if tolerance is not None and not (
        isinstance(tolerance, (int, float)) and math.isfinite(tolerance) and tolerance > 0
    ):
        raise ConfigError("tolerance", f"must be a finite number > 0; got {tolerance!r}")


def load_boundaries(
    out_dir,
    axis: str | None = None,
    metric: str | None = None,
    level: float | None = None,
    tolerance: float | None = None,
) -> list[dict]:
    """The crossings in a results folder (``boundaries`` over its current cells): along the sweep's [refine]
    axis by default, else along its [plot] x; ``axis``, ``metric``, ``level``, ``tolerance`` override. Each
    entry: label, method, row, axis, metric, level, lower, upper, estimate, low, high, direction, cells,
    seeds, bracket_width, decided. Raises ConfigError for a folder without results or a bad choice."""
    check_boundary_options(metric, level, tolerance)
    sweep = stored_sweep(out_dir)
    store = Store(out_dir)
    cells = current_cells(out_dir)
    tables = [
        {
            "axis": r.axis,
            "metric": r.metric,
            "level": r.level,
            "scale": "log" if r.log else "linear",
            "tolerance": r.tolerance,
        }
        for r in sweep.refine
    ] or [{"axis": sweep.plot.get("x")}]
    if axis is not None:
        tables = [t for t in tables if t["axis"] == axis] or [{"axis": axis}]  # another axis: its own defaults
    axes: dict[str, list] = {}
    for c in cells:
        for k, v in {**c.data, **c.params}.items():
            axes.setdefault(k, []).append(v)
    if not sweep.refine and axis is None and len(set(map(repr, axes.get(tables[0]["axis"], [])))) < 2:
        return []  # the [plot] x of this sweep has one value: no crossing to read
    out = []
    con = store.connect()
    try:
        for table in tables:
            for k, v in (("metric", metric), ("level", level), ("tolerance", tolerance)):
                if v is not None:
                    table[k] = v
            if table.get("axis") is None:
                raise ConfigError("axis", "this sweep has no [refine] axis or [plot] x; give --axis")
            vals = sorted({v for v in axes.get(table["axis"], []) if _num(v)})
            if "tolerance" not in table and vals and vals[0] <= 0 and len(vals) > 1:
                table["tolerance"] = min(b - a for a, b in zip(vals[:-1], vals[1:]))  # linear: the finest spacing
            ref = parse_refine(table, "", axes, set(), list(sweep.seeds), sweep.plot.get("metric"))
            out += boundaries(ref, cells, store.metric_of(con, ref.metric))
    finally:
        con.close()
    return out
