"""Grid edges pushed back: a method whose best variant sits on the edge of one of its hyperparameter grids gets the
next value past that edge, trained before any verdict is read (a sweep file's ``[extend]`` table).

```toml
[extend]
axes = ["htf_over_f", "k_over_s"]   # method hyperparameter axes that may be extended
metric = "mcc"                      # what "best" means (higher is better unless the registry says otherwise)
l0_window = [0.5, 2.0]              # optional: only variants whose mean L0 lies in this window × the data's s compete
rounds = 1                          # how many times an edge may move
```
Per method label and data point, the variant with the best mean ``metric`` over its seeds (among those inside the
window) is found; for each listed axis on which its value is the largest (smallest) of the label's grid there, the
next value one geometric step past it — the ratio of the two outermost values — is trained at the best variant's
seeds, its other hyperparameters unchanged. Deterministic in the stored results, so a resumed sweep proposes the same
cells. Torch-free.
"""

from __future__ import annotations

import json
import math

from ..errors import ConfigError
from ..measures import METRICS, higher_is_better

EXTEND_KEYS = ("axes", "metric", "l0_window", "rounds")


def parse_extend(t: dict, path: str, method_axes: set) -> dict:
    """[extend] → {axes, metric, l0_window, rounds}; {} without the table. ConfigError naming the key otherwise."""
    if not t:
        return {}
    if not isinstance(t, dict):
        raise ConfigError("extend", f"{path}: must be a table")
    for k in t:
        if k not in EXTEND_KEYS:
            raise ConfigError(f"extend.{k}", f"{path}: unknown key; allowed: {', '.join(EXTEND_KEYS)}")
    axes = t.get("axes")
    if not (isinstance(axes, list) and axes and all(isinstance(a, str) for a in axes)):
        raise ConfigError("extend.axes", f"{path}: must list hyperparameter axes, got {axes!r}")
    for a in axes:
        if a not in method_axes:
            raise ConfigError(
                "extend.axes", f"{path}: {a!r} is not a hyperparameter axis of this sweep; axes: {sorted(method_axes)}"
            )
    metric = t.get("metric", "frr_0.9")
    if not isinstance(metric, str) or not (metric in METRICS or metric.startswith("frr_")):
        raise ConfigError(
            "extend.metric", f"{path}: must be a registered metric ({', '.join(METRICS)}), got {metric!r}"
        )
    window = t.get("l0_window")
    if window is not None and not (
        isinstance(window, list)
        and len(window) == 2
        and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in window)
        and 0 <= window[0] < window[1]
    ):
        raise ConfigError("extend.l0_window", f"{path}: must be [low, high] with 0 <= low < high, got {window!r}")
    rounds = t.get("rounds", 1)
    if not (isinstance(rounds, int) and not isinstance(rounds, bool) and 1 <= rounds <= 8):
        raise ConfigError("extend.rounds", f"{path}: must be an integer in [1, 8], got {rounds!r}")
    return {"axes": list(axes), "metric": metric, "l0_window": window, "rounds": rounds}


def _num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0


def propose_extensions(ext: dict, cells: list, metric_of: dict, l0_of: dict, make) -> list:
    """The cells one extension round adds. cells: the sweep's current cells; metric_of / l0_of: cell hash → the
    stored ``ext["metric"]`` / L0 of each done cell; make(cell, axis, value) → the cell at another value (None if
    refused). Returns new cells, none of them among ``cells``."""
    sign = 1.0 if higher_is_better(ext["metric"]) else -1.0
    groups: dict[str, dict[str, list]] = {}
    for c in cells:
        point = json.dumps([c.label, {k: v for k, v in c.data.items() if k != "seed"}], sort_keys=True)
        variant = json.dumps(c.params, sort_keys=True)
        groups.setdefault(point, {}).setdefault(variant, []).append(c)
    seen, new = {c.hash for c in cells}, []
    for variants in groups.values():
        scored = []
        for key, cs in variants.items():
            vals = [metric_of[c.hash] for c in cs if c.hash in metric_of]
            if not vals:
                continue
            if ext["l0_window"] is not None:
                l0s = [l0_of[c.hash] for c in cs if c.hash in l0_of]
                s = float(cs[0].data.get("s", 0) or 0)
                lo, hi = (w * s for w in ext["l0_window"])
                if not l0s or not lo <= sum(l0s) / len(l0s) <= hi:
                    continue
            scored.append((sign * sum(vals) / len(vals), key))
        if not scored:
            continue
        best_key = max(scored)[1]
        best = variants[best_key]
        params = best[0].params
        for axis in ext["axes"]:
            v = params.get(axis)
            if not _num(v):
                continue
            others = {k: x for k, x in params.items() if k != axis}
            grid = sorted(
                {
                    cs[0].params[axis]
                    for cs in variants.values()
                    if _num(cs[0].params.get(axis)) and {k: x for k, x in cs[0].params.items() if k != axis} == others
                }
            )
            if len(grid) < 2:
                continue
            if v == grid[-1]:
                nxt = v * (grid[-1] / grid[-2])
            elif v == grid[0]:
                nxt = v / (grid[1] / grid[0])
            else:
                continue
            nxt = float(f"{nxt:.6g}")
            for c in best:
                d = make(c, axis, nxt)
                if d is not None and d.hash not in seen:
                    seen.add(d.hash)
                    new.append(d)
    return new
