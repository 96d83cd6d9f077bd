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
import json
import re

import pandas as pd

from .results import current_cells
from .store import load_results
from .sweep import run_sweep
from .sweep.spec import Sweep, deciding_cells, switch_check, switched


def switch_name(key, value) -> str:
    """A switch as the report names it: ``key=value``, or for a joint switch (a dict) ``k1=v1+k2=v2``."""
    if isinstance(key, dict):
        return "+".join(f"{k}={v}" for k, v in key.items())
    return f"{key}={value}"


def folder_name(key, value) -> str:
    """The check run's folder under the experiment's: ``check_budget``, or ``check_<key>=<value>`` made safe."""
    if key is None:
        return "check_budget"
    return "check_" + re.sub(r"[^A-Za-z0-9_.-]", "_", switch_name(key, value))


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
    for j in c.get("joint", []):
        out.append((folder_name(j, None), j, None, 1, 1))
    return out


def derived_sweep(sweep: Sweep, key, value, steps_factor, width_factor, stored=()) -> tuple[Sweep, dict]:
    """The deciding cells with the change applied, as a sweep with no refinement, and the map original
    cell hash → derived cell. stored: the folder's current cells (refined ones among them), selected alike."""
    pool = {c.hash: c for c in [*sweep.cells, *stored]}
    chosen = deciding_cells(list(pool.values()), sweep.check if key is None else switch_check(sweep.check))
    mapping = {c.hash: switched(c, key, value, steps_factor, width_factor, strict=False) for c in chosen}
    mapping = {h: c for h, c in mapping.items() if c is not None}  # a switch leaves cells it does not apply to
    return dataclasses.replace(sweep, cells=list(mapping.values()), refine=()), mapping


def moved_cells(base: pd.DataFrame, new: pd.DataFrame, mapping: dict, metrics: list[str]) -> tuple[int, list]:
    """The budget check's comparison, cell by cell: each deciding cell (its seeds pooled) at the base budget
    (``base`` rows of the original hashes) and at the check's (``new`` rows of the derived cells), per metric its
    seed interval (Wilson-widened for a fraction of the features, analysis.seed_interval). A cell is *moved* when
    for some metric its check interval lies wholly outside its base interval (no interval: never moved).
    Returns (cells compared, the moved ones as dicts: cell, metric, base, double (mean, low, high), hashes (the
    original cells, one per seed))."""
    from .analysis import seed_interval
    from .measures import is_fraction

    groups: dict[str, list] = {}
    for orig, cell in mapping.items():
        key = json.dumps([cell.label, {k: v for k, v in cell.data.items() if k != "seed"}, cell.params], sort_keys=True)
        groups.setdefault(key, []).append((orig, cell))
    varying = _varying_keys([json.loads(k) for k in groups])
    compared, moved = 0, []
    for key, members in groups.items():
        b = base[base.cell_hash.isin([o for o, _ in members])]
        n = new[new.cell_hash.isin([c.hash for _, c in members])]
        if b.empty or n.empty:
            continue
        compared += 1
        label, data, params = json.loads(key)
        for m in metrics:
            if m not in b.columns or m not in n.columns:
                continue
            items = int(b["n"].iloc[0]) if is_fraction(m) and "n" in b.columns else None
            iv_b = seed_interval(b[m].to_numpy(float), items)
            iv_n = seed_interval(n[m].to_numpy(float), items)
            if any(x != x for x in (*iv_b[1:], *iv_n[1:])):
                continue
            if iv_n[1] > iv_b[2] or iv_n[2] < iv_b[1]:
                where = ", ".join(f"{k} = {v}" for k, v in {**data, **params}.items() if k in varying)
                moved.append(
                    {
                        "cell": label + (f" ({where})" if where else ""),
                        "metric": m,
                        "base": iv_b,
                        "double": iv_n,
                        "hashes": [o for o, _ in members],
                    }
                )
    return compared, moved


#: the file in a budget check's folder listing the original cells that moved (``plot_sweep`` marks them)
MOVED_FILE = "moved.json"


def write_moved(folder, moved: list) -> None:
    """``folder``/MOVED_FILE: the hashes of every moved cell (empty list: none moved), written whole or not at all."""
    from pathlib import Path

    from .outputs import atomic_file

    path = Path(folder) / MOVED_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        Path(tmp).write_text(json.dumps(sorted({h for m in moved for h in m["hashes"]})) + "\n")


def read_moved(out_dir) -> set:
    """The original cells of ``out_dir`` that its budget check found moved (empty when it has not run)."""
    from pathlib import Path

    path = Path(out_dir) / folder_name(None, None) / MOVED_FILE
    try:
        got = json.loads(path.read_text())
    except (OSError, ValueError):
        return set()
    return {h for h in got if isinstance(h, str)} if isinstance(got, list) else set()


def _varying_keys(groups: list) -> set:
    """The data fields and hyperparameters whose values differ between the compared cells (they name a cell)."""
    seen: dict[str, set] = {}
    for _, data, params in groups:
        for k, v in {**data, **params}.items():
            seen.setdefault(k, set()).add(json.dumps(v))
    return {k for k, vs in seen.items() if len(vs) > 1}


def run_check(
    sweep: Sweep, out: str, name, key, value, sf, wf, base: pd.DataFrame | None = None, stored=None, **run_kw
) -> tuple:
    """Trains one check run into ``out/name`` and returns (the experiment's rows — ``base``, its current
    results, loaded here when not given — with the deciding cells replaced by their derived versions, the
    sweep whose coarse cells are replaced likewise, the map original hash → derived cell, the check run's own
    rows): the first two are what the experiment's rule is applied to again, the last two what
    ``moved_cells`` compares. ``stored``:
    the experiment's current cells (``results.current_cells``), read here when not given."""
    if stored is None:
        stored = current_cells(out)
    sub, mapping = derived_sweep(sweep, key, value, sf, wf, stored)
    if not mapping:
        return None, None, {}, None
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
    return combined, swept, mapping, new
