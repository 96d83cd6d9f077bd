"""The entry point: draw what a results folder's stored sweep asks for (``theory-sim plot``)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

from ..errors import ConfigError  # noqa: E402
from ..results import stored_sweep  # noqa: E402
from ..store import Store, load_results, writer_lock  # noqa: E402
from .common import _done, check_axes, headline  # noqa: E402
from .curves import CURVES, curve  # noqa: E402
from .phase import phase_diagram  # noqa: E402


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
    from ..checks import read_moved

    df = df.assign(moved=df.cell_hash.isin(read_moved(out_dir)))  # cells its budget check found still moving
    if (sweep.theory or {}).get("require"):
        from ..analysis import with_hypotheses

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
    # the sweep's [refine] tables state the level and the scale of the axes they refine: figures read them
    refs = [r for r in sweep.refine if r.metric == metric]
    level = refs[0].level if refs else 0.5
    log_axes = {r.axis: r.log for r in refs}
    if x and y:
        paths += phase_diagram(
            df,
            x,
            y,
            metric,
            fig_dir / f"{name}_phase_{metric}",
            headline(sweep.description),
            theory_cfg=sweep.theory,
            level=level,
            log_axes=log_axes,
        )
        for by in plot.get("tuned", []) if isinstance(plot.get("tuned"), list) else []:
            paths += phase_diagram(
                df,
                x,
                y,
                metric,
                fig_dir / f"{name}_phase_{metric}_tuned_by_{by}",
                tuned=by,
                level=level,
                log_axes=log_axes,
            )
    elif x:
        paths += curve(df, x, metric, fig_dir / f"{name}_{metric}_vs_{x}", log_x=log_axes.get(x))
    for kind in plot.get("curve", []):
        if kind not in CURVES:
            raise ConfigError("plot.curve", f"unknown curve {kind!r}; allowed: {', '.join(CURVES)}")
        paths += CURVES[kind](df, store, sweep, fig_dir / f"{name}_{kind}")
    return paths
