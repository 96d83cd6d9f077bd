"""Sweeps: grid files → cells → ensembles of equal shapes → an executor → the results store."""

from .runner import RunSummary, run_batch, run_sweep, status_table
from .spec import Cell, Sweep, load_sweep, make_batches, parse_sweep

__all__ = [
    "Cell",
    "Sweep",
    "load_sweep",
    "parse_sweep",
    "make_batches",
    "run_sweep",
    "run_batch",
    "status_table",
    "RunSummary",
]
