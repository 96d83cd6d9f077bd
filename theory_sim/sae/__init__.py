"""SAE methods on one batched core (leading ensemble axis E) and the registry of their names."""

from . import ba, mba, mp, untied  # noqa: F401  (registers the methods)
from .base import REGISTRY, Method, MethodConfig, get_method, make_config

__all__ = ["REGISTRY", "Method", "MethodConfig", "get_method", "make_config"]
