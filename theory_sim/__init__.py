"""theory-sim: theory-verification simulations for sparse autoencoders."""
__version__ = "0.1.0"

from .errors import ConfigError  # noqa: E402
from .model import GeneratorSpec, measure  # noqa: E402

__all__ = ["__version__", "ConfigError", "GeneratorSpec", "measure"]
