"""``theory-sim reproduce``: run every experiment's sweep, draw its figures, apply its rule, re-run the deciding
cells at twice the steps and under each DECIDE switch (the budget check), and write the report."""

from __future__ import annotations

import time
from pathlib import Path

import pandas as pd

from .. import analysis as A
from ..device import check_graph, check_precision, resolve_device
from ..errors import ConfigError
from ..plots import plot_sweep
from ..store import Store, load_results
from ..sweep import load_sweep, run_sweep
from ..sweep.spec import with_execution
from .claims import CLAIMS
from .markdown import _write_report, write_verdicts

EXPERIMENTS = (
    "theorem",
    "theorem_scaling",
    "resonance",
    "resonance_heavy",
    "cooccurrence",
    "width_magnitude",
    "imbalanced",
    "phase",
    "noise",
    "frontier",
    "synthbench",
    "frequency_match",
    "resonance_peak",
    "spectrum",
    "dictionary",
)


SWEEP_DIR = Path(__file__).resolve().parents[2] / "sweeps"


# ------------------------------------------------------------------------------------------ driver
def reproduce(
    out: str,
    budget: str = "quick",
    device: str = "auto",
    experiments=EXPERIMENTS,
    progress=True,
    max_batch: int | None = None,
    threads: int | None = None,
    graph: bool = False,
    precision: str = "fp32",
) -> Path:
    """Runs ``experiments`` at ``budget`` into ``out`` (one results folder each), draws their figures, applies
    each claim's rule and its [check], and writes REPORT.md and verdicts.json. ``graph``: every cell that can be
    captured trains with ``graph = true`` (spec.with_execution; CUDA only), the others eagerly; ``precision``
    "tf32": every cell's training matmuls in TF32 (CUDA only), the measurement that decides whether TF32 may be
    the CUDA default."""
    out = Path(out)
    dev = resolve_device(device)  # the execution settings first: cheapest to refuse
    check_graph(graph, dev)
    check_precision(precision, dev)
    sweeps = {}
    for name in experiments:  # every file parsed before anything runs
        path = SWEEP_DIR / f"{name}.toml"
        if not path.exists():
            raise ConfigError("experiment", f"no sweep file {path}")
        sweeps[name] = with_execution(load_sweep(path, budget), graph, precision)
    from ..errors import check_folder, make_folder
    from ..store import writer_lock

    check_folder(out, "out")
    make_folder(out, "out")
    # one report writer per --out: a second reproduce there is refused in one line, never interleaved
    with writer_lock(out, f"reproduce --budget {budget} --only {','.join(experiments)}"):
        return _reproduce(out, budget, device, experiments, progress, max_batch, threads, graph, sweeps)


def _reproduce(out: Path, budget, device, experiments, progress, max_batch, threads, graph, sweeps) -> Path:
    figs = out / "figures"
    sections, timings = [], {}
    for name in experiments:
        sweep = sweeps[name]
        t0 = time.perf_counter()
        run_sweep(sweep, str(out / name), device=device, max_batch=max_batch, progress=progress, threads=threads)
        pngs = plot_sweep(str(out / name), fig_dir=str(figs))
        timings[name] = time.perf_counter() - t0
        df = A.with_hypotheses(load_results(out / name, current_only=True), sweep.theory)
        store = Store(out / name)
        train_s = float((df.seconds / df.batch_size.clip(lower=1)).sum()) if len(df) else 0.0  # Σ over ensembles
        sec = {
            "name": name,
            "description": sweep.description.replace("\n", " "),
            "figures": pngs,
            "cells": len(df),
            "failed": int((df.status == "failed").sum()),
            "train_seconds": train_s,
        }
        if graph:  # counted in what was trained (refined cells inherit graph from the cells they derive from)
            col = df["train_graph"] if "train_graph" in df.columns else pd.Series(False, index=df.index)
            sec["cells_graphed"] = int(col.fillna(False).astype(bool).sum())
        sec["not_converged"] = int((~A.converged(A.done(df))).sum())
        sec.update(CLAIMS[name](df, store, sweep))
        sec.update(hypotheses_summary(df, sweep))
        t1 = time.perf_counter()
        sec.update(
            run_checks(name, sweep, out / name, store, sec["verdict"], device, max_batch, progress, threads, base=df)
        )
        if sec["budget_check"].get("moved"):  # drawn again: the figures mark the cells that moved
            sec["figures"] = plot_sweep(str(out / name), fig_dir=str(figs))
        sec["check_seconds"] = time.perf_counter() - t1
        timings[name] = time.perf_counter() - t0
        sections.append(sec)
    write_verdicts(out, budget, sections)
    report = _write_report(out, budget, sections, timings, device, everything=EXPERIMENTS)
    return report


def hypotheses_summary(df: pd.DataFrame, sweep) -> dict:
    """What the verdict object says of the claim's hypotheses: the required list with ε, ς, and how many
    cells were inside, outside and not evaluable."""
    ins = df["inside"] if "inside" in df.columns else pd.Series(True, index=df.index)
    th = sweep.theory or {}
    return {
        "hypotheses": {k: th.get(k) for k in ("require", "eps", "varsigma", "c_width")},
        "cells_inside_hypotheses": int(ins.map(lambda v: v is True).sum()),
        "cells_outside_hypotheses": int(ins.map(lambda v: v is False).sum()),
        "cells_hypotheses_unevaluable": int(ins.map(lambda v: v is None).sum()),
    }


class _Stores:
    """Arrays looked up in a check run's store first, then the experiment's (rules read arrays by cell)."""

    def __init__(self, *stores):
        self.stores = stores

    def load_arrays(self, cell_hash, *a, **kw):
        for st in self.stores:
            got = st.load_arrays(cell_hash, *a, **kw)
            if got:
                return got
        return {}


def run_checks(name, sweep, folder: Path, store, verdict, device, max_batch, progress, threads, base=None) -> dict:
    """The sweep's ``[check]``: the budget check and every switch, each re-training the deciding cells and
    applying the experiment's rule again (checks.py). A verdict that changes at ``steps_factor`` × the steps
    is reported budget-limited. ``base``: the experiment's current rows, if the caller has them (each check
    replaces its deciding cells in them; loaded once by run_check otherwise)."""
    from ..checks import moved_cells, run_check, switch_name, variants, write_moved
    from ..results import current_cells

    out = {
        "budget_check": {"run": False, "why": "the sweep file has no [check] table", "compared": 0, "moved": []},
        "switches_tried": {},
        "switch_folders": {},
        "verdict_at_base": verdict,
    }
    kw = dict(device=device, max_batch=max_batch, progress=progress, threads=threads)
    if store is not None:  # the experiment's cells, refined ones included: read once for every check run
        kw["stored"] = current_cells(folder)
    if base is None and store is not None:
        base = load_results(folder, current_only=True)
    for sub, key, value, sf, wf in variants(sweep):
        df2, sweep2, mapping, new = run_check(sweep, str(folder), sub, key, value, sf, wf, base=base, **kw)
        if df2 is None:
            res = {"run": False, "why": "no deciding cells at this budget"}
            v2 = None
        else:
            # a switch with deciding cells of its own ([check] switch_grid) is judged on them alone: the base
            # cells around them were not trained under the switch (theorem_scaling's n = 128 and 2,048 would
            # otherwise decide "FRR at the largest n" for a random start or a random-sign dictionary)
            own = key is not None and "switch_grid" in (sweep.check or {})
            judged = new if own else df2  # new is None only when df2 is (handled above)
            judged = A.with_hypotheses(judged, sweep2.theory)
            got = CLAIMS[name](judged, _Stores(Store(folder / sub), store), sweep2)
            v2 = got["verdict"]
            if got.get("conditions"):
                out.setdefault("conditions_under_checks", {})[sub] = got["conditions"]
            out.setdefault("ours_under_checks", {})[sub] = got.get("ours")
            if base is not None and "cell_hash" in df2.columns:  # every re-trained cell, refined ones included
                retrained = set(df2.cell_hash) - set(base.cell_hash)
            else:
                retrained = {c.hash for c in sweep2.cells} - {c.hash for c in sweep.cells}
            res = {"run": True, "cells": len(retrained)}
        if key is None:
            compared, moved = 0, []
            if df2 is not None and base is not None:
                compared, moved = moved_cells(base, new, mapping, check_metrics(sweep))
                write_moved(folder / sub, moved)
                moved = [{k: v for k, v in m.items() if k != "hashes"} for m in moved]
            out["budget_check"] = {
                **res,
                "steps_factor": sf,
                "width_factor": wf,
                "verdict_at_double": v2,
                "stable": None if v2 is None else v2 == verdict,
                "compared": compared,
                "moved": moved,
            }
        else:
            out["switches_tried"][switch_name(key, value)] = v2
            out["switch_folders"][switch_name(key, value)] = sub
    if out["budget_check"].get("stable") is False:
        out["verdict"] = "budget-limited"
    elif out["budget_check"].get("moved") and verdict == "measured":
        out["verdict"] = "measured — budget-limited"  # a description whose deciding cells had not settled
    return out


def check_metrics(sweep) -> list[str]:
    """The metrics the budget check compares cell by cell: the rule's (``[report] metric``, else the figure's
    ``[plot] metric``, else FRR@0.9) and any ``[report] check_metrics``."""
    rep = sweep.report or {}
    first = rep.get("metric") or sweep.plot.get("metric") or "frr_0.9"
    extra = rep.get("check_metrics", [])
    return list(dict.fromkeys([first, *(extra if isinstance(extra, list) else [])]))
