"""Sweep files (TOML) → validated cells.

```toml
name = "quickstart"                      # identifies the output folder's sweep
description = "..."
[data]                                    # fixed generator knobs (GeneratorSpec fields)
n = 128
s = 3
[grid]                                    # data axes, crossed (any GeneratorSpec field)
d = [16, 42, 64]
s = {range = [1, 4, 1]}                   # or {linspace|geomspace = [a, b, num]}, {logspace = [e0, e1, num]}
zip = [["n", "d"]]                        # optional: these axes vary together instead of crossing
[[methods]]                               # one table per method entry (a name may repeat)
name = "ba"
label = "BA"                              # optional legend label
width = 512
p_over_f = {geomspace = [0.25, 4, 5]}     # list-valued params are axes; X_over_f = X / f (derived)
[train]
steps = 3000
batch = 512
seeds = [0, 1]                            # root seeds: data and SAE init (a `seed` in [data] fixes the data)
[plot]                                    # default axes of `theory-sim plot`
x = "p_over_f"
y = "d"
[refine]                                  # optional: bisect where the metric crosses a level (sweep/refine.py)
axis = "p_over_f"
tolerance = 1.25
[budgets.tiny]                            # deep-merged over the file; `all_methods` merges into every method
train = {steps = 200, seeds = [0]}
all_methods = {width = 128}
```
A cell = (data spec, method, params, train, seed); its hash covers exactly that resolved config.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import math
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from ..errors import ConfigError, check_nesting, read_bounded
from ..hyper import TrainConfig, derived_base, resolve_hyper, spec_scales
from ..model.spec import GENERATOR_FIELDS, GeneratorSpec
from ..params import per_model
from ..sae.configs import CONFIGS, get_config
from .extend import parse_extend
from .refine import Refine, parse_refines

SCHEMA = 1
TOP_KEYS = (
    "name",
    "description",
    "data",
    "grid",
    "methods",
    "train",
    "plot",
    "budgets",
    "report",
    "refine",
    "theory",
    "check",
    "extend",
)
TRAIN_KEYS = tuple(f.name for f in fields(TrainConfig)) + ("seeds",)
PLOT_KEYS = ("x", "y", "metric", "curve", "tuned")
BUDGETS = ("tiny", "quick", "full")
#: the figures ``[plot] curve`` may ask for (drawn by theory_sim.plots)
CURVE_KINDS = (
    "frr_vs_tau",
    "frontier",
    "consistency",
    "frr_vs_magnitude",
    "table",
    "frr_by_step",
    "alignment",
    "frequency_ratio",
    "spectrum",
    "peak",
    "frr_vs_mu",
)
BUDGET_KEYS = ("data", "grid", "methods", "train", "plot", "all_methods", "refine", "check", "extend")
#: the most cells one sweep file may define (each is a trained model; 10⁹ would exhaust memory listing them)
MAX_CELLS = 200_000
#: a sweep name becomes part of file names: no path separators, no leading dot
#: a [[methods]] role: an identifier
ROLE = re.compile(r"[a-z][a-z0-9_]{0,63}")
SAFE_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}")


@dataclass(frozen=True)
class Cell:
    """One trained model: everything that determines its numbers."""

    data: dict
    method: str
    params: dict
    train: dict
    seed: int
    label: str
    #: the method's validated config, resolved once when the cell is made (make_cell) and carried to the batch
    #: key and the training loop; not part of the hash or of equality (it follows from the fields above)
    resolved: object = field(default=None, compare=False, repr=False)

    @property
    def config(self) -> dict:
        return {
            "schema": SCHEMA,
            "data": self.data,
            "method": self.method,
            "params": self.params,
            "train": self.train,
            "seed": self.seed,
        }

    @property
    def hash(self) -> str:
        blob = json.dumps(self.config, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(blob.encode()).hexdigest()[:20]

    def spec(self) -> GeneratorSpec:
        """The data model; a ``seed`` in [data] fixes the data across cell seeds (then the cell seed only
        changes the SAE's initialisation), otherwise the cell seed drives the data too."""
        return GeneratorSpec.for_cell(self.data, self.seed)

    def method_config(self):
        """The method's validated config (resolved once: carried from make_cell, else resolved and kept)."""
        if self.resolved is None:
            object.__setattr__(self, "resolved", resolve_hyper(self.method, self.params, *spec_scales(self.spec())))
        return self.resolved

    def batch_key(self) -> str:
        """Cells with equal keys can share one ensemble (equal shapes and shared hyperparameters)."""
        cfg = self.method_config()
        shared = {k: v for k, v in cfg.to_dict().items() if k not in per_model(get_config(self.method))}
        key = [self.method, self.data["n"], self.data["d"], shared, self.train]
        if self.train.get("graph"):  # one counter-stream ensemble draws one structure of data (model/counter.py)
            key.append(GeneratorSpec.for_cell(self.data, self.seed).counter_structure())
        return json.dumps(key, sort_keys=True)


@dataclass
class Sweep:
    """A validated sweep file. cells: the coarse grid's cells; refine: its [refine] tables (one per refined
    axis; empty: none); seeds: train.seeds (refinement trains new axis values at these and adds seeds after)."""

    name: str
    description: str
    cells: list[Cell]
    plot: dict
    source: str
    path: str
    budget: str
    refine: tuple[Refine, ...] = ()
    seeds: tuple = (0,)
    report: dict = field(default_factory=dict)  # [report]: e.g. the paper's numbers beside ours
    roles: dict = field(default_factory=dict)  # label → role ([[methods]] role): what a report rule keys on
    theory: dict = field(default_factory=dict)  # [theory]: the claim's hypotheses (eps, varsigma, c_width, require)
    check: dict = field(default_factory=dict)  # [check]: the deciding cells, steps/width factors, switches
    extend: dict = field(default_factory=dict)  # [extend]: grid edges pushed back (sweep/extend.py)

    def derive(self, cell: Cell, axis: str | None = None, value=None, seed: int | None = None) -> Cell | None:
        """``cell`` at another value of ``axis`` and/or another seed, validated like a grid cell; None if the
        data model or the method refuses that value (a refinement bracket then stays as it is)."""
        data, params = dict(cell.data), dict(cell.params)
        if axis is not None:
            (data if axis in data else params)[axis] = value
        try:
            return make_cell(data, cell.method, params, cell.train, cell.seed if seed is None else seed, cell.label)
        except ConfigError:
            return None


def make_cell(
    data: dict, method: str, params: dict, train: dict, seed: int, label: str, spec: GeneratorSpec | None = None
) -> Cell:
    """The cell for these inputs, validated (ConfigError naming the field otherwise). data: generator fields
    (a ``seed`` among them fixes the data across cell seeds); spec: ``GeneratorSpec.for_cell(data, seed)``
    when the caller has already built (and validated) it."""
    spec = spec or GeneratorSpec.for_cell(data, seed)
    resolved = resolve_hyper(method, params, *spec_scales(spec))
    data_dict = {
        k: canonical(v, _DATA_FLOATS.get(k)) for k, v in spec.to_dict().items() if k != "seed" or "seed" in data
    }
    floats = _param_floats(method)
    params = {
        k: canonical(v, floats.get(derived_base(k), "float") if k != derived_base(k) else floats.get(k))
        for k, v in params.items()
    }
    if train.get("graph"):  # a captured step: only what can be captured (the device is checked by the run)
        from ..sae.configs import check_capturable

        check_capturable(method, resolved)
    return Cell(data_dict, method, dict(sorted(params.items())), train, int(seed), str(label), resolved)


def with_execution(sweep: "Sweep", graph: bool = False, precision: str = "fp32") -> "Sweep":
    """``sweep`` run another way on a card: ``graph`` sets ``graph = true`` in the train table of every cell whose
    method's step can be captured (sae.configs.capture_refusal; every generator spec can be drawn on the
    device), the others unchanged (eager); ``precision`` other than fp32 is set on every cell. Refined and
    checked cells derive from these, so they follow. What ``reproduce --graph / --precision`` runs (each
    setting makes other cells: their hashes include it)."""
    from ..sae.configs import capture_refusal

    cells = []
    for c in sweep.cells:
        train = dict(c.train)
        if graph and not train.get("graph") and capture_refusal(c.method, c.resolved) is None:
            train["graph"] = True
        if precision != "fp32":
            train["precision"] = precision
        cells.append(c if train == c.train else replace(c, train=train))
    return replace(sweep, cells=cells)


def _float_kinds(cls) -> dict[str, str]:
    """field → "float" (a float field), "floats" (a tuple of floats), "count" (``s``: an integral value is an
    int), from the dataclass's type hints."""
    import typing

    out = {}
    for k, h in typing.get_type_hints(cls).items():
        h = str(h)
        if "tuple[float" in h:
            out[k] = "floats"
        elif "float" in h and "int" not in h and "bool" not in h:
            out[k] = "float"
    return out


_DATA_FLOATS = {**_float_kinds(GeneratorSpec), "s": "count"}


def _param_floats(method: str) -> dict[str, str]:
    return _float_kinds(get_config(method))


def canonical(v, kind: str | None):
    """One spelling per value, so one model has one hash: a float field's integer becomes a float (1 ≡ 1.0),
    -0.0 becomes 0.0, an integral expected L0 ``s`` an int."""
    if isinstance(v, bool) or kind is None:
        return v
    if kind == "floats" and isinstance(v, (list, tuple)):
        return type(v)(canonical(x, "float") for x in v)
    if kind == "float" and isinstance(v, (int, float)):
        return float(v) + 0.0
    if kind == "count" and isinstance(v, float) and v.is_integer():
        return int(v)
    return v


def _err(path, key, msg):
    return ConfigError(f"{path}: {key}", msg)


def axis_values(v, key: str, path: str, distinct: bool = True) -> list:
    """Expand an axis spec to a list of values (``distinct``: a value given twice is refused; a zipped axis may
    repeat values, its zipped tuples must differ)."""
    if isinstance(v, dict):
        if len(v) != 1:
            raise _err(path, key, "an axis table needs exactly one of linspace, logspace, geomspace, range")
        ((kind, args),) = v.items()
        if kind not in ("linspace", "logspace", "geomspace", "range"):
            raise _err(path, key, f"unknown axis form {kind!r}; allowed: linspace, logspace, geomspace, range")
        if not (isinstance(args, list) and len(args) == 3 and all(_is_num(a) for a in args)):
            raise _err(path, key, f"{kind} needs [start, stop, num] of numbers, got {args!r}")
        a, b, c = args
        if kind == "range":
            if not all(isinstance(x, int) for x in args) or c <= 0:
                raise _err(
                    path,
                    key,
                    f"range needs integers [start, stop, step > 0] (stop included), got {args!r}; "
                    "use linspace or a list for non-integer values",
                )
            if (b - a) // c + 1 > MAX_CELLS:
                raise _err(
                    path,
                    key,
                    f"range gives {(b - a) // c + 1} values, more than the {MAX_CELLS} cells a sweep may have",
                )
            vals = list(range(a, b + 1, c))
        else:
            if c < 1 or int(c) != c or c > MAX_CELLS:
                raise _err(path, key, f"{kind} num must be an integer in [1, {MAX_CELLS}], got {c!r}")
            if kind == "geomspace" and (a <= 0 or b <= 0):
                raise _err(path, key, "geomspace endpoints must be > 0")
            fn = {"linspace": np.linspace, "logspace": np.logspace, "geomspace": np.geomspace}[kind]
            vals = [float(np.round(x, 12)) for x in fn(a, b, int(c))]
    elif isinstance(v, list):
        vals = v
    else:
        vals = [v]
    if len(vals) == 0:
        raise _err(path, key, "the axis is empty; give at least one value")
    for x in vals:
        if isinstance(x, float) and not math.isfinite(x):
            raise _err(path, key, f"values must be finite, got {x!r}")
    if isinstance(v, list) and distinct:  # generated forms are distinct by construction
        seen = {}
        for x in vals:
            k = (0.0 if x == 0 else float(x)) if _is_num(x) else repr(x)  # 1 ≡ 1.0, -0.0 ≡ 0.0
            if k in seen:
                raise _err(path, key, f"{x!r} and {seen[k]!r} are the same value given twice (one model, pooled twice)")
            seen[k] = x
    return vals


def _is_num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _deep_merge(base: dict, over: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and not _is_axis_table(v):
            out[k] = _deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def _is_axis_table(v: dict) -> bool:
    return len(v) == 1 and next(iter(v)) in ("linspace", "logspace", "geomspace", "range")


def _axes(table: dict, key_prefix: str, path: str, zips=()) -> dict[str, list]:
    """Each entry of a [grid] or [[methods]] table as its list of values — the one place an axis is expanded
    (the count, the cells and the refine/check tables all read these lists). Axes in ``zips`` may repeat a value
    (``_groups`` holds their zipped tuples distinct)."""
    zipped = {k for z in zips if isinstance(z, list) for k in z if isinstance(k, str)}
    return {k: axis_values(v, f"{key_prefix}{k}", path, distinct=k not in zipped) for k, v in table.items()}


def _groups(axes: dict[str, list], zips: list, key_prefix: str, path: str) -> list[list[dict]]:
    """The factors of the cross product: one per zipped group (its axes move together) and one per other axis;
    each a list of partial points."""
    groups, used = [], set()
    for z in zips:
        if not (isinstance(z, list) and all(isinstance(k, str) for k in z)):
            raise _err(path, f"{key_prefix}zip", "must be a list of lists of axis names")
        for k in z:
            if k not in axes:
                raise _err(path, f"{key_prefix}zip", f"{k!r} is not an axis here; axes: {', '.join(axes)}")
        lens = {len(axes[k]) for k in z}
        if len(lens) != 1:
            raise _err(path, f"{key_prefix}zip", f"zipped axes {z} must have equal lengths, got {sorted(lens)}")
        tuples = list(zip(*(axes[k] for k in z)))
        keys = [tuple((0.0 if x == 0 else float(x)) if _is_num(x) else repr(x) for x in t) for t in tuples]
        if len(set(keys)) != len(keys):
            raise _err(path, f"{key_prefix}zip", f"zipped axes {z} give the same point twice (one model, pooled twice)")
        groups.append([dict(zip(z, vals)) for vals in tuples])
        used.update(z)
    for k, vals in axes.items():
        if k not in used:
            groups.append([{k: v} for v in vals])
    return groups


def _count(groups: list[list[dict]]) -> int:
    """How many points ``_points`` makes, from the factors' lengths (before anything is listed)."""
    return math.prod(len(g) for g in groups)


def _points(groups: list[list[dict]]) -> list[dict]:
    """The cross product of the factors."""
    out = []
    for combo in itertools.product(*groups):
        d = {}
        for part in combo:
            d.update(part)
        out.append(d)
    return out


def load_sweep(path: str | Path, budget: str = "full") -> Sweep:
    """Parse and fully validate a sweep file; raises ConfigError naming the file and key."""
    path = str(path)
    source = read_bounded(path, "sweep")
    sweep = parse_sweep(source, str(Path(path).resolve()), budget)
    for other in BUDGETS:  # every budget the file defines validates now, not when it is first run
        if other != budget and (
            other == "full" or other in tomllib.loads(source.removeprefix("\ufeff")).get("budgets", {})
        ):
            parse_sweep(source, sweep.path, other)
    return sweep


def parse_sweep(source: str, path: str, budget: str = "full") -> Sweep:
    """A sweep file's text → a validated Sweep (path: for messages and the store's same-file check)."""
    check_nesting(source, f"{path}: toml", "the file")
    try:
        raw = tomllib.loads(source.removeprefix("\ufeff"))
    except tomllib.TOMLDecodeError as e:
        raise _err(path, "toml", f"not valid TOML ({e})") from None
    except RecursionError:
        raise _err(path, "toml", "nested too deeply") from None
    for k in raw:
        if k not in TOP_KEYS:
            raise _err(path, k, f"unknown key; allowed: {', '.join(TOP_KEYS)}")
    for k in ("data", "grid", "train", "plot", "budgets", "report", "theory", "check", "extend"):
        _require_table(raw, k, path)
    budgets = raw.get("budgets", {})
    for b, over in budgets.items():
        _require_table(budgets, b, path, f"budgets.{b}")
        for k, v in over.items():
            if k not in BUDGET_KEYS:
                raise _err(path, f"budgets.{b}.{k}", f"unknown key; allowed: {', '.join(BUDGET_KEYS)}")
            if k not in ("methods", "refine"):
                _require_table(over, k, path, f"budgets.{b}.{k}")
    if budget not in BUDGETS:
        raise _err(path, "budget", f"must be one of {', '.join(BUDGETS)}; got {budget!r}")
    if budget != "full" and budget not in budgets:
        raise _err(path, f"budgets.{budget}", f"not defined in this file; defined: {', '.join(['full', *budgets])}")
    for b in budgets:
        if b not in BUDGETS:
            raise _err(path, f"budgets.{b}", f"unknown budget; allowed: {', '.join(BUDGETS)}")
    cfg = {k: v for k, v in raw.items() if k != "budgets"}
    over = dict(budgets.get(budget, {}))
    all_methods = over.pop("all_methods", {})
    cfg = _deep_merge(cfg, over)
    if not isinstance(cfg.get("name"), str) or not SAFE_NAME.fullmatch(cfg["name"]):
        raise _err(
            path,
            "name",
            "required: a file stem of letters, digits, '_', '-' and '.' (not starting with "
            f"'.'; it names the figures inside --out), got {cfg.get('name')!r}",
        )
    for k in ("data", "grid", "train", "plot"):
        _require_table(cfg, k, path)
    data = cfg.get("data", {})
    grid = dict(cfg.get("grid", {}))
    zips = grid.pop("zip", [])
    _require_zip(zips, "grid.zip", path)
    for sect, table in (("data", data), ("grid", grid)):
        if not isinstance(table, dict):
            raise _err(path, sect, "must be a table")
        for k in table:
            if k not in GENERATOR_FIELDS:
                allowed = ", ".join(GENERATOR_FIELDS)
                raise _err(path, f"{sect}.{k}", f"unknown generator option; allowed: {allowed}")
    train = cfg.get("train", {})
    for k in train:
        if k not in TRAIN_KEYS:
            raise _err(path, f"train.{k}", f"unknown key; allowed: {', '.join(TRAIN_KEYS)}")
    seeds = axis_values(train.get("seeds", [0]), "train.seeds", path)
    for s in seeds:
        if not (isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2**63):
            raise _err(path, "train.seeds", f"seeds must be integers in [0, 2^63), got {s!r}")
    try:
        tc = TrainConfig(**{k: v for k, v in train.items() if k != "seeds"}).to_dict()
    except ConfigError as e:
        raise _err(path, f"train.{e.field}", e.message) from None
    except TypeError as e:
        raise _err(path, "train", str(e)) from None
    plot = cfg.get("plot", {})
    _check_plot(plot, path)
    methods = cfg.get("methods")
    if not isinstance(methods, list) or not methods or not all(isinstance(m, dict) for m in methods):
        raise _err(path, "methods", "give at least one [[methods]] table with a name")
    if not isinstance(all_methods, dict):
        raise _err(path, f"budgets.{budget}.all_methods", "must be a table of hyperparameters")
    # merged once, here, so a budget's overrides pass every check below like the file's own entries
    methods = [{**m, **all_methods} for m in methods]
    all_methods = {}
    labels: dict[str, int] = {}
    for i, m in enumerate(methods):
        lab = m.get("label", m.get("name"))
        if not isinstance(lab, str) or not lab:
            raise _err(path, f"methods[{i}].label", f"must be a non-empty string, got {lab!r}")
        if lab in labels:  # two entries under one label would be pooled as if they were seeds of one method
            raise _err(
                path,
                f"methods[{i}].label",
                f"{lab!r} is already the label of methods[{labels[lab]}]; give each [[methods]] entry its own label",
            )
        labels[lab] = i
    # every axis expanded once: the count, the cells, [refine] and [check] read these lists
    grid_axes = _axes(grid, "grid.", path, zips)
    grid_groups = _groups(grid_axes, zips, "grid.", path)
    method_axes, method_groups = [], []
    for i, m in enumerate(methods):
        mzips = m.get("zip", [])
        _require_zip(mzips, f"methods[{i}].zip", path)
        axes_i = _axes(
            {k: v for k, v in m.items() if k not in ("name", "label", "zip", "role")}, f"methods[{i}].", path, mzips
        )
        method_axes.append(axes_i)
        method_groups.append(_groups(axes_i, mzips, f"methods[{i}].", path))
    n_cells = _count(grid_groups) * len(seeds) * sum(_count(g) for g in method_groups)
    if n_cells > MAX_CELLS:  # counted from the axis lengths, before anything is listed
        raise _err(
            path, "grid", f"{n_cells} cells exceed the limit of {MAX_CELLS}; split the sweep or coarsen its grid"
        )
    data_points = _points(grid_groups)
    cells, seen, roles = [], set(), {}
    for i, m in enumerate(methods):
        m = dict(m)
        key = f"methods[{i}]"
        name = m.pop("name", None)
        if name not in CONFIGS:
            raise _err(path, f"{key}.name", f"unknown method {name!r}; allowed: {', '.join(sorted(CONFIGS))}")
        label = m.pop("label", name)
        role = m.pop("role", None)
        if role is not None:
            if not (isinstance(role, str) and ROLE.fullmatch(role)):
                raise _err(
                    path,
                    f"{key}.role",
                    f"must be an identifier of lowercase letters, digits and '_' (what a "
                    f'report rule keys on, e.g. "gba_covers_f"), got {role!r}',
                )
            roles[str(label)] = role
        m.pop("zip", None)
        allowed = {f.name for f in fields(get_config(name))}
        for k in m:
            base = derived_base(k)
            if base not in allowed and k != "steps":
                raise _err(
                    path,
                    f"{key}.{k}",
                    f"unknown hyperparameter of {name}; allowed: {', '.join(sorted(allowed))} "
                    "(and X_over_f for a frequency X, X_over_s for a count X, X_over_n for a multiple of n; "
                    "steps: this method's own [train] steps)",
                )
        for params in _points(method_groups[i]):
            # a method's own steps (a number or an axis, zipped e.g. with width: steps that scale with width)
            params, tc_m = dict(params), tc
            if "steps" in params:
                try:
                    tc_m = TrainConfig(**{**tc, "steps": params.pop("steps")}).to_dict()
                except ConfigError as e:
                    raise _err(path, f"{key}.steps", e.message) from None
            for point in data_points:
                d = {**data, **point}
                for seed in seeds:
                    try:  # built here so that a data error names [data] / [grid], not the method
                        spec = GeneratorSpec.for_cell(d, seed)
                    except ConfigError as e:
                        raise _err(path, f"data.{e.field}", f"{e.message} (at grid point {point})") from None
                    except TypeError as e:
                        raise _err(path, "data", str(e)) from None
                    try:
                        cell = make_cell(d, name, params, tc_m, seed, label, spec)
                    except ConfigError as e:
                        raise _err(path, f"{key}.{e.field}", f"{e.message} (at {params})") from None
                    except TypeError as e:
                        raise _err(path, key, str(e)) from None
                    if cell.hash not in seen:
                        seen.add(cell.hash)
                        cells.append(cell)
    axes = {k: list(v) for k, v in grid_axes.items()}
    zipped = {k for z in zips for k in z}
    for m, axes_i in zip(methods, method_axes):
        zipped |= {k for z in m.get("zip", []) for k in z}
        for k, vals in axes_i.items():
            axes.setdefault(k, []).extend(vals)
    refine = parse_refines(cfg.get("refine"), path, axes, zipped, seeds, plot.get("metric"))
    report = cfg.get("report", {})
    theory_cfg = parse_theory(cfg.get("theory", {}), path)
    check = parse_check(cfg.get("check", {}), path, cells, labels, axes)
    method_axis_names = {k for axes_i in method_axes for k in axes_i}
    try:
        extend = parse_extend(cfg.get("extend", {}), path, method_axis_names)
    except ConfigError as e:
        raise _err(path, e.field, e.message.removeprefix(f"{path}: ")) from None
    return Sweep(
        cfg["name"],
        cfg.get("description", ""),
        cells,
        plot,
        source,
        path,
        budget,
        refine,
        tuple(int(s) for s in seeds),
        report,
        roles,
        theory_cfg,
        check,
        extend,
    )


def _require_table(d: dict, key: str, path: str, name: str | None = None) -> None:
    if key in d and not isinstance(d[key], dict):
        raise _err(
            path, name or key, f"must be a table ([{name or key}] or key = {{...}}), got {type(d[key]).__name__}"
        )


def _require_zip(z, key: str, path: str) -> None:
    if not (isinstance(z, list) and all(isinstance(g, list) and all(isinstance(k, str) for k in g) for g in z)):
        raise _err(path, key, f'must be a list of lists of axis names, e.g. [["n", "d"]], got {z!r}')


def _check_plot(plot: dict, path: str) -> None:
    """[plot] content, checked before anything runs (a bad figure request must not cost a whole sweep)."""
    for k, v in plot.items():
        if k not in PLOT_KEYS:
            raise _err(path, f"plot.{k}", f"unknown key; allowed: {', '.join(PLOT_KEYS)}")
        if k in ("x", "y", "metric") and not (isinstance(v, str) and v):
            raise _err(path, f"plot.{k}", f"must be a column name (a string), got {v!r}")
        if k in ("tuned", "curve") and not (isinstance(v, list) and all(isinstance(x, str) for x in v)):
            raise _err(path, f"plot.{k}", f"must be a list of strings, got {v!r}")
    from ..measures import METRIC_RANGES

    for k, names in (("metric", [plot["metric"]] if "metric" in plot else []), ("tuned", plot.get("tuned", []))):
        for m in names:
            if m not in METRIC_RANGES:
                raise _err(path, f"plot.{k}", f"unknown metric {m!r}; allowed: {', '.join(METRIC_RANGES)}")
    for kind in plot.get("curve", []):
        if kind not in CURVE_KINDS:
            raise _err(path, "plot.curve", f"unknown curve {kind!r}; allowed: {', '.join(CURVE_KINDS)}")
    if "y" in plot and "x" not in plot:
        raise _err(path, "plot.y", "a phase diagram needs x as well")
    if plot.get("x") is not None and plot.get("x") == plot.get("y"):
        raise _err(path, "plot.y", f"x and y must differ, both are {plot['x']!r}")


def make_batches(cells: list[Cell], max_batch: int) -> list[list[Cell]]:
    """Groups cells with equal batch keys, in file order, into chunks of at most max_batch.

    Deterministic in the full cell list, so a resumed sweep re-forms the same ensembles."""
    groups: dict[str, list[Cell]] = {}
    for c in cells:
        groups.setdefault(c.batch_key(), []).append(c)
    out = []
    for g in groups.values():
        for a in range(0, len(g), max_batch):
            out.append(g[a : a + max_batch])
    return out


THEORY_KEYS = ("eps", "varsigma", "c_width", "require")
CHECK_KEYS = ("grid", "methods", "steps_factor", "width_factor", "switches", "joint", "switch_grid")


def parse_theory(t: dict, path: str) -> dict:
    """[theory] → {eps, varsigma, c_width, require}: the constants of Thm 6.1 the claim is held to and the
    hypotheses (theory.HYPOTHESES) a cell must satisfy to count for or against it; fixed before the run."""
    from ..theory import HYPOTHESES

    for k in t:
        if k not in THEORY_KEYS:
            raise _err(path, f"theory.{k}", f"unknown key; allowed: {', '.join(THEORY_KEYS)}")
    out = {"eps": 0.0, "varsigma": 0.0, "c_width": 1.0, "require": []}
    for k, lo, hi in (("eps", 0.0, 0.5), ("varsigma", 0.0, 1.0)):
        v = t.get(k, out[k])
        if not _is_real(v) or not lo <= v < hi + (k == "varsigma"):
            raise _err(
                path, f"theory.{k}", f"must be a number in [{lo:g}, {hi:g}{']' if k == 'varsigma' else ')'}, got {v!r}"
            )
        out[k] = float(v)
    v = t.get("c_width", 1.0)
    if not _is_real(v) or v <= 0:
        raise _err(path, "theory.c_width", f"must be a number > 0, got {v!r}")
    out["c_width"] = float(v)
    req = t.get("require", [])
    if not isinstance(req, list) or any(h not in HYPOTHESES for h in req) or len(set(req)) != len(req):
        raise _err(path, "theory.require", f"must list distinct hypotheses from {', '.join(HYPOTHESES)}; got {req!r}")
    if "steps" in req and out["varsigma"] == 0:
        raise _err(path, "theory.varsigma", "must be > 0 when require lists steps (T = ⌈1/ς⌉)")
    out["require"] = list(req)
    return out


def _is_real(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def parse_check(c: dict, path: str, cells: list, labels: dict, axes: dict) -> dict:
    """[check] → the budget check and the DECIDE switches tried at a verdict's deciding cells:
    ``grid`` (axis → the values whose cells decide; omitted: every coarse cell), ``methods`` (labels;
    omitted: all), ``steps_factor`` (default 2), ``width_factor`` (default 1), ``switches`` (a
    hyperparameter, train key or data field → values, each re-running the deciding cells with it) and ``joint`` (a
    list of tables, each a set of switches tried together: DECIDE choices that interact); ``switch_grid``
    (optional: the switches' deciding cells, axis → values, where they differ from the budget check's). Every
    derived cell is validated here, so a bad switch value is refused before anything is written."""
    if not c:
        return {}
    for k in c:
        if k not in CHECK_KEYS:
            raise _err(path, f"check.{k}", f"unknown key; allowed: {', '.join(CHECK_KEYS)}")
    out = {"grid": {}, "methods": [], "steps_factor": 2, "width_factor": 1, "switches": {}}
    for key in ("grid", "switch_grid"):
        grid = c.get(key, {})
        if not isinstance(grid, dict):
            raise _err(path, f"check.{key}", "must be a table: axis → list of values")
        if key == "switch_grid" and key in c:
            out[key] = {}
        for k, v in grid.items():
            if k not in axes and k not in GENERATOR_FIELDS:
                raise _err(path, f"check.{key}.{k}", f"not an axis of this sweep; axes: {', '.join(sorted(axes))}")
            out[key][k] = [canonical(x, None) for x in axis_values(v, f"check.{key}.{k}", path)]
    ms = c.get("methods", [])
    if not isinstance(ms, list) or any(m not in labels for m in ms):
        raise _err(path, "check.methods", f"must list method labels of this sweep ({', '.join(labels)}); got {ms!r}")
    out["methods"] = list(ms)
    for k in ("steps_factor", "width_factor"):
        v = c.get(k, out[k])
        if not _is_real(v) or v < 1 or (k == "steps_factor" and v <= 1):
            raise _err(path, f"check.{k}", f"must be a number {'> 1' if k == 'steps_factor' else '>= 1'}, got {v!r}")
        out[k] = v
    sw = c.get("switches", {})
    if not isinstance(sw, dict):
        raise _err(path, "check.switches", "must be a table: switch → list of values")
    chosen = deciding_cells(cells, switch_check(out))

    def validate(key, value):
        """Every deciding cell a switch applies to accepts it (ConfigError otherwise), and it applies to at least one:
        a key no deciding cell's method has is refused, naming it."""
        for k, v in key.items() if isinstance(key, dict) else [(key, value)]:  # each key applies somewhere
            if chosen and all(switched(cell, k, v, strict=False) is None for cell in chosen):
                switched(chosen[0], k, v)  # raises, naming the key
        for cell in chosen:
            switched(cell, key, value, strict=False)

    for k, v in sw.items():
        vals = axis_values(v, f"check.switches.{k}", path)
        for x in vals:
            try:
                validate(k, x)
            except ConfigError as e:
                raise _err(path, f"check.switches.{k}", f"{e.message} (value {x!r})") from None
        out["switches"][k] = vals
    joint = c.get("joint", [])
    if not isinstance(joint, list) or not all(isinstance(j, dict) and len(j) >= 2 for j in joint):
        raise _err(path, "check.joint", "must be a list of tables of two or more switches each, tried together")
    for j in joint:
        try:
            validate(j, None)
        except ConfigError as e:
            raise _err(path, "check.joint", f"{e.message} (in {j!r})") from None
    out["joint"] = [dict(j) for j in joint]
    return out


def switch_check(check: dict) -> dict:
    """The deciding cells of the DECIDE switches: ``[check] switch_grid`` in place of ``grid`` where the file gives
    one (switches at fewer cells than the budget check, e.g. where a switch is costly), else the budget check's."""
    return {**check, "grid": check["switch_grid"]} if "switch_grid" in check else check


def deciding_cells(cells: list, check: dict) -> list:
    """The cells ``check`` selects among ``cells`` (the coarse grid's, and a folder's refined ones where the caller
    adds them): a listed label, and every listed axis the cell has at one of its values (an axis a method does
    not have, e.g. TopK's k for GBA, does not exclude it)."""

    def value(cell, k):
        return cell.data.get(k, cell.params.get(k))

    return [
        c
        for c in cells
        if (not check.get("methods") or c.label in check["methods"])
        and all(value(c, k) is None or canonical(value(c, k), None) in vs for k, vs in check.get("grid", {}).items())
    ]


def switched(cell, key, value, steps_factor: float = 1, width_factor: float = 1, strict: bool = True):
    """``cell`` with one DECIDE switch set (a train key, a data field or a hyperparameter; ConfigError naming
    it when the method, the generator or the trainer refuses it) and its steps/width scaled. ``key`` a dict
    (``value`` unused): a joint switch, every change made at once and the cell validated once. ``strict`` False:
    a hyperparameter this cell's method does not have leaves the switch out for it — None when nothing of the
    switch applies (e.g. GBA's activation at a TopK cell: that cell is not re-trained)."""
    changes = key if isinstance(key, dict) else ({} if key is None else {key: value})
    data, params, train = dict(cell.data), dict(cell.params), dict(cell.train)
    allowed = {f.name for f in fields(get_config(cell.method))}
    if not strict:
        changes = {k: v for k, v in changes.items() if k in TRAIN_KEYS or k in GENERATOR_FIELDS or k in allowed}
        if key is not None and not changes:
            return None
    for k, v in changes.items():
        if k in TRAIN_KEYS and k != "seeds":
            train[k] = v
        elif k in GENERATOR_FIELDS:
            data[k] = v
        else:
            if k not in allowed:
                raise ConfigError(
                    k,
                    f"unknown switch for {cell.method}; allowed: a train key, a data field, or one of "
                    + ", ".join(sorted(allowed)),
                )
            params[k] = v
    if "width" in changes:  # a derived width (width_over_n) gives way to the switched one
        params.pop("width_over_n", None)
    if steps_factor != 1:
        train["steps"] = int(round(train.get("steps", TrainConfig().steps) * steps_factor))
    if width_factor != 1:
        params["width"] = int(round(cell.method_config().width * width_factor))
        params.pop("width_over_n", None)
    tc = TrainConfig(**{k: v for k, v in train.items() if k != "seeds"})
    return make_cell(data, cell.method, params, tc.to_dict(), cell.seed, cell.label)
