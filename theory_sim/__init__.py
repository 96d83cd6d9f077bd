"""theory-sim: theory-verification simulations for sparse autoencoders.

The names below import on first use (theory_sim/lazy.py): ``import theory_sim`` costs nothing heavy."""

from .lazy import exports
from .version import __version__

_NAMES = {
    "ConfigError": ".errors",
    "GeneratorSpec": ".model.spec",
    "measure": ".model.stats",
    "load_results": ".store",
    "load_boundaries": ".results",
    "load_sae": ".sae.saved",
    "train": ".training",  # the function; its module is theory_sim.training: no name clash
}
__getattr__ = exports(__name__, _NAMES)
__all__ = ["__version__", *_NAMES]
