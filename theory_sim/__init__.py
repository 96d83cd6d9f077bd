"""theory-sim: theory-verification simulations for sparse autoencoders."""

from .errors import ConfigError  # noqa: E402
from .model import GeneratorSpec, measure  # noqa: E402
from .results import load_boundaries  # noqa: E402
from .sae.saved import load_sae  # noqa: E402
from .store import load_results  # noqa: E402
from .training import train  # noqa: E402  (the function; its module is theory_sim.training: no name clash)
from .version import __version__

__all__ = [
    "__version__",
    "ConfigError",
    "GeneratorSpec",
    "measure",
    "load_results",
    "load_boundaries",
    "load_sae",
    "train",
]
