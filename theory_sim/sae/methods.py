"""Every method's code, registered: importing this module imports each architecture's file (which registers
it with ``sae.base.register``); ``get_method`` reads the registry."""

from . import ba, jumprelu, l1, mba, mp, topk  # noqa: F401  (importing a method's module registers it)
from .base import REGISTRY, Method  # noqa: F401  (re-exported)
from .configs import get_config


def get_method(name: str) -> type[Method]:
    """The method class registered under ``name``; ConfigError naming ``method`` and the allowed names."""
    get_config(name)  # the one "unknown method" refusal
    return REGISTRY[name]
