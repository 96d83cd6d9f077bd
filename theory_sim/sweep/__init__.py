"""Sweeps: grid files → cells → ensembles of equal shapes → an executor → the results store (imported on
first use)."""

from ..lazy import exports

_NAMES = {
    "Cell": ".spec",
    "Sweep": ".spec",
    "load_sweep": ".spec",
    "parse_sweep": ".spec",
    "make_batches": ".spec",
    "run_sweep": ".runner",
    "run_batch": ".runner",
    "status_table": ".runner",
    "RunSummary": ".runner",
}
__getattr__ = exports(__name__, _NAMES)
__all__ = list(_NAMES)
