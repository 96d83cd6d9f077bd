"""The training budget and a cell's hyperparameters, importable without torch: ``TrainConfig`` (a sweep's
``[train]``) and ``resolve_hyper`` (a method's config from a dict whose ``X_over_f`` / ``X_over_s`` keys are
multiples of the data's mean frequency f or expected L0 s̄). The sweep parser and the command line validate
with these before anything heavy is imported."""

from __future__ import annotations

from dataclasses import dataclass, fields

from .device import PRECISIONS
from .errors import normalise_integers, require
from .params import Boolean, Interval, Options, check_declared, param
from .params import scales as declared_scales
from .sae.configs import DERIVED, derived_base, get_config

#: upper limits of the training budget (a typo like 1e12 steps is refused, not run for years)
TRAIN_LIMITS = {"steps": 10**8, "batch": 2**20, "eval_samples": 2**22}
#: the input scalings TrainConfig.input_scale allows
INPUT_SCALES = ("none", "mean_norm")
#: rows the input scale is measured on
SCALE_ROWS = 8192


@dataclass(frozen=True)
class TrainConfig:
    """The training budget and what a run records (a sweep's ``[train]``); each field declared once."""

    steps: int = param(3000, Interval(int, 1, TRAIN_LIMITS["steps"]), "optimiser steps")
    batch: int = param(512, Interval(int, 1, TRAIN_LIMITS["batch"]), "rows per step")
    eval_samples: int = param(
        8192, Interval(int, 1, TRAIN_LIMITS["eval_samples"]), "held-out rows the final evaluation reads"
    )
    record_every: int = param(
        0, Interval(int, 0, 2**62), "FRR@0.9 trajectory every k steps (0: the method's RECORD_EVERY, mba every step)"
    )
    check_every: int = param(25, Interval(int, 1, 2**62), "steps between non-finite-loss checks")
    save_decoder: bool = param(
        False, Boolean(), "keep each model's decoder (M, d) in its arrays (cross-seed consistency)"
    )
    #: "mean_norm": the mean row norm of 8192 evaluation rows, per model; the bias range of BA/GBA ([−1, 0])
    #: presumes unit-scale inputs
    input_scale: str = param(
        "none", Options(INPUT_SCALES), "divide every input by a constant so pre-activations are O(1)"
    )

    #: "tf32": training matmuls on CUDA tensor cores (10-bit mantissa inputs, fp32 accumulation); the recorded
    #: trajectory and the final evaluation stay fp32. Refused off CUDA. Not the default: whether it moves
    #: FRR@0.9 or a fitted boundary beyond its interval has not been measured yet (it needs a GPU)
    precision: str = param(
        "fp32", Options(PRECISIONS), "training matmul precision: fp32, or tf32 (CUDA tensor cores; evaluation fp32)"
    )

    #: "true": each step captured once per phase as a CUDA graph and replayed (theory_sim/graphs.py), its data drawn
    #: on the device from the counter stream (model/counter.py) — another random stream than the default, so a
    #: graph cell is another cell. CUDA only; generator data (any spec); every method but AuxK (capture_refusal)
    graph: bool = param(
        False, Boolean(), "capture each step in a CUDA graph, data drawn on the device (counter stream); CUDA only"
    )

    def __post_init__(self):
        normalise_integers(self)
        check_declared(self)

    def to_dict(self):
        """Every field; ``input_scale``, ``precision`` and ``graph`` only when set (so cells stored before they
        existed keep their hashes)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        if out["input_scale"] == "none":
            del out["input_scale"]
        if out["precision"] == "fp32":
            del out["precision"]
        if not out["graph"]:
            del out["graph"]
        return out


# ------------------------------------------------------------------------------------------ hyperparameters
def resolve_hyper(method: str, params: dict, f: float | None, l0: float | None = None, n: int | None = None):
    """Method config from a dict; ``X_over_f`` keys become ``X = value · f``, ``X_over_s`` keys
    ``X = value · l0`` (l0: the data's expected L0; f · n for generator data), ``X_over_n`` keys ``X = value · n``
    (n: the number of features)."""
    out = {}
    refs = {"f": f, "s": l0, "n": n}
    scales_of = declared_scales(get_config(method))
    for k, v in params.items():
        base = derived_base(k)
        if base != k:
            ref = DERIVED[k[len(base) :]]
            kinds = {
                "f": "a frequency (X_over_f)",
                "s": "a count of active latents (X_over_s)",
                "n": "a multiple of the number of features (X_over_n)",
            }
            require(
                scales_of.get(base) == ref,
                k,
                f"{base} is not {kinds[ref]} of {method}; derived keys of {method}: "
                + (", ".join(f"{b}_over_{r}" for b, r in scales_of.items()) or "none"),
            )
            require(refs[ref] is not None, k, f"needs generator data to know {ref}; give {base} directly")
            positive = Interval(float, 0, None, "neither")
            require(positive.accepts(v), k, f"must be {positive.describe()}, got {v!r}")
            require(base not in params, k, f"give either {k} or {base}, not both")
            val = v * refs[ref]
            if _int_field(method, base):  # a count (TopK's k = k_over_s · s): the nearest integer, at least 1
                val = max(1, round(val))
            out[base] = val
        else:
            out[k] = v
    return get_config(method).from_dict(out)


def _int_field(method: str, name: str) -> bool:
    for f in fields(get_config(method)):
        if f.name == name:
            return f.type in (int, "int")
    return False


def spec_scales(spec) -> tuple[float, float, int]:
    """(f, expected L0, n) of a generator spec: what derived hyperparameters are multiples of."""
    f = spec.mean_frequency()
    return f, f * spec.n, spec.n
