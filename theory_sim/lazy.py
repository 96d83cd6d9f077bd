"""Package front doors that import on first use (PEP 562), so ``theory-sim --help`` and a one-line refusal of
bad input do not pay for torch, scipy and pandas (seconds each under load)."""

from __future__ import annotations

import importlib


def exports(package: str, names: dict[str, str]):
    """A module ``__getattr__`` for ``package``: ``names`` maps an exported name to the submodule (relative,
    e.g. ".training") that defines it; the submodule is imported on the first access."""

    def __getattr__(name):
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(names[name], package), name)

    return __getattr__
