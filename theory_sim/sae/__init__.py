"""SAE methods. ``configs`` (every method's hyperparameters, torch-free) loads alone; the methods' code (torch)
loads on the first use of ``REGISTRY``, ``Method`` or ``get_method``."""

from ..lazy import exports

_NAMES = {
    "CONFIGS": ".configs",
    "MethodConfig": ".configs",
    "get_config": ".configs",
    "make_config": ".configs",
    "REGISTRY": ".methods",
    "Method": ".methods",
    "get_method": ".methods",
}
__getattr__ = exports(__name__, _NAMES)
__all__ = list(_NAMES)
