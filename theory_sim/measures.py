"""The metric registry: every scalar a run records that a figure, a boundary or a rule may read, declared once —
its range, its axis label, its direction and whether it is a fraction of the n features (so its seed interval
is a binomial one). Torch-free: the sweep parser checks ``[plot]`` and ``[refine]`` metrics against it before
anything heavy is imported; metrics.py computes them, analysis.py, sweep/refine.py and plots read this.

A new metric: compute it in metrics.py (training records it under its name) and declare it here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

#: the recovery thresholds τ a run records FRR at
TAUS = (0.8, 0.9, 0.95, 0.99)


@dataclass(frozen=True)
class Metric:
    """lo, hi: the metric's range (a ``[refine]`` level must lie strictly inside); label: the axis label;
    higher_is_better: its direction; fraction: a fraction of the n features (binomial seed intervals)."""

    lo: float
    hi: float
    label: str
    higher_is_better: bool = True
    fraction: bool = False

    @property
    def bounded(self) -> bool:
        """Both ends finite: figures draw it on [lo, hi] (a little padding), not on the data's range."""
        return math.isfinite(self.lo) and math.isfinite(self.hi)


METRICS: dict[str, Metric] = {
    **{f"frr_{t}": Metric(0.0, 1.0, f"FRR at τ = {t} (fraction of features recovered)", fraction=True) for t in TAUS},
    "frr_matched_0.9": Metric(0.0, 1.0, "frr_matched_0.9", fraction=True),
    "mmcs": Metric(-1.0, 1.0, "mmcs"),
    "align_error": Metric(0.0, 2.0, "median over features of 1 − best cosine", higher_is_better=False),
    "mcc": Metric(0.0, 1.0, "mcc"),
    "uniqueness": Metric(0.0, 1.0, "uniqueness"),
    "precision": Metric(0.0, 1.0, "precision"),
    "recall": Metric(0.0, 1.0, "recall"),
    "f1": Metric(0.0, 1.0, "f1"),
    "accuracy": Metric(0.0, 1.0, "accuracy"),
    "f1_alive": Metric(0.0, 1.0, "f1_alive"),
    "uniqueness_alive": Metric(0.0, 1.0, "uniqueness_alive"),
    "explained_variance": Metric(-math.inf, 1.0, "explained variance"),
    "fvu": Metric(0.0, math.inf, "fvu", higher_is_better=False),
    "dead_fraction": Metric(0.0, 1.0, "dead_fraction", higher_is_better=False),
    "l0": Metric(0.0, math.inf, "L0 (active neurons per sample)", higher_is_better=False),
    "mse": Metric(0.0, math.inf, "mse", higher_is_better=False),
}

#: name -> (lo, hi), the form the parsers' messages and checks read
METRIC_RANGES = {k: (m.lo, m.hi) for k, m in METRICS.items()}


def is_fraction(name: str) -> bool:
    """Whether a metric is a fraction of the n features (FRR at any τ, registered or not)."""
    m = METRICS.get(name)
    return m.fraction if m is not None else name.startswith("frr_")


def higher_is_better(name: str) -> bool:
    """A metric's direction (an unregistered column: higher is better, the recovery metrics' sense)."""
    m = METRICS.get(name)
    return True if m is None else m.higher_is_better


def label(name: str, fallback: str | None = None) -> str:
    """A metric's axis label; ``frr_T`` for any τ; else ``fallback`` (default: the name)."""
    if name in METRICS:
        return METRICS[name].label
    if name.startswith("frr_"):
        return f"FRR at τ = {name[4:]} (fraction of features recovered)"
    return name if fallback is None else fallback
