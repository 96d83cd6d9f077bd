"""theory-sim: theory-verification simulations for sparse autoencoders."""
__version__ = "0.1.0"

from .errors import ConfigError  # noqa: E402
from .model import GeneratorSpec, measure  # noqa: E402
from .store import load_results  # noqa: E402


def train(*args, **kwargs):
    """See ``theory_sim.train.train`` (imported lazily: it pulls in torch)."""
    from .train import train as _train
    return _train(*args, **kwargs)


__all__ = ["__version__", "ConfigError", "GeneratorSpec", "measure", "load_results", "train"]
