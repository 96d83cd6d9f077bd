"""The budget check and the DECIDE switches of a verdict (a sweep file's ``[check]`` table).

A verdict rests on some cells (``[check] grid`` / ``methods``: the deciding cells, fixed in the sweep file
before the run) — those of the coarse grid and those refinement added at the selected values (refined cells sit
where boundaries are fitted, so they get the check's budget too). The budget check re-trains exactly those cells
at ``steps_factor`` × the steps (and ``width_factor`` × the width), puts them in place of the originals and
applies the same rule again: a verdict that changes is budget-limited, not a finding. Each switch value re-trains
the deciding cells with that one DECIDE choice changed (a hyperparameter, a train key or a data field) and applies
the rule again. Each run is a small sweep of its own in ``<experiment>/check_<name>/``, resumable like every sweep.
"""

from __future__ import annotations

import dataclasses
import re

import pandas as pd

from .results import current_cells
from .store import load_results
from .sweep import run_sweep
from .sweep.spec import Sweep, deciding_cells, switched


def folder_name(key, value) -> str:
    """The check run's folder under the experiment's: ``check_budget``, or ``check_<key>=<value>`` made safe."""
    if key is None:
        return "check_budget"
    return "check_" + re.sub(r"[^A-Za-z0-9_.-]", "_", f"{key}={value}")


def variants(sweep: Sweep) -> list[tuple[str, str | None, object, float, float]]:
    """(folder name, switch key, value, steps factor, width factor) of every check run the sweep asks for:
    the budget check first, then one per switch value."""
    c = sweep.check
    if not c:
        return []
    out = [(folder_name(None, None), None, None, c["steps_factor"], c["width_factor"])]
    for k, vals in c["switches"].items():
        for v in vals:
            out.append((folder_name(k, v), k, v, 1, 1))
    return out


def derived_sweep(sweep: Sweep, key, value, steps_factor, width_factor, stored=()) -> tuple[Sweep, dict]:
    """The deciding cells with the change applied, as a sweep with no refinement, and the map original
    cell hash → derived cell. stored: the folder's current cells (refined ones among them), selected alike."""
    pool = {c.hash: c for c in [*sweep.cells, *stored]}
    chosen = deciding_cells(list(pool.values()), sweep.check)
    mapping = {c.hash: switched(c, key, value, steps_factor, width_factor) for c in chosen}
    return dataclasses.replace(sweep, cells=list(mapping.values()), refine=()), mapping


def run_check(
    sweep: Sweep, out: str, name, key, value, sf, wf, base: pd.DataFrame | None = None, stored=None, **run_kw
) -> tuple[pd.DataFrame, Sweep]:
    """Trains one check run into ``out/name`` and returns (the experiment's rows — ``base``, its current
    results, loaded here when not given — with the deciding cells replaced by their derived versions, the
    sweep whose coarse cells are replaced likewise): what the experiment's rule is applied to again. ``stored``:
    the experiment's current cells (``results.current_cells``), read here when not given."""
    if stored is None:
        stored = current_cells(out)
    sub, mapping = derived_sweep(sweep, key, value, sf, wf, stored)
    if not mapping:
        return None, None
    folder = f"{out}/{name}"
    # the check folder belongs to the experiment and follows its sweep file: an edited [check] (another width
    # or steps factor) is a new design there, run as a new generation (identical cells are reused, old ones
    # kept but never current again) rather than refused
    run_sweep(sub, folder, force=True, **run_kw)
    new = load_results(folder, current_only=True)
    if base is None:
        base = load_results(out, current_only=True)
    kept = base[~base.cell_hash.isin(set(mapping))]
    combined = pd.concat([kept, new], ignore_index=True)
    swept = dataclasses.replace(sweep, cells=[mapping.get(c.hash, c) for c in sweep.cells])
    return combined, swept
